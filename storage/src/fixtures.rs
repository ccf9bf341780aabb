//! Synthetic but realistic records for tests, benchmarks, the crash-test writer and other crates' tests.
//!
//! Deterministic (a seeded splitmix64), with every field filled the way the engine fills it, including a
//! 96-bin ESD, so that sizes and timings measured on them mean something.

use std::collections::BTreeMap;

use htsr_contracts::*;

/// A tiny deterministic generator, so that the library needs no `rand` dependency.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator whose stream is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }
    /// The next 64 uniformly distributed bits (splitmix64).
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` positive eigenvalues with a heavy tail (a Pareto-like sample), deterministic in `seed`.
pub fn eigenvalues(n: usize, seed: u64) -> Vec<f64> {
    let mut g = SplitMix::new(seed);
    let mut v: Vec<f64> = (0..n)
        .map(|_| 0.05 * (1.0 - g.unit()).powf(-1.0 / 2.5))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// A full successful report for `name`, as the engine would produce it: metrics, both fits, phase and evidence,
/// and a 96-bin ESD. `seed` varies the numbers (use e.g. layer index * 1_000_003 + step).
// Long because it spells out every field of a full report, in one literal that reads like the record.
pub fn layer_report(name: &str, seed: u64) -> LayerReport {
    let mut g = SplitMix::new(seed);
    let n = 256 + (g.next_u64() % 768) as usize;
    let m = n * (1 + (g.next_u64() % 4) as usize);
    let evals = eigenvalues(n.min(512), seed ^ 0xA5A5);
    let lambda_max = *evals.last().unwrap_or(&1.0);
    let alpha = 1.5 + 5.0 * g.unit();
    let xmin = evals[evals.len() / 2];
    let bulk_max = evals[evals.len() * 3 / 4];
    let bulk_min = evals[0];
    let phase = Phase::ALL[(g.next_u64() % 6) as usize];
    let mut esd = EsdHistogram::from_eigenvalues(&evals, 96);
    esd.xmin = Some(xmin);
    esd.alpha = Some(alpha);
    esd.detx_val = Some(xmin * 0.8);
    esd.bulk_min = Some(bulk_min);
    esd.bulk_max = Some(bulk_max);
    let num_spikes = (g.next_u64() % 40) as usize;
    let num_pl_spikes = evals.len() / 2;
    LayerReport {
        layer_id: None,
        name: name.to_string(),
        tensor: format!("{name}.weight"),
        shape: vec![m, n],
        dtype: "F32".to_string(),
        layer_type: LayerKind::Dense,
        status: LayerStatus::Success,
        reason: None,
        metrics: Some(SpectralMetrics {
            N: m,
            M: n,
            Q: m as f64 / n as f64,
            rf: 1,
            num_evals: n,
            lambda_max,
            sv_max: lambda_max.sqrt(),
            sv_min: bulk_min.sqrt(),
            norm: 10.0 * g.unit() + 1.0,
            log_norm: g.unit(),
            spectral_norm: lambda_max,
            log_spectral_norm: lambda_max.log10(),
            alpha_weighted: alpha * lambda_max.log10(),
            log_alpha_norm: g.unit() * 3.0,
            stable_rank: 1.0 + 50.0 * g.unit(),
            matrix_rank: n,
            rank_loss: 0,
            weak_rank_loss: (g.next_u64() % 5) as usize,
            entropy: g.unit(),
        }),
        power_law: Some(PowerLawFit {
            alpha,
            xmin,
            xmax: lambda_max,
            d: 0.02 + 0.1 * g.unit(),
            sigma: (alpha - 1.0) / (num_pl_spikes as f64).sqrt(),
            num_pl_spikes,
        }),
        mp: Some(MpFit {
            sigma_mp: 0.5 + g.unit(),
            bulk_min,
            bulk_max,
            num_spikes,
            mp_softrank: bulk_max / lambda_max,
            w_scale: 0.01 + 0.1 * g.unit(),
        }),
        randomization: None,
        erg: Some(Erg {
            detX_num: num_pl_spikes + 3,
            detX_val: lambda_max * 0.1,
            detX_val_unrescaled: 0.4,
            ERG_gap: Some(3),
        }),
        phase: Some(PhaseVerdict {
            phase,
            very_heavy_tailed: phase == Phase::HeavyTailed && alpha < 2.0,
            evidence: PhaseEvidence {
                alpha,
                d: 0.05,
                n_tail: num_pl_spikes,
                spikes: num_spikes,
                frac_outside: num_spikes as f64 / n as f64,
                edge_mass: g.unit(),
                mp_softrank: bulk_max / lambda_max,
                normalized_stable_rank: g.unit() * 2.0,
                zero_fraction: 0.0,
            },
        }),
        warning: if alpha < 2.0 {
            Warning::OverTrained
        } else if alpha > 6.0 {
            Warning::UnderTrained
        } else {
            Warning::None
        },
        esd: Some(esd),
        reused_from_step: None,
        seconds: 0.01 + g.unit(),
    }
}

/// A layer the engine skipped (a 1-D bias): no metrics, no fits, no phase.
pub fn skipped_report(name: &str) -> LayerReport {
    LayerReport {
        reason: Some("1-D tensor".to_string()),
        ..LayerReport::unanalyzed(name, &format!("{name}.weight"), &[64], "F32")
    }
}

/// A checkpoint record for (run, step) whose counters match `layers`.
pub fn checkpoint_record(run: &str, step: u64, layers: &[LayerReport]) -> CheckpointRecord {
    let mut phase_counts = [0u32; htsr_contracts::Phase::COUNT];
    for l in layers {
        if let Some(p) = l.phase() {
            phase_counts[p.index()] += 1;
        }
    }
    let mut metadata = BTreeMap::new();
    metadata.insert("htsr.step".to_string(), step.to_string());
    metadata.insert("htsr.run".to_string(), run.to_string());
    CheckpointRecord {
        run: run.to_string(),
        step,
        identity: FileIdentity {
            path: format!("/ckpt/{run}/step-{step:08}.safetensors"),
            size: 1_000_000 + step,
            mtime_ns: 1_700_000_000_000_000_000 + step as i128,
            header_hash: format!("{:016x}", SplitMix::new(step).next_u64()),
        },
        metadata,
        analyzed_at: 1_700_000_000.0 + step as f64,
        analysis_seconds: 1.5,
        status: CheckpointStatus::Complete,
        errors: Vec::new(),
        layer_count: layers.len(),
        phase_counts,
        source: Default::default(),
    }
}

/// Layer names shaped like a transformer's: `model.layers.{i}.mlp.up_proj`, ...
pub fn layer_name(i: usize) -> String {
    const KINDS: [&str; 5] = [
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    ];
    format!(
        "model.layers.{}.{}",
        i / KINDS.len(),
        KINDS[i % KINDS.len()]
    )
}

/// A whole checkpoint: record plus `n_layers` full reports.
pub fn checkpoint(run: &str, step: u64, n_layers: usize) -> (CheckpointRecord, Vec<LayerReport>) {
    let layers: Vec<LayerReport> = (0..n_layers)
        .map(|i| layer_report(&layer_name(i), (i as u64).wrapping_mul(1_000_003) ^ step))
        .collect();
    (checkpoint_record(run, step, &layers), layers)
}

/// A tmpfs mounted over a folder for a test (which then needs root), unmounted when dropped: a disk that fills
/// at a known size, or one made read-only.
#[derive(Debug)]
pub struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a `size` tmpfs (`mount -o size=...`: "2m") over `dir`, creating it. Panics, saying why, when it
    /// cannot (not root).
    pub fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("creating the mount point");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs and needs root (scripts/test runs it as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }

    /// Changes the size of the mounted tmpfs (a full disk gets room again).
    pub fn resize(&self, size: &str) {
        self.remount(&format!("size={size}"));
    }

    /// Makes the mounted tmpfs read-only, what it holds kept: nothing can be created in it, whatever the user.
    pub fn make_read_only(&self) {
        self.remount("ro");
    }

    fn remount(&self, options: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}
