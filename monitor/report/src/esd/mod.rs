//! The ESD panel: the eigenvalue density on log-log axes with the power-law fit (a line of slope -alpha from xmin)
//! and the Marchenko-Pastur fit (its density and bulk edges), as WeightWatcher's `plot=True` draws a layer.
//!
//! This module says what a panel shows (the spectrum and its fits); `geometry` places it in data coordinates,
//! apart from any drawing so that tests can check it; `draw` puts it on a canvas with its legend.

mod draw;
mod geometry;
#[cfg(test)]
mod tests;

use htsr_contracts::{marchenko_pastur, EsdHistogram, LayerReport, Phase};

use crate::render;
use crate::Error;

/// What the panel bins: the eigenvalues themselves, or a histogram stored earlier (htsr keeps a 96-bin
/// log-spaced histogram for every checkpoint and the raw eigenvalues only for some).
#[derive(Debug, Clone, PartialEq)]
pub enum Spectrum {
    /// Eigenvalues in the layer's units (lambda = squared singular values), any order; non-finite values are
    /// ignored and values at or below `1e-12 * lambda_max` count as numerical zeros.
    Eigenvalues(Vec<f64>),
    /// A stored histogram, drawn with its own bins.
    Histogram(EsdHistogram),
}

/// The power-law fit of the tail: p(lambda) proportional to lambda^-alpha for lambda >= xmin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerLawOverlay {
    /// The exponent: the line's slope on log-log axes is -alpha.
    pub alpha: f64,
    /// Where the tail starts, in the layer's units.
    pub xmin: f64,
}

/// A Marchenko-Pastur fit in htsr's (WeightWatcher's) unit-mean convention: the fit is made on eigenvalues
/// rescaled by `w_scale^2` to mean 1, so `sigma` is in unit-mean units, while the bulk edges are in the layer's
/// units (the fields of [`htsr_contracts::MpFit`], with the layer's aspect ratio Q from its metrics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MpOverlay {
    /// sigma_mp, in unit-mean units.
    pub sigma: f64,
    /// Aspect ratio Q = N / M >= 1 of one slice of the layer.
    pub q: f64,
    /// W_scale: lambda * w_scale^2 is the unit-mean eigenvalue. 1 when the eigenvalues are already unit-mean.
    pub w_scale: f64,
    /// Lower bulk edge, in the layer's units.
    pub bulk_min: f64,
    /// Upper bulk edge, in the layer's units.
    pub bulk_max: f64,
}

impl MpOverlay {
    /// The fit stored in a report (its `mp` and the Q of its `metrics`); None when either is missing or not a
    /// usable number.
    pub fn from_report(report: &LayerReport) -> Option<MpOverlay> {
        let mp = report.mp.as_ref()?;
        let q = report.metrics.as_ref()?.Q;
        let ok = |v: f64| v.is_finite() && v > 0.0;
        (ok(mp.sigma_mp) && ok(q) && ok(mp.w_scale) && mp.bulk_max.is_finite()).then_some(
            MpOverlay {
                sigma: mp.sigma_mp,
                q,
                w_scale: mp.w_scale,
                bulk_min: mp.bulk_min,
                bulk_max: mp.bulk_max,
            },
        )
    }

    /// The fitted density at `lambda` (layer units), normalized to 1 over the bulk: the unit-mean law
    /// transformed back, w_scale^2 * rho_MP(lambda * w_scale^2).
    pub fn density(&self, lambda: f64) -> f64 {
        let s2 = self.w_scale * self.w_scale;
        s2 * marchenko_pastur::density(lambda * s2, self.sigma, self.q)
    }

    /// The law's support (lower, upper) in the layer's units, from sigma and Q: it equals the stored bulk edges
    /// for the fits htsr makes (checked by the tests).
    pub fn support(&self) -> (f64, f64) {
        let s2 = self.w_scale * self.w_scale;
        let (lo, hi) = marchenko_pastur::edges(self.sigma, self.q);
        (lo / s2, hi / s2)
    }
}

