//! What the daemon tells the world: one tracing line per checkpoint, a progress bar over the backlog (when
//! stderr is a terminal and there is no dashboard), and [`LiveEvent`]s for the dashboard.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

use htsr_storage::Phase;
use htsr_tui::{DaemonStatus, LiveEvent};
use indicatif::{ProgressBar, ProgressStyle};

/// Phase counts as `heavy_tailed=2 random_like=1` (phases with no layer left out).
pub fn phase_summary(counts: &[u32; 7]) -> String {
    let parts: Vec<String> = Phase::ALL
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(p, n)| format!("{}={n}", p.as_str()))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(" ")
    }
}

/// The daemon's reporter.
pub struct Progress {
    bar: Option<ProgressBar>,
    events: Option<Sender<LiveEvent>>,
    status: DaemonStatus,
    last_sent: Option<DaemonStatus>,
}

impl Progress {
    /// `bar`: the progress bar to drive (the binary makes it, so that log lines can be printed around it).
    pub fn new(
        bar: Option<ProgressBar>,
        events: Option<Sender<LiveEvent>>,
        watching: &Path,
    ) -> Self {
        if let Some(bar) = &bar {
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {pos}/{len} checkpoints [{wide_bar}] {per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Progress {
            bar,
            events,
            status: DaemonStatus {
                watching: Some(watching.to_path_buf()),
                ..DaemonStatus::default()
            },
            last_sent: None,
        }
    }

    /// The progress bar for `htsr-watch`'s log writer: a bar for the backlog when stderr is a terminal.
    pub fn make_bar(enabled: bool) -> Option<ProgressBar> {
        enabled.then(|| ProgressBar::new(0))
    }

    fn send(&self, event: LiveEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    pub fn analyzing(&self, run: &str, step: u64, path: &Path) {
        tracing::debug!(run, step, path = %path.display(), "analyzing");
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{run}@{step}"));
        }
        self.send(LiveEvent::Analyzing {
            run: run.to_string(),
            step,
            path: path.to_path_buf(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub fn stored(
        &mut self,
        run: &str,
        step: u64,
        layers: usize,
        failed_layers: usize,
        reused: usize,
        seconds: f64,
        phase_counts: [u32; 7],
    ) {
        self.status.done += 1;
        tracing::info!(
            "stored run={run} step={step} layers={layers} failed_layers={failed_layers} reused={reused} \
             seconds={seconds:.3} phases: {}",
            phase_summary(&phase_counts)
        );
        self.send(LiveEvent::CheckpointStored {
            run: run.to_string(),
            step,
            layers,
            seconds,
            phase_counts,
        });
    }

    pub fn failed(&mut self, run: &str, step: u64, path: &Path, reason: &str) {
        self.status.failed += 1;
        tracing::warn!(
            "failed run={run} step={step} path={}: {reason}",
            path.display()
        );
        self.send(LiveEvent::CheckpointFailed {
            run: run.to_string(),
            path: path.to_path_buf(),
            reason: reason.to_string(),
        });
    }

    /// A warning for the log and the dashboard's message area.
    pub fn warn(&self, message: String) {
        tracing::warn!("{message}");
        self.send(LiveEvent::Message(message));
    }

    /// Updates the queue counts; sends a status event when they changed.
    pub fn set_status(&mut self, queued: usize, in_flight: usize, waiting: usize) {
        self.status.queued = queued;
        self.status.in_flight = in_flight;
        if let Some(bar) = &self.bar {
            let done = self.status.done + self.status.failed;
            bar.set_length(done + (queued + in_flight + waiting) as u64);
            bar.set_position(done);
        }
        if self.last_sent.as_ref() != Some(&self.status) {
            self.last_sent = Some(self.status.clone());
            self.send(LiveEvent::Status(self.status.clone()));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn watching(&self) -> Option<PathBuf> {
        self.status.watching.clone()
    }
}
