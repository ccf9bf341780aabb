//! The Burn and Candle examples, checkpointed by their hooks while the real daemon watches with its dashboard in
//! a real terminal: every checkpoint is stored once and complete, and each layer's row shows the phase stored for
//! it. (That their files analyze exactly as the tch hook's for the same weights is tested in
//! `burn-hook/tests/parity.rs` and `candle-hook/tests/parity.rs`, against the reference that
//! `tch-hook/tests/parity.rs` holds to the tch hook.)

use std::time::Duration;

use htsr_contracts::model::CheckpointStatus;
use htsr_e2e::{binary, checkpoint_files, shell_line, train_example, Tmux};

const STEPS: u64 = 60;
const EVERY: u64 = 20;

fn trained_and_watched(program: &str, run: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let tmux = Tmux::start(&shell_line(&binary("htsr-watch"), &[&root]), 110, 32);
    tmux.wait_for_text(&["Waiting for checkpoints"], Duration::from_secs(30));

    let out = train_example(program, dir.path(), run, STEPS, EVERY, &[]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("test accuracy"), "{program} finished: {log}");
    let files = checkpoint_files(&dir.path().join(run));
    assert_eq!(files.len(), (STEPS / EVERY) as usize, "{files:?}");

    let last = format!("step {STEPS}");
    let screen = tmux.wait_for_text(
        &[&format!("run {run}"), &last, "fc1", "fc2", "fc3"],
        Duration::from_secs(120),
    );
    tmux.quit_and_check_restored(Duration::from_secs(20));

    let store = htsr_storage::Store::open_existing(dir.path().join(".htsr")).unwrap();
    let records = store.checkpoints(run).unwrap();
    let steps: Vec<u64> = records.iter().map(|r| r.step).collect();
    assert_eq!(steps, vec![20, 40, 60], "each checkpoint stored once");
    for record in &records {
        assert_eq!(record.status, CheckpointStatus::Complete, "{record:?}");
        assert_eq!(record.layer_count, 3, "fc1, fc2, fc3: {record:?}");
        assert_eq!(
            record.metadata.get("htsr.run").map(String::as_str),
            Some(run)
        );
        assert!(record.metadata.contains_key("htsr.loss"), "{record:?}");
    }
    for report in store.layers_at(run, STEPS).unwrap() {
        let phase = report.phase().expect("every layer of the MLP has a phase");
        let row = screen
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == report.name))
            .unwrap_or_else(|| panic!("no row for {}:\n{screen}", report.name));
        assert!(
            row.contains(phase.as_str()),
            "{}: {phase} not in its row {row:?}",
            report.name
        );
    }
}

#[test]
fn burn_training_is_watched_live_and_stored_once_per_checkpoint() {
    trained_and_watched("burn-mlp", "burn");
}

#[test]
fn candle_training_is_watched_live_and_stored_once_per_checkpoint() {
    trained_and_watched("candle-mlp", "candle");
}
