//! How htsr's records map onto TensorBoard: the tags and their values, the ESD as a histogram, the phase
//! legend, and the run folder's name.

use htsr_contracts::{CheckpointRecord, EsdHistogram, LayerReport, Phase};
use htsr_tensorboard::HistogramProto;

/// The text summary that explains the integer `phase` scalars (one per run).
pub const LEGEND_TAG: &str = "htsr/phase_legend";

/// Written last for each checkpoint: its presence marks the checkpoint as complete in a run folder.
pub const CHECKPOINT_TAG: &str = "htsr/checkpoint/analysis_seconds";

/// The training loop's numbers for a checkpoint, as scalars (tag, value), where its metadata has them.
pub(super) fn training_scalars(record: &CheckpointRecord) -> Vec<(&'static str, f64)> {
    let t = record.training();
    [
        ("htsr/checkpoint/loss", t.loss),
        ("htsr/checkpoint/lr", t.lr),
        ("htsr/checkpoint/batch_size", t.batch_size.map(|b| b as f64)),
        ("htsr/checkpoint/epoch", t.epoch.map(|e| e as f64)),
    ]
    .into_iter()
    .filter_map(|(tag, v)| Some((tag, v?)))
    .collect()
}

/// The per-layer histogram's name under `htsr/<layer>/`.
pub const HISTOGRAM: &str = "log10_eigenvalues";

/// The per-layer scalars' names under `htsr/<layer>/`, in the order they are written.
pub const SCALARS: [&str; 7] = [
    "alpha",
    "D",
    "num_spikes",
    "mp_softrank",
    "stable_rank",
    "ERG_gap",
    "phase",
];

/// The tag of `metric` of layer `layer`: `htsr/<layer>/<metric>`.
pub fn layer_tag(layer: &str, metric: &str) -> String {
    format!("htsr/{layer}/{metric}")
}

/// The scalars written for one layer report: `(name, value)` for each of [`SCALARS`] that the report has and
/// that is finite. `phase` is the phase's index in [`Phase::ALL`] (see [`legend_markdown`]).
pub fn layer_scalars(report: &LayerReport) -> Vec<(&'static str, f64)> {
    let pl = report.power_law.as_ref();
    let candidates = [
        ("alpha", pl.map(|p| p.alpha)),
        ("D", pl.map(|p| p.d)),
        (
            "num_spikes",
            report.mp.as_ref().map(|m| m.num_spikes as f64),
        ),
        ("mp_softrank", report.mp.as_ref().map(|m| m.mp_softrank)),
        (
            "stable_rank",
            report.metrics.as_ref().map(|m| m.stable_rank),
        ),
        (
            "ERG_gap",
            report
                .erg
                .as_ref()
                .and_then(|e| e.ERG_gap)
                .map(|g| g as f64),
        ),
        ("phase", report.phase().map(|p| p.index() as f64)),
    ];
    candidates
        .into_iter()
        .filter_map(|(name, v)| v.filter(|v| v.is_finite()).map(|v| (name, v)))
        .collect()
}

/// The stored 96-bin ESD as a TensorBoard histogram over log10(lambda): bucket limits in log10 units (the right
/// edge of each bin), `min`/`max` the smallest and largest log10 eigenvalue, `num` the non-zero eigenvalues,
/// `sum` and `sum_squares` from the bin centres. Empty outer bins are left out (TensorBoard's loaders then agree,
/// see htsr-tensorboard's README). `None` when no eigenvalue is above the zero floor.
pub fn esd_histogram(esd: &EsdHistogram) -> Option<HistogramProto> {
    let n = esd.counts.len();
    let first = esd.counts.iter().position(|&c| c > 0)?;
    let last = esd.counts.iter().rposition(|&c| c > 0)?;
    if !(esd.log10_lo.is_finite() && esd.log10_hi.is_finite()) {
        return None;
    }
    let width = (esd.log10_hi - esd.log10_lo) / n as f64;
    // The last edge is log10_hi itself, not lo + n * width, which can differ from it in the last bit.
    let edge = |i: usize| {
        if i == n {
            esd.log10_hi
        } else {
            esd.log10_lo + width * i as f64
        }
    };
    let log_max =
        (esd.lambda_max > 0.0 && esd.lambda_max.is_finite()).then(|| esd.lambda_max.log10());
    // The bins span [smallest, largest] log10 eigenvalue, so the first and last bins hold those two; a lone
    // non-empty bin among several means all eigenvalues were equal (the bins were widened around that value).
    let (min, max) = match log_max {
        Some(m) if first == last && n > 1 => (m, m),
        Some(m) => (edge(first), m.clamp(edge(first), edge(last + 1))),
        None => (edge(first), edge(last + 1)),
    };
    let (mut num, mut sum, mut sum_squares) = (0.0, 0.0, 0.0);
    let mut bucket_limit = Vec::with_capacity(last + 1 - first);
    let mut bucket = Vec::with_capacity(last + 1 - first);
    for i in first..=last {
        let c = f64::from(esd.counts[i]);
        let centre = 0.5 * (edge(i) + edge(i + 1));
        num += c;
        sum += c * centre;
        sum_squares += c * centre * centre;
        bucket_limit.push(edge(i + 1));
        bucket.push(c);
    }
    Some(HistogramProto {
        min,
        max,
        num,
        sum,
        sum_squares,
        bucket_limit,
        bucket,
    })
}

