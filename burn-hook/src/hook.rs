//! [`HtsrBurnHook`] (a [`HookCore`] fed by [`ModuleSource`]) and [`SharedBurnHook`], the same hook shared with a
//! model that Burn's `Learner` trains.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::Module;
use htsr_hook_core::{HookBuilder, HookCore, HookError, HookStats, Mode, StepInfo, StepOutcome};
use htsr_writer::WriterControl;

use crate::source::ModuleSource;

/// The Burn training-loop hook. See the crate documentation.
#[derive(Debug)]
pub struct HtsrBurnHook {
    core: HookCore,
}

impl From<HookCore> for HtsrBurnHook {
    fn from(core: HookCore) -> Self {
        Self { core }
    }
}

impl HtsrBurnHook {
    /// A builder whose defaults come from `HTSR_DIR`, `HTSR_EVERY`, `HTSR_RUN` and `HTSR_MODE` where set.
    pub fn builder() -> HookBuilder<HtsrBurnHook> {
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
    /// the interval. Any other step costs a few nanoseconds and does not visit the model.
    #[inline]
    pub fn step<M: Module>(&mut self, step: u64, model: &M) -> Result<StepOutcome, HookError> {
        self.core
            .step_with(step, &ModuleSource(model), StepInfo::default())
    }

    /// Like [`HtsrBurnHook::step`], with loss, learning rate, batch size or epoch for the metadata.
    #[inline]
    pub fn step_with<M: Module>(
        &mut self,
        step: u64,
        model: &M,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        self.core.step_with(step, &ModuleSource(model), info)
    }

    /// Call at the end of an epoch: writes a checkpoint for `step` when epoch-end checkpoints are on (the default)
    /// and none was written for this step yet.
    pub fn epoch_end<M: Module>(
        &mut self,
        step: u64,
        model: &M,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        self.core.epoch_end(step, &ModuleSource(model), info)
    }

    /// Writes a checkpoint for `step` now, whatever the interval.
    pub fn checkpoint<M: Module>(
        &mut self,
        step: u64,
        model: &M,
        info: StepInfo,
    ) -> Result<StepOutcome, HookError> {
        self.core.checkpoint(step, &ModuleSource(model), info)
    }

    /// Waits until every queued checkpoint is written (or failed). Returns a pending write error, if any.
    pub fn flush(&mut self) -> Result<(), HookError> {
        self.core.flush()
    }

    /// Flushes the queue, stops the writer and returns the first pending write error, if any.
    pub fn finish(self) -> Result<HookStats, HookError> {
        self.core.finish()
    }

    /// This hook, shared: for a model trained by Burn's `Learner`, which calls no user code with the model but
    /// [`TrainStep::optimize`](https://docs.rs/burn-train/0.22.1/burn_train/trait.TrainStep.html), on a clone of
    /// the model (see the crate documentation).
    pub fn into_shared(self) -> SharedBurnHook {
        SharedBurnHook {
            state: Arc::new(Mutex::new(Shared {
                hook: Some(self),
                steps: 0,
                error: None,
            })),
        }
    }

    /// Test support: holds and releases the writer thread, so that a test can fill the queue deterministically.
    #[doc(hidden)]
    pub fn writer_control(&self) -> WriterControl {
        self.core.writer_control()
    }
}

/// An [`HtsrBurnHook`] that a model can carry into Burn's `Learner` (`Clone + Debug + Send + Sync`, for a
/// `#[module(skip)]` field), which counts optimizer steps itself.
///
/// Burn's `Learner` hands the model to no callback; the one place user code sees the updated model once per
/// optimizer step is an override of `TrainStep::optimize`. There, call [`SharedBurnHook::after_update`]. It
/// cannot return an error into the `Learner`, so a failed checkpoint is logged (by the writer, when it fails) and
/// kept, and [`SharedBurnHook::finish`] returns the first one.
#[derive(Clone)]
pub struct SharedBurnHook {
    state: Arc<Mutex<Shared>>,
}

struct Shared {
    /// None once finished.
    hook: Option<HtsrBurnHook>,
    /// Optimizer steps seen so far.
    steps: u64,
    /// The first error not yet returned.
    error: Option<HookError>,
}

impl fmt::Debug for SharedBurnHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SharedBurnHook");
        // `try_lock`: a model printed while its hook is busy (by this very thread, say) must not deadlock.
        match self.state.try_lock() {
            Ok(state) => d.field("hook", &state.hook).field("steps", &state.steps),
            Err(_) => d.field("hook", &"<in use>"),
        };
        d.finish_non_exhaustive()
    }
}

impl SharedBurnHook {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Call after each optimizer update with the updated model: counts the update (the first is step 1, so the
    /// step is the number of updates the weights have seen) and checkpoints when that step is due. An error is
    /// kept for [`SharedBurnHook::finish`] (and logged); training goes on.
    pub fn after_update<M: Module>(&self, model: &M, info: StepInfo) -> StepOutcome {
        let mut state = self.lock();
        state.steps += 1;
        let step = state.steps;
        let Some(hook) = state.hook.as_mut() else {
            return StepOutcome::NotDue;
        };
        match hook.step_with(step, model, info) {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(step, error = %e, "htsr hook: checkpoint failed; training goes on");
                state.error.get_or_insert(e);
                StepOutcome::NotDue
            }
        }
    }

    /// Optimizer steps counted so far.
    pub fn steps(&self) -> u64 {
        self.lock().steps
    }

    /// Sets the count of optimizer steps already done (a resumed run), so that the next update is `steps + 1`.
    pub fn set_steps(&self, steps: u64) {
        self.lock().steps = steps;
    }

    /// Calls `f` with the hook (to checkpoint at an epoch end, flush, or read its stats); None once finished.
    pub fn with_hook<R>(&self, f: impl FnOnce(&mut HtsrBurnHook) -> R) -> Option<R> {
        self.lock().hook.as_mut().map(f)
    }

    /// Flushes and stops the hook (every clone sees it finished) and returns its stats, or the first error kept
    /// since the start. A second call returns the stats of nothing: zeros.
    pub fn finish(&self) -> Result<HookStats, HookError> {
        let (hook, error) = {
            let mut state = self.lock();
            (state.hook.take(), state.error.take())
        };
        let stats = match hook {
            Some(hook) => hook.finish(),
            None => Ok(HookStats::default()),
        };
        match error {
            Some(e) => Err(e),
            None => stats,
        }
    }
}
