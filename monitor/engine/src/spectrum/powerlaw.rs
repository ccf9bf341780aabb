//! The power-law fit of the ESD tail, exactly as WeightWatcher 0.7.7's default fitter `WWFit`
//! (docs/ALGORITHMS.md section 3; Clauset, Shalizi & Newman 2009): every eigenvalue but the largest is a candidate
//! xmin, alpha is the closed-form MLE, and the first candidate with the smallest KS distance wins.

use htsr_contracts::PowerLawFit;
use rayon::prelude::*;

/// WeightWatcher's `EVALS_THRESH`: eigenvalues at or below this are dropped before the fit (absolute, as WW).
pub const EVALS_THRESH: f64 = 1e-5;
/// WeightWatcher 0.7.7's `SMALL_N_CUTOFF`: below this many eigenvalues the small-sample branch runs.
pub const SMALL_N_CUTOFF: usize = 20;
/// The small-sample branch's minimum tail size (`k_min`).
pub const SMALL_N_MIN_TAIL: usize = 8;

/// Why no power law could be fitted.
#[derive(Debug, Clone, PartialEq)]
pub enum PowerLawError {
    /// Fewer eigenvalues above [`EVALS_THRESH`] than the fit needs (2, or [`SMALL_N_MIN_TAIL`] below
    /// [`SMALL_N_CUTOFF`]).
    TooFewEigenvalues {
        /// How many eigenvalues lie above [`EVALS_THRESH`].
        above_threshold: usize,
    },
    /// No candidate xmin gives a finite alpha above 1 (for example a tail of equal values).
    NoValidCandidate,
}

impl std::fmt::Display for PowerLawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PowerLawError::TooFewEigenvalues { above_threshold } => write!(
                f,
                "power-law fit needs more eigenvalues above {EVALS_THRESH:e}: only {above_threshold}"
            ),
            PowerLawError::NoValidCandidate => {
                write!(f, "power-law fit failed: no candidate xmin gives alpha > 1")
            }
        }
    }
}

