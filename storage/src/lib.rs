//! htsr-storage: the sled store that keeps the history of every run.
//!
//! The store knows nothing of spectra or terminals: the engine fills [`htsr_contracts::LayerReport`]s, the daemon
//! writes them one checkpoint at a time ([`Store::write_checkpoint`], all layers or none), and the dashboard and the
//! exporters read them back as trajectories, phase grids and rows.

#![warn(missing_docs)]

mod error;
pub mod export;
#[cfg(feature = "test-support")]
pub mod fixtures;
mod history;
pub(crate) mod keys;
pub mod query;
pub mod records;
pub mod recovery;
pub mod stats;
pub mod store;
mod write;

pub use error::{Error, ErrorKind, Result};
pub use htsr_api::{PhaseGrid, RunSummary, StoreStats, TrajectoryPoint, TreeStats};
pub use stats::on_disk_bytes;
pub use store::{OpenOutcome, Store, SCHEMA_VERSION, UNDERSTOOD_VERSIONS};
