//! A sparkline as text, so that it sits in a table cell (ratatui's Sparkline widget needs an area of its own).

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// `values` (oldest first, NaN for gaps) averaged into at most `width` cells and scaled to their own range.
pub fn sparkline(values: &[f64], width: usize) -> String {
    if width == 0 || values.is_empty() {
        return String::new();
    }
    let cells: Vec<f64> = if values.len() <= width {
        values.to_vec()
    } else {
        (0..width)
            .map(|c| {
                let (a, b) = (
                    c * values.len() / width,
                    ((c + 1) * values.len() / width).max(c * values.len() / width + 1),
                );
                let fin: Vec<f64> = values[a..b]
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .collect();
                if fin.is_empty() {
                    f64::NAN
                } else {
                    fin.iter().sum::<f64>() / fin.len() as f64
                }
            })
            .collect()
    };
    let fin = cells.iter().copied().filter(|v| v.is_finite());
    let lo = fin.clone().fold(f64::INFINITY, f64::min);
    let hi = fin.fold(f64::NEG_INFINITY, f64::max);
    cells
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                ' '
            } else if hi - lo < 1e-12 {
                BARS[3]
            } else {
                BARS[(((v - lo) / (hi - lo)) * 7.0).round() as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn scales_to_the_series_range_and_keeps_gaps() {
        assert_eq!(sparkline(&[1.0, 2.0, f64::NAN, 8.0], 10), "▁▂ █");
        assert_eq!(sparkline(&[5.0, 5.0], 4), "▄▄");
        assert_eq!(
            sparkline(&(0..100).map(f64::from).collect::<Vec<_>>(), 8)
                .chars()
                .count(),
            8
        );
    }
}
