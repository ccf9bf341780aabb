//! The flat row of one layer at one checkpoint, with WeightWatcher 0.7.7's column names (its `details`
//! DataFrame), so that pandas notebooks written for WeightWatcher read htsr's CSV and exports as they are. Missing
//! numbers are empty CSV cells and JSON nulls. `htsr-watch analyze --format csv`, the store's export and the Python
//! package all write this one row type.

use serde::Serialize;

use crate::model::LayerReport;

/// One exported row. Field order is the CSV column order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(non_snake_case)]
pub struct ExportRow {
    pub run: String,
    pub step: u64,
    pub name: String,
    pub layer_type: &'static str,
    pub N: Option<usize>,
    pub M: Option<usize>,
    pub Q: Option<f64>,
    pub rf: Option<usize>,
    pub num_evals: Option<usize>,
    pub alpha: Option<f64>,
    pub xmin: Option<f64>,
    pub xmax: Option<f64>,
    pub D: Option<f64>,
    pub sigma: Option<f64>,
    pub num_pl_spikes: Option<usize>,
    pub lambda_max: Option<f64>,
    pub sv_max: Option<f64>,
    pub sv_min: Option<f64>,
    pub norm: Option<f64>,
    pub log_norm: Option<f64>,
    pub spectral_norm: Option<f64>,
    pub log_spectral_norm: Option<f64>,
    pub alpha_weighted: Option<f64>,
    pub log_alpha_norm: Option<f64>,
    pub stable_rank: Option<f64>,
    pub matrix_rank: Option<usize>,
    pub rank_loss: Option<usize>,
    pub weak_rank_loss: Option<usize>,
    pub entropy: Option<f64>,
    pub num_spikes: Option<usize>,
    pub sigma_mp: Option<f64>,
    pub mp_softrank: Option<f64>,
    pub W_scale: Option<f64>,
    pub bulk_max: Option<f64>,
    pub bulk_min: Option<f64>,
    pub status: &'static str,
    pub warning: &'static str,
    pub phase: Option<&'static str>,
    pub very_heavy_tailed: Option<bool>,
    pub reason: Option<String>,
}

/// The CSV header, in order.
pub const COLUMNS: &[&str] = &[
    "run",
    "step",
    "name",
    "layer_type",
    "N",
    "M",
    "Q",
    "rf",
    "num_evals",
    "alpha",
    "xmin",
    "xmax",
    "D",
    "sigma",
    "num_pl_spikes",
    "lambda_max",
    "sv_max",
    "sv_min",
    "norm",
    "log_norm",
    "spectral_norm",
    "log_spectral_norm",
    "alpha_weighted",
    "log_alpha_norm",
    "stable_rank",
    "matrix_rank",
    "rank_loss",
    "weak_rank_loss",
    "entropy",
    "num_spikes",
    "sigma_mp",
    "mp_softrank",
    "W_scale",
    "bulk_max",
    "bulk_min",
    "status",
    "warning",
    "phase",
    "very_heavy_tailed",
    "reason",
];

/// NaN and infinities become missing values: an empty cell is what pandas reads as NaN without options.
fn num(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl ExportRow {
    pub fn new(run: &str, step: u64, r: &LayerReport) -> Self {
        let m = r.metrics.as_ref();
        let pl = r.power_law.as_ref();
        let mp = r.mp.as_ref();
        ExportRow {
            run: run.to_string(),
            step,
            name: r.name.clone(),
            layer_type: r.layer_type.as_str(),
            N: m.map(|m| m.N),
            M: m.map(|m| m.M),
            Q: m.and_then(|m| num(m.Q)),
            rf: m.map(|m| m.rf),
            num_evals: m.map(|m| m.num_evals),
            alpha: pl.and_then(|p| num(p.alpha)),
            xmin: pl.and_then(|p| num(p.xmin)),
            xmax: pl.and_then(|p| num(p.xmax)),
            D: pl.and_then(|p| num(p.d)),
            sigma: pl.and_then(|p| num(p.sigma)),
            num_pl_spikes: pl.map(|p| p.num_pl_spikes),
            lambda_max: m.and_then(|m| num(m.lambda_max)),
            sv_max: m.and_then(|m| num(m.sv_max)),
            sv_min: m.and_then(|m| num(m.sv_min)),
            norm: m.and_then(|m| num(m.norm)),
            log_norm: m.and_then(|m| num(m.log_norm)),
            spectral_norm: m.and_then(|m| num(m.spectral_norm)),
            log_spectral_norm: m.and_then(|m| num(m.log_spectral_norm)),
            alpha_weighted: m.and_then(|m| num(m.alpha_weighted)),
            log_alpha_norm: m.and_then(|m| num(m.log_alpha_norm)),
            stable_rank: m.and_then(|m| num(m.stable_rank)),
            matrix_rank: m.map(|m| m.matrix_rank),
            rank_loss: m.map(|m| m.rank_loss),
            weak_rank_loss: m.map(|m| m.weak_rank_loss),
            entropy: m.and_then(|m| num(m.entropy)),
            num_spikes: mp.map(|p| p.num_spikes),
            sigma_mp: mp.and_then(|p| num(p.sigma_mp)),
            mp_softrank: mp.and_then(|p| num(p.mp_softrank)),
            W_scale: mp.and_then(|p| num(p.w_scale)),
            bulk_max: mp.and_then(|p| num(p.bulk_max)),
            bulk_min: mp.and_then(|p| num(p.bulk_min)),
            status: r.status.as_str(),
            warning: r.warning.as_str(),
            phase: r.phase().map(|p| p.as_str()),
            very_heavy_tailed: r.phase.as_ref().map(|v| v.very_heavy_tailed),
            reason: r.reason.clone(),
        }
    }
}
