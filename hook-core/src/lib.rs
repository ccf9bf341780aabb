//! `htsr-hook-core`: the framework-free half of htsr's training-loop hooks (the Burn and Candle hooks wrap it).
//!
//! A framework hook supplies one thing, a [`ParamSource`]: its parameters' names, their shapes in PyTorch layout
//! and their raw bytes in their own dtype. The core does the rest, the same way for every framework:
//!
//! - options and their `HTSR_DIR` / `HTSR_RUN` / `HTSR_EVERY` / `HTSR_MODE` defaults ([`HookBuilder`]), the names
//!   and rules of `htsr-contracts` (file names, run names, metadata keys, ranks from `RANK`/`WORLD_SIZE` or Slurm);
//! - which steps are checkpoints ([`HookCore::is_due`]: a step that is not costs nanoseconds and never touches the
//!   model), and the [`StepOutcome`] of each call;
//! - which parameters a checkpoint holds (at least `min_dims` dimensions, the name filter), sorted by name;
//! - the hand-off to `htsr-writer`'s [`CheckpointWriter`](htsr_writer::CheckpointWriter): weights as
//!   `step-<9 digits>.safetensors` with the `htsr.*` metadata, spectra ([`Mode::Spectra`]) computed from the same
//!   snapshot by htsr-engine on the writer thread into `step-<9 digits>.esd.safetensors` (one file per rank,
//!   layers balanced by cost), exactly as the tch hook does for CPU tensors.
//!
//! Raw tensors already in PyTorch layout are a source as they are:
//!
//! ```no_run
//! # fn main() -> Result<(), htsr_hook_core::HookError> {
//! use htsr_hook_core::{Dtype, HookCore, StepInfo, TensorSnapshot};
//!
//! let weights = vec![TensorSnapshot {
//!     name: "fc1.weight".into(),
//!     dtype: Dtype::F32,
//!     shape: vec![64, 40],
//!     data: vec![0u8; 64 * 40 * 4],
//! }];
//! let mut hook = HookCore::builder().dir("htsr-runs").run("raw").every(10).build()?;
//! for step in 1..=100 {
//!     // ... update `weights` ...
//!     hook.step_with(step, weights.as_slice(), StepInfo::new().loss(0.5))?;
//! }
//! hook.finish()?;
//! # Ok(()) }
//! ```
//!
//! The guarantees are the writer's: atomic files (temporary name, fsync, rename, directory fsync), a bounded queue
//! with [`WhenBehind::Wait`] or [`WhenBehind::Skip`], a failed write returned by the next call while training goes
//! on, and a flush when the hook is dropped.

#![warn(missing_docs)]

pub mod builder;
pub mod error;
pub mod hook;
pub mod source;
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod test_support;

pub use builder::HookBuilder;
pub use error::HookError;
pub use hook::{HookCore, HookStats, Mode, StepOutcome};
pub use htsr_contracts::naming::env::{
    DIR as ENV_DIR, EVERY as ENV_EVERY, MODE as ENV_MODE, RUN as ENV_RUN,
};
pub use htsr_contracts::naming::{checkpoint_file_name, DEFAULT_DIR, DEFAULT_EVERY};
pub use htsr_contracts::spectra::spectra_file_name;
pub use htsr_writer::{Dtype, StepInfo, TensorSnapshot, WhenBehind, WriterControl, DEFAULT_QUEUE};
pub use source::{BufferPool, ParamSource, Select, Snapshot, Unsupported};
