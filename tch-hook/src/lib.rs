//! `htsr-tch-hook`: the tch-rs training-loop hook of htsr.
//!
//! Every N steps (and/or at epoch ends) the hook snapshots the weights of a [`tch::nn::VarStore`] and writes them,
//! on a background thread, to one safetensors file `DIR/RUN/step-<9-digit step>.safetensors` whose `__metadata__`
//! holds `htsr.step`, `htsr.run`, `htsr.wall_time` and, when known, `htsr.epoch`, `htsr.loss`, `htsr.lr`,
//! `htsr.batch_size`, plus the user's own `htsr.*` keys. `htsr-watch DIR` analyses those files as they appear.
//!
//! ```no_run
//! # fn main() -> Result<(), htsr_tch_hook::HookError> {
//! let vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! let mut hook = htsr_tch_hook::HtsrHook::builder().dir("htsr-runs").run("mlp").every(50).build()?;
//! for step in 0..1000 {
//!     // ... forward, backward, optimizer step ...
//!     hook.step(step, &vs)?;
//! }
//! hook.finish()?;
//! # Ok(()) }
//! ```
//!
//! Guarantees:
//! - The training thread only copies each selected tensor to contiguous CPU memory, in its own dtype (raw bytes,
//!   no conversion). Serialization and disk writes happen on a writer thread fed through a bounded queue.
//! - A checkpoint is written to a temporary name in the same directory (starting with `.`, ending in `.tmp`),
//!   fsync'ed, renamed to its final name, and the directory is fsync'ed. A failed write removes the temporary file
//!   and never leaves a file under a final name.
//! - When the writer falls behind (the queue is full), the hook waits (default) or skips that checkpoint
//!   ([`WhenBehind`]); the returned [`StepOutcome`] says which, and a tracing event is emitted.
//! - A write error is logged when it happens and returned from the next call of [`HtsrHook::step`] (or
//!   [`HtsrHook::finish`]); training can go on, later checkpoints are attempted as usual.
//! - Dropping the hook flushes the queue (waits for pending writes).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use safetensors::tensor::{Dtype, View};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// Environment variable: the output directory (the one `htsr-watch` watches).
pub const ENV_DIR: &str = "HTSR_DIR";
/// Environment variable: checkpoint every N steps (`0` disables step-based checkpoints).
pub const ENV_EVERY: &str = "HTSR_EVERY";
/// Environment variable: the run name (the subdirectory of the output directory).
pub const ENV_RUN: &str = "HTSR_RUN";

/// Default output directory when neither the builder nor `HTSR_DIR` names one.
pub const DEFAULT_DIR: &str = "htsr-runs";
/// Default checkpoint interval in steps.
pub const DEFAULT_EVERY: u64 = 100;
/// Default number of snapshots that may be pending (queued or being written) at once.
pub const DEFAULT_QUEUE: usize = 2;

/// Errors of the hook. Write errors carry the final path the checkpoint was meant for.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The configuration is invalid (a bad environment variable, an empty run name, ...).
    #[error("htsr hook configuration: {0}")]
    Config(String),
    /// The run directory could not be created.
    #[error("htsr hook: cannot create checkpoint directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Copying a tensor out of libtorch failed.
    #[error("htsr hook: cannot snapshot tensor {name}: {message}")]
    Snapshot { name: String, message: String },
    /// Writing a checkpoint failed; no file was left under `path`.
    #[error("htsr hook: writing checkpoint {path} failed: {message}")]
    Write { path: PathBuf, message: String },
    /// The writer thread is gone (it panicked).
    #[error("htsr hook: the writer thread stopped unexpectedly")]
    WriterGone,
}

/// What the writer does when it falls behind and the queue of pending snapshots is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenBehind {
    /// Block the training thread until a slot frees up, then take the snapshot (default).
    #[default]
    Wait,
    /// Skip this checkpoint (nothing is copied) and go on at once.
    Skip,
}

/// What one call of [`HtsrHook::step`] (or its variants) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// No checkpoint is due at this step.
    NotDue,
    /// A snapshot was taken and queued for writing without waiting.
    Queued,
    /// The queue was full; the hook waited this long, then took the snapshot and queued it.
    Waited(Duration),
    /// The queue was full and the hook is configured to skip: no checkpoint for this step.
    Skipped,
}

