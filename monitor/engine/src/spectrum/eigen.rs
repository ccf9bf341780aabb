//! Eigenvalues of the layer correlation matrix X = W^T W (WeightWatcher: lambda = squared singular values, no
//! 1/N). By default from the Gram matrix of the smaller side, accumulated in f64, eigenvalues only; with
//! `EigenMethod::Accurate` from the singular values of W itself.

use faer::Mat;

use super::source::{NonFinite, SliceSource};
use crate::checkpoint::CheckpointError;

/// How eigenvalues are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EigenMethod {
    /// Eigenvalues of the Gram matrix (about N/M times cheaper than an SVD; large eigenvalues agree to about 1e-12 of lambda_max).
    #[default]
    Gram,
    /// Singular values of W, squared: slower, but exact down to the smallest eigenvalues.
    Accurate,
}

/// The pooled spectrum of all slices, with the per-slice facts WeightWatcher reports.
#[derive(Debug, Clone, PartialEq)]
pub struct PooledSpectrum {
    /// All eigenvalues of all slices, ascending, negatives from rounding clipped to 0.
    pub evals: Vec<f64>,
    /// WeightWatcher's `sv_min`: the largest of the per-slice smallest singular values.
    pub sv_min: f64,
    /// WeightWatcher's `rank_loss`, summed over slices.
    pub rank_loss: usize,
}

/// Rows of W processed per Gram update: large enough for fast matmul, small enough to stay in cache.
const GRAM_BLOCK: usize = 256;

/// Relative level below which an eigenvalue is numerically zero. WeightWatcher's rule is on singular values,
/// nu <= nu_max * N * eps (`RMT.matrix_rank`). The Gram product's own rounding error is about N * eps *
/// lambda_max (Higham's bound), so on the Gram path the same rule is applied to lambda rather than nu.
pub fn zero_threshold(lambda_max: f64, n: usize, method: EigenMethod) -> f64 {
    let rel = n as f64 * f64::EPSILON;
    match method {
        EigenMethod::Accurate => lambda_max * rel * rel,
        EigenMethod::Gram => lambda_max * rel,
    }
}

/// Why no spectrum came out of a source.
#[derive(Debug)]
pub enum SpectrumError {
    /// The weights hold NaN or infinite values (all of them were counted).
    NonFinite(NonFinite),
    /// Reading failed, the file changed while it was read, or the analysis was cancelled.
    Read(CheckpointError),
}

impl From<CheckpointError> for SpectrumError {
    fn from(e: CheckpointError) -> Self {
        SpectrumError::Read(e)
    }
}

/// Eigenvalues of every slice, pooled and sorted ascending. Weights with NaN or infinities are read to the end
/// (so that every non-finite value is counted) but no eigenvalue is computed from them.
pub fn pooled_eigenvalues<S: SliceSource>(
    src: &S,
    method: EigenMethod,
) -> Result<PooledSpectrum, SpectrumError> {
    let n = src.n();
    let mut evals = Vec::with_capacity(src.m() * src.slices());
    let mut sv_min = 0.0f64;
    let mut rank_loss = 0usize;
    let mut non_finite = NonFinite::default();
    for p in 0..src.slices() {
        let (slice, nf) = match method {
            EigenMethod::Gram => gram_eigenvalues(src, p, non_finite.any())?,
            EigenMethod::Accurate => svd_eigenvalues(src, p, non_finite.any())?,
        };
        non_finite.add(nf);
        if non_finite.any() {
            continue;
        }
        let slice_max = slice.iter().copied().fold(0.0, f64::max);
        let slice_min = slice.iter().copied().fold(f64::INFINITY, f64::min);
        sv_min = sv_min.max(slice_min.sqrt());
        let zero = zero_threshold(slice_max, n, method);
        rank_loss += slice.iter().filter(|&&l| l <= zero).count();
        evals.extend(slice);
    }
    if non_finite.any() {
        return Err(SpectrumError::NonFinite(non_finite));
    }
    evals.sort_by(f64::total_cmp);
    Ok(PooledSpectrum {
        evals,
        sv_min,
        rank_loss,
    })
}

/// The Gram product and symmetric eigenvalues: faer (pure Rust, portable) unless the `openblas` feature is on.
#[cfg(not(feature = "openblas"))]
mod backend {
    use faer::linalg::matmul::triangular::{self, BlockStructure};
    use faer::{Accum, Mat, MatRef, Side};

