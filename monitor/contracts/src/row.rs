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
    pub run: String,
    pub step: u64,
    /// WeightWatcher's `layer_id` ([`LayerReport::layer_id`]).
    pub layer_id: Option<u32>,
    pub name: String,
    /// WeightWatcher's `longname`: the layer's full name (htsr's `name` is the full name already).
    pub longname: String,
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
    pub detX_num: Option<usize>,
    pub detX_val: Option<f64>,
    pub detX_val_unrescaled: Option<f64>,
    pub num_ERG_spikes: Option<usize>,
    pub ERG_gap: Option<i64>,
    pub max_rand_eval: Option<f64>,
    pub rand_distance: Option<f64>,
    pub ww_softrank: Option<f64>,
    pub ww_maxdist: Option<f64>,
    pub rand_num_spikes: Option<usize>,
    pub num_traps: Option<usize>,
    pub rand_sigma_mp: Option<f64>,
    pub rand_mp_softrank: Option<f64>,
    pub rand_W_scale: Option<f64>,
    pub rand_bulk_max: Option<f64>,
    pub rand_bulk_min: Option<f64>,
    pub status: &'static str,
    pub warning: &'static str,
    pub phase: Option<&'static str>,
    pub very_heavy_tailed: Option<bool>,
    pub reason: Option<String>,
    /// The checkpoint's `htsr.epoch`, `htsr.loss`, `htsr.lr` and `htsr.batch_size` (stored checkpoints only).
    pub epoch: Option<u64>,
    pub loss: Option<f64>,
    pub lr: Option<f64>,
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
