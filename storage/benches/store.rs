//! Store benchmarks at dashboard scale: 500 layers x 2000 checkpoints of full reports (96-bin ESDs).
//!
//! The store is built once and kept under target/ (it takes minutes); sizes come from the environment:
//!   HTSR_BENCH_LAYERS (default 500), HTSR_BENCH_CHECKPOINTS (default 2000).
//! Run: cargo bench -p htsr-storage --bench store
//! Quick: HTSR_BENCH_LAYERS=50 HTSR_BENCH_CHECKPOINTS=200 cargo bench -p htsr-storage --bench store

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use htsr_contracts::LayerReport;
use htsr_storage::{fixtures, stats::human_bytes, Store};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reports for one checkpoint, drawn from a pool of variants per layer, so that building 1M rows spends its
/// time in the store rather than in the fixture generator. Every write still encodes every report.
fn layers_for(pool: &[Vec<LayerReport>], step: u64) -> Vec<LayerReport> {
    pool.iter()
        .enumerate()
        .map(|(i, v)| v[(step as usize + i) % v.len()].clone())
        .collect()
}

fn build_store(layers: usize, checkpoints: usize) -> (Store, PathBuf, Vec<Vec<LayerReport>>) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace")
                .join("target")
        });
    let dir = target.join(format!("htsr-bench-store-{layers}x{checkpoints}"));
    let done = dir.with_extension("done");
    let pool: Vec<Vec<LayerReport>> = (0..layers)
        .map(|i| {
            (0..8)
                .map(|v| fixtures::layer_report(&fixtures::layer_name(i), (i * 8 + v) as u64))
                .collect()
        })
        .collect();
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let (store, _) = Store::open(&dir).expect("open bench store");
        let t = Instant::now();
        for step in 0..checkpoints as u64 {
            let reports = layers_for(&pool, step);
            let record = fixtures::checkpoint_record("bench", step * 100, &reports);
            let raw: Vec<(String, Vec<f64>)> = reports
                .iter()
                .take(20)
                .map(|r| (r.name.clone(), fixtures::eigenvalues(512, step)))
                .collect();
            store
                .write_checkpoint(&record, &reports, &raw)
                .expect("write");
            if step % 200 == 199 {
                eprintln!(
                    "built {}/{checkpoints} checkpoints in {:.0?}",
                    step + 1,
                    t.elapsed()
                );
            }
        }
        drop(store);
        std::fs::write(&done, b"").expect("marker");
        eprintln!(
            "built {layers} x {checkpoints} store in {:.1?}",
            t.elapsed()
        );
    }
    let (store, _) = Store::open(&dir).expect("reopen bench store");
    (store, dir, pool)
}

fn benches(c: &mut Criterion) {
    let layers = env_usize("HTSR_BENCH_LAYERS", 500);
    let checkpoints = env_usize("HTSR_BENCH_CHECKPOINTS", 2000);
    let (store, dir, pool) = build_store(layers, checkpoints);

    let stats = store.stats().expect("stats");
    let cells = (layers * checkpoints) as f64;
    let raw = stats
        .trees
        .iter()
        .find(|t| t.name == "raw_eigenvalues")
        .map_or(0, |t| t.bytes);
    eprintln!("{stats}");
    eprintln!(
        "size per layer per checkpoint without raw eigenvalues: {:.0} B logical (keys + values); \
         on disk (all trees, sled overhead and raw values included): {:.0} B; store {} on disk",
        (stats.logical_bytes - raw) as f64 / cells,
        stats.on_disk_bytes as f64 / cells,
        human_bytes(stats.on_disk_bytes),
    );
    eprintln!("store at {}", dir.display());

    let mut g = c.benchmark_group(format!("store_{layers}x{checkpoints}"));
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));

    let layer = fixtures::layer_name(layers / 2);
    g.bench_function("trajectory_one_layer", |b| {
        b.iter(|| {
            let t = store.trajectory("bench", &layer).expect("trajectory");
            assert_eq!(t.len(), checkpoints);
            t
        })
    });
    g.bench_function("phase_grid_200_columns", |b| {
        b.iter(|| {
            let grid = store.phase_grid("bench", Some(200), None).expect("grid");
            assert_eq!(grid.cells.len(), layers);
            grid
        })
    });
    // Each iteration writes a new, newer checkpoint (and compacts the previous latest's raw eigenvalues).
    let mut step = (checkpoints as u64 + 1_000_000) * 100;
    g.bench_function("write_checkpoint", |b| {
        b.iter(|| {
            step += 100;
            let reports = layers_for(&pool, step);
            let record = fixtures::checkpoint_record("bench-writes", step, &reports);
            let raw: Vec<(String, Vec<f64>)> = reports
                .iter()
                .take(20)
                .map(|r| (r.name.clone(), fixtures::eigenvalues(512, step)))
                .collect();
            store
                .write_checkpoint(&record, &reports, &raw)
                .expect("write");
        })
    });
    g.finish();
}

criterion_group!(store_benches, benches);
criterion_main!(store_benches);
