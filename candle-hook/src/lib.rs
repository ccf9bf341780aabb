//! `htsr-candle-hook`: htsr's training-loop hook for [Candle](https://github.com/huggingface/candle) 0.11.
//!
//! Every N steps (and/or at epoch ends) the hook snapshots the variables of a candle-nn
//! [`VarMap`](candle_nn::VarMap) and writes them, on a background thread, to
//! `DIR/RUN/step-<9-digit step>.safetensors` with the `htsr.*` metadata (`htsr.step`, `htsr.run`,
//! `htsr.wall_time`, and when given `htsr.epoch`, `htsr.loss`, `htsr.lr`, `htsr.batch_size` and your own keys):
//! the files the tch hook writes, which `htsr-watch DIR` analyzes as they appear. Options, `HTSR_*` environment
//! defaults, outcomes and guarantees are the tch hook's; they live in `htsr-hook-core`, shared with the Burn hook.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use candle_core::{DType, Device, Module, Tensor};
//! use candle_nn::{linear, loss, AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
//! use htsr_candle_hook::{HtsrCandleHook, StepInfo};
//!
//! let device = Device::Cpu;
//! let varmap = VarMap::new();
//! let fc = linear(40, 10, VarBuilder::from_varmap(&varmap, DType::F32, &device).pp("fc"))?;
//! let mut opt = AdamW::new(varmap.all_vars(), ParamsAdamW { lr: 1e-3, ..Default::default() })?;
//! let mut hook = HtsrCandleHook::builder().dir("htsr-runs").run("candle").every(50).build()?;
//! for step in 1..=1000u64 {
//!     let x = Tensor::randn(0f32, 1., (64, 40), &device)?;
//!     let y = Tensor::zeros(64, DType::U32, &device)?;
//!     let loss = loss::cross_entropy(&fc.forward(&x)?, &y)?;
//!     opt.backward_step(&loss)?;
//!     let info = StepInfo::new().loss(loss.to_scalar::<f32>()? as f64).lr(1e-3);
//!     hook.step_with(step, &varmap, info)?; // checkpoints `fc.weight` every 50 updates
//! }
//! hook.finish()?;
//! # Ok(()) }
//! ```
//!
//! Names and layout ([`VarMapSource`]): tensors are named as in the VarMap (the `VarBuilder` paths), sorted;
//! candle-nn already stores weights in PyTorch's layout, and every dtype is kept. Spectra mode ([`Mode::Spectra`])
//! computes each layer's eigenvalues from the snapshot with htsr-engine on the writer thread (a GPU tensor's
//! values are copied to the host first).

#![warn(missing_docs)]

pub mod hook;
pub mod source;

pub use hook::HtsrCandleHook;
pub use htsr_hook_core::{
    checkpoint_file_name, HookBuilder, HookError, HookStats, Mode, StepInfo, StepOutcome,
    WhenBehind, DEFAULT_DIR, DEFAULT_EVERY, DEFAULT_QUEUE, ENV_DIR, ENV_EVERY, ENV_MODE, ENV_RUN,
};
pub use source::VarMapSource;

/// The builder of [`HtsrCandleHook`] ([`HtsrCandleHook::builder`]).
pub type CandleHookBuilder = HookBuilder<HtsrCandleHook>;
