//! htsr's deterministic phase classifier: the 5+1 phases of Martin & Mahoney (arXiv 1901.08276, Table 1),
//! decided from the MP fit, the power-law fit and the edge statistics, by the rules and evidence in
//! docs/PHASES.md. Every threshold lives in [`PhaseThresholds`].

use htsr_contracts::{Phase, PhaseEvidence, PhaseVerdict, PowerLawFit};

use super::mp::MpResult;

/// Every number the classifier compares against, with its origin.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhaseThresholds {
    /// Fewer eigenvalues than this: `insufficient` (WW `min_evals` = 10 in 0.7.5).
    pub min_evals: usize,
    /// An eigenvalue below this fraction of lambda_max is numerically zero (a relative form of WW's 1e-6).
    pub zero_relative: f64,
    /// Rank collapse when at least this fraction of eigenvalues is zero, or far below the MP lower edge.
    pub rank_collapse_fraction: f64,
    /// The "far below the lower edge" test needs Q at least this (so that lambda_minus is clearly > 0)...
    pub near_zero_min_q: f64,
    /// ...and counts rescaled eigenvalues below this multiple of lambda_minus.
    pub near_zero_factor: f64,
    /// Heavy-tailed power law: alpha below this (paper: mu < 4 classes) ...
    pub ht_alpha_max: f64,
    /// ... with at least this many tail eigenvalues ...
    pub ht_min_tail: usize,
    /// ... and a KS distance at most this.
    pub ht_max_d: f64,
    /// A layer with no MP spikes is random-like unless a heavy-tailed fit covers at least this tail fraction.
    pub ht_guard_tail_fraction: f64,
    /// Below this fraction of eigenvalues outside the bulk, the layer is bulk-dominated (paper notebook: <= 2.4%
    /// outside for bleeding-out / bulk+spikes, 9.25% for bulk-decay).
    pub outside_fraction: f64,
    /// The edge region is (threshold, edge_factor * bulk_max].
    pub edge_factor: f64,
    /// Outside mass with at least this fraction in the edge region "hugs the edge".
    pub edge_mass_split: f64,
    /// Bleeding-out keeps lambda_max near the bulk: MP soft rank above this.
    pub softrank_split: f64,
    /// A heavy-tailed power law with an MP soft rank below this is heavy_tailed whatever the spike count
    /// (pretrained AlexNet FC layers: 0.01-0.05 in the authors' notebooks, arXiv 1810.01075).
    pub ht_softrank_max: f64,
    /// heavy_tailed with alpha below this is tagged very_heavy_tailed (WW "over-trained", paper mu < 2).
    pub very_heavy_alpha: f64,
}

impl Default for PhaseThresholds {
    fn default() -> Self {
        PhaseThresholds {
            min_evals: 10,
            zero_relative: 1e-6,
            rank_collapse_fraction: 0.10,
            near_zero_min_q: 1.5,
            near_zero_factor: 0.1,
            ht_alpha_max: 4.0,
            ht_min_tail: 10,
            ht_max_d: 0.1,
            ht_guard_tail_fraction: 0.05,
            outside_fraction: 0.05,
            edge_factor: 1.5,
            edge_mass_split: 0.5,
            softrank_split: 0.5,
            ht_softrank_max: 0.1,
            very_heavy_alpha: 2.0,
        }
    }
}

/// What the classifier reads.
pub struct PhaseInput<'a> {
    /// The ESD, ascending.
    pub evals: &'a [f64],
    /// Aspect ratio N / M of one slice.
    pub q: f64,
    /// WeightWatcher's `rank_loss` of the layer (eigenvalues at or below each slice's numerical-zero level).
    pub rank_loss: usize,
    /// The power-law fit; None when it failed.
    pub power_law: Option<&'a PowerLawFit>,
    /// The MP fit; None when there is none.
    pub mp: Option<&'a MpResult>,
}

