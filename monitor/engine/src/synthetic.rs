//! Synthetic weight matrices with known structure, one ensemble per training phase, for validating the phase
//! classifier (tests/phases.rs) and publishing its confusion table (`cargo run -p htsr-engine --features
//! test-support --example phase_confusion`). Noise is N(0, 1/N) per entry, so the bulk is Marchenko-Pastur with sigma = 1 and a rank-one
//! term of strength S separates from it above the BBP threshold S = Q^(-1/4) (Baik, Ben Arous & Peche 2005).

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use htsr_contracts::Phase;

/// A family of random matrices and the phase a classifier should give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensemble {
    /// Pure Gaussian noise.
    Gaussian,
    /// Noise plus 10 rank-one terms just above the BBP threshold (S in [1.3, 1.8] Q^(-1/4)).
    NearThresholdSpikes,
    /// Noise plus 6 rank-one terms far above threshold (S in [3, 6]).
    StrongSpikes,
    /// Noise plus M/6 rank-one terms spread just above threshold (S in [1.1, 2.1] Q^(-1/4)): a continuum of
    /// eigenvalues leaving the bulk edge, with no power law.
    ManySpikesAtTheEdge,
    /// Noise plus many rank-one terms of power-law graded strength: correlations at all scales.
    GradedLowRank,
    /// Symmetric Pareto entries with tail exponent mu.
    Pareto {
        /// The tail exponent mu times 10 (15 is mu = 1.5).
        mu_tenths: u32,
    },
    /// A product of rank M/10 plus noise 1e-4 times smaller.
    LowRankPlusTinyNoise,
}

impl Ensemble {
    /// Every ensemble of the validation suite.
    pub const ALL: [Ensemble; 9] = [
        Ensemble::Gaussian,
        Ensemble::NearThresholdSpikes,
        Ensemble::StrongSpikes,
        Ensemble::ManySpikesAtTheEdge,
        Ensemble::GradedLowRank,
        Ensemble::Pareto { mu_tenths: 15 },
        Ensemble::Pareto { mu_tenths: 30 },
        Ensemble::Pareto { mu_tenths: 50 },
        Ensemble::LowRankPlusTinyNoise,
    ];

    /// A short name for tables and test messages (`gaussian`, `pareto mu=1.5`, ...).
    pub fn label(self) -> String {
        match self {
            Ensemble::Gaussian => "gaussian".into(),
            Ensemble::NearThresholdSpikes => "spikes near BBP threshold".into(),
            Ensemble::StrongSpikes => "strong separated spikes".into(),
            Ensemble::ManySpikesAtTheEdge => "many spikes at the edge".into(),
            Ensemble::GradedLowRank => "graded low-rank (many scales)".into(),
            Ensemble::Pareto { mu_tenths } => format!("pareto mu={:.1}", mu_tenths as f64 / 10.0),
            Ensemble::LowRankPlusTinyNoise => "low rank + tiny noise".into(),
        }
    }

    /// The phase the paper's definitions give this ensemble, when it is clear-cut; None for the ensembles
    /// that sit between phases at finite size (Pareto mu 3 to 5: weakly heavy-tailed).
    pub fn expected(self) -> Option<Phase> {
        match self {
            Ensemble::Gaussian => Some(Phase::RandomLike),
            Ensemble::NearThresholdSpikes => Some(Phase::BleedingOut),
            Ensemble::StrongSpikes => Some(Phase::BulkPlusSpikes),
            Ensemble::ManySpikesAtTheEdge => Some(Phase::BulkDecay),
            Ensemble::GradedLowRank => Some(Phase::HeavyTailed),
            Ensemble::Pareto { mu_tenths } if mu_tenths < 20 => Some(Phase::HeavyTailed),
            Ensemble::Pareto { .. } => None,
            Ensemble::LowRankPlusTinyNoise => Some(Phase::RankCollapse),
        }
    }

