//! `htsr-burn-hook`: htsr's training-loop hook for [Burn](https://burn.dev) 0.22.
//!
//! Every N steps (and/or at epoch ends) the hook snapshots the float parameters of any Burn
//! [`Module`](burn::module::Module) and writes them, on a background thread, to
//! `DIR/RUN/step-<9-digit step>.safetensors` with the `htsr.*` metadata (`htsr.step`, `htsr.run`,
//! `htsr.wall_time`, and when given `htsr.epoch`, `htsr.loss`, `htsr.lr`, `htsr.batch_size` and your own keys):
//! the files the tch hook writes, which `htsr-watch DIR` analyzes as they appear. Options, `HTSR_*` environment
//! defaults, outcomes and guarantees are the tch hook's; they live in `htsr-hook-core`, shared with the Candle
//! hook.
//!
//! In a hand-written loop, after the optimizer step:
//!
//! ```no_run
//! # fn main() -> Result<(), htsr_burn_hook::HookError> {
//! use burn::nn::{Linear, LinearConfig};
//! use burn::optim::{AdamConfig, GradientsParams};
//! use burn::prelude::*;
//! use htsr_burn_hook::{HtsrBurnHook, StepInfo};
//!
//! let device = Device::flex().autodiff();
//! let mut model: Linear = LinearConfig::new(40, 10).init(&device);
//! let mut optim = AdamConfig::new().init();
//! let mut hook = HtsrBurnHook::builder().dir("htsr-runs").run("burn").every(50).build()?;
//! for step in 1..=1000u64 {
//!     let x = Tensor::<2>::random([64, 40], burn::tensor::Distribution::Default, &device);
//!     let loss = model.forward(x).powi_scalar(2).mean();
//!     let grads = GradientsParams::from_grads(loss.backward(), &model);
//!     model = optim.step(1e-3, model, grads);
//!     hook.step_with(step, &model, StepInfo::new().lr(1e-3))?;
//! }
//! hook.finish()?;
//! # Ok(()) }
//! ```
//!
//! With Burn's `Learner`, which hands the model to no callback: carry a [`SharedBurnHook`] in a
//! `#[module(skip)]` field and call it from an override of `TrainStep::optimize`, which the `Learner` runs once
//! per optimizer step with the updated model in hand (override `optimize_multi` too for multi-device training):
//!
//! ```no_run
//! use burn::nn::{loss::CrossEntropyLoss, Linear};
//! use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
//! use burn::optim::{GradientsParams, ModuleOptimizer};
//! use burn::prelude::*;
//! use burn::train::{ClassificationOutput, TrainOutput, TrainStep};
//! use htsr_burn_hook::{SharedBurnHook, StepInfo};
//!
//! #[derive(Module, Debug)]
//! pub struct Classifier {
//!     fc: Linear,
//!     #[module(skip)]
//!     htsr: Option<SharedBurnHook>,
//! }
//!
//! impl TrainStep for Classifier {
//!     type Input = (Tensor<2>, Tensor<1, Int>);
//!     type Output = ClassificationOutput;
//!     fn step(&self, (x, y): Self::Input) -> TrainOutput<ClassificationOutput> {
//!         let logits = self.fc.forward(x);
//!         let loss = CrossEntropyLoss::new(None, &logits.device()).forward(logits.clone(), y.clone());
//!         TrainOutput::new(self, loss.backward(), ClassificationOutput::new(loss, logits, y))
//!     }
//!     fn optimize(self, optim: &mut ModuleOptimizer, lr: ModuleLearningRate, grads: GradientsParams) -> Self {
//!         let info = StepInfo::new().lr(lr.base());
//!         let model = optim.step(lr, self, grads); // the default body
//!         if let Some(htsr) = &model.htsr {
//!             htsr.after_update(&model, info); // the hook counts the optimizer steps
//!         }
//!         model
//!     }
//! }
//! // Build with `htsr: Some(HtsrBurnHook::builder().build()?.into_shared())`, keep a clone, and call its
//! // `finish()` after `launch`.
//! ```
//!
//! Names and layout ([`ModuleSource`]): tensors are named by Burn's record paths (`fc1.weight`,
//! `layers.0.weight`), Linear weights are transposed to PyTorch's `[out, in]`, convolution kernels are already in
//! PyTorch's layout, and every dtype is kept. Spectra mode ([`Mode::Spectra`]) computes each layer's eigenvalues
//! from the snapshot with htsr-engine on the writer thread, whatever the backend (an accelerator's values are
//! copied to the host first).

#![warn(missing_docs)]

pub mod hook;
pub mod source;

pub use hook::{HtsrBurnHook, SharedBurnHook};
pub use htsr_hook_core::{
    checkpoint_file_name, HookBuilder, HookError, HookStats, Mode, StepInfo, StepOutcome,
    WhenBehind, DEFAULT_DIR, DEFAULT_EVERY, DEFAULT_QUEUE, ENV_DIR, ENV_EVERY, ENV_MODE, ENV_RUN,
};
pub use source::ModuleSource;

/// The builder of [`HtsrBurnHook`] ([`HtsrBurnHook::builder`]).
pub type BurnHookBuilder = HookBuilder<HtsrBurnHook>;