/// Optional facts about a step, written to the checkpoint's metadata when given.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepInfo {
    pub epoch: Option<u64>,
    pub loss: Option<f64>,
    pub lr: Option<f64>,
    pub batch_size: Option<u64>,
}

impl StepInfo {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn epoch(mut self, epoch: u64) -> Self {
        self.epoch = Some(epoch);
        self
    }
    pub fn loss(mut self, loss: f64) -> Self {
        self.loss = Some(loss);
        self
    }
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = Some(lr);
        self
    }
    pub fn batch_size(mut self, batch_size: u64) -> Self {
        self.batch_size = Some(batch_size);
        self
    }
}

type NameFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Builder of [`HtsrHook`]. Start from [`HtsrHook::builder`]: its defaults are taken from `HTSR_DIR`, `HTSR_EVERY`
/// and `HTSR_RUN` where set; explicit builder calls override them.
#[derive(Clone)]
pub struct HookBuilder {
    dir: PathBuf,
    run: Option<String>,
    every: u64,
    at_epoch_end: bool,
    filter: Option<NameFilter>,
    min_dims: usize,
    trainable_only: bool,
    keep_last: Option<usize>,
    metadata: BTreeMap<String, String>,
    queue: usize,
    when_behind: WhenBehind,
    env_error: Option<String>,
}

impl fmt::Debug for HookBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookBuilder")
            .field("dir", &self.dir)
            .field("run", &self.run)
            .field("every", &self.every)
            .field("at_epoch_end", &self.at_epoch_end)
            .field("filter", &self.filter.as_ref().map(|_| "<fn>"))
            .field("min_dims", &self.min_dims)
            .field("trainable_only", &self.trainable_only)
            .field("keep_last", &self.keep_last)
            .field("metadata", &self.metadata)
            .field("queue", &self.queue)
            .field("when_behind", &self.when_behind)
            .finish()
    }
}

impl Default for HookBuilder {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(DEFAULT_DIR),
            run: None,
            every: DEFAULT_EVERY,
            at_epoch_end: true,
            filter: None,
            min_dims: 2,
            trainable_only: true,
            keep_last: None,
            metadata: BTreeMap::new(),
            queue: DEFAULT_QUEUE,
            when_behind: WhenBehind::Wait,
            env_error: None,
        }
    }
}

impl HookBuilder {
    /// Defaults, then `HTSR_DIR`, `HTSR_EVERY`, `HTSR_RUN` where set (non-empty).
    pub fn from_env() -> Self {
        let mut b = Self::default();
        if let Some(dir) = std::env::var_os(ENV_DIR).filter(|v| !v.is_empty()) {
            b.dir = PathBuf::from(dir);
        }
        if let Ok(run) = std::env::var(ENV_RUN) {
            if !run.is_empty() {
                b.run = Some(run);
            }
        }
        if let Ok(every) = std::env::var(ENV_EVERY) {
            if !every.is_empty() {
                match every.trim().parse::<u64>() {
                    Ok(n) => b.every = n,
                    Err(_) => {
                        b.env_error = Some(format!(
                            "{ENV_EVERY}={every:?} is not a whole number of steps"
                        ))
                    }
                }
            }
        }
        b
    }