    /// An n x m matrix (n >= m) of this ensemble.
    pub fn sample(self, n: usize, m: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let q = n as f64 / m as f64;
        let bbp = q.powf(-0.25);
        match self {
            Ensemble::Gaussian => gaussian(n, m, &mut rng),
            Ensemble::NearThresholdSpikes => {
                let s: Vec<f64> = (0..10).map(|k| bbp * (1.3 + 0.05 * k as f64)).collect();
                gaussian(n, m, &mut rng) + low_rank(n, m, &s, &mut rng)
            }
            Ensemble::StrongSpikes => {
                let s: Vec<f64> = (0..6).map(|k| 3.0 + 0.6 * k as f64).collect();
                gaussian(n, m, &mut rng) + low_rank(n, m, &s, &mut rng)
            }
            Ensemble::ManySpikesAtTheEdge => {
                let r = m / 6;
                let s: Vec<f64> = (0..r)
                    .map(|k| bbp * (1.1 + 1.0 * k as f64 / r as f64))
                    .collect();
                gaussian(n, m, &mut rng) + low_rank(n, m, &s, &mut rng)
            }
            Ensemble::GradedLowRank => {
                let r = m / 4;
                let s: Vec<f64> = (1..=r).map(|k| 12.0 * (k as f64).powf(-0.6)).collect();
                gaussian(n, m, &mut rng) + low_rank(n, m, &s, &mut rng)
            }
            Ensemble::Pareto { mu_tenths } => {
                let mu = mu_tenths as f64 / 10.0;
                let scale = 1.0 / (n as f64).sqrt();
                Array2::from_shape_fn((n, m), |_| {
                    let u: f64 = rng.random_range(f64::EPSILON..1.0);
                    let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
                    sign * u.powf(-1.0 / mu) * scale
                })
            }
            Ensemble::LowRankPlusTinyNoise => {
                let r = (m / 10).max(1);
                let a = gaussian(n, r, &mut rng);
                let b = gaussian(r, m, &mut rng);
                a.dot(&b) + gaussian(n, m, &mut rng) * 1e-4
            }
        }
    }
}

/// Gaussian noise N(0, 1/n) plus rank-one terms `s_k u_k v_k^T` of the given strengths (orthonormal u, v): the
/// spiked model whose spikes are known, for checking how well a fit recovers them (BBP threshold: s > Q^(-1/4)).
pub fn planted_spikes(n: usize, m: usize, strengths: &[f64], seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    gaussian(n, m, &mut rng) + low_rank(n, m, strengths, &mut rng)
}

/// Entries N(0, 1/n).
fn gaussian(n: usize, m: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let scale = 1.0 / (n as f64).sqrt();
    Array2::from_shape_fn((n, m), |_| {
        let z: f64 = StandardNormal.sample(rng);
        z * scale
    })
}

/// sum_k s_k u_k v_k^T with orthonormal u (in R^n) and v (in R^m).
fn low_rank(n: usize, m: usize, strengths: &[f64], rng: &mut ChaCha8Rng) -> Array2<f64> {
    let u = orthonormal_columns(n, strengths.len(), rng);
    let v = orthonormal_columns(m, strengths.len(), rng);
    let mut out = Array2::zeros((n, m));
    for (k, s) in strengths.iter().enumerate() {
        let uk = u.column(k);
        let vk = v.column(k);
        for i in 0..n {
            let a = s * uk[i];
            for j in 0..m {
                out[[i, j]] += a * vk[j];
            }
        }
    }
    out
}

/// `k` orthonormal columns in R^n by Gram-Schmidt on Gaussian vectors.
fn orthonormal_columns(n: usize, k: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let mut q = Array2::<f64>::zeros((n, k));
    for c in 0..k {
        let mut v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
        for _ in 0..2 {
            for p in 0..c {
                let dot: f64 = (0..n).map(|i| q[[i, p]] * v[i]).sum();
                for (i, x) in v.iter_mut().enumerate() {
                    *x -= dot * q[[i, p]];
                }
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for (i, x) in v.iter().enumerate() {
            q[[i, c]] = x / norm;
        }
    }
    q
}
