//! What a checkpoint costs in spectra mode against weights mode, on the CPU, for the MLP example's model and a
//! ~100M-parameter model (BERT-base shapes).
//!
//! For each model and mode, two figures:
//! - `.../training_thread`: `hook.checkpoint()` with the writer caught up (flushed outside the timed region): what
//!   the training step pays. In spectra mode on the CPU this is the same snapshot as in weights mode; the
//!   eigenvalues are computed on the writer thread.
//! - `.../until_written`: `hook.checkpoint()` then `hook.flush()`: until the file is durable (weights: serialize,
//!   fsync, rename; spectra: the engine's Gram matrices and eigenvalues of every layer, then a small file).
//! - `spectra_on_device/training_thread` (MLP only): spectra mode with `spectra_on_device(true)` on a CPU tensor:
//!   the device path (libtorch Gram + `linalg_eigvalsh` on the training thread) run where there is no GPU, to show
//!   why the CPU default defers to the writer thread.
//!
//! Run: `cargo bench -p htsr-tch-hook --bench spectra -- --warm-up-time 1 --measurement-time 3`
//! (`HTSR_BENCH_THREADS`, default 2: the threads of libtorch and of the engine).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use htsr_tch_hook::{HtsrHook, Mode, StepInfo};
use tch::nn;
use tch::Device;

/// The MLP example's weights (examples/src/bin/mlp.rs: 40-256-256-10).
fn mlp_example() -> nn::VarStore {
    model(&[("fc1", 256, 40), ("fc2", 256, 256), ("fc3", 10, 256)])
}

/// BERT-base's weight matrices (12 layers of q, k, v, o 768x768 and the 3072x768 feed-forward pair, plus the
/// 30522x768 word embeddings): 108.3 M parameters in 73 matrices.
fn bert_base() -> nn::VarStore {
    let mut shapes: Vec<(String, i64, i64)> = vec![("embeddings".into(), 30522, 768)];
    for l in 0..12 {
        for m in ["q", "k", "v", "o"] {
            shapes.push((format!("layer{l}_{m}"), 768, 768));
        }
        shapes.push((format!("layer{l}_ffn_in"), 3072, 768));
        shapes.push((format!("layer{l}_ffn_out"), 768, 3072));
    }
    let refs: Vec<(&str, i64, i64)> = shapes
        .iter()
        .map(|(n, r, c)| (n.as_str(), *r, *c))
        .collect();
    model(&refs)
}

fn model(shapes: &[(&str, i64, i64)]) -> nn::VarStore {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    for (name, r, c) in shapes {
        let _ = root.randn(name, &[*r, *c], 0.0, 0.02);
    }
    vs
}

fn hook(dir: &std::path::Path, run: &str, mode: Mode, on_device: bool) -> HtsrHook {
    HtsrHook::builder()
        .dir(dir)
        .run(run)
        .every(1)
        .keep_last(2)
        .mode(mode)
        .spectra_on_device(on_device)
        .build()
        .unwrap()
}

/// Times `iters` checkpoints, each started with the writer idle; with `until_written` the flush is timed too.
fn checkpoints(
    hook: &mut HtsrHook,
    vs: &nn::VarStore,
    step: &mut u64,
    iters: u64,
    until_written: bool,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        hook.flush().unwrap();
        *step += 1;
        let t0 = Instant::now();
        let out = hook
            .checkpoint(*step, vs, StepInfo::new().loss(1.0))
            .unwrap();
        if until_written {
            hook.flush().unwrap();
        }
        total += t0.elapsed();
        std::hint::black_box(out);
    }
    total
}

fn bench(c: &mut Criterion) {
    let threads: usize = std::env::var("HTSR_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    tch::set_num_threads(threads as i32);
    htsr_engine::spectrum::set_threads(threads);
    tch::manual_seed(0);
    let tmp = tempfile::tempdir().unwrap();
    for (name, vs, samples) in [
        ("mlp_example", mlp_example(), 50),
        ("bert_base_108M", bert_base(), 10),
    ] {
        let params: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        eprintln!("{name}: {params} parameters, {threads} threads");
        let mut g = c.benchmark_group(format!("spectra_vs_weights/{name}"));
        g.sample_size(samples);
        for (label, mode) in [("weights", Mode::Weights), ("spectra", Mode::Spectra)] {
            let mut h = hook(tmp.path(), &format!("{name}-{label}"), mode, false);
            let mut step = 0;
            for until_written in [false, true] {
                let what = if until_written {
                    "until_written"
                } else {
                    "training_thread"
                };
                g.bench_function(BenchmarkId::new(label, what), |b| {
                    b.iter_custom(|iters| checkpoints(&mut h, &vs, &mut step, iters, until_written))
                });
            }
            h.finish().unwrap();
        }
        if name == "mlp_example" {
            let mut h = hook(tmp.path(), "mlp-on-device", Mode::Spectra, true);
            let mut step = 0;
            g.bench_function(
                BenchmarkId::new("spectra_on_device", "training_thread"),
                |b| b.iter_custom(|iters| checkpoints(&mut h, &vs, &mut step, iters, false)),
            );
            h.finish().unwrap();
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
