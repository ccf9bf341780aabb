//! View 1, Layers: one row per layer of the selected run's newest checkpoint, then the phase legend.
//!
//! Only the rows on screen are built, so a frame costs the same for 50 layers or 5000.

use htsr_contracts::{LayerStatus, Warning};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::sparkline::sparkline;
use super::style::{
    self, alpha_style, bold, dim, num, phase_glyph, phase_short, phase_style, selected,
};
use crate::layout;
use crate::state::{App, LayerRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Name,
    Shape,
    Alpha,
    Trend,
    Delta,
    Phase,
    D,
    Spikes,
    Softrank,
    Warning,
}

/// Narrowest the name column gets before other columns are dropped.
const NAME_MIN: u16 = 20;

/// The columns that fit `width`, in display order with their widths. Lower-priority columns go first when
/// the terminal is narrow; the name column takes what is left.
fn columns(width: u16, longest_name: u16) -> Vec<(Col, u16)> {
    let phase_w = if width >= 110 { 18 } else { 10 };
    let trend_w = if width >= 120 { 16 } else { 10 };
    let by_priority = [
        (Col::Alpha, 5),
        (Col::Phase, phase_w),
        (Col::Delta, 6),
        (Col::Trend, trend_w),
        (Col::Warning, 14),
        (Col::D, 5),
        (Col::Spikes, 6),
        (Col::Shape, 11),
        (Col::Softrank, 8),
    ];
    let budget = width.saturating_sub(2);
    let mut used = NAME_MIN;
    let mut chosen = vec![(Col::Name, NAME_MIN)];
    for (c, w) in by_priority {
        if used + 1 + w <= budget {
            used += 1 + w;
            chosen.push((c, w));
        }
    }
    // Spare width goes to the name up to the longest name, then to the warning column (reasons are long).
    let spare = budget.saturating_sub(used);
    let to_name = spare.min(longest_name.saturating_sub(NAME_MIN));
    chosen[0].1 += to_name;
    if let Some(w) = chosen.iter_mut().find(|(c, _)| *c == Col::Warning) {
        w.1 += spare - to_name;
    }
    let order = [
        Col::Name,
        Col::Shape,
        Col::Alpha,
        Col::Trend,
        Col::Delta,
        Col::Phase,
        Col::D,
        Col::Spikes,
        Col::Softrank,
        Col::Warning,
    ];
    order
        .iter()
        .filter_map(|o| chosen.iter().find(|(c, _)| c == o).copied())
        .collect()
}

fn title(c: Col, app: &App) -> String {
    match c {
        Col::Name => format!(
            "layer ({}/{})",
            app.filtered.len(),
            app.model.as_ref().map_or(0, |m| m.rows.len())
        ),
        Col::Shape => "shape".into(),
        Col::Alpha => "alpha".into(),
        Col::Trend => "history".into(),
        Col::Delta => "Δ".into(),
        Col::Phase => "phase".into(),
        Col::D => "D".into(),
        Col::Spikes => "spikes".into(),
        Col::Softrank => "softrank".into(),
        Col::Warning => "warning".into(),
    }
}

fn cell<'a>(c: Col, w: u16, r: &'a LayerRow, app: &App) -> Cell<'a> {
    match c {
        Col::Name => Cell::from(style::clip_front(&r.name, w as usize)),
        Col::Shape => Cell::from(r.shape.clone()),
        Col::Alpha => match r.alpha {
            Some(a) => {
                Cell::from(Line::from(format!("{a:.2}")).right_aligned()).style(alpha_style(a))
            }
            None => Cell::from(Line::from("-").right_aligned()).style(dim()),
        },
        Col::Trend => {
            let s = app
                .histories
                .get(&r.name)
                .map(|h| sparkline(&h.values(), w as usize))
                .unwrap_or_default();
            Cell::from(s).style(Style::new().fg(Color::Cyan))
        }
        Col::Delta => match (r.delta(), r.alpha) {
            (Some(d), _) => {
                let st = if d.abs() >= 0.5 {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new()
                };
                Cell::from(Line::from(format!("{d:+.2}")).right_aligned()).style(st)
            }
            (None, Some(_)) if r.prev_alpha.is_none() => {
                Cell::from(Line::from("new").right_aligned()).style(dim())
            }
            _ => Cell::from(""),
        },
        Col::Phase => match r.phase {
            Some(p) => {
                let name = if w >= 18 { p.as_str() } else { phase_short(p) };
                // A phase that changed at this checkpoint is bold, so transitions stand out as they happen.
                let st = if r.prev_phase.is_some_and(|q| q != p) {
                    phase_style(p).patch(bold())
                } else {
                    phase_style(p)
                };
                Cell::from(format!("{} {name}", phase_glyph(p))).style(st)
            }
            None => Cell::from("-").style(dim()),
        },
        Col::D => Cell::from(Line::from(num(r.d, 3)).right_aligned()),
        Col::Spikes => {
            Cell::from(Line::from(r.spikes.map_or("-".into(), |s| s.to_string())).right_aligned())
        }
        Col::Softrank => Cell::from(Line::from(num(r.softrank, 3)).right_aligned()),
        Col::Warning => {
            let st = match (r.status, r.warning) {
                (LayerStatus::Failed, _) => style::warn(),
                (LayerStatus::Skipped, _) => dim(),
                (_, Warning::OverTrained) => style::warn(),
                (_, Warning::UnderTrained) => Style::new().fg(Color::Yellow),
                _ => Style::new(),
            };
            Cell::from(style::clip(&r.warning_text(), w as usize)).style(st)
        }
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let (table_area, legend) = layout::layers(area);
    frame.render_widget(Paragraph::new(style::legend(area.width)), legend);
    if app.model.as_ref().is_none_or(|m| m.rows.is_empty()) {
        frame.render_widget(
            Paragraph::new("no layers in this run's newest checkpoint").style(dim()),
            table_area,
        );
        return;
    }
    if app.filtered.is_empty() {
        frame.render_widget(
            Paragraph::new(format!("no layer matches '{}'", style::safe(&app.filter))).style(dim()),
            table_area,
        );
        return;
    }
    let longest = app
        .visible_rows()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    let cols = columns(area.width, longest.min(u16::MAX as usize) as u16);
    let n = layout::table_rows(area);
    let off = app.layers_cursor.offset;
    let rows: Vec<Row> = app
        .visible_rows()
        .skip(off)
        .take(n)
        .map(|r| {
            Row::new(
                cols.iter()
                    .map(|&(c, w)| cell(c, w, r, app))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let widths: Vec<Constraint> = cols.iter().map(|&(_, w)| Constraint::Length(w)).collect();
    let header = Row::new(
        cols.iter()
            .map(|&(c, _)| Cell::from(title(c, app)))
            .collect::<Vec<_>>(),
    )
    .style(bold().fg(Color::White));
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(selected())
        .highlight_symbol(Span::raw("› "))
        .highlight_spacing(HighlightSpacing::Always);
    let mut state =
        TableState::new().with_selected(Some(app.layers_cursor.selected.saturating_sub(off)));
    frame.render_stateful_widget(table, table_area, &mut state);
}
