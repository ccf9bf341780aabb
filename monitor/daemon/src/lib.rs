//! htsr-daemon: the watch daemon behind `htsr-watch DIR`, as a library. It finds checkpoints, waits until each is
//! complete, analyzes each once in (run, step) order with htsr-engine, stores each in one atomic batch with
//! htsr-storage, tells its consumers what happened ([`htsr_contracts::LiveEvent`]), and survives whatever happens
//! to the files or to itself.
//!
//! ```text
//! notify events / periodic rescan -> scan (which paths are checkpoints, which run)
//!   -> readiness (final name, complete header, stable size; backoff; give up -> failed record)
//!   -> queue (ordered by run, step) -> worker pool (one tensor at a time; frozen layers reused)
//!   -> Store::write_checkpoint (one batch) -> log lines and live events
//! ```
//!
//! The command line, the dashboard and the exporters are not here: `htsr-watch` wires them to [`run`].

#![warn(missing_docs)]

mod config;
mod daemon;
mod frozen;
mod identity;
mod jobs;
mod progress;
mod queue;
mod ranks;
mod readiness;
mod retry;
mod scan;
mod shutdown;
mod watcher;
mod worker;

pub use config::{Summary, WatchConfig};
pub use daemon::run;
pub use progress::{phase_summary, Progress};
pub use readiness::ReadinessConfig;
pub use shutdown::Shutdown;
