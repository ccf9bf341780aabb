//! Where an ESD panel's parts go, in data coordinates: the bars, the fits' curves and the axes' ranges.

use htsr_contracts::power_law_anchor;

use super::{usable, EsdPanel, PowerLawOverlay};

/// What the panel draws, in data coordinates: computed apart from the drawing so that it can be tested.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Geometry {
    /// (lower edge, upper edge, density) of each non-empty bin; density = count / (total * width).
    pub bars: Vec<(f64, f64, f64)>,
    /// Eigenvalues counted (numerical zeros included, as in the density's denominator).
    pub total: u64,
    pub zeros: u64,
    /// The power-law line's two ends, clipped to the y range.
    pub power_law: Option<[(f64, f64); 2]>,
    pub mp_curve: Vec<(f64, f64)>,
    pub bulk_edges: Option<(f64, f64)>,
    pub x: (f64, f64),
    pub y: (f64, f64),
}

/// Samples of the MP density drawn as its curve.
const MP_SAMPLES: usize = 240;
/// How far above the tallest bar a fit's peak may lift the y range (a divergent MP edge, Q = 1 at 0, would
/// otherwise flatten the bars).
const PEAK_ROOM: f64 = 30.0;
/// The range of an axis with nothing to place on it.
const EMPTY_RANGE: (f64, f64) = (0.1, 10.0);

impl EsdPanel {
    pub(crate) fn geometry(&self) -> Geometry {
        let h = self.histogram();
        let total = h.total();
        let bars = bars(&h);
        let bulk_edges = self.bulk_edges.filter(|(_, hi)| usable(*hi));
        let mut geometry = Geometry {
            bars,
            total,
            zeros: h.zeros as u64,
            power_law: None,
            mp_curve: Vec::new(),
            bulk_edges,
            x: EMPTY_RANGE,
            y: EMPTY_RANGE,
        };
        let Some(x) = self.x_range(&geometry.bars, h.lambda_max, bulk_edges) else {
            return geometry;
        };
        let anchored = self.power_law.and_then(|p| {
            let y0 = power_law_anchor(self.tail_fraction(p.xmin), p.alpha, p.xmin)?;
            usable(y0).then_some((p, y0))
        });
        let mp_samples = self.mp_samples(x);
        let y = y_range(&geometry.bars, anchored.map(|a| a.1), &mp_samples);
        let clamp_y = |v: f64| v.clamp(y.0, y.1);
        geometry.mp_curve = mp_samples
            .into_iter()
            .map(|(l, d)| (l, clamp_y(if d > 0.0 { d } else { y.0 })))
            .collect();
        geometry.power_law = anchored.and_then(|(p, y0)| power_law_line(p, y0, h.lambda_max, y));
        geometry.x = x;
        geometry.y = y;
        geometry
    }

    /// The bins' span widened to show every marker, with a margin; None when nothing positive is there to place.
    fn x_range(
        &self,
        bars: &[(f64, f64, f64)],
        lambda_max: f64,
        bulk_edges: Option<(f64, f64)>,
    ) -> Option<(f64, f64)> {
        let mut lo = bars.first().map_or(f64::INFINITY, |b| b.0);
        let mut hi = bars.last().map_or(0.0, |b| b.1).max(lambda_max);
        let markers = [
            self.power_law.map(|p| p.xmin),
            self.detx_val,
            bulk_edges.map(|e| e.0),
            bulk_edges.map(|e| e.1),
        ];
        for m in markers.into_iter().flatten().filter(|v| usable(*v)) {
            lo = lo.min(m);
            hi = hi.max(m);
        }
        (usable(lo) && usable(hi)).then_some((lo / 1.5, hi * 1.5))
    }

    /// The MP density sampled log-spaced over the part of its support inside `x`, the last sample just short of
    /// the upper edge (where the density is 0).
    fn mp_samples(&self, x: (f64, f64)) -> Vec<(f64, f64)> {
        let Some(mp) = self.mp else {
            return Vec::new();
        };
        let (lo, hi) = mp.support();
        let (a, b) = (lo.max(x.0), hi.min(x.1));
        if !(usable(a) && b > a) {
            return Vec::new();
        }
        (0..=MP_SAMPLES)
            .map(|i| {
                let t = i as f64 / MP_SAMPLES as f64;
                let short = if i == MP_SAMPLES { 1.0 - 1e-9 } else { 1.0 };
                let l = (a.ln() + t * (b.ln() - a.ln())).exp() * short;
                (l, mp.density(l))
            })
            .collect()
    }
}

/// Each non-empty bin as (lower edge, upper edge, density), density = count / (total * width).
fn bars(h: &htsr_contracts::EsdHistogram) -> Vec<(f64, f64, f64)> {
    let denom = h.total().max(1) as f64;
    h.counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, &c)| {
            let (a, b) = h.bin_edges(i);
            (a, b, c as f64 / (denom * (b - a)))
        })
        .collect()
}

/// The bars' densities, then room for the fits' peaks (the power law's anchor, the MP curve's maximum).
fn y_range(
    bars: &[(f64, f64, f64)],
    power_law_anchor: Option<f64>,
    mp_samples: &[(f64, f64)],
) -> (f64, f64) {
    let dmin = bars.iter().map(|b| b.2).fold(f64::INFINITY, f64::min);
    let dmax = bars.iter().map(|b| b.2).fold(0.0, f64::max);
    let mp_peak = mp_samples.iter().map(|p| p.1).fold(0.0, f64::max);
    let top = [power_law_anchor, Some(mp_peak)]
        .into_iter()
        .flatten()
        .filter(|v| usable(*v))
        .fold(dmax, |top, peak| top.max(peak.min(dmax * PEAK_ROOM)));
    if usable(dmin) && usable(top) {
        (dmin / 4.0, top * 3.0)
    } else {
        EMPTY_RANGE
    }
}

/// The power-law line from xmin to lambda_max (slope -alpha in log-log), cut where it leaves the y range.
fn power_law_line(
    p: PowerLawOverlay,
    y0: f64,
    lambda_max: f64,
    y: (f64, f64),
) -> Option<[(f64, f64); 2]> {
    let clamp_y = |v: f64| v.clamp(y.0, y.1);
    let at = |x: f64| y0 * (x / p.xmin).powf(-p.alpha);
    let x_floor = p.xmin * (y0 / y.0).powf(1.0 / p.alpha);
    let x1 = lambda_max.max(p.xmin * 1.01).min(x_floor);
    (x1 > p.xmin).then(|| [(p.xmin, clamp_y(y0)), (x1, clamp_y(at(x1)))])
}
