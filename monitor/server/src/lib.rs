//! htsr-server: the daemon serves what it holds. While `htsr-watch DIR` runs, it owns the store (sled allows one
//! process per store); this crate lets any number of viewers read it anyway, the way tokio-console's instrumented
//! process serves its consoles.
//!
//! - A Unix socket beside the store (`DIR/.htsr.sock`, owner-only: no network by default), and on request a TCP
//!   listener (`--serve ADDR`) whose every request must carry the store's token when it is reachable from other
//!   machines.
//! - The API of `htsr-api` over HTTP/1.1 (hyper, routed by axum): every [`htsr_api::History`] query as JSON, the
//!   row export streamed, and the daemon's live events as server-sent events. It serves any `History`: the daemon
//!   hands it its store.
//! - An optional page at `/`, rendered by a function the binary supplies (the live report), so this crate knows
//!   nothing of charts.
//!
//! The daemon comes first. It only ever sends its events into a channel; a thread here fans them out through a
//! bounded ring ([`Limits::event_buffer`]), so a viewer that stops reading (a stuck or SIGSTOPped process) loses
//! events, is told how many (`lagged`) and re-reads, while the daemon and every other viewer go on. Store reads run
//! on a small pool of lower-priority threads, bounded in number; connections are bounded too, and a client that
//! does not send its request in time is dropped. Nothing a client sends can stop the daemon: garbage is answered
//! with an error or the connection closed.

#![warn(missing_docs)]

mod events;
mod routes;
mod serve;
mod socket;
mod token;

pub use serve::{Limits, PageFn, Running, ServeOptions, Server};
pub use socket::{bind_unix, UnixSocket};
pub use token::{load_or_create_token, TokenFile};
