//! What the daemon is asked to do, and what it did.

use std::path::PathBuf;
use std::time::Duration;

use htsr_engine::analyze::AnalyzeOptions;

use crate::readiness::ReadinessConfig;

/// Everything `htsr-watch DIR` was asked to do.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The watched directory (made canonical by [`run`](crate::run)).
    pub root: PathBuf,
    /// The store's directory; never scanned when it lies inside `root`.
    pub store_dir: PathBuf,
    /// Other paths whose changes are never acted on (the daemon's own log file, when it lies inside `root`).
    pub ignore: Vec<PathBuf>,
    /// Process what exists, then return.
    pub once: bool,
    /// Use notify's polling watcher with this interval instead of the platform's events.
    pub poll: Option<Duration>,
    /// Full rescan interval.
    pub rescan: Duration,
    /// Analysis workers (checkpoints of different runs in parallel).
    pub jobs: usize,
    /// On shutdown, how long to wait for the workers to drop what they hold before returning without them.
    pub shutdown_grace: Duration,
    /// Longest wait between retries of a store write that failed (a full disk).
    pub max_retry_backoff: Duration,
    /// When a checkpoint counts as ready to read (stable size, backoff, when to give up).
    pub readiness: ReadinessConfig,
    /// Which tensors are analyzed and how (size limits, eigen method, layer filter, ESD bins).
    pub analyze: AnalyzeOptions,
}

impl WatchConfig {
    /// The defaults for watching `root` with the store in `store_dir`: event-driven, a 10 s rescan, one worker,
    /// 1 s shutdown grace, retries backing off up to 300 s.
    pub fn new(root: PathBuf, store_dir: PathBuf) -> Self {
        WatchConfig {
            root,
            store_dir,
            ignore: Vec::new(),
            once: false,
            poll: None,
            rescan: Duration::from_secs(10),
            jobs: 1,
            shutdown_grace: Duration::from_secs(1),
            max_retry_backoff: Duration::from_secs(300),
            readiness: ReadinessConfig::default(),
            analyze: AnalyzeOptions::default(),
        }
    }
}

/// What a daemon run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Checkpoints analyzed and stored complete.
    pub stored: u64,
    /// Checkpoints skipped because their identity was already stored.
    pub skipped: u64,
    /// Checkpoints that failed (stored as failed, or with a failed layer, or not storable), including already
    /// stored ones met again in `--once` mode.
    pub failed: u64,
    /// Checkpoints that vanished before they could be read.
    pub gone: u64,
}

impl Summary {
    /// True when no checkpoint failed (what `--once` turns into its exit status).
    pub fn all_ok(&self) -> bool {
        self.failed == 0
    }
}
