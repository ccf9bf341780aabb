//! [`HookBuilder`]: a hook's options, with defaults from `HTSR_DIR`, `HTSR_EVERY`, `HTSR_RUN` and `HTSR_MODE`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use htsr_contracts::naming::{
    check_run_name, default_run_name, env, keys, DEFAULT_DIR, DEFAULT_EVERY,
};
use htsr_engine::analyze::AnalyzeOptions;
use htsr_writer::{CheckpointWriter, WhenBehind, DEFAULT_QUEUE};

use crate::error::HookError;
use crate::hook::{HookCore, HookStats, Mode};

pub(crate) type NameFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Builder of a hook `H` (a framework hook wraps a [`HookCore`]; `H = HookCore` builds the core alone). Start from
/// the framework hook's `builder()`: its defaults come from `HTSR_DIR`, `HTSR_EVERY`, `HTSR_RUN` and `HTSR_MODE`
/// where set; explicit builder calls override them.
pub struct HookBuilder<H = HookCore> {
    dir: PathBuf,
    run: Option<String>,
    every: u64,
    at_epoch_end: bool,
    filter: Option<NameFilter>,
    min_dims: usize,
    keep_last: Option<usize>,
    metadata: BTreeMap<String, String>,
    queue: usize,
    when_behind: WhenBehind,
    /// A malformed `HTSR_EVERY` (cleared by an explicit `every`) or `HTSR_MODE` (cleared by an explicit `mode`).
    every_error: Option<String>,
    mode_error: Option<String>,
    mode: Mode,
    rank: Option<(usize, usize)>,
    hook: PhantomData<fn() -> H>,
}

impl<H> Clone for HookBuilder<H> {
    fn clone(&self) -> Self {
        Self {
            dir: self.dir.clone(),
            run: self.run.clone(),
            every: self.every,
            at_epoch_end: self.at_epoch_end,
            filter: self.filter.clone(),
            min_dims: self.min_dims,
            keep_last: self.keep_last,
            metadata: self.metadata.clone(),
            queue: self.queue,
            when_behind: self.when_behind,
            every_error: self.every_error.clone(),
            mode_error: self.mode_error.clone(),
            mode: self.mode,
            rank: self.rank,
            hook: PhantomData,
        }
    }
}

impl<H> fmt::Debug for HookBuilder<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookBuilder")
            .field("dir", &self.dir)
            .field("run", &self.run)
            .field("every", &self.every)
            .field("at_epoch_end", &self.at_epoch_end)
            .field("filter", &self.filter.as_ref().map(|_| "<fn>"))
            .field("min_dims", &self.min_dims)
            .field("keep_last", &self.keep_last)
            .field("metadata", &self.metadata)
            .field("queue", &self.queue)
            .field("when_behind", &self.when_behind)
            .field("mode", &self.mode)
            .field("rank", &self.rank)
            .finish()
    }
}

impl<H> Default for HookBuilder<H> {
    /// The defaults, ignoring the environment.
    fn default() -> Self {
        Self {
            dir: PathBuf::from(DEFAULT_DIR),
            run: None,
            every: DEFAULT_EVERY,
            at_epoch_end: true,
            filter: None,
            min_dims: 2,
            keep_last: None,
            metadata: BTreeMap::new(),
            queue: DEFAULT_QUEUE,
            when_behind: WhenBehind::Wait,
            every_error: None,
            mode_error: None,
            mode: Mode::Weights,
            rank: None,
            hook: PhantomData,
        }
    }
}

