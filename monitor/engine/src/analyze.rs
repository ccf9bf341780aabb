//! One checkpoint, or one matrix, in; one [`LayerReport`] per tensor out. Tensors are read one at a time, block by
//! block, with positioned reads, so memory follows the largest layer (its Gram matrix plus a block), not the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use htsr_contracts::{EsdHistogram, LayerReport, LayerStatus};
use regex::Regex;

use crate::checkpoint::{
    is_integer_or_bool, Checkpoint, CheckpointError, ElementType, MatrixPlan, TensorEntry,
    TensorSource,
};
use crate::spectrum::{self, ArraySource, SpectrumAnalysis, SpectrumError, SpectrumOptions};

/// Which tensors are analyzed and how (defaults: WeightWatcher 0.7.7's `analyze()`).
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Skip layers with fewer pooled eigenvalues (M * rf) than this (WW 0.7.7: 8).
    pub min_evals: usize,
    /// Skip layers with more pooled eigenvalues than this (WW: 15000).
    pub max_evals: usize,
    /// Skip layers whose larger side N exceeds this (WW: 50000).
    pub max_n: usize,
    /// How each layer's spectrum is computed and read (eigen method, phase thresholds, randomization, square MP rule).
    pub spectrum: SpectrumOptions,
    /// Analyze only layers whose name matches.
    pub layer_filter: Option<Regex>,
    /// Bins of the stored ESD histogram.
    pub esd_bins: usize,
    /// When set and true, reading stops between blocks with [`CheckpointError::Cancelled`] (daemon shutdown).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            min_evals: 8,
            max_evals: 15000,
            max_n: 50000,
            spectrum: SpectrumOptions::default(),
            layer_filter: None,
            esd_bins: 96,
            cancel: None,
        }
    }
}

/// A layer's report and, when it was analyzed, its eigenvalues (ascending).
#[derive(Debug, Clone)]
pub struct LayerAnalysis {
    /// The layer's report, filled in as far as the analysis went.
    pub report: LayerReport,
    /// The pooled eigenvalues of W^T W (no 1/N), ascending; None when the layer was not analyzed.
    pub eigenvalues: Option<Vec<f64>>,
}

/// Every layer of one checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointAnalysis {
    /// The checkpoint's path as given: a file or a sharded directory.
    pub path: PathBuf,
    /// The checkpoint's `__metadata__` (for a sharded checkpoint, every shard's and the index's).
    pub metadata: BTreeMap<String, String>,
    /// One analysis per tensor the layer filter let through.
    pub layers: Vec<LayerAnalysis>,
    /// Wall-clock seconds the whole checkpoint took.
    pub seconds: f64,
}

impl CheckpointAnalysis {
    /// True when any layer failed (skips are not failures).
    pub fn any_failed(&self) -> bool {
        self.layers
            .iter()
            .any(|l| l.report.status == LayerStatus::Failed)
    }
}

/// The layer name htsr reports: the tensor name without a trailing `.weight`.
pub fn layer_name(tensor: &str) -> &str {
    tensor.strip_suffix(".weight").unwrap_or(tensor)
}

