//! The daemon's behaviour, run in-process on real directories and a real sled store, observed through its live
//! events: backlogs, restarts, run layouts, broken and fixed files, frozen layers, the polling watcher, slow
//! writers, files deleted or rewritten while it works, and the weights and spectra of one step. What only the
//! binary does (signals, exit codes, the terminal) is tested in htsr-watch's own tests.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use common::*;
use htsr_contracts::{CheckpointStatus, LayerStatus, LiveEvent};
use htsr_engine::analyze::{analyze_checkpoint, AnalyzeOptions};

#[test]
fn a_backlog_in_two_runs_is_stored_once_and_a_restart_analyzes_nothing_new() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    two_run_backlog(dir, 10);
    // Never read: a temporary name and a hidden file.
    std::fs::write(
        dir.join("runA/step-000099.safetensors.tmp"),
        b"half written",
    )
    .unwrap();
    std::fs::write(dir.join("runA/.step-000098.safetensors"), b"hidden").unwrap();

    // Two workers: the two runs are analyzed in parallel, each run in step order.
    let mut cfg = config(dir);
    cfg.jobs = 2;
    let (summary, events) = once(cfg);
    assert_eq!((summary.stored, summary.failed), (20, 0), "{summary:?}");
    let stored = stored_in(&events);
    assert_eq!(stored.len(), 20);
    for run in ["runA", "runB"] {
        let steps: Vec<u64> = stored
            .iter()
            .filter(|(r, _)| r == run)
            .map(|(_, s)| *s)
            .collect();
        let mut sorted = steps.clone();
        sorted.sort();
        assert_eq!(steps, sorted, "{run} analyzed in step order");
    }
    let analyzed_at: HashMap<(String, u64), f64>;
    {
        let store = open_store(dir);
        assert_complete(
            &store,
            "runA",
            &(1..=10).map(|i| i * 100).collect::<Vec<_>>(),
        );
        assert_complete(
            &store,
            "runB",
            &(1..=10).map(|i| i * 10).collect::<Vec<_>>(),
        );
        assert_eq!(store.runs().unwrap().len(), 2);
        analyzed_at = ["runA", "runB"]
            .iter()
            .flat_map(|r| store.checkpoints(r).unwrap())
            .map(|r| ((r.run, r.step), r.analyzed_at))
            .collect();
    }
    // A second run finds every identity stored: nothing is analyzed or rewritten.
    let (summary, events) = once(config(dir));
    assert_eq!(
        (summary.stored, summary.skipped, summary.failed),
        (0, 20, 0),
        "{summary:?}"
    );
    assert!(stored_in(&events).is_empty());
    let store = open_store(dir);
    let again: HashMap<(String, u64), f64> = ["runA", "runB"]
        .iter()
        .flat_map(|r| store.checkpoints(r).unwrap())
        .map(|r| ((r.run, r.step), r.analyzed_at))
        .collect();
    assert_eq!(again, analyzed_at);
}

#[test]
fn checkpoints_directly_in_dir_nested_run_folders_and_run_metadata_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("myrun");
    write_checkpoint(&dir, "a.safetensors", &Spec::seed(1));
    write_checkpoint(&dir, "b.safetensors", &Spec::seed(2));
    let spec = Spec {
        run: Some("renamed".into()),
        ..Spec::seed(3)
    };
    write_checkpoint(&dir.join("sub"), "ck-7.safetensors", &spec);
    // Where the Hugging Face and Lightning callbacks put a run: DIR/<name>/run-<time>/.
    write_checkpoint(
        &dir.join("hf/run-1700000000"),
        &step_name(10),
        &Spec::seed(4),
    );
    // Deeper than the limit: not watched.
    write_checkpoint(&dir.join("a/b/c/d/e"), &step_name(1), &Spec::seed(5));
    let (summary, _) = once(config(&dir));
    assert_eq!(summary.failed, 0, "{summary:?}");
    let store = open_store(&dir);
    // No number in the names: steps in the order seen.
    assert_complete(&store, "myrun", &[0, 1]);
    assert_complete(&store, "renamed", &[7]);
    assert_complete(&store, "hf/run-1700000000", &[10]);
    let runs: Vec<String> = store.runs().unwrap().into_iter().map(|r| r.run).collect();
    assert_eq!(runs, ["hf/run-1700000000", "myrun", "renamed"]);
}

