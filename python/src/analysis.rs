//! The analysis functions: files, tensors, matrices and eigenvalues in; rows out. The GIL is released while the
//! engine works, so other Python threads (a data loader, a training loop) go on meanwhile.

use std::path::PathBuf;

use htsr_contracts::LayerKind;
use htsr_engine::analyze::{analyze_checkpoint, analyze_matrix as engine_analyze_matrix};
use htsr_engine::checkpoint::Checkpoint;
use htsr_engine::in_memory::{analyze_bytes, analyze_pooled};
use htsr_engine::spectrum::eigen::{zero_threshold, PooledSpectrum};
use htsr_engine::spectrum::{EigenMethod, LayerShape};
use numpy::{PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{checkpoint_error, layer_to_py, options, parse_dtype, PyLayer};

/// Analyzes a safetensors file, a Hugging Face sharded folder (`model.safetensors.index.json` and its shards) or a
/// spectra file, as `htsr-watch analyze PATH` does. `layers` is a regular expression searched in layer names (as
/// `--layers`), `names` a list of exact layer names; either limits the layers analyzed. Returns `(metadata,
/// layers, seconds)`: the file's `__metadata__`, one `(row, eigenvalues)` per tensor in file order, and the
/// engine's time.
#[pyfunction]
#[pyo3(signature = (path, *, min_evals=8, max_evals=15000, max_n=50000, layers=None, names=None,
                    randomize_seed=None, accurate=false, square_mp="htsr", with_eigenvalues=false))]
#[allow(clippy::too_many_arguments)]
fn analyze_path<'py>(
    py: Python<'py>,
    path: PathBuf,
    min_evals: usize,
    max_evals: usize,
    max_n: usize,
    layers: Option<&str>,
    names: Option<Vec<String>>,
    randomize_seed: Option<u64>,
    accurate: bool,
    square_mp: &str,
    with_eigenvalues: bool,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>, f64)> {
    let exact = names.map(|names| {
        let alternatives: Vec<String> = names.iter().map(|n| regex::escape(n)).collect();
        format!("^(?:{})$", alternatives.join("|"))
    });
    let opts = options(
        min_evals,
        max_evals,
        max_n,
        exact.as_deref().or(layers),
        randomize_seed,
        accurate,
        square_mp,
    )?;
    let analysis = py
        .detach(|| analyze_checkpoint(&path, &opts))
        .map_err(checkpoint_error)?;
    let metadata = PyDict::new(py);
    for (k, v) in &analysis.metadata {
        metadata.set_item(k, v)?;
    }
    let layers = analysis
        .layers
        .iter()
        .map(|l| layer_to_py(py, l, with_eigenvalues))
        .collect::<PyResult<Vec<PyLayer<'py>>>>()?;
    Ok((metadata, PyList::new(py, layers)?, analysis.seconds))
}

/// The tensors of a checkpoint (file or sharded folder) in file order, as `(name, dtype, shape)`, without reading
/// their data.
#[pyfunction]
fn list_tensors(path: PathBuf) -> PyResult<Vec<(String, String, Vec<usize>)>> {
    let checkpoint = Checkpoint::open(&path).map_err(checkpoint_error)?;
    Ok(checkpoint
        .tensors()
        .iter()
        .map(|t| (t.name.clone(), format!("{:?}", t.dtype), t.shape.clone()))
        .collect())
}

/// Analyzes one tensor held in memory: `data` is its row-major little-endian bytes (a uint8 view of a contiguous
/// numpy array or CPU torch tensor, read in place), `dtype` the safetensors name of its element type (F32, F64,
/// F16, BF16; integer types are skipped). The same report as the tensor in a file.
#[pyfunction]
#[pyo3(signature = (name, dtype, shape, data, *, min_evals=8, max_evals=15000, max_n=50000, randomize_seed=None,
                    accurate=false, square_mp="htsr", with_eigenvalues=false))]
#[allow(clippy::too_many_arguments)]
fn analyze_tensor<'py>(
    py: Python<'py>,
    name: &str,
    dtype: &str,
    shape: Vec<usize>,
    data: PyReadonlyArray1<'py, u8>,
    min_evals: usize,
    max_evals: usize,
    max_n: usize,
    randomize_seed: Option<u64>,
    accurate: bool,
    square_mp: &str,
    with_eigenvalues: bool,
) -> PyResult<PyLayer<'py>> {
    let dtype = parse_dtype(dtype)?;
    let opts = options(
        min_evals,
        max_evals,
        max_n,
        None,
        randomize_seed,
        accurate,
        square_mp,
    )?;
    let bytes = data.as_slice().map_err(|e| {
        PyValueError::new_err(format!("tensor {name:?}: data is not contiguous: {e}"))
    })?;
    let layer = py.detach(|| analyze_bytes(name, dtype, &shape, bytes, &opts));
    layer_to_py(py, &layer, with_eigenvalues)
}

