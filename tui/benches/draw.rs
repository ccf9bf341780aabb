//! One frame of each view for 500 layers x 2000 checkpoints (target: under 16 ms a frame).
//!
//! The state is built in memory, as `state::load` would leave it after reading such a store: drawing is what
//! is measured here, not sled. Run: `cargo bench -p htsr-tui --bench draw`.

use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use htsr_contracts::Phase;
use htsr_storage::{fixtures, PhaseGrid, RunSummary, TrajectoryPoint};
use htsr_tui::state::{layers, DetailModel, History, OverlayModel, RunModel};
use htsr_tui::{layout, view, App, DashboardOptions, Mode, View};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;

const LAYERS: usize = 500;
const CHECKPOINTS: u64 = 2000;
const W: u16 = 200;
const H: u16 = 60;

fn app() -> App {
    let mut app = App::new(DashboardOptions {
        title: "/bench".into(),
        initial_run: None,
        mode: Mode::Live,
    });
    let (_, latest) = fixtures::checkpoint("bench", CHECKPOINTS * 10, LAYERS);
    let (_, prev) = fixtures::checkpoint("bench", CHECKPOINTS * 10 - 10, LAYERS);
    let rows = layers::rows(&latest, &prev);
    let mut histories = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let mut h = History::new();
        for k in 0..CHECKPOINTS {
            h.push(k * 10, Some(3.0 + ((i as u64 + k) % 17) as f64 * 0.1));
        }
        histories.insert(r.name.clone(), h);
    }
    let body = layout::screen(Rect::new(0, 0, W, H)).body;
    let columns = layout::grid_columns(body);
    let picked = htsr_api::downsample_indices(CHECKPOINTS as usize, Some(columns));
    let grid = PhaseGrid {
        layers: rows.iter().map(|r| r.name.clone()).collect(),
        steps: picked.iter().map(|&i| i as u64 * 10).collect(),
        cells: (0..LAYERS)
            .map(|l| {
                picked
                    .iter()
                    .map(|&i| Some(Phase::ALL[(l + i / 300) % 6]))
                    .collect()
            })
            .collect(),
        total_checkpoints: CHECKPOINTS as usize,
    };
    let name = rows[0].name.clone();
    let points: Vec<TrajectoryPoint> = (0..CHECKPOINTS)
        .map(|k| TrajectoryPoint::from_report(k * 10, &fixtures::layer_report(&name, k)))
        .collect();
    let report = latest[0].clone();
    app.run = Some("bench".into());
    app.model = Some(RunModel {
        run: "bench".into(),
        latest_step: CHECKPOINTS * 10,
        prev_step: Some(CHECKPOINTS * 10 - 10),
        checkpoints: CHECKPOINTS as usize,
        rows,
    });
    app.histories = histories;
    app.selected_layer = Some(name.clone());
    app.refilter();
    app.alerts = htsr_tui::state::alerts::alerts(&app.model.as_ref().unwrap().rows, &grid);
    app.grid = grid;
    app.grid_columns = columns;
    app.detail = Some(DetailModel {
        run: "bench".into(),
        layer: name.clone(),
        points,
        report: Some((CHECKPOINTS * 10, Some(report))),
        losses: (0..CHECKPOINTS)
            .map(|k| ((k * 10) as f64, 2.0 / (1.0 + k as f64)))
            .collect(),
    });
    let runs: Vec<String> = (0..4).map(|i| format!("bs{}", 32 << i)).collect();
    app.runs = runs
        .iter()
        .map(|r| RunSummary {
            run: r.clone(),
            last_step: CHECKPOINTS * 10,
            checkpoints: CHECKPOINTS as usize,
            mean_alpha: Some(3.5),
            phase_counts: [100, 100, 100, 100, 50, 50, 0],
            layers: LAYERS,
            last_stored_at: 0.0,
        })
        .collect();
    app.overlay = Some(OverlayModel {
        layer: name,
        series: runs
            .iter()
            .enumerate()
            .map(|(j, r)| {
                (
                    r.clone(),
                    (0..400)
                        .map(|k| (k as f64 * 50.0, 4.0 - k as f64 * 0.004 + j as f64 * 0.3))
                        .collect(),
                )
            })
            .collect(),
    });
    app.dirty = Default::default();
    app
}

fn draw(c: &mut Criterion) {
    let mut app = app();
    let mut group = c.benchmark_group("draw_500_layers_2000_checkpoints_200x60");
    for v in View::TABS {
        app.view = v;
        let mut terminal = Terminal::new(TestBackend::new(W, H)).unwrap();
        group.bench_function(format!("{v:?}"), |b| {
            b.iter(|| {
                // A fresh buffer each time, so that every frame is drawn and diffed in full.
                terminal.clear().unwrap();
                terminal.draw(|f| view::draw(f, &app)).unwrap();
            })
        });
    }
    group.finish();
}

/// What a stored checkpoint costs the UI thread before the next frame: re-reading the newest two checkpoints'
/// 500 reports, the phase grid and the histories on screen, from a real sled store.
fn reload(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = htsr_storage::Store::open(dir.path().join("store"))
        .unwrap()
        .0;
    for k in 0..20u64 {
        let (record, layers) = fixtures::checkpoint("bench", k * 10, LAYERS);
        store.write_checkpoint(&record, &layers, &[]).unwrap();
    }
    let mut app = App::new(DashboardOptions {
        title: "/bench".into(),
        initial_run: None,
        mode: Mode::Live,
    });
    htsr_tui::state::load::prepare(&mut app, &store, W, H);
    let mut step = 190u64;
    let mut group = c.benchmark_group("reload_500_layers_200x60");
    group.sample_size(20);
    // Live: a new checkpoint was stored (written in the untimed setup); the UI re-reads what it shows.
    group.bench_function("new_checkpoint", |b| {
        b.iter_batched(
            || {
                step += 10;
                let (record, layers) = fixtures::checkpoint("bench", step, LAYERS);
                store.write_checkpoint(&record, &layers, &[]).unwrap();
                step
            },
            |step| {
                app.apply(htsr_contracts::LiveEvent::CheckpointStored {
                    run: "bench".into(),
                    step,
                    layers: LAYERS,
                    seconds: 1.0,
                    phase_counts: [0; htsr_contracts::Phase::COUNT],
                });
                htsr_tui::state::load::prepare(&mut app, &store, W, H);
            },
            BatchSize::PerIteration,
        )
    });
    // Switching to the run (or resuming after a pause): nothing held, everything read.
    group.bench_function("cold", |b| {
        b.iter(|| {
            let mut app = App::new(DashboardOptions {
                title: "/bench".into(),
                initial_run: None,
                mode: Mode::Live,
            });
            htsr_tui::state::load::prepare(&mut app, &store, W, H);
        })
    });
    group.finish();
}

criterion_group!(benches, draw, reload);
criterion_main!(benches);
