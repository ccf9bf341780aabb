//! Several charts in one figure: a grid of equal cells, filled row by row.

use plotters::prelude::*;

use crate::chart::fit_end;
use crate::esd::EsdPanel;
use crate::font::FAMILY;
use crate::line::LineChart;
use crate::render::{self, OrDraw};
use crate::Error;

/// One cell of a grid.
#[derive(Debug, Clone, Copy)]
pub enum Panel<'a> {
    /// An ESD panel.
    Esd(&'a EsdPanel),
    /// A line or scatter chart.
    Line(&'a LineChart),
}

impl<'a> From<&'a EsdPanel> for Panel<'a> {
    fn from(p: &'a EsdPanel) -> Self {
        Panel::Esd(p)
    }
}

impl<'a> From<&'a LineChart> for Panel<'a> {
    fn from(c: &'a LineChart) -> Self {
        Panel::Line(c)
    }
}

const TITLE_HEIGHT: u32 = 30;

/// Draws `panels` in a grid of `columns` columns (fewer when there are fewer panels), each cell `cell` = (width,
/// height) pixels, under an optional figure title: one SVG document.
pub fn grid_svg(
    title: Option<&str>,
    panels: &[Panel<'_>],
    columns: usize,
    cell: (u32, u32),
) -> Result<String, Error> {
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let head = if title.is_some() { TITLE_HEIGHT } else { 0 };
    let width = columns as u32 * cell.0;
    let height = rows as u32 * cell.1 + head;
    render::svg(width, height, |root| {
        let (top, body) = root.split_vertically(head);
        if let Some(t) = title {
            // A figure title begins with what it is of (the run): cut at its end when the figure is narrow.
            top.draw_text(
                &fit_end(t, 15.0, width as f64 - 16.0),
                &TextStyle::from((FAMILY, 15.0 * 1.24).into_font()).color(&RGBColor(10, 10, 10)),
                (8, 7),
            )
            .or_draw()?;
        }
        for (i, panel) in panels.iter().enumerate() {
            let (r, c) = ((i / columns) as u32, (i % columns) as u32);
            let area = body
                .clone()
                .shrink((c * cell.0, r * cell.1), (cell.0, cell.1));
            match panel {
                Panel::Esd(p) => p.draw(&area)?,
                Panel::Line(l) => l.draw(&area)?,
            }
        }
        Ok(())
    })
}

/// A grid of ESD panels (see [`grid_svg`]).
pub fn esd_grid_svg(
    title: Option<&str>,
    panels: &[EsdPanel],
    columns: usize,
    cell: (u32, u32),
) -> Result<String, Error> {
    let cells: Vec<Panel<'_>> = panels.iter().map(Panel::from).collect();
    grid_svg(title, &cells, columns, cell)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::Series;

    #[test]
    fn a_grid_holds_every_panel_in_rows() {
        let panels: Vec<EsdPanel> = (0..5)
            .map(|i| {
                let ev: Vec<f64> = (1..200)
                    .map(|k| (k as f64 * 0.01).powi(2) + i as f64)
                    .collect();
                EsdPanel::from_eigenvalues(format!("panel {i}"), ev)
                    .with_power_law(2.5, 1.0 + i as f64)
            })
            .collect();
        let svg = esd_grid_svg(Some("five layers"), &panels, 2, (300, 240)).unwrap();
        assert_eq!(crate::svg_size(&svg).unwrap(), (600.0, 3.0 * 240.0 + 30.0));
        for i in 0..5 {
            assert!(svg.contains(&format!("panel {i}")));
        }
        assert!(svg.contains("five layers"));
        // Mixed kinds, and more columns than panels.
        let line = LineChart::new("a line").series(Series::line("s", vec![(0.0, 1.0), (1.0, 2.0)]));
        let mixed = grid_svg(None, &[(&panels[0]).into(), (&line).into()], 4, (200, 160)).unwrap();
        assert_eq!(crate::svg_size(&mixed).unwrap(), (400.0, 160.0));
    }

    #[test]
    fn a_narrow_figure_keeps_the_start_of_its_title() {
        let chart = LineChart::new("layer.0.attention.self.key")
            .series(Series::line("a", vec![(0.0, 1.0), (1.0, 2.0)]));
        let svg = grid_svg(
            Some("bert-base-uncased-finetune: α over steps (points coloured by phase)"),
            &[Panel::from(&chart)],
            4,
            (220, 160),
        )
        .unwrap();
        assert!(
            svg.contains("bert-base"),
            "the run's name, the title's start, is drawn"
        );
    }
}