    /// The output directory; checkpoints go to `dir/run/`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }
    /// The run name (a single path component). Default: `run-<unix seconds>`.
    pub fn run(mut self, run: impl Into<String>) -> Self {
        self.run = Some(run.into());
        self
    }
    /// Checkpoint at every step divisible by `n` (step 0 included). `0` disables step-based checkpoints.
    pub fn every(mut self, n: u64) -> Self {
        self.every = n;
        self.env_error = None;
        self
    }
    /// Whether [`HtsrHook::epoch_end`] writes a checkpoint (default: true).
    pub fn at_epoch_end(mut self, yes: bool) -> Self {
        self.at_epoch_end = yes;
        self
    }
    /// Keep only the variables whose name passes `f` (applied after the dimension/trainable rules).
    pub fn filter(mut self, f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(f));
        self
    }
    /// Minimum number of dimensions of a saved tensor (default 2: matrices and conv kernels, no biases).
    pub fn min_dims(mut self, n: usize) -> Self {
        self.min_dims = n;
        self
    }
    /// Whether only trainable variables (`requires_grad`) are saved (default: true).
    pub fn trainable_only(mut self, yes: bool) -> Self {
        self.trainable_only = yes;
        self
    }
    /// Keep only the `k` most recent checkpoints (by step) of the run directory; default: keep all.
    pub fn keep_last(mut self, k: usize) -> Self {
        self.keep_last = Some(k);
        self
    }
    /// An extra metadata pair for every checkpoint. The key gets the `htsr.` prefix when it lacks it.
    /// Per-step values (`StepInfo`) win over an extra of the same key.
    pub fn metadata(mut self, key: impl AsRef<str>, value: impl Into<String>) -> Self {
        let key = key.as_ref();
        let key = if key.starts_with("htsr.") {
            key.to_owned()
        } else {
            format!("htsr.{key}")
        };
        self.metadata.insert(key, value.into());
        self
    }
    /// How many snapshots may be pending (queued or being written) at once (default 2, minimum 1).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue = n.max(1);
        self
    }
    /// What to do when the queue is full (default: [`WhenBehind::Wait`]).
    pub fn when_behind(mut self, w: WhenBehind) -> Self {
        self.when_behind = w;
        self
    }

    /// Creates the run directory and starts the writer thread.
    pub fn build(self) -> Result<HtsrHook, HookError> {
        if let Some(e) = self.env_error {
            return Err(HookError::Config(e));
        }
        let run = match self.run {
            Some(r) => r,
            None => format!(
                "run-{}",
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs()
            ),
        };
        if run.is_empty() || run == "." || run == ".." || run.contains(['/', '\\']) {
            return Err(HookError::Config(format!(
                "run name {run:?} must be one non-empty path component"
            )));
        }
        let run_dir = self.dir.join(&run);
        fs::create_dir_all(&run_dir).map_err(|source| HookError::CreateDir {
            path: run_dir.clone(),
            source,
        })?;
        // A directory we cannot write into is reported now rather than at the first checkpoint.
        let probe = run_dir.join(format!(".htsr-probe-{}.tmp", std::process::id()));
        File::create(&probe).map_err(|source| HookError::CreateDir {
            path: run_dir.clone(),
            source,
        })?;
        let _ = fs::remove_file(&probe);

        let shared = Arc::new(Shared {
            pending: Mutex::new(0),
            freed: Condvar::new(),
            has_error: AtomicBool::new(false),
            errors: Mutex::new(Vec::new()),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            pool: Mutex::new(Vec::new()),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = {
            let shared = Arc::clone(&shared);
            let run_dir = run_dir.clone();
            let keep_last = self.keep_last;
            std::thread::Builder::new()
                .name("htsr-writer".into())
                .spawn(move || writer_loop(rx, &shared, &run_dir, keep_last))
                .map_err(|e| HookError::Config(format!("cannot start the writer thread: {e}")))?
        };
        tracing::info!(dir = %run_dir.display(), every = self.every, "htsr hook started");
        Ok(HtsrHook {
            run,
            run_dir,
            every: self.every,
            at_epoch_end: self.at_epoch_end,
            filter: self.filter,
            min_dims: self.min_dims,
            trainable_only: self.trainable_only,
            metadata: self.metadata,
            queue: self.queue,
            when_behind: self.when_behind,
            shared,
            tx: Some(tx),
            writer: Some(writer),
            last_checkpoint: None,
            stats: HookStats::default(),
        })
    }
}

/// Counters of what the hook did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookStats {
    pub queued: u64,
    pub waited: u64,
    pub skipped: u64,
    pub written: u64,
    pub failed: u64,
}

/// The training-loop hook. See the crate documentation.
pub struct HtsrHook {
    run: String,
    run_dir: PathBuf,
    every: u64,
    at_epoch_end: bool,
    filter: Option<NameFilter>,
    min_dims: usize,
    trainable_only: bool,
    metadata: BTreeMap<String, String>,
    queue: usize,
    when_behind: WhenBehind,
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    last_checkpoint: Option<u64>,
    stats: HookStats,
}

