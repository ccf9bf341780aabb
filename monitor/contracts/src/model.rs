//! The shared data model: runs, checkpoints, per-layer reports, phases and compact ESDs.
//!
//! Field names follow WeightWatcher 0.7.7's column names where a column exists, so that a user can line
//! htsr's numbers up against the tool they know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A training phase of one layer, after Martin & Mahoney (arXiv 1901.08276), "5+1 phases".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A Marchenko-Pastur bulk and nothing outside it: little learned beyond the initialization.
    RandomLike,
    /// A few eigenvalues just leave the MP bulk edge, lambda_max still near it: learning has begun.
    BleedingOut,
    /// A random bulk plus a few spikes well above its edge: a low-rank signal on noise (Tikhonov-like).
    BulkPlusSpikes,
    /// The bulk decays into a tail with much mass at the edge: correlations that do not condense into spikes.
    BulkDecay,
    /// A power-law ESD (alpha about 2-4) reaching far beyond any MP edge: strongly correlated, well trained.
    HeavyTailed,
    /// A large mass of (near-)zero eigenvalues: the layer lost rank (over-regularized, dead units).
    RankCollapse,
    /// Too few eigenvalues, or no usable fit: no phase can be named.
    Insufficient,
}

impl Phase {
    /// How many phases there are (the length of [`Phase::ALL`] and of [`PhaseCounts`]).
    pub const COUNT: usize = 7;

    /// Every phase in display order; [`Phase::index`] and [`PhaseCounts`] follow it.
    pub const ALL: [Phase; Phase::COUNT] = [
        Phase::RandomLike,
        Phase::BleedingOut,
        Phase::BulkPlusSpikes,
        Phase::BulkDecay,
        Phase::HeavyTailed,
        Phase::RankCollapse,
        Phase::Insufficient,
    ];

    /// The snake_case name used in CSV, JSON and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::RandomLike => "random_like",
            Phase::BleedingOut => "bleeding_out",
            Phase::BulkPlusSpikes => "bulk_plus_spikes",
            Phase::BulkDecay => "bulk_decay",
            Phase::HeavyTailed => "heavy_tailed",
            Phase::RankCollapse => "rank_collapse",
            Phase::Insufficient => "insufficient",
        }
    }

    /// Position in [`Phase::ALL`], used for per-phase counters.
    pub fn index(self) -> usize {
        Phase::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    /// The phase whose [`Phase::as_str`] name is `s` (snake_case, exact match), or None.
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// One sentence for legends and the README: what the phase means.
    pub fn meaning(self) -> &'static str {
        match self {
            Phase::RandomLike => "ESD fits a Marchenko-Pastur bulk: the layer has learned little beyond its initialization",
            Phase::BleedingOut => "eigenvalues start to leave the MP bulk just above its edge: learning has begun",
            Phase::BulkPlusSpikes => "a random bulk plus a few spikes well above its edge: low-rank signal, Tikhonov-like",
            Phase::BulkDecay => "the bulk decays into a tail: correlations that do not condense into spikes",
            Phase::HeavyTailed => "a power-law ESD (alpha about 2-4): strongly correlated, well trained",
            Phase::RankCollapse => "a large mass of zero eigenvalues: the layer is over-regularized",
            Phase::Insufficient => "too few eigenvalues or no usable fit",
        }
    }
}

/// Layers per phase, indexed like [`Phase::ALL`].
pub type PhaseCounts = [u32; Phase::COUNT];

/// Counts the phases of `reports` (layers without a phase are not counted).
pub fn phase_counts<'a>(reports: impl IntoIterator<Item = &'a LayerReport>) -> PhaseCounts {
    let mut counts = [0u32; Phase::COUNT];
    for r in reports {
        if let Some(p) = r.phase() {
            counts[p.index()] += 1;
        }
    }
    counts
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WeightWatcher's `warning` column: over-trained below alpha 2, under-trained above alpha 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Warning {
    /// alpha in [2, 6], or no power-law fit: no warning (an empty `warning` column).
    #[default]
    None,
    /// alpha < 2 (WeightWatcher's `OVER_TRAINED_THRESH`).
    OverTrained,
    /// alpha > 6 (WeightWatcher's `UNDER_TRAINED_THRESH`).
    UnderTrained,
}

