//! Colours and glyphs of the phases, one place for every view. Each phase has a glyph as well as a colour, so
//! the map reads without colour (colour-blind users, monochrome terminals, snapshot tests).

use htsr_contracts::palette::{TermColour, ALPHA_NOTE};
use htsr_contracts::Phase;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// The terminal colour of a phase: htsr-contracts' palette, which every view shares.
pub fn phase_color(p: Phase) -> Color {
    term_color(p.style().term)
}

/// The ratatui colour of one of the palette's terminal colours.
pub fn term_color(c: TermColour) -> Color {
    match c {
        TermColour::Red => Color::Red,
        TermColour::Green => Color::Green,
        TermColour::Yellow => Color::Yellow,
        TermColour::Blue => Color::Blue,
        TermColour::Magenta => Color::Magenta,
        TermColour::Cyan => Color::Cyan,
        TermColour::Gray => Color::Gray,
    }
}

/// Denser glyphs for phases further along the way from random to heavy-tailed.
pub fn phase_glyph(p: Phase) -> &'static str {
    p.style().glyph
}

/// Names that fit a narrow column.
pub fn phase_short(p: Phase) -> &'static str {
    p.style().short
}

pub fn phase_style(p: Phase) -> Style {
    Style::new().fg(phase_color(p))
}

/// The legend line: glyph and name of every phase, shortened when the line is narrow.
pub fn legend(width: u16) -> Line<'static> {
    let long = width >= 120;
    let mut spans = Vec::new();
    for p in Phase::ALL {
        let name = if long { p.as_str() } else { phase_short(p) };
        spans.push(Span::styled(
            format!("{} {name}", phase_glyph(p)),
            phase_style(p),
        ));
        spans.push(Span::raw("  "));
    }
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let note = format!("  {ALPHA_NOTE}");
    if used + note.chars().count() <= width as usize {
        spans.push(Span::styled(note, dim()));
    }
    Line::from(spans)
}

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub fn warn() -> Style {
    Style::new().fg(Color::LightRed)
}

/// Alpha coloured by WeightWatcher's ranges.
pub fn alpha_style(alpha: f64) -> Style {
    if alpha < 2.0 {
        Style::new().fg(Color::LightRed)
    } else if alpha > 6.0 {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new()
    }
}

/// Text from checkpoints (names, metadata) as it may be drawn: control characters and bidirectional overrides
/// shown as visible escapes (htsr-contracts' `terminal_safe`).
pub fn safe(s: &str) -> String {
    htsr_contracts::text::terminal_safe(s).into_owned()
}

/// Text made [`safe`] and cut to `width` columns with an ellipsis at the front, since layer names differ at their
/// ends (htsr-contracts' one clipping rule, by display width).
pub fn clip_front(s: &str, width: usize) -> String {
    htsr_contracts::text::clip_front(&htsr_contracts::text::terminal_safe(s), width).into_owned()
}

/// Text made [`safe`] and cut to `width` columns with an ellipsis at the end.
pub fn clip(s: &str, width: usize) -> String {
    htsr_contracts::text::clip_end(&htsr_contracts::text::terminal_safe(s), width).into_owned()
}

/// A number in at most about 6 characters.
pub fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "-".to_string(),
    }
}
