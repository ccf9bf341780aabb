//! The phase map: layers by checkpoints, each cell the layer's phase, with a legend. Written as SVG by hand
//! rather than through plotters, so that each run of equal cells is one rectangle with a `<title>` (a tooltip in
//! the browser with no script), which keeps a 500-layer map small.

use htsr_api::PhaseGrid;
use htsr_contracts::Phase;

use crate::chart::fit_text;
use crate::font::text_width;
use crate::render::{escape, step_label};
use crate::style::{phase_colour, Rgb, NO_PHASE};

const PAD: f64 = 10.0;
const HEAD: f64 = 44.0;
const LABEL_MAX: f64 = 240.0;
const LEGEND_ROW: f64 = 16.0;
/// The step axis under the plot: its ticks, labels and title.
const AXIS_H: f64 = 34.0;

/// A legend entry: its colour, its name, and where it goes.
type LegendItem = (Rgb, String, (f64, f64));

/// Where the map's parts go.
struct Layout {
    cell_w: f64,
    cell_h: f64,
    label_px: f64,
    /// Each layer's label, fitted to the label column.
    labels: Vec<String>,
    /// The plot's top-left corner.
    x0: f64,
    y0: f64,
    plot_w: f64,
    plot_h: f64,
    width: f64,
    height: f64,
    /// The legend's items and where each goes (relative to `legend_y`).
    legend: Vec<LegendItem>,
    legend_y: f64,
}

impl Layout {
    fn of(grid: &PhaseGrid) -> Layout {
        let rows = grid.layers.len();
        let cols = grid.steps.len();
        let cell_h = if rows > 40 { 11.0 } else { 14.0 };
        let label_px = if rows > 40 { 9.0 } else { 11.0 };
        let labels: Vec<String> = grid
            .layers
            .iter()
            .map(|l| fit_text(l, label_px, LABEL_MAX))
            .collect();
        let label_w = labels
            .iter()
            .map(|l| text_width(l, label_px))
            .fold(40.0, f64::max)
            + 8.0;
        let cell_w = if cols == 0 {
            0.0
        } else {
            (760.0 / cols as f64).clamp(2.0, 60.0)
        };
        let (x0, y0) = (PAD + label_w, HEAD);
        let (plot_w, plot_h) = (cell_w * cols as f64, cell_h * rows as f64);
        let width = (x0 + plot_w + PAD).max(560.0);
        let (legend, legend_rows_h) = legend(width);
        let legend_y = y0 + plot_h + AXIS_H;
        Layout {
            cell_w,
            cell_h,
            label_px,
            labels,
            x0,
            y0,
            plot_w,
            plot_h,
            width,
            height: legend_y + legend_rows_h + LEGEND_ROW + PAD,
            legend,
            legend_y,
        }
    }
}

/// Every phase and "no phase", flowing in rows across `width`; returns the items with their places and the height
/// of the rows after the first.
fn legend(width: f64) -> (Vec<LegendItem>, f64) {
    let items = Phase::ALL
        .iter()
        .map(|p| (phase_colour(*p), p.as_str().to_string()))
        .chain(std::iter::once((NO_PHASE, "no phase".to_string())));
    let (mut lx, mut ly) = (PAD, 0.0);
    let mut out = Vec::new();
    for (colour, name) in items {
        let w = 14.0 + 4.0 + text_width(&name, 11.0) + 14.0;
        if lx + w > width - PAD && lx > PAD {
            lx = PAD;
            ly += LEGEND_ROW;
        }
        out.push((colour, name, (lx, ly)));
        lx += w;
    }
    (out, ly)
}

/// The phase map of `grid` as an SVG document, titled. Rows are layers in the grid's order, columns its
/// (possibly downsampled) checkpoints; cells with no phase (skipped, failed or absent) are light grey. Every
/// phase is in the legend, present or not, so that maps of different runs read alike.
pub fn phase_map_svg(grid: &PhaseGrid, title: &str) -> String {
    let rows = grid.layers.len();
    let cols = grid.steps.len();
    let l = Layout::of(grid);
    let mut s = String::with_capacity(256 + rows * 200);
    s.push_str(&format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif">"#,
        w = l.width,
        h = l.height
    ));
    s.push_str(&format!(
        r##"<rect x="0" y="0" width="{:.0}" height="{:.0}" fill="#ffffff"/>"##,
        l.width, l.height
    ));
    s.push_str(&format!(
        r##"<text x="{PAD}" y="18" font-size="15" fill="#0a0a0a">{}</text>"##,
        escape(title)
    ));
    let shown = if cols < grid.total_checkpoints {
        format!(
            "{rows} layers × {cols} of {} checkpoints (evenly spaced, newest last)",
            grid.total_checkpoints
        )
    } else {
        format!("{rows} layers × {cols} checkpoints")
    };
    s.push_str(&format!(
        r##"<text x="{PAD}" y="35" font-size="11" fill="#5a5a5a">{}</text>"##,
        escape(&shown)
    ));
    for r in 0..rows {
        draw_row(&mut s, grid, &l, r);
    }
    draw_step_axis(&mut s, grid, &l);
    for (colour, name, (lx, ly)) in &l.legend {
        let y = l.legend_y + ly;
        s.push_str(&format!(
            r##"<rect x="{lx:.1}" y="{:.1}" width="14" height="11" fill="{}" stroke="#bbbbbb" stroke-width="0.5"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#282828">{}</text>"##,
            y + 2.0,
            colour.hex(),
            lx + 18.0,
            y + 11.5,
            escape(name)
        ));
    }
    s.push_str("</svg>\n");
    s
}

