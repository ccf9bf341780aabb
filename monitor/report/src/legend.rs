//! A legend laid out under a chart, in rows, so that it never hides data (plotters only draws legends inside the
//! plot area).

use plotters::prelude::*;

use crate::font::{text_width, FAMILY};
use crate::render::{Area, OrDraw};
use crate::style::Rgb;
use crate::Error;

/// How an entry's key is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Swatch,
    Line,
    Dashed,
    Point,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub label: String,
    pub colour: Rgb,
    pub key: Key,
}

pub(crate) const FONT_PX: f64 = 10.5;
const ROW: i32 = 15;
const KEY_W: i32 = 16;
const GAP: i32 = 12;

fn entry_width(e: &Entry) -> i32 {
    KEY_W + 4 + text_width(&e.label, FONT_PX).ceil() as i32 + GAP
}

/// Rows the entries fill in `width` pixels, each row a list of (entry index, x offset).
fn layout(entries: &[Entry], width: i32) -> Vec<Vec<(usize, i32)>> {
    let mut rows: Vec<Vec<(usize, i32)>> = Vec::new();
    let mut x = 0;
    for (i, e) in entries.iter().enumerate() {
        let w = entry_width(e);
        if rows.is_empty() || (x + w > width && x > 0) {
            rows.push(Vec::new());
            x = 0;
        }
        if let Some(row) = rows.last_mut() {
            row.push((i, x));
        }
        x += w;
    }
    rows
}

/// Pixels of height the legend needs under a chart `width` pixels wide.
pub(crate) fn height(entries: &[Entry], width: u32) -> u32 {
    if entries.is_empty() {
        return 0;
    }
    (layout(entries, width as i32 - 8).len() as i32 * ROW + 4) as u32
}

/// Draws the legend into `area` (as tall as [`height`] says), left-aligned with a small indent.
pub(crate) fn draw(area: &Area<'_>, entries: &[Entry]) -> Result<(), Error> {
    let (width, _) = area.dim_in_pixel();
    let style = TextStyle::from((FAMILY, FONT_PX * 1.24).into_font()).color(&RGBColor(40, 40, 40));
    for (r, row) in layout(entries, width as i32 - 8).iter().enumerate() {
        let y = 2 + r as i32 * ROW + ROW / 2;
        for &(i, x0) in row {
            let e = &entries[i];
            let x = 8 + x0;
            let c = e.colour.plotters();
            match e.key {
                Key::Swatch => area
                    .draw(&Rectangle::new(
                        [(x, y - 5), (x + KEY_W, y + 5)],
                        c.filled(),
                    ))
                    .or_draw()?,
                Key::Line => area
                    .draw(&PathElement::new(
                        vec![(x, y), (x + KEY_W, y)],
                        c.stroke_width(2),
                    ))
                    .or_draw()?,
                Key::Dashed => {
                    for k in 0..3 {
                        let a = x + k * 6;
                        area.draw(&PathElement::new(
                            vec![(a, y), (a + 3, y)],
                            c.stroke_width(2),
                        ))
                        .or_draw()?;
                    }
                }
                Key::Point => area
                    .draw(&Circle::new((x + KEY_W / 2, y), 3, c.filled()))
                    .or_draw()?,
            }
            area.draw_text(
                &htsr_contracts::text::terminal_safe(&e.label),
                &style.pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Center,
                )),
                (x + KEY_W + 4, y),
            )
            .or_draw()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_wrap_into_rows_that_fit() {
        let e = |label: &str| Entry {
            label: label.into(),
            colour: Rgb(0, 0, 0),
            key: Key::Line,
        };
        let entries: Vec<Entry> = (0..8).map(|i| e(&format!("series number {i}"))).collect();
        let wide = height(&entries, 4000);
        let narrow = height(&entries, 300);
        assert_eq!(wide, ROW as u32 + 4);
        assert!(narrow >= 3 * wide - 8, "narrow {narrow} wide {wide}");
        for row in layout(&entries, 292) {
            let (last, x) = *row.last().unwrap();
            assert!(row.len() == 1 || x + entry_width(&entries[last]) <= 292 + GAP);
        }
        assert_eq!(height(&[], 300), 0);
    }
}
