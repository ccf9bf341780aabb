//! The daemon's loop, on the calling thread: events and rescans mark parts of the tree dirty; dirty parts are
//! scanned into candidates; due candidates are looked at (readiness); ready ones become jobs, queued by
//! (run, step) and handed to the worker pool; outcomes come back over the same channel as the events.
//!
//! All the filesystem watching is advisory: a full scan at start and every `rescan` means a lost event (or a
//! filesystem that sends none) costs latency, never data. Everything is decided by looking at the files.
//!
//! Idle means asleep: only events that can mean new or changed checkpoint data wake the loop (never an open or
//! a read, which the daemon's own looks cause, never anything under the store or its log), and with nothing
//! pending the loop sleeps until the next rescan, which costs one `stat` per settled file. Signals win: a
//! shutdown stops taking work, gives the workers a moment to drop what they hold, closes the store for writing and
//! returns, whatever the workers are still computing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use htsr_contracts::{CheckpointStatus, LayerStatus};
use htsr_storage::{ErrorKind, Store};

use crate::config::{Summary, WatchConfig};
use crate::frozen::FrozenMemo;
use crate::identity::look;
use crate::progress::Progress;
use crate::queue::WorkQueue;
use crate::ranks::RankGroup;
use crate::readiness::{Tracker, Verdict};
use crate::retry::Retry;
use crate::scan::{Layout, Scope};
use crate::shutdown::Shutdown;
use crate::watcher::{wrap_outcome, Msg};
use crate::worker::{Outcome, Pool, WorkerContext};

/// Longest sleep with nothing due (only in `--once` mode, where there is no rescan; messages wake it earlier).
const IDLE_WAIT: Duration = Duration::from_secs(3600);
/// Messages handled per turn of the loop before it does its own work again.
const MAX_MESSAGES_PER_TURN: usize = 4096;

/// The daemon's state, on the thread that runs it.
pub(crate) struct Daemon {
    pub cfg: WatchConfig,
    pub store: Store,
    pub layout: Layout,
    pub tracker: Tracker,
    pub queue: WorkQueue,
    pub progress: Progress,
    pub summary: Summary,
    /// Path -> run of each job in the pool.
    pub in_flight: HashMap<PathBuf, String>,
    pub dirty: BTreeSet<Scope>,
    /// The highest step assigned per run since this daemon started, for checkpoints whose step is only "order
    /// seen".
    pub assigned: HashMap<String, u64>,
    /// Paths already warned about (permission denied on every rescan would flood the log).
    pub warned: HashSet<PathBuf>,
    /// Checkpoints whose results could not be stored (a full disk), retried with backoff without re-analysis.
    pub retries: HashMap<PathBuf, Retry>,
    /// Store failures already warned about, by kind, until a write succeeds again: one warning per cause.
    pub warned_causes: HashSet<ErrorKind>,
    /// Rank files of multi-rank spectra runs waiting for the rest of their step, by the name they share.
    pub groups: HashMap<PathBuf, RankGroup>,
}

/// Runs the daemon until `--once` has processed everything or `shutdown` is triggered. Returns what it did.
pub fn run(
    cfg: WatchConfig,
    store: Store,
    progress: Progress,
    shutdown: Shutdown,
) -> anyhow::Result<Summary> {
    let (tx, rx) = channel::<Msg>();
    {
        let tx = tx.clone();
        shutdown.on_trigger(move || {
            let _ = tx.send(Msg::Wake);
        });
    }
    let (mut daemon, pool) = Daemon::start(cfg, store, progress, &shutdown, tx.clone())?;
    let _watcher = if daemon.cfg.once {
        None
    } else {
        daemon.start_watcher(tx.clone())
    };
    // The loop ends when every sender is gone: the pool's and the watcher's.
    drop(tx);
    tracing::info!(
        "watching {} (store {}){}",
        daemon.cfg.root.display(),
        daemon.store.path().display(),
        if daemon.cfg.once { ", once" } else { "" }
    );
    daemon.run_loop(&rx, &pool, &shutdown);
    daemon.stop(&rx, pool);
    Ok(daemon.summary)
}

