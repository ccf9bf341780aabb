//! htsr-api: the questions every viewer of htsr's history asks, defined once.
//!
//! The store answers them in-process ([`History`] is implemented by `htsr_storage::Store`); while a daemon holds
//! the store, the daemon answers them over its socket (`htsr-server`), and `htsr-client` asks them from any other
//! process, so the dashboard, `export`, `report`, `db` and Python read the same numbers either way. This crate is
//! the contract between the two sides, the way tokio-console's `console-api` sits between its instrumentation and
//! its viewer:
//!
//! - [`History`]: the read queries (runs, checkpoints, layer trajectories, phase grids, full reports with their
//!   ESDs, raw eigenvalues, store statistics, the row export) and the only two writes, `pin` and `unpin`.
//! - The result types ([`RunSummary`], [`PhaseGrid`], [`TrajectoryPoint`], [`StoreStats`]) and [`Error`], all
//!   serde types that cross the wire unchanged.
//! - [`Cut`]: a view of a history frozen at one moment, so that a report or export taken while checkpoints keep
//!   arriving is the store as it was when it began.
//! - [`local`]: where a store's daemon listens (its socket) and keeps its access token.
//! - [`wire`]: the HTTP paths and parameters of every request, the live event stream's framing, and
//!   [`API_VERSION`], which a client checks before anything else.

#![warn(missing_docs)]

mod cut;
mod error;
mod history;
pub mod local;
mod query;
pub mod wire;

pub use cut::Cut;
pub use error::{Error, ErrorKind, Result};
pub use history::{CsvRecords, History, PinOutcome, RowFormat};
pub use query::{
    downsample_indices, human_bytes, loss_series, rescale, PhaseGrid, RunSummary, StoreStats,
    TrajectoryPoint, TreeStats,
};
pub use wire::{ServerInfo, ViewerEvent, API_VERSION};
