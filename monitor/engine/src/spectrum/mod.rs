//! The spectrum of a layer and everything read from it. Pure functions: matrices in, reports out, no I/O.

pub mod eigen;
pub mod erg;
#[cfg(feature = "openblas")]
pub mod lapack;
pub mod metrics;
pub mod mp;
pub mod phase;
pub mod powerlaw;
pub mod randomize;
pub mod source;

use htsr_contracts::{Erg, PhaseVerdict, PowerLawFit, Randomization, SpectralMetrics, Warning};

pub use eigen::{EigenMethod, SpectrumError};
pub use metrics::LayerShape;
pub use mp::{MpResult, SquareMp};
pub use phase::PhaseThresholds;
pub use powerlaw::PowerLawError;
pub use source::{ArraySource, NonFinite, SliceSource};

/// WW's `OVER_TRAINED_THRESH` and `UNDER_TRAINED_THRESH`.
pub const OVER_TRAINED_ALPHA: f64 = 2.0;
/// WeightWatcher's `UNDER_TRAINED_THRESH`: alpha above it gets the `under-trained` warning.
pub const UNDER_TRAINED_ALPHA: f64 = 6.0;

/// How a spectrum is analyzed.
#[derive(Debug, Clone, Default)]
pub struct SpectrumOptions {
    /// How the eigenvalues are computed: the Gram matrix (default) or an SVD (`--accurate`).
    pub method: EigenMethod,
    /// The phase classifier's thresholds (docs/PHASES.md).
    pub thresholds: PhaseThresholds,
    /// Run the randomization comparison with this seed.
    pub randomize_seed: Option<u64>,
    /// How square layers (Q = 1) get their Marchenko-Pastur fit.
    pub square_mp: SquareMp,
}

/// Everything computed from one layer's spectrum.
#[derive(Debug, Clone)]
pub struct SpectrumAnalysis {
    /// The pooled eigenvalues of every slice (W^T W, no 1/N, conv2d_norm applied), ascending.
    pub evals: Vec<f64>,
    /// WeightWatcher's default per-layer metrics.
    pub metrics: SpectralMetrics,
    /// The power-law fit of the tail, or why there is none.
    pub power_law: Result<PowerLawFit, PowerLawError>,
    /// The Marchenko-Pastur bulk fit; None when no fit is possible (no eigenvalues, a sum that is not finite and
    /// positive, or no density left above the KDE floor).
    pub mp: Option<MpResult>,
    /// The phase and its evidence.
    pub phase: PhaseVerdict,
    /// WeightWatcher's `warning` from alpha (none without a fit).
    pub warning: Warning,
    /// The randomization comparison, when [`SpectrumOptions::randomize_seed`] is set.
    pub randomization: Option<Randomization>,
    /// The determinant (ERG) condition of SETOL (WeightWatcher's `detX_*` and `ERG_gap` columns).
    pub erg: Erg,
}

/// WW's `warning` column; a failed fit gets none (WW labels it "over-trained", a known bug).
pub fn warning_for(alpha: Option<f64>) -> Warning {
    match alpha {
        Some(a) if a < OVER_TRAINED_ALPHA => Warning::OverTrained,
        Some(a) if a > UNDER_TRAINED_ALPHA => Warning::UnderTrained,
        _ => Warning::None,
    }
}

/// Computes the ESD of `src` (pooling its slices) and analyzes it.
pub fn analyze_source<S: SliceSource>(
    src: &S,
    opts: &SpectrumOptions,
) -> Result<SpectrumAnalysis, SpectrumError> {
    let pooled = eigen::pooled_eigenvalues(src, opts.method)?;
    let shape = LayerShape {
        n: src.n(),
        m: src.m(),
        rf: src.slices(),
    };
    let randomization = match opts.randomize_seed {
        Some(seed) => Some(randomize::randomize(
            src,
            &pooled.evals,
            shape.q(),
            opts.method,
            opts.square_mp,
            seed,
        )?),
        None => None,
    };
    let mut analysis = analyze_eigenvalues(pooled, shape, opts);
    analysis.randomization = randomization;
    Ok(analysis)
}

/// Analyzes an already computed pooled spectrum.
pub fn analyze_eigenvalues(
    pooled: eigen::PooledSpectrum,
    shape: LayerShape,
    opts: &SpectrumOptions,
) -> SpectrumAnalysis {
    let power_law = powerlaw::fit_power_law(&pooled.evals);
    let alpha = power_law.as_ref().ok().map(|p| p.alpha);
    let metrics = metrics::spectral_metrics(&pooled, shape, opts.method, alpha);
    let mp = mp::fit_mp(&pooled.evals, shape.q(), shape.m, opts.square_mp);
    let erg = erg::erg(
        &pooled.evals,
        power_law.as_ref().ok().map(|p| p.num_pl_spikes),
    );
    let phase = phase::classify(
        &phase::PhaseInput {
            evals: &pooled.evals,
            q: shape.q(),
            rank_loss: pooled.rank_loss,
            power_law: power_law.as_ref().ok(),
            mp: mp.as_ref(),
        },
        &opts.thresholds,
    );
    SpectrumAnalysis {
        evals: pooled.evals,
        metrics,
        power_law,
        mp,
        phase,
        warning: warning_for(alpha),
        randomization: None,
        erg,
    }
}

/// Limits the linear algebra (rayon, faer, and OpenBLAS when enabled) to `n` threads. Call once, early.
pub fn set_threads(n: usize) {
    let n = n.max(1);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
    faer::set_global_parallelism(if n == 1 {
        faer::Par::Seq
    } else {
        faer::Par::rayon(n)
    });
    #[cfg(feature = "openblas")]
    lapack::set_threads(n);
}
