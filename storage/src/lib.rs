//! htsr-storage: the records every htsr crate shares and the sled store that keeps their history.
//!
//! The store knows nothing of spectra or terminals: the engine fills [`LayerReport`]s, the daemon writes
//! them one checkpoint at a time, and the dashboard reads them back.

mod error;
pub mod esd;
pub mod export;
pub mod fixtures;
pub(crate) mod floats;
pub mod keys;
pub mod model;
pub mod query;
pub mod records;
pub mod recovery;
pub mod stats;
pub mod store;

pub use error::{Error, Result};
pub use model::*;
pub use query::{PhaseGrid, RunSummary};
pub use records::TrajectoryPoint;
pub use stats::{StoreStats, TreeStats};
pub use store::{OpenOutcome, Store, SCHEMA_VERSION, UNDERSTOOD_VERSIONS};
