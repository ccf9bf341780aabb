//! The hooks' errors: configuration, the run directory, a snapshot the framework refused, and the writer's errors.

use std::path::PathBuf;

use htsr_writer::WriteError;

/// Errors of a hook. Write errors carry the final path the checkpoint was meant for.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The configuration is invalid (a bad environment variable, an empty run name, ...).
    #[error("htsr hook configuration: {0}")]
    Config(String),
    /// The run directory could not be created (or written into).
    #[error("htsr hook: cannot create checkpoint directory {path}: {source}")]
    CreateDir {
        /// The run directory (`dir/run`).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Copying a tensor out of the framework failed.
    #[error("htsr hook: cannot snapshot tensor {name}: {message}")]
    Snapshot {
        /// The tensor's name in the checkpoint.
        name: String,
        /// The framework's error, in words.
        message: String,
    },
    /// Writing a checkpoint failed; no file was left under `path`.
    #[error("htsr hook: writing checkpoint {path} failed: {message}")]
    Write {
        /// The final path of the checkpoint that was not written.
        path: PathBuf,
        /// What failed, in words.
        message: String,
    },
    /// The writer thread is gone (it panicked).
    #[error("htsr hook: the writer thread stopped unexpectedly")]
    WriterGone,
}

impl From<WriteError> for HookError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Write { path, message } => HookError::Write { path, message },
            WriteError::WriterGone => HookError::WriterGone,
        }
    }
}
