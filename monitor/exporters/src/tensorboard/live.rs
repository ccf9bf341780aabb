//! The live exporter: a thread that follows the daemon's events into TensorBoard files.

use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

use htsr_contracts::LiveEvent;

use super::TensorBoardExporter;
use crate::warn::WarnOnce;

/// Runs `exporter` live on its own thread: first it catches up with everything the store holds, then it writes
/// each checkpoint the daemon reports stored ([`LiveEvent::CheckpointStored`]), until `events` disconnects (the
/// daemon stopped); then it flushes and ends. Failures are logged once per cause and never stop it: after one,
/// the next stored checkpoint makes it catch up with everything again, so nothing is lost while the disk was
/// full.
pub fn spawn_live(
    mut exporter: TensorBoardExporter,
    events: Receiver<LiveEvent>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("htsr-tensorboard".into())
        .spawn(move || {
            let mut warned = WarnOnce::new("tensorboard");
            let mut behind = catch_up(&mut exporter, &mut warned);
            while let Ok(event) = events.recv() {
                let LiveEvent::CheckpointStored { run, step, .. } = event else {
                    continue;
                };
                if behind {
                    behind = catch_up(&mut exporter, &mut warned);
                    continue;
                }
                match exporter.export_checkpoint(&run, step) {
                    Ok(s) if s.written > 0 => tracing::debug!(
                        "tensorboard: exported run={run} step={step} ({} points) to {}",
                        s.points,
                        exporter.run_dir(&run).display()
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        warned.warn(&e.cause(), &e);
                        behind = true;
                    }
                }
            }
            if let Err(e) = exporter.flush() {
                warned.warn(&e.cause(), &e);
            }
        })
}

/// Writes everything the LOGDIR lacks; returns whether the exporter is still behind (the attempt failed, and
/// was reported unless its cause was reported before).
fn catch_up(exporter: &mut TensorBoardExporter, warned: &mut WarnOnce) -> bool {
    match exporter.export_all(None) {
        Ok(s) => {
            tracing::info!(
                "tensorboard: caught up in {}: {} checkpoints written, {} already there",
                exporter.logdir().display(),
                s.written,
                s.present
            );
            false
        }
        Err(e) => {
            warned.warn(&e.cause(), &e);
            true
        }
    }
}
