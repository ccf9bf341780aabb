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
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use htsr_contracts::{CheckpointStatus, LayerStatus};
use htsr_storage::{ErrorKind, Store};
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};

use htsr_engine::analyze::AnalyzeOptions;

use crate::frozen::FrozenMemo;
use crate::identity::{look, Look, Validity};
use crate::progress::Progress;
use crate::queue::{Job, RankParts, WorkQueue};
use crate::readiness::{ReadinessConfig, Tracker, Verdict};
use crate::scan::{Candidate, Layout, Scope};
use crate::shutdown::Shutdown;
use crate::worker::{failed_record, Outcome, PendingWrite, Pool, WorkerContext};
use htsr_contracts::naming;

/// Everything `htsr-watch DIR` was asked to do.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The watched directory (made canonical by [`run`]).
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
    pub readiness: ReadinessConfig,
    pub analyze: AnalyzeOptions,
}

impl WatchConfig {
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
    pub fn all_ok(&self) -> bool {
        self.failed == 0
    }
}

enum Msg {
    /// Paths an event that may change checkpoint data touched.
    Fs(Vec<PathBuf>),
    RescanAll,
    WatchError(String),
    Done(Box<Outcome>),
    Wake,
}

/// The path a group of rank files stands for: the name they share (`step-N.esd.safetensors`) in their directory.
fn group_path(candidate: &Candidate) -> PathBuf {
    let name = candidate
        .path
        .file_name()
        .map(|n| htsr_contracts::spectra::merged_name(&n.to_string_lossy()))
        .unwrap_or_default();
    candidate.path.with_file_name(name)
}

/// Longest sleep with nothing due (only in `--once` mode, where there is no rescan; messages wake it earlier).
const IDLE_WAIT: Duration = Duration::from_secs(3600);
/// Messages handled per turn of the loop before it does its own work again.
const MAX_MESSAGES_PER_TURN: usize = 4096;
/// First wait before retrying a store write that failed.
const FIRST_RETRY: Duration = Duration::from_secs(1);

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
    /// Checkpoints whose results could not be stored (a full disk), retried with backoff without re-analysis.
    retries: HashMap<PathBuf, Retry>,
    /// Store failures already warned about, by kind, until a write succeeds again: one warning per cause.
    warned_causes: HashSet<ErrorKind>,
    /// Rank files of multi-rank spectra runs waiting for the rest of their step, by the name they share.
    groups: HashMap<PathBuf, RankGroup>,
}

/// The rank files of one step seen so far.
struct RankGroup {
    /// The first rank file's candidate (its run, its directory).
    first: Candidate,
    world: usize,
    /// When the first file was ready: the group gives up waiting for the others `give_up` later.
    since: Instant,
}

/// A store write waiting for its next attempt.
struct Retry {
    job: Job,
    write: Box<PendingWrite>,
    /// Whether the checkpoint's analysis succeeded (a failed record is retried the same way).
    stored_failed: Option<String>,
    attempts: u32,
    due: Instant,
    layers_failed: usize,
}

