//! The Marchenko-Pastur law (Marchenko & Pastur 1967) for eigenvalues of X^T X / N with X an N x M matrix of
//! i.i.d. entries of variance sigma^2 and aspect ratio Q = N / M >= 1: the engine fits it (in WeightWatcher's
//! unit-mean convention) and the dashboard and the report draw it, so it is written once, here.

/// The bulk edges (lower, upper) = sigma^2 (1 -/+ 1/sqrt(Q))^2.
pub fn edges(sigma: f64, q: f64) -> (f64, f64) {
    let s2 = sigma * sigma;
    let r = 1.0 / q.sqrt();
    (s2 * (1.0 - r).powi(2), s2 * (1.0 + r).powi(2))
}

/// The density at `x`: Q / (2 pi sigma^2 x) sqrt((hi - x)(x - lo)) inside the bulk edges, 0 outside them.
pub fn density(x: f64, sigma: f64, q: f64) -> f64 {
    let (lo, hi) = edges(sigma, q);
    if x <= lo || x >= hi || x <= 0.0 {
        return 0.0;
    }
    q / (2.0 * std::f64::consts::PI * sigma * sigma * x) * ((hi - x) * (x - lo)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_density_integrates_to_one_between_its_edges() {
        for (sigma, q) in [(1.0, 1.5), (0.7, 4.0), (1.3, 2.0)] {
            let (lo, hi) = edges(sigma, q);
            let n = 200_000;
            let dx = (hi - lo) / n as f64;
            let mass: f64 = (0..n)
                .map(|i| density(lo + (i as f64 + 0.5) * dx, sigma, q) * dx)
                .sum();
            assert!((mass - 1.0).abs() < 1e-3, "sigma {sigma} Q {q}: {mass}");
            assert_eq!(density(lo * 0.99, sigma, q), 0.0);
            assert_eq!(density(hi * 1.01, sigma, q), 0.0);
        }
    }
}
