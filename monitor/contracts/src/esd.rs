//! Building the compact ESD kept for every checkpoint: a histogram over log10(lambda) with equal-width bins.
//!
//! Log-spaced bins because ESDs span many decades and the power-law tail is what the dashboard draws; the
//! fit markers (xmin, alpha, MP bulk edges) are left for the caller, which knows the fits.

use crate::model::EsdHistogram;

/// Eigenvalues at or below `lambda_max * ESD_ZERO_RELATIVE` are counted as numerically zero, not binned.
pub const ESD_ZERO_RELATIVE: f64 = 1e-12;

impl EsdHistogram {
    /// Bins `evals` into `bins` (at least 1) log-spaced bins between the smallest non-zero and the largest value.
    /// Non-finite values are ignored; values at or below the zero floor go to `zeros`.
    pub fn from_eigenvalues(evals: &[f64], bins: usize) -> Self {
        let bins = bins.max(1);
        let finite = evals.iter().copied().filter(|v| v.is_finite());
        let lambda_max = finite.clone().fold(f64::NEG_INFINITY, f64::max);
        let lambda_max = if lambda_max.is_finite() {
            lambda_max
        } else {
            0.0
        };
        let floor = if lambda_max > 0.0 {
            lambda_max * ESD_ZERO_RELATIVE
        } else {
            0.0
        };
        let mut zeros = 0u32;
        let mut logs = Vec::with_capacity(evals.len());
        for v in finite {
            if v <= floor {
                zeros += 1;
            } else {
                logs.push(v.log10());
            }
        }
        let mut counts = vec![0u32; bins];
        let (lo, hi) = match logs
            .iter()
            .copied()
            .fold(None, |acc: Option<(f64, f64)>, x| {
                Some(acc.map_or((x, x), |(a, b)| (a.min(x), b.max(x))))
            }) {
            None => (0.0, 0.0),
            // A single distinct value still needs a bin of non-zero width to be drawn.
            Some((a, b)) if b - a < 1e-9 => (a - 0.5, b + 0.5),
            Some(ab) => ab,
        };
        if !logs.is_empty() {
            let width = (hi - lo) / bins as f64;
            for x in logs {
                let i = (((x - lo) / width) as usize).min(bins - 1);
                counts[i] += 1;
            }
        }
        EsdHistogram {
            log10_lo: lo,
            log10_hi: hi,
            counts,
            zeros,
            lambda_max,
            xmin: None,
            alpha: None,
            bulk_min: None,
            bulk_max: None,
            detx_val: None,
        }
    }

    /// The (lower, upper) edges of bin `i` in eigenvalue units.
    pub fn bin_edges(&self, i: usize) -> (f64, f64) {
        let w = (self.log10_hi - self.log10_lo) / self.counts.len().max(1) as f64;
        (
            10f64.powf(self.log10_lo + w * i as f64),
            10f64.powf(self.log10_lo + w * (i + 1) as f64),
        )
    }

    /// Eigenvalues counted, zeros included.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| c as u64).sum::<u64>() + self.zeros as u64
    }

    /// The tail's share of all eigenvalues (zeros included in the whole): the counts of the bins that reach past
    /// `xmin`, since a histogram cannot split a bin. Every view that draws a stored ESD anchors its power law with it.
    pub fn tail_fraction(&self, xmin: f64) -> f64 {
        let tail: u64 = (0..self.counts.len())
            .filter(|&i| self.bin_edges(i).1 > xmin)
            .map(|i| self.counts[i] as u64)
            .sum();
        tail as f64 / self.total().max(1) as f64
    }

    /// Where the stored power-law fit meets xmin on a density plot of this histogram: [`power_law_anchor`] with
    /// the histogram's own alpha, xmin and tail share. None without a usable fit.
    pub fn power_law_anchor(&self) -> Option<f64> {
        let (alpha, xmin) = (self.alpha?, self.xmin?);
        power_law_anchor(self.tail_fraction(xmin), alpha, xmin)
    }
}

/// The density at xmin of a power law fitted to a tail that holds `tail_fraction` of all eigenvalues:
/// f (alpha - 1) / xmin, the normalized pdf of Clauset, Shalizi & Newman (2009) eq. 2.2 at its start, scaled by the
/// tail's share so that it sits on the ESD's density. From there the line falls with slope -alpha on log-log axes.
/// None when alpha <= 1 or xmin <= 0 (no such density).
pub fn power_law_anchor(tail_fraction: f64, alpha: f64, xmin: f64) -> Option<f64> {
    let usable = alpha.is_finite() && alpha > 1.0 && xmin.is_finite() && xmin > 0.0;
    usable.then(|| tail_fraction * (alpha - 1.0) / xmin)
}

#[cfg(test)]
mod tests {
    use super::power_law_anchor;
    use crate::model::EsdHistogram;

    #[test]
    fn the_tail_is_the_bins_reaching_past_xmin_and_anchors_the_power_law() {
        let evals: Vec<f64> = (1..=100).map(|i| i as f64).chain([0.0; 4]).collect();
        let mut h = EsdHistogram::from_eigenvalues(&evals, 10);
        assert_eq!(h.total(), 104);
        // xmin below every value: every binned eigenvalue, the zeros only in the whole.
        assert!((h.tail_fraction(0.5) - 100.0 / 104.0).abs() < 1e-12);
        // Above the largest: nothing.
        assert_eq!(h.tail_fraction(1000.0), 0.0);
        // A bin that straddles xmin counts whole.
        let straddled = (0..10)
            .find(|&i| h.bin_edges(i).0 < 50.0 && h.bin_edges(i).1 > 50.0)
            .unwrap();
        let whole: u32 = h.counts[straddled..].iter().sum();
        assert!((h.tail_fraction(50.0) - whole as f64 / 104.0).abs() < 1e-12);
        assert_eq!(h.power_law_anchor(), None);
        h.alpha = Some(3.0);
        h.xmin = Some(50.0);
        let anchor = h.power_law_anchor().unwrap();
        assert!((anchor - whole as f64 / 104.0 * 2.0 / 50.0).abs() < 1e-15);
        assert_eq!(power_law_anchor(0.5, 1.0, 1.0), None);
        assert_eq!(power_law_anchor(0.5, 2.0, 0.0), None);
    }

    #[test]
    fn bins_are_log_spaced_and_count_everything() {
        let evals = [0.0, 1e-20, 0.01, 0.1, 1.0, 10.0, 100.0, f64::NAN];
        let h = EsdHistogram::from_eigenvalues(&evals, 4);
        assert_eq!(h.zeros, 2);
        assert_eq!(h.counts, vec![1, 1, 1, 2]);
        assert_eq!(h.total(), 7);
        assert!((h.log10_lo + 2.0).abs() < 1e-12 && (h.log10_hi - 2.0).abs() < 1e-12);
        assert_eq!(h.lambda_max, 100.0);
        let (a, b) = h.bin_edges(0);
        assert!((a - 0.01).abs() < 1e-12 && (b - 0.1).abs() < 1e-12);
    }

    #[test]
    fn degenerate_inputs_give_a_drawable_histogram() {
        let h = EsdHistogram::from_eigenvalues(&[], 96);
        assert_eq!((h.counts.len(), h.total(), h.lambda_max), (96, 0, 0.0));
        let h = EsdHistogram::from_eigenvalues(&[3.0, 3.0], 8);
        assert!(h.log10_hi > h.log10_lo);
        assert_eq!(h.total(), 2);
    }
}