impl Warning {
    /// The kebab-case text of WeightWatcher's `warning` column: `over-trained`, `under-trained`, or empty.
    pub fn as_str(self) -> &'static str {
        match self {
            Warning::None => "",
            Warning::OverTrained => "over-trained",
            Warning::UnderTrained => "under-trained",
        }
    }
}

/// How the tensor was read as matrices (WeightWatcher's `layer_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// A 2-D tensor: one matrix as stored (embeddings included).
    Dense,
    /// A 3-D `(out, in, k)` kernel: k unscaled `(out, in)` slices, pooled (an htsr extension; WeightWatcher does not
    /// slice it).
    Conv1d,
    /// A 4-D kernel: kh*kw channel slices scaled by sqrt(1/2) (WeightWatcher's `conv2d_norm`), pooled.
    Conv2d,
    /// Not a layer htsr analyzes (1-D, integer dtype, ...); see the report's reason.
    Other,
}

impl LayerKind {
    /// The snake_case name used in CSV, JSON and on screen (`dense`, `conv1d`, `conv2d`, `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Dense => "dense",
            LayerKind::Conv1d => "conv1d",
            LayerKind::Conv2d => "conv2d",
            LayerKind::Other => "other",
        }
    }
}

/// Whether a layer was analyzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerStatus {
    /// Analyzed, with a power-law fit: metrics, fits, ESD and phase are filled in (the MP fit may still be absent).
    Success,
    /// Read and analyzed, but a fit failed or the weights were unusable (NaN, Inf); `reason` says which.
    Failed,
    /// Deliberately not analyzed (1-D, integer dtype, size limits); `reason` says why.
    Skipped,
    /// Expected but never received: its spectrum was owed by a rank whose spectra file had not arrived when the
    /// daemon gave up waiting; `reason` says which rank.
    Missing,
}

impl LayerStatus {
    /// The snake_case name used in CSV, JSON and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerStatus::Success => "success",
            LayerStatus::Failed => "failed",
            LayerStatus::Skipped => "skipped",
            LayerStatus::Missing => "missing",
        }
    }
}

/// What a checkpoint's layers were computed from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CheckpointSource {
    /// A weight checkpoint: htsr computed the spectra.
    #[default]
    Weights,
    /// Spectra files: the training process computed the eigenvalues (`ranks` files expected, `missing` of them
    /// absent when the daemon gave up waiting).
    Spectra {
        /// Number of ranks (processes) whose spectra files together make the checkpoint.
        ranks: usize,
        /// The ranks whose spectra file never arrived; their layers are `missing`.
        missing: Vec<usize>,
    },
}

/// The power-law fit of the ESD tail (WeightWatcher's default `WWFit`, Clauset et al. 2009).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerLawFit {
    /// Exponent of the power law fitted to the ESD's tail, p(lambda) ~ lambda^-alpha (WeightWatcher `alpha`).
    #[serde(with = "crate::floats::f64_json")]
    pub alpha: f64,
    /// Start of the fitted tail: the eigenvalue chosen by KS minimization (WeightWatcher `xmin`).
    #[serde(with = "crate::floats::f64_json")]
    pub xmin: f64,
    /// Largest eigenvalue in the fit; the law has no upper cut-off (WeightWatcher `xmax`).
    #[serde(with = "crate::floats::f64_json")]
    pub xmax: f64,
    /// Kolmogorov-Smirnov distance between the tail and the fitted law.
    #[serde(rename = "D")]
    #[serde(with = "crate::floats::f64_json")]
    pub d: f64,
    /// Standard error of alpha, (alpha - 1) / sqrt(k), k the number of fitted values from xmin's index up (WW
    /// `WWFit`; equals num_pl_spikes unless xmin is a repeated value).
    #[serde(with = "crate::floats::f64_json")]
    pub sigma: f64,
    /// Tail size: eigenvalues >= xmin.
    pub num_pl_spikes: usize,
}

