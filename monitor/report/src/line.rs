//! A plain line/scatter chart: series of (x, y) points on linear or log axes, with optional horizontal reference
//! lines and a legend under the plot.

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;

use crate::chart::{configure_mesh, draw_header};
use crate::legend::{self, Entry, Key};
use crate::render::{self, Area, OrDraw};
use crate::style::{palette, Rgb};
use crate::Error;

/// An axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// Evenly spaced values.
    #[default]
    Linear,
    /// Base-10 logarithmic; points with a value <= 0 on this axis are left out.
    Log,
}

/// How a series is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mark {
    /// Points joined in the order given.
    #[default]
    Line,
    /// Points only (a scatter).
    Points,
    /// Both.
    LineAndPoints,
}

/// One named series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend's label.
    pub name: String,
    /// (x, y) in drawing order; non-finite points, and non-positive ones on a log axis, are left out.
    pub points: Vec<(f64, f64)>,
    /// Line, points or both.
    pub mark: Mark,
    /// Default: the palette colour of the series' position.
    pub colour: Option<Rgb>,
    /// Whether the legend lists it (default true).
    pub in_legend: bool,
}

impl Series {
    fn new(name: impl Into<String>, points: Vec<(f64, f64)>, mark: Mark) -> Self {
        Series {
            name: name.into(),
            points,
            mark,
            colour: None,
            in_legend: true,
        }
    }

    /// Points joined by a line.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(name, points, Mark::Line)
    }

    /// A scatter.
    pub fn points(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(name, points, Mark::Points)
    }

    /// A line with its points marked.
    pub fn line_and_points(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(name, points, Mark::LineAndPoints)
    }

    /// Sets the colour.
    pub fn colour(mut self, colour: Rgb) -> Self {
        self.colour = Some(colour);
        self
    }

    /// Leaves the series out of the legend.
    pub fn without_legend(mut self) -> Self {
        self.in_legend = false;
        self
    }
}

/// A line or scatter chart. Build with [`LineChart::new`] and the builder methods, draw with
/// [`LineChart::to_svg`] (or in a grid with [`crate::grid_svg`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// The first line over the chart.
    pub title: String,
    /// A second, smaller line.
    pub subtitle: Option<String>,
    /// Colour of the subtitle (default grey).
    pub subtitle_colour: Option<Rgb>,
    /// The x axis' description.
    pub x_label: String,
    /// The y axis' description.
    pub y_label: String,
    /// Linear or log x axis.
    pub x_scale: Scale,
    /// Linear or log y axis.
    pub y_scale: Scale,
    /// Drawn in order, each in its own colour.
    pub series: Vec<Series>,
    /// Horizontal dashed lines (y, label), drawn when y falls inside the data's range.
    pub reference_lines: Vec<(f64, String)>,
    /// Whether to draw the legend under the plot (default true).
    pub legend: bool,
}

impl LineChart {
    /// An empty chart with a title, linear axes and a legend.
    pub fn new(title: impl Into<String>) -> Self {
        LineChart {
            title: title.into(),
            subtitle: None,
            subtitle_colour: None,
            x_label: String::new(),
            y_label: String::new(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            series: Vec::new(),
            reference_lines: Vec::new(),
            legend: true,
        }
    }

    /// Sets the axis descriptions.
    pub fn labels(mut self, x: impl Into<String>, y: impl Into<String>) -> Self {
        self.x_label = x.into();
        self.y_label = y.into();
        self
    }

    /// Makes the x axis logarithmic (base 10).
    pub fn log_x(mut self) -> Self {
        self.x_scale = Scale::Log;
        self
    }

    /// Makes the y axis logarithmic (base 10).
    pub fn log_y(mut self) -> Self {
        self.y_scale = Scale::Log;
        self
    }

    /// Sets the line under the title.
    pub fn subtitle(mut self, text: impl Into<String>, colour: Option<Rgb>) -> Self {
        self.subtitle = Some(text.into());
        self.subtitle_colour = colour;
        self
    }

    /// Adds a series.
    pub fn series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Adds a horizontal reference line.
    pub fn reference_line(mut self, y: f64, label: impl Into<String>) -> Self {
        self.reference_lines.push((y, label.into()));
        self
    }

    /// Hides the legend (small multiples share one).
    pub fn without_legend(mut self) -> Self {
        self.legend = false;
        self
    }

    /// Draws the chart alone as an SVG document of `width` x `height` pixels.
    pub fn to_svg(&self, width: u32, height: u32) -> Result<String, Error> {
        render::svg(width, height, |root| self.draw(root))
    }

    fn colour_of(&self, i: usize) -> Rgb {
        self.series[i].colour.unwrap_or_else(|| palette(i))
    }

    /// The points of series `i` that the scales can show.
    fn visible(&self, i: usize) -> impl Iterator<Item = (f64, f64)> + '_ {
        let ok = |v: f64, s: Scale| v.is_finite() && (s == Scale::Linear || v > 0.0);
        self.series[i]
            .points
            .iter()
            .copied()
            .filter(move |&(x, y)| ok(x, self.x_scale) && ok(y, self.y_scale))
    }

