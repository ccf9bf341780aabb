//! The help screen: every key, over whatever view is showing.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::style::{bold, dim};

pub const KEYS: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move the selection (mouse wheel too)"),
    ("PgUp PgDn g G", "page, first, last"),
    ("← →  h l", "previous / next checkpoint (layer detail)"),
    ("tab  shift-tab", "next / previous view (1-4 jump)"),
    ("enter", "drill in: layer detail; switch run (runs)"),
    ("esc", "back; clear the filter"),
    ("/", "filter layers by name (enter keeps, esc clears)"),
    ("s", "smoothing on/off (TensorBoard debiased EMA, 0.6)"),
    ("p", "pause / resume following new checkpoints"),
    ("r", "runs: every run, one layer's alpha across runs"),
    ("?", "this help (any key closes it)"),
    ("q  ctrl-c", "quit"),
];

pub fn draw(frame: &mut Frame, area: Rect) {
    let height = (KEYS.len() as u16 + 4).min(area.height);
    let width = 70.min(area.width);
    let [row] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(row);
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>15}  "), bold()),
                Span::raw(*what),
            ])
        })
        .collect();
    // The phases' glyphs and names, from the palette every view shares, on two lines.
    let phases: Vec<String> = htsr_contracts::Phase::ALL
        .iter()
        .map(|p| format!("{} {}", p.style().glyph, p.as_str()))
        .collect();
    lines.push(Line::styled(
        format!("phases: {}", phases[..4].join(" ")),
        dim(),
    ));
    lines.push(Line::styled(
        format!("        {}", phases[4..].join(" ")),
        dim(),
    ));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        rect,
    );
}