impl Daemon {
    /// The daemon for `cfg` (its root made canonical) and its worker pool, which reports on `tx`.
    fn start(
        mut cfg: WatchConfig,
        store: Store,
        progress: Progress,
        shutdown: &Shutdown,
        tx: std::sync::mpsc::Sender<Msg>,
    ) -> anyhow::Result<(Daemon, Pool)> {
        cfg.root = cfg
            .root
            .canonicalize()
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg.root.display()))?;
        let store_dir = cfg
            .store_dir
            .canonicalize()
            .unwrap_or(cfg.store_dir.clone());
        let mut ignored = vec![store_dir];
        ignored.extend(
            cfg.ignore
                .iter()
                .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone())),
        );
        let layout = Layout::new(cfg.root.clone(), ignored);
        let mut opts = cfg.analyze.clone();
        // Reading stops between blocks on shutdown: a long analysis never holds the daemon up.
        opts.cancel = Some(shutdown.flag());
        let ctx = Arc::new(WorkerContext {
            store: store.clone(),
            opts,
            frozen: FrozenMemo::new(cfg.root.clone()),
            cancel: shutdown.flag(),
        });
        let pool = Pool::start(cfg.jobs, ctx, tx, wrap_outcome)?;
        let daemon = Daemon {
            tracker: Tracker::new(cfg.readiness.clone()),
            cfg,
            store,
            layout,
            queue: WorkQueue::default(),
            progress,
            summary: Summary::default(),
            in_flight: HashMap::new(),
            dirty: BTreeSet::new(),
            assigned: HashMap::new(),
            warned: HashSet::new(),
            retries: HashMap::new(),
            warned_causes: HashSet::new(),
            groups: HashMap::new(),
        };
        Ok((daemon, pool))
    }

    /// The loop: scan what is dirty, look at what is due, hand ready jobs to the pool, then sleep until something
    /// is due or a message (an event, a finished job, a signal) arrives. Returns on shutdown, or in `--once` mode
    /// when nothing is left.
    fn run_loop(&mut self, rx: &Receiver<Msg>, pool: &Pool, shutdown: &Shutdown) {
        self.dirty.insert(Scope::All);
        let mut next_rescan = Instant::now() + self.cfg.rescan;
        loop {
            if shutdown.is_requested() {
                return;
            }
            let now = Instant::now();
            if !self.cfg.once && now >= next_rescan {
                self.dirty.insert(Scope::All);
                next_rescan = now + self.cfg.rescan;
            }
            self.scan_dirty(now);
            self.look_due(Instant::now());
            self.groups_due(Instant::now());
            self.retry_due(Instant::now());
            self.dispatch(pool);
            self.report_status();
            if self.cfg.once && self.nothing_left() {
                return;
            }
            let wake = self.next_wake(next_rescan);
            match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Take what else is queued, but not forever: under an event storm the loop must still reach its own
            // work and see a shutdown.
            for msg in rx.try_iter().take(MAX_MESSAGES_PER_TURN) {
                self.handle(msg);
                if shutdown.is_requested() {
                    break;
                }
            }
        }
    }

    /// Whether `--once` is done: nothing pending, queued, grouped or being analyzed.
    fn nothing_left(&self) -> bool {
        self.tracker.is_idle()
            && self.groups.is_empty()
            && self.queue.is_empty()
            && self.in_flight.is_empty()
    }

    /// When the loop must wake with no message: the next pending look, retry, group give-up or rescan.
    fn next_wake(&self, next_rescan: Instant) -> Instant {
        let mut wake = Instant::now() + IDLE_WAIT;
        if let Some(due) = self.tracker.next_due() {
            wake = wake.min(due);
        }
        if let Some(due) = self.retries.values().map(|r| r.due).min() {
            wake = wake.min(due);
        }
        if let Some(since) = self.groups.values().map(|g| g.since).min() {
            wake = wake.min(since + self.cfg.readiness.give_up);
        }
        if !self.cfg.once {
            wake = wake.min(next_rescan);
        }
        wake
    }

    /// Shutdown: the workers see the cancel flag between blocks and tensors and return without writing. One that
    /// is inside an eigensolver cannot be interrupted: after the grace it is left behind (the process is exiting),
    /// and the store is closed first so that it can never start a write.
    fn stop(&mut self, rx: &Receiver<Msg>, pool: Pool) {
        if !self.in_flight.is_empty() {
            tracing::info!(
                "stopping: waiting up to {:.1} s for {} analysis in progress (nothing half-done is stored)",
                self.cfg.shutdown_grace.as_secs_f64(),
                self.in_flight.len()
            );
        }
        let deadline = Instant::now() + self.cfg.shutdown_grace;
        while !self.in_flight.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left) {
                Ok(msg @ Msg::Done(_)) => self.handle(msg),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if let Err(e) = self.store.close() {
            self.progress.warn(format!(
                "{}: closing the store: {e}",
                self.store.path().display()
            ));
        }
        if self.in_flight.is_empty() {
            pool.join();
        } else {
            for path in self.in_flight.keys() {
                tracing::info!(path = %path.display(), "left unfinished (nothing stored; analyzed again next start)");
            }
            pool.abandon();
        }
        if !self.retries.is_empty() {
            tracing::warn!(
                "{} checkpoint(s) analyzed but not stored (the store kept failing); analyzed again next start",
                self.retries.len()
            );
        }
        let s = &self.summary;
        tracing::info!(
            "stopped: {} stored, {} already stored, {} failed, {} vanished",
            s.stored,
            s.skipped,
            s.failed,
            s.gone
        );
    }
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Fs(paths) => {
                for p in paths {
                    if let Some(scope) = self.layout.scope_of(&p) {
                        tracing::trace!(path = %p.display(), "a change marks its part of the tree for a scan");
                        self.dirty.insert(scope);
                    }
                }
            }
            Msg::RescanAll => {
                self.dirty.insert(Scope::All);
            }
            Msg::WatchError(e) => self
                .progress
                .warn(format!("watching {}: {e}", self.cfg.root.display())),
            Msg::Done(outcome) => self.finished(*outcome),
            Msg::Wake => {}
        }
    }

    fn warn_once(&mut self, path: &Path, message: String) {
        if self.warned.insert(path.to_path_buf()) {
            self.progress.warn(message);
        }
    }

    fn scan_dirty(&mut self, now: Instant) {
        let dirty = std::mem::take(&mut self.dirty);
        let scopes: Vec<Scope> = if dirty.contains(&Scope::All) {
            vec![Scope::All]
        } else {
            dirty.into_iter().collect()
        };
        for scope in scopes {
            if let Scope::Entry(top) = &scope {
                if !top.exists() {
                    // A checkpoint or a run directory removed: forget what was pending under it.
                    self.tracker.forget_under(top);
                    continue;
                }
            }
            let (candidates, errors) = self.layout.scan(&scope);
            for (path, e) in errors {
                self.warn_once(&path, format!("{}: {e}", path.display()));
            }
            for candidate in candidates {
                let stat = crate::identity::stat(&candidate.path, candidate.sharded).ok();
                self.tracker.offer(candidate, stat, now);
            }
        }
    }

    fn look_due(&mut self, now: Instant) {
        for candidate in self.tracker.due(now) {
            let result = look(&candidate.path, candidate.sharded);
            if let Ok(l) = &result {
                if self.weights_beside(&candidate, l) {
                    continue;
                }
                // A rank file is stored only as part of its group: the group's identity is checked when it forms.
                if candidate.rank.is_none() && self.already_stored(&candidate, l) {
                    continue;
                }
            }
            match self.tracker.observe(&candidate.path, result, now) {
                Verdict::Wait => {}
                Verdict::Ready(candidate, _) if candidate.rank.is_some() => {
                    self.rank_file_ready(candidate, now)
                }
                Verdict::Ready(candidate, look) => self.make_job(candidate, look, None),
                Verdict::Broken(candidate, look, reason) => {
                    self.store_broken(&candidate, &look, reason, Default::default())
                }
                Verdict::Gone(candidate) => {
                    tracing::debug!(path = %candidate.path.display(), "vanished before it was read");
                    self.summary.gone += 1;
                }
                Verdict::IoError {
                    candidate,
                    reason,
                    first,
                    give_up,
                } => {
                    if first {
                        self.progress
                            .warn(format!("{}: {reason} (retrying)", candidate.path.display()));
                    }
                    if give_up && self.cfg.once {
                        self.tracker.drop_pending(&candidate.path);
                        self.summary.failed += 1;
                        self.progress
                            .warn(format!("{}: {reason}: giving up", candidate.path.display()));
                    }
                }
            }
        }
    }

    fn dispatch(&mut self, pool: &Pool) {
        while self.in_flight.len() < self.cfg.jobs.max(1) {
            let busy: HashSet<String> = self.in_flight.values().cloned().collect();
            let Some(job) = self.queue.pop_next(&busy) else {
                break;
            };
            self.progress
                .analyzing(&job.run, job.step, &job.candidate.path);
            self.in_flight
                .insert(job.candidate.path.clone(), job.run.clone());
            pool.submit(job);
        }
    }

    fn finished(&mut self, outcome: Outcome) {
        let path = outcome.job().candidate.path.clone();
        self.in_flight.remove(&path);
        match outcome {
            Outcome::Stored {
                job,
                layers,
                failed_layers,
                reused,
                seconds,
                phase_counts,
            } => {
                self.summary.stored += 1;
                if failed_layers > 0 {
                    self.summary.failed += 1;
                }
                self.progress.stored(
                    &job.run,
                    job.step,
                    layers,
                    failed_layers,
                    reused,
                    seconds,
                    phase_counts,
                );
            }
            Outcome::StoredFailed { job, reason } => {
                self.summary.failed += 1;
                self.progress.failed(&job.run, job.step, &path, &reason);
            }
            Outcome::Changed { job } => {
                tracing::debug!(path = %path.display(), "changed while queued; looking again");
                self.tracker.unsettle(&path);
                self.tracker.offer(job.candidate, None, Instant::now());
            }
            Outcome::Gone { .. } => {
                tracing::debug!(path = %path.display(), "vanished before it was read");
                self.tracker.unsettle(&path);
                self.summary.gone += 1;
            }
            Outcome::Cancelled { .. } => {
                tracing::info!(path = %path.display(), "dropped unfinished (nothing written)");
            }
            Outcome::Rejected { job, reason } => {
                // Remembered as done for this file version: a rescan does not retry it until it changes.
                self.summary.failed += 1;
                self.progress.failed(&job.run, job.step, &path, &reason);
            }
            Outcome::Error { job, reason } => {
                self.tracker.unsettle(&path);
                if self.cfg.once {
                    self.summary.failed += 1;
                    self.progress.failed(&job.run, job.step, &path, &reason);
                } else {
                    self.warn_once(
                        &path,
                        format!(
                            "{}: {reason} (will retry at the next rescan)",
                            path.display()
                        ),
                    );
                }
            }
            Outcome::StoreFailed { job, write, error } => {
                let layers_failed = write
                    .reports
                    .iter()
                    .filter(|r| r.status == LayerStatus::Failed)
                    .count();
                let stored_failed = (write.record.status == CheckpointStatus::Failed)
                    .then(|| write.record.errors.join("; "));
                self.schedule_retry(job, write, error, stored_failed, layers_failed, 0);
            }
        }
    }

    fn report_status(&mut self) {
        let (queued, in_flight, waiting) = (
            self.queue.len(),
            self.in_flight.len(),
            self.tracker.pending_len(),
        );
        self.progress.set_status(queued, in_flight, waiting);
    }
}
