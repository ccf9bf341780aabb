//! The ESD panel: the eigenvalue density on log-log axes with the power-law fit (a line of slope -alpha from xmin)
//! and the Marchenko-Pastur fit (its density and bulk edges), as WeightWatcher's `plot=True` draws a layer.

use htsr_contracts::{EsdHistogram, LayerReport, Phase};
use plotters::prelude::*;

use crate::font::FAMILY;
use crate::legend::{self, Entry, Key};
use crate::render::{self, short_number, Area, OrDraw};
use crate::style::{phase_colour, Rgb};
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

/// The Marchenko-Pastur density for unit-mean eigenvalues, aspect ratio `q` >= 1 and scale `sigma` (the same
/// law as htsr-engine's `spectrum::mp::mp_density`, which the tests compare it with).
fn mp_density_unit(x: f64, sigma: f64, q: f64) -> f64 {
    let s2 = sigma * sigma;
    let (lo, hi) = mp_edges_unit(sigma, q);
    if x <= lo || x >= hi || x <= 0.0 {
        return 0.0;
    }
    q / (2.0 * std::f64::consts::PI * s2 * x) * ((hi - x) * (x - lo)).sqrt()
}

fn mp_edges_unit(sigma: f64, q: f64) -> (f64, f64) {
    let r = 1.0 / q.sqrt();
    let s2 = sigma * sigma;
    (s2 * (1.0 - r).powi(2), s2 * (1.0 + r).powi(2))
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
        s2 * mp_density_unit(lambda * s2, self.sigma, self.q)
    }

    /// The law's support (lower, upper) in the layer's units, from sigma and Q: it equals the stored bulk edges
    /// for the fits htsr makes (checked by the tests).
    pub fn support(&self) -> (f64, f64) {
        let s2 = self.w_scale * self.w_scale;
        let (lo, hi) = mp_edges_unit(self.sigma, self.q);
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

const BAR: Rgb = Rgb(0x9e, 0xb9, 0xd4);
const POWER_LAW: Rgb = Rgb(0xd6, 0x27, 0x28);
const XMIN: Rgb = Rgb(0xe6, 0x7e, 0x00);
const MP: Rgb = Rgb(0x1a, 0x3d, 0x8f);
const DETX: Rgb = Rgb(0x8e, 0x24, 0xaa);

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
            // Bins that reach past xmin, as the dashboard counts them.
            Spectrum::Histogram(h) => {
                (0..h.counts.len())
                    .filter(|&i| h.bin_edges(i).1 > xmin)
                    .map(|i| h.counts[i] as f64)
                    .sum::<f64>()
                    / h.total().max(1) as f64
            }
        }
    }

    pub(crate) fn geometry(&self) -> Geometry {
        let h = self.histogram();
        let total = h.total();
        let denom = total.max(1) as f64;
        let bars: Vec<(f64, f64, f64)> = h
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| {
                let (a, b) = h.bin_edges(i);
                (a, b, c as f64 / (denom * (b - a)))
            })
            .collect();
        let bulk_edges = self.bulk_edges.filter(|(_, hi)| usable(*hi));
        // x: the bins, widened to show every marker.
        let mut xlo = bars.first().map_or(f64::INFINITY, |b| b.0);
        let mut xhi = bars.last().map_or(0.0, |b| b.1).max(h.lambda_max);
        let markers = [
            self.power_law.map(|p| p.xmin),
            self.detx_val,
            bulk_edges.map(|e| e.0),
            bulk_edges.map(|e| e.1),
        ];
        for m in markers.into_iter().flatten().filter(|v| usable(*v)) {
            xlo = xlo.min(m);
            xhi = xhi.max(m);
        }
        if !(usable(xlo) && usable(xhi)) {
            return Geometry {
                bars,
                total,
                zeros: h.zeros as u64,
                power_law: None,
                mp_curve: Vec::new(),
                bulk_edges,
                x: (0.1, 10.0),
                y: (0.1, 10.0),
            };
        }
        let x = (xlo / 1.5, xhi * 1.5);
        // y: the bars, then room for the fits' peaks, without letting a divergent MP edge (Q = 1 at 0) flatten them.
        let dmin = bars.iter().map(|b| b.2).fold(f64::INFINITY, f64::min);
        let dmax = bars.iter().map(|b| b.2).fold(0.0, f64::max);
        let mut top = dmax;
        let pl_start = self.power_law.map(|p| {
            let f = self.tail_fraction(p.xmin);
            (p, f * (p.alpha - 1.0) / p.xmin)
        });
        if let Some((_, y0)) = pl_start.filter(|(_, y0)| usable(*y0)) {
            top = top.max(y0.min(dmax * 30.0));
        }
        let mp_samples: Vec<(f64, f64)> = self
            .mp
            .map(|mp| {
                let (lo, hi) = mp.support();
                let a = lo.max(x.0);
                let b = hi.min(x.1);
                if !(usable(a) && b > a) {
                    return Vec::new();
                }
                const N: usize = 240;
                (0..=N)
                    .map(|i| {
                        // Log-spaced inside the support, the last sample just short of the upper edge.
                        let t = i as f64 / N as f64;
                        let l = (a.ln() + t * (b.ln() - a.ln())).exp()
                            * if i == N { 1.0 - 1e-9 } else { 1.0 };
                        (l, mp.density(l))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mp_peak = mp_samples.iter().map(|p| p.1).fold(0.0, f64::max);
        if usable(mp_peak) {
            top = top.max(mp_peak.min(dmax * 30.0));
        }
        let y = if usable(dmin) && usable(top) {
            (dmin / 4.0, top * 3.0)
        } else {
            (0.1, 10.0)
        };
        let clamp_y = |v: f64| v.clamp(y.0, y.1);
        let mp_curve = mp_samples
            .into_iter()
            .map(|(l, d)| (l, clamp_y(if d > 0.0 { d } else { y.0 })))
            .collect();
        // The power-law line from xmin to lambda_max (slope -alpha in log-log), cut where it leaves the y range.
        let power_law = pl_start.and_then(|(p, y0)| {
            if !usable(y0) {
                return None;
            }
            let x1 = h.lambda_max.max(p.xmin * 1.01);
            let at = |xx: f64| y0 * (xx / p.xmin).powf(-p.alpha);
            let x_floor = p.xmin * (y0 / y.0).powf(1.0 / p.alpha);
            let x1 = x1.min(x_floor);
            (x1 > p.xmin).then(|| [(p.xmin, clamp_y(y0)), (x1, clamp_y(at(x1)))])
        });
        Geometry {
            bars,
            total,
            zeros: h.zeros as u64,
            power_law,
            mp_curve,
            bulk_edges,
            x,
            y,
        }
    }

    fn legend(&self, g: &Geometry) -> Vec<Entry> {
        let what = match self.spectrum {
            Spectrum::Eigenvalues(_) => "ESD",
            Spectrum::Histogram(_) => "stored ESD histogram",
        };
        let mut out = vec![Entry {
            label: if g.zeros > 0 {
                format!("{what}, {} eigenvalues ({} zero)", g.total, g.zeros)
            } else {
                format!("{what}, {} eigenvalues", g.total)
            },
            colour: BAR,
            key: Key::Swatch,
        }];
        if let (Some(p), Some(_)) = (self.power_law, g.power_law) {
            out.push(Entry {
                label: format!("power law α {:.2}", p.alpha),
                colour: POWER_LAW,
                key: Key::Line,
            });
            out.push(Entry {
                label: format!("xmin {}", short_number(p.xmin)),
                colour: XMIN,
                key: Key::Dashed,
            });
        }
        if let Some(mp) = self.mp.filter(|_| !g.mp_curve.is_empty()) {
            out.push(Entry {
                label: format!("MP σ {:.3}, Q {}", mp.sigma, short_number(mp.q)),
                colour: MP,
                key: Key::Line,
            });
        }
        if g.bulk_edges.is_some() {
            out.push(Entry {
                label: "MP bulk edges".into(),
                colour: MP,
                key: Key::Dashed,
            });
        }
        if self.detx_val.is_some_and(usable) {
            out.push(Entry {
                label: "detX".into(),
                colour: DETX,
                key: Key::Dashed,
            });
        }
        out
    }

    /// Draws the panel into `area` (title, chart, legend under it).
    pub(crate) fn draw(&self, area: &Area<'_>) -> Result<(), Error> {
        let g = self.geometry();
        let subtitle_colour = self.phase.map(phase_colour);
        let body = draw_header(area, &self.title, self.subtitle.as_deref(), subtitle_colour)?;
        if g.bars.is_empty() {
            let (w, h) = body.dim_in_pixel();
            body.draw_text(
                "no positive eigenvalues to draw",
                &TextStyle::from((FAMILY, 12.0 * 1.24).into_font()).color(&RGBColor(120, 120, 120)),
                (w as i32 / 4, h as i32 / 2),
            )
            .or_draw()?;
            return Ok(());
        }
        let entries = self.legend(&g);
        let (w, h) = body.dim_in_pixel();
        let lh = legend::height(&entries, w).min(h / 2);
        let (plot, legend_area) = body.split_vertically(h - lh);
        let mut chart = ChartBuilder::on(&plot)
            .margin_right(14)
            .margin_top(4)
            .x_label_area_size(34)
            .y_label_area_size(52)
            .build_cartesian_2d(
                {
                    let x = crate::line::log_axis(g.x);
                    (x.0..x.1).log_scale().base(crate::line::log_base(x))
                },
                {
                    let y = crate::line::log_axis(g.y);
                    (y.0..y.1).log_scale().base(crate::line::log_base(y))
                },
            )
            .or_draw()?;
        configure_mesh(&mut chart, "eigenvalue λ", "density")?;
        let floor = g.y.0;
        chart
            .draw_series(
                g.bars.iter().map(|&(a, b, d)| {
                    Rectangle::new([(a, floor), (b, d)], BAR.plotters().filled())
                }),
            )
            .or_draw()?;
        let vline = |chart: &mut ChartContext<'_, _, _>, x: f64, c: Rgb| {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x, g.y.0), (x, g.y.1)],
                    5,
                    4,
                    c.plotters().stroke_width(1),
                ))
                .map(|_| ())
                .or_draw()
        };
        if let Some((lo, hi)) = g.bulk_edges {
            if usable(lo) && lo > g.x.0 {
                vline(&mut chart, lo, MP)?;
            }
            vline(&mut chart, hi, MP)?;
        }
        if !g.mp_curve.is_empty() {
            chart
                .draw_series(LineSeries::new(
                    g.mp_curve.iter().copied(),
                    MP.plotters().stroke_width(2),
                ))
                .or_draw()?;
        }
        if let Some(x) = self.detx_val.filter(|v| usable(*v)) {
            vline(&mut chart, x, DETX)?;
        }
        if let (Some(p), Some(line)) = (self.power_law, g.power_law) {
            vline(&mut chart, p.xmin, XMIN)?;
            chart
                .draw_series(LineSeries::new(line, POWER_LAW.plotters().stroke_width(2)))
                .or_draw()?;
        }
        legend::draw(&legend_area, &entries)
    }
}

