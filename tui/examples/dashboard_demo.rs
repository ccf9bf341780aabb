//! The dashboard on a synthetic store that grows by one checkpoint a second, for trying it by hand or in tmux:
//! `cargo run -p htsr-tui --example dashboard_demo [LAYERS]`. Quit with q.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use htsr_contracts::{DaemonStatus, LiveEvent};
use htsr_storage::{fixtures, Store};
use htsr_tui::{run_dashboard, DashboardOptions, Mode};

fn main() -> std::io::Result<()> {
    let layers: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open(dir.path().join("store")).map_err(std::io::Error::other)?;
    let (tx, rx) = mpsc::channel();
    let writer = store.clone();
    thread::spawn(move || {
        for k in 0u64.. {
            let step = k * 100;
            let (record, reports) = fixtures::checkpoint("demo", step, layers);
            let _ = tx.send(LiveEvent::Analyzing {
                run: "demo".into(),
                step,
                path: format!("demo/step-{step}.safetensors"),
            });
            if writer.write_checkpoint(&record, &reports, &[]).is_err() {
                break;
            }
            let stored = LiveEvent::CheckpointStored {
                run: "demo".into(),
                step,
                layers,
                seconds: 0.5,
                phase_counts: record.phase_counts,
            };
            let status = LiveEvent::Status(DaemonStatus {
                queued: 0,
                in_flight: 0,
                done: k + 1,
                failed: 0,
                watching: None,
                ..DaemonStatus::default()
            });
            if tx.send(stored).is_err() || tx.send(status).is_err() {
                break;
            }
            thread::sleep(Duration::from_secs(1));
        }
    });
    let opts = DashboardOptions {
        title: "demo (synthetic checkpoints)".into(),
        initial_run: None,
        mode: Mode::Live,
    };
    run_dashboard(&store, Some(rx), opts)
}
