//! Colours and glyphs of the phases, one place for every view. Each phase has a glyph as well as a colour, so
//! the map reads without colour (colour-blind users, monochrome terminals, snapshot tests).

use htsr_contracts::Phase;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

pub fn phase_color(p: Phase) -> Color {
    match p {
        Phase::RandomLike => Color::Gray,
        Phase::BleedingOut => Color::Blue,
        Phase::BulkPlusSpikes => Color::Cyan,
        Phase::BulkDecay => Color::Yellow,
        Phase::HeavyTailed => Color::Green,
        Phase::RankCollapse => Color::Red,
        Phase::Insufficient => Color::Magenta,
    }
}

/// Denser glyphs for phases further along the way from random to heavy-tailed.
pub fn phase_glyph(p: Phase) -> &'static str {
    match p {
        Phase::RandomLike => "·",
        Phase::BleedingOut => "░",
        Phase::BulkPlusSpikes => "▒",
        Phase::BulkDecay => "▓",
        Phase::HeavyTailed => "█",
        Phase::RankCollapse => "×",
        Phase::Insufficient => "?",
    }
}

/// Names that fit a narrow column.
pub fn phase_short(p: Phase) -> &'static str {
    match p {
        Phase::RandomLike => "random",
        Phase::BleedingOut => "bleeding",
        Phase::BulkPlusSpikes => "spikes",
        Phase::BulkDecay => "decay",
        Phase::HeavyTailed => "heavy",
        Phase::RankCollapse => "collapse",
        Phase::Insufficient => "insuff",
    }
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
    let note = "  alpha < 2 over-trained, > 6 under-trained";
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

/// Text cut to `width` characters with an ellipsis at the front, since layer names differ at their ends.
pub fn clip_front(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let tail: String = s.chars().skip(n - (width - 1)).collect();
    format!("…{tail}")
}

/// Text cut to `width` characters with an ellipsis at the end.
pub fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let head: String = s.chars().take(width - 1).collect();
    format!("{head}…")
}

/// A number in at most about 6 characters.
pub fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "-".to_string(),
    }
}
