//! `htsr._native`: the Rust half of the `htsr` Python package (python/htsr holds the other half).
//!
//! Everything that computes or names something lives here, on htsr's own crates, so that Python and the Rust tools
//! agree by construction:
//! - [`analysis`]: a safetensors file or Hugging Face folder, a tensor's raw bytes, a float64 matrix, or eigenvalues
//!   the user brings, analyzed by htsr-engine with the GIL released; each layer comes back as a dict holding
//!   htsr-contracts' `ExportRow` (WeightWatcher's column names) plus the phase evidence.
//! - [`writer`]: htsr-writer's background `CheckpointWriter` for the training callbacks: file names, `htsr.*`
//!   metadata and atomic writes of weights and spectra files, exactly as the tch hook writes them.
//! - [`history`]: a store's history (the rows of `htsr-watch export`), through the daemon that holds the store or
//!   from the store itself.
//! - [`spectra`]: what spectra mode needs beside torch: how a tensor is cut into matrices (`MatrixPlan`), the
//!   layer-to-rank assignment, and per-slice eigenvalues pooled as htsr-engine pools them.

mod analysis;
mod convert;
mod history;
mod spectra;
mod writer;

use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    CheckpointError,
    pyo3::exceptions::PyValueError,
    "A checkpoint could not be read: not safetensors, truncated, a header that lies about sizes, or it changed \
     while it was read."
);
pyo3::create_exception!(
    _native,
    WriteError,
    pyo3::exceptions::PyOSError,
    "Writing a checkpoint failed (disk full, directory removed, ...); no file was left under its final name."
);

/// Limits the engine's linear algebra to `n` threads (rayon, faer, and OpenBLAS when built with it). Call it once,
/// before the first analysis: rayon's global pool is sized the first time it is used.
#[pyfunction]
fn set_threads(n: usize) {
    htsr_engine::spectrum::set_threads(n);
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CheckpointError", py.get_type::<CheckpointError>())?;
    m.add("WriteError", py.get_type::<WriteError>())?;
    m.add("EXPORT_COLUMNS", htsr_contracts::row::COLUMNS.to_vec())?;
    let env = pyo3::types::PyDict::new(py);
    for (key, var) in [
        ("DIR", htsr_contracts::naming::env::DIR),
        ("EVERY", htsr_contracts::naming::env::EVERY),
        ("RUN", htsr_contracts::naming::env::RUN),
        ("MODE", htsr_contracts::naming::env::MODE),
    ] {
        env.set_item(key, var)?;
    }
    m.add("ENV", env)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    analysis::register(m)?;
    spectra::register(m)?;
    history::register(m)?;
    writer::register(m)?;
    Ok(())
}