    /// gram (lower triangle) = block^T block, or += when `accumulate`.
    pub fn accumulate_gram(gram: &mut Mat<f64>, block: MatRef<'_, f64>, accumulate: bool) {
        triangular::matmul(
            gram.as_mut(),
            BlockStructure::TriangularLower,
            if accumulate {
                Accum::Add
            } else {
                Accum::Replace
            },
            block.transpose(),
            BlockStructure::Rectangular,
            block,
            BlockStructure::Rectangular,
            1.0,
            faer::get_global_parallelism(),
        );
    }

    /// Eigenvalues of the symmetric matrix held in the lower triangle, ascending.
    pub fn eigenvalues_lower(gram: Mat<f64>) -> Option<Vec<f64>> {
        gram.self_adjoint_eigenvalues(Side::Lower).ok()
    }
}

#[cfg(feature = "openblas")]
mod backend {
    pub use super::super::lapack::{eigenvalues_lower, syrk_lower as accumulate_gram};
}

/// Eigenvalues of the Gram matrix of slice `p`'s smaller side, clipped at 0, with the non-finite values met.
/// Once a non-finite value is seen (or `count_only`), blocks are still read, to count, but no arithmetic is done.
fn gram_eigenvalues<S: SliceSource>(
    src: &S,
    p: usize,
    count_only: bool,
) -> Result<(Vec<f64>, NonFinite), CheckpointError> {
    let (rows, cols) = (src.rows(), src.cols());
    // Samples run along the larger side; the Gram matrix is features x features.
    let features_are_cols = cols <= rows;
    let (samples, features) = if features_are_cols {
        (rows, cols)
    } else {
        (cols, rows)
    };
    let mut nf = NonFinite::default();
    let mut gram = if count_only {
        Mat::<f64>::zeros(0, 0)
    } else {
        Mat::<f64>::zeros(features, features)
    };
    let mut block = Mat::<f64>::zeros(GRAM_BLOCK.min(samples), features);
    let mut start = 0;
    while start < samples {
        let len = GRAM_BLOCK.min(samples - start);
        nf.add(src.fill_block(p, features_are_cols, start, len, block.as_mut())?);
        if !count_only && !nf.any() {
            backend::accumulate_gram(&mut gram, block.as_ref().subrows(0, len), start > 0);
        }
        start += len;
    }
    if count_only || nf.any() {
        return Ok((Vec::new(), nf));
    }
    let mut evals = backend::eigenvalues_lower(gram).unwrap_or_else(|| vec![f64::NAN; features]);
    for l in &mut evals {
        if *l < 0.0 {
            *l = 0.0;
        }
    }
    Ok((evals, nf))
}

/// Squared singular values of slice `p`, with the non-finite values met.
fn svd_eigenvalues<S: SliceSource>(
    src: &S,
    p: usize,
    count_only: bool,
) -> Result<(Vec<f64>, NonFinite), CheckpointError> {
    let (w, nf) = src.read_slice(p)?;
    if count_only || nf.any() {
        return Ok((Vec::new(), nf));
    }
    let mut evals: Vec<f64> = w
        .singular_values()
        .map(|s| s.into_iter().map(|v| v * v).collect())
        .unwrap_or_else(|_| vec![f64::NAN; src.m()]);
    evals.sort_by(f64::total_cmp);
    Ok((evals, nf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectrum::source::ArraySource;

    fn matrix(rows: usize, cols: usize) -> ndarray::Array2<f64> {
        // A deterministic, well-conditioned matrix with distinct singular values.
        ndarray::Array2::from_shape_fn((rows, cols), |(r, c)| {
            ((r * 31 + c * 17) % 13) as f64 / 13.0 - 0.4 + if r == c { 1.0 } else { 0.0 }
        })
    }

    #[test]
    fn gram_and_svd_agree_for_both_orientations() {
        for (rows, cols) in [(300, 40), (40, 300), (257, 257)] {
            let a = matrix(rows, cols);
            let src = ArraySource { matrix: a.view() };
            let g = pooled_eigenvalues(&src, EigenMethod::Gram).unwrap();
            let s = pooled_eigenvalues(&src, EigenMethod::Accurate).unwrap();
            assert_eq!(g.evals.len(), rows.min(cols));
            let max = s.evals.last().copied().unwrap();
            for (x, y) in g.evals.iter().zip(&s.evals) {
                assert!((x - y).abs() <= 1e-9 * max, "{rows}x{cols}: {x} vs {y}");
            }
        }
    }
}
