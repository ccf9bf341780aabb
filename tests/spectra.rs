//! Spectra mode end to end: the minimal example trains with the hook writing eigenvalues instead of weights (in
//! one process, or split over two ranks), the real daemon stores them, and the store holds what it holds for the
//! same training in weights mode.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use htsr_contracts::{CheckpointSource, LayerStatus};
use htsr_e2e::{binary, run_ok, train_mlp_with};
use htsr_storage::Store;

/// step -> layer -> (alpha, status) of a run.
fn alphas(store: &Store, run: &str) -> BTreeMap<u64, BTreeMap<String, (Option<f64>, LayerStatus)>> {
    store
        .steps(run)
        .unwrap()
        .into_iter()
        .map(|step| {
            let layers = store
                .layers_at(run, step)
                .unwrap()
                .into_iter()
                .map(|l| (l.name.clone(), (l.alpha(), l.status)))
                .collect();
            (step, layers)
        })
        .collect()
}

fn watch_once(dir: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(binary("htsr-watch"))
        .arg(dir)
        .args(["--headless", "--once"])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn spectra_mode_and_its_ranks_store_what_weights_mode_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (steps, every) = (40, 20);
    // The same seeded training four times: weights, spectra, spectra split over two ranks (two processes).
    train_mlp_with(dir, "weights", steps, every, &[]);
    train_mlp_with(dir, "spectra", steps, every, &[("HTSR_MODE", "spectra")]);
    for rank in ["0", "1"] {
        train_mlp_with(
            dir,
            "ranks",
            steps,
            every,
            &[
                ("HTSR_MODE", "spectra"),
                ("RANK", rank),
                ("WORLD_SIZE", "2"),
            ],
        );
    }
    let out = watch_once(dir, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = Store::open_existing(dir.join(".htsr")).unwrap();
    let weights = alphas(&store, "weights");
    assert_eq!(weights.keys().copied().collect::<Vec<_>>(), [20, 40]);
    assert_eq!(weights[&40].len(), 3, "fc1, fc2, fc3");
    for run in ["spectra", "ranks"] {
        let other = alphas(&store, run);
        assert_eq!(
            other.keys().collect::<Vec<_>>(),
            weights.keys().collect::<Vec<_>>(),
            "{run}"
        );
        for (step, layers) in &weights {
            for (name, (alpha, status)) in layers {
                let (a, s) = &other[step][name];
                assert_eq!(s, status, "{run} step {step} {name}");
                let (a, b) = (alpha.unwrap(), a.unwrap());
                assert!(
                    (a - b).abs() <= 1e-6 * a,
                    "{run} step {step} {name}: alpha {a} vs {b}"
                );
            }
        }
        // The latest checkpoint keeps its eigenvalues: equal to the weights mode's to 1e-9 of lambda_max.
        for name in weights[&40].keys() {
            let w = store.raw_eigenvalues("weights", 40, name).unwrap().unwrap();
            let s = store.raw_eigenvalues(run, 40, name).unwrap().unwrap();
            let max = w.last().copied().unwrap();
            assert_eq!(w.len(), s.len());
            for (x, y) in w.iter().zip(&s) {
                assert!((x - y).abs() <= 1e-9 * max, "{run} {name}: {x} vs {y}");
            }
        }
        let record = store.checkpoint(run, 40).unwrap().unwrap();
        let ranks = if run == "ranks" { 2 } else { 1 };
        assert_eq!(
            record.source,
            CheckpointSource::Spectra {
                ranks,
                missing: vec![]
            }
        );
    }
    // The two ranks' files of a step are one checkpoint.
    assert_eq!(store.checkpoints("ranks").unwrap().len(), 2);
}

#[test]
fn a_rank_that_never_writes_leaves_its_layers_listed_as_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    train_mlp_with(
        dir,
        "half",
        20,
        20,
        &[("HTSR_MODE", "spectra"), ("RANK", "0"), ("WORLD_SIZE", "2")],
    );
    let out = watch_once(dir, &["--give-up", "1"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("did not write their spectra"), "{log}");
    let store = Store::open_existing(dir.join(".htsr")).unwrap();
    let record = store.checkpoint("half", 20).unwrap().unwrap();
    assert_eq!(
        record.source,
        CheckpointSource::Spectra {
            ranks: 2,
            missing: vec![1]
        }
    );
    let layers = store.layers_at("half", 20).unwrap();
    assert_eq!(layers.len(), 3, "every layer is listed");
    let missing: Vec<_> = layers
        .iter()
        .filter(|l| l.status == LayerStatus::Missing)
        .collect();
    assert!(!missing.is_empty(), "{layers:?}");
    for l in &missing {
        assert!(
            l.reason.as_deref().unwrap().contains("rank 1 of 2"),
            "{:?}",
            l.reason
        );
    }
    assert!(layers.iter().any(|l| l.status == LayerStatus::Success));
    // The missing rank arrives late: the step is stored again, whole.
    drop(store);
    train_mlp_with(
        dir,
        "half",
        20,
        20,
        &[("HTSR_MODE", "spectra"), ("RANK", "1"), ("WORLD_SIZE", "2")],
    );
    let out = watch_once(dir, &["--give-up", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open_existing(dir.join(".htsr")).unwrap();
    let layers = store.layers_at("half", 20).unwrap();
    assert!(
        layers.iter().all(|l| l.status == LayerStatus::Success),
        "{layers:?}"
    );
    // And `analyze` reads a spectra file directly.
    let out = run_ok(
        Command::new(binary("htsr-watch"))
            .arg("analyze")
            .arg(dir.join("half/step-000000020.rank-0-of-2.esd.safetensors")),
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("analyzed"), "{table}");
}
