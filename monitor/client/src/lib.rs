//! htsr-client: how every viewer (the dashboard, `export`, `report`, `db`, Python) reads a store's history, the
//! same command whether a daemon holds the store or not.
//!
//! - [`open`] finds what answers for a store: the daemon serving it ([`RemoteHistory`], over the socket beside the
//!   store), else the store itself ([`LocalHistory`], opened read-only and let go when idle so that a daemon
//!   starting later gets it). Both are an `Arc<dyn History>`; [`Opened::attached`] says which it was.
//! - [`Endpoint`]: a daemon's address, the local socket or `http://HOST:PORT` (for an SSH tunnel or `--serve`).
//! - [`follow`]: the daemon's live events for a viewer, reconnecting by itself when the daemon restarts or appears,
//!   and telling the viewer when it attaches, detaches or fell behind.

#![warn(missing_docs)]

mod auto;
mod endpoint;
mod follow;
mod http;
mod local;
mod remote;

pub use auto::{default_store, open, Opened, Target};
pub use endpoint::Endpoint;
pub use follow::follow;
pub use local::LocalHistory;
pub use remote::RemoteHistory;
