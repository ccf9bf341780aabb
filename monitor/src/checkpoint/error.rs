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

/// A safetensors parse error in words a user understands.
pub(crate) fn describe_safetensors_error(
    err: &safetensors::SafeTensorError,
    file_len: u64,
) -> String {
    use safetensors::SafeTensorError as E;
    match err {
        E::HeaderTooSmall if file_len == 0 => "the file is empty".to_string(),
        E::HeaderTooSmall => format!("the file is {file_len} bytes, too short for a header"),
        E::InvalidHeaderLength => {
            format!("the header length field points past the end of the file ({file_len} bytes): truncated or not safetensors")
        }
        E::HeaderTooLarge => "the header length field is absurdly large: not a safetensors file".to_string(),
        E::InvalidHeader(_) => "the header is not UTF-8: not a safetensors file".to_string(),
        E::InvalidHeaderStart | E::InvalidHeaderDeserialization(_) | E::JsonError(_) => {
            format!("the header is not valid safetensors JSON ({err})")
        }
        E::MetadataIncompleteBuffer => format!(
            "the header's tensor offsets do not cover the file's {file_len} bytes exactly: truncated, still being written, or corrupt"
        ),
        E::InvalidOffset(name) => format!("tensor {name:?}: its data offsets are invalid"),
        E::TensorInvalidInfo | E::ValidationOverflow => {
            format!("a tensor's shape and dtype do not match its byte range ({err})")
        }
        other => other.to_string(),
    }
}