/// The Marchenko-Pastur bulk fit (WeightWatcher's `mp_fit`), in the layer's original eigenvalue units
/// except `sigma_mp`, which is in unit-mean units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MpFit {
    /// Scale sigma of the fitted MP law, in unit-mean units: about 1 for a random layer (WeightWatcher `sigma_mp`).
    #[serde(with = "crate::floats::f64_json")]
    pub sigma_mp: f64,
    /// Lower edge of the fitted MP bulk, sigma^2 (1 - 1/sqrt(Q))^2, in the layer's eigenvalue units.
    #[serde(with = "crate::floats::f64_json")]
    pub bulk_min: f64,
    /// Upper edge of the fitted MP bulk, sigma^2 (1 + 1/sqrt(Q))^2, in the layer's eigenvalue units.
    #[serde(with = "crate::floats::f64_json")]
    pub bulk_max: f64,
    /// Eigenvalues above bulk_max plus WeightWatcher's sqrt(Tracy-Widom) margin.
    pub num_spikes: usize,
    /// MP soft rank: bulk_max / lambda_max in unit-mean units; near or above 1 for a random layer, near 0 when the
    /// top eigenvalue is far beyond the bulk (WeightWatcher `mp_softrank`).
    #[serde(with = "crate::floats::f64_json")]
    pub mp_softrank: f64,
    /// The unit-mean rescaling factor s = sqrt(n / sum(lambda)); s * W has an ESD of mean 1 (WeightWatcher `W_scale`).
    #[serde(rename = "W_scale")]
    #[serde(with = "crate::floats::f64_json")]
    pub w_scale: f64,
}

/// WeightWatcher's default per-layer metrics (docs/ALGORITHMS.md section 4), column names kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct SpectralMetrics {
    /// Longer side of each matrix (slice), max(rows, cols) (WeightWatcher `N`).
    pub N: usize,
    /// Shorter side of each matrix (slice), min(rows, cols) (WeightWatcher `M`).
    pub M: usize,
    /// Aspect ratio N / M >= 1 (WeightWatcher `Q`).
    #[serde(with = "crate::floats::f64_json")]
    pub Q: f64,
    /// Number of slices pooled into the spectrum: kh*kw for Conv2D, k for Conv1D, 1 for dense (WeightWatcher `rf`).
    pub rf: usize,
    /// Eigenvalues in the pooled spectrum, M * rf (WeightWatcher `num_evals`).
    pub num_evals: usize,
    /// Largest eigenvalue of W^T W, the squared spectral norm (WeightWatcher `lambda_max`).
    #[serde(with = "crate::floats::f64_json")]
    pub lambda_max: f64,
    /// Largest singular value, sqrt(lambda_max) (WeightWatcher `sv_max`).
    #[serde(with = "crate::floats::f64_json")]
    pub sv_max: f64,
    /// The largest over slices of each slice's smallest singular value (WeightWatcher `sv_min`, quirk kept).
    #[serde(with = "crate::floats::f64_json")]
    pub sv_min: f64,
    /// Sum of all eigenvalues: the squared Frobenius norm, summed over slices (WeightWatcher `norm`).
    #[serde(with = "crate::floats::f64_json")]
    pub norm: f64,
    /// log10(norm) (WeightWatcher `log_norm`).
    #[serde(with = "crate::floats::f64_json")]
    pub log_norm: f64,
    /// Equal to lambda_max: the squared spectral norm (WeightWatcher `spectral_norm`).
    #[serde(with = "crate::floats::f64_json")]
    pub spectral_norm: f64,
    /// log10(lambda_max) (WeightWatcher `log_spectral_norm`).
    #[serde(with = "crate::floats::f64_json")]
    pub log_spectral_norm: f64,
    /// alpha * log10(lambda_max); NaN when the power-law fit failed.
    #[serde(with = "crate::floats::f64_json")]
    pub alpha_weighted: f64,
    /// log10 of sum(lambda^alpha); NaN when the power-law fit failed.
    #[serde(with = "crate::floats::f64_json")]
    pub log_alpha_norm: f64,
    /// norm / lambda_max, 0 when lambda_max is 0 (WeightWatcher `stable_rank`).
    #[serde(with = "crate::floats::f64_json")]
    pub stable_rank: f64,
    /// Eigenvalues above the numerical-zero level of docs/ALGORITHMS.md section 2 (WeightWatcher `matrix_rank`).
    pub matrix_rank: usize,
    /// Eigenvalues at or below each slice's numerical-zero level, summed over slices (WeightWatcher `rank_loss`).
    pub rank_loss: usize,
    /// Eigenvalues below WeightWatcher's absolute tolerance 1e-6 (WeightWatcher `weak_rank_loss`).
    pub weak_rank_loss: usize,
    /// Generalized matrix entropy, -sum p ln p / ln(matrix_rank) with p = lambda / norm: near 1 for a flat spectrum,
    /// lower when a few eigenvalues dominate; NaN when norm is 0 or not finite (WeightWatcher `entropy`).
    #[serde(with = "crate::floats::f64_json")]
    pub entropy: f64,
}