/// Names the phase of one layer and reports the evidence.
pub fn classify(input: &PhaseInput<'_>, t: &PhaseThresholds) -> PhaseVerdict {
    let evals = input.evals;
    let n = evals.len();
    let lambda_max = evals.last().copied().unwrap_or(0.0);
    let total: f64 = evals.iter().sum();
    let zeros = evals
        .iter()
        .filter(|l| **l <= t.zero_relative * lambda_max)
        .count();
    let zero_fraction = if n > 0 { zeros as f64 / n as f64 } else { 0.0 };
    let pl = input.power_law;
    let mut evidence = PhaseEvidence {
        alpha: pl.map_or(f64::NAN, |p| p.alpha),
        d: pl.map_or(f64::NAN, |p| p.d),
        n_tail: pl.map_or(0, |p| p.num_pl_spikes),
        spikes: 0,
        frac_outside: 0.0,
        edge_mass: f64::NAN,
        mp_softrank: f64::NAN,
        // (sum/lambda_max) * (1 + 1/sqrt Q)^2 / n is about 1 for an MP matrix, lower as structure grows.
        normalized_stable_rank: if lambda_max > 0.0 && n > 0 {
            total / lambda_max * (1.0 + 1.0 / input.q.sqrt()).powi(2) / n as f64
        } else {
            0.0
        },
        zero_fraction,
    };
    let verdict = |phase: Phase, evidence: PhaseEvidence| PhaseVerdict {
        phase,
        very_heavy_tailed: phase == Phase::HeavyTailed && evidence.alpha < t.very_heavy_alpha,
        evidence,
    };
    if lambda_max <= 0.0 {
        evidence.zero_fraction = 1.0;
        return verdict(Phase::RankCollapse, evidence);
    }
    if n < t.min_evals {
        return verdict(Phase::Insufficient, evidence);
    }
    // Rank collapse: a large mass at zero (paper Table 1, "+1"), absolute or relative to the MP lower edge.
    let rank_loss_fraction = input.rank_loss as f64 / n as f64;
    let mut collapsed = zero_fraction.max(rank_loss_fraction) >= t.rank_collapse_fraction;
    let Some(mp) = input.mp else {
        let phase = if collapsed {
            Phase::RankCollapse
        } else {
            Phase::Insufficient
        };
        return verdict(phase, evidence);
    };
    let s2 = mp.rescale();
    let heavy_tailed = pl.is_some_and(|p| {
        p.alpha < t.ht_alpha_max && p.num_pl_spikes >= t.ht_min_tail && p.d <= t.ht_max_d
    });
    // The lower-edge test trusts the MP fit, which a heavy-tailed ESD does not have (its unit-mean rescaling
    // is dominated by the tail and puts most of the bulk "below lambda_minus"): skip it there.
    if !heavy_tailed && input.q >= t.near_zero_min_q && mp.bulk_min > 0.0 {
        let below = evals
            .iter()
            .filter(|l| **l * s2 < t.near_zero_factor * mp.bulk_min)
            .count();
        collapsed |= below as f64 / n as f64 >= t.rank_collapse_fraction;
    }
    let outside: Vec<f64> = evals
        .iter()
        .map(|l| l * s2)
        .filter(|l| *l > mp.threshold)
        .collect();
    let k = outside.len();
    evidence.spikes = k;
    evidence.frac_outside = k as f64 / n as f64;
    evidence.mp_softrank = mp.mp_softrank;
    if k > 0 {
        let edge = outside
            .iter()
            .filter(|l| **l <= t.edge_factor * mp.bulk_max)
            .count();
        evidence.edge_mass = edge as f64 / k as f64;
    }
    if collapsed {
        return verdict(Phase::RankCollapse, evidence);
    }
    let ht_covers_tail =
        heavy_tailed && evidence.n_tail as f64 >= t.ht_guard_tail_fraction * n as f64;
    let phase = if k == 0 && !ht_covers_tail {
        Phase::RandomLike
    } else if ht_covers_tail && mp.mp_softrank < t.ht_softrank_max {
        // lambda_max far beyond any bulk edge and a good power law over a sizable tail: the paper's
        // "no good lambda+, lambda_max >> lambda+", even when the MP fit leaves few eigenvalues outside.
        Phase::HeavyTailed
    } else if evidence.frac_outside < t.outside_fraction {
        if evidence.edge_mass.is_nan() || evidence.edge_mass < t.edge_mass_split {
            if k == 0 {
                // No MP spikes but a heavy-tailed fit over a sizable tail (guard above).
                Phase::HeavyTailed
            } else {
                Phase::BulkPlusSpikes
            }
        } else if mp.mp_softrank > t.softrank_split {
            Phase::BleedingOut
        } else {
            Phase::BulkDecay
        }
    } else if heavy_tailed && mp.mp_softrank < t.softrank_split {
        // A power-law tail that reaches far beyond the bulk (lambda_max >> lambda+).
        Phase::HeavyTailed
    } else {
        // Mass above the edge that is not a strong power law, or one that stays near the bulk: the paper's
        // bulk-decay ("MP bulk + PL tail", weakly heavy-tailed).
        Phase::BulkDecay
    };
    verdict(phase, evidence)
}
