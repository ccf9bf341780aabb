//! The state on its own: keys, filter, live events, smoothing and bounded memory, on real sled stores.

mod common;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use htsr_contracts::{DaemonStatus, LiveEvent};
use htsr_tui::smoothing::debiased_ema;
use htsr_tui::state::{history, load};
use htsr_tui::{render_app, App, DashboardOptions, Mode, View};

fn app(initial: Option<&str>) -> App {
    App::new(DashboardOptions {
        title: "/data/ckpts".into(),
        initial_run: initial.map(str::to_string),
        mode: Mode::Live,
    })
}

fn key(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn stored(run: &str, step: u64) -> LiveEvent {
    LiveEvent::CheckpointStored {
        run: run.into(),
        step,
        layers: 6,
        seconds: 0.1,
        phase_counts: [0; htsr_contracts::Phase::COUNT],
    }
}

#[test]
fn keys_move_the_selection_and_keep_it_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    let mut a = app(Some("bs32"));
    load::prepare(&mut a, &store, 100, 30);
    assert_eq!(a.selected_layer.as_deref(), Some("features.0"));
    key(&mut a, KeyCode::Char('j'));
    key(&mut a, KeyCode::Down);
    assert_eq!(a.selected_layer.as_deref(), Some("classifier.1"));
    key(&mut a, KeyCode::Char('k'));
    assert_eq!(a.selected_layer.as_deref(), Some("features.3"));
    key(&mut a, KeyCode::Char('G'));
    assert_eq!(a.selected_layer.as_deref(), Some("features.6"));
    key(&mut a, KeyCode::Down); // stays on the last row
    assert_eq!(a.layers_cursor.selected, 5);
    key(&mut a, KeyCode::Char('g'));
    assert_eq!(a.layers_cursor.selected, 0);
    a.handle_event(Event::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 0,
        row: 0,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(a.selected_layer.as_deref(), Some("features.3"));
    // Switching runs keeps the same layer selected: comparing a layer across a sweep.
    key(&mut a, KeyCode::Char('r'));
    key(&mut a, KeyCode::Char('g'));
    key(&mut a, KeyCode::Enter);
    load::prepare(&mut a, &store, 100, 30);
    assert_eq!(a.run_name(), Some("bs256"));
    assert_eq!(a.view, View::Layers);
    assert_eq!(a.selected_layer.as_deref(), Some("features.3"));
    assert_eq!(a.layers_cursor.selected, 1);
}

#[test]
fn views_cycle_drill_in_and_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    let mut a = app(None);
    load::prepare(&mut a, &store, 100, 30);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.view, View::PhaseMap);
    a.handle_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(a.view, View::Layers);
    key(&mut a, KeyCode::BackTab);
    assert_eq!(a.view, View::Runs);
    key(&mut a, KeyCode::Char('1'));
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.view, View::Detail);
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.view, View::Layers);
    key(&mut a, KeyCode::Char('?'));
    assert!(a.help);
    key(&mut a, KeyCode::Char('x'));
    assert!(!a.help && !a.quit);
    key(&mut a, KeyCode::Char('q'));
    assert!(a.quit);
    let mut b = app(None);
    b.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(b.quit);
}

#[test]
fn the_filter_narrows_rows_and_esc_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    let mut a = app(None);
    load::prepare(&mut a, &store, 100, 30);
    key(&mut a, KeyCode::Char('/'));
    for c in "FEAT".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    let names: Vec<&str> = a.visible_rows().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["features.0", "features.3", "features.6"]);
    // While typing, q is text, not quit.
    key(&mut a, KeyCode::Char('q'));
    assert!(!a.quit);
    assert_eq!(a.visible_rows().count(), 0);
    key(&mut a, KeyCode::Backspace);
    key(&mut a, KeyCode::Enter);
    assert!(!a.filter_editing);
    assert_eq!(a.visible_rows().count(), 3);
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.visible_rows().count(), 6);
}

