//! htsr-engine: the HTSR analysis of one layer or one checkpoint, as WeightWatcher 0.7.7's `analyze()` defines it,
//! plus htsr's phase classifier. No store, no terminal, no watcher: matrices and files in, reports out.
//!
//! - [`checkpoint`] reads safetensors files and Hugging Face sharded checkpoints, tensor by tensor.
//! - [`spectrum`] turns matrices into eigenvalues, power-law and Marchenko-Pastur fits, metrics and a phase (pure
//!   functions).
//! - [`analyze`] ties them together: [`analyze_matrix`] for a matrix you hold, [`analyze_checkpoint`] for a file.
//! - [`spectra`] analyzes spectra files: eigenvalues a training process computed itself (per rank);
//!   [`layer_spectrum`] is the writing side, what such a process puts in them.
//! - [`in_memory`] analyzes tensors held as bytes and eigenvalues computed elsewhere (the Python package).
//!
//! The algorithms, and which rule of the papers or of WeightWatcher each follows, are in `docs/ALGORITHMS.md`.
//!
//! ```
//! use htsr_engine::{analyze_matrix, AnalyzeOptions};
//! use htsr_contracts::{LayerStatus, Phase};
//!
//! // A 400 x 100 matrix with no structure: its ESD is a Marchenko-Pastur bulk.
//! let mut state = 1u64;
//! let w = ndarray::Array2::from_shape_fn((400, 100), |_| {
//!     state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
//!     ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) / 20.0
//! });
//! let layer = analyze_matrix("fc1", w.view(), &AnalyzeOptions::default());
//! let report = &layer.report;
//! assert_eq!(report.status, LayerStatus::Success);
//! assert_eq!(report.phase(), Some(Phase::RandomLike));
//! assert_eq!(layer.eigenvalues.as_ref().map(Vec::len), Some(100));
//! println!("alpha {:.2}, {} spikes", report.alpha().unwrap(), report.mp.as_ref().unwrap().num_spikes);
//! ```

#![warn(missing_docs)]

pub mod analyze;
pub mod checkpoint;
pub mod in_memory;
pub mod layer_ids;
pub mod layer_spectrum;
pub mod spectra;
pub mod spectrum;
#[cfg(feature = "test-support")]
pub mod synthetic;
#[cfg(feature = "test-support")]
pub mod test_files;

pub use analyze::{
    analyze_checkpoint, analyze_matrix, AnalyzeOptions, CheckpointAnalysis, LayerAnalysis,
};
pub use spectrum::{EigenMethod, PhaseThresholds, SpectrumOptions};