impl fmt::Debug for HtsrHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HtsrHook")
            .field("run", &self.run)
            .field("run_dir", &self.run_dir)
            .field("every", &self.every)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

struct Shared {
    /// Snapshots queued or being written.
    pending: Mutex<usize>,
    freed: Condvar,
    has_error: AtomicBool,
    errors: Mutex<Vec<HookError>>,
    written: AtomicU64,
    failed: AtomicU64,
    /// Buffers of written snapshots, reused by the next snapshot (avoids re-faulting fresh pages).
    pool: Mutex<Vec<Vec<Vec<u8>>>>,
}

struct Snap {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Snap {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

struct Job {
    step: u64,
    metadata: HashMap<String, String>,
    tensors: Vec<Snap>,
}

/// `step-<9-digit zero-padded step>.safetensors`, the final file name of a checkpoint.
pub fn checkpoint_file_name(step: u64) -> String {
    format!("step-{step:09}.safetensors")
}

fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Int16 => Dtype::I16,
        Kind::Int8 => Dtype::I8,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        _ => return None,
    })
}

impl HtsrHook {
    /// A builder whose defaults come from `HTSR_DIR`, `HTSR_EVERY`, `HTSR_RUN` where set.
    pub fn builder() -> HookBuilder {
        HookBuilder::from_env()
    }

    /// The run name.
    pub fn run(&self) -> &str {
        &self.run
    }
    /// The directory the checkpoints go to (`dir/run`).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }
    /// The step interval (0: step-based checkpoints off).
    pub fn every(&self) -> u64 {
        self.every
    }
    /// What the hook did so far (`written`/`failed` count completed writes).
    pub fn stats(&self) -> HookStats {
        HookStats {
            written: self.shared.written.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            ..self.stats
        }
    }

    /// Whether step `step` is a checkpoint step.
    #[inline]
    pub fn is_due(&self, step: u64) -> bool {
        self.every != 0 && step % self.every == 0 && self.last_checkpoint != Some(step)
    }

    /// Call once per training step. Writes a checkpoint when `step` is a multiple of the interval.
    #[inline]
    pub fn step(&mut self, step: u64, vs: &VarStore) -> Result<StepOutcome, HookError> {
        self.step_with(step, vs, StepInfo::default())
    }

    /// Like [`HtsrHook::step`], with loss, learning rate, batch size or epoch for the metadata.
    #[inline]
    pub fn step_with(
        &mut self,
        step: u64,
        vs: &VarStore,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        if !self.is_due(step) {
            self.take_error()?;
            return Ok(StepOutcome::NotDue);
        }
        self.checkpoint(step, vs, info)
    }

    /// Call at the end of an epoch: writes a checkpoint for `step` when epoch-end checkpoints are on (the default)
    /// and none was written for this step yet.
    pub fn epoch_end(
        &mut self,
        step: u64,
        vs: &VarStore,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        if !self.at_epoch_end || self.last_checkpoint == Some(step) {
            self.take_error()?;
            return Ok(StepOutcome::NotDue);
        }
        self.checkpoint(step, vs, info)
    }

    /// Writes a checkpoint for `step` now, whatever the interval.
    pub fn checkpoint(
        &mut self,
        step: u64,
        vs: &VarStore,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        let outcome = self.checkpoint_inner(step, vs, info);
        // A previous write's error takes precedence; this step was still handled as `outcome` says.
        self.take_error()?;
        outcome
    }

