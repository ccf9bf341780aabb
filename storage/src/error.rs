//! The store's errors. Lock contention and version mismatch get their own variants because callers act on them:
//! the dashboard tells the user a daemon holds the store, and nobody should silently rewrite a newer format.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// sled holds an exclusive file lock; a second process cannot open the same store.
    #[error("another process holds the lock on the store {path} (a running htsr-watch daemon?): {detail}")]
    Locked { path: PathBuf, detail: String },

    /// The store was written by a different schema version (or holds data but no version at all).
    #[error(
        "the store {path} has schema version {found}; this htsr understands version{} {}",
        if understood.len() == 1 { "" } else { "s" },
        understood.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: String,
        understood: Vec<u32>,
    },

    /// A stored value or key that does not decode: the store is damaged or was written by other code.
    #[error("corrupt entry in tree {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },

    /// The caller handed the store something inconsistent (duplicate layer names, raw eigenvalues of an
    /// unknown layer, ...). Nothing was written.
    #[error("invalid input: {0}")]
    Invalid(String),

    /// Two different files claim the same (run, step). Nothing was written: silently replacing the stored one
    /// would lose it, and the two would replace each other on every restart.
    #[error("run {run:?} step {step} is already stored from {stored}; {new} claims the same run and step (give each checkpoint its own htsr.step)")]
    Conflict {
        run: String,
        step: u64,
        stored: String,
        new: String,
    },

    #[error("sled: {0}")]
    Sled(#[from] sled::Error),

    #[error("json: {0}")]
    Json(#[from] serde_json::Error),

    #[error("csv: {0}")]
    Csv(#[from] csv::Error),

    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True when the store is held by another process: callers print "a running daemon holds this store".
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Locked { .. })
    }
}

impl From<sled::transaction::TransactionError<Error>> for Error {
    fn from(e: sled::transaction::TransactionError<Error>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => Error::Sled(e),
        }
    }
}