#[test]
fn a_corrupt_file_is_stored_failed_and_analyzed_again_once_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = dir.join("r");
    for i in [1u64, 3, 4] {
        write_checkpoint(&run, &step_name(i), &Spec::seed(i));
    }
    // Garbage under a final name, and a valid header whose data stop short (a writer that died).
    write_atomic(&run.join(step_name(2)), &[0x5a; 300]);
    let full = checkpoint_bytes(&Spec::seed(5));
    write_atomic(&run.join(step_name(5)), &full[..full.len() - 100]);

    let mut cfg = config(dir);
    cfg.readiness.give_up = std::time::Duration::from_secs(2);
    cfg.readiness.invalid_grace = cfg.readiness.invalid_grace.min(cfg.readiness.give_up);
    let (summary, events) = once(cfg.clone());
    assert_eq!(summary.failed, 2, "{summary:?}");
    let failed = failed_in(&events);
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed
            .iter()
            .any(|(_, p, why)| p.ends_with(&step_name(2)) && why.contains("header")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .any(|(_, p, why)| p.ends_with(&step_name(5)) && why.contains("bytes")),
        "{failed:?}"
    );
    {
        let store = open_store(dir);
        let records = store.checkpoints("r").unwrap();
        assert_eq!(
            records.iter().map(|r| r.step).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        for r in &records {
            match r.step {
                2 | 5 => {
                    assert_eq!(r.status, CheckpointStatus::Failed);
                    assert_eq!(r.layer_count, 0);
                    assert!(store.layers_at("r", r.step).unwrap().is_empty());
                    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
                }
                _ => assert_eq!(r.status, CheckpointStatus::Complete),
            }
        }
    }
    // Fixing the corrupt file (a new identity) gets it analyzed; the truncated one is still failed.
    write_checkpoint(&run, &step_name(2), &Spec::seed(2));
    let (summary, events) = once(cfg);
    assert_eq!(stored_in(&events), vec![("r".to_string(), 2)]);
    assert_eq!(summary.failed, 1, "step 5 is still failed: {summary:?}");
    let store = open_store(dir);
    assert_eq!(
        store.checkpoint("r", 2).unwrap().unwrap().status,
        CheckpointStatus::Complete
    );
    assert_eq!(
        store.layers_at("r", 2).unwrap().len(),
        LAYERS_PER_CHECKPOINT
    );
}

#[test]
fn frozen_layers_reuse_the_previous_report_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = dir.join("ft");
    let frozen = |seed: u64| Spec {
        frozen: HashMap::from([("fc1.weight".to_string(), 4242)]),
        ..Spec::seed(seed)
    };
    for i in 1..=3u64 {
        write_checkpoint(&run, &step_name(i), &frozen(i));
    }
    let (summary, _) = once(config(dir));
    assert_eq!(summary.stored, 3);
    {
        let store = open_store(dir);
        let first = store.layer_report("ft", 1, "fc1").unwrap().unwrap();
        assert_eq!(first.reused_from_step, None);
        for step in [2u64, 3] {
            let fc1 = store.layer_report("ft", step, "fc1").unwrap().unwrap();
            assert_eq!(fc1.reused_from_step, Some(step - 1));
            assert_eq!(fc1.power_law, first.power_law);
            assert_eq!(fc1.metrics, first.metrics);
            let fc2 = store.layer_report("ft", step, "fc2").unwrap().unwrap();
            assert_eq!(fc2.reused_from_step, None, "fc2 changes every step");
        }
    }
    // A new daemon has no hashes in memory: it rebuilds them from the previous checkpoint's file.
    write_checkpoint(&run, &step_name(4), &frozen(4));
    once(config(dir));
    let store = open_store(dir);
    assert_eq!(
        store
            .layer_report("ft", 4, "fc1")
            .unwrap()
            .unwrap()
            .reused_from_step,
        Some(3)
    );
    assert_eq!(
        store
            .layer_report("ft", 4, "fc3")
            .unwrap()
            .unwrap()
            .reused_from_step,
        None
    );
}

#[test]
fn checkpoints_arriving_while_it_runs_are_stored_with_events_and_the_polling_watcher_sees_them_too()
{
    for poll in [None, Some(std::time::Duration::from_millis(200))] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("watched");
        let mut cfg = config(&dir);
        cfg.poll = poll;
        // No rescan during the test: only the watcher (events or polling) can find the new files.
        cfg.rescan = std::time::Duration::from_secs(3600);
        let mut daemon = start(cfg);
        // The first status event says the daemon is up and has scanned.
        daemon.until(|e| matches!(e, LiveEvent::Status(_)).then_some(()));
        for i in 1..=3u64 {
            write_checkpoint(&dir.join("live"), &step_name(i), &Spec::seed(i));
            daemon.stored("live", i);
        }
        // A new run directory appearing after the start.
        write_checkpoint(&dir.join("later"), &step_name(5), &Spec::seed(50));
        daemon.stored("later", 5);
        let analyzing = daemon
            .seen
            .iter()
            .filter(|e| matches!(e, LiveEvent::Analyzing { .. }))
            .count();
        assert_eq!(analyzing, 4, "{poll:?}: one analysis per checkpoint");
        let store = daemon.store.clone();
        let summary = daemon.stop();
        assert_eq!((summary.stored, summary.failed), (4, 0), "{poll:?}");
        assert_complete(&store, "live", &[1, 2, 3]);
        assert_complete(&store, "later", &[5]);
    }
}

