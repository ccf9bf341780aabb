//! TensorBoard's debiased exponential moving average, the smoothing users already know (W&B matches it).
//!
//! `last = last*w + (1-w)*y; smoothed = last / (1 - w^k)` over the k finite points so far. Non-finite points
//! pass through unchanged and do not advance k, exactly as TensorBoard's scalar dashboard does.

/// TensorBoard's default slider position.
pub const DEFAULT_WEIGHT: f64 = 0.6;

/// Smooths `ys` with weight `w` in [0, 1). `w = 0` returns the input.
pub fn debiased_ema(ys: &[f64], w: f64) -> Vec<f64> {
    let mut last = 0.0;
    let mut k = 0i32;
    ys.iter()
        .map(|&y| {
            if !y.is_finite() {
                return y;
            }
            last = last * w + (1.0 - w) * y;
            k += 1;
            // Without the debias term the first points would be pulled towards the zero the average starts at.
            let debias = if w == 1.0 { 1.0 } else { 1.0 - w.powi(k) };
            last / debias
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_tensorboard_on_a_known_series() {
        // Worked by hand from TensorBoard's formula with w = 0.6:
        // k=1: last = 0.4*1 = 0.4, /0.4 = 1
        // k=2: last = 0.24 + 0.4*2 = 1.04, /(1-0.36) = 1.625
        // k=3: last = 0.624 + 0.4*3 = 1.824, /(1-0.216) = 2.326530612...
        let s = debiased_ema(&[1.0, 2.0, 3.0], 0.6);
        let want = [1.0, 1.625, 1.824 / 0.784];
        for (a, b) in s.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{s:?}");
        }
    }

    #[test]
    fn non_finite_points_pass_through_and_do_not_count() {
        let s = debiased_ema(&[1.0, f64::NAN, 2.0], 0.6);
        assert_eq!(s[0], 1.0);
        assert!(s[1].is_nan());
        assert!((s[2] - 1.625).abs() < 1e-12);
    }

    #[test]
    fn a_constant_series_stays_constant_and_zero_weight_is_identity() {
        assert!(debiased_ema(&[3.0; 50], 0.9)
            .iter()
            .all(|v| (v - 3.0).abs() < 1e-9));
        assert_eq!(debiased_ema(&[1.0, 5.0, 2.0], 0.0), vec![1.0, 5.0, 2.0]);
    }
}
