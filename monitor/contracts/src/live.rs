//! What the daemon tells its consumers (the dashboard, the exporters, the headless progress bar, and every viewer
//! attached to its socket) while it works. Sent over `std::sync::mpsc` channels in-process and as JSON over the
//! socket; consumers re-read the store when a checkpoint is stored. Paths are carried as the text shown to the user
//! (`Path::display`), so that every event can be written as JSON whatever bytes a file name holds.

use serde::{Deserialize, Serialize};

/// One thing that happened in the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum LiveEvent {
    /// Analysis of a checkpoint started.
    Analyzing {
        /// The run the checkpoint belongs to.
        run: String,
        /// The checkpoint's training step.
        step: u64,
        /// The checkpoint's path as shown to the user.
        path: String,
    },
    /// A checkpoint's results were committed to the store (all layers, one batch).
    CheckpointStored {
        /// The run the checkpoint belongs to.
        run: String,
        /// The checkpoint's training step.
        step: u64,
        /// Layer reports stored for the checkpoint.
        layers: usize,
        /// Wall-clock seconds the checkpoint's analysis took.
        seconds: f64,
        /// Layers per phase, indexed like [`crate::Phase::ALL`].
        phase_counts: crate::PhaseCounts,
    },
    /// A checkpoint could not be analyzed; it is stored as failed with this reason.
    CheckpointFailed {
        /// The run the checkpoint belongs to.
        run: String,
        /// The checkpoint's path as shown to the user.
        path: String,
        /// Why it could not be analyzed, in words.
        reason: String,
    },
    /// The state of the work queue.
    Status(DaemonStatus),
    /// A line for the dashboard's log/alert area (warnings such as "permission denied on ...").
    Message {
        /// The line.
        text: String,
    },
}

/// The daemon's queue and progress, for the dashboard's header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    pub watching: Option<String>,
}
