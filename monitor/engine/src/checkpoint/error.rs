use std::path::PathBuf;

/// Why a checkpoint could not be read at all. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Opening, mapping or reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid safetensors file (header, dtypes, shapes or data offsets); `reason` says what.
    #[error("{path}: not a valid safetensors file: {reason}")]
    Invalid {
        /// The file being read.
        path: PathBuf,
        /// What is wrong with it, in words.
        reason: String,
    },
    /// A Hugging Face `model.safetensors.index.json` that does not parse or names shards that do not fit.
    #[error("{path}: sharded checkpoint index is unusable: {reason}")]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it, in words.
        reason: String,
    },
    /// The path is neither a `.safetensors` file nor a directory with a shard index.
    #[error("{path}: no checkpoint here (expected a .safetensors file or a directory holding {index})", index = super::SHARD_INDEX_FILE)]
    NotACheckpoint {
        /// The path given.
        path: PathBuf,
    },
    /// The file changed while it was being read (rewritten in place, truncated, replaced): what was read may be
    /// torn, so it is dropped; a watcher reads the file again once it is stable.
    #[error("{path}: changed while it was read ({reason})")]
    Changed {
        /// The file that changed (a shard, or a sharded checkpoint's index).
        path: PathBuf,
        /// What changed (its length, modification time or header), in words.
        reason: String,
    },
    /// The caller asked the analysis to stop (the daemon is shutting down).
    #[error("analysis cancelled")]
    Cancelled,
}

impl CheckpointError {
    /// An [`CheckpointError::Io`] error for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CheckpointError::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`CheckpointError::Invalid`] error for `path`, with `reason` in words.
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
