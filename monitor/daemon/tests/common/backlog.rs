//! A backlog of test checkpoints in two runs, and what the store must hold once it is analyzed: shared by the
//! daemon's in-process tests and the binary's end-to-end tests.

use std::collections::BTreeSet;
use std::path::Path;

use htsr_contracts::{CheckpointStatus, LayerStatus};
use htsr_engine::test_files::{step_name, write_checkpoint, Spec, LAYERS_PER_CHECKPOINT};
use htsr_storage::Store;

/// `per_run` checkpoints in each of `runA` (steps from `htsr.step` metadata, 100 x the number in the name) and
/// `runB` (steps from the names, 10, 20, ...).
pub fn two_run_backlog(dir: &Path, per_run: u64) {
    for i in 1..=per_run {
        // runA: the step comes from `htsr.step` metadata (100 x the number in the name).
        let spec = Spec {
            step: Some(i * 100),
            ..Spec::seed(i)
        };
        write_checkpoint(&dir.join("runA"), &step_name(i), &spec);
        // runB: from the name.
        write_checkpoint(&dir.join("runB"), &step_name(i * 10), &Spec::seed(1000 + i));
    }
}

/// Asserts that `run` holds exactly `steps`, each complete with all its layers (three dense and the skipped bias).
pub fn assert_complete(store: &Store, run: &str, steps: &[u64]) {
    let records = store.checkpoints(run).unwrap();
    let got: Vec<u64> = records.iter().map(|r| r.step).collect();
    assert_eq!(got, steps, "steps of run {run}");
    for r in &records {
        assert_eq!(
            r.status,
            CheckpointStatus::Complete,
            "{run}@{}: {:?}",
            r.step,
            r.errors
        );
        assert_eq!(r.layer_count, LAYERS_PER_CHECKPOINT, "{run}@{}", r.step);
        let layers = store.layers_at(run, r.step).unwrap();
        let names: BTreeSet<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            BTreeSet::from(["fc1", "fc1.bias", "fc2", "fc3"]),
            "{run}@{}",
            r.step
        );
        for l in &layers {
            if l.name == "fc1.bias" {
                assert_eq!(l.status, LayerStatus::Skipped);
            } else {
                assert_eq!(
                    l.status,
                    LayerStatus::Success,
                    "{run}@{} {}: {:?}",
                    r.step,
                    l.name,
                    l.reason
                );
                assert!(l.alpha().is_some_and(|a| a.is_finite()));
            }
        }
    }
}