/// Fits the tail of `evals` (any order). Follows WWFit: drop values <= 1e-5, sort, scan candidates.
pub fn fit_power_law(evals: &[f64]) -> Result<PowerLawFit, PowerLawError> {
    let mut x: Vec<f64> = evals
        .iter()
        .copied()
        .filter(|v| *v > EVALS_THRESH && v.is_finite())
        .collect();
    x.sort_by(f64::total_cmp);
    let n = x.len();
    let small = n < SMALL_N_CUTOFF;
    let min_tail = if small { SMALL_N_MIN_TAIL } else { 2 };
    if n < min_tail.max(2) {
        return Err(PowerLawError::TooFewEigenvalues { above_threshold: n });
    }
    let logs: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    // suffix[i] = sum of ln x_j for j >= i, so each candidate's alpha is O(1).
    let mut suffix = vec![0.0; n + 1];
    for i in (0..n).rev() {
        suffix[i] = suffix[i + 1] + logs[i];
    }
    let alpha_at = |i: usize| -> f64 {
        let tail = (n - i) as f64;
        let denom = suffix[i] - tail * logs[i];
        if small {
            // 0.7.7 small-N branch: the bias-corrected MLE.
            1.0 + (tail - 1.0) / denom
        } else {
            1.0 + tail / denom
        }
    };
    let last_candidate = n - min_tail; // tails of at least min_tail points (2 = all but the largest)
                                       // Candidates are scanned in chunks in parallel; within a chunk a candidate stops computing its KS distance
                                       // once it exceeds the chunk's best, which keeps the exact first-argmin while skipping most of the O(n^2).
    let chunk = 64;
    let best = (0..=last_candidate)
        .collect::<Vec<_>>()
        .par_chunks(chunk)
        .map(|idx| {
            let mut best: Option<(usize, f64)> = None;
            for &i in idx {
                let alpha = alpha_at(i);
                let bound = best.map_or(f64::INFINITY, |(_, d)| d);
                let d = if alpha > 1.0 && alpha.is_finite() {
                    ks_distance(&logs[i..], 1.0 - alpha, bound)
                } else {
                    1.0
                };
                if best.is_none_or(|(_, bd)| d < bd) {
                    best = Some((i, d));
                }
            }
            best
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .fold(None, |acc: Option<(usize, f64)>, (i, d)| match acc {
            Some((_, bd)) if bd <= d => acc,
            _ => Some((i, d)),
        });
    let (i, d) = best.ok_or(PowerLawError::NoValidCandidate)?;
    let alpha = alpha_at(i);
    if !(alpha > 1.0 && alpha.is_finite()) {
        return Err(PowerLawError::NoValidCandidate);
    }
    let xmin = x[i];
    let tail = x.iter().filter(|v| **v >= xmin).count();
    Ok(PowerLawFit {
        alpha,
        xmin,
        xmax: x[n - 1],
        d,
        sigma: (alpha - 1.0) / ((n - i) as f64).sqrt(),
        num_pl_spikes: tail,
    })
}

/// KS distance between the tail (given as logs, first = ln xmin) and the Pareto CDF 1 - (x/xmin)^(1-alpha),
/// with WW's empirical CDF k/n ("fraction strictly below"). Stops early once it exceeds `bound`: the result is
/// then only known to be greater than `bound`, which is all the argmin needs.
fn ks_distance(tail_logs: &[f64], one_minus_alpha: f64, bound: f64) -> f64 {
    let n = tail_logs.len() as f64;
    let l0 = tail_logs[0];
    let mut d: f64 = 0.0;
    for (k, &l) in tail_logs.iter().enumerate() {
        let model = 1.0 - (one_minus_alpha * (l - l0)).exp();
        let gap = (model - k as f64 / n).abs();
        if gap > d {
            d = gap;
            if d > bound {
                return d;
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute-force WWFit, re-summing each tail, to check the fast path against.
    fn reference_fit(evals: &[f64]) -> (f64, f64, f64) {
        let mut x: Vec<f64> = evals
            .iter()
            .copied()
            .filter(|v| *v > EVALS_THRESH)
            .collect();
        x.sort_by(f64::total_cmp);
        let n = x.len();
        let mut best = (0usize, f64::INFINITY, 0.0);
        for i in 0..n - 1 {
            let tail = &x[i..];
            let s: f64 = tail.iter().map(|v| (v / x[i]).ln()).sum();
            let alpha = 1.0 + tail.len() as f64 / s;
            let d = if alpha > 1.0 {
                tail.iter()
                    .enumerate()
                    .map(|(k, v)| {
                        ((1.0 - (v / x[i]).powf(1.0 - alpha)) - k as f64 / tail.len() as f64).abs()
                    })
                    .fold(0.0, f64::max)
            } else {
                1.0
            };
            if d < best.1 {
                best = (i, d, alpha);
            }
        }
        (best.2, x[best.0], best.1)
    }

    #[test]
    fn matches_brute_force_wwfit() {
        let mut state = 12345u64;
        let evals: Vec<f64> = (0..700)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                0.1 * u.powf(-1.0 / 2.5)
            })
            .collect();
        let fit = fit_power_law(&evals).unwrap();
        let (alpha, xmin, d) = reference_fit(&evals);
        assert!(
            (fit.alpha - alpha).abs() < 1e-10 * alpha,
            "{} vs {alpha}",
            fit.alpha
        );
        assert_eq!(fit.xmin, xmin);
        assert!((fit.d - d).abs() < 1e-12);
        // A Pareto sample with density exponent 3.5 should be fitted near it.
        assert!((fit.alpha - 3.5).abs() < 0.5, "alpha {}", fit.alpha);
    }

    #[test]
    fn too_few_eigenvalues_is_an_error_not_a_number() {
        assert!(matches!(
            fit_power_law(&[1e-7, 2.0, 3.0]),
            Err(PowerLawError::TooFewEigenvalues { .. })
        ));
    }
}