/// Draws a title (and a coloured subtitle) across the top of `area`; returns the area left under them.
pub(crate) fn draw_header<'a>(
    area: &Area<'a>,
    title: &str,
    subtitle: Option<&str>,
    subtitle_colour: Option<Rgb>,
) -> Result<Area<'a>, Error> {
    let height = if subtitle.is_some() { 36 } else { 22 };
    let (head, body) = area.split_vertically(height);
    let (w, _) = head.dim_in_pixel();
    head.draw_text(
        &fit_text(title, 13.0, w as f64 - 12.0),
        &TextStyle::from((FAMILY, 13.0 * 1.24).into_font()).color(&RGBColor(20, 20, 20)),
        (8, 5),
    )
    .or_draw()?;
    if let Some(s) = subtitle {
        let c = subtitle_colour.map_or(RGBColor(90, 90, 90), |c| c.plotters());
        head.draw_text(
            &fit_end(s, 11.0, w as f64 - 12.0),
            &TextStyle::from((FAMILY, 11.0 * 1.24).into_font()).color(&c),
            (8, 21),
        )
        .or_draw()?;
    }
    Ok(body)
}

/// `text` shortened with a leading ellipsis to fit `width` pixels: the end of a layer name says the most. Control
/// characters and bidirectional overrides (names come from checkpoints) are drawn as visible escapes.
pub(crate) fn fit_text(text: &str, px: f64, width: f64) -> String {
    let text = &*htsr_contracts::text::terminal_safe(text);
    if crate::font::text_width(text, px) <= width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for skip in 1..chars.len() {
        let s: String = std::iter::once('…')
            .chain(chars[skip..].iter().copied())
            .collect();
        if crate::font::text_width(&s, px) <= width {
            return s;
        }
    }
    "…".into()
}

