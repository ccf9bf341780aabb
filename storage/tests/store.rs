//! The store on a real sled database in a temporary directory: writes, queries, retention, locking, stats.

use htsr_contracts::{LayerReport, Phase};
use htsr_storage::{fixtures, Error, OpenOutcome, Store};

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path().join("store")).expect("open").0
}

fn write(store: &Store, run: &str, step: u64, layers: &[LayerReport], raw: &[(&str, Vec<f64>)]) {
    let record = fixtures::checkpoint_record(run, step, layers);
    let raw: Vec<(String, Vec<f64>)> = raw
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    store
        .write_checkpoint(&record, layers, &raw)
        .expect("write");
}

fn reports(step: u64, names: &[&str]) -> Vec<LayerReport> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| fixtures::layer_report(n, step * 100 + i as u64))
        .collect()
}

#[test]
fn a_written_checkpoint_reads_back_through_every_query() {
    let dir = tempfile::tempdir().unwrap();
    let (store, outcome) = Store::open(dir.path().join("store")).unwrap();
    assert_eq!(outcome, OpenOutcome::Created);
    let names = ["b.second_seen_first", "a.layer", "c.bias"];
    let mut by_step = Vec::new();
    for step in [10u64, 20, 30] {
        let mut layers = reports(step, &names);
        layers[2] = fixtures::skipped_report("c.bias");
        write(
            &store,
            "run1",
            step,
            &layers,
            &[("a.layer", vec![1.0, 2.0])],
        );
        by_step.push((step, layers));
    }

    assert_eq!(store.layer_names("run1").unwrap(), names);
    let cps = store.checkpoints("run1").unwrap();
    assert_eq!(
        cps.iter().map(|c| c.step).collect::<Vec<_>>(),
        vec![10, 20, 30]
    );
    assert_eq!(
        cps[1],
        fixtures::checkpoint_record("run1", 20, &by_step[1].1)
    );

    let traj = store.trajectory("run1", "a.layer").unwrap();
    assert_eq!(
        traj.iter().map(|p| p.step).collect::<Vec<_>>(),
        vec![10, 20, 30]
    );
    for (p, (_, layers)) in traj.iter().zip(&by_step) {
        let exact = layers[1].alpha().unwrap();
        assert!((p.alpha.unwrap() - exact).abs() < exact * 1e-6);
        assert_eq!(p.phase, layers[1].phase());
        assert_eq!(p.num_spikes, layers[1].mp.as_ref().map(|m| m.num_spikes));
    }
    let skipped = store.trajectory("run1", "c.bias").unwrap();
    assert!(skipped
        .iter()
        .all(|p| p.alpha.is_none() && p.phase.is_none()));
    assert!(store
        .trajectory("run1", "no.such.layer")
        .unwrap()
        .is_empty());

    assert_eq!(
        store.layer_report("run1", 20, "a.layer").unwrap().as_ref(),
        Some(&by_step[1].1[1])
    );
    assert_eq!(store.layers_at("run1", 30).unwrap(), by_step[2].1);
    assert_eq!(
        store.esd("run1", 10, "a.layer").unwrap(),
        by_step[0].1[1].esd
    );
    assert_eq!(store.esd("run1", 10, "c.bias").unwrap(), None);
    assert_eq!(store.layer_report("run1", 40, "a.layer").unwrap(), None);

    let id = &cps[0].identity;
    assert_eq!(
        store.find_by_identity(id).unwrap().map(|c| c.step),
        Some(10)
    );
    assert!(store
        .is_analyzed(&id.path, id.size, id.mtime_ns, &id.header_hash)
        .unwrap());
    assert!(!store
        .is_analyzed(&id.path, id.size + 1, id.mtime_ns, &id.header_hash)
        .unwrap());
    assert!(!store
        .is_analyzed(&id.path, id.size, id.mtime_ns, "other-hash")
        .unwrap());

    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    let s = &runs[0];
    assert_eq!(
        (s.run.as_str(), s.last_step, s.checkpoints, s.layers),
        ("run1", 30, 3, 3)
    );
    let last = &by_step[2].1;
    let expected_mean = (last[0].alpha().unwrap() + last[1].alpha().unwrap()) / 2.0;
    assert!((s.mean_alpha.unwrap() - expected_mean).abs() < 1e-5);
    let mut counts = [0u32; htsr_contracts::Phase::COUNT];
    for l in last {
        if let Some(p) = l.phase() {
            counts[p.index()] += 1;
        }
    }
    assert_eq!(s.phase_counts, counts);
}

