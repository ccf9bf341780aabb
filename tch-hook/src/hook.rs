//! [`HtsrHook`]: decides which steps are checkpoints, snapshots the VarStore on the training thread (one memcpy
//! per tensor, in its own dtype), and hands the snapshot to the background [`CheckpointWriter`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use htsr_contracts::naming::checkpoint_file_name;
use htsr_contracts::spectra::{assign_layers, spectra_file_name, spectrum_cost};
use htsr_engine::analyze::AnalyzeOptions;
use htsr_writer::{
    checkpoint_metadata, spectra_job, BuiltFile, CheckpointWriter, Dtype, FileJob, LayerSpectrum,
    Reservation, StepInfo, TensorSnapshot, WriterControl,
};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::builder::{HookBuilder, NameFilter};
use crate::error::HookError;
use crate::spectra::{self, SpectraPrecision};

/// What the hook writes at a checkpoint step: the weights (the default), their spectra computed in the training
/// process on each tensor's device, or both (one definition for every writer, in htsr-contracts).
pub use htsr_contracts::naming::CheckpointMode as Mode;

/// What one call of [`HtsrHook::step`] (or its variants) did, and the hook's counters: one definition for every
/// htsr hook, in htsr-hook-core.
pub use htsr_hook_core::{HookStats, StepOutcome};

/// The training-loop hook. See the crate documentation.
pub struct HtsrHook {
    pub(crate) run: String,
    pub(crate) run_dir: PathBuf,
    pub(crate) every: u64,
    pub(crate) at_epoch_end: bool,
    pub(crate) filter: Option<NameFilter>,
    pub(crate) min_dims: usize,
    pub(crate) trainable_only: bool,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) writer: CheckpointWriter,
    pub(crate) last_checkpoint: Option<u64>,
    pub(crate) stats: HookStats,
    pub(crate) mode: Mode,
    /// This process's rank and the number of ranks (0, 1 without a distributed launcher).
    pub(crate) rank: (usize, usize),
    pub(crate) precision: SpectraPrecision,
    /// Compute CPU tensors' spectra with libtorch on the training thread too (as on an accelerator).
    pub(crate) spectra_on_device: bool,
    /// The size limits of the analysis (layers outside them get no spectrum).
    pub(crate) limits: AnalyzeOptions,
    /// Layers to ranks, computed once from the model's shapes (every rank computes the same).
    pub(crate) assignment: Option<BTreeMap<String, usize>>,
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