/// One ESD chart: the spectrum, its fits, and a title. Build it with [`EsdPanel::from_eigenvalues`],
/// [`EsdPanel::from_histogram`] or [`EsdPanel::from_report`], add fits with the `with_*` methods, and draw it with
/// [`EsdPanel::to_svg`] (or several at once with [`crate::esd_grid_svg`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EsdPanel {
    /// The first line over the chart (a long one is cut from the left: a layer name's end says the most).
    pub title: String,
    /// A second line under the title (the phase and the fit's numbers when built from a report), drawn in the
    /// phase's colour when `phase` is set.
    pub subtitle: Option<String>,
    /// What is binned and drawn.
    pub spectrum: Spectrum,
    /// Draws the tail's fitted density from xmin, and xmin as a dashed line.
    pub power_law: Option<PowerLawOverlay>,
    /// Draws the MP density (and, when `bulk_edges` is None, its bulk edges).
    pub mp: Option<MpOverlay>,
    /// Vertical lines at the bulk edges (layer units), e.g. from a stored histogram that has no sigma.
    pub bulk_edges: Option<(f64, f64)>,
    /// WeightWatcher's detX_val: where the determinant condition starts the tail (layer units).
    pub detx_val: Option<f64>,
    /// The layer's phase: colours the subtitle.
    pub phase: Option<Phase>,
    /// Histogram bins for [`Spectrum::Eigenvalues`] (default: about 2 sqrt(n), 10 to 80).
    pub bins: Option<usize>,
}

