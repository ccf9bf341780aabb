//! [`HookCore`]: decides which steps are checkpoints, asks the framework's [`ParamSource`] for a snapshot on the
//! training thread, and hands it to the background [`CheckpointWriter`] (weights as they are, spectra computed
//! from the snapshot on the writer thread by htsr-engine).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use htsr_contracts::naming::checkpoint_file_name;
use htsr_contracts::spectra::{assign_layers, spectra_file_name, spectrum_cost};
use htsr_engine::analyze::AnalyzeOptions;
use htsr_engine::layer_spectrum::{self, no_spectrum, plan_for};
use htsr_writer::{
    checkpoint_metadata, content_hash, spectra_job, BuiltFile, CheckpointWriter, FileJob,
    LayerSpectrum, Reservation, StepInfo, TensorSnapshot, WriterControl,
};

use crate::builder::{HookBuilder, NameFilter};
use crate::error::HookError;
use crate::source::{BufferPool, ParamSource, Snapshot};

/// What a hook writes at a checkpoint step: the weights (the default), their spectra computed on the writer
/// thread, or both (one definition for every writer, in htsr-contracts).
pub use htsr_contracts::naming::CheckpointMode as Mode;

/// What one call of a hook's `step` (or its variants) did.
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

/// Counters of what a hook did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookStats {
    /// Files queued without waiting.
    pub queued: u64,
    /// Files queued after waiting for a queue slot.
    pub waited: u64,
    /// Checkpoints skipped because the writer was behind.
    pub skipped: u64,
    /// Files written.
    pub written: u64,
    /// Files whose write failed.
    pub failed: u64,
}

/// The framework-free hook: options, schedule, snapshot hand-off and writer. A framework hook wraps one and
/// supplies a [`ParamSource`] per call.
pub struct HookCore {
    pub(crate) run: String,
    pub(crate) run_dir: PathBuf,
    pub(crate) every: u64,
    pub(crate) at_epoch_end: bool,
    pub(crate) filter: Option<NameFilter>,
    pub(crate) min_dims: usize,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) writer: CheckpointWriter,
    pub(crate) last_checkpoint: Option<u64>,
    pub(crate) stats: HookStats,
    pub(crate) mode: Mode,
    /// This process's rank and the number of ranks (0, 1 without a distributed launcher).
    pub(crate) rank: (usize, usize),
    /// The size limits of the analysis (layers outside them get no spectrum).
    pub(crate) limits: AnalyzeOptions,
    /// Layers to ranks, computed once from the model's shapes (every rank computes the same).
    pub(crate) assignment: Option<BTreeMap<String, usize>>,
}