/// The determinant condition of the SETOL theory (WeightWatcher 0.7.7's `analyze(ERG=True)`, also `detX=True`):
/// the smallest top tail of the unit-mean ESD whose eigenvalue product falls below 1, beside the power-law tail.
/// Field names are WeightWatcher's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct Erg {
    /// Size of that tail (WeightWatcher's `detX_num`, equal to its `num_ERG_spikes`).
    pub detX_num: usize,
    /// The tail's smallest eigenvalue, in the layer's units: where the determinant condition puts the tail's start.
    #[serde(with = "crate::floats::f64_json")]
    pub detX_val: f64,
    /// The same eigenvalue in unit-mean units (WeightWatcher's name, the wrong way round).
    #[serde(with = "crate::floats::f64_json")]
    pub detX_val_unrescaled: f64,
    /// `detX_num - num_pl_spikes`: how much larger the determinant tail is than the power-law tail; `None` when the
    /// power-law fit failed (WeightWatcher then computes it with num_pl_spikes = -1).
    pub ERG_gap: Option<i64>,
}

/// Results of `--randomize` (WeightWatcher's `randomize=True`): the element-shuffled ESD compared to the real one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Randomization {
    /// Seed of the ChaCha8 stream that drives every shuffle of this layer, so results repeat.
    pub seed: u64,
    /// Largest eigenvalue of the pooled shuffled replicas (WeightWatcher `max_rand_eval`).
    #[serde(with = "crate::floats::f64_json")]
    pub max_rand_eval: f64,
    /// Jensen-Shannon distance between the sorted real and shuffled eigenvalue vectors read as probability vectors,
    /// in [0, sqrt(ln 2)] (WeightWatcher `rand_distance`).
    #[serde(with = "crate::floats::f64_json")]
    pub rand_distance: f64,
    /// max(shuffled eigenvalues) / lambda_max, a soft rank with the shuffled top eigenvalue as the bulk edge
    /// (WeightWatcher `ww_softrank`).
    #[serde(with = "crate::floats::f64_json")]
    pub ww_softrank: f64,
    /// lambda_max - max(shuffled eigenvalues) (WeightWatcher `ww_maxdist`).
    #[serde(with = "crate::floats::f64_json")]
    pub ww_maxdist: f64,
    /// Spikes of the shuffled ESD outside its own MP bulk: correlation traps.
    pub rand_num_spikes: usize,
    /// sigma_mp of the MP fit to the shuffled spectrum, in unit-mean units; NaN when that fit is impossible.
    #[serde(with = "crate::floats::f64_json")]
    pub rand_sigma_mp: f64,
    /// Upper MP bulk edge of the shuffled spectrum, in the layer's eigenvalue units; NaN without a fit.
    #[serde(with = "crate::floats::f64_json")]
    pub rand_bulk_max: f64,
    /// Lower MP bulk edge of the shuffled spectrum, in the layer's eigenvalue units; NaN without a fit.
    #[serde(with = "crate::floats::f64_json")]
    pub rand_bulk_min: f64,
    /// MP soft rank of the shuffled spectrum; NaN without a fit.
    #[serde(with = "crate::floats::f64_json")]
    pub rand_mp_softrank: f64,
    /// Unit-mean rescaling factor of the shuffled spectrum (WeightWatcher `rand_W_scale`).
    #[serde(rename = "rand_W_scale")]
    #[serde(with = "crate::floats::f64_json")]
    pub rand_w_scale: f64,
}

