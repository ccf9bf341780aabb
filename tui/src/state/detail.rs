//! View models of the Layer detail and the Runs overlay: one layer's trajectory, one checkpoint's report.
//!
//! Only the selected layer's trajectory is held (a few hundred kilobytes for thousands of checkpoints), and only
//! the chosen checkpoint's full report (for its ESD).

use htsr_api::TrajectoryPoint;
use htsr_contracts::LayerReport;

use crate::smoothing::debiased_ema;

#[derive(Debug, Clone, PartialEq)]
pub struct DetailModel {
    pub run: String,
    pub layer: String,
    /// The layer's whole history, ascending by step.
    pub points: Vec<TrajectoryPoint>,
    /// The full report at the chosen checkpoint (its step, and the report if stored).
    pub report: Option<(u64, Option<LayerReport>)>,
    /// The run's training loss at each checkpoint that recorded one, (step, loss): drawn beside alpha.
    pub losses: Vec<(f64, f64)>,
}

impl DetailModel {
    /// (step, alpha) for every checkpoint with a fit.
    pub fn alpha_series(&self) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .filter_map(|p| Some((p.step as f64, p.alpha?)))
            .collect()
    }

    /// The same points smoothed with TensorBoard's debiased EMA.
    pub fn smoothed_series(&self, weight: f64) -> Vec<(f64, f64)> {
        let raw = self.alpha_series();
        let ys: Vec<f64> = raw.iter().map(|p| p.1).collect();
        raw.iter()
            .zip(debiased_ema(&ys, weight))
            .map(|(p, s)| (p.0, s))
            .collect()
    }

    /// The index of the chosen checkpoint: `cursor`, or the newest.
    pub fn index(&self, cursor: Option<usize>) -> Option<usize> {
        let n = self.points.len();
        (n > 0).then(|| cursor.unwrap_or(n - 1).min(n - 1))
    }
}

/// One layer's alpha over steps in every run that has it: a sweep read at a glance.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayModel {
    pub layer: String,
    /// (run, points (step, alpha)), in run order.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// At most `max` points, evenly picked, always keeping the last: charts need no more points than cells.
pub fn thin(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points;
    }
    htsr_api::downsample_indices(points.len(), Some(max))
        .into_iter()
        .map(|i| points[i])
        .collect()
}
