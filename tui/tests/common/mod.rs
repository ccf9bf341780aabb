//! Stores with known contents, built on real sled databases in temporary directories.

#![allow(dead_code)]

use htsr_contracts::{LayerReport, LayerStatus, Phase, Warning};
use htsr_storage::{fixtures, Store};
use tempfile::TempDir;

pub fn open(dir: &TempDir) -> Store {
    Store::open(dir.path().join("store")).expect("open store").0
}

/// A successful report with the given alpha and phase; everything else from the deterministic fixture.
pub fn report(name: &str, seed: u64, alpha: f64, phase: Phase) -> LayerReport {
    let mut r = fixtures::layer_report(name, seed);
    let pl = r.power_law.as_mut().unwrap();
    pl.alpha = alpha;
    pl.d = 0.05;
    r.esd.as_mut().unwrap().alpha = Some(alpha);
    let v = r.phase.as_mut().unwrap();
    v.phase = phase;
    v.evidence.alpha = alpha;
    v.very_heavy_tailed = phase == Phase::HeavyTailed && alpha < 2.0;
    r.mp.as_mut().unwrap().num_spikes = 7;
    r.mp.as_mut().unwrap().mp_softrank = 0.25;
    r.warning = if alpha < 2.0 {
        Warning::OverTrained
    } else if alpha > 6.0 {
        Warning::UnderTrained
    } else {
        Warning::None
    };
    r
}

pub fn failed(name: &str, reason: &str) -> LayerReport {
    let mut r = fixtures::skipped_report(name);
    r.status = LayerStatus::Failed;
    r.shape = vec![512, 256];
    r.reason = Some(reason.to_string());
    r
}

pub fn write(store: &Store, run: &str, step: u64, layers: &[LayerReport]) {
    let record = fixtures::checkpoint_record(run, step, layers);
    store
        .write_checkpoint(&record, layers, &[])
        .expect("write checkpoint");
}

/// The layers of a small CNN-like model at checkpoint `k` (0-based) of `run`, with known trajectories:
/// - `features.0` (conv) is heavy_tailed, alpha falling 4.0 -> 2.9;
/// - `features.3` falls below alpha 2 from k = 8 on: over-trained;
/// - `classifier.1` is heavy_tailed until k = 7, then bulk_decay: it "left heavy_tailed at step 900";
/// - `classifier.4` is in rank collapse from k = 10;
/// - `classifier.4.bias` is skipped (1-D), `features.6` failed (NaN weights).
pub fn cnn_layers(k: u64, run_shift: f64) -> Vec<LayerReport> {
    let kf = k as f64;
    let seed = |i: u64| i * 1_000 + k;
    vec![
        report(
            "features.0",
            seed(0),
            4.0 - 0.1 * kf + run_shift,
            Phase::HeavyTailed,
        ),
        report(
            "features.3",
            seed(1),
            if k >= 8 {
                1.8 - 0.02 * kf
            } else {
                3.2 - 0.15 * kf
            } + run_shift,
            if k < 2 {
                Phase::BleedingOut
            } else {
                Phase::HeavyTailed
            },
        ),
        report(
            "classifier.1",
            seed(2),
            if k < 8 { 3.5 } else { 5.0 } + run_shift,
            if k < 3 {
                Phase::BulkPlusSpikes
            } else if k < 8 {
                Phase::HeavyTailed
            } else {
                Phase::BulkDecay
            },
        ),
        report(
            "classifier.4",
            seed(3),
            6.5 - 0.05 * kf + run_shift,
            if k >= 10 {
                Phase::RankCollapse
            } else {
                Phase::RandomLike
            },
        ),
        fixtures::skipped_report("classifier.4.bias"),
        failed("features.6", "non-finite weights (NaN)"),
    ]
}

/// Two runs of a batch-size sweep, 12 checkpoints each at steps 100, 200, ..., 1200.
pub fn sweep_store(dir: &TempDir) -> Store {
    let store = open(dir);
    for (run, shift) in [("bs32", 0.0), ("bs256", 0.6)] {
        for k in 0..12u64 {
            write(&store, run, (k + 1) * 100, &cnn_layers(k, shift));
        }
    }
    store
}

/// One run of `n` checkpoints of 4 layers whose phases move through every stage: needs downsampling.
pub fn long_store(dir: &TempDir, n: u64) -> Store {
    let store = open(dir);
    let stage = |k: u64, lag: u64| -> Phase {
        let stages = [
            Phase::RandomLike,
            Phase::BleedingOut,
            Phase::BulkPlusSpikes,
            Phase::BulkDecay,
            Phase::HeavyTailed,
        ];
        stages[(((k + lag) * 5) / (n + lag)).min(4) as usize]
    };
    for k in 0..n {
        let layers: Vec<LayerReport> = (0..4u64)
            .map(|i| {
                let alpha = 6.0 - 3.5 * (k as f64 / n as f64) + 0.3 * i as f64;
                report(
                    &format!("blocks.{i}.mlp"),
                    i * 7 + k,
                    alpha,
                    stage(k, i * n / 8),
                )
            })
            .collect();
        write(&store, "long", k * 10, &layers);
    }
    store
}
