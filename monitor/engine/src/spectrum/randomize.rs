//! Randomization (WeightWatcher's `randomize=True`, docs/ALGORITHMS.md section 6): shuffle every element of each
//! slice, recompute the ESD, and compare. Spikes that survive shuffling are correlation traps. Unlike WW, the
//! shuffle is seeded, so results repeat.

use faer::Mat;
use htsr_contracts::Randomization;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::eigen::{pooled_eigenvalues, EigenMethod};
use super::mp::{fit_mp, SquareMp};
use super::source::{OwnedSlices, SliceSource};
use crate::checkpoint::CheckpointError;

/// WW stores 5 shuffled replicas when the layer has fewer than 100 eigenvalues (n_comp = M * rf), else 1.
fn replicas_for(num_evals: usize) -> usize {
    if num_evals < 100 {
        5
    } else {
        1
    }
}

/// Every slice of `src` with its elements shuffled uniformly (WW `apply_random_esd`: `np.random.shuffle` of the
/// flattened slice).
fn shuffled_copy<S: SliceSource>(
    src: &S,
    rng: &mut ChaCha8Rng,
) -> Result<OwnedSlices, CheckpointError> {
    let (rows, cols) = (src.rows(), src.cols());
    let mut slices = Vec::with_capacity(src.slices());
    for p in 0..src.slices() {
        let (slice, _) = src.read_slice(p)?;
        let mut entries: Vec<f64> = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .map(|(r, c)| slice[(r, c)])
            .collect();
        entries.shuffle(rng);
        slices.push(Mat::from_fn(rows, cols, |r, c| entries[r * cols + c]));
    }
    Ok(OwnedSlices { slices })
}

/// The pooled eigenvalues of a shuffled copy (its entries are the layer's, already known to be finite).
fn shuffled_eigenvalues(copy: &OwnedSlices, method: EigenMethod) -> Vec<f64> {
    match pooled_eigenvalues(copy, method) {
        Ok(p) => p.evals,
        Err(_) => Vec::new(),
    }
}

/// Compares the layer's ESD `evals` (ascending) with element-shuffled copies of it.
pub fn randomize<S: SliceSource>(
    src: &S,
    evals: &[f64],
    q: f64,
    method: EigenMethod,
    square: SquareMp,
    seed: u64,
) -> Result<Randomization, CheckpointError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m = src.m();
    let mut rand_evals = Vec::new();
    for _ in 0..replicas_for(m * src.slices()) {
        rand_evals.extend(shuffled_eigenvalues(&shuffled_copy(src, &mut rng)?, method));
    }
    rand_evals.sort_by(f64::total_cmp);
    let max_rand_eval = rand_evals.last().copied().unwrap_or(0.0);
    let mp = fit_mp(&rand_evals, q, m, square);
    // A second, fresh single replica for the distance metrics, as WW draws one.
    let fresh = shuffled_eigenvalues(&shuffled_copy(src, &mut rng)?, method);
    let lambda_max = evals.last().copied().unwrap_or(0.0);
    let fresh_max = fresh.last().copied().unwrap_or(0.0);
    let (rand_sigma_mp, rand_bulk_min, rand_bulk_max, rand_mp_softrank, rand_w_scale, spikes) =
        match &mp {
            Some(fit) => {
                let r = fit.to_record();
                (
                    r.sigma_mp,
                    r.bulk_min,
                    r.bulk_max,
                    r.mp_softrank,
                    r.w_scale,
                    r.num_spikes,
                )
            }
            None => (f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN, 0),
        };
    Ok(Randomization {
        seed,
        max_rand_eval,
        rand_distance: jensen_shannon_distance(evals, &fresh),
        ww_softrank: if lambda_max > 0.0 {
            fresh_max / lambda_max
        } else {
            f64::NAN
        },
        ww_maxdist: lambda_max - fresh_max,
        rand_num_spikes: spikes,
        rand_sigma_mp,
        rand_bulk_max,
        rand_bulk_min,
        rand_mp_softrank,
        rand_w_scale,
    })
}

/// Jensen-Shannon distance (natural log) between two sorted eigenvalue vectors read as probability vectors
/// over the index, as WW computes `rand_distance` (scipy's `jensenshannon`).
pub fn jensen_shannon_distance(a: &[f64], b: &[f64]) -> f64 {
    let (sa, sb): (f64, f64) = (a.iter().sum(), b.iter().sum());
    if a.len() != b.len() || !(sa.is_finite() && sa > 0.0 && sb.is_finite() && sb > 0.0) {
        return f64::NAN;
    }
    let kl_to_mid = |p: f64, m: f64| if p > 0.0 { p * (p / m).ln() } else { 0.0 };
    let js: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let (p, q) = (x / sa, y / sb);
            let m = 0.5 * (p + q);
            0.5 * kl_to_mid(p, m) + 0.5 * kl_to_mid(q, m)
        })
        .sum();
    js.max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_distance_is_zero_for_equal_and_bounded() {
        let a = [1.0, 2.0, 3.0];
        assert!(jensen_shannon_distance(&a, &a).abs() < 1e-12);
        let d = jensen_shannon_distance(&[1.0, 0.0], &[0.0, 1.0]);
        assert!((d - std::f64::consts::LN_2.sqrt()).abs() < 1e-12);
    }
}
