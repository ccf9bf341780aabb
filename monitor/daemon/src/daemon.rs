//! The daemon's loop, on the calling thread: events and rescans mark parts of the tree dirty; dirty parts are
//! scanned into candidates; due candidates are looked at (readiness); ready ones become jobs, queued by
//! (run, step) and handed to the worker pool; outcomes come back over the same channel as the events.
//!
//! All the filesystem watching is advisory: a full scan at start and every `rescan` means a lost event (or a
//! filesystem that sends none) costs latency, never data. Everything is decided by looking at the files.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use htsr_contracts::{CheckpointStatus, LayerStatus};
use htsr_storage::Store;
use notify::{RecursiveMode, Watcher};

use htsr_engine::analyze::AnalyzeOptions;
use htsr_engine::checkpoint::{Checkpoint, CheckpointError};

use crate::frozen::FrozenMemo;
use crate::identity::{look, Look, Validity};
use crate::progress::Progress;
use crate::queue::{Job, WorkQueue};
use crate::readiness::{ReadinessConfig, Tracker, Verdict};
use crate::scan::{Candidate, Layout, Scope};
use crate::shutdown::Shutdown;
use crate::worker::{store_failed, Outcome, Pool, WorkerContext};
use htsr_contracts::naming;

/// Everything `htsr-watch DIR` was asked to do.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The watched directory (made canonical by [`run`]).
    pub root: PathBuf,
    /// The store's directory; never scanned when it lies inside `root`.
    pub store_dir: PathBuf,
    /// Process what exists, then return.
    pub once: bool,
    /// Use notify's polling watcher with this interval instead of the platform's events.
    pub poll: Option<Duration>,
    /// Full rescan interval.
    pub rescan: Duration,
    /// Analysis workers (checkpoints of different runs in parallel).
    pub jobs: usize,
    pub readiness: ReadinessConfig,
    pub analyze: AnalyzeOptions,
}

