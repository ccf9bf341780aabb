//! View 2, Phase map: layers by checkpoints, each cell the layer's phase: the live phase trajectories.
//!
//! The grid was read from the store downsampled to the columns on screen (always including the newest), so a
//! run of any length fits the width and the newest checkpoint is always the rightmost column.

use std::collections::HashMap;

use htsr_contracts::Phase;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::style::{self, dim, phase_glyph, phase_style, selected};
use crate::layout;
use crate::state::App;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let (labels, cells, axis, legend) = layout::phase_map(area);
    frame.render_widget(Paragraph::new(style::legend(area.width)), legend);
    let grid = &app.grid;
    let Some(model) = &app.model else { return };
    let row_of: HashMap<&str, usize> = grid
        .layers
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    // A short run gets wider cells (up to 4 characters per checkpoint) so that it reads at a glance.
    let scale = (cells.width as usize / grid.steps.len().max(1)).clamp(1, 4);
    let off = app.layers_cursor.offset;
    let n = labels.height as usize;
    let mut label_lines = Vec::with_capacity(n);
    let mut cell_lines = Vec::with_capacity(n);
    for (k, &i) in app.filtered.iter().enumerate().skip(off).take(n) {
        let name = &model.rows[i].name;
        let st = if k == app.layers_cursor.selected {
            selected()
        } else {
            Style::new()
        };
        label_lines.push(Line::styled(
            style::clip_front(name, labels.width as usize),
            st,
        ));
        let row = row_of
            .get(name.as_str())
            .map(|&r| grid.cells[r].as_slice())
            .unwrap_or(&[]);
        if row.iter().all(Option::is_none) {
            // Never had a phase: say why instead of leaving the row blank.
            let r = &model.rows[i];
            cell_lines.push(Line::styled(
                style::clip(&r.warning_text(), cells.width as usize),
                dim(),
            ));
        } else {
            cell_lines.push(cells_line(row, cells.width as usize, scale));
        }
    }
    frame.render_widget(Paragraph::new(label_lines), labels);
    frame.render_widget(Paragraph::new(cell_lines), cells);
    frame.render_widget(
        Paragraph::new(axis_line(
            app,
            labels.width as usize + 1,
            cells.width as usize,
            scale,
        )),
        axis,
    );
}

/// One layer's phases as coloured glyphs, consecutive equal cells merged into one span.
fn cells_line(row: &[Option<Phase>], width: usize, scale: usize) -> Line<'static> {
    let mut spans = Vec::new();
    let mut i = 0;
    let row = &row[..row.len().min(width / scale)];
    while i < row.len() {
        let p = row[i];
        let mut j = i;
        while j < row.len() && row[j] == p {
            j += 1;
        }
        let (glyph, st) = match p {
            Some(p) => (phase_glyph(p), phase_style(p)),
            None => (" ", Style::new()),
        };
        spans.push(Span::styled(glyph.repeat((j - i) * scale), st));
        i = j;
    }
    Line::from(spans)
}

/// First and last step under the grid, and how many checkpoints one column stands for.
fn axis_line(app: &App, indent: usize, width: usize, scale: usize) -> Line<'static> {
    let g = &app.grid;
    let (Some(first), Some(last)) = (g.steps.first(), g.steps.last()) else {
        return Line::default();
    };
    let left = format!("step {first}");
    let right = format!("{last}");
    let mid = if g.total_checkpoints > g.steps.len() {
        format!("{} of {} checkpoints", g.steps.len(), g.total_checkpoints)
    } else {
        format!("{} checkpoints", g.total_checkpoints)
    };
    let span = (g.steps.len() * scale).min(width);
    let gap = span.saturating_sub(left.len() + right.len());
    let middle = if gap >= mid.len() + 2 {
        let pad = gap - mid.len();
        format!("{}{mid}{}", " ".repeat(pad / 2), " ".repeat(pad - pad / 2))
    } else {
        " ".repeat(gap.max(1))
    };
    Line::from(vec![
        Span::raw(" ".repeat(indent)),
        Span::styled(format!("{left}{middle}{right}"), dim()),
    ])
}