    /// The data's (x, y) ranges, padded; None when no point is visible.
    pub(crate) fn ranges(&self) -> Option<((f64, f64), (f64, f64))> {
        let all: Vec<(f64, f64)> = (0..self.series.len())
            .flat_map(|i| self.visible(i))
            .collect();
        if all.is_empty() {
            return None;
        }
        let span = |vals: &mut dyn Iterator<Item = f64>, scale: Scale| {
            let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
            match scale {
                Scale::Linear if hi > lo => {
                    let pad = (hi - lo) * 0.06;
                    (lo - pad, hi + pad)
                }
                Scale::Linear => (lo - lo.abs().max(1.0) * 0.5, hi + hi.abs().max(1.0) * 0.5),
                Scale::Log if hi > lo => {
                    let pad = (hi / lo).powf(0.06);
                    (lo / pad, hi * pad)
                }
                Scale::Log => (lo / 2.0, hi * 2.0),
            }
        };
        let axis = |r: (f64, f64), scale: Scale| match scale {
            Scale::Linear => linear_axis(r),
            Scale::Log => log_axis(r),
        };
        let x = axis(
            span(&mut all.iter().map(|p| p.0), self.x_scale),
            self.x_scale,
        );
        let y = axis(
            span(&mut all.iter().map(|p| p.1), self.y_scale),
            self.y_scale,
        );
        Some((x, y))
    }