impl WatchConfig {
    pub fn new(root: PathBuf, store_dir: PathBuf) -> Self {
        WatchConfig {
            root,
            store_dir,
            once: false,
            poll: None,
            rescan: Duration::from_secs(10),
            jobs: 1,
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
    pub fn all_ok(&self) -> bool {
        self.failed == 0
    }
}

enum Msg {
    Fs(Vec<PathBuf>),
    RescanAll,
    WatchError(String),
    Done(Box<Outcome>),
    Wake,
}

fn wrap_outcome(o: Outcome) -> Msg {
    Msg::Done(Box::new(o))
}

struct Daemon {
    cfg: WatchConfig,
    store: Store,
    layout: Layout,
    tracker: Tracker,
    queue: WorkQueue,
    progress: Progress,
    summary: Summary,
    /// Path -> run of each job in the pool.
    in_flight: HashMap<PathBuf, String>,
    dirty: BTreeSet<Scope>,
    /// The highest step assigned per run in this session, for checkpoints whose step is only "order seen".
    assigned: HashMap<String, u64>,
    /// Paths already warned about (permission denied on every rescan would flood the log).
    warned: HashSet<PathBuf>,
}

/// Runs the daemon until `--once` has processed everything or `shutdown` is triggered. Returns what it did.
pub fn run(
    mut cfg: WatchConfig,
    store: Store,
    progress: Progress,
    shutdown: Shutdown,
) -> anyhow::Result<Summary> {
    cfg.root = cfg
        .root
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("{}: {e}", cfg.root.display()))?;
    let store_dir = cfg
        .store_dir
        .canonicalize()
        .unwrap_or(cfg.store_dir.clone());
    let layout = Layout::new(cfg.root.clone(), vec![store_dir]);
    let (tx, rx) = channel::<Msg>();
    {
        let tx = tx.clone();
        shutdown.on_trigger(move || {
            let _ = tx.send(Msg::Wake);
        });
    }
    let ctx = Arc::new(WorkerContext {
        store: store.clone(),
        opts: cfg.analyze.clone(),
        frozen: FrozenMemo::new(cfg.root.clone()),
        cancel: shutdown.flag(),
    });
    let pool = Pool::start(cfg.jobs, ctx, tx.clone(), wrap_outcome)?;
    let mut daemon = Daemon {
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
    };
    let _watcher = if daemon.cfg.once {
        None
    } else {
        daemon.start_watcher(tx.clone())
    };
    drop(tx);
    tracing::info!(
        "watching {} (store {}){}",
        daemon.cfg.root.display(),
        daemon.store.path().display(),
        if daemon.cfg.once { ", once" } else { "" }
    );

    daemon.dirty.insert(Scope::All);
    let mut next_rescan = Instant::now() + daemon.cfg.rescan;
    loop {
        if shutdown.is_requested() {
            break;
        }
        let now = Instant::now();
        if !daemon.cfg.once && now >= next_rescan {
            daemon.dirty.insert(Scope::All);
            next_rescan = now + daemon.cfg.rescan;
        }
        daemon.scan_dirty(now);
        daemon.look_due(Instant::now());
        daemon.dispatch(&pool);
        daemon.report_status();
        if daemon.cfg.once
            && daemon.tracker.is_idle()
            && daemon.queue.is_empty()
            && daemon.in_flight.is_empty()
        {
            break;
        }
        let now = Instant::now();
        let mut wake = now + Duration::from_secs(1);
        if let Some(due) = daemon.tracker.next_due() {
            wake = wake.min(due);
        }
        if !daemon.cfg.once {
            wake = wake.min(next_rescan);
        }
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(msg) => daemon.handle(msg),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(msg) = rx.try_recv() {
            daemon.handle(msg);
        }
    }

    // Shutdown: the workers see the cancel flag between tensors and return without writing.
    while !daemon.in_flight.is_empty() {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(msg @ Msg::Done(_)) => daemon.handle(msg),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    pool.join();
    if let Err(e) = daemon.store.flush() {
        daemon.progress.warn(format!(
            "{}: flushing the store: {e}",
            daemon.store.path().display()
        ));
    }
    let s = &daemon.summary;
    tracing::info!(
        "stopped: {} stored, {} already stored, {} failed, {} vanished",
        s.stored,
        s.skipped,
        s.failed,
        s.gone
    );
    Ok(daemon.summary)
}

impl Daemon {
    fn start_watcher(&mut self, tx: Sender<Msg>) -> Option<Box<dyn Watcher + Send>> {
        let handler = move |res: notify::Result<notify::Event>| {
            let msg = match res {
                Ok(ev) if ev.need_rescan() => Msg::RescanAll,
                Ok(ev) => Msg::Fs(ev.paths),
                Err(e) => Msg::WatchError(e.to_string()),
            };
            let _ = tx.send(msg);
        };
        let watcher: notify::Result<Box<dyn Watcher + Send>> = match self.cfg.poll {
            Some(interval) => notify::PollWatcher::new(
                handler,
                notify::Config::default().with_poll_interval(interval),
            )
            .map(|w| Box::new(w) as Box<dyn Watcher + Send>),
            None => {
                notify::recommended_watcher(handler).map(|w| Box::new(w) as Box<dyn Watcher + Send>)
            }
        };
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                self.progress.warn(format!(
                    "{}: cannot watch for changes ({e}); relying on the rescan every {} s",
                    self.cfg.root.display(),
                    self.cfg.rescan.as_secs_f64()
                ));
                return None;
            }
        };
        if let Err(e) = watcher.watch(&self.cfg.root, RecursiveMode::Recursive) {
            self.progress.warn(format!(
                "{}: cannot watch for changes ({e}); relying on the rescan every {} s",
                self.cfg.root.display(),
                self.cfg.rescan.as_secs_f64()
            ));
            return None;
        }
        Some(watcher)
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Fs(paths) => {
                for p in paths {
                    if let Some(scope) = self.layout.scope_of(&p) {
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
                if self.already_stored(&candidate, l) {
                    continue;
                }
            }
            match self.tracker.observe(&candidate.path, result, now) {
                Verdict::Wait => {}
                Verdict::Ready(candidate, look) => self.make_job(candidate, look),
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

    /// True (and the path settled) when this exact file is in the store already.
    fn already_stored(&mut self, candidate: &Candidate, l: &Look) -> bool {
        if matches!(l.validity, Validity::Incomplete { .. }) {
            return false;
        }
        let identity = l.identity(&candidate.rel);
        match self.store.find_by_identity(&identity) {
            Ok(Some(record)) => {
                self.tracker.settle(&candidate.path, l.size, l.mtime_ns);
                self.summary.skipped += 1;
                if self.cfg.once && self.record_failed(&record) {
                    self.summary.failed += 1;
                }
                tracing::debug!(path = %candidate.path.display(), run = %record.run, step = record.step, "already stored");
                true
            }
            Ok(None) => false,
            Err(e) => {
                self.progress.warn(format!(
                    "{}: reading the store: {e}",
                    self.store.path().display()
                ));
                false
            }
        }
    }

    fn record_failed(&self, record: &htsr_contracts::CheckpointRecord) -> bool {
        record.status == CheckpointStatus::Failed
            || self
                .store
                .layers_at(&record.run, record.step)
                .map(|ls| ls.iter().any(|l| l.status == LayerStatus::Failed))
                .unwrap_or(true)
    }

    /// The step of a checkpoint: `htsr.step`, else the last number in its name, else the order seen.
    fn step_for(
        &mut self,
        run: &str,
        candidate: &Candidate,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> u64 {
        let from_meta = metadata
            .get(naming::keys::STEP)
            .and_then(|s| naming::step_from_metadata(s));
        let name = candidate
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let step = match from_meta.or_else(|| naming::step_from_name(&name)) {
            Some(step) => step,
            None => {
                let stored = self.store.latest_step(run).ok().flatten();
                let base = stored.max(self.assigned.get(run).copied());
                base.map_or(0, |b| b + 1)
            }
        };
        let slot = self.assigned.entry(run.to_string()).or_insert(step);
        *slot = (*slot).max(step);
        step
    }

    fn make_job(&mut self, candidate: Candidate, look: Look) {
        let metadata = match Checkpoint::open(&candidate.path) {
            Ok(cp) => cp.metadata().clone(),
            Err(e) if e.is_not_found() => {
                self.tracker.unsettle(&candidate.path);
                self.summary.gone += 1;
                return;
            }
            Err(CheckpointError::Io { source, .. }) => {
                self.tracker.unsettle(&candidate.path);
                self.warn_once(
                    &candidate.path,
                    format!("{}: {source}", candidate.path.display()),
                );
                if self.cfg.once {
                    self.summary.failed += 1;
                }
                return;
            }
            Err(e) => {
                let reason = match &e {
                    CheckpointError::Invalid { reason, .. }
                    | CheckpointError::Index { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                return self.store_broken(&candidate, &look, reason, Default::default());
            }
        };
        let run = metadata
            .get(naming::keys::RUN)
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| candidate.dir_run.clone());
        let step = self.step_for(&run, &candidate, &metadata);
        let identity = look.identity(&candidate.rel);
        self.queue.push(Job {
            candidate,
            identity,
            run,
            step,
            metadata,
        });
    }

    fn store_broken(
        &mut self,
        candidate: &Candidate,
        look: &Look,
        reason: String,
        metadata: std::collections::BTreeMap<String, String>,
    ) {
        let run = candidate.dir_run.clone();
        let step = self.step_for(&run, candidate, &metadata);
        self.summary.failed += 1;
        self.progress.failed(&run, step, &candidate.path, &reason);
        if let Err(e) = store_failed(
            &self.store,
            &run,
            step,
            look.identity(&candidate.rel),
            metadata,
            &reason,
        ) {
            self.tracker.unsettle(&candidate.path);
            self.progress.warn(format!(
                "{}: storing the failed record of {}: {e}",
                self.store.path().display(),
                candidate.path.display()
            ));
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
                    self.progress.warn(format!(
                        "{}: {reason} (will retry at the next rescan)",
                        path.display()
                    ));
                }
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