/// The Markdown of the phase legend: each phase's integer, name and meaning.
pub fn legend_markdown() -> String {
    let mut s = String::from(
        "**htsr phases.** The scalar `htsr/<layer>/phase` is the layer's training phase (Martin & Mahoney, \
         arXiv 1901.08276) as an integer:\n\n| value | phase | meaning |\n|---:|---|---|\n",
    );
    for p in Phase::ALL {
        s.push_str(&format!(
            "| {} | `{}` | {} |\n",
            p.index(),
            p.as_str(),
            p.meaning()
        ));
    }
    s.push_str(
        "\n`htsr/<layer>/log10_eigenvalues` is the layer's ESD (the eigenvalues of W^T W) as a histogram of \
         log10(lambda), from htsr's 96 log-spaced bins; numerically zero eigenvalues are left out. \
         `htsr/checkpoint/analysis_seconds` is how long htsr took to analyze the checkpoint.\n",
    );
    s
}

/// The folder name (one path component) of htsr run `run` under LOGDIR.
///
/// A run name that is a safe folder name is kept as it is. Otherwise (a `/`, a `\`, a control character or
/// bidirectional override, empty, `.`, `..`, or longer than a file name may be) those characters become `_`, the
/// name is cut to fit, and a hash of the real name is appended, so that two runs never share a folder: `exp/1`
/// becomes `exp_1-<16 hex digits>`.
pub fn run_folder_name(run: &str) -> String {
    let safe = |c: char| !(c == '/' || c == '\\' || htsr_contracts::text::is_unsafe(c));
    if !run.is_empty()
        && run != "."
        && run != ".."
        && run.len() <= MAX_FOLDER_BYTES
        && run.chars().all(safe)
    {
        return run.to_string();
    }
    let mut cleaned = String::new();
    for c in run.chars().map(|c| if safe(c) { c } else { '_' }) {
        if cleaned.len() + c.len_utf8() > MAX_FOLDER_BYTES - 17 {
            break;
        }
        cleaned.push(c);
    }
    let cleaned = cleaned.trim_matches('.');
    // Stable across Rust versions and platforms (std's hashers are not), so folders stay put.
    let hash = htsr_contracts::naming::stable_hash(run.as_bytes());
    if cleaned.is_empty() {
        format!("run-{hash:016x}")
    } else {
        format!("{cleaned}-{hash:016x}")
    }
}

/// The longest run folder name: file systems allow 255 bytes per name; a margin for the suffixes others add.
const MAX_FOLDER_BYTES: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_run_names_are_kept_and_others_never_collide() {
        assert_eq!(run_folder_name("runA"), "runA");
        assert_eq!(run_folder_name("bs=32 lr=1e-3 ü"), "bs=32 lr=1e-3 ü");
        let a = run_folder_name("exp/1");
        let b = run_folder_name("exp_1");
        assert!(
            a.starts_with("exp_1-") && a.len() == "exp_1-".len() + 16,
            "{a}"
        );
        assert_ne!(a, b);
        for bad in ["", ".", "..", "a\nb", "../x", "a\\b"] {
            let f = run_folder_name(bad);
            assert!(!f.is_empty() && f != "." && f != "..", "{bad:?} -> {f:?}");
            assert!(!f.contains(['/', '\\', '\n']), "{bad:?} -> {f:?}");
        }
        assert_ne!(run_folder_name(""), run_folder_name("."));
    }

    #[test]
    fn the_histogram_keeps_every_count_in_log10_units() {
        let evals: Vec<f64> = (1..=500)
            .map(|i| (i as f64 / 50.0).powi(3))
            .chain([0.0, 0.0])
            .collect();
        let esd = EsdHistogram::from_eigenvalues(&evals, 96);
        let h = esd_histogram(&esd).unwrap();
        assert_eq!(h.num, 500.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 500.0);
        assert_eq!(h.bucket_limit.len(), h.bucket.len());
        assert!(h.bucket_limit.windows(2).all(|w| w[1] > w[0]));
        assert!((h.min - (0.02f64.powi(3)).log10()).abs() < 1e-9);
        assert!((h.max - 1000f64.log10()).abs() < 1e-9);
        assert_eq!(*h.bucket_limit.last().unwrap(), esd.log10_hi);
        assert!(h.bucket[0] > 0.0 && *h.bucket.last().unwrap() > 0.0);
        // One distinct value: one bucket, min = max = its log10.
        let h = esd_histogram(&EsdHistogram::from_eigenvalues(&[4.0, 4.0], 96)).unwrap();
        assert_eq!((h.bucket.len(), h.num), (1, 2.0));
        assert!((h.min - 4f64.log10()).abs() < 1e-12 && (h.max - 4f64.log10()).abs() < 1e-12);
        // Only zeros: nothing to draw.
        assert!(esd_histogram(&EsdHistogram::from_eigenvalues(&[0.0, 0.0], 96)).is_none());
    }

    #[test]
    fn the_legend_names_every_phase_with_its_index() {
        let md = legend_markdown();
        for p in Phase::ALL {
            assert!(
                md.contains(&format!("| {} | `{}` |", p.index(), p.as_str())),
                "{md}"
            );
        }
    }
}
