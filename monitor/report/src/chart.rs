//! The chrome every chart shares: a title and subtitle fitted to the width, and the axes with their grid.

use plotters::prelude::*;

use crate::font::FAMILY;
use crate::render::{self, Area, OrDraw};
use crate::style::Rgb;
use crate::Error;

/// Draws a title (and a coloured subtitle) across the top of `area`; returns the area left under them.
pub(crate) fn draw_header<'a>(
    area: &Area<'a>,
    title: &str,
    subtitle: Option<&str>,
    subtitle_colour: Option<Rgb>,
) -> Result<Area<'a>, Error> {
    let height = if subtitle.is_some() { 36 } else { 22 };
    let (head, body) = area.split_vertically(height);
    let (w, _) = head.dim_in_pixel();
    head.draw_text(
        &fit_text(title, 13.0, w as f64 - 12.0),
        &TextStyle::from((FAMILY, 13.0 * 1.24).into_font()).color(&RGBColor(20, 20, 20)),
        (8, 5),
    )
    .or_draw()?;
    if let Some(s) = subtitle {
        let c = subtitle_colour.map_or(RGBColor(90, 90, 90), |c| c.plotters());
        head.draw_text(
            &fit_end(s, 11.0, w as f64 - 12.0),
            &TextStyle::from((FAMILY, 11.0 * 1.24).into_font()).color(&c),
            (8, 21),
        )
        .or_draw()?;
    }
    Ok(body)
}

/// `text` shortened with a leading ellipsis to fit `width` pixels: the end of a layer name says the most. Control
/// characters and bidirectional overrides (names come from checkpoints) are drawn as visible escapes.
pub(crate) fn fit_text(text: &str, px: f64, width: f64) -> String {
    let text = &*htsr_contracts::text::terminal_safe(text);
    if crate::font::text_width(text, px) <= width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for skip in 1..chars.len() {
        let s: String = std::iter::once('…')
            .chain(chars[skip..].iter().copied())
            .collect();
        if crate::font::text_width(&s, px) <= width {
            return s;
        }
    }
    "…".into()
}

/// `text` shortened with a trailing ellipsis to fit `width` pixels: a subtitle's first words say the most.
pub(crate) fn fit_end(text: &str, px: f64, width: f64) -> String {
    let text = &*htsr_contracts::text::terminal_safe(text);
    if crate::font::text_width(text, px) <= width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (1..chars.len()).rev() {
        let s: String = chars[..keep]
            .iter()
            .copied()
            .chain(std::iter::once('…'))
            .collect();
        if crate::font::text_width(&s, px) <= width {
            return s;
        }
    }
    "…".into()
}

/// Axes, grid and tick labels shared by the charts.
pub(crate) fn configure_mesh<'a, 'b, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> Result<(), Error>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>
        + plotters::coord::ranged1d::ValueFormatter<f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>
        + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let label = |v: &f64| render::axis_number(*v);
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .label_style(
            (FAMILY, 10.0 * 1.24)
                .into_font()
                .color(&RGBColor(60, 60, 60)),
        )
        .axis_desc_style(
            (FAMILY, 11.0 * 1.24)
                .into_font()
                .color(&RGBColor(40, 40, 40)),
        )
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(RGBColor(244, 244, 244))
        .axis_style(RGBColor(120, 120, 120))
        .draw()
        .or_draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_titles_are_cut_from_the_left() {
        let name = "model.layers.23.self_attention.query_key_value";
        let t = fit_text(name, 13.0, 160.0);
        assert!(t.starts_with('…') && t.ends_with("key_value"), "{t}");
        assert!(crate::font::text_width(&t, 13.0) <= 160.0);
        // One more character of the name would not have fitted.
        let kept = t.chars().count() - 1;
        let one_more: String = std::iter::once('…')
            .chain(name.chars().skip(name.chars().count() - kept - 1))
            .collect();
        assert!(crate::font::text_width(&one_more, 13.0) > 160.0);
        let s = fit_end(
            "heavy_tailed (very heavy) · α 1.98, D 0.052 · 32 spikes",
            11.0,
            150.0,
        );
        assert!(s.starts_with("heavy_tailed") && s.ends_with('…'), "{s}");
        assert!(crate::font::text_width(&s, 11.0) <= 150.0);
        assert_eq!(fit_text("fc1", 13.0, 120.0), "fc1");
    }
}
