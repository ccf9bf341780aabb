//! WeightWatcher's default per-layer metrics (docs/ALGORITHMS.md section 4; WW `apply_esd` and `apply_norm_metrics`).

use htsr_contracts::SpectralMetrics;

use super::eigen::{zero_threshold, EigenMethod, PooledSpectrum};

/// WeightWatcher's `tolerance` for `weak_rank_loss` (absolute, as WW).
pub const WEAK_RANK_TOLERANCE: f64 = 1e-6;

/// Shape facts of the layer the spectrum came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerShape {
    /// Larger side of one slice.
    pub n: usize,
    /// Smaller side of one slice.
    pub m: usize,
    /// Slices pooled (kh * kw for Conv2D, 1 for dense).
    pub rf: usize,
}

impl LayerShape {
    /// Aspect ratio N / M (WeightWatcher's `Q`); -1 when M is 0.
    pub fn q(&self) -> f64 {
        if self.m == 0 {
            -1.0
        } else {
            self.n as f64 / self.m as f64
        }
    }
}

/// The metrics of a pooled spectrum; `alpha` is the power-law exponent when the fit succeeded.
pub fn spectral_metrics(
    spectrum: &PooledSpectrum,
    shape: LayerShape,
    method: EigenMethod,
    alpha: Option<f64>,
) -> SpectralMetrics {
    let evals = &spectrum.evals;
    let lambda_max = evals.last().copied().unwrap_or(0.0);
    let norm: f64 = evals.iter().sum();
    let zero = zero_threshold(lambda_max, shape.n, method);
    let matrix_rank = evals.iter().filter(|l| **l > zero).count();
    let (alpha_weighted, log_alpha_norm) = match alpha {
        // alpha-hat = alpha * log10(lambda_max) and log10 of the Schatten-alpha norm over all eigenvalues.
        Some(a) => (
            a * lambda_max.log10(),
            evals.iter().map(|l| l.powf(a)).sum::<f64>().log10(),
        ),
        None => (f64::NAN, f64::NAN),
    };
    SpectralMetrics {
        N: shape.n,
        M: shape.m,
        Q: shape.q(),
        rf: shape.rf,
        num_evals: evals.len(),
        lambda_max,
        sv_max: lambda_max.sqrt(),
        sv_min: spectrum.sv_min,
        norm,
        log_norm: norm.log10(),
        spectral_norm: lambda_max,
        log_spectral_norm: lambda_max.log10(),
        alpha_weighted,
        log_alpha_norm,
        stable_rank: if lambda_max > 0.0 {
            norm / lambda_max
        } else {
            0.0
        },
        matrix_rank,
        rank_loss: spectrum.rank_loss,
        weak_rank_loss: evals.iter().filter(|l| **l < WEAK_RANK_TOLERANCE).count(),
        entropy: matrix_entropy(evals, matrix_rank),
    }
}

/// Generalized matrix entropy, -sum p ln p / ln R with p_i = lambda_i / sum(lambda) + 1e-10 and R the matrix
/// rank (Martin & Mahoney 2021, eq. for S(W); WW `RMT.matrix_entropy`).
fn matrix_entropy(evals: &[f64], rank: usize) -> f64 {
    let total: f64 = evals.iter().sum();
    if total.is_nan() || total <= 0.0 {
        return f64::NAN;
    }
    let h: f64 = evals
        .iter()
        .map(|l| {
            let p = l / total + 1e-10;
            -p * p.ln()
        })
        .sum();
    h / (rank as f64 + 1e-10).ln()
}