/// `text` shortened with a trailing ellipsis to fit `width` pixels: a subtitle's first words say the most.
pub(crate) fn fit_end(text: &str, px: f64, width: f64) -> String {
    let text = &*htsr_contracts::text::terminal_safe(text);
    if crate::font::text_width(text, px) <= width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (1..chars.len()).rev() {
        let s: String = chars[..keep]
            .iter()
            .copied()
            .chain(std::iter::once('…'))
            .collect();
        if crate::font::text_width(&s, px) <= width {
            return s;
        }
    }
    "…".into()
}

/// Axes, grid and tick labels shared by the charts.
pub(crate) fn configure_mesh<'a, 'b, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> Result<(), Error>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>
        + plotters::coord::ranged1d::ValueFormatter<f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>
        + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let label = |v: &f64| render::axis_number(*v);
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .label_style(
            (FAMILY, 10.0 * 1.24)
                .into_font()
                .color(&RGBColor(60, 60, 60)),
        )
        .axis_desc_style(
            (FAMILY, 11.0 * 1.24)
                .into_font()
                .color(&RGBColor(40, 40, 40)),
        )
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(RGBColor(244, 244, 244))
        .axis_style(RGBColor(120, 120, 120))
        .draw()
        .or_draw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use htsr_engine::analyze::{analyze_matrix, AnalyzeOptions};
    use htsr_engine::synthetic::Ensemble;

    fn analyzed(ensemble: Ensemble, n: usize, m: usize, seed: u64) -> (LayerReport, Vec<f64>) {
        let w = ensemble.sample(n, m, seed);
        let a = analyze_matrix("layer", w.view(), &AnalyzeOptions::default());
        (a.report, a.eigenvalues.expect("analyzed"))
    }

    #[test]
    fn the_mp_density_is_the_engines() {
        for &(sigma, q) in &[(1.0, 2.0), (0.7, 1.0), (1.3, 4.5)] {
            for i in 0..400 {
                let x = i as f64 * 0.02;
                let ours = mp_density_unit(x, sigma, q);
                let engine = htsr_engine::spectrum::mp::mp_density(x, sigma, q);
                assert!(
                    (ours - engine).abs() <= 1e-12 * engine.abs().max(1.0),
                    "{x} {sigma} {q}"
                );
            }
            assert_eq!(
                mp_edges_unit(sigma, q),
                htsr_engine::spectrum::mp::mp_edges(sigma, q)
            );
        }
    }

    #[test]
    fn the_mp_overlay_lands_on_the_stored_bulk_edges_in_layer_units() {
        // A real fit on a layer far from unit mean (entries scaled by 30): sigma is in unit-mean units and the
        // stored edges in the layer's; the overlay must put the law's support exactly on those edges.
        let m = Ensemble::Gaussian.sample(400, 200, 7) * 30.0;
        let a = analyze_matrix("layer", m.view(), &AnalyzeOptions::default());
        let (report, evals) = (a.report, a.eigenvalues.expect("analyzed"));
        assert!(
            report.mp.as_ref().unwrap().w_scale < 0.1,
            "the layer is far from unit mean"
        );
        let mp = MpOverlay::from_report(&report).expect("an MP fit");
        let stored = report.mp.as_ref().unwrap();
        let (lo, hi) = mp.support();
        assert!(
            (lo / stored.bulk_min - 1.0).abs() < 1e-9,
            "{lo} vs {}",
            stored.bulk_min
        );
        assert!(
            (hi / stored.bulk_max - 1.0).abs() < 1e-9,
            "{hi} vs {}",
            stored.bulk_max
        );
        // In layer units the density integrates to 1 over the bulk (trapezoids on a fine grid).
        let n = 200_000;
        let integral: f64 = (0..n)
            .map(|i| {
                let a = lo + (hi - lo) * i as f64 / n as f64;
                let b = lo + (hi - lo) * (i + 1) as f64 / n as f64;
                0.5 * (mp.density(a) + mp.density(b)) * (b - a)
            })
            .sum();
        assert!((integral - 1.0).abs() < 2e-3, "integral {integral}");
        // And the bulk holds the eigenvalues: most of the scaled spectrum lies inside the support.
        let inside = evals
            .iter()
            .filter(|v| **v >= lo * 0.9 && **v <= hi * 1.1)
            .count();
        assert!(
            inside as f64 > 0.95 * evals.len() as f64,
            "{inside} of {}",
            evals.len()
        );
    }

    #[test]
    fn the_power_law_line_has_slope_minus_alpha_from_xmin() {
        let (report, evals) = analyzed(Ensemble::Pareto { mu_tenths: 15 }, 300, 150, 3);
        let n = evals.len() as f64;
        let pl = report.power_law.clone().unwrap();
        let panel = EsdPanel::from_report("heavy", &report, Some(evals.clone())).unwrap();
        let g = panel.geometry();
        let [(x0, y0), (x1, y1)] = g.power_law.expect("a power-law line");
        assert_eq!(x0, pl.xmin);
        let tail = evals.iter().filter(|v| **v >= pl.xmin).count() as f64;
        // The tail's density at xmin: its share of eigenvalues times the Pareto density's (alpha - 1) / xmin.
        assert!((y0 / (tail / n * (pl.alpha - 1.0) / pl.xmin) - 1.0).abs() < 1e-12);
        let slope = (y1.log10() - y0.log10()) / (x1.log10() - x0.log10());
        assert!(
            (slope + pl.alpha).abs() < 1e-9,
            "slope {slope}, alpha {}",
            pl.alpha
        );
        // The bars are a density: they integrate to the share of non-zero eigenvalues.
        let mass: f64 = g.bars.iter().map(|(a, b, d)| (b - a) * d).sum();
        assert!((mass - (g.total - g.zeros) as f64 / g.total as f64).abs() < 1e-9);
        assert!(g.y.0 > 0.0 && g.y.1 > g.y.0 && g.x.0 < pl.xmin && g.x.1 > x1);
    }

    #[test]
    fn a_stored_histogram_draws_with_its_markers_and_the_svg_parses() {
        let (report, _) = analyzed(Ensemble::StrongSpikes, 256, 128, 11);
        let panel = EsdPanel::from_report("fc1 · step 100", &report, None).unwrap();
        assert!(matches!(panel.spectrum, Spectrum::Histogram(_)));
        let svg = panel.to_svg(380, 300).unwrap();
        assert_eq!(crate::svg_size(&svg).unwrap(), (380.0, 300.0));
        for needle in [
            "fc1 · step 100",
            "stored ESD histogram, 128 eigenvalues",
            "power law α",
            "MP bulk edges",
            "MP σ",
        ] {
            assert!(svg.contains(needle), "{needle} missing");
        }
        // The phase colour is used for the subtitle.
        let phase = report.phase().unwrap();
        assert!(
            svg.contains(&format!(
                "fill=\"{}\"",
                phase_colour(phase).hex().to_uppercase()
            )) || svg.contains(&phase_colour(phase).hex())
        );
    }

    #[test]
    fn eigenvalues_alone_draw_without_fits_and_nothing_draws_a_message() {
        let svg = EsdPanel::from_eigenvalues("plain", vec![0.5, 1.0, 1.5, 2.0, 3.0, 0.0])
            .to_svg(300, 240)
            .unwrap();
        assert!(svg.contains("ESD, 6 eigenvalues (1 zero)"));
        assert!(!svg.contains("power law"));
        let empty = EsdPanel::from_eigenvalues("empty", vec![])
            .to_svg(300, 240)
            .unwrap();
        assert!(empty.contains("no positive eigenvalues"));
        crate::svg_size(&empty).unwrap();
        // alpha <= 1 is no density: the fit is dropped rather than drawn upside down.
        assert!(EsdPanel::from_eigenvalues("x", vec![1.0])
            .with_power_law(0.9, 1.0)
            .power_law
            .is_none());
    }

    #[test]
    fn a_sparse_stored_histogram_is_drawn_with_merged_bins_and_the_same_mass() {
        // 40 eigenvalues (a 512 x 40 layer) in the store's 96 bins: about 2 sqrt(40) = 13 wanted, so groups of 7
        // stored bins, 14 drawn (the last one partial, widened).
        let (report, evals) = analyzed(Ensemble::Gaussian, 512, 40, 5);
        let stored = report.esd.clone().unwrap();
        assert_eq!((stored.counts.len(), evals.len()), (96, 40));
        let panel = EsdPanel::from_histogram("sparse", stored.clone());
        let drawn = panel.histogram();
        assert_eq!(drawn.counts.len(), 14);
        assert_eq!(drawn.total(), stored.total());
        assert_eq!(drawn.log10_lo, stored.log10_lo);
        let w = (stored.log10_hi - stored.log10_lo) / 96.0;
        assert!((drawn.log10_hi - (stored.log10_lo + 98.0 * w)).abs() < 1e-12);
        let g = panel.geometry();
        let mass: f64 = g.bars.iter().map(|(a, b, d)| (b - a) * d).sum();
        assert!((mass - 1.0).abs() < 1e-9, "{mass}");
        // Every eigenvalue lies in the merged bin that the bars say holds it.
        for v in &evals {
            let i =
                ((v.log10() - drawn.log10_lo) / (drawn.log10_hi - drawn.log10_lo) * 14.0) as usize;
            assert!(drawn.counts[i.min(13)] > 0, "{v} fell in an empty bar");
        }
        // A well-filled histogram is drawn as stored.
        let (full, _) = analyzed(Ensemble::Gaussian, 4000, 2000, 5);
        let h = full.esd.unwrap();
        assert_eq!(EsdPanel::from_histogram("full", h.clone()).histogram(), h);
    }

    #[test]
    fn long_titles_are_cut_from_the_left() {
        let name = "model.layers.23.self_attention.query_key_value";
        let t = fit_text(name, 13.0, 160.0);
        assert!(t.starts_with('…') && t.ends_with("key_value"), "{t}");
        assert!(crate::font::text_width(&t, 13.0) <= 160.0);
        // One more character of the name would not have fitted.
        let kept = t.chars().count() - 1;
        let one_more: String = std::iter::once('…')
            .chain(name.chars().skip(name.chars().count() - kept - 1))
            .collect();
        assert!(crate::font::text_width(&one_more, 13.0) > 160.0);
        let s = fit_end(
            "heavy_tailed (very heavy) · α 1.98, D 0.052 · 32 spikes",
            11.0,
            150.0,
        );
        assert!(s.starts_with("heavy_tailed") && s.ends_with('…'), "{s}");
        assert!(crate::font::text_width(&s, 11.0) <= 150.0);
        assert_eq!(fit_text("fc1", 13.0, 120.0), "fc1");
    }
}
