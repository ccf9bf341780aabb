//! The watch daemon behind `htsr-watch DIR`: find checkpoints, wait until each is complete, analyze each once
//! in (run, step) order, store each in one atomic batch, and survive whatever happens to the files or to itself.
//!
//! ```text
//! notify events / periodic rescan -> scan (which paths are checkpoints, which run)
//!   -> readiness (final name, complete header, stable size; backoff; give up -> failed record)
//!   -> queue (ordered by run, step) -> worker pool (one tensor at a time; frozen layers reused)
//!   -> Store::write_checkpoint (one batch) -> progress log / live events
//! ```
//!
//! - [`scan`]: the checkpoint contract of ARCHITECTURE.md: which paths are checkpoints, which run they belong to.
//! - [`identity`]: one cheap look at a checkpoint (size, mtime, header hash, validity).
//! - [`readiness`]: the per-path state machine deciding when a file is ready, still being written, or broken.
//! - [`queue`]: the pending work, ordered by (run, step).
//! - [`worker`] and [`frozen`]: analysis of one checkpoint, reusing reports of unchanged tensors.
//! - [`daemon`]: the loop that ties them together; [`shutdown`]: signals; [`progress`]: log lines and the bar.

pub mod daemon;
pub mod frozen;
pub mod identity;
pub mod progress;
pub mod queue;
pub mod readiness;
pub mod scan;
pub mod shutdown;
pub mod worker;

pub use daemon::{run, Summary, WatchConfig};
pub use readiness::ReadinessConfig;
pub use shutdown::Shutdown;
