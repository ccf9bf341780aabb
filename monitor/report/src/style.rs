//! Colours: one per phase (the terminal's hues, toned for print on white) and a palette for series.

use htsr_contracts::Phase;
use plotters::style::RGBColor;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rrggbb`, for SVG and CSS.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    pub(crate) fn plotters(self) -> RGBColor {
        RGBColor(self.0, self.1, self.2)
    }
}

/// The colour of a phase: htsr-contracts' palette, which the dashboard and the command line use too.
pub fn phase_colour(phase: Phase) -> Rgb {
    let (r, g, b) = phase.style().rgb;
    Rgb(r, g, b)
}

/// Cells whose layer has no phase at that checkpoint (skipped, failed, or absent from the checkpoint).
pub const NO_PHASE: Rgb = Rgb(
    htsr_contracts::palette::NO_PHASE_RGB.0,
    htsr_contracts::palette::NO_PHASE_RGB.1,
    htsr_contracts::palette::NO_PHASE_RGB.2,
);

/// Series colours, in order (Okabe-Ito's colour-blind-safe set without its yellow, which vanishes on white,
/// then four more that stay apart from it).
pub const PALETTE: [Rgb; 10] = [
    Rgb(0x00, 0x72, 0xb2),
    Rgb(0xd5, 0x5e, 0x00),
    Rgb(0x00, 0x9e, 0x73),
    Rgb(0xcc, 0x79, 0xa7),
    Rgb(0xe6, 0x9f, 0x00),
    Rgb(0x56, 0xb4, 0xe9),
    Rgb(0x33, 0x33, 0x33),
    Rgb(0x8c, 0x56, 0x4b),
    Rgb(0x7f, 0x7f, 0x7f),
    Rgb(0xbc, 0xbd, 0x22),
];

/// The `i`-th series colour, cycling.
pub fn palette(i: usize) -> Rgb {
    PALETTE[i % PALETTE.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_has_its_own_colour() {
        let mut seen: Vec<Rgb> = Phase::ALL.iter().map(|p| phase_colour(*p)).collect();
        seen.push(NO_PHASE);
        let n = seen.len();
        seen.sort_by_key(|c| (c.0, c.1, c.2));
        seen.dedup();
        assert_eq!(seen.len(), n);
        assert_eq!(phase_colour(Phase::HeavyTailed).hex(), "#2ca02c");
    }
}
