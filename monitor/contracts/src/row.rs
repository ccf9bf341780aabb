//! The flat row of one layer at one checkpoint, with WeightWatcher 0.7.7's column names (its `details`
//! DataFrame), so that pandas notebooks written for WeightWatcher read htsr's CSV and exports as they are. Missing
//! numbers are empty CSV cells and JSON nulls. `htsr-watch analyze --format csv`, the store's export and the Python
//! package all write this one row type.

use serde::Serialize;

use crate::model::{CheckpointRecord, LayerReport, TrainingInfo};

/// One exported row. Field order is the CSV column order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(non_snake_case)]
pub struct ExportRow {
    /// The run the checkpoint belongs to.
    pub run: String,
    /// The checkpoint's training step.
    pub step: u64,
    /// WeightWatcher's `layer_id` ([`LayerReport::layer_id`]).
    pub layer_id: Option<u32>,
    /// The layer's name: the full tensor name without a trailing `.weight`.
    pub name: String,
    /// WeightWatcher's `longname`: the layer's full name (htsr's `name` is the full name already).
    pub longname: String,
    /// How the tensor was read as matrices: `dense`, `conv1d`, `conv2d` or `other` (WeightWatcher `layer_type`).
    pub layer_type: &'static str,
    /// Longer side of each matrix (slice), max(rows, cols) (WeightWatcher `N`).
    pub N: Option<usize>,
    /// Shorter side of each matrix (slice), min(rows, cols) (WeightWatcher `M`).
    pub M: Option<usize>,
    /// Aspect ratio N / M >= 1 (WeightWatcher `Q`).
    pub Q: Option<f64>,
    /// Number of slices pooled into the spectrum, 1 for dense layers (WeightWatcher `rf`).
    pub rf: Option<usize>,
    /// Eigenvalues in the pooled spectrum, M * rf (WeightWatcher `num_evals`).
    pub num_evals: Option<usize>,
    /// Exponent of the power law fitted to the ESD's tail (WeightWatcher `alpha`); empty when the fit failed.
    pub alpha: Option<f64>,
    /// Smallest eigenvalue of the power-law tail, chosen by KS minimization (WeightWatcher `xmin`).
    pub xmin: Option<f64>,
    /// Largest eigenvalue, the top of the fitted range (WeightWatcher `xmax`).
    pub xmax: Option<f64>,
    /// Kolmogorov-Smirnov distance between the tail and the fitted power law (WeightWatcher `D`).
    pub D: Option<f64>,
    /// Standard error of alpha, (alpha - 1) / sqrt(tail size) (WeightWatcher `sigma`; not the MP sigma).
    pub sigma: Option<f64>,
    /// Eigenvalues >= xmin: the power-law tail's size (WeightWatcher `num_pl_spikes`).
    pub num_pl_spikes: Option<usize>,
    /// Largest eigenvalue of W^T W, the squared spectral norm (WeightWatcher `lambda_max`).
    pub lambda_max: Option<f64>,
    /// Largest singular value, sqrt(lambda_max) (WeightWatcher `sv_max`).
    pub sv_max: Option<f64>,
    /// Largest over slices of each slice's smallest singular value (WeightWatcher `sv_min`).
    pub sv_min: Option<f64>,
    /// Sum of the eigenvalues: the squared Frobenius norm, summed over slices (WeightWatcher `norm`).
    pub norm: Option<f64>,
    /// log10(norm) (WeightWatcher `log_norm`).
    pub log_norm: Option<f64>,
    /// lambda_max, the squared spectral norm (WeightWatcher `spectral_norm`).
    pub spectral_norm: Option<f64>,
    /// log10(lambda_max) (WeightWatcher `log_spectral_norm`).
    pub log_spectral_norm: Option<f64>,
    /// alpha * log10(lambda_max), "alpha-hat" (WeightWatcher `alpha_weighted`); empty without a power-law fit.
    pub alpha_weighted: Option<f64>,
    /// log10(sum of lambda^alpha) over all eigenvalues (WeightWatcher `log_alpha_norm`); empty without a power-law fit.
    pub log_alpha_norm: Option<f64>,
    /// norm / lambda_max (WeightWatcher `stable_rank`).
    pub stable_rank: Option<f64>,
    /// Eigenvalues above the numerical-zero level (WeightWatcher `matrix_rank`).
    pub matrix_rank: Option<usize>,
    /// Eigenvalues at or below each slice's numerical-zero level, summed (WeightWatcher `rank_loss`).
    pub rank_loss: Option<usize>,
    /// Eigenvalues below the absolute tolerance 1e-6 (WeightWatcher `weak_rank_loss`).
    pub weak_rank_loss: Option<usize>,
    /// Generalized matrix entropy of the ESD, normalized by ln(matrix_rank) (WeightWatcher `entropy`).
    pub entropy: Option<f64>,
    /// Eigenvalues above the MP bulk edge plus the sqrt(Tracy-Widom) margin (WeightWatcher `num_spikes`).
    pub num_spikes: Option<usize>,
    /// Scale of the fitted MP law in unit-mean units, about 1 for a random layer (WeightWatcher `sigma_mp`).
    pub sigma_mp: Option<f64>,
    /// bulk_max / lambda_max in unit-mean units: the MP soft rank (WeightWatcher `mp_softrank`).
    pub mp_softrank: Option<f64>,
    /// Unit-mean rescaling factor sqrt(num_evals / norm) (WeightWatcher `W_scale`).
    pub W_scale: Option<f64>,
    /// Upper edge of the fitted MP bulk, in the layer's eigenvalue units (WeightWatcher `bulk_max`).
    pub bulk_max: Option<f64>,
    /// Lower edge of the fitted MP bulk, in the layer's eigenvalue units (WeightWatcher `bulk_min`).
    pub bulk_min: Option<f64>,
    /// Size of the smallest top tail of the unit-mean ESD whose product falls below 1 (WeightWatcher `detX_num`).
    pub detX_num: Option<usize>,
    /// That tail's smallest eigenvalue, in the layer's units (WeightWatcher `detX_val`).
    pub detX_val: Option<f64>,
    /// That eigenvalue in unit-mean units (WeightWatcher `detX_val_unrescaled`, named the wrong way round).
    pub detX_val_unrescaled: Option<f64>,
    /// Equal to detX_num, under WeightWatcher's other name for it (`num_ERG_spikes`).
    pub num_ERG_spikes: Option<usize>,
    /// detX_num - num_pl_spikes, near 0 for an ideally trained layer under SETOL (WeightWatcher `ERG_gap`); empty
    /// without a power-law fit.
    pub ERG_gap: Option<i64>,
    /// Largest eigenvalue of the shuffled (randomized) replicas (WeightWatcher `max_rand_eval`); empty without
    /// `--randomize`.
    pub max_rand_eval: Option<f64>,
    /// Jensen-Shannon distance between the real and shuffled eigenvalue vectors (WeightWatcher `rand_distance`).
    pub rand_distance: Option<f64>,
    /// max(shuffled eigenvalues) / lambda_max (WeightWatcher `ww_softrank`).
    pub ww_softrank: Option<f64>,
    /// lambda_max - max(shuffled eigenvalues) (WeightWatcher `ww_maxdist`).
    pub ww_maxdist: Option<f64>,
    /// Spikes of the shuffled ESD above its own MP bulk: correlation traps (WeightWatcher `rand_num_spikes`).
    pub rand_num_spikes: Option<usize>,
    /// Equal to rand_num_spikes, as WeightWatcher 0.7.7 also writes it (`num_traps`).
    pub num_traps: Option<usize>,
    /// sigma_mp of the shuffled spectrum's MP fit (WeightWatcher `rand_sigma_mp`).
    pub rand_sigma_mp: Option<f64>,
    /// MP soft rank of the shuffled spectrum (WeightWatcher `rand_mp_softrank`).
    pub rand_mp_softrank: Option<f64>,
    /// Unit-mean rescaling factor of the shuffled spectrum (WeightWatcher `rand_W_scale`).
    pub rand_W_scale: Option<f64>,
    /// Upper MP bulk edge of the shuffled spectrum, in the layer's units (WeightWatcher `rand_bulk_max`).
    pub rand_bulk_max: Option<f64>,
    /// Lower MP bulk edge of the shuffled spectrum, in the layer's units (WeightWatcher `rand_bulk_min`).
    pub rand_bulk_min: Option<f64>,
    /// Whether the layer was analyzed: `success`, `failed`, `skipped` or `missing`.
    pub status: &'static str,
    /// WeightWatcher's `warning`: `over-trained` (alpha < 2), `under-trained` (alpha > 6), or empty.
    pub warning: &'static str,
    /// htsr's phase label (`random_like`, `heavy_tailed`, ...); empty when the layer was not analyzed.
    pub phase: Option<&'static str>,
    /// Whether a heavy-tailed layer has alpha < 2; empty without a phase.
    pub very_heavy_tailed: Option<bool>,
    /// Why the layer was skipped or failed; empty on success.
    pub reason: Option<String>,
    /// The checkpoint's `htsr.epoch`, `htsr.loss`, `htsr.lr` and `htsr.batch_size` (stored checkpoints only).
    pub epoch: Option<u64>,
    /// The checkpoint's `htsr.loss`.
    pub loss: Option<f64>,
    /// The checkpoint's `htsr.lr` (learning rate).
    pub lr: Option<f64>,
    /// The checkpoint's `htsr.batch_size`.
    pub batch_size: Option<u64>,
}