    fn checkpoint_inner(
        &mut self,
        step: u64,
        vs: &VarStore,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(HookError::WriterGone);
        };
        // Reserve a queue slot before copying, so at most `queue` snapshots are alive at once.
        let mut waited = None;
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *pending >= self.queue {
                match self.when_behind {
                    WhenBehind::Skip => {
                        drop(pending);
                        self.stats.skipped += 1;
                        tracing::warn!(step, run = %self.run, "htsr hook: writer behind, checkpoint skipped");
                        return Ok(StepOutcome::Skipped);
                    }
                    WhenBehind::Wait => {
                        let t0 = Instant::now();
                        while *pending >= self.queue {
                            if self.writer.as_ref().is_none_or(|w| w.is_finished()) {
                                return Err(HookError::WriterGone);
                            }
                            let tick = Duration::from_millis(100);
                            pending = self
                                .shared
                                .freed
                                .wait_timeout(pending, tick)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                        waited = Some(t0.elapsed());
                    }
                }
            }
            *pending += 1;
        }
        let wall_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let tensors = match self.snapshot(vs) {
            Ok(t) => t,
            Err(e) => {
                self.release_slot();
                return Err(e);
            }
        };
        let mut metadata: HashMap<String, String> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        metadata.insert("htsr.step".into(), step.to_string());
        metadata.insert("htsr.run".into(), self.run.clone());
        metadata.insert("htsr.wall_time".into(), format!("{wall_time:.6}"));
        if let Some(e) = info.epoch {
            metadata.insert("htsr.epoch".into(), e.to_string());
        }
        if let Some(l) = info.loss {
            metadata.insert("htsr.loss".into(), l.to_string());
        }
        if let Some(l) = info.lr {
            metadata.insert("htsr.lr".into(), l.to_string());
        }
        if let Some(b) = info.batch_size {
            metadata.insert("htsr.batch_size".into(), b.to_string());
        }
        if tx
            .send(Job {
                step,
                metadata,
                tensors,
            })
            .is_err()
        {
            self.release_slot();
            return Err(HookError::WriterGone);
        }
        self.last_checkpoint = Some(step);
        match waited {
            Some(d) => {
                self.stats.waited += 1;
                tracing::info!(step, run = %self.run, waited_ms = d.as_secs_f64() * 1e3,
                    "htsr hook: writer behind, training waited for a queue slot");
                Ok(StepOutcome::Waited(d))
            }
            None => {
                self.stats.queued += 1;
                tracing::debug!(step, run = %self.run, "htsr hook: checkpoint queued");
                Ok(StepOutcome::Queued)
            }
        }
    }

    fn release_slot(&self) {
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *pending -= 1;
        self.shared.freed.notify_all();
    }

    /// Copies the selected variables to CPU bytes, sorted by name.
    fn snapshot(&self, vs: &VarStore) -> Result<Vec<Snap>, HookError> {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(name, t)| {
                t.dim() >= self.min_dims
                    && (!self.trainable_only || t.requires_grad())
                    && self.filter.as_ref().is_none_or(|f| f(name))
            })
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let mut buffers = self
            .shared
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        buffers.reverse();
        let mut out = Vec::with_capacity(vars.len());
        for (name, t) in vars {
            let kind = t.kind();
            let Some(dtype) = dtype_of(kind) else {
                tracing::warn!(
                    name,
                    ?kind,
                    "htsr hook: dtype not representable in safetensors; tensor skipped"
                );
                continue;
            };
            let numel = t.numel();
            let nbytes = numel * kind.elt_size_in_bytes();
            let mut data = match buffers.pop() {
                Some(mut b) if b.capacity() >= nbytes => {
                    b.resize(nbytes, 0);
                    b
                }
                _ => vec![0u8; nbytes],
            };
            // One memcpy from the (contiguous, CPU) tensor; a device tensor is first moved to the CPU by libtorch.
            t.f_copy_data_u8(&mut data, numel)
                .map_err(|e| HookError::Snapshot {
                    name: name.clone(),
                    message: e.to_string(),
                })?;
            let shape = t.size().into_iter().map(|d| d as usize).collect();
            out.push(Snap {
                name,
                dtype,
                shape,
                data,
            });
        }
        Ok(out)
    }

    fn take_error(&self) -> Result<(), HookError> {
        if !self.shared.has_error.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut errors = self.shared.errors.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.has_error.store(false, Ordering::Release);
        if errors.is_empty() {
            return Ok(());
        }
        let first = errors.remove(0);
        if !errors.is_empty() {
            tracing::error!(
                more = errors.len(),
                "htsr hook: further checkpoint writes failed"
            );
            errors.clear();
        }
        Err(first)
    }

    /// Waits until every queued checkpoint is written (or failed). Returns a pending write error, if any.
    pub fn flush(&mut self) -> Result<(), HookError> {
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            while *pending > 0 {
                if self.writer.as_ref().is_none_or(|w| w.is_finished()) {
                    break;
                }
                let tick = Duration::from_millis(100);
                pending = self
                    .shared
                    .freed
                    .wait_timeout(pending, tick)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        self.take_error()
    }

    /// Flushes the queue, stops the writer and returns the first pending write error, if any.
    pub fn finish(mut self) -> Result<HookStats, HookError> {
        self.shutdown()?;
        Ok(self.stats)
    }

    fn shutdown(&mut self) -> Result<(), HookError> {
        self.tx.take();
        let panicked = match self.writer.take() {
            Some(w) => w.join().is_err(),
            None => false,
        };
        self.stats = self.stats();
        self.take_error()?;
        if panicked {
            return Err(HookError::WriterGone);
        }
        Ok(())
    }
}

