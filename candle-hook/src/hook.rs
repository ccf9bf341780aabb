//! [`HtsrCandleHook`]: a [`HookCore`] fed by [`VarMapSource`].

use std::path::Path;

use candle_nn::VarMap;
use htsr_hook_core::{HookBuilder, HookCore, HookError, HookStats, Mode, StepInfo, StepOutcome};
use htsr_writer::WriterControl;

use crate::source::VarMapSource;

/// The Candle training-loop hook. See the crate documentation.
#[derive(Debug)]
pub struct HtsrCandleHook {
    core: HookCore,
}

impl From<HookCore> for HtsrCandleHook {
    fn from(core: HookCore) -> Self {
        Self { core }
    }
}

impl HtsrCandleHook {
    /// A builder whose defaults come from `HTSR_DIR`, `HTSR_EVERY`, `HTSR_RUN` and `HTSR_MODE` where set.
    pub fn builder() -> HookBuilder<HtsrCandleHook> {
        HookBuilder::from_env()
    }

    /// The run name.
    pub fn run(&self) -> &str {
        self.core.run()
    }

    /// The directory the checkpoints go to (`dir/run`).
    pub fn run_dir(&self) -> &Path {
        self.core.run_dir()
    }

    /// The step interval (0: step-based checkpoints off).
    pub fn every(&self) -> u64 {
        self.core.every()
    }

    /// What a checkpoint holds.
    pub fn mode(&self) -> Mode {
        self.core.mode()
    }

    /// What the hook did so far (`written`/`failed` count completed writes).
    pub fn stats(&self) -> HookStats {
        self.core.stats()
    }

    /// Whether `step` is a checkpoint step.
    #[inline]
    pub fn is_due(&self, step: u64) -> bool {
        self.core.is_due(step)
    }

    /// Call once per training step, after the optimizer step: writes a checkpoint when `step` is a multiple of
    /// the interval. Any other step costs a few nanoseconds and does not lock the VarMap.
    #[inline]
    pub fn step(&mut self, step: u64, varmap: &VarMap) -> Result<StepOutcome, HookError> {
        self.core
            .step_with(step, &VarMapSource(varmap), StepInfo::default())
    }

    /// Like [`HtsrCandleHook::step`], with loss, learning rate, batch size or epoch for the metadata.
    #[inline]
    pub fn step_with(
        &mut self,
        step: u64,
        varmap: &VarMap,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        self.core.step_with(step, &VarMapSource(varmap), info)
    }

    /// Call at the end of an epoch: writes a checkpoint for `step` when epoch-end checkpoints are on (the default)
    /// and none was written for this step yet.
    pub fn epoch_end(
        &mut self,
        step: u64,
        varmap: &VarMap,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        self.core.epoch_end(step, &VarMapSource(varmap), info)
    }

    /// Writes a checkpoint for `step` now, whatever the interval.
    pub fn checkpoint(
        &mut self,
        step: u64,
        varmap: &VarMap,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        self.core.checkpoint(step, &VarMapSource(varmap), info)
    }

    /// Waits until every queued checkpoint is written (or failed). Returns a pending write error, if any.
    pub fn flush(&mut self) -> Result<(), HookError> {
        self.core.flush()
    }

    /// Flushes the queue, stops the writer and returns the first pending write error, if any.
    pub fn finish(self) -> Result<HookStats, HookError> {
        self.core.finish()
    }

    /// Test support: holds and releases the writer thread, so that a test can fill the queue deterministically.
    #[doc(hidden)]
    pub fn writer_control(&self) -> WriterControl {
        self.core.writer_control()
    }
}
