//! Rust values to Python objects: a layer's report as the dict row the `htsr` package turns into a DataFrame row,
//! and the small conversions every native function needs (dtype names, analysis options, errors).

use htsr_contracts::row::ExportRow;
use htsr_engine::analyze::{AnalyzeOptions, LayerAnalysis};
use htsr_engine::checkpoint::CheckpointError as EngineCheckpointError;
use htsr_engine::spectrum::{EigenMethod, SquareMp};
use htsr_writer::Dtype;
use numpy::PyArray1;
use pyo3::exceptions::{PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString};
use serde_json::Value;

use crate::CheckpointError;

/// A layer as the Python side receives it: its row and, when asked for, its eigenvalues.
pub type PyLayer<'py> = (Bound<'py, PyDict>, Option<Bound<'py, PyArray1<f64>>>);

/// The columns of the contracts' `ExportRow` that the Python row leaves out: `run` and `step` belong to a run's
/// history (`htsr-watch export`), not to one model's analysis.
const HISTORY_COLUMNS: [&str; 2] = ["run", "step"];

/// A JSON value as the Python object `json.loads` would give (integers stay int, floats float, null None).
pub fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i)) => i.into_pyobject(py)?.into_any(),
            _ => PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let items = items
                .iter()
                .map(|x| json_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(map) => {
            let d = PyDict::new(py);
            for (k, x) in map {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// One analyzed layer as `(row, eigenvalues)`: `row` holds the contracts' `ExportRow` columns (WeightWatcher's
/// names, the phase, `very_heavy_tailed`, `reason`; not `run`/`step`), `tensor`, `shape`, `dtype`, `has_esd`, and
/// the phase evidence that is not already a column (`n_tail`, `frac_outside`, `edge_mass`,
/// `normalized_stable_rank`, `zero_fraction`), and `evidence`, the whole evidence as a dict (None for a layer
/// with no phase). `eigenvalues` (ascending) only when `with_eigenvalues`.
pub fn layer_to_py<'py>(
    py: Python<'py>,
    layer: &LayerAnalysis,
    with_eigenvalues: bool,
) -> PyResult<PyLayer<'py>> {
    let r = &layer.report;
    let row = serde_json::to_value(ExportRow::new("", 0, r))
        .map_err(|e| PyValueError::new_err(format!("a report did not serialize: {e}")))?;
    let d = PyDict::new(py);
    if let Value::Object(map) = row {
        for (k, v) in &map {
            if !HISTORY_COLUMNS.contains(&k.as_str()) {
                d.set_item(k, json_to_py(py, v)?)?;
            }
        }
    }
    d.set_item("tensor", &r.tensor)?;
    d.set_item("shape", r.shape.clone())?;
    d.set_item("dtype", &r.dtype)?;
    d.set_item("has_esd", layer.eigenvalues.is_some())?;
    let evidence = r.phase.as_ref().map(|v| &v.evidence);
    let num = |x: f64| x.is_finite().then_some(x);
    d.set_item("n_tail", evidence.map(|e| e.n_tail))?;
    d.set_item("frac_outside", evidence.and_then(|e| num(e.frac_outside)))?;
    d.set_item("edge_mass", evidence.and_then(|e| num(e.edge_mass)))?;
    d.set_item(
        "normalized_stable_rank",
        evidence.and_then(|e| num(e.normalized_stable_rank)),
    )?;
    d.set_item("zero_fraction", evidence.and_then(|e| num(e.zero_fraction)))?;
    // The whole evidence, under its own field names, for `LayerResult.evidence` (not a DataFrame column).
    let evidence = match evidence {
        Some(e) => json_to_py(
            py,
            &serde_json::to_value(e)
                .map_err(|e| PyValueError::new_err(format!("evidence did not serialize: {e}")))?,
        )?,
        None => py.None().into_bound(py),
    };
    d.set_item("evidence", evidence)?;
    let evals = match (&layer.eigenvalues, with_eigenvalues) {
        (Some(e), true) => Some(PyArray1::from_slice(py, e)),
        _ => None,
    };
    Ok((d, evals))
}

/// A safetensors dtype from its name (`F32`, `BF16`, `I64`, ...), as the safetensors header spells it.
pub fn parse_dtype(name: &str) -> PyResult<Dtype> {
    serde_json::from_value(Value::String(name.to_string()))
        .map_err(|_| PyValueError::new_err(format!("{name:?} is not a safetensors dtype name")))
}

/// The engine's options from the Python keywords (WeightWatcher 0.7.7's defaults on the Python side).
#[allow(clippy::too_many_arguments)]
pub fn options(
    min_evals: usize,
    max_evals: usize,
    max_n: usize,
    layers: Option<&str>,
    randomize_seed: Option<u64>,
    accurate: bool,
    square_mp: &str,
) -> PyResult<AnalyzeOptions> {
    let mut opts = AnalyzeOptions {
        min_evals,
        max_evals,
        max_n,
        ..AnalyzeOptions::default()
    };
    if let Some(re) = layers {
        let re = regex::Regex::new(re)
            .map_err(|e| PyValueError::new_err(format!("layers={re:?}: {e}")))?;
        opts.layer_filter = Some(re);
    }
    opts.spectrum.randomize_seed = randomize_seed;
    if accurate {
        opts.spectrum.method = EigenMethod::Accurate;
    }
    opts.spectrum.square_mp = match square_mp {
        "htsr" => SquareMp::Htsr,
        "ww" => SquareMp::Ww,
        other => {
            return Err(PyValueError::new_err(format!(
                "square_mp={other:?}: expected \"htsr\" or \"ww\""
            )))
        }
    };
    Ok(opts)
}

/// An engine error reading a checkpoint as a Python exception: a missing file is `FileNotFoundError`, anything
/// else `htsr.CheckpointError` (a `ValueError`), with the engine's message naming the file.
pub fn checkpoint_error(e: EngineCheckpointError) -> PyErr {
    if e.is_not_found() {
        PyFileNotFoundError::new_err(e.to_string())
    } else {
        CheckpointError::new_err(e.to_string())
    }
}