    fn legend_entries(&self) -> Vec<Entry> {
        if !self.legend {
            return Vec::new();
        }
        let mut out: Vec<Entry> = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| s.in_legend)
            .map(|(i, s)| Entry {
                label: s.name.clone(),
                colour: self.colour_of(i),
                key: if s.mark == Mark::Points {
                    Key::Point
                } else {
                    Key::Line
                },
            })
            .collect();
        if let Some(((_, _), (ylo, yhi))) = self.ranges() {
            for (y, label) in &self.reference_lines {
                if *y >= ylo && *y <= yhi && !label.is_empty() {
                    out.push(Entry {
                        label: label.clone(),
                        colour: REFERENCE,
                        key: Key::Dashed,
                    });
                }
            }
        }
        out
    }

    pub(crate) fn draw(&self, area: &Area<'_>) -> Result<(), Error> {
        let body = draw_header(
            area,
            &self.title,
            self.subtitle.as_deref(),
            self.subtitle_colour,
        )?;
        let Some((x, y)) = self.ranges() else {
            let (w, h) = body.dim_in_pixel();
            body.draw_text(
                "no data",
                &TextStyle::from((crate::font::FAMILY, 12.0 * 1.24).into_font())
                    .color(&RGBColor(120, 120, 120)),
                (w as i32 / 2 - 20, h as i32 / 2),
            )
            .or_draw()?;
            return Ok(());
        };
        let entries = self.legend_entries();
        let (w, h) = body.dim_in_pixel();
        let lh = legend::height(&entries, w).min(h / 2);
        let (plot, legend_area) = body.split_vertically(h - lh);
        match (self.x_scale, self.y_scale) {
            (Scale::Linear, Scale::Linear) => self.plot(&plot, x.0..x.1, y.0..y.1)?,
            (Scale::Log, Scale::Linear) => {
                self.plot(&plot, (x.0..x.1).log_scale().base(log_base(x)), y.0..y.1)?
            }
            (Scale::Linear, Scale::Log) => {
                self.plot(&plot, x.0..x.1, (y.0..y.1).log_scale().base(log_base(y)))?
            }
            (Scale::Log, Scale::Log) => self.plot(
                &plot,
                (x.0..x.1).log_scale().base(log_base(x)),
                (y.0..y.1).log_scale().base(log_base(y)),
            )?,
        }
        legend::draw(&legend_area, &entries)
    }

    fn plot<X, Y>(&self, area: &Area<'_>, x: X, y: Y) -> Result<(), Error>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(area)
            .margin_right(14)
            .margin_top(4)
            .x_label_area_size(34)
            .y_label_area_size(48)
            .build_cartesian_2d(x, y)
            .or_draw()?;
        configure_mesh(&mut chart, &self.x_label, &self.y_label)?;
        let (xr, yr) = (chart.x_range(), chart.y_range());
        for (ref_y, _) in &self.reference_lines {
            if *ref_y >= yr.start && *ref_y <= yr.end {
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(xr.start, *ref_y), (xr.end, *ref_y)],
                        6,
                        4,
                        REFERENCE.plotters().stroke_width(1),
                    ))
                    .or_draw()?;
            }
        }
        for (i, s) in self.series.iter().enumerate() {
            let c = self.colour_of(i).plotters();
            let pts: Vec<(f64, f64)> = self.visible(i).collect();
            if matches!(s.mark, Mark::Line | Mark::LineAndPoints) && pts.len() > 1 {
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                    .or_draw()?;
            }
            // A lone point of a line would vanish, so it is marked too.
            if matches!(s.mark, Mark::Points | Mark::LineAndPoints) || pts.len() == 1 {
                let r = if pts.len() > 200 { 2 } else { 3 };
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, r, c.filled())))
                    .or_draw()?;
            }
        }
        Ok(())
    }
}

const REFERENCE: Rgb = Rgb(0x88, 0x88, 0x88);

/// Ticks of a log axis fall on powers of the base: 10 over two decades or more; over less, powers of 10 would leave
/// one tick or none, so powers of 2 (which also suit batch sizes).
pub(crate) fn log_base((lo, hi): (f64, f64)) -> f64 {
    if hi / lo >= 100.0 {
        10.0
    } else {
        2.0
    }
}

/// A log axis's range widened, when needed, to the powers of its base around it, so that it carries at least two
/// tick labels (a range inside one power has one or none).
pub(crate) fn log_axis((lo, hi): (f64, f64)) -> (f64, f64) {
    let b = log_base((lo, hi));
    let (first, last) = ((lo.ln() / b.ln()).ceil(), (hi.ln() / b.ln()).floor());
    if last - first >= 1.0 {
        return (lo, hi);
    }
    let lo = b.powf((lo.ln() / b.ln()).floor());
    let hi = b.powf((hi.ln() / b.ln()).ceil()).max(lo * b);
    (lo, hi)
}