#[test]
fn smoothing_matches_tensorboard_debiased_ema() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    let mut a = app(Some("bs32"));
    load::prepare(&mut a, &store, 100, 30);
    key(&mut a, KeyCode::Enter);
    load::prepare(&mut a, &store, 100, 30);
    let d = a.detail.as_ref().unwrap();
    // features.0: alpha = 4.0 - 0.1 k, stored at f32 precision in trajectory points.
    let raw: Vec<f64> = (0..12)
        .map(|k| f64::from((4.0 - 0.1 * k as f64) as f32))
        .collect();
    let mut last = 0.0;
    let want: Vec<f64> = raw
        .iter()
        .enumerate()
        .map(|(i, y)| {
            last = last * 0.6 + 0.4 * y;
            last / (1.0 - 0.6f64.powi(i as i32 + 1))
        })
        .collect();
    let got: Vec<f64> = d.smoothed_series(0.6).iter().map(|p| p.1).collect();
    assert_eq!(got.len(), 12);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-9, "{got:?} vs {want:?}");
    }
    assert_eq!(debiased_ema(&raw, 0.6), got);
    assert!(a.smoothing);
    key(&mut a, KeyCode::Char('s'));
    assert!(!a.smoothing);
}

#[test]
fn live_checkpoints_appear_and_pause_holds_the_picture() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    let mut a = app(Some("bs32"));
    render_app(&mut a, &store, 100, 30);
    let len_before = a.histories["features.0"].len;
    assert_eq!(len_before, 12);

    common::write(&store, "bs32", 1300, &common::cnn_layers(12, 0.0));
    a.apply(LiveEvent::Analyzing {
        run: "bs32".into(),
        step: 1400,
        path: "/data/ckpts/bs32/step-1400.safetensors".into(),
    });
    a.apply(stored("bs32", 1300));
    let screen = render_app(&mut a, &store, 100, 30);
    assert!(screen.contains("step 1300 · 13 checkpoints"), "{screen}");
    assert!(screen.contains("(bs32@1400)"), "{screen}");
    // The sparkline history was extended in place, not re-read.
    assert_eq!(a.histories["features.0"].len, 13);
    assert_eq!(a.grid.steps.last(), Some(&1300));

    key(&mut a, KeyCode::Char('p'));
    common::write(&store, "bs32", 1400, &common::cnn_layers(13, 0.0));
    a.apply(stored("bs32", 1400));
    let screen = render_app(&mut a, &store, 100, 30);
    assert!(
        screen.contains("step 1300") && screen.contains("PAUSED (1 new)"),
        "{screen}"
    );
    key(&mut a, KeyCode::Char('p'));
    let screen = render_app(&mut a, &store, 100, 30);
    assert!(
        screen.contains("step 1400 · 14 checkpoints · 6 layers · live"),
        "{screen}"
    );

    a.apply(LiveEvent::Status(DaemonStatus {
        queued: 3,
        in_flight: 1,
        waiting: 0,
        done: 2,
        failed: 1,
        watching: None,
    }));
    a.apply(LiveEvent::CheckpointFailed {
        run: "bs32".into(),
        path: "/data/ckpts/bs32/step-1500.safetensors".into(),
        reason: "truncated header".into(),
    });
    let screen = render_app(&mut a, &store, 100, 30);
    assert!(
        screen.contains("queue 3 · busy 1 · done 2 · failed 1"),
        "{screen}"
    );
    assert!(screen.contains("truncated header"), "{screen}");
    a.daemon_stopped();
    assert!(render_app(&mut a, &store, 100, 30).contains("daemon stopped"));
}

#[test]
fn a_first_checkpoint_replaces_the_waiting_screen() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(&dir);
    let mut a = app(None);
    assert!(render_app(&mut a, &store, 80, 24).contains("Waiting for checkpoints"));
    common::write(&store, "run-a", 10, &common::cnn_layers(0, 0.0));
    a.apply(stored("run-a", 10));
    let screen = render_app(&mut a, &store, 80, 24);
    assert!(
        screen.contains("run run-a · step 10 · 1 checkpoints"),
        "{screen}"
    );
    assert!(screen.contains("features.0"), "{screen}");
}

#[test]
fn memory_stays_bounded_on_a_long_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::long_store(&dir, 1500);
    let mut a = app(None);
    render_app(&mut a, &store, 120, 40);
    assert_eq!(a.histories.len(), 4);
    for h in a.histories.values() {
        assert_eq!(h.len, 1500);
        assert!(h.values().len() <= history::CAPACITY + 1);
    }
    // The grid holds one column per screen column, not one per checkpoint.
    assert!(a.grid.steps.len() <= 120);
    assert_eq!(a.grid.total_checkpoints, 1500);
    // The detail view holds the selected layer's trajectory only.
    key(&mut a, KeyCode::Enter);
    render_app(&mut a, &store, 120, 40);
    assert_eq!(a.detail.as_ref().unwrap().points.len(), 1500);
    key(&mut a, KeyCode::Down);
    render_app(&mut a, &store, 120, 40);
    assert_eq!(a.detail.as_ref().unwrap().layer, "blocks.1.mlp");
}
