//! Drawing an ESD panel: its colours, its legend, and the chart.

use plotters::prelude::*;

use super::geometry::Geometry;
use super::{usable, EsdPanel, Spectrum};
use crate::chart::{configure_mesh, draw_header};
use crate::font::FAMILY;
use crate::legend::{self, Entry, Key};
use crate::render::{short_number, Area, OrDraw};
use crate::style::{phase_colour, Rgb};
use crate::Error;

const BAR: Rgb = Rgb(0x9e, 0xb9, 0xd4);
const POWER_LAW: Rgb = Rgb(0xd6, 0x27, 0x28);
const XMIN: Rgb = Rgb(0xe6, 0x7e, 0x00);
const MP: Rgb = Rgb(0x1a, 0x3d, 0x8f);
const DETX: Rgb = Rgb(0x8e, 0x24, 0xaa);

impl EsdPanel {
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