/// Opens of one file by anyone (the daemon's looks and reads), seen through inotify.
struct Opens {
    _watcher: notify::RecommendedWatcher,
    rx: std::sync::mpsc::Receiver<()>,
}

impl Opens {
    fn of(path: &Path) -> Opens {
        use notify::Watcher;
        let (tx, rx) = std::sync::mpsc::channel();
        let file = path.to_path_buf();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                let open = matches!(
                    ev.kind,
                    notify::EventKind::Access(notify::event::AccessKind::Open(_))
                );
                if open && ev.paths.contains(&file) {
                    let _ = tx.send(());
                }
            }
        })
        .unwrap();
        watcher
            .watch(path.parent().unwrap(), notify::RecursiveMode::NonRecursive)
            .unwrap();
        Opens {
            _watcher: watcher,
            rx,
        }
    }

    /// Waits until the file was opened (again) by someone other than this test.
    fn wait(&self) {
        self.rx
            .recv_timeout(HANG)
            .expect("the daemon never looked at the file");
    }
}

#[test]
fn a_file_written_slowly_under_its_final_name_is_never_read_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    std::fs::create_dir_all(dir.join("slow")).unwrap();
    let bytes = checkpoint_bytes(&Spec::seed(9));
    let path = dir.join("slow").join(step_name(9));
    let mut f = std::fs::File::create(&path).unwrap();
    let opens = Opens::of(&path);
    let mut daemon = start(config(&dir));
    // 3 bytes (not even a header length), the header and half the data, then the rest: after each piece the
    // test waits until the daemon has looked at the file as it is, so every partial state is seen by it.
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut looks_at_partial_states = 0;
    for end in [3, header_end + (bytes.len() - header_end) / 2, bytes.len()] {
        let written = f.metadata().unwrap().len() as usize;
        f.write_all(&bytes[written..end]).unwrap();
        f.flush().unwrap();
        if end < bytes.len() {
            opens.wait();
            looks_at_partial_states += 1;
        }
    }
    drop(f);
    daemon.stored("slow", 9);
    let store = daemon.store.clone();
    let summary = daemon.stop();
    assert_eq!(looks_at_partial_states, 2);
    assert_eq!(
        (summary.stored, summary.failed),
        (1, 0),
        "never judged while half written"
    );
    assert_complete(&store, "slow", &[9]);
    assert_eq!(
        store.checkpoint("slow", 9).unwrap().unwrap().identity.size,
        bytes.len() as u64
    );
}

#[test]
fn files_deleted_after_they_were_queued_are_dropped_and_the_daemon_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    for i in 1..=12u64 {
        write_checkpoint(&dir.join("d"), &step_name(i), &Spec::seed(i));
    }
    // One worker: the backlog is queued at the first scan and analyzed in step order, so when the daemon starts
    // analyzing step s, step s + 1 is queued and cannot have been opened yet. Deleting it then is a deletion
    // between the look that found it complete and the read: the race this test is about, made certain.
    let mut cfg = config(&dir);
    cfg.jobs = 1;
    let mut daemon = start(cfg);
    let mut deleted = BTreeSet::new();
    while deleted.len() < 6 {
        if let LiveEvent::Analyzing { step, path, .. } = daemon.next() {
            if step % 2 == 1 {
                let next = Path::new(&path).with_file_name(step_name(step + 1));
                std::fs::remove_file(&next).unwrap();
                deleted.insert(step + 1);
            }
        }
    }
    daemon.stored("d", 11);
    // The daemon keeps working: a checkpoint written afterwards is stored, whole.
    write_checkpoint(&dir.join("d"), &step_name(13), &Spec::seed(13));
    daemon.stored("d", 13);
    let store = daemon.store.clone();
    let summary = daemon.stop();
    assert_eq!(
        summary.failed, 0,
        "a vanished file is not a failure: {summary:?}"
    );
    assert_eq!(
        summary.gone, 6,
        "every deleted file was dropped as vanished: {summary:?}"
    );
    assert_complete(&store, "d", &[1, 3, 5, 7, 9, 11, 13]);
    assert!(deleted
        .iter()
        .all(|s| store.checkpoint("d", *s).unwrap().is_none()));
}

