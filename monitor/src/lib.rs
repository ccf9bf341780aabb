//! htsr-monitor: the HTSR analysis engine and the `htsr-watch` daemon.
//!
//! `checkpoint` reads safetensors files into matrices, `spectrum` turns matrices into eigenvalues, fits
//! and a phase (pure functions, no I/O), and `analyze` ties them together for one checkpoint.

pub mod analyze;
pub mod checkpoint;
pub mod spectrum;

pub use analyze::{
    analyze_checkpoint, analyze_matrix, AnalyzeOptions, CheckpointAnalysis, LayerAnalysis,
};
pub mod cli;
pub mod output;
pub mod synthetic;
pub mod watch;
