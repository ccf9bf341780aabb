//! The one font every chart uses, compiled into the library.
//!
//! plotters measures text to lay out axes and legends, and resvg needs glyphs to rasterize a PNG: both get DejaVu
//! Sans from these bytes, never from the system, so a chart lays out and renders the same on a machine with no
//! fonts installed (a CI container, a server). Browsers draw the HTML report's SVG text with their own
//! `sans-serif`, which is why layouts leave some slack.

use std::sync::{Arc, Once, OnceLock};

use plotters::style::{FontDesc, FontFamily, FontStyle};
use resvg::usvg::fontdb;

/// DejaVu Sans 2.37 (Bitstream Vera licence, which allows redistribution: see fonts/LICENSE-DejaVu.txt).
pub(crate) const FONT_BYTES: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
/// The family name inside the font file, which fontdb matches on.
const FONT_NAME: &str = "DejaVu Sans";
/// The generic family the SVG text asks for: browsers substitute their own, resvg gets the bundled font.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the bundled font with plotters (its ab_glyph text backend has no fonts until one is registered).
pub(crate) fn ensure_registered() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // A failure would only mean the bytes above are not a font; the unit tests check they are, and text
        // drawing would then fail with plotters' "font unavailable" error rather than here.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES);
    });
}

/// The font database resvg renders with: the bundled font only, under every generic family.
pub(crate) fn database() -> Arc<fontdb::Database> {
    static DB: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = fontdb::Database::new();
        db.load_font_data(FONT_BYTES.to_vec());
        db.set_sans_serif_family(FONT_NAME);
        db.set_serif_family(FONT_NAME);
        db.set_monospace_family(FONT_NAME);
        db.set_cursive_family(FONT_NAME);
        db.set_fantasy_family(FONT_NAME);
        Arc::new(db)
    })
    .clone()
}

/// Whether the bundled font has a glyph for `c` (DejaVu Sans covers Latin, Greek, Cyrillic and many symbols, not
/// CJK or emoji).
pub(crate) fn covers(c: char) -> bool {
    use ab_glyph::Font;
    static FONT: OnceLock<Option<ab_glyph::FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| ab_glyph::FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
        .is_some_and(|f| f.glyph_id(c).0 != 0)
}

/// `text` with every character the bundled font cannot draw written as its code point (`U+65E5`): a PNG is drawn
/// with that font alone, and a name in Japanese or with an emoji would otherwise come out as empty boxes.
pub(crate) fn drawable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().all(|c| c.is_ascii() || covers(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_ascii() || covers(c) {
            out.push(c);
        } else {
            out.push_str(&format!("U+{:04X}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Width in pixels of `text` set at `px` pixels (an SVG `font-size`), from the bundled font's advances.
pub(crate) fn text_width(text: &str, px: f64) -> f64 {
    ensure_registered();
    // plotters writes `font-size = size / 1.24` into SVG, so a plotters size of px * 1.24 is an SVG size of px.
    FontDesc::new(FontFamily::SansSerif, px * 1.24, FontStyle::Normal)
        .box_size(text)
        .map(|(w, _)| w as f64)
        .unwrap_or(0.62 * px * text.chars().count() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_font_cannot_draw_is_written_as_code_points() {
        assert!(covers('é') && covers('α') && covers('λ'));
        assert!(!covers('日') && !covers('🚀'));
        assert_eq!(drawable("fc1.α"), "fc1.α");
        assert_eq!(drawable("couche_é_日本"), "couche_é_U+65E5U+672C");
        assert_eq!(drawable("🚀"), "U+1F680");
    }

    #[test]
    fn the_bundled_font_loads_in_both_text_stacks() {
        let db = database();
        assert_eq!(db.len(), 1, "exactly the bundled face, no system fonts");
        let face = db.faces().next().unwrap();
        assert!(face.families.iter().any(|(n, _)| n == FONT_NAME));
        // Measured from the font's advances: wider text is wider, and an 'm' is wider than an 'i'.
        let (i, m) = (text_width("iiii", 12.0), text_width("mmmm", 12.0));
        assert!(i > 0.0 && m > 2.0 * i, "iiii {i} px, mmmm {m} px");
        assert!((text_width("mmmm", 24.0) / m - 2.0).abs() < 0.1);
    }
}
