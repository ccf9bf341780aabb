//! The header (tabs, run line, alerts) and the footer (keys, filter, last message) around every view.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::style::{bold, clip, dim, selected, warn};
use crate::options::Mode;
use crate::state::alerts::Level;
use crate::state::{App, View};

pub fn header(frame: &mut Frame, area: Rect, app: &App) {
    let mut tabs = vec![Span::styled("htsr ", bold().fg(Color::Green))];
    for (i, v) in View::TABS.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, v.title());
        tabs.push(if *v == app.view {
            Span::styled(label, selected())
        } else {
            Span::raw(label)
        });
    }
    let used: usize = tabs.iter().map(|s| s.width()).sum();
    let room = (area.width as usize).saturating_sub(used + 9);
    tabs.push(Span::styled(format!(" {}", clip(&app.title, room)), dim()));
    tabs.push(Span::styled("  ? help", dim()));
    let lines = vec![
        Line::from(tabs),
        run_line(app),
        alert_line(app, area.width as usize),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

fn run_line(app: &App) -> Line<'static> {
    let mut s: Vec<Span> = Vec::new();
    match &app.model {
        Some(m) => {
            s.push(Span::raw("run "));
            s.push(Span::styled(super::style::safe(&m.run), bold()));
            s.push(Span::raw(format!(
                " · step {} · {} checkpoints · {} layers",
                m.latest_step,
                m.checkpoints,
                m.rows.len()
            )));
        }
        None => s.push(Span::raw("no run yet")),
    }
    let state = match (app.mode, app.paused, app.daemon_gone) {
        (Mode::Browse, _, _) => Span::styled(" · browse (no daemon)", dim()),
        (_, true, _) => Span::styled(
            format!(" · PAUSED ({} new)", app.unseen),
            Style::new().fg(Color::Yellow),
        ),
        (Mode::Attached, _, true) => Span::styled(" · daemon stopped, reconnecting", warn()),
        (_, _, true) => Span::styled(" · daemon stopped", warn()),
        (Mode::Attached, _, _) => Span::styled(" · live (attached)", Style::new().fg(Color::Green)),
        _ => Span::styled(" · live", Style::new().fg(Color::Green)),
    };
    s.push(state);
    if app.mode != Mode::Browse && !app.daemon_gone {
        let st = &app.status;
        let mut q = format!(" · queue {} · busy {}", st.queued, st.in_flight);
        if let Some((run, step)) = &app.analyzing {
            q.push_str(&format!(" ({run}@{step})"));
        }
        q.push_str(&format!(" · done {}", st.done));
        if st.failed > 0 {
            q.push_str(&format!(" · failed {}", st.failed));
        }
        s.push(Span::raw(q));
    }
    Line::from(s)
}

/// As many alerts as fit, then "+N more".
fn alert_line(app: &App, width: usize) -> Line<'static> {
    if app.model.is_none() {
        return Line::default();
    }
    if app.alerts.is_empty() {
        return Line::styled("✓ no alerts", Style::new().fg(Color::Green));
    }
    let mut spans = Vec::new();
    let mut used = 0;
    for (i, a) in app.alerts.iter().enumerate() {
        let sep = if i == 0 { "⚠ " } else { " · " };
        let more = format!(" · +{} more", app.alerts.len() - i);
        let need = sep.chars().count() + a.text.chars().count();
        if i > 0 && used + need + more.len() > width {
            spans.push(Span::styled(more, dim()));
            break;
        }
        spans.push(Span::raw(sep));
        let style = if a.level == Level::Warn {
            warn()
        } else {
            Style::new().fg(Color::Yellow)
        };
        spans.push(Span::styled(a.text.clone(), style));
        used += need;
    }
    Line::from(spans)
}

pub fn footer(frame: &mut Frame, area: Rect, app: &App) {
    let line = if app.filter_editing {
        Line::from(vec![
            Span::styled("/ filter: ", bold()),
            Span::raw(app.filter.clone()),
            Span::styled("█", dim()),
            Span::styled("   enter keep · esc clear", dim()),
        ])
    } else {
        let mut s = Vec::new();
        if !app.filter.is_empty() {
            s.push(Span::styled(
                format!("filter '{}' · ", app.filter),
                Style::new().fg(Color::Yellow),
            ));
        }
        let hints = match app.view {
            View::Detail => "? help · q quit · ←→ checkpoint · ↑↓ layer · s smoothing · esc back",
            View::Runs => "? help · q quit · ↑↓ run · enter switch run · esc back",
            _ => "? help · q quit · ↑↓ select · enter detail · tab view · / filter · p pause · r runs",
        };
        match app.messages.back().filter(|_| app.message_unread) {
            Some(m) => s.push(Span::styled(
                clip(m, area.width as usize),
                Style::new().fg(Color::Yellow),
            )),
            None => s.push(Span::styled(hints, dim())),
        }
        Line::from(s)
    };
    frame.render_widget(Paragraph::new(line), area);
}