impl Drop for HtsrHook {
    fn drop(&mut self) {
        if self.writer.is_some() {
            if let Err(e) = self.shutdown() {
                tracing::error!(error = %e, "htsr hook: error while flushing on drop");
            }
        }
    }
}

fn writer_loop(rx: mpsc::Receiver<Job>, shared: &Shared, run_dir: &Path, keep_last: Option<usize>) {
    for job in rx {
        let final_path = run_dir.join(checkpoint_file_name(job.step));
        if let Err(message) = write_checkpoint(run_dir, &final_path, &job) {
            tracing::error!(path = %final_path.display(), %message, "htsr hook: checkpoint write failed");
            let mut errors = shared.errors.lock().unwrap_or_else(|e| e.into_inner());
            errors.push(HookError::Write {
                path: final_path,
                message,
            });
            shared.has_error.store(true, Ordering::Release);
            shared.failed.fetch_add(1, Ordering::Relaxed);
        } else {
            shared.written.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(path = %final_path.display(), "htsr hook: checkpoint written");
            if let Some(k) = keep_last {
                prune(run_dir, k);
            }
        }
        let buffers: Vec<Vec<u8>> = job.tensors.into_iter().map(|s| s.data).collect();
        {
            let mut pool = shared.pool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < 2 {
                pool.push(buffers);
            }
        }
        let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending -= 1;
        shared.freed.notify_all();
    }
}

/// temp file in the same directory -> fsync -> rename -> fsync the directory. On error the temp file is removed.
fn write_checkpoint(run_dir: &Path, final_path: &Path, job: &Job) -> Result<(), String> {
    let tmp = run_dir.join(format!(
        ".step-{:09}.{}.safetensors.tmp",
        job.step,
        std::process::id()
    ));
    let result = (|| -> Result<(), String> {
        let tensors = job.tensors.iter().map(|s| (s.name.as_str(), s));
        safetensors::tensor::serialize_to_file(tensors, Some(job.metadata.clone()), &tmp)
            .map_err(|e| format!("serializing to {}: {e}", tmp.display()))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| format!("syncing {}: {e}", tmp.display()))?;
        fs::rename(&tmp, final_path)
            .map_err(|e| format!("renaming {} into place: {e}", tmp.display()))?;
        File::open(run_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("syncing {}: {e}", run_dir.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The step of a final checkpoint file name, `step-<digits>.safetensors`.
pub fn step_of_file_name(name: &str) -> Option<u64> {
    name.strip_prefix("step-")?
        .strip_suffix(".safetensors")?
        .parse()
        .ok()
}

/// Removes all but the `k` highest-step checkpoints of `run_dir`.
fn prune(run_dir: &Path, k: usize) {
    let Ok(entries) = fs::read_dir(run_dir) else {
        return;
    };
    let mut steps: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            step_of_file_name(name.to_str()?).map(|s| (s, e.path()))
        })
        .collect();
    if steps.len() <= k {
        return;
    }
    steps.sort();
    let excess = steps.len() - k;
    for (_, path) in steps.into_iter().take(excess) {
        if let Err(e) = fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "htsr hook: cannot remove old checkpoint");
        }
    }
}
