//! Screen geometry shared by `state` (which must know how many rows and columns are on screen to load just
//! those) and `view` (which draws into the same rectangles). Pure functions of the terminal size.

use ratatui::layout::{Constraint, Layout, Rect};

/// Header lines: tabs, run line, alerts.
pub const HEADER: u16 = 3;

pub struct Screen {
    pub header: Rect,
    pub body: Rect,
    pub footer: Rect,
}

pub fn screen(area: Rect) -> Screen {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(HEADER),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    Screen {
        header,
        body,
        footer,
    }
}

/// Layers view: the table over a one-line phase legend.
pub fn layers(body: Rect) -> (Rect, Rect) {
    let [table, legend] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(body);
    (table, legend)
}

/// Data rows the Layers table shows (its first line is the column header).
pub fn table_rows(body: Rect) -> usize {
    layers(body).0.height.saturating_sub(1) as usize
}

/// Phase map: label column width for a body this wide.
pub fn map_label_width(width: u16) -> u16 {
    (width / 4).clamp(12, 36)
}

/// Phase map: (labels, cells, axis line, legend line).
pub fn phase_map(body: Rect) -> (Rect, Rect, Rect, Rect) {
    let [grid, axis, legend] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(body);
    let [labels, _gap, cells] = Layout::horizontal([
        Constraint::Length(map_label_width(body.width)),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(grid);
    (labels, cells, axis, legend)
}

/// Phase map: checkpoints (columns) that fit, the `max_columns` asked of the store.
pub fn grid_columns(body: Rect) -> usize {
    (phase_map(body).1.width as usize).max(1)
}

/// Layer detail: (info lines, alpha chart, phase strip, ESD chart).
pub fn detail(body: Rect) -> (Rect, Rect, Rect, Rect) {
    let [info, alpha, strip, esd] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Percentage(45),
        Constraint::Length(1),
        Constraint::Min(5),
    ])
    .areas(body);
    (info, alpha, strip, esd)
}

/// Runs view: (runs table, overlay chart).
pub fn runs(body: Rect, runs: usize) -> (Rect, Rect) {
    let table = (runs as u16 + 1).max(2).min(body.height / 2);
    let [t, chart] = Layout::vertical([Constraint::Length(table), Constraint::Min(0)]).areas(body);
    (t, chart)
}
