//! What a history query can fail with, on either side of the wire: a serde type, so that the daemon sends the
//! store's error to a client as it is, and the client shows the user the same sentence the store would have.

use serde::{Deserialize, Serialize};

/// A history query's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a query failed: its kind (what a caller acts on) and a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// What happened, in words, naming the store, run or file involved.
    pub message: String,
}

/// The kinds of failure a caller distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// There is no store (or no such run or checkpoint, where the query needs one).
    NotFound,
    /// Another process holds the store and does not serve it.
    Locked,
    /// The store is closed, or being reopened after an I/O error: asking again later may work.
    Unavailable,
    /// The store is damaged.
    Corrupt,
    /// The store (or the daemon) is of a version this htsr cannot read.
    Unsupported,
    /// The request itself is wrong (an unknown parameter, a step that is not a number).
    Invalid,
    /// The daemon refused the request: a missing or wrong token.
    Denied,
    /// The daemon could not be reached, or the connection broke.
    Connection,
    /// Any other I/O failure (disk, permissions).
    Io,
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// A broken or refused connection to a daemon.
    pub fn connection(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Connection, message)
    }

    /// A request the other side could not understand.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Invalid, message)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, e.to_string())
    }
}