/// The numbers behind a phase label, so that a user can see why a layer got it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseEvidence {
    /// Power-law alpha, NaN when the fit failed.
    #[serde(with = "crate::floats::f64_json")]
    pub alpha: f64,
    /// KS distance of the power-law fit, NaN when the fit failed.
    #[serde(rename = "D")]
    #[serde(with = "crate::floats::f64_json")]
    pub d: f64,
    /// Tail size of the power-law fit (its num_pl_spikes), 0 when the fit failed.
    pub n_tail: usize,
    /// Eigenvalues above the MP bulk edge plus margin.
    pub spikes: usize,
    /// spikes / num_evals.
    #[serde(with = "crate::floats::f64_json")]
    pub frac_outside: f64,
    /// Fraction of the outside eigenvalues that hug the bulk edge, in (edge, 1.5 * bulk_max].
    #[serde(with = "crate::floats::f64_json")]
    pub edge_mass: f64,
    /// MP soft rank, as in [`MpFit::mp_softrank`]; NaN without an MP fit.
    #[serde(with = "crate::floats::f64_json")]
    pub mp_softrank: f64,
    /// Stable rank scaled so that a Marchenko-Pastur random matrix gives about 1.
    #[serde(with = "crate::floats::f64_json")]
    pub normalized_stable_rank: f64,
    /// Fraction of eigenvalues that are numerically zero (relative to lambda_max).
    #[serde(with = "crate::floats::f64_json")]
    pub zero_fraction: f64,
}

/// A layer's phase with the evidence for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseVerdict {
    /// The phase assigned to the layer.
    pub phase: Phase,
    /// Sub-tag of heavy_tailed for alpha < 2 (WeightWatcher's "over-trained").
    pub very_heavy_tailed: bool,
    /// The quantities the classifier's rules read (docs/PHASES.md).
    pub evidence: PhaseEvidence,
}

/// A compact ESD: a histogram over log10(lambda) with log-spaced bins, plus what is needed to draw the fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsdHistogram {
    /// log10 of the lower edge of the first bin.
    #[serde(with = "crate::floats::f64_json")]
    pub log10_lo: f64,
    /// log10 of the upper edge of the last bin.
    #[serde(with = "crate::floats::f64_json")]
    pub log10_hi: f64,
    /// Counts per bin, equal widths in log10 space.
    pub counts: Vec<u32>,
    /// Eigenvalues at or below the drawing floor (numerically zero), not in any bin.
    pub zeros: u32,
    /// Largest eigenvalue, in the layer's units.
    #[serde(with = "crate::floats::f64_json")]
    pub lambda_max: f64,
    /// Start of the power-law tail (the fit's xmin); None when the fit failed.
    #[serde(default, with = "crate::floats::opt_f64_json")]
    pub xmin: Option<f64>,
    /// Power-law exponent, for drawing the fitted line from xmin; None when the fit failed.
    #[serde(default, with = "crate::floats::opt_f64_json")]
    pub alpha: Option<f64>,
    /// Lower edge of the fitted MP bulk, in the layer's units; None without an MP fit.
    #[serde(default, with = "crate::floats::opt_f64_json")]
    pub bulk_min: Option<f64>,
    /// Upper edge of the fitted MP bulk, in the layer's units; None without an MP fit.
    #[serde(default, with = "crate::floats::opt_f64_json")]
    pub bulk_max: Option<f64>,
    /// Where the determinant (ERG) condition puts the tail's start (WeightWatcher's `detX_val`).
    #[serde(default, with = "crate::floats::opt_f64_json")]
    pub detx_val: Option<f64>,
}

