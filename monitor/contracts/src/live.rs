//! What the daemon tells its consumers (the dashboard, the exporters, the headless progress bar) while it works.
//! Sent over `std::sync::mpsc` channels; consumers re-read the store when a checkpoint is stored.

use std::path::PathBuf;

/// One thing that happened in the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// Analysis of a checkpoint started.
    Analyzing {
        run: String,
        step: u64,
        path: PathBuf,
    },
    /// A checkpoint's results were committed to the store (all layers, one batch).
    CheckpointStored {
        run: String,
        step: u64,
        layers: usize,
        seconds: f64,
        /// Layers per phase, indexed like [`crate::Phase::ALL`].
        phase_counts: crate::PhaseCounts,
    },
    /// A checkpoint could not be analyzed; it is stored as failed with this reason.
    CheckpointFailed {
        run: String,
        path: PathBuf,
        reason: String,
    },
    /// The state of the work queue.
    Status(DaemonStatus),
    /// A line for the dashboard's log/alert area (warnings such as "permission denied on ...").
    Message(String),
}

/// The daemon's queue and progress, for the dashboard's header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DaemonStatus {
    /// Checkpoints waiting to be analyzed.
    pub queued: usize,
    /// Checkpoints being analyzed now.
    pub in_flight: usize,
    /// Files seen but not ready yet (still being written, or waiting for a second identical look).
    pub waiting: usize,
    /// Checkpoints stored since the daemon started.
    pub done: u64,
    /// Checkpoints that failed since the daemon started.
    pub failed: u64,
    /// The directory being watched.
    pub watching: Option<PathBuf>,
}