/// The CSV header, in order.
pub const COLUMNS: &[&str] = &[
    "run",
    "step",
    "layer_id",
    "name",
    "longname",
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
    "detX_num",
    "detX_val",
    "detX_val_unrescaled",
    "num_ERG_spikes",
    "ERG_gap",
    "max_rand_eval",
    "rand_distance",
    "ww_softrank",
    "ww_maxdist",
    "rand_num_spikes",
    "num_traps",
    "rand_sigma_mp",
    "rand_mp_softrank",
    "rand_W_scale",
    "rand_bulk_max",
    "rand_bulk_min",
    "status",
    "warning",
    "phase",
    "very_heavy_tailed",
    "reason",
    "epoch",
    "loss",
    "lr",
    "batch_size",
];

/// NaN and infinities become missing values: an empty cell is what pandas reads as NaN without options.
fn num(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl ExportRow {
    /// The row of a stored checkpoint's layer: the layer's numbers and the checkpoint's training numbers.
    pub fn stored(checkpoint: &CheckpointRecord, r: &LayerReport) -> Self {
        let mut row = ExportRow::new(&checkpoint.run, checkpoint.step, r);
        let TrainingInfo {
            epoch,
            loss,
            lr,
            batch_size,
        } = checkpoint.training();
        (row.epoch, row.loss, row.lr, row.batch_size) = (epoch, loss, lr, batch_size);
        row
    }

    /// The row of one layer's report, with no checkpoint around it (`htsr-watch analyze`).
    pub fn new(run: &str, step: u64, r: &LayerReport) -> Self {
        let m = r.metrics.as_ref();
        let pl = r.power_law.as_ref();
        let mp = r.mp.as_ref();
        let erg = r.erg.as_ref();
        let rnd = r.randomization.as_ref();
        ExportRow {
            run: run.to_string(),
            step,
            layer_id: r.layer_id,
            name: r.name.clone(),
            longname: r.name.clone(),
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
            detX_num: erg.map(|e| e.detX_num),
            detX_val: erg.and_then(|e| num(e.detX_val)),
            detX_val_unrescaled: erg.and_then(|e| num(e.detX_val_unrescaled)),
            num_ERG_spikes: erg.map(|e| e.detX_num),
            ERG_gap: erg.and_then(|e| e.ERG_gap),
            max_rand_eval: rnd.and_then(|x| num(x.max_rand_eval)),
            rand_distance: rnd.and_then(|x| num(x.rand_distance)),
            ww_softrank: rnd.and_then(|x| num(x.ww_softrank)),
            ww_maxdist: rnd.and_then(|x| num(x.ww_maxdist)),
            rand_num_spikes: rnd.map(|x| x.rand_num_spikes),
            // WeightWatcher 0.7.7 writes `num_traps` from the same count as `rand_num_spikes`.
            num_traps: rnd.map(|x| x.rand_num_spikes),
            rand_sigma_mp: rnd.and_then(|x| num(x.rand_sigma_mp)),
            rand_mp_softrank: rnd.and_then(|x| num(x.rand_mp_softrank)),
            rand_W_scale: rnd.and_then(|x| num(x.rand_w_scale)),
            rand_bulk_max: rnd.and_then(|x| num(x.rand_bulk_max)),
            rand_bulk_min: rnd.and_then(|x| num(x.rand_bulk_min)),
            status: r.status.as_str(),
            warning: r.warning.as_str(),
            phase: r.phase().map(|p| p.as_str()),
            very_heavy_tailed: r.phase.as_ref().map(|v| v.very_heavy_tailed),
            reason: r.reason.clone(),
            epoch: None,
            loss: None,
            lr: None,
            batch_size: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_list_is_the_serialized_field_order() {
        let r = LayerReport::unanalyzed("fc", "fc.weight", &[2, 2], "F32");
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(ExportRow::new("run", 1, &r)).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        assert_eq!(header, COLUMNS);
    }
}
