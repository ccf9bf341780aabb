use std::path::PathBuf;

/// Why a checkpoint could not be read at all. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid safetensors file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path}: sharded checkpoint index is unusable: {reason}")]
    Index { path: PathBuf, reason: String },
    #[error("{path}: no checkpoint here (expected a .safetensors file or a directory holding {index})", index = super::SHARD_INDEX_FILE)]
    NotACheckpoint { path: PathBuf },
    /// The file changed while it was being read (rewritten in place, truncated, replaced): what was read may be
    /// torn, so it is dropped; a watcher reads the file again once it is stable.
    #[error("{path}: changed while it was read ({reason})")]
    Changed { path: PathBuf, reason: String },
    /// The caller asked the analysis to stop (the daemon is shutting down).
    #[error("analysis cancelled")]
    Cancelled,
}

impl CheckpointError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CheckpointError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        CheckpointError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// True when the file vanished (deleted mid-read): the daemon treats this as "gone", not "corrupt".
    pub fn is_not_found(&self) -> bool {
        matches!(self, CheckpointError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}
