//! What the history queries return. Plain serde types: the store builds them, the daemon sends them as JSON, the
//! dashboard and the report draw them.

use serde::{Deserialize, Serialize};

use htsr_contracts::{LayerReport, LayerStatus, Phase, PhaseCounts, Warning};

/// One run at a glance, for the runs list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's name.
    pub run: String,
    /// Its newest checkpoint's step.
    pub last_step: u64,
    /// Checkpoints stored.
    pub checkpoints: usize,
    /// Mean alpha over the successful layers of the last checkpoint (f32 precision); None if none had a fit.
    pub mean_alpha: Option<f64>,
    /// Layers of the last checkpoint per phase, indexed like [`Phase::ALL`].
    pub phase_counts: PhaseCounts,
    /// Layers of the last checkpoint.
    pub layers: usize,
    /// Unix seconds when the newest checkpoint was stored (0 when unknown): the run receiving checkpoints now is
    /// the one stored last.
    #[serde(default)]
    pub last_stored_at: f64,
}

/// Layers x checkpoints, each cell the layer's phase at that checkpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PhaseGrid {
    /// Row labels, in first-seen order.
    pub layers: Vec<String>,
    /// Column labels (steps), ascending; the newest checkpoint is always the last column.
    pub steps: Vec<u64>,
    /// `cells[row][column]`: None where the layer is absent at that checkpoint or has no phase (skipped/failed).
    pub cells: Vec<Vec<Option<Phase>>>,
    /// Checkpoints in the run before downsampling.
    pub total_checkpoints: usize,
}

/// One layer at one checkpoint, as a trajectory plots it. Floats are rounded to f32 precision by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    /// The checkpoint's step.
    pub step: u64,
    /// Whether the layer was analyzed.
    pub status: LayerStatus,
    /// Its phase, if one could be named.
    pub phase: Option<Phase>,
    /// alpha below 2 on a heavy-tailed layer.
    pub very_heavy_tailed: bool,
    /// Power-law exponent.
    pub alpha: Option<f64>,
    /// KS distance of the power-law fit.
    #[serde(rename = "D")]
    pub d: Option<f64>,
    /// Standard error of alpha.
    pub sigma: Option<f64>,
    /// Eigenvalues in the power-law tail.
    pub num_pl_spikes: Option<usize>,
    /// Eigenvalues above the Marchenko-Pastur bulk.
    pub num_spikes: Option<usize>,
    /// MP soft rank.
    pub mp_softrank: Option<f64>,
    /// Largest eigenvalue.
    pub lambda_max: Option<f64>,
    /// Stable rank.
    pub stable_rank: Option<f64>,
    /// log10 of the spectral norm.
    pub log_spectral_norm: Option<f64>,
    /// alpha times log10 lambda_max.
    pub alpha_weighted: Option<f64>,
    /// WeightWatcher's warning.
    pub warning: Warning,
}

impl TrajectoryPoint {
    /// The point a report contributes to its layer's trajectory. Non-finite values become None.
    pub fn from_report(step: u64, r: &LayerReport) -> Self {
        let fin = |v: f64| v.is_finite().then_some(v);
        let pl = r.power_law.as_ref();
        let mp = r.mp.as_ref();
        let m = r.metrics.as_ref();
        TrajectoryPoint {
            step,
            status: r.status,
            phase: r.phase(),
            very_heavy_tailed: r.phase.as_ref().is_some_and(|v| v.very_heavy_tailed),
            alpha: pl.and_then(|p| fin(p.alpha)),
            d: pl.and_then(|p| fin(p.d)),
            sigma: pl.and_then(|p| fin(p.sigma)),
            num_pl_spikes: pl.map(|p| p.num_pl_spikes),
            num_spikes: mp.map(|p| p.num_spikes),
            mp_softrank: mp.and_then(|p| fin(p.mp_softrank)),
            lambda_max: m.and_then(|p| fin(p.lambda_max)),
            stable_rank: m.and_then(|p| fin(p.stable_rank)),
            log_spectral_norm: m.and_then(|p| fin(p.log_spectral_norm)),
            alpha_weighted: m.and_then(|p| fin(p.alpha_weighted)),
            warning: r.warning,
        }
    }
}

/// One tree of the store: keys and logical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeStats {
    /// The tree's name.
    pub name: String,
    /// Its keys.
    pub keys: u64,
    /// Sum of key and value lengths: the logical size, before sled's own overhead.
    pub bytes: u64,
}

