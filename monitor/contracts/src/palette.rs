//! How each phase looks, in every view: one colour per phase (as a terminal colour and as sRGB for charts), a glyph
//! for monochrome screens, a short name for narrow columns. The dashboard, the command line's table and the report
//! all read it here, so a user who reads one after the other sees the same signal: heavy-tailed, where learning
//! ends up, is green everywhere; rank collapse, the failure, is red.

use crate::model::Phase;

/// A colour of the terminal's basic palette (every terminal has these; the user's theme decides the exact shade).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TermColour {
    /// ANSI red (31).
    Red,
    /// ANSI green (32).
    Green,
    /// ANSI yellow (33).
    Yellow,
    /// ANSI blue (34).
    Blue,
    /// ANSI magenta (35).
    Magenta,
    /// ANSI cyan (36).
    Cyan,
    /// The default foreground's dim neighbour (ANSI white, 37): for what is not a signal yet.
    Gray,
}

impl TermColour {
    /// The escape sequence that selects it as the foreground colour (reset with [`RESET`]).
    pub fn sgr(self) -> &'static str {
        match self {
            TermColour::Red => "\x1b[31m",
            TermColour::Green => "\x1b[32m",
            TermColour::Yellow => "\x1b[33m",
            TermColour::Blue => "\x1b[34m",
            TermColour::Magenta => "\x1b[35m",
            TermColour::Cyan => "\x1b[36m",
            TermColour::Gray => "\x1b[37m",
        }
    }

    /// Its name, for legends and tests.
    pub fn name(self) -> &'static str {
        match self {
            TermColour::Red => "red",
            TermColour::Green => "green",
            TermColour::Yellow => "yellow",
            TermColour::Blue => "blue",
            TermColour::Magenta => "magenta",
            TermColour::Cyan => "cyan",
            TermColour::Gray => "gray",
        }
    }
}

/// Resets the terminal's colours after [`TermColour::sgr`].
pub const RESET: &str = "\x1b[0m";

/// How one phase is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseStyle {
    /// Its colour on a terminal.
    pub term: TermColour,
    /// The same hue as sRGB, toned to read on white paper and on a screen.
    pub rgb: (u8, u8, u8),
    /// A glyph, denser for phases further from random, so the phase map reads without colour.
    pub glyph: &'static str,
    /// A name that fits a narrow column.
    pub short: &'static str,
}

impl Phase {
    /// How this phase is drawn in every view.
    pub fn style(self) -> PhaseStyle {
        let (term, rgb, glyph, short) = match self {
            Phase::RandomLike => (TermColour::Gray, (0x8c, 0x8c, 0x8c), "·", "random"),
            Phase::BleedingOut => (TermColour::Blue, (0x1f, 0x77, 0xb4), "░", "bleeding"),
            Phase::BulkPlusSpikes => (TermColour::Cyan, (0x17, 0xa8, 0xb8), "▒", "spikes"),
            Phase::BulkDecay => (TermColour::Yellow, (0xd4, 0xa0, 0x00), "▓", "decay"),
            Phase::HeavyTailed => (TermColour::Green, (0x2c, 0xa0, 0x2c), "█", "heavy"),
            Phase::RankCollapse => (TermColour::Red, (0xd6, 0x27, 0x28), "×", "collapse"),
            Phase::Insufficient => (TermColour::Magenta, (0xc5, 0x1b, 0x8a), "?", "insuff"),
        };
        PhaseStyle {
            term,
            rgb,
            glyph,
            short,
        }
    }
}

/// The legend's note on alpha, beside the phases: WeightWatcher's reading of the exponent.
pub const ALPHA_NOTE: &str = "alpha < 2 over-trained, > 6 under-trained";

/// sRGB of a cell whose layer has no phase (skipped, failed, or absent from the checkpoint).
pub const NO_PHASE_RGB: (u8, u8, u8) = (0xee, 0xee, 0xee);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_has_its_own_colour_glyph_and_name() {
        let styles: Vec<PhaseStyle> = Phase::ALL.iter().map(|p| p.style()).collect();
        for (i, a) in styles.iter().enumerate() {
            for b in &styles[i + 1..] {
                assert_ne!(a.term, b.term);
                assert_ne!(a.rgb, b.rgb);
                assert_ne!(a.glyph, b.glyph);
                assert_ne!(a.short, b.short);
            }
            assert_ne!(a.rgb, NO_PHASE_RGB);
        }
        assert_eq!(Phase::HeavyTailed.style().term, TermColour::Green);
        assert_eq!(Phase::RankCollapse.style().term, TermColour::Red);
    }
}
