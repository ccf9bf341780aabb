//! The store's errors, typed so that callers act on what happened: a held store is said to be held, a full disk is
//! retried, and only real corruption ever makes the daemon set a store aside.

use std::path::PathBuf;

/// The store's result type, with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the store can fail with; [`Error::kind`] sorts it into what a caller acts on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds the store (htsr's lock file, or sled's own lock).
    #[error("another process holds the lock on the store {path} (a running htsr-watch daemon?)")]
    Locked {
        /// The store's directory.
        path: PathBuf,
    },

    /// There is no store at the path (a reading command never creates one).
    #[error("no store at {path} (the daemon creates DIR/.htsr/ when it runs: `htsr-watch DIR`)")]
    NotFound {
        /// Where the store was looked for.
        path: PathBuf,
    },

    /// The store was written by a different schema version (or holds data but no version at all).
    #[error(
        "the store {path} has schema version {found}; this htsr understands version{} {}",
        if understood.len() == 1 { "" } else { "s" },
        understood.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
    )]
    UnsupportedVersion {
        /// The store's directory.
        path: PathBuf,
        /// The stored version value as its raw text (whatever bytes the version key holds).
        found: String,
        /// The schema versions this build reads ([`crate::UNDERSTOOD_VERSIONS`]).
        understood: Vec<u32>,
    },

    /// A stored value or key that does not decode, or sled reports corruption: the store is damaged.
    #[error("corrupt entry in tree {tree}: {detail}")]
    Corrupt {
        /// The sled tree the bad entry is in (`reports`, `meta`, ...).
        tree: &'static str,
        /// What failed to decode, in words.
        detail: String,
    },

    /// sled panicked while opening the store (it does on some damaged files).
    #[error("the store {path} cannot be read: sled panicked ({detail})")]
    Panicked {
        /// The store's directory.
        path: PathBuf,
        /// sled's panic message.
        detail: String,
    },

    /// The caller handed the store something inconsistent (duplicate layer names, raw eigenvalues of an
    /// unknown layer, ...). Nothing was written.
    #[error("invalid input: {0}")]
    Invalid(String),

    /// Two different files claim the same (run, step). Nothing was written: silently replacing the stored one
    /// would lose it, and the two would replace each other on every restart.
    #[error("run {run:?} step {step} is already stored from {stored}; {new} claims the same run and step (give each checkpoint its own htsr.step)")]
    Conflict {
        /// The run both files claim.
        run: String,
        /// The step both files claim.
        step: u64,
        /// The path of the file already stored under (run, step), relative to the watched directory.
        stored: String,
        /// The path of the file that claims the same (run, step), relative to the watched directory.
        new: String,
    },

    /// The store was closed for writing (the process is shutting down). Nothing was written.
    #[error("the store is closed for writing (shutting down)")]
    Closed,

    /// The database is being reopened after an I/O error and is not open yet.
    #[error(
        "the store {path} is not open (reopening it after an I/O error failed; it is retried)"
    )]
    Unavailable {
        /// The store's directory.
        path: PathBuf,
    },

    /// sled failed (I/O, corruption or a held lock; [`Error::kind`] tells which).
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),

    /// A stored value did not (de)serialize as JSON: counted as corruption.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),

    /// Writing or reading CSV failed (an export).
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),

    /// A file operation outside sled failed (lock file, export file, directory).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// What kind of failure an error is, for callers that decide what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Another process holds the store.
    Locked,
    /// No space left on the device (or a quota).
    OutOfSpace,
    /// Permission denied, or a read-only file system.
    PermissionDenied,
    /// Too many open files in the process or the system.
    TooManyOpenFiles,
    /// The store is damaged: the only kind that justifies setting it aside.
    Corrupt,
    /// The store is of a schema version this htsr cannot read.
    Unsupported,
    /// There is no store.
    NotFound,
    /// The caller's input (a conflict, an inconsistent checkpoint).
    Input,
    /// The store is closed or not open.
    Closed,
    /// Any other I/O error.
    Io,
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => return ErrorKind::OutOfSpace,
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
            return ErrorKind::PermissionDenied
        }
        Some(libc::EMFILE) | Some(libc::ENFILE) => return ErrorKind::TooManyOpenFiles,
        _ => {}
    }
    match e.kind() {
        std::io::ErrorKind::StorageFull => ErrorKind::OutOfSpace,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        _ => ErrorKind::Io,
    }
}

/// The kind of a sled error. sled reports a held lock as an I/O error of kind `Other` whose message says so; that
/// one string test is confined here (htsr's own lock file catches htsr processes before sled is asked).
pub(crate) fn sled_kind(e: &sled::Error) -> ErrorKind {
    match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            ErrorKind::Locked
        }
        sled::Error::Io(io) => io_kind(io),
        sled::Error::Corruption { .. } => ErrorKind::Corrupt,
        sled::Error::CollectionNotFound(_) | sled::Error::ReportableBug(_) => ErrorKind::Corrupt,
        // htsr only ever writes stores with sled 0.34.7 and one configuration, so sled finding an "unsupported"
        // format or configuration in one (a garbage `conf` file reads as an ancient sled) means its files are
        // damaged.
        sled::Error::Unsupported(_) => ErrorKind::Corrupt,
    }
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Locked { .. } => ErrorKind::Locked,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::UnsupportedVersion { .. } => ErrorKind::Unsupported,
            Error::Corrupt { .. } | Error::Panicked { .. } | Error::Json(_) => ErrorKind::Corrupt,
            Error::Invalid(_) | Error::Conflict { .. } => ErrorKind::Input,
            Error::Closed | Error::Unavailable { .. } => ErrorKind::Closed,
            Error::Sled(e) => sled_kind(e),
            Error::Io(e) => io_kind(e),
            Error::Csv(e) => match e.kind() {
                csv::ErrorKind::Io(io) => io_kind(io),
                _ => ErrorKind::Io,
            },
        }
    }

    /// True when the store is held by another process: callers print "a running daemon holds this store".
    pub fn is_locked(&self) -> bool {
        self.kind() == ErrorKind::Locked
    }

    /// True when a write failed for a reason that may go away (space, permissions, descriptors, I/O): worth
    /// retrying later, after reopening the database.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::OutOfSpace
                | ErrorKind::PermissionDenied
                | ErrorKind::TooManyOpenFiles
                | ErrorKind::Io
                | ErrorKind::Closed
        )
    }

    /// True when sled failed an I/O operation: it keeps failing (and its memory may be ahead of the disk) until
    /// the database is reopened.
    pub(crate) fn needs_reopen(&self) -> bool {
        matches!(self, Error::Sled(sled::Error::Io(_)) | Error::Io(_))
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