/// True for events that can mean new or changed checkpoint data: creation, a data write, a close after writing, a
/// rename, a removal. Opens, reads and attribute changes are not (the daemon's own looks cause opens).
fn may_change_data(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        // Unknown kinds (other platforms, rescans) are taken as changes: a lost change costs more than a scan.
        EventKind::Any | EventKind::Other => true,
    }
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
    let mut ignored = vec![store_dir];
    ignored.extend(
        cfg.ignore
            .iter()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone())),
    );
    let layout = Layout::new(cfg.root.clone(), ignored);
    let (tx, rx) = channel::<Msg>();
    {
        let tx = tx.clone();
        shutdown.on_trigger(move || {
            let _ = tx.send(Msg::Wake);
        });
    }
    let mut opts = cfg.analyze.clone();
    // Reading stops between blocks on shutdown: a long analysis never holds the daemon up.
    opts.cancel = Some(shutdown.flag());
    let ctx = Arc::new(WorkerContext {
        store: store.clone(),
        opts,
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
        retries: HashMap::new(),
        warned_causes: HashSet::new(),
        groups: HashMap::new(),
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
        daemon.groups_due(Instant::now());
        daemon.retry_due(Instant::now());
        daemon.dispatch(&pool);
        daemon.report_status();
        if daemon.cfg.once
            && daemon.tracker.is_idle()
            && daemon.groups.is_empty()
            && daemon.queue.is_empty()
            && daemon.in_flight.is_empty()
        {
            break;
        }
        // Sleep until something is due: a pending look, a retry, the rescan. Messages (events, finished jobs,
        // a signal) wake the loop earlier.
        let now = Instant::now();
        let mut wake = now + IDLE_WAIT;
        if let Some(due) = daemon.tracker.next_due() {
            wake = wake.min(due);
        }
        if let Some(due) = daemon.retries.values().map(|r| r.due).min() {
            wake = wake.min(due);
        }
        if let Some(since) = daemon.groups.values().map(|g| g.since).min() {
            wake = wake.min(since + daemon.cfg.readiness.give_up);
        }
        if !daemon.cfg.once {
            wake = wake.min(next_rescan);
        }
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(msg) => daemon.handle(msg),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Take what else is queued, but not forever: under an event storm the loop must still reach its own work
        // and see a shutdown.
        for msg in rx.try_iter().take(MAX_MESSAGES_PER_TURN) {
            daemon.handle(msg);
            if shutdown.is_requested() {
                break;
            }
        }
    }

    // Shutdown: the workers see the cancel flag between blocks and tensors and return without writing. One that
    // is inside an eigensolver cannot be interrupted: after the grace it is left behind (the process is exiting),
    // and the store is closed first so that it can never start a write.
    if !daemon.in_flight.is_empty() {
        tracing::info!(
            "stopping: waiting up to {:.1} s for {} analysis in progress (nothing half-done is stored)",
            daemon.cfg.shutdown_grace.as_secs_f64(),
            daemon.in_flight.len()
        );
    }
    let deadline = Instant::now() + daemon.cfg.shutdown_grace;
    while !daemon.in_flight.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left) {
            Ok(msg @ Msg::Done(_)) => daemon.handle(msg),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if let Err(e) = daemon.store.close() {
        daemon.progress.warn(format!(
            "{}: closing the store: {e}",
            daemon.store.path().display()
        ));
    }
    if daemon.in_flight.is_empty() {
        pool.join();
    } else {
        for path in daemon.in_flight.keys() {
            tracing::info!(path = %path.display(), "left unfinished (nothing stored; analyzed again next start)");
        }
        pool.abandon();
    }
    if !daemon.retries.is_empty() {
        tracing::warn!(
            "{} checkpoint(s) analyzed but not stored (the store kept failing); analyzed again next start",
            daemon.retries.len()
        );
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
        // Runs on notify's thread: events that cannot change checkpoint data are dropped here and never wake the
        // daemon's loop.
        let handler = move |res: notify::Result<notify::Event>| {
            let msg = match res {
                Ok(ev) if ev.need_rescan() => Msg::RescanAll,
                Ok(ev) if may_change_data(&ev.kind) => Msg::Fs(ev.paths),
                Ok(_) => return,
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

    /// A rank file is complete: look at its siblings (the other ranks' files of the same step); once all are
    /// complete the group becomes one job. Looking at the siblings directly (rather than waiting for each to be
    /// ready on its own) also re-forms a group when one file of an already stored step is rewritten.
    fn rank_file_ready(&mut self, candidate: Candidate, now: Instant) {
        let Some((_, world)) = candidate.rank else {
            return;
        };
        let key = group_path(&candidate);
        let group = self.groups.entry(key.clone()).or_insert_with(|| RankGroup {
            first: candidate.clone(),
            world,
            since: now,
        });
        if group.world != world {
            tracing::warn!(path = %candidate.path.display(), "rank files of one step disagree on the number of ranks");
        }
        if let Some(parts) = self.complete_parts(&key) {
            if parts.missing().is_empty() {
                self.make_group_job(key, parts);
            }
        }
    }

    /// The rank files of group `key` that are complete now.
    fn complete_parts(&self, key: &Path) -> Option<RankParts> {
        let group = self.groups.get(key)?;
        let merged = key.file_name()?.to_string_lossy().into_owned();
        let mut files = Vec::new();
        for rank in 0..group.world {
            let path = key.with_file_name(htsr_contracts::spectra::rank_file_name(
                &merged,
                rank,
                group.world,
            ));
            if let Ok(l) = look(&path, false) {
                if matches!(l.validity, Validity::Complete { .. }) {
                    files.push((rank, path));
                }
            }
        }
        Some(RankParts {
            world: group.world,
            files,
        })
    }

    /// Groups still incomplete after the give-up time become jobs with the files that arrived: their missing
    /// layers are stored as missing, never dropped silently.
    fn groups_due(&mut self, now: Instant) {
        let give_up = self.cfg.readiness.give_up;
        let due: Vec<PathBuf> = self
            .groups
            .iter()
            .filter(|(_, g)| g.since + give_up <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            match self.complete_parts(&key) {
                Some(parts) if !parts.files.is_empty() => {
                    tracing::warn!(
                        "{}: ranks {:?} of {} did not write their spectra within {} s; storing the step without \
                         their layers (listed as missing)",
                        key.display(),
                        parts.missing(),
                        parts.world,
                        give_up.as_secs()
                    );
                    self.make_group_job(key, parts);
                }
                _ => {
                    self.groups.remove(&key);
                }
            }
        }
    }

    /// One job for the rank files `parts` of group `key`: its identity combines the files' identities, so a later
    /// change (a missing rank arriving) is a new version of the same checkpoint.
    fn make_group_job(&mut self, key: PathBuf, parts: RankParts) {
        let Some(group) = self.groups.remove(&key) else {
            return;
        };
        let mut hasher = blake3::Hasher::new();
        let (mut size, mut mtime) = (0u64, 0i128);
        let mut metadata = std::collections::BTreeMap::new();
        for (rank, path) in &parts.files {
            let Ok(l) = look(path, false) else {
                // Gone meanwhile: the next scan forms the group again.
                return;
            };
            let Validity::Complete { header_hash } = &l.validity else {
                return;
            };
            size += l.size;
            mtime = mtime.max(l.mtime_ns);
            hasher.update(&(*rank as u64).to_le_bytes());
            hasher.update(header_hash.as_bytes());
            for (k, v) in l.metadata {
                metadata.entry(k).or_insert(v);
            }
        }
        hasher.update(&(parts.world as u64).to_le_bytes());
        let candidate = Candidate {
            rel: self.layout.rel(&key),
            path: key,
            dir_run: group.first.dir_run.clone(),
            sharded: false,
            rank: None,
        };
        let look = Look {
            size,
            mtime_ns: mtime,
            validity: Validity::Complete {
                header_hash: hasher.finalize().to_hex().to_string(),
            },
            metadata,
        };
        if self.already_stored(&candidate, &look) {
            return;
        }
        self.make_job(candidate, look, Some(parts));
    }

    fn make_job(&mut self, candidate: Candidate, look: Look, parts: Option<RankParts>) {
        if self.retries.remove(&candidate.path).is_some() {
            tracing::debug!(path = %candidate.path.display(), "a new version supersedes results waiting to be stored");
        }
        // The look read the header(s): their metadata says the run and the step, nothing is opened again here.
        let metadata = look.metadata.clone();
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
            parts,
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
        let identity = look.identity(&candidate.rel);
        let write = failed_record(&run, step, identity.clone(), metadata.clone(), &reason);
        if let Err(e) = write.write(&self.store) {
            let job = Job {
                candidate: candidate.clone(),
                identity,
                run,
                step,
                metadata,
                parts: None,
            };
            self.schedule_retry(job, Box::new(write), e, Some(reason), 0, 0);
        }
    }

    /// Keeps results the store refused for a later attempt, with exponential backoff, and says so once per cause.
    fn schedule_retry(
        &mut self,
        job: Job,
        write: Box<PendingWrite>,
        error: htsr_storage::Error,
        stored_failed: Option<String>,
        layers_failed: usize,
        attempts: u32,
    ) {
        let path = job.candidate.path.clone();
        if self.cfg.once {
            // `--once` does not wait minutes for a disk to empty: it reports and exits non-zero.
            self.summary.failed += 1;
            self.progress.warn(format!(
                "{}: storing {}@{}: {error}",
                self.store.path().display(),
                job.run,
                job.step
            ));
            return;
        }
        let backoff = FIRST_RETRY
            .saturating_mul(1u32 << attempts.min(16))
            .min(self.cfg.max_retry_backoff);
        if self.warned_causes.insert(error.kind()) {
            self.progress.warn(format!(
                "{}: cannot store results ({error}); keeping them and retrying with backoff (up to {} s) until it \
                 works",
                self.store.path().display(),
                self.cfg.max_retry_backoff.as_secs()
            ));
        } else {
            tracing::debug!(run = %job.run, step = job.step, %error, attempts, "store write failed again");
        }
        self.retries.insert(
            path,
            Retry {
                job,
                write,
                stored_failed,
                attempts,
                due: Instant::now() + backoff,
                layers_failed,
            },
        );
    }

    /// Retries the store writes that are due. A path whose file changed meanwhile was dropped from the retries when
    /// its new version became a job.
    fn retry_due(&mut self, now: Instant) {
        let due: Vec<PathBuf> = self
            .retries
            .iter()
            .filter(|(_, r)| r.due <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for path in due {
            let Some(retry) = self.retries.remove(&path) else {
                continue;
            };
            match retry.write.write(&self.store) {
                Ok(()) => {
                    self.warned_causes.clear();
                    let Retry {
                        job,
                        write,
                        stored_failed,
                        layers_failed,
                        ..
                    } = retry;
                    tracing::info!(run = %job.run, step = job.step, "stored after a retry");
                    if stored_failed.is_none() {
                        self.summary.stored += 1;
                        if layers_failed > 0 {
                            self.summary.failed += 1;
                        }
                        self.progress.stored(
                            &job.run,
                            job.step,
                            write.reports.len(),
                            layers_failed,
                            0,
                            write.record.analysis_seconds,
                            write.record.phase_counts,
                        );
                    }
                }
                Err(e) => {
                    let Retry {
                        job,
                        write,
                        stored_failed,
                        layers_failed,
                        attempts,
                        ..
                    } = retry;
                    self.schedule_retry(job, write, e, stored_failed, layers_failed, attempts + 1);
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