/// One version of an in-place rewritten file: three 512x512 layers whose contents depend on `version`.
fn version_bytes(version: u64) -> Vec<u8> {
    layers_bytes(
        &[
            ("a.weight", 512, 512, 7000 + version * 3),
            ("b.weight", 512, 512, 7001 + version * 3),
            ("c.weight", 512, 512, 7002 + version * 3),
        ],
        &[("htsr.step", version.to_string())],
    )
}

/// Truncates `path` and writes `bytes` into it in place, as `torch.save` or tch's `VarStore::save` do.
fn rewrite_in_place(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    for chunk in bytes.chunks(1 << 16) {
        f.write_all(chunk).unwrap();
    }
    f.sync_all().unwrap();
}

#[test]
fn a_file_rewritten_in_place_is_never_stored_torn_and_its_last_version_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let reference = tmp.path().join("reference");
    std::fs::create_dir_all(&reference).unwrap();
    // What each version's layers must look like, from the same engine reading an untouched copy.
    let versions = 10u64;
    let mut expected: BTreeMap<u64, BTreeMap<String, f64>> = BTreeMap::new();
    for v in 0..versions {
        let copy = reference.join(format!("v{v}.safetensors"));
        std::fs::write(&copy, version_bytes(v)).unwrap();
        let a = analyze_checkpoint(&copy, &AnalyzeOptions::default()).unwrap();
        expected.insert(
            v,
            a.layers
                .iter()
                .map(|l| {
                    (
                        l.report.name.clone(),
                        l.report.metrics.as_ref().unwrap().lambda_max,
                    )
                })
                .collect(),
        );
    }
    let latest = run.join("latest.safetensors");
    rewrite_in_place(&latest, &version_bytes(0));
    let mut daemon = start(config(&dir));
    let mut rewritten_under_a_read = 0;
    for v in 0..versions {
        if v > 0 {
            // The daemon is reading version v-1 now: truncate and rewrite under it.
            rewrite_in_place(&latest, &version_bytes(v));
            rewritten_under_a_read += 1;
        }
        daemon
            .until(|e| matches!(e, LiveEvent::Analyzing { step, .. } if *step == v).then_some(()));
    }
    daemon.stored("run", versions - 1);
    let store = daemon.store.clone();
    let summary = daemon.stop();
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(rewritten_under_a_read, versions - 1);
    let records = store.checkpoints("run").unwrap();
    let stored: BTreeSet<u64> = records.iter().map(|r| r.step).collect();
    eprintln!("stored versions {stored:?} of {versions}");
    assert!(
        stored.contains(&(versions - 1)),
        "the last version is stored: {stored:?}"
    );
    for r in &records {
        assert_eq!(r.status, CheckpointStatus::Complete, "{:?}", r.errors);
        let want = &expected[&r.step];
        let layers = store.layers_at("run", r.step).unwrap();
        assert_eq!(layers.len(), 3);
        for l in layers {
            assert_eq!(l.status, LayerStatus::Success, "{:?}", l.reason);
            // Any byte of another version would change lambda_max: the stored version is one whole version.
            assert_eq!(
                l.metrics.as_ref().unwrap().lambda_max,
                want[&l.name],
                "step {} layer {}",
                r.step,
                l.name
            );
        }
    }
}

#[test]
fn the_weights_and_spectra_files_of_one_step_are_one_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // What `mode = both` writes for each step: the weights, and beside them the spectra of the same step (here a
    // file in the spectra format made from the weights by the engine's own writer path is not needed: any file
    // under the spectra name is skipped when the weights are there, so its content must never be read).
    for step in [10u64, 20, 30] {
        write_checkpoint(
            &dir.join("both"),
            &format!("step-{step:09}.safetensors"),
            &Spec::seed(step),
        );
        write_atomic(
            &dir.join("both")
                .join(format!("step-{step:09}.esd.safetensors")),
            b"not read: the weights of this step are analyzed",
        );
    }
    let (summary, events) = once(config(dir));
    assert_eq!(
        (summary.stored, summary.failed, summary.skipped),
        (3, 0, 3),
        "{summary:?}"
    );
    assert!(failed_in(&events).is_empty(), "{:?}", failed_in(&events));
    assert_complete(&open_store(dir), "both", &[10, 20, 30]);
    // A restart changes nothing.
    let (summary, _) = once(config(dir));
    assert_eq!((summary.stored, summary.failed), (0, 0), "{summary:?}");
}
