//! [`HookBuilder`]: the hook's options, with defaults from `HTSR_DIR`, `HTSR_EVERY` and `HTSR_RUN`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use htsr_contracts::naming::{self, env, keys};
use htsr_writer::{CheckpointWriter, WhenBehind, DEFAULT_QUEUE};

use crate::error::HookError;
use crate::hook::{HookStats, HtsrHook, Mode};
use crate::spectra::SpectraPrecision;
use htsr_engine::analyze::AnalyzeOptions;

pub use htsr_contracts::naming::{DEFAULT_DIR, DEFAULT_EVERY};

pub(crate) type NameFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Builder of [`HtsrHook`]. Start from [`HtsrHook::builder`]: its defaults are taken from `HTSR_DIR`, `HTSR_EVERY`
/// and `HTSR_RUN` where set; explicit builder calls override them.
#[derive(Clone)]
pub struct HookBuilder {
    pub(crate) dir: PathBuf,
    pub(crate) run: Option<String>,
    pub(crate) every: u64,
    pub(crate) at_epoch_end: bool,
    pub(crate) filter: Option<NameFilter>,
    pub(crate) min_dims: usize,
    pub(crate) trainable_only: bool,
    pub(crate) keep_last: Option<usize>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) queue: usize,
    pub(crate) when_behind: WhenBehind,
    pub(crate) env_error: Option<String>,
    pub(crate) mode: Mode,
    pub(crate) rank: Option<(usize, usize)>,
    pub(crate) precision: SpectraPrecision,
    pub(crate) spectra_on_device: bool,
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
            .field("mode", &self.mode)
            .field("rank", &self.rank)
            .field("precision", &self.precision)
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
            mode: Mode::Weights,
            rank: None,
            precision: SpectraPrecision::F64,
            spectra_on_device: false,
        }
    }
}

impl HookBuilder {
    /// Defaults, then `HTSR_DIR`, `HTSR_EVERY`, `HTSR_RUN` where set (non-empty).
    pub fn from_env() -> Self {
        let mut b = Self::default();
        if let Some(dir) = std::env::var_os(env::DIR).filter(|v| !v.is_empty()) {
            b.dir = PathBuf::from(dir);
        }
        if let Ok(run) = std::env::var(env::RUN) {
            if !run.is_empty() {
                b.run = Some(run);
            }
        }
        let var = |name: &str| std::env::var(name).ok();
        match env::every_from(var) {
            Some(Ok(n)) => b.every = n,
            Some(Err(e)) => b.env_error = Some(e),
            None => {}
        }
        match env::mode_from(var) {
            Some(Ok(m)) => b.mode = m,
            Some(Err(e)) => b.env_error = Some(e),
            None => {}
        }
        b
    }

    /// What a checkpoint holds: the weights (default), their spectra computed in this process, or both.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// This process's rank among `world` (default: from `RANK`/`WORLD_SIZE` or `SLURM_PROCID`/`SLURM_NTASKS`,
    /// else a single process). Rank 0 writes the weights; each rank writes the spectra of its share of layers.
    pub fn rank(mut self, rank: usize, world: usize) -> Self {
        self.rank = Some((rank, world));
        self
    }

    /// The precision of the Gram matrix on the device in spectra mode (default f64).
    pub fn spectra_precision(mut self, precision: SpectraPrecision) -> Self {
        self.precision = precision;
        self
    }

    /// Compute CPU tensors' spectra with libtorch on the training thread, as for accelerator tensors, instead of
    /// with htsr-engine on the writer thread (default false).
    pub fn spectra_on_device(mut self, yes: bool) -> Self {
        self.spectra_on_device = yes;
        self
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
        self.metadata
            .insert(keys::prefixed(key.as_ref()), value.into());
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
        let rank = match self.rank {
            Some((r, w)) if w == 0 || r >= w => {
                return Err(HookError::Config(format!("rank {r} is not a rank of {w}")))
            }
            Some(rw) => rw,
            None => env::rank_from(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
                .map_err(HookError::Config)?,
        };
        let run = match self.run {
            Some(r) => r,
            None => naming::default_run_name(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs(),
            ),
        };
        naming::check_run_name(&run).map_err(HookError::Config)?;
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
        Ok(HtsrHook {
            run,
            run_dir,
            every: self.every,
            at_epoch_end: self.at_epoch_end,
            filter: self.filter,
            min_dims: self.min_dims,
            trainable_only: self.trainable_only,
            metadata: self.metadata,
            writer,
            last_checkpoint: None,
            stats: HookStats::default(),
            mode: self.mode,
            rank,
            precision: self.precision,
            spectra_on_device: self.spectra_on_device,
            limits: AnalyzeOptions::default(),
            assignment: None,
        })
    }
}
