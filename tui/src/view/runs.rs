//! View 4, Runs: every run at a glance, and the selected layer's alpha overlaid across runs (a batch-size sweep
//! read at a glance).

use htsr_contracts::Phase;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Dataset, GraphType, HighlightSpacing, LegendPosition, Paragraph, Row,
    Table, TableState,
};
use ratatui::Frame;

use super::style::{bold, dim, num, phase_glyph, phase_style, selected};
use crate::layout;
use crate::state::App;

const PALETTE: [Color; 8] = [
    Color::Cyan,
    Color::LightRed,
    Color::Green,
    Color::Yellow,
    Color::Magenta,
    Color::Blue,
    Color::White,
    Color::LightGreen,
];

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let (table_area, chart_area) = layout::runs(area, app.runs.len());
    let rows_on_screen = table_area.height.saturating_sub(1) as usize;
    let mut cursor = app.runs_cursor;
    cursor.keep_visible(rows_on_screen, app.runs.len());
    let current = app.run.as_deref();
    let rows: Vec<Row> = app
        .runs
        .iter()
        .skip(cursor.offset)
        .take(rows_on_screen)
        .map(|r| {
            let mark = if Some(r.run.as_str()) == current {
                "● "
            } else {
                "  "
            };
            let mut cells = vec![
                Cell::from(format!("{mark}{}", super::style::safe(&r.run))),
                Cell::from(Line::from(r.last_step.to_string()).right_aligned()),
                Cell::from(Line::from(r.checkpoints.to_string()).right_aligned()),
                Cell::from(Line::from(r.layers.to_string()).right_aligned()),
                Cell::from(Line::from(num(r.mean_alpha, 2)).right_aligned()),
            ];
            for p in Phase::ALL {
                let n = r.phase_counts[p.index()];
                let st = if n == 0 { dim() } else { phase_style(p) };
                cells.push(Cell::from(Line::from(n.to_string()).right_aligned()).style(st));
            }
            Row::new(cells)
        })
        .collect();
    let mut header = vec![
        Cell::from("run"),
        Cell::from(Line::from("last step").right_aligned()),
        Cell::from(Line::from("ckpts").right_aligned()),
        Cell::from(Line::from("layers").right_aligned()),
        Cell::from(Line::from("mean α").right_aligned()),
    ];
    for p in Phase::ALL {
        header.push(Cell::from(Line::from(phase_glyph(p)).right_aligned()).style(phase_style(p)));
    }
    let mut widths = vec![
        Constraint::Min(12),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    widths.extend([Constraint::Length(4); Phase::COUNT]);
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(bold()))
        .row_highlight_style(selected())
        .highlight_symbol("› ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state =
        TableState::new().with_selected(Some(cursor.selected.saturating_sub(cursor.offset)));
    frame.render_stateful_widget(table, table_area, &mut state);
    draw_overlay(frame, chart_area, app);
}

fn draw_overlay(frame: &mut Frame, area: Rect, app: &App) {
    let Some(o) = &app.overlay else {
        frame.render_widget(
            Paragraph::new("select a layer to compare it across runs").style(dim()),
            area,
        );
        return;
    };
    let all = o.series.iter().flat_map(|(_, s)| s.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !x0.is_finite() {
        let msg = format!("no run has alpha for {}", super::style::safe(&o.layer));
        frame.render_widget(Paragraph::new(msg).style(dim()), area);
        return;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(0.05);
    let yb = [y0 - pad, y1 + pad];
    let sets: Vec<Dataset> = o
        .series
        .iter()
        .enumerate()
        .map(|(i, (run, pts))| {
            Dataset::default()
                .name(run.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(PALETTE[i % PALETTE.len()]))
                .data(pts)
        })
        .collect();
    let ylabels: Vec<Line> = [yb[0], (yb[0] + yb[1]) / 2.0, yb[1]]
        .iter()
        .map(|v| Line::from(format!("{v:>5.2}")))
        .collect();
    let title = Line::from(vec![Span::styled(
        format!(" alpha of {} across runs ", super::style::safe(&o.layer)),
        bold(),
    )]);
    let chart = Chart::new(sets)
        .block(Block::default().title(title))
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(50), Constraint::Percentage(60)))
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels([
                    Line::from(format!("{}", x0 as u64)),
                    Line::from(format!("{}", x1 as u64)).right_aligned(),
                ])
                .style(dim()),
        )
        .y_axis(Axis::default().bounds(yb).labels(ylabels).style(dim()));
    frame.render_widget(chart, area);
}