#[test]
fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        write(&store, "r", 1, &reports(1, &["x", "y"]), &[]);
    }
    let (store, outcome) = Store::open(dir.path().join("store")).unwrap();
    assert_eq!(outcome, OpenOutcome::Opened);
    assert_eq!(store.layers_at("r", 1).unwrap(), reports(1, &["x", "y"]));
    assert_eq!(
        store.schema_version().unwrap(),
        htsr_storage::SCHEMA_VERSION
    );
}

#[test]
fn runs_whose_names_share_prefixes_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let runs = ["a", "a\0", "ab", "", "b"];
    for (i, run) in runs.iter().enumerate() {
        for step in 0..=(i as u64) {
            write(&store, run, step, &reports(step, &["layer"]), &[]);
        }
    }
    let summaries = store.runs().unwrap();
    let mut sorted = runs.to_vec();
    sorted.sort();
    assert_eq!(
        summaries.iter().map(|s| s.run.as_str()).collect::<Vec<_>>(),
        sorted
    );
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(store.checkpoints(run).unwrap().len(), i + 1, "run {run:?}");
        assert_eq!(
            store.trajectory(run, "layer").unwrap().len(),
            i + 1,
            "run {run:?}"
        );
        assert_eq!(store.run_summary(run).unwrap().unwrap().last_step, i as u64);
    }
}

#[test]
fn phase_grid_downsamples_to_evenly_spaced_columns_with_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for step in 0..25u64 {
        // A layer that appears late leaves the early cells empty.
        let names: &[&str] = if step < 10 {
            &["l0", "l1"]
        } else {
            &["l0", "l1", "late"]
        };
        write(&store, "r", step * 10, &reports(step, names), &[]);
    }
    let full = store.phase_grid("r", None, None).unwrap();
    assert_eq!(full.layers, vec!["l0", "l1", "late"]);
    assert_eq!(full.steps.len(), 25);
    assert_eq!(full.total_checkpoints, 25);
    let l1 = store.trajectory("r", "l1").unwrap();
    assert_eq!(
        full.cells[1],
        l1.iter().map(|p| p.phase).collect::<Vec<_>>()
    );
    assert!(full.cells[2][..10].iter().all(Option::is_none));
    assert!(full.cells[2][10..].iter().all(Option::is_some));

    let small = store.phase_grid("r", Some(5), None).unwrap();
    assert_eq!(small.steps, vec![0, 60, 120, 180, 240]);
    assert_eq!(small.cells.len(), 3);
    for (row, full_row) in small.cells.iter().zip(&full.cells) {
        let picked: Vec<Option<Phase>> = [0, 6, 12, 18, 24].iter().map(|&i| full_row[i]).collect();
        assert_eq!(row, &picked);
    }
    assert_eq!(
        store.phase_grid("r", Some(1), None).unwrap().steps,
        vec![240]
    );
    assert_eq!(
        store.phase_grid("missing", Some(5), None).unwrap(),
        Default::default()
    );
}

#[test]
fn raw_eigenvalues_are_kept_for_the_latest_and_pinned_checkpoints_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ev = |s: u64| vec![s as f64, 1.0, 2.0];
    let l = |s| reports(s, &["w"]);
    write(&store, "r", 1, &l(1), &[("w", ev(1))]);
    assert_eq!(store.raw_eigenvalues("r", 1, "w").unwrap(), Some(ev(1)));
    write(&store, "r", 2, &l(2), &[("w", ev(2))]);
    assert_eq!(
        store.raw_eigenvalues("r", 1, "w").unwrap(),
        None,
        "older latest is compacted"
    );
    assert_eq!(store.raw_eigenvalues("r", 2, "w").unwrap(), Some(ev(2)));

    assert!(
        store.pin("r", 2).unwrap(),
        "pinning a checkpoint that holds raw values"
    );
    write(&store, "r", 3, &l(3), &[("w", ev(3))]);
    assert_eq!(
        store.raw_eigenvalues("r", 2, "w").unwrap(),
        Some(ev(2)),
        "pinned survives"
    );
    assert_eq!(store.pinned("r").unwrap(), vec![2]);
    assert!(
        !store.pin("r", 1).unwrap(),
        "step 1's raw values are already gone"
    );

    // A checkpoint arriving out of order is not the latest: its raw values are not kept.
    write(&store, "r", 0, &l(0), &[("w", ev(0))]);
    assert_eq!(store.raw_eigenvalues("r", 0, "w").unwrap(), None);
    assert_eq!(store.raw_eigenvalues("r", 3, "w").unwrap(), Some(ev(3)));

    store.unpin("r", 2).unwrap();
    assert_eq!(
        store.raw_eigenvalues("r", 2, "w").unwrap(),
        None,
        "unpinned, not latest: dropped"
    );
    store.unpin("r", 3).unwrap();
    assert_eq!(
        store.raw_eigenvalues("r", 3, "w").unwrap(),
        Some(ev(3)),
        "latest keeps its raw values"
    );
    assert_eq!(
        store
            .stats()
            .unwrap()
            .trees
            .iter()
            .find(|t| t.name == "raw_eigenvalues")
            .unwrap()
            .keys,
        1
    );
}

