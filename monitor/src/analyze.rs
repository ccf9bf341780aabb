//! One checkpoint, or one matrix, in; one [`LayerReport`] per tensor out. Tensors are decoded lazily from the
//! memory map, one at a time, so memory follows the largest layer rather than the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use htsr_storage::{EsdHistogram, LayerReport, LayerStatus};
use regex::Regex;

use crate::checkpoint::{
    is_integer_or_bool, Checkpoint, CheckpointError, ElementType, MatrixPlan, TensorEntry,
};
use crate::spectrum::{self, ArraySource, SliceSource, SpectrumAnalysis, SpectrumOptions};

/// Which tensors are analyzed and how (defaults: WeightWatcher 0.7.7's `analyze()`).
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Skip layers with fewer pooled eigenvalues (M * rf) than this (WW 0.7.7: 8).
    pub min_evals: usize,
    /// Skip layers with more pooled eigenvalues than this (WW: 15000).
    pub max_evals: usize,
    /// Skip layers whose larger side N exceeds this (WW: 50000).
    pub max_n: usize,
    pub spectrum: SpectrumOptions,
    /// Analyze only layers whose name matches.
    pub layer_filter: Option<Regex>,
    /// Bins of the stored ESD histogram.
    pub esd_bins: usize,
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
        }
    }
}

/// A layer's report and, when it was analyzed, its eigenvalues (ascending).
#[derive(Debug, Clone)]
pub struct LayerAnalysis {
    pub report: LayerReport,
    pub eigenvalues: Option<Vec<f64>>,
}

/// Every layer of one checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointAnalysis {
    pub path: PathBuf,
    pub metadata: BTreeMap<String, String>,
    pub layers: Vec<LayerAnalysis>,
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

/// Opens and analyzes a whole checkpoint (file or sharded directory).
pub fn analyze_checkpoint(
    path: &Path,
    opts: &AnalyzeOptions,
) -> Result<CheckpointAnalysis, CheckpointError> {
    let started = Instant::now();
    let checkpoint = Checkpoint::open(path)?;
    let layers = checkpoint
        .tensors()
        .iter()
        .filter(|t| wanted(opts, &t.name))
        .map(|t| analyze_tensor(&checkpoint, t, opts))
        .collect();
    Ok(CheckpointAnalysis {
        path: path.to_path_buf(),
        metadata: checkpoint.metadata().clone(),
        layers,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether the options' layer filter lets this tensor through.
pub fn wanted(opts: &AnalyzeOptions, tensor: &str) -> bool {
    opts.layer_filter
        .as_ref()
        .is_none_or(|re| re.is_match(layer_name(tensor)))
}

/// The elements of one tensor, read through a [`MatrixPlan`] straight from the mapped bytes.
struct TensorSource<'a> {
    bytes: &'a [u8],
    element: ElementType,
    plan: &'a MatrixPlan,
}

impl SliceSource for TensorSource<'_> {
    fn rows(&self) -> usize {
        self.plan.rows
    }
    fn cols(&self) -> usize {
        self.plan.cols
    }
    fn slices(&self) -> usize {
        self.plan.slices
    }
    #[inline(always)]
    fn get(&self, p: usize, row: usize, col: usize) -> f64 {
        self.plan.scale * self.element.get(self.bytes, self.plan.index(p, row, col))
    }
}

fn base_report(tensor: &str, shape: &[usize], dtype: String) -> LayerReport {
    LayerReport::unanalyzed(layer_name(tensor), tensor, shape, &dtype)
}

/// Analyzes one tensor of an open checkpoint. Never fails: problems become a skipped or failed report.
pub fn analyze_tensor(
    checkpoint: &Checkpoint,
    entry: &TensorEntry,
    opts: &AnalyzeOptions,
) -> LayerAnalysis {
    let started = Instant::now();
    let mut report = base_report(&entry.name, &entry.shape, format!("{:?}", entry.dtype));
    let skip = |mut report: LayerReport, status: LayerStatus, reason: String| {
        report.status = status;
        report.reason = Some(reason);
        report.seconds = started.elapsed().as_secs_f64();
        LayerAnalysis {
            report,
            eigenvalues: None,
        }
    };
    if is_integer_or_bool(entry.dtype) {
        let reason = format!(
            "{:?} tensor: integer and bool tensors hold no weights",
            entry.dtype
        );
        return skip(report, LayerStatus::Skipped, reason);
    }
    let Some(element) = ElementType::from_dtype(entry.dtype) else {
        let reason = format!(
            "unsupported dtype {:?} (htsr reads F32, F16, BF16 and F64)",
            entry.dtype
        );
        return skip(report, LayerStatus::Failed, reason);
    };
    let plan = match MatrixPlan::for_shape(&entry.shape) {
        Ok(plan) => plan,
        Err(reason) => return skip(report, LayerStatus::Skipped, reason),
    };
    report.layer_type = plan.kind;
    if let Err(reason) = check_size(&plan, opts) {
        return skip(report, LayerStatus::Skipped, reason);
    }
    let bytes = checkpoint.bytes(entry);
    let (nan, inf) = count_non_finite(element, bytes);
    if nan + inf > 0 {
        let reason = format!("weights contain {nan} NaN and {inf} infinite values");
        return skip(report, LayerStatus::Failed, reason);
    }
    let source = TensorSource {
        bytes,
        element,
        plan: &plan,
    };
    let analysis = spectrum::analyze_source(&source, &opts.spectrum);
    finish(report, analysis, opts, started)
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
    let fail = |mut report: LayerReport, status, reason: String| {
        report.status = status;
        report.reason = Some(reason);
        report.seconds = started.elapsed().as_secs_f64();
        LayerAnalysis {
            report,
            eigenvalues: None,
        }
    };
    let plan = match MatrixPlan::for_shape(matrix.shape()) {
        Ok(plan) => plan,
        Err(reason) => return fail(report, LayerStatus::Skipped, reason),
    };
    report.layer_type = plan.kind;
    if let Err(reason) = check_size(&plan, opts) {
        return fail(report, LayerStatus::Skipped, reason);
    }
    let non_finite = matrix.iter().filter(|v| !v.is_finite()).count();
    if non_finite > 0 {
        let reason = format!("matrix contains {non_finite} NaN or infinite values");
        return fail(report, LayerStatus::Failed, reason);
    }
    let analysis = spectrum::analyze_source(&ArraySource { matrix }, &opts.spectrum);
    finish(report, analysis, opts, started)
}

fn check_size(plan: &MatrixPlan, opts: &AnalyzeOptions) -> Result<(), String> {
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

fn count_non_finite(element: ElementType, bytes: &[u8]) -> (usize, usize) {
    let (mut nan, mut inf) = (0, 0);
    for i in 0..bytes.len() / element.size() {
        let v = element.get(bytes, i);
        if v.is_nan() {
            nan += 1;
        } else if v.is_infinite() {
            inf += 1;
        }
    }
    (nan, inf)
}

/// Fills a report from a spectrum analysis.
fn finish(
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
    report.phase = Some(phase);
    report.warning = warning;
    report.esd = Some(esd);
    report.seconds = started.elapsed().as_secs_f64();
    LayerAnalysis {
        report,
        eigenvalues: Some(evals),
    }
}

/// Phase counts of a set of reports, indexed like [`Phase::ALL`].
pub fn phase_counts<'a>(reports: impl IntoIterator<Item = &'a LayerReport>) -> [u32; 7] {
    let mut counts = [0u32; 7];
    for r in reports {
        if let Some(p) = r.phase() {
            counts[p.index()] += 1;
        }
    }
    counts
}