/// A linear axis's range widened to the nearest round ticks around it (about five over the range), so that the
/// outermost values of the data have a tick and a grid line beyond them: data in 2.25..3.11 is drawn on 2.2..3.2
/// with ticks at every 0.2, not on 2.2..3.16 with the 3.0 tick lost.
pub(crate) fn linear_axis((lo, hi): (f64, f64)) -> (f64, f64) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (lo, hi);
    }
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    // A hair of tolerance: 2.2 / 0.2 is 10.999... in floating point, and must stay 11.
    (
        (lo / step + 1e-9).floor() * step,
        (hi / step - 1e-9).ceil() * step,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accuracy_by_batch() -> LineChart {
        LineChart::new("test accuracy against batch size")
            .labels("batch size", "test accuracy (%)")
            .log_x()
            .series(Series::line_and_points(
                "seed 0",
                vec![
                    (4.0, 98.2),
                    (16.0, 98.2),
                    (64.0, 93.8),
                    (256.0, 63.7),
                    (1024.0, 34.2),
                ],
            ))
            .series(Series::points(
                "seed 1",
                vec![(4.0, 97.9), (64.0, 94.1), (-1.0, 50.0)],
            ))
            .reference_line(90.0, "90%")
    }

    #[test]
    fn a_short_log_axis_is_ticked_at_powers_of_two() {
        let pts: Vec<(f64, f64)> = [2.0, 4.0, 8.0, 16.0, 32.0]
            .iter()
            .map(|b| (*b, 1.0 / b))
            .collect();
        let svg = LineChart::new("sweep")
            .log_x()
            .series(Series::points("alpha", pts))
            .to_svg(480, 320)
            .unwrap();
        for tick in ["2", "4", "8", "16", "32"] {
            assert!(
                svg.contains(&format!(">\n{tick}\n</text>")),
                "no tick {tick}"
            );
        }
        assert_eq!(log_base((4.0, 1024.0)), 10.0);
    }

    #[test]
    fn a_log_x_chart_spans_its_data_and_drops_what_log_cannot_show() {
        let c = accuracy_by_batch();
        let ((x0, x1), (y0, y1)) = c.ranges().unwrap();
        assert!(
            x0 > 0.0 && x0 < 4.0 && x1 > 1024.0 && x1 < 2048.0,
            "{x0} {x1}"
        );
        assert!(y0 < 34.2 && y1 > 98.2);
        assert_eq!(c.visible(1).count(), 2, "x = -1 has no place on a log axis");
        let svg = c.to_svg(480, 320).unwrap();
        assert_eq!(crate::svg_size(&svg).unwrap(), (480.0, 320.0));
        for needle in [
            "test accuracy against batch size",
            "batch size",
            "seed 0",
            "seed 1",
            "90%",
        ] {
            assert!(svg.contains(needle), "{needle} missing");
        }
        // Decades are labelled on the log axis.
        assert!(svg.contains(">\n10\n</text>"), "no decade tick");
        // Seven visible points drawn as circles (five + two), and the scatter's key in the legend.
        assert_eq!(svg.matches("<circle").count(), 7 + 1);
    }

    #[test]
    fn axes_reach_round_ticks_beyond_the_data_and_log_axes_carry_two_labels() {
        let (lo, hi) = linear_axis((2.25 - 0.05, 3.11 + 0.05));
        assert!(
            (lo - 2.2).abs() < 1e-9 && (hi - 3.2).abs() < 1e-9,
            "{lo} {hi}"
        );
        let svg = LineChart::new("alpha")
            .series(Series::points("a", vec![(0.0, 2.25), (1.0, 3.11)]))
            .to_svg(300, 200)
            .unwrap();
        // The y axis is labelled below the lowest alpha and above the highest (its grid reaches past 3.0).
        let labels: Vec<f64> = svg
            .lines()
            .filter_map(|l| l.trim().parse::<f64>().ok())
            .filter(|v| *v >= 2.0)
            .collect();
        assert!(
            labels.iter().any(|&v| v <= 2.25) && labels.iter().any(|&v| v >= 3.0),
            "{labels:?}"
        );
        // A log range inside one power of its base is widened to the powers around it.
        assert_eq!(log_axis((3.0, 3.5)), (2.0, 4.0));
        assert_eq!(log_axis((5.0, 6.0)), (4.0, 8.0));
        assert_eq!(log_axis((1.0, 1000.0)), (1.0, 1000.0));
        let svg = LineChart::new("b")
            .log_x()
            .series(Series::points("a", vec![(3.0, 1.0), (3.5, 2.0)]))
            .to_svg(300, 200)
            .unwrap();
        assert!(
            svg.contains(">\n2\n</text>") && svg.contains(">\n4\n</text>"),
            "two log ticks"
        );
    }

    #[test]
    fn a_chart_without_points_says_so() {
        let svg = LineChart::new("empty").to_svg(300, 200).unwrap();
        assert!(svg.contains("no data"));
        let flat = LineChart::new("flat").series(Series::line("a", vec![(1.0, 3.0), (2.0, 3.0)]));
        let ((_, _), (y0, y1)) = flat.ranges().unwrap();
        assert!(y0 < 3.0 && y1 > 3.0);
    }
}
