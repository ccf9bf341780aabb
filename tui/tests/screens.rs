//! Snapshots of every view on ratatui's TestBackend, from real sled stores with known contents, at a roomy
//! 100x30 and at the 80x24 minimum.

mod common;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use htsr_tui::{render_app, render_to_string, App, DashboardOptions, Mode, View};

fn opts(mode: Mode) -> DashboardOptions {
    DashboardOptions {
        title: "/data/ckpts".into(),
        initial_run: Some("bs32".into()),
        mode,
    }
}

fn key(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn keys(app: &mut App, s: &str) {
    s.chars().for_each(|c| key(app, KeyCode::Char(c)));
}

#[test]
fn empty_store_says_it_is_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(&dir);
    let live = render_to_string(&store, opts(Mode::Live), 80, 24);
    assert!(
        live.contains("Waiting for checkpoints in /data/ckpts"),
        "{live}"
    );
    insta::assert_snapshot!("empty_live_80x24", live);
    let browse = render_to_string(&store, opts(Mode::Browse), 80, 24);
    assert!(browse.contains("No runs stored in /data/ckpts"));
    insta::assert_snapshot!("empty_browse_80x24", browse);
}

#[test]
fn layers_view_shows_failed_and_skipped_layers_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    for (w, h) in [(100, 30), (80, 24)] {
        let mut app = App::new(opts(Mode::Live));
        let screen = render_app(&mut app, &store, w, h);
        assert!(
            screen.contains("run bs32 · step 1200 · 12 checkpoints · 6 layers"),
            "{screen}"
        );
        assert!(
            screen.contains("1 layer over-trained (alpha < 2)"),
            "{screen}"
        );
        assert!(screen.contains("features.6"), "{screen}");
        assert!(screen.contains("classifier.4.bias"));
        insta::assert_snapshot!(format!("layers_{w}x{h}"), screen);
    }
}

#[test]
fn layers_view_at_a_wide_terminal_shows_every_column() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    let mut app = App::new(opts(Mode::Live));
    let screen = render_app(&mut app, &store, 140, 24);
    for col in [
        "shape", "alpha", "history", "Δ", "phase", "D", "spikes", "softrank", "warning",
    ] {
        assert!(screen.contains(col), "column {col} missing:\n{screen}");
    }
    assert!(
        screen.contains("classifier.1 left heavy_tailed at step 900"),
        "{screen}"
    );
    assert!(
        screen.contains("failed: non-finite weights (NaN)"),
        "{screen}"
    );
    insta::assert_snapshot!("layers_140x24", screen);
}

#[test]
fn phase_map_of_a_short_run_shows_every_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    for (w, h) in [(100, 30), (80, 24)] {
        let mut app = App::new(opts(Mode::Live));
        key(&mut app, KeyCode::Tab);
        assert_eq!(app.view, View::PhaseMap);
        let screen = render_app(&mut app, &store, w, h);
        assert!(screen.contains("12 checkpoints"), "{screen}");
        insta::assert_snapshot!(format!("phase_map_{w}x{h}"), screen);
    }
}

#[test]
fn phase_map_of_a_long_run_is_downsampled_to_the_width() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::long_store(&dir, 3000);
    let mut app = App::new(DashboardOptions {
        title: "/data/long".into(),
        initial_run: None,
        mode: Mode::Browse,
    });
    key(&mut app, KeyCode::Tab);
    let screen = render_app(&mut app, &store, 100, 30);
    // 100 columns less the 25-column label and a gap: 74 checkpoints drawn, the newest (step 29990) last.
    assert_eq!(app.grid.steps.len(), 74);
    assert_eq!(app.grid.total_checkpoints, 3000);
    assert_eq!(*app.grid.steps.last().unwrap(), 29_990);
    assert!(screen.contains("74 of 3000 checkpoints"), "{screen}");
    insta::assert_snapshot!("phase_map_long_100x30", screen);
    // Narrower terminal: fewer columns, still ending at the newest checkpoint.
    let screen = render_app(&mut app, &store, 80, 24);
    assert_eq!(app.grid.steps.len(), 80 - 20 - 1);
    assert_eq!(*app.grid.steps.last().unwrap(), 29_990);
    insta::assert_snapshot!("phase_map_long_80x24", screen);
}