/// The safetensors dtype of a libtorch kind, or None for kinds safetensors cannot hold (complex, quantized).
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
        let w = self.writer.stats();
        HookStats {
            written: w.written,
            failed: w.failed,
            ..self.stats
        }
    }

    /// Whether step `step` is a checkpoint step.
    #[inline]
    pub fn is_due(&self, step: u64) -> bool {
        self.every != 0 && step.is_multiple_of(self.every) && self.last_checkpoint != Some(step)
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
            outcome = self.write_weights(step, vs, metadata.clone())?;
        }
        if spectra {
            let o = self.write_spectra(step, vs, metadata)?;
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

    /// Takes a queue slot: None when the writer is behind and the hook skips.
    fn reserve(&self) -> Result<Option<StepOutcome>, HookError> {
        Ok(match self.writer.reserve()? {
            Reservation::Skipped => None,
            Reservation::Reserved => Some(StepOutcome::Queued),
            Reservation::Waited(d) => Some(StepOutcome::Waited(d)),
        })
    }

    fn write_weights(
        &mut self,
        step: u64,
        vs: &VarStore,
        metadata: std::collections::HashMap<String, String>,
    ) -> Result<StepOutcome, HookError> {
        let Some(outcome) = self.reserve()? else {
            return Ok(StepOutcome::Skipped);
        };
        let tensors = match self.snapshot(&self.selected_variables(vs)) {
            Ok(t) => t,
            Err(e) => {
                self.writer.release();
                return Err(e);
            }
        };
        self.writer.submit(FileJob {
            file_name: checkpoint_file_name(step),
            metadata,
            tensors,
        })?;
        Ok(outcome)
    }

    /// The spectra of this rank's share of the layers: computed on the device for accelerator tensors (now), from
    /// a snapshot on the writer thread for CPU tensors.
    fn write_spectra(
        &mut self,
        step: u64,
        vs: &VarStore,
        metadata: std::collections::HashMap<String, String>,
    ) -> Result<StepOutcome, HookError> {
        let vars = self.selected_variables(vs);
        let (rank, world) = self.rank;
        let limits = self.limits.clone();
        let assignment = self
            .assignment
            .get_or_insert_with(|| {
                let costs: Vec<(String, f64)> = vars
                    .iter()
                    .map(|(name, t)| {
                        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
                        let cost = spectra::plan_for(&shape, &limits)
                            .map_or(0.0, |p| spectrum_cost(p.n(), p.m(), p.slices));
                        (name.clone(), cost)
                    })
                    .collect();
                assign_layers(&costs, world)
            })
            .clone();
        let mine: Vec<(String, Tensor)> = vars
            .into_iter()
            .filter(|(name, _)| assignment.get(name).is_none_or(|&r| r == rank))
            .collect();
        let Some(outcome) = self.reserve()? else {
            return Ok(StepOutcome::Skipped);
        };
        let mut done: Vec<LayerSpectrum> = Vec::new();
        let mut on_cpu: Vec<(String, Tensor)> = Vec::new();
        for (name, t) in mine {
            let Some(dtype) = dtype_of(t.kind()) else {
                let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
                let reason = format!("dtype {:?} has no safetensors equivalent", t.kind());
                done.push(spectra::skipped(&name, &shape, "", reason));
                continue;
            };
            if t.device() != tch::Device::Cpu || self.spectra_on_device {
                match spectra::on_device(&name, &t, dtype, &limits, self.precision) {
                    Ok(layer) => done.push(layer),
                    Err(e) => {
                        self.writer.release();
                        return Err(HookError::Snapshot {
                            name,
                            message: format!("computing its spectrum on {:?}: {e}", t.device()),
                        });
                    }
                }
            } else {
                on_cpu.push((name, t));
            }
        }
        let rank_of = (world > 1).then_some((rank, world));
        if on_cpu.is_empty() {
            done.sort_by(|a, b| a.tensor.cmp(&b.tensor));
            self.writer
                .submit(spectra_job(step, rank_of, done, &assignment, metadata))?;
            return Ok(outcome);
        }
        let snapshots = match self.snapshot(&on_cpu) {
            Ok(s) => s,
            Err(e) => {
                self.writer.release();
                return Err(e);
            }
        };
        let build = move || {
            done.extend(snapshots.iter().map(|s| spectra::from_snapshot(s, &limits)));
            done.sort_by(|a, b| a.tensor.cmp(&b.tensor));
            BuiltFile {
                file: Ok(spectra_job(step, rank_of, done, &assignment, metadata)),
                spent_buffers: snapshots.into_iter().map(|s| s.data).collect(),
            }
        };
        self.writer
            .submit_deferred(spectra_file_name(step, rank_of), Box::new(build))?;
        Ok(outcome)
    }

    /// The variables a checkpoint holds: at least `min_dims` dimensions, trainable unless configured otherwise,
    /// passing the name filter; sorted by name.
    pub(crate) fn selected_variables(&self, vs: &VarStore) -> Vec<(String, Tensor)> {
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
        vars
    }

    /// Copies `vars` to CPU bytes, into buffers the writer recycled.
    fn snapshot(&self, vars: &[(String, Tensor)]) -> Result<Vec<TensorSnapshot>, HookError> {
        let mut buffers = self.writer.recycled_buffers();
        buffers.reverse();
        let mut out = Vec::with_capacity(vars.len());
        for (name, t) in vars {
            let name = name.clone();
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
            out.push(TensorSnapshot {
                name,
                dtype,
                shape,
                data,
            });
        }
        Ok(out)
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
