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
//!
//! Spectra mode ([`Mode::Spectra`], `HTSR_MODE=spectra`) writes `step-N.esd.safetensors` instead: each layer's
//! eigenvalues, computed in the training process on the tensor's own device, split over the ranks of a distributed
//! run (`RANK`/`WORLD_SIZE`, `SLURM_PROCID`/`SLURM_NTASKS`) by cost. The ranks must hold the whole model (data
//! parallel): sharded weights (FSDP, tensor parallel) are not supported.
//!
//! The modules: [`builder`] (options and the environment), [`hook`] (steps and snapshots), [`spectra`] (spectra
//! on the device or from a snapshot), [`error`]. The file writing itself, with no libtorch in it, is the
//! `htsr-writer` crate.

pub mod builder;
pub mod error;
pub mod hook;
pub mod spectra;

pub use builder::{HookBuilder, DEFAULT_DIR, DEFAULT_EVERY};
pub use error::HookError;
pub use hook::{HookStats, HtsrHook, Mode, StepOutcome};
pub use htsr_contracts::naming::checkpoint_file_name;
pub use htsr_contracts::naming::env::{DIR as ENV_DIR, EVERY as ENV_EVERY, RUN as ENV_RUN};
pub use htsr_writer::{StepInfo, WhenBehind, DEFAULT_QUEUE};
pub use spectra::SpectraPrecision;
