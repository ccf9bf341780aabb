//! The Layers table's view model: one small row per layer of the selected run's newest checkpoint.
//!
//! Rows hold numbers and short strings only, never the full reports (ESDs, metrics), so a 500-layer run costs a
//! few hundred kilobytes however many checkpoints it has.

use std::collections::HashMap;

use htsr_contracts::{LayerReport, LayerStatus, Phase, Warning};

#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    pub name: String,
    /// "4096x1024", "64" for a vector.
    pub shape: String,
    pub status: LayerStatus,
    pub phase: Option<Phase>,
    pub very_heavy_tailed: bool,
    pub alpha: Option<f64>,
    /// Alpha at the previous checkpoint, for the change column.
    pub prev_alpha: Option<f64>,
    pub prev_phase: Option<Phase>,
    pub d: Option<f64>,
    pub spikes: Option<usize>,
    pub softrank: Option<f64>,
    pub warning: Warning,
    /// Why a layer was skipped or failed.
    pub reason: Option<String>,
}

/// What the change columns need of a layer at the previous checkpoint.
pub type Prev = (Option<f64>, Option<Phase>);

impl LayerRow {
    pub fn from_report(r: &LayerReport, prev: Option<Prev>) -> Self {
        let fin = |v: f64| v.is_finite().then_some(v);
        LayerRow {
            name: r.name.clone(),
            shape: r.shape_text(),
            status: r.status,
            phase: r.phase(),
            very_heavy_tailed: r.phase.as_ref().is_some_and(|v| v.very_heavy_tailed),
            alpha: r.alpha().and_then(fin),
            prev_alpha: prev.and_then(|p| p.0),
            prev_phase: prev.and_then(|p| p.1),
            d: r.power_law.as_ref().and_then(|p| fin(p.d)),
            spikes: r.mp.as_ref().map(|m| m.num_spikes),
            softrank: r.mp.as_ref().and_then(|m| fin(m.mp_softrank)),
            warning: r.warning,
            reason: r.reason.clone(),
        }
    }

    /// Change in alpha since the previous checkpoint.
    pub fn delta(&self) -> Option<f64> {
        Some(self.alpha? - self.prev_alpha?)
    }

    /// The warning column: WeightWatcher's warning, or why the layer has no numbers.
    pub fn warning_text(&self) -> String {
        match (self.status, &self.reason) {
            (LayerStatus::Success, _) => self.warning.as_str().to_string(),
            (s, Some(r)) => format!("{}: {r}", s.as_str()),
            (s, None) => s.as_str().to_string(),
        }
    }
}

/// Builds rows for `latest`, pairing each with the same layer's report at the previous checkpoint.
pub fn rows(latest: &[LayerReport], prev: &[LayerReport]) -> Vec<LayerRow> {
    let fin = |v: f64| v.is_finite().then_some(v);
    let by_name: HashMap<&str, Prev> = prev
        .iter()
        .map(|r| (r.name.as_str(), (r.alpha().and_then(fin), r.phase())))
        .collect();
    rows_after(latest, &by_name)
}

/// Builds rows for `latest` from what is known of the previous checkpoint by layer name.
pub fn rows_after(latest: &[LayerReport], prev: &HashMap<&str, Prev>) -> Vec<LayerRow> {
    latest
        .iter()
        .map(|r| LayerRow::from_report(r, prev.get(r.name.as_str()).copied()))
        .collect()
}

/// Indices of the rows whose name contains `filter` (case-insensitive); all rows when it is empty.
pub fn filtered(rows: &[LayerRow], filter: &str) -> Vec<usize> {
    let f = filter.to_lowercase();
    rows.iter()
        .enumerate()
        .filter(|(_, r)| f.is_empty() || r.name.to_lowercase().contains(&f))
        .map(|(i, _)| i)
        .collect()
}