/// Row `r`: its label, then its cells, each run of equal cells one rectangle whose tooltip names the layer, the
/// phase and the steps.
fn draw_row(s: &mut String, grid: &PhaseGrid, l: &Layout, r: usize) {
    let cols = grid.steps.len();
    let y = l.y0 + r as f64 * l.cell_h;
    s.push_str(&format!(
        r##"<text x="{:.1}" y="{:.1}" font-size="{}" text-anchor="end" fill="#282828">{}</text>"##,
        l.x0 - 6.0,
        y + l.cell_h * 0.5 + l.label_px * 0.35,
        l.label_px,
        escape(&l.labels[r])
    ));
    let row = grid.cells.get(r).map(Vec::as_slice).unwrap_or(&[]);
    let mut c = 0;
    while c < cols {
        let phase = row.get(c).copied().flatten();
        let mut end = c + 1;
        while end < cols && row.get(end).copied().flatten() == phase {
            end += 1;
        }
        let colour = phase.map_or(NO_PHASE, phase_colour);
        let name = phase.map_or("no phase", Phase::as_str);
        let steps = if end - c == 1 {
            format!("step {}", grid.steps[c])
        } else {
            format!("steps {}–{}", grid.steps[c], grid.steps[end - 1])
        };
        s.push_str(&format!(
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{}"><title>{}: {name}, {steps}</title></rect>"#,
            l.x0 + c as f64 * l.cell_w,
            y + 0.5,
            (end - c) as f64 * l.cell_w,
            l.cell_h - 1.0,
            colour.hex(),
            escape(&grid.layers[r]),
        ));
        c = end;
    }
}

/// The step axis: up to six ticks on evenly spaced columns, first and last included.
fn draw_step_axis(s: &mut String, grid: &PhaseGrid, l: &Layout) {
    let cols = grid.steps.len();
    let ticks = if cols == 0 {
        Vec::new()
    } else {
        htsr_api::downsample_indices(cols, Some(6))
    };
    let (x0, axis_y) = (l.x0, l.y0 + l.plot_h + 2.0);
    s.push_str(&format!(
        r##"<line x1="{x0:.1}" y1="{axis_y:.1}" x2="{:.1}" y2="{axis_y:.1}" stroke="#787878"/>"##,
        x0 + l.plot_w
    ));
    for &i in &ticks {
        let x = x0 + (i as f64 + 0.5) * l.cell_w;
        s.push_str(&format!(
            r##"<line x1="{x:.1}" y1="{axis_y:.1}" x2="{x:.1}" y2="{:.1}" stroke="#787878"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#3c3c3c">{}</text>"##,
            axis_y + 4.0,
            axis_y + 15.0,
            step_label(grid.steps[i] as f64)
        ));
    }
    s.push_str(&format!(
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#282828">step</text>"##,
        x0 + l.plot_w / 2.0,
        axis_y + 29.0
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> PhaseGrid {
        PhaseGrid {
            layers: vec![
                "fc1".into(),
                "a.very.long.layer.name.<with>.&.odd.characters".into(),
            ],
            steps: vec![0, 100, 200, 300],
            cells: vec![
                vec![
                    Some(Phase::RandomLike),
                    Some(Phase::RandomLike),
                    Some(Phase::BleedingOut),
                    Some(Phase::HeavyTailed),
                ],
                vec![
                    None,
                    Some(Phase::BulkDecay),
                    Some(Phase::BulkDecay),
                    Some(Phase::BulkDecay),
                ],
            ],
            total_checkpoints: 9,
        }
    }

    #[test]
    fn runs_of_equal_cells_are_one_rectangle_each_with_a_tooltip() {
        let svg = phase_map_svg(&grid(), "run <A>");
        crate::svg_size(&svg).unwrap();
        assert!(svg.contains("<title>fc1: random_like, steps 0–100</title>"));
        assert!(svg.contains("<title>fc1: bleeding_out, step 200</title>"));
        assert!(svg.contains("bulk_decay, steps 100–300"));
        assert!(svg.contains("no phase, step 0"));
        assert!(svg.contains("run &lt;A&gt;"));
        assert!(svg.contains("4 of 9 checkpoints"));
        // 3 + 2 cell rectangles, 8 legend swatches, the background.
        assert_eq!(svg.matches("<rect").count(), 5 + 8 + 1);
        for p in Phase::ALL {
            assert!(svg.contains(p.as_str()), "{p} not in the legend");
        }
    }

    #[test]
    fn an_empty_grid_is_still_a_drawable_figure() {
        let svg = phase_map_svg(&PhaseGrid::default(), "nothing");
        assert!(crate::svg_size(&svg).unwrap().0 >= 560.0);
    }
}