/// Everything htsr knows about one layer at one checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// The full tensor name without a trailing `.weight`, exactly as the checkpoint spells it.
    pub name: String,
    /// WeightWatcher's `layer_id` for this tensor: the number WeightWatcher 0.7.7 gives it when handed the same
    /// checkpoint (see `htsr_engine::layer_ids`), so that `layers=[ids]` copied from WeightWatcher code selects
    /// the same layers. Absent in reports stored before htsr numbered them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_id: Option<u32>,
    /// The tensor name in the file.
    pub tensor: String,
    /// The tensor's shape as stored, outermost axis first.
    pub shape: Vec<usize>,
    /// The tensor's dtype in safetensors' spelling (`F32`, `BF16`, ...); `F64` for in-memory matrices.
    pub dtype: String,
    /// How the tensor was read as matrices (WeightWatcher `layer_type`).
    pub layer_type: LayerKind,
    /// Whether the layer was analyzed; see `reason` when it was not (or failed).
    pub status: LayerStatus,
    /// Why a layer was skipped or failed; None on success.
    pub reason: Option<String>,
    /// WeightWatcher's default metrics; None when the layer was not analyzed (skipped, missing, NaN or Inf weights).
    pub metrics: Option<SpectralMetrics>,
    /// The power-law fit of the ESD tail; None when the layer was not analyzed or the fit failed.
    pub power_law: Option<PowerLawFit>,
    /// The Marchenko-Pastur bulk fit; None when the layer was not analyzed or no fit was possible.
    pub mp: Option<MpFit>,
    /// The randomization results; present only when randomization was requested (`--randomize`).
    pub randomization: Option<Randomization>,
    /// The determinant (ERG) condition; absent in reports stored before htsr computed it.
    #[serde(default)]
    pub erg: Option<Erg>,
    /// The phase and the evidence for it; None when the layer was not analyzed.
    pub phase: Option<PhaseVerdict>,
    /// WeightWatcher's `warning` column, from alpha.
    pub warning: Warning,
    /// The compact ESD for drawing; None when the layer was not analyzed.
    pub esd: Option<EsdHistogram>,
    /// Set when the tensor's bytes equal the previous checkpoint's and that report was reused.
    pub reused_from_step: Option<u64>,
    /// Seconds spent on this layer.
    #[serde(with = "crate::floats::f64_json")]
    pub seconds: f64,
}

impl LayerReport {
    /// The tensor's shape as every view writes it: `768x3072`.
    pub fn shape_text(&self) -> String {
        self.shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x")
    }

    /// A report with nothing analyzed yet: skipped, no reason, no metrics, fits or phase. The engine fills it in.
    pub fn unanalyzed(name: &str, tensor: &str, shape: &[usize], dtype: &str) -> Self {
        LayerReport {
            name: name.to_string(),
            layer_id: None,
            tensor: tensor.to_string(),
            shape: shape.to_vec(),
            dtype: dtype.to_string(),
            layer_type: LayerKind::Other,
            status: LayerStatus::Skipped,
            reason: None,
            metrics: None,
            power_law: None,
            mp: None,
            randomization: None,
            erg: None,
            phase: None,
            warning: Warning::None,
            esd: None,
            reused_from_step: None,
            seconds: 0.0,
        }
    }

