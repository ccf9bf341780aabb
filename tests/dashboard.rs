//! The real `htsr-watch DIR` dashboard in a real terminal (tmux): it starts on an empty directory, a checkpoint
//! written by the hook appears with its layers and phases, every view draws, it survives a resize to 80x24,
//! `q` quits with exit code 0, and the terminal is back in cooked mode.

use std::time::Duration;

use htsr_e2e::{binary, shell_line, train_mlp, Tmux};

#[test]
fn live_dashboard_shows_new_checkpoints_and_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let tmux = Tmux::start(&shell_line(&binary("htsr-watch"), &[&root]), 110, 32);
    tmux.wait_for_text(&["Waiting for checkpoints"], Duration::from_secs(30));

    // Two checkpoints land while the dashboard runs.
    train_mlp(dir.path(), "live", 40, 20);
    let layers = tmux.wait_for_text(
        &["run live", "step 40", "fc1", "fc2", "fc3"],
        Duration::from_secs(60),
    );
    assert!(layers.contains("Layers"), "{layers}");

    tmux.keys(&["Tab"]);
    tmux.wait_for_text(&["Phase map", "fc1"], Duration::from_secs(10));
    tmux.keys(&["Tab"]);
    tmux.wait_for_text(&["ESD"], Duration::from_secs(10));
    tmux.keys(&["Tab"]);
    tmux.wait_for_text(&["Runs", "live"], Duration::from_secs(10));
    tmux.keys(&["?"]);
    tmux.wait_for_text(&["keys"], Duration::from_secs(10));
    tmux.keys(&["Escape", "1"]);

    tmux.resize(80, 24);
    tmux.wait_for_text(&["fc1", "step 40"], Duration::from_secs(10));

    let screen = tmux.quit_and_check_restored(Duration::from_secs(20));
    assert!(
        !screen.contains("Phase map"),
        "the alternate screen is gone:\n{screen}"
    );
    // Each layer's row showed the phase the store holds for it at the newest checkpoint (its name, in the row
    // of that layer, not merely somewhere on the screen).
    let store = htsr_storage::Store::open_existing(dir.path().join(".htsr")).unwrap();
    for report in store.layers_at("live", 40).unwrap() {
        let phase = report.phase().expect("every layer of the MLP has a phase");
        let row = layers
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == report.name))
            .unwrap_or_else(|| panic!("no row for {}:\n{layers}", report.name));
        assert!(
            row.contains(phase.as_str()),
            "{}: {phase} not in its row {row:?}",
            report.name
        );
    }
}