#[test]
fn rewriting_a_checkpoint_replaces_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    write(&store, "r", 5, &reports(5, &["a", "b", "c"]), &[]);
    let old_id = store.checkpoint("r", 5).unwrap().unwrap().identity;
    let new_layers = reports(6, &["c", "a"]);
    let mut record = fixtures::checkpoint_record("r", 5, &new_layers);
    record.identity.header_hash = "new".into();
    store.write_checkpoint(&record, &new_layers, &[]).unwrap();
    let mut got = store.layers_at("r", 5).unwrap();
    got.sort_by(|x, y| x.name.cmp(&y.name));
    let mut want = new_layers.clone();
    want.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(got, want);
    assert!(store.trajectory("r", "b").unwrap().is_empty());
    assert_eq!(store.find_by_identity(&old_id).unwrap(), None);
    assert_eq!(
        store.find_by_identity(&record.identity).unwrap(),
        Some(record)
    );
    assert_eq!(store.checkpoints("r").unwrap().len(), 1);
}

#[test]
fn inconsistent_input_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let layers = reports(1, &["a", "a"]);
    let rec = fixtures::checkpoint_record("r", 1, &layers);
    assert!(matches!(
        store.write_checkpoint(&rec, &layers, &[]),
        Err(Error::Invalid(_))
    ));
    let layers = reports(1, &["a"]);
    let raw = vec![("ghost".to_string(), vec![1.0])];
    assert!(matches!(
        store.write_checkpoint(&rec, &layers, &raw),
        Err(Error::Invalid(_))
    ));
    assert!(store.runs().unwrap().is_empty());
    assert!(store.layer_names("r").unwrap().is_empty());
}

#[test]
fn a_second_opener_gets_a_distinct_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let (_held, _) = Store::open(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(err.is_locked(), "expected a lock error, got {err}");
    assert!(
        err.to_string().contains("another process holds the lock"),
        "{err}"
    );
    // The held store was not moved aside.
    assert!(std::fs::read_dir(dir.path()).unwrap().count() == 1);
}

#[test]
fn stats_count_every_tree_and_print_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for step in 0..4 {
        write(
            &store,
            "r",
            step,
            &reports(step, &["a", "b", "c"]),
            &[("a", vec![1.0; 10])],
        );
    }
    let stats = store.stats().unwrap();
    let keys = |n: &str| stats.trees.iter().find(|t| t.name == n).unwrap().keys;
    assert_eq!(keys("points"), 12);
    assert_eq!(keys("reports"), 12);
    assert_eq!(keys("checkpoints"), 4);
    assert_eq!(keys("layer_names"), 3);
    assert_eq!(keys("raw_eigenvalues"), 1);
    assert_eq!(
        stats.logical_bytes,
        stats.trees.iter().map(|t| t.bytes).sum::<u64>()
    );
    assert!(stats.on_disk_bytes > 0);
    let text = stats.to_string();
    for name in [
        "meta",
        "points",
        "reports",
        "phase_rows",
        "raw_eigenvalues",
        "total",
        "on disk",
    ] {
        assert!(text.contains(name), "{text}");
    }
}

#[test]
fn stored_keys_scan_one_layer_in_step_order() {
    // The same property the unit proptest checks on the encoder, here through sled itself.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for step in [300u64, 2, 70_000, 1 << 40, 9] {
        write(&store, "r", step, &reports(step % 1000, &["x"]), &[]);
    }
    let steps: Vec<u64> = store
        .trajectory("r", "x")
        .unwrap()
        .iter()
        .map(|p| p.step)
        .collect();
    assert_eq!(steps, vec![2, 9, 300, 70_000, 1 << 40]);
}