/// Analyzes a float64 matrix as a dense layer, read in place whatever its strides (a transposed or sliced numpy
/// view is not copied).
#[pyfunction]
#[pyo3(signature = (name, matrix, *, randomize_seed=None, accurate=false, square_mp="htsr", with_eigenvalues=true))]
fn analyze_matrix<'py>(
    py: Python<'py>,
    name: &str,
    matrix: PyReadonlyArray2<'py, f64>,
    randomize_seed: Option<u64>,
    accurate: bool,
    square_mp: &str,
    with_eigenvalues: bool,
) -> PyResult<PyLayer<'py>> {
    // A matrix handed over explicitly is analyzed whatever its size: WeightWatcher's size filters choose layers
    // of a model, not whether a given matrix has a spectrum.
    let opts = options(
        0,
        usize::MAX,
        usize::MAX,
        None,
        randomize_seed,
        accurate,
        square_mp,
    )?;
    let view = matrix.as_array();
    let layer = py.detach(|| engine_analyze_matrix(name, view, &opts));
    layer_to_py(py, &layer, with_eigenvalues)
}

/// Fits and classifies eigenvalues the caller computed (lambda = squared singular values of W, no 1/N, all `rf`
/// slices pooled): `n`, `m` are one slice's larger and smaller side. `sv_min` and `rank_loss` default to what a
/// single slice's eigenvalues give (the smallest singular value; eigenvalues under the Gram path's zero threshold);
/// for pooled slices pass the per-slice values if you have them.
#[pyfunction]
#[pyo3(signature = (eigenvalues, *, n, m, rf=1, name="layer", layer_type=None, sv_min=None, rank_loss=None,
                    square_mp="htsr"))]
#[allow(clippy::too_many_arguments)]
fn classify<'py>(
    py: Python<'py>,
    eigenvalues: PyReadonlyArray1<'py, f64>,
    n: usize,
    m: usize,
    rf: usize,
    name: &str,
    layer_type: Option<&str>,
    sv_min: Option<f64>,
    rank_loss: Option<usize>,
    square_mp: &str,
) -> PyResult<PyLayer<'py>> {
    if m == 0 || rf == 0 || n < m {
        return Err(PyValueError::new_err(format!(
            "N={n}, M={m}, rf={rf}: expected N >= M >= 1 and rf >= 1"
        )));
    }
    let mut evals = eigenvalues.as_array().to_vec();
    if evals.len() != m * rf {
        return Err(PyValueError::new_err(format!(
            "{} eigenvalues for M={m} x rf={rf}: the whole pooled spectrum (M x rf values) is needed",
            evals.len()
        )));
    }
    if let Some(bad) = evals.iter().find(|v| !v.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "eigenvalue {bad} is not finite"
        )));
    }
    evals.sort_by(f64::total_cmp);
    let lambda_max = evals.last().copied().unwrap_or(0.0);
    // Eigensolvers return tiny negative values for zero eigenvalues; anything more negative than the Gram
    // rounding floor is not a spectrum of W^T W.
    let floor = zero_threshold(lambda_max.abs(), n, EigenMethod::Gram);
    if let Some(bad) = evals.iter().find(|v| **v < -floor) {
        return Err(PyValueError::new_err(format!(
            "eigenvalue {bad} is negative: not a spectrum of W^T W"
        )));
    }
    for v in &mut evals {
        *v = v.max(0.0);
    }
    let kind = match layer_type {
        None if rf == 1 => LayerKind::Dense,
        None => LayerKind::Conv2d,
        Some("dense") => LayerKind::Dense,
        Some("conv1d") => LayerKind::Conv1d,
        Some("conv2d") => LayerKind::Conv2d,
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "layer_type={other:?}: expected \"dense\", \"conv1d\" or \"conv2d\""
            )))
        }
    };
    let zero = zero_threshold(lambda_max, n, EigenMethod::Gram);
    let pooled = PooledSpectrum {
        sv_min: sv_min.unwrap_or_else(|| evals.first().copied().unwrap_or(0.0).sqrt()),
        rank_loss: rank_loss.unwrap_or_else(|| evals.iter().filter(|&&l| l <= zero).count()),
        evals,
    };
    let opts = options(0, usize::MAX, usize::MAX, None, None, false, square_mp)?;
    let shape = LayerShape { n, m, rf };
    let layer = py.detach(|| analyze_pooled(name, &[], "", kind, pooled, shape, &opts));
    layer_to_py(py, &layer, true)
}

/// Adds this module's functions and classes to `htsr._native`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(analyze_path, m)?)?;
    m.add_function(wrap_pyfunction!(list_tensors, m)?)?;
    m.add_function(wrap_pyfunction!(analyze_tensor, m)?)?;
    m.add_function(wrap_pyfunction!(analyze_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(classify, m)?)?;
    Ok(())
}