impl fmt::Debug for HookCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookCore")
            .field("run", &self.run)
            .field("run_dir", &self.run_dir)
            .field("every", &self.every)
            .field("mode", &self.mode)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl HookCore {
    /// A builder of the core alone, with defaults from the environment (framework hooks have their own
    /// `builder()`, which returns the same builder typed for them).
    pub fn builder() -> HookBuilder<HookCore> {
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

    /// What a checkpoint holds.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// This process's rank and the number of ranks.
    pub fn rank(&self) -> (usize, usize) {
        self.rank
    }

    /// What the hook did so far (`written`/`failed` count completed writes).
    pub fn stats(&self) -> HookStats {
        let w = self.writer.stats();
        HookStats {
            written: w.written,
            failed: w.failed,
            ..self.stats
        }
    }

    /// Whether `step` is a checkpoint step: a multiple of the interval with no checkpoint written for it yet.
    #[inline]
    pub fn is_due(&self, step: u64) -> bool {
        self.every != 0 && step.is_multiple_of(self.every) && self.last_checkpoint != Some(step)
    }

    /// Call once per training step: writes a checkpoint of `source` when `step` is due. A step that is not due
    /// costs the check and one atomic load (a pending write error), nothing else: `source` is not touched.
    #[inline]
    pub fn step_with<S: ParamSource + ?Sized>(
        &mut self,
        step: u64,
        source: &S,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        if !self.is_due(step) {
            self.take_error()?;
            return Ok(StepOutcome::NotDue);
        }
        self.checkpoint(step, source, info)
    }

    /// Call at the end of an epoch: writes a checkpoint for `step` when epoch-end checkpoints are on (the default)
    /// and none was written for this step yet.
    pub fn epoch_end<S: ParamSource + ?Sized>(
        &mut self,
        step: u64,
        source: &S,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        if !self.at_epoch_end || self.last_checkpoint == Some(step) {
            self.take_error()?;
            return Ok(StepOutcome::NotDue);
        }
        self.checkpoint(step, source, info)
    }

    /// Writes a checkpoint for `step` now, whatever the interval.
    pub fn checkpoint<S: ParamSource + ?Sized>(
        &mut self,
        step: u64,
        source: &S,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        let outcome = self.checkpoint_dyn(step, &SourceRef(source), info);
        // A previous write's error takes precedence; this step was still handled as `outcome` says.
        self.take_error()?;
        outcome
    }

    /// The body of [`HookCore::checkpoint`], compiled once rather than per source type.
    fn checkpoint_dyn(
        &mut self,
        step: u64,
        source: &dyn ParamSource,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        let wall_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let metadata = checkpoint_metadata(step, &self.run, wall_time, info, &self.metadata);
        // Replicated weights are the same on every rank: rank 0 writes them; every rank writes its share of spectra.
        let weights = self.mode != Mode::Spectra && self.rank.0 == 0;
        let spectra = self.mode != Mode::Weights;
        let mut outcome = StepOutcome::NotDue;
        if weights {
            outcome = self.write_weights(step, source, metadata.clone())?;
        }
        if spectra {
            let o = self.write_spectra(step, source, metadata)?;
            outcome = match (outcome, o) {
                (StepOutcome::NotDue, o) => o,
                (StepOutcome::Waited(a), StepOutcome::Waited(b)) => StepOutcome::Waited(a + b),
                (StepOutcome::Queued, o @ StepOutcome::Waited(_)) => o,
                (first, _) => first,
            };
        }
        if outcome != StepOutcome::Skipped && outcome != StepOutcome::NotDue {
            self.last_checkpoint = Some(step);
        }
        match outcome {
            StepOutcome::Waited(d) => {
                self.stats.waited += 1;
                tracing::info!(step, run = %self.run, waited_ms = d.as_secs_f64() * 1e3,
                    "htsr hook: writer behind, training waited for a queue slot");
            }
            StepOutcome::Queued => {
                self.stats.queued += 1;
                tracing::debug!(step, run = %self.run, "htsr hook: checkpoint queued");
            }
            StepOutcome::Skipped => {
                self.stats.skipped += 1;
                tracing::warn!(step, run = %self.run, "htsr hook: writer behind, checkpoint skipped");
            }
            StepOutcome::NotDue => {}
        }
        Ok(outcome)
    }

    /// Whether a parameter belongs in a checkpoint: at least `min_dims` dimensions and passing the name filter.
    fn selected(&self, name: &str, shape: &[usize]) -> bool {
        shape.len() >= self.min_dims && self.filter.as_ref().is_none_or(|f| f(name))
    }

    /// Takes a queue slot: None when the writer is behind and the hook skips.
    fn reserve(&self) -> Result<Option<StepOutcome>, HookError> {
        Ok(match self.writer.reserve()? {
            Reservation::Skipped => None,
            Reservation::Reserved => Some(StepOutcome::Queued),
            Reservation::Waited(d) => Some(StepOutcome::Waited(d)),
        })
    }

    /// The selected parameters `keep` also keeps, copied into the writer's recycled buffers and sorted by name;
    /// the queue slot is given back when the framework refuses.
    fn snapshot(
        &self,
        source: &dyn ParamSource,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Snapshot, HookError> {
        let mut buffers = BufferPool::new(self.writer.recycled_buffers());
        let select = |name: &str, shape: &[usize]| self.selected(name, shape) && keep(name);
        match source.snapshot(&select, &mut buffers) {
            Ok(mut snapshot) => {
                snapshot.tensors.sort_by(|a, b| a.name.cmp(&b.name));
                snapshot.unsupported.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(snapshot)
            }
            Err(e) => {
                self.writer.release();
                Err(e)
            }
        }
    }

    fn write_weights(
        &mut self,
        step: u64,
        source: &dyn ParamSource,
        metadata: HashMap<String, String>,
    ) -> Result<StepOutcome, HookError> {
        let Some(outcome) = self.reserve()? else {
            return Ok(StepOutcome::Skipped);
        };
        let snapshot = self.snapshot(source, &|_| true)?;
        for u in &snapshot.unsupported {
            tracing::warn!(name = %u.name, dtype = %u.dtype,
                "htsr hook: dtype not representable in safetensors; tensor skipped");
        }
        self.writer.submit(FileJob {
            file_name: checkpoint_file_name(step),
            metadata,
            tensors: snapshot.tensors,
        })?;
        Ok(outcome)
    }

    /// The spectra of this rank's share of the layers, computed by htsr-engine on the writer thread from a
    /// snapshot taken now (the tch hook's path for CPU tensors), so the step pays for a snapshot only.
    fn write_spectra(
        &mut self,
        step: u64,
        source: &dyn ParamSource,
        metadata: HashMap<String, String>,
    ) -> Result<StepOutcome, HookError> {
        let (rank, world) = self.rank;
        if self.assignment.is_none() {
            let select = |name: &str, shape: &[usize]| self.selected(name, shape);
            let costs: Vec<(String, f64)> = source
                .shapes(&select)
                .into_iter()
                .map(|(name, shape)| {
                    let cost = plan_for(&shape, &self.limits)
                        .map_or(0.0, |p| spectrum_cost(p.n(), p.m(), p.slices));
                    (name, cost)
                })
                .collect();
            self.assignment = Some(assign_layers(&costs, world));
        }
        let assignment = self.assignment.clone().unwrap_or_default();
        let Some(outcome) = self.reserve()? else {
            return Ok(StepOutcome::Skipped);
        };
        let mine = |name: &str| assignment.get(name).is_none_or(|&r| r == rank);
        let snapshot = self.snapshot(source, &mine)?;
        let limits = self.limits.clone();
        let rank_of = (world > 1).then_some((rank, world));
        let build = move || {
            let mut layers: Vec<LayerSpectrum> = snapshot
                .unsupported
                .iter()
                .map(|u| {
                    let reason = format!("dtype {} has no safetensors equivalent", u.dtype);
                    no_spectrum(&u.name, &u.shape, "", reason, false)
                })
                .collect();
            layers.extend(snapshot.tensors.iter().map(|s| from_snapshot(s, &limits)));
            layers.sort_by(|a, b| a.tensor.cmp(&b.tensor));
            BuiltFile {
                file: Ok(spectra_job(step, rank_of, layers, &assignment, metadata)),
                spent_buffers: snapshot.tensors.into_iter().map(|s| s.data).collect(),
            }
        };
        self.writer
            .submit_deferred(spectra_file_name(step, rank_of), Box::new(build))?;
        Ok(outcome)
    }

    fn take_error(&self) -> Result<(), HookError> {
        match self.writer.take_error() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Waits until every queued checkpoint is written (or failed). Returns a pending write error, if any.
    pub fn flush(&mut self) -> Result<(), HookError> {
        Ok(self.writer.flush()?)
    }

    /// Flushes the queue, stops the writer and returns the first pending write error, if any.
    pub fn finish(mut self) -> Result<HookStats, HookError> {
        self.writer.finish()?;
        Ok(self.stats())
    }

    /// Test support: holds and releases the writer thread, so that a test can fill the queue deterministically.
    #[doc(hidden)]
    pub fn writer_control(&self) -> WriterControl {
        self.writer.control()
    }
}

/// The spectrum of a CPU snapshot, computed by htsr-engine (on the writer thread), with the content hash the
/// spectra file records: what the tch hook does for a CPU tensor.
fn from_snapshot(snap: &TensorSnapshot, opts: &AnalyzeOptions) -> LayerSpectrum {
    let hash = content_hash(snap.dtype, &snap.shape, [snap.data.as_slice()]);
    layer_spectrum::from_bytes(&snap.name, snap.dtype, &snap.shape, &snap.data, opts, hash)
}

/// A sized or unsized source seen as `dyn ParamSource`, so that the checkpoint path is compiled once.
struct SourceRef<'a, S: ?Sized>(&'a S);

impl<S: ParamSource + ?Sized> ParamSource for SourceRef<'_, S> {
    fn shapes(&self, select: crate::source::Select<'_>) -> Vec<(String, Vec<usize>)> {
        self.0.shapes(select)
    }
    fn snapshot(
        &self,
        select: crate::source::Select<'_>,
        buffers: &mut BufferPool,
    ) -> Result<Snapshot, HookError> {
        self.0.snapshot(select, buffers)
    }
}