    /// The power-law exponent alpha, or None without a power-law fit.
    pub fn alpha(&self) -> Option<f64> {
        self.power_law.as_ref().map(|p| p.alpha)
    }

    /// The layer's phase, or None when it was not analyzed.
    pub fn phase(&self) -> Option<Phase> {
        self.phase.as_ref().map(|v| v.phase)
    }
}

/// How the daemon recognizes a checkpoint file it has seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// The file's path relative to the watched directory.
    pub path: String,
    /// File size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Hash of the safetensors header bytes (hex), cheap and stable across renames.
    pub header_hash: String,
}

/// Whether a checkpoint could be read at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointStatus {
    /// Every layer was read; individual layers may still be failed or skipped.
    Complete,
    /// The file could not be read as a checkpoint at all; `errors` says why.
    Failed,
}

/// One analyzed checkpoint (its layers are stored beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// The run the checkpoint belongs to (its directory under the watched one, or `htsr.run`).
    pub run: String,
    /// The training step (`htsr.step`, else the last number in the file name).
    pub step: u64,
    /// The file as the daemon saw it when it read it.
    pub identity: FileIdentity,
    /// The file's `htsr.*` metadata (and any other `__metadata__` strings).
    pub metadata: BTreeMap<String, String>,
    /// Unix seconds when the analysis finished.
    #[serde(with = "crate::floats::f64_json")]
    pub analyzed_at: f64,
    /// Wall-clock seconds the analysis of the whole checkpoint took (0 for a failed one).
    #[serde(with = "crate::floats::f64_json")]
    pub analysis_seconds: f64,
    /// Whether the file could be read as a checkpoint at all.
    pub status: CheckpointStatus,
    /// Why the checkpoint failed; empty for a complete one.
    pub errors: Vec<String>,
    /// Number of layer reports stored with the checkpoint.
    pub layer_count: usize,
    /// Layers per phase, indexed like [`Phase::ALL`].
    pub phase_counts: PhaseCounts,
    /// Weights or spectra files (absent in records stored before htsr read spectra files: weights).
    #[serde(default)]
    pub source: CheckpointSource,
}

/// What the training loop said about a checkpoint in its `htsr.*` metadata (the hooks and callbacks write it): the
/// numbers users line alpha up against.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// `htsr.epoch`.
    pub epoch: Option<u64>,
    /// `htsr.loss` (finite values only).
    pub loss: Option<f64>,
    /// `htsr.lr` (finite values only).
    pub lr: Option<f64>,
    /// `htsr.batch_size`.
    pub batch_size: Option<u64>,
}

impl TrainingInfo {
    /// Reads the training numbers from a checkpoint's metadata; a value that does not parse is left out.
    pub fn from_metadata(metadata: &BTreeMap<String, String>) -> Self {
        use crate::naming::keys;
        let float = |k: &str| {
            metadata
                .get(k)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
        };
        // A float-looking integer ("32.0", as Python's str(float) writes it) is accepted when it is whole.
        let int = |k: &str| {
            metadata.get(k).and_then(|v| {
                let v = v.trim();
                v.parse::<u64>().ok().or_else(|| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|f| {
                            f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 2f64.powi(53)
                        })
                        .map(|f| f as u64)
                })
            })
        };
        TrainingInfo {
            epoch: int(keys::EPOCH),
            loss: float(keys::LOSS),
            lr: float(keys::LR),
            batch_size: int(keys::BATCH_SIZE),
        }
    }
}

impl CheckpointRecord {
    /// The training loop's numbers for this checkpoint (loss, learning rate, batch size, epoch).
    pub fn training(&self) -> TrainingInfo {
        TrainingInfo::from_metadata(&self.metadata)
    }
}
