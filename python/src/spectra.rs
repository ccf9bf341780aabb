//! Spectra mode's Rust half. torch computes each slice's eigenvalues on the model's device (python/htsr/_spectra.py);
//! everything else comes from htsr's crates, so that a spectra file from Python is the one the tch hook writes:
//! how a tensor becomes matrices (`MatrixPlan`, with WeightWatcher's size filters), which rank computes which
//! layer (`assign_layers` by `spectrum_cost`), and how per-slice eigenvalues pool into a layer's spectrum with its
//! `sv_min` and `rank_loss` (htsr-engine's `pooled_eigenvalues` rule).

use std::collections::BTreeMap;

use htsr_contracts::spectra::{assign_layers as contract_assign, spectrum_cost};
use htsr_engine::analyze::{size_filter, AnalyzeOptions};
use htsr_engine::checkpoint::MatrixPlan;
use htsr_engine::layer_spectrum;
use htsr_writer::{content_hash, Dtype, LayerSpectrum};
use ndarray::ArrayView2;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub use htsr_engine::layer_spectrum::{no_spectrum, plan_for};

fn limits(min_evals: usize, max_evals: usize, max_n: usize) -> AnalyzeOptions {
    AnalyzeOptions {
        min_evals,
        max_evals,
        max_n,
        ..AnalyzeOptions::default()
    }
}

/// How htsr-engine reads a tensor of `shape` as matrices, for torch to cut the same slices: a dict with `kind`,
/// `rows`, `cols`, `slices`, `slice_stride`, `row_stride`, `col_stride` (element strides into the row-major
/// tensor: slice p's element (i, j) is at `p*slice_stride + i*row_stride + j*col_stride`), `scale` (applied to
/// every element), `N`, `M`; and `skipped`, the reason it gets no spectrum (not a layer, or outside the size
/// limits), else None.
#[pyfunction]
#[pyo3(signature = (shape, *, min_evals=8, max_evals=15000, max_n=50000))]
fn matrix_plan<'py>(
    py: Python<'py>,
    shape: Vec<usize>,
    min_evals: usize,
    max_evals: usize,
    max_n: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let plan = match MatrixPlan::for_shape(&shape) {
        Ok(plan) => plan,
        Err(reason) => {
            d.set_item("skipped", reason)?;
            return Ok(d);
        }
    };
    d.set_item("kind", plan.kind.as_str())?;
    d.set_item("rows", plan.rows)?;
    d.set_item("cols", plan.cols)?;
    d.set_item("slices", plan.slices)?;
    d.set_item("slice_stride", plan.layout.slice_stride)?;
    d.set_item("row_stride", plan.layout.row_stride)?;
    d.set_item("col_stride", plan.layout.col_stride)?;
    d.set_item("scale", plan.scale)?;
    d.set_item("N", plan.n())?;
    d.set_item("M", plan.m())?;
    d.set_item(
        "skipped",
        size_filter(&plan, &limits(min_evals, max_evals, max_n)).err(),
    )?;
    Ok(d)
}

/// Layers to ranks, balanced by the cost of their spectra (layers with no spectrum cost nothing): every rank of a
/// run computes the same assignment from the same shapes.
#[pyfunction]
#[pyo3(signature = (layers, world, *, min_evals=8, max_evals=15000, max_n=50000))]
fn assign_layers(
    layers: Vec<(String, Vec<usize>)>,
    world: usize,
    min_evals: usize,
    max_evals: usize,
    max_n: usize,
) -> BTreeMap<String, usize> {
    let limits = limits(min_evals, max_evals, max_n);
    let costs: Vec<(String, f64)> = layers
        .into_iter()
        .map(|(name, shape)| {
            let cost =
                plan_for(&shape, &limits).map_or(0.0, |p| spectrum_cost(p.n(), p.m(), p.slices));
            (name, cost)
        })
        .collect();
    contract_assign(&costs, world)
}

/// This process's (rank, world size) from the launcher's environment (`RANK`/`WORLD_SIZE`, else
/// `SLURM_PROCID`/`SLURM_NTASKS`); (0, 1) without one.
#[pyfunction]
fn rank_from_env() -> PyResult<(usize, usize)> {
    htsr_contracts::naming::env::rank_from(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .map_err(pyo3::exceptions::PyValueError::new_err)
}

/// A layer from its per-slice eigenvalues (`slices` x M, each row one slice's eigenvalues) computed on the
/// device, checked and pooled by htsr-engine's rule ([`htsr_engine::layer_spectrum::from_slices`]).
pub fn from_device(
    tensor: &str,
    shape: &[usize],
    dtype: &str,
    evals: ArrayView2<'_, f64>,
    precision: &str,
    limits: &AnalyzeOptions,
) -> LayerSpectrum {
    // Row-major order is slice after slice; a non-contiguous view is copied into that order.
    let flat: Vec<f64> = evals.iter().copied().collect();
    match plan_for(shape, limits) {
        Ok(plan) if evals.dim() != (plan.slices, plan.m()) => {
            let reason = format!(
                "the device returned {:?} eigenvalues, expected {} slices x M={}",
                evals.dim(),
                plan.slices,
                plan.m()
            );
            no_spectrum(tensor, shape, dtype, reason, true)
        }
        _ => layer_spectrum::from_slices(tensor, shape, dtype, &flat, precision, limits),
    }
}

/// A layer's spectrum computed by htsr-engine from a CPU snapshot of its bytes (on the writer thread).
pub fn from_snapshot(
    tensor: &str,
    dtype: Dtype,
    shape: &[usize],
    bytes: &[u8],
    limits: &AnalyzeOptions,
) -> LayerSpectrum {
    let hash = content_hash(dtype, shape, [bytes]);
    layer_spectrum::from_bytes(tensor, dtype, shape, bytes, limits, hash)
}

/// Adds this module's functions and classes to `htsr._native`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(matrix_plan, m)?)?;
    m.add_function(wrap_pyfunction!(assign_layers, m)?)?;
    m.add_function(wrap_pyfunction!(rank_from_env, m)?)?;
    Ok(())
}