fn usable(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

impl EsdPanel {
    fn new(title: impl Into<String>, spectrum: Spectrum) -> Self {
        EsdPanel {
            title: title.into(),
            subtitle: None,
            spectrum,
            power_law: None,
            mp: None,
            bulk_edges: None,
            detx_val: None,
            phase: None,
            bins: None,
        }
    }

    /// A panel of raw eigenvalues (layer units), with no fits yet.
    pub fn from_eigenvalues(title: impl Into<String>, eigenvalues: Vec<f64>) -> Self {
        Self::new(title, Spectrum::Eigenvalues(eigenvalues))
    }

    /// A panel of a stored histogram, with the fit markers it carries (alpha and xmin, the bulk edges, detX).
    pub fn from_histogram(title: impl Into<String>, histogram: EsdHistogram) -> Self {
        let power_law = match (histogram.alpha, histogram.xmin) {
            (Some(alpha), Some(xmin)) => Some(PowerLawOverlay { alpha, xmin }),
            _ => None,
        };
        let bulk_edges = histogram
            .bulk_max
            .map(|hi| (histogram.bulk_min.unwrap_or(0.0), hi));
        let detx_val = histogram.detx_val;
        EsdPanel {
            power_law,
            bulk_edges,
            detx_val,
            ..Self::new(title, Spectrum::Histogram(histogram))
        }
    }

    /// A panel of one layer's report: the raw `eigenvalues` when given (htsr keeps them for a run's latest and
    /// pinned checkpoints), else the report's stored histogram; with the report's power-law and MP fits, detX,
    /// and a subtitle with its phase. None when there is neither spectrum to draw (a skipped or failed layer).
    pub fn from_report(
        title: impl Into<String>,
        report: &LayerReport,
        eigenvalues: Option<Vec<f64>>,
    ) -> Option<Self> {
        let mut panel = match (eigenvalues, &report.esd) {
            (Some(ev), _) => Self::from_eigenvalues(title, ev),
            (None, Some(h)) => Self::from_histogram(title, h.clone()),
            (None, None) => return None,
        };
        if let Some(pl) = &report.power_law {
            panel = panel.with_power_law(pl.alpha, pl.xmin);
        }
        if let Some(mp) = MpOverlay::from_report(report) {
            panel = panel.with_mp(mp);
        }
        if let Some(erg) = &report.erg {
            panel.detx_val = usable(erg.detX_val).then_some(erg.detX_val);
        }
        let mut parts = Vec::new();
        if let Some(v) = &report.phase {
            panel.phase = Some(v.phase);
            parts.push(if v.very_heavy_tailed {
                format!("{} (very heavy)", v.phase.as_str())
            } else {
                v.phase.as_str().to_string()
            });
        }
        if let Some(pl) = &report.power_law {
            parts.push(format!("α {:.2}, D {:.3}", pl.alpha, pl.d));
        }
        if let Some(mp) = &report.mp {
            parts.push(match mp.num_spikes {
                1 => "1 spike".to_string(),
                n => format!("{n} spikes"),
            });
        }
        panel.subtitle = Some(parts.join(" · "));
        Some(panel)
    }

    /// Adds the power-law fit (ignored when alpha <= 1 or xmin <= 0: no such density).
    pub fn with_power_law(mut self, alpha: f64, xmin: f64) -> Self {
        self.power_law = (alpha.is_finite() && alpha > 1.0 && usable(xmin))
            .then_some(PowerLawOverlay { alpha, xmin });
        self
    }

    /// Adds the Marchenko-Pastur fit: its density, and its bulk edges as vertical lines.
    pub fn with_mp(mut self, mp: MpOverlay) -> Self {
        self.bulk_edges = Some((mp.bulk_min, mp.bulk_max));
        self.mp = Some(mp);
        self
    }

    /// Sets the line under the title.
    pub fn with_subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = Some(subtitle.into());
        self
    }

    /// Draws this panel alone as an SVG document of `width` x `height` pixels (380 x 300 reads well).
    pub fn to_svg(&self, width: u32, height: u32) -> Result<String, Error> {
        render::svg(width, height, |root| self.draw(root))
    }

    /// Bins for `n` eigenvalues: about 2 sqrt(n), so that bins are neither empty combs nor one block.
    fn default_bins(n: usize) -> usize {
        ((2.0 * (n as f64).sqrt()).round() as usize).clamp(10, 80)
    }

    /// The histogram drawn: the eigenvalues binned, or the stored histogram with neighbouring bins merged when
    /// it has few eigenvalues for its bins (40 eigenvalues in 96 bins would draw as isolated spikes whose
    /// heights overstate the density).
    fn histogram(&self) -> EsdHistogram {
        match &self.spectrum {
            Spectrum::Histogram(h) => {
                let n = h.counts.iter().map(|&c| c as usize).sum::<usize>();
                let want = self.bins.unwrap_or_else(|| Self::default_bins(n)).max(1);
                // Whole groups only, and only when the stored bins outnumber the wanted ones two to one or more.
                let group = (h.counts.len() / want).max(1);
                if group == 1 {
                    return h.clone();
                }
                let width = (h.log10_hi - h.log10_lo) / h.counts.len().max(1) as f64;
                let counts: Vec<u32> = h.counts.chunks(group).map(|c| c.iter().sum()).collect();
                EsdHistogram {
                    // A last, partial group is widened to a full one: the stretch it gains holds nothing.
                    log10_hi: h.log10_lo + width * (group * counts.len()) as f64,
                    counts,
                    ..h.clone()
                }
            }
            Spectrum::Eigenvalues(ev) => {
                let n = ev.iter().filter(|v| v.is_finite()).count();
                let bins = self.bins.unwrap_or_else(|| Self::default_bins(n));
                EsdHistogram::from_eigenvalues(ev, bins)
            }
        }
    }

    /// The tail's share of all eigenvalues: exact from raw eigenvalues, from whole (stored, unmerged) bins for a
    /// histogram.
    fn tail_fraction(&self, xmin: f64) -> f64 {
        match &self.spectrum {
            Spectrum::Eigenvalues(ev) => {
                let total = ev.iter().filter(|v| v.is_finite()).count().max(1) as f64;
                ev.iter().filter(|v| v.is_finite() && **v >= xmin).count() as f64 / total
            }
            Spectrum::Histogram(h) => h.tail_fraction(xmin),
        }
    }
}
