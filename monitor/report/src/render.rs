//! From drawing code to an SVG string, and from an SVG string to a PNG: the two outputs every chart has.

use plotters::coord::Shift;
use plotters::prelude::*;
use resvg::{tiny_skia, usvg};

use crate::font;
use crate::Error;

/// The drawing area every chart draws on.
pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Turns any plotters error (they all print) into ours.
pub(crate) trait OrDraw<T> {
    fn or_draw(self) -> Result<T, Error>;
}

impl<T, E: std::fmt::Display> OrDraw<T> for Result<T, E> {
    fn or_draw(self) -> Result<T, Error> {
        self.map_err(|e| Error::Draw(e.to_string()))
    }
}

/// Runs `draw` on a white `width` x `height` SVG canvas and returns the document.
pub(crate) fn svg<F>(width: u32, height: u32, draw: F) -> Result<String, Error>
where
    F: FnOnce(&Area<'_>) -> Result<(), Error>,
{
    font::ensure_registered();
    let mut out = String::new();
    {
        let root =
            SVGBackend::with_string(&mut out, (width.max(1), height.max(1))).into_drawing_area();
        root.fill(&WHITE).or_draw()?;
        draw(&root)?;
        root.present().or_draw()?;
    }
    Ok(out)
}

fn parse(svg: &str) -> Result<usvg::Tree, Error> {
    let options = usvg::Options {
        fontdb: font::database(),
        ..usvg::Options::default()
    };
    usvg::Tree::from_str(svg, &options).map_err(|e| Error::Svg(e.to_string()))
}

/// Parses `svg` the way [`svg_to_png`] does and returns its size in pixels (width, height): a check that a
/// document is well-formed SVG that renders, for tests and for callers that write SVG of their own.
pub fn svg_size(svg: &str) -> Result<(f32, f32), Error> {
    let tree = parse(svg)?;
    Ok((tree.size().width(), tree.size().height()))
}

/// Rasterizes `svg` to PNG bytes at `scale` device pixels per SVG pixel (2 gives a sharp figure for print), on
/// white, with the bundled font: no system font is read, so the image is the same on every machine. Characters
/// that font has no glyph for (CJK, emoji) are drawn as their code points (`U+65E5`); the SVG itself keeps them,
/// for browsers, which draw them with their own fonts.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>, Error> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::Usage(format!(
            "PNG scale must be positive, not {scale}"
        )));
    }
    // The PNG has the bundled font only: what it cannot draw is written as code points, never as empty boxes.
    let tree = parse(&font::drawable(svg))?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .ok_or_else(|| Error::Svg(format!("cannot scale the image by {scale}")))?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| {
        Error::Svg(format!(
            "cannot allocate a {}x{} image",
            size.width(),
            size.height()
        ))
    })?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| Error::Svg(e.to_string()))
}

/// Escapes text for XML/HTML content and attribute values. Names come from checkpoints, which anyone may have
/// written: control characters (which XML cannot carry at all) and bidirectional overrides are shown as visible
/// escapes first, as on a terminal (htsr-contracts' `terminal_safe`).
pub fn escape(text: &str) -> String {
    let text = htsr_contracts::text::terminal_safe(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A compact label for a positive number on a log axis or in a legend: 0.01, 0.5, 12, 3e-05, 1.2e+04.
pub(crate) fn short_number(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-2..1e4).contains(&a) {
        let s = format!("{v:.1e}");
        // "1.0e-5" reads better as "1e-5".
        s.replace(".0e", "e")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A step number for an axis: 1200, 45k, 1.5M.
pub(crate) fn step_label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", short_number(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", short_number(v / 1e3))
    } else {
        format!("{v:.0}")
    }
}

/// A tick label: k/M suffixes for large values (steps), else [`short_number`].
pub(crate) fn axis_number(v: f64) -> String {
    if v.abs() >= 1e4 && v.abs() < 1e9 {
        step_label(v)
    } else {
        short_number(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(12.0), "12");
        assert_eq!(short_number(0.001), "1e-3");
        assert_eq!(short_number(12345.0), "1.2e4");
        assert_eq!(short_number(250.0), "250");
        assert_eq!(step_label(45_000.0), "45k");
        assert_eq!(step_label(1_500_000.0), "1.5M");
        assert_eq!(step_label(900.0), "900");
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(escape("x\x1b[2J\u{202e}<"), "x\\x1b[2J\\u{202e}&lt;");
    }

    #[test]
    fn text_is_rasterized_with_the_bundled_font() {
        let with_text = r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><text x="5" y="30" font-family="sans-serif" font-size="24">Alpha</text></svg>"#;
        let png = svg_to_png(with_text, 1.0).unwrap();
        let dark = dark_pixels(&png);
        // Five glyphs at 24 px cover far more than a few dozen pixels; without a font resvg draws nothing.
        assert!(dark > 100, "{dark} dark pixels");
        assert_eq!(svg_size(with_text).unwrap(), (120.0, 40.0));
        assert!(svg_size("<svg><unclosed></svg>").is_err());
    }

    fn dark_pixels(png_bytes: &[u8]) -> usize {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let px = info.color_type.samples();
        buf[..info.buffer_size()]
            .chunks(px)
            .filter(|p| p[0] < 128 && p[1] < 128 && p[2] < 128)
            .count()
    }
}