/// Opens and analyzes a whole checkpoint: a weight file, a sharded directory, or a spectra file.
pub fn analyze_checkpoint(
    path: &Path,
    opts: &AnalyzeOptions,
) -> Result<CheckpointAnalysis, CheckpointError> {
    let started = Instant::now();
    let checkpoint = Checkpoint::open(path)?;
    if crate::spectra::is_spectra(checkpoint.metadata()) {
        return crate::spectra::analyze_spectra(&[path.to_path_buf()], opts, None);
    }
    let entries: Vec<&TensorEntry> = checkpoint
        .tensors()
        .iter()
        .filter(|t| wanted(opts, &t.name))
        .collect();
    let mut layers = analyze_tensors(&checkpoint, &entries, opts)?;
    checkpoint.check_unchanged()?;
    number_layers(
        layers.iter_mut().map(|l| &mut l.report),
        &weightwatcher_order(&checkpoint),
    );
    Ok(CheckpointAnalysis {
        path: path.to_path_buf(),
        metadata: checkpoint.metadata().clone(),
        layers,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The checkpoint's tensor names in the order WeightWatcher reads them: shard by shard (shards sorted by file
/// name, as the index lists them), names sorted within each ([`crate::layer_ids`]).
pub fn weightwatcher_order(checkpoint: &Checkpoint) -> Vec<&str> {
    let mut names: Vec<(usize, &str)> = checkpoint
        .tensors()
        .iter()
        .map(|t| (t.shard(), t.name.as_str()))
        .collect();
    names.sort();
    names.into_iter().map(|(_, n)| n).collect()
}

/// Gives every layer WeightWatcher's `layer_id` for its tensor, among `ww_order` (every tensor of the checkpoint,
/// in WeightWatcher's order).
pub fn number_layers<'a>(
    reports: impl IntoIterator<Item = &'a mut LayerReport>,
    ww_order: &[&str],
) {
    let mut reports: Vec<&mut LayerReport> = reports.into_iter().collect();
    let listed: Vec<String> = reports.iter().map(|r| r.tensor.clone()).collect();
    let ids = crate::layer_ids::assign(ww_order.iter().copied(), listed.iter().map(String::as_str));
    for (report, id) in reports.iter_mut().zip(ids) {
        report.layer_id = Some(id);
    }
}

/// Whether the options' layer filter lets this tensor through.
pub fn wanted(opts: &AnalyzeOptions, tensor: &str) -> bool {
    opts.layer_filter
        .as_ref()
        .is_none_or(|re| re.is_match(layer_name(tensor)))
}

fn base_report(tensor: &str, shape: &[usize], dtype: String) -> LayerReport {
    LayerReport::unanalyzed(layer_name(tensor), tensor, shape, &dtype)
}

/// Layers whose smaller side M is below this are analyzed several at once (each on one core: their Gram products
/// and eigensolvers are too small to use many cores well); wider ones one at a time, with every core.
pub const PARALLEL_BELOW_M: usize = 512;

/// Analyzes `entries` of an open checkpoint, scheduled so that every core works: the narrow layers in parallel,
/// the wide ones one after another with all threads. Memory stays bounded by the widest layer's Gram matrix plus a
/// block (the narrow ones in flight hold at most `threads` Gram matrices of M < [`PARALLEL_BELOW_M`]). Results come
/// back in the order of `entries`.
pub fn analyze_tensors(
    checkpoint: &Checkpoint,
    entries: &[&TensorEntry],
    opts: &AnalyzeOptions,
) -> Result<Vec<LayerAnalysis>, CheckpointError> {
    use rayon::prelude::*;
    let narrow = |e: &TensorEntry| {
        MatrixPlan::for_shape(&e.shape).map_or(true, |p| p.m() < PARALLEL_BELOW_M)
    };
    let mut out: Vec<Option<LayerAnalysis>> = vec![None; entries.len()];
    let small: Vec<(usize, LayerAnalysis)> = entries
        .par_iter()
        .enumerate()
        .filter(|(_, e)| narrow(e))
        .map(|(i, e)| analyze_tensor(checkpoint, e, opts).map(|a| (i, a)))
        .collect::<Result<_, _>>()?;
    for (i, a) in small {
        out[i] = Some(a);
    }
    for (i, e) in entries.iter().enumerate() {
        if !narrow(e) {
            out[i] = Some(analyze_tensor(checkpoint, e, opts)?);
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// Analyzes one tensor of an open checkpoint. Problems with the weights (a dtype htsr cannot read, NaN, a
/// failed fit) become a skipped or failed report; an error is returned only when reading failed, the file changed
/// while it was read, or the analysis was cancelled.
pub fn analyze_tensor(
    checkpoint: &Checkpoint,
    entry: &TensorEntry,
    opts: &AnalyzeOptions,
) -> Result<LayerAnalysis, CheckpointError> {
    let started = Instant::now();
    let report = base_report(&entry.name, &entry.shape, format!("{:?}", entry.dtype));
    if is_integer_or_bool(entry.dtype) {
        let reason = format!(
            "{:?} tensor: integer and bool tensors hold no weights",
            entry.dtype
        );
        return Ok(unanalyzed(report, LayerStatus::Skipped, reason, started));
    }
    let Some(element) = ElementType::from_dtype(entry.dtype) else {
        let reason = format!(
            "unsupported dtype {:?} (htsr reads F32, F16, BF16 and F64)",
            entry.dtype
        );
        return Ok(unanalyzed(report, LayerStatus::Failed, reason, started));
    };
    let plan = match MatrixPlan::for_shape(&entry.shape) {
        Ok(plan) => plan,
        Err(reason) => return Ok(unanalyzed(report, LayerStatus::Skipped, reason, started)),
    };
    let source = TensorSource::new(checkpoint, entry, element, &plan, opts.cancel.as_deref());
    analyze_planned(report, &plan, &source, opts, started)
}

/// The pooled spectrum of a tensor the caller holds as raw little-endian bytes (a training hook's snapshot), with
/// the plan it was read through: exactly what [`analyze_tensor`] computes from the same tensor in a file. Err is
/// the reason it has no spectrum (not a float dtype, not a layer, NaN or infinite weights), in words.
pub fn tensor_spectrum(
    dtype: safetensors::Dtype,
    shape: &[usize],
    bytes: &[u8],
    method: spectrum::EigenMethod,
) -> Result<(spectrum::eigen::PooledSpectrum, MatrixPlan), String> {
    let element = ElementType::from_dtype(dtype).ok_or_else(|| {
        format!("unsupported dtype {dtype:?} (htsr reads F32, F16, BF16 and F64)")
    })?;
    let plan = MatrixPlan::for_shape(shape)?;
    let expected = shape.iter().product::<usize>() * element.size();
    if bytes.len() != expected {
        return Err(format!(
            "{} bytes for shape {shape:?} of {dtype:?}, expected {expected}",
            bytes.len()
        ));
    }
    let source = TensorSource::from_bytes(bytes, element, &plan);
    match spectrum::eigen::pooled_eigenvalues(&source, method) {
        Ok(pooled) => Ok((pooled, plan)),
        Err(SpectrumError::NonFinite(nf)) => Err(format!(
            "weights contain {} NaN and {} infinite values",
            nf.nan, nf.inf
        )),
        Err(SpectrumError::Read(e)) => Err(e.to_string()),
    }
}

/// Analyzes a matrix the caller holds (library API), as a dense layer named `name`.
pub fn analyze_matrix(
    name: &str,
    matrix: ndarray::ArrayView2<'_, f64>,
    opts: &AnalyzeOptions,
) -> LayerAnalysis {
    let started = Instant::now();
    let mut report = base_report(name, matrix.shape(), "F64".to_string());
    report.name = name.to_string();
    let plan = match MatrixPlan::for_shape(matrix.shape()) {
        Ok(plan) => plan,
        Err(reason) => return unanalyzed(report, LayerStatus::Skipped, reason, started),
    };
    // An in-memory matrix cannot fail to read; without a cancel flag nothing else errs.
    let opts = AnalyzeOptions {
        cancel: None,
        ..opts.clone()
    };
    analyze_planned(report, &plan, &ArraySource { matrix }, &opts, started)
        .expect("an in-memory matrix reads without error")
}

/// A report with status and reason, and no analysis.
pub(crate) fn unanalyzed(
    mut report: LayerReport,
    status: LayerStatus,
    reason: String,
    started: Instant,
) -> LayerAnalysis {
    report.status = status;
    report.reason = Some(reason);
    report.seconds = started.elapsed().as_secs_f64();
    LayerAnalysis {
        report,
        eigenvalues: None,
    }
}

/// The size filters, then the spectrum of `source` and everything read from it.
pub(crate) fn analyze_planned<S: spectrum::SliceSource>(
    mut report: LayerReport,
    plan: &MatrixPlan,
    source: &S,
    opts: &AnalyzeOptions,
    started: Instant,
) -> Result<LayerAnalysis, CheckpointError> {
    report.layer_type = plan.kind;
    if let Err(reason) = size_filter(plan, opts) {
        return Ok(unanalyzed(report, LayerStatus::Skipped, reason, started));
    }
    match spectrum::analyze_source(source, &opts.spectrum) {
        Ok(analysis) => Ok(finish(report, analysis, opts, started)),
        Err(SpectrumError::NonFinite(nf)) => {
            let reason = format!(
                "weights contain {} NaN and {} infinite values",
                nf.nan, nf.inf
            );
            Ok(unanalyzed(report, LayerStatus::Failed, reason, started))
        }
        Err(SpectrumError::Read(e)) => Err(e),
    }
}

/// The size filters of WeightWatcher 0.7.7 (`min_evals`, `max_evals`, `max_N`): Err says why a layer of this plan
/// is skipped.
pub fn size_filter(plan: &MatrixPlan, opts: &AnalyzeOptions) -> Result<(), String> {
    let evals = plan.num_evals();
    if evals < opts.min_evals {
        return Err(format!(
            "{evals} eigenvalues (M={} x rf={}), below min_evals {}",
            plan.m(),
            plan.slices,
            opts.min_evals
        ));
    }
    if evals > opts.max_evals {
        return Err(format!(
            "{evals} eigenvalues (M={} x rf={}), above max_evals {}",
            plan.m(),
            plan.slices,
            opts.max_evals
        ));
    }
    if plan.n() > opts.max_n {
        return Err(format!("N={} above max_N {}", plan.n(), opts.max_n));
    }
    Ok(())
}

/// Fills a report from a spectrum analysis.
pub(crate) fn finish(
    mut report: LayerReport,
    analysis: SpectrumAnalysis,
    opts: &AnalyzeOptions,
    started: Instant,
) -> LayerAnalysis {
    let SpectrumAnalysis {
        evals,
        metrics,
        power_law,
        mp,
        phase,
        warning,
        randomization,
        erg,
    } = analysis;
    let mut esd = EsdHistogram::from_eigenvalues(&evals, opts.esd_bins);
    match &power_law {
        Ok(fit) => {
            report.status = LayerStatus::Success;
            esd.xmin = Some(fit.xmin);
            esd.alpha = Some(fit.alpha);
        }
        Err(err) => {
            report.status = LayerStatus::Failed;
            report.reason = Some(err.to_string());
        }
    }
    if metrics.lambda_max <= 0.0 {
        report.status = LayerStatus::Failed;
        report.reason = Some("all weights are zero".to_string());
    }
    let mp_record = mp.as_ref().map(|m| m.to_record());
    if let Some(m) = &mp_record {
        esd.bulk_min = Some(m.bulk_min);
        esd.bulk_max = Some(m.bulk_max);
    }
    report.metrics = Some(metrics);
    report.power_law = power_law.ok();
    report.mp = mp_record;
    report.randomization = randomization;
    esd.detx_val = Some(erg.detX_val).filter(|v| v.is_finite() && *v > 0.0);
    report.erg = Some(erg);
    report.phase = Some(phase);
    report.warning = warning;
    report.esd = Some(esd);
    report.seconds = started.elapsed().as_secs_f64();
    LayerAnalysis {
        report,
        eigenvalues: Some(evals),
    }
}