#[test]
fn layer_detail_draws_alpha_phase_strip_and_esd() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    for (w, h) in [(100, 30), (80, 24)] {
        let mut app = App::new(opts(Mode::Live));
        render_app(&mut app, &store, w, h);
        key(&mut app, KeyCode::Down); // features.3
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.view, View::Detail);
        let screen = render_app(&mut app, &store, w, h);
        assert!(screen.contains("features.3"), "{screen}");
        assert!(screen.contains("step 1200 [12/12] (newest)"), "{screen}");
        assert!(
            screen.contains("ESD step 1200 · log-log · power law α 1.58"),
            "{screen}"
        );
        insta::assert_snapshot!(format!("detail_{w}x{h}"), screen);
    }
}

#[test]
fn layer_detail_moves_through_checkpoints_and_toggles_smoothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    let mut app = App::new(opts(Mode::Live));
    render_app(&mut app, &store, 100, 30);
    key(&mut app, KeyCode::Enter);
    render_app(&mut app, &store, 100, 30);
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::Char('s'));
    let screen = render_app(&mut app, &store, 100, 30);
    assert!(screen.contains("step 1000 [10/12] ·"), "{screen}");
    assert!(screen.contains("ESD step 1000"), "{screen}");
    assert!(screen.contains("smoothing off"), "{screen}");
    assert_eq!(
        app.detail.as_ref().unwrap().report.as_ref().unwrap().0,
        1000
    );
    insta::assert_snapshot!("detail_step_1000_raw_100x30", screen);
}

#[test]
fn runs_view_lists_runs_and_overlays_a_layer() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    let mut app = App::new(opts(Mode::Live));
    render_app(&mut app, &store, 100, 30);
    key(&mut app, KeyCode::Char('r'));
    assert_eq!(app.view, View::Runs);
    let screen = render_app(&mut app, &store, 100, 30);
    assert!(
        screen.contains("bs256") && screen.contains("bs32"),
        "{screen}"
    );
    assert!(
        screen.contains("alpha of features.0 across runs"),
        "{screen}"
    );
    let overlay = app.overlay.as_ref().unwrap();
    assert_eq!(overlay.series.len(), 2);
    assert_eq!(overlay.series[0].1.len(), 12);
    insta::assert_snapshot!("runs_100x30", screen);
    insta::assert_snapshot!("runs_80x24", render_app(&mut app, &store, 80, 24));
}

#[test]
fn help_and_filter_screens() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    let mut app = App::new(opts(Mode::Live));
    key(&mut app, KeyCode::Char('?'));
    let screen = render_app(&mut app, &store, 80, 24);
    assert!(screen.contains("filter layers by name"), "{screen}");
    insta::assert_snapshot!("help_80x24", screen);
    key(&mut app, KeyCode::Esc);
    assert!(!app.help);
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, "classifier");
    let screen = render_app(&mut app, &store, 80, 24);
    assert!(screen.contains("/ filter: classifier"), "{screen}");
    assert!(!screen.contains("features.0"), "{screen}");
    insta::assert_snapshot!("filter_80x24", screen);
}

#[test]
fn tiny_terminals_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sweep_store(&dir);
    for view in View::TABS {
        let mut app = App::new(opts(Mode::Live));
        app.view = view;
        for (w, h) in [(20, 5), (40, 10), (1, 1), (80, 24)] {
            let s = render_app(&mut app, &store, w, h);
            assert_eq!(s.lines().count(), h as usize);
        }
    }
}

#[test]
fn layer_detail_draws_the_training_loss_beside_alpha() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(&dir);
    for k in 0..10u64 {
        let layers = common::cnn_layers(k, 0.0);
        let mut record = htsr_storage::fixtures::checkpoint_record("bs32", (k + 1) * 100, &layers);
        record
            .metadata
            .insert("htsr.loss".into(), format!("{}", 2.0 / (k + 1) as f64));
        store.write_checkpoint(&record, &layers, &[]).unwrap();
    }
    let mut app = App::new(opts(Mode::Live));
    render_app(&mut app, &store, 100, 30);
    key(&mut app, KeyCode::Enter);
    let screen = render_app(&mut app, &store, 100, 30);
    // The loss's own range is in its legend entry: from the last checkpoint's 0.2 to the first's 2.0.
    assert!(screen.contains("loss 0.200..2.000"), "{screen}");
    assert_eq!(app.detail.as_ref().unwrap().losses.len(), 10);
}