/// `htsr-watch db stats`: where a store's space goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// The store's directory.
    pub path: String,
    /// Its schema version.
    pub schema_version: u32,
    /// Per tree.
    pub trees: Vec<TreeStats>,
    /// Sum of the trees' logical bytes.
    pub logical_bytes: u64,
    /// What the store's files take on disk (sled's log and snapshots: includes space not yet reclaimed).
    pub on_disk_bytes: u64,
}

/// Bytes with a binary unit, e.g. "12.3 MiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `htsr-watch db stats`, as printed: a line per tree, the total, and the size on disk.
impl std::fmt::Display for StoreStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use htsr_contracts::text::{pad_end, terminal_safe};
        writeln!(
            f,
            "store {} (schema version {})",
            terminal_safe(&self.path),
            self.schema_version
        )?;
        writeln!(f, "{} {:>12} {:>12}", pad_end("tree", 16), "keys", "bytes")?;
        for t in &self.trees {
            writeln!(
                f,
                "{} {:>12} {:>12}",
                pad_end(&terminal_safe(&t.name), 16),
                t.keys,
                human_bytes(t.bytes)
            )?;
        }
        writeln!(
            f,
            "{} {:>12} {:>12}",
            pad_end("total", 16),
            self.trees.iter().map(|t| t.keys).sum::<u64>(),
            human_bytes(self.logical_bytes)
        )?;
        write!(
            f,
            "on disk: {} (includes space sled has not reclaimed yet)",
            human_bytes(self.on_disk_bytes)
        )
    }
}

/// A closed range of values, (min, max).
pub type Range = (f64, f64);

/// The training loss of each of `checkpoints` that has one, as (step, loss): what the alpha charts draw beside
/// alpha.
pub fn loss_series(checkpoints: &[htsr_contracts::CheckpointRecord]) -> Vec<(f64, f64)> {
    checkpoints
        .iter()
        .filter_map(|c| Some((c.step as f64, c.training().loss?)))
        .collect()
}

/// `points` with their y values mapped linearly onto `[lo, hi]` (a constant series onto the middle), and the
/// original y range: how a second quantity (the loss) is drawn on a chart whose axis is alpha's, its own range
/// said in its legend.
pub fn rescale(points: &[(f64, f64)], lo: f64, hi: f64) -> (Vec<(f64, f64)>, Option<Range>) {
    let (min, max) = points
        .iter()
        .map(|p| p.1)
        .filter(|y| y.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
    if !min.is_finite() {
        return (Vec::new(), None);
    }
    let map = |y: f64| {
        if max > min {
            lo + (y - min) / (max - min) * (hi - lo)
        } else {
            (lo + hi) / 2.0
        }
    };
    let out = points
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|&(x, y)| (x, map(y)))
        .collect();
    (out, Some((min, max)))
}

/// Evenly spaced indices into `0..n`, at most `max`, always including the last (and the first when max >= 2):
/// how a phase grid or a long trajectory is thinned to the columns a screen or chart has.
pub fn downsample_indices(n: usize, max: Option<usize>) -> Vec<usize> {
    match max {
        Some(m) if m < n => match m {
            0 => Vec::new(),
            1 => vec![n - 1],
            _ => {
                let mut v: Vec<usize> = (0..m)
                    .map(|i| ((i * (n - 1)) as f64 / (m - 1) as f64).round() as usize)
                    .collect();
                v.dedup();
                v
            }
        },
        _ => (0..n).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::downsample_indices;

    #[test]
    fn a_second_series_is_mapped_onto_the_first_ones_range() {
        let (pts, range) = super::rescale(&[(1.0, 4.0), (2.0, 2.0), (3.0, f64::NAN)], 10.0, 20.0);
        assert_eq!(pts, vec![(1.0, 20.0), (2.0, 10.0)]);
        assert_eq!(range, Some((2.0, 4.0)));
        assert_eq!(super::rescale(&[(1.0, 3.0)], 0.0, 2.0).0, vec![(1.0, 1.0)]);
        assert_eq!(super::rescale(&[], 0.0, 1.0), (vec![], None));
    }

    #[test]
    fn downsampling_is_even_and_keeps_the_newest() {
        assert_eq!(downsample_indices(10, Some(4)), vec![0, 3, 6, 9]);
        assert_eq!(downsample_indices(3, Some(10)), vec![0, 1, 2]);
        assert_eq!(downsample_indices(5, None), vec![0, 1, 2, 3, 4]);
        assert_eq!(downsample_indices(5, Some(1)), vec![4]);
        assert_eq!(downsample_indices(5, Some(0)), Vec::<usize>::new());
        let v = downsample_indices(2000, Some(200));
        assert_eq!((v.len(), v[0], *v.last().unwrap()), (200, 0, 1999));
        assert!(v.windows(2).all(|w| w[1] > w[0]));
    }
}