/// The value of an environment variable, unless unset or empty.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl<H: From<HookCore>> HookBuilder<H> {
    /// Defaults, then `HTSR_DIR`, `HTSR_EVERY`, `HTSR_RUN` and `HTSR_MODE` where set (non-empty). A malformed value
    /// is reported by [`HookBuilder::build`] unless the builder sets that option itself.
    pub fn from_env() -> Self {
        let mut b = Self::default();
        if let Some(dir) = std::env::var_os(env::DIR).filter(|v| !v.is_empty()) {
            b.dir = PathBuf::from(dir);
        }
        b.run = env_var(env::RUN);
        match env::every_from(env_var) {
            Some(Ok(n)) => b.every = n,
            Some(Err(e)) => b.every_error = Some(e),
            None => {}
        }
        match env::mode_from(env_var) {
            Some(Ok(m)) => b.mode = m,
            Some(Err(e)) => b.mode_error = Some(e),
            None => {}
        }
        b
    }

    /// The output directory; checkpoints go to `dir/run/` (default `htsr-runs`, or `HTSR_DIR`).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// The run name, one path component (default `HTSR_RUN`, else `run-<unix seconds>`).
    pub fn run(mut self, run: impl Into<String>) -> Self {
        self.run = Some(run.into());
        self
    }

    /// Checkpoint at every step divisible by `n`, step 0 included (default 100, or `HTSR_EVERY`). `0` turns
    /// step-based checkpoints off.
    pub fn every(mut self, n: u64) -> Self {
        self.every = n;
        self.every_error = None;
        self
    }

    /// Whether the hook's `epoch_end` writes a checkpoint (default true).
    pub fn at_epoch_end(mut self, yes: bool) -> Self {
        self.at_epoch_end = yes;
        self
    }

    /// What a checkpoint holds: the weights (default), their spectra computed in this process, or both
    /// (`HTSR_MODE=weights|spectra|both`).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self.mode_error = None;
        self
    }

    /// Keep only the parameters whose name passes `f` (applied after the dimension rule).
    pub fn filter(mut self, f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(f));
        self
    }

    /// Minimum number of dimensions of a saved tensor (default 2: matrices and convolution kernels, no biases or
    /// norm scales).
    pub fn min_dims(mut self, n: usize) -> Self {
        self.min_dims = n;
        self
    }

    /// Keep only the `k` most recent checkpoints (by step) of the run directory; default: keep all.
    pub fn keep_last(mut self, k: usize) -> Self {
        self.keep_last = Some(k);
        self
    }

    /// An extra metadata pair for every checkpoint. The key gets the `htsr.` prefix when it lacks it. Per-step
    /// values (`StepInfo`) win over an extra of the same key.
    pub fn metadata(mut self, key: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.metadata
            .insert(keys::prefixed(key.as_ref()), value.into());
        self
    }

    /// How many snapshots may be pending (queued or being written) at once (default 2, minimum 1).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue = n.max(1);
        self
    }

    /// What to do when the queue is full (default [`WhenBehind::Wait`]).
    pub fn when_behind(mut self, w: WhenBehind) -> Self {
        self.when_behind = w;
        self
    }

    /// This process's rank among `world` (default: from `RANK`/`WORLD_SIZE` or `SLURM_PROCID`/`SLURM_NTASKS`,
    /// else a single process). Rank 0 writes the weights; each rank writes the spectra of its share of layers.
    pub fn rank(mut self, rank: usize, world: usize) -> Self {
        self.rank = Some((rank, world));
        self
    }

    /// Creates the run directory and starts the writer thread.
    pub fn build(self) -> Result<H, HookError> {
        if let Some(e) = self.every_error.or(self.mode_error) {
            return Err(HookError::Config(e));
        }
        let rank = match self.rank {
            Some((r, w)) if w == 0 || r >= w => {
                return Err(HookError::Config(format!("rank {r} is not a rank of {w}")))
            }
            Some(rw) => rw,
            None => env::rank_from(env_var).map_err(HookError::Config)?,
        };
        let run = self.run.unwrap_or_else(|| {
            default_run_name(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs(),
            )
        });
        check_run_name(&run).map_err(HookError::Config)?;
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

        let writer = CheckpointWriter::start(
            run_dir.clone(),
            self.queue,
            self.when_behind,
            self.keep_last,
        )
        .map_err(|e| HookError::Config(format!("cannot start the writer thread: {e}")))?;
        tracing::info!(dir = %run_dir.display(), every = self.every, "htsr hook started");
        Ok(H::from(HookCore {
            run,
            run_dir,
            every: self.every,
            at_epoch_end: self.at_epoch_end,
            filter: self.filter,
            min_dims: self.min_dims,
            metadata: self.metadata,
            writer,
            last_checkpoint: None,
            stats: HookStats::default(),
            mode: self.mode,
            rank,
            limits: AnalyzeOptions::default(),
            assignment: None,
        }))
    }
}
