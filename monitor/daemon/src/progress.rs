//! What the daemon tells the world: one tracing line per checkpoint, and [`LiveEvent`]s for every consumer that
//! subscribed (the dashboard, the exporters, the headless progress bar).

use std::path::Path;
use std::sync::mpsc::Sender;

use htsr_contracts::{DaemonStatus, LiveEvent, Phase, PhaseCounts};

/// Phase counts as `heavy_tailed=2 random_like=1` (phases with no layer left out).
pub fn phase_summary(counts: &PhaseCounts) -> String {
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

/// The daemon's reporter: log lines through `tracing`, and every event to each subscriber.
pub struct Progress {
    subscribers: Vec<Sender<LiveEvent>>,
    status: DaemonStatus,
    last_sent: Option<DaemonStatus>,
}

impl Progress {
    /// A reporter for the daemon watching `watching`, sending every event to each of `subscribers` (a consumer
    /// that went away is dropped silently: the daemon never waits for its consumers).
    pub fn new(subscribers: Vec<Sender<LiveEvent>>, watching: &Path) -> Self {
        Progress {
            subscribers,
            status: DaemonStatus {
                watching: Some(watching.display().to_string()),
                ..DaemonStatus::default()
            },
            last_sent: None,
        }
    }

    fn send(&mut self, event: LiveEvent) {
        match self.subscribers.len() {
            0 => {}
            1 => {
                if self.subscribers[0].send(event).is_err() {
                    self.subscribers.clear();
                }
            }
            _ => self.subscribers.retain(|tx| tx.send(event.clone()).is_ok()),
        }
    }

    /// Logs and announces that the analysis of (run, step) at `path` started.
    pub fn analyzing(&mut self, run: &str, step: u64, path: &Path) {
        tracing::debug!(run, step, path = %path.display(), "analyzing");
        self.send(LiveEvent::Analyzing {
            run: run.to_string(),
            step,
            path: path.display().to_string(),
        });
    }

    /// Counts a stored checkpoint, logs its one line (layers, failures, reused layers, seconds, phases) and announces
    /// it.
    #[allow(clippy::too_many_arguments)]
    pub fn stored(
        &mut self,
        run: &str,
        step: u64,
        layers: usize,
        failed_layers: usize,
        reused: usize,
        seconds: f64,
        phase_counts: htsr_contracts::PhaseCounts,
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

    /// Counts a failed checkpoint, logs why and announces it.
    pub fn failed(&mut self, run: &str, step: u64, path: &Path, reason: &str) {
        self.status.failed += 1;
        tracing::warn!(
            "failed run={run} step={step} path={}: {reason}",
            path.display()
        );
        self.send(LiveEvent::CheckpointFailed {
            run: run.to_string(),
            path: path.display().to_string(),
            reason: reason.to_string(),
        });
    }

    /// A warning for the log and the dashboard's message area.
    pub fn warn(&mut self, message: String) {
        tracing::warn!("{message}");
        self.send(LiveEvent::Message { text: message });
    }

    /// Updates the queue counts; sends a status event when they changed.
    pub fn set_status(&mut self, queued: usize, in_flight: usize, waiting: usize) {
        self.status.queued = queued;
        self.status.in_flight = in_flight;
        self.status.waiting = waiting;
        if self.last_sent.as_ref() != Some(&self.status) {
            self.last_sent = Some(self.status.clone());
            self.send(LiveEvent::Status(self.status.clone()));
        }
    }

    /// The watched directory as shown to the user.
    pub fn watching(&self) -> Option<String> {
        self.status.watching.clone()
    }
}
