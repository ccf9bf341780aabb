//! The Candle hook's cost on the training thread, beside what it is compared with (as tch-hook/benches/hook.rs).
//!
//! - `hook/not_due_step`: `hook.step()` on a step that is not a checkpoint step (target: < 1 µs).
//! - `hook/checkpoint_step_10M`: `hook.checkpoint()` for a VarMap of ~10.5 M f32 parameters in four matrices
//!   (42 MB), with a free queue slot (the previous checkpoint is flushed outside the timed region): the snapshot
//!   the training thread pays (one memcpy per variable into the writer's recycled buffers).
//! - `baseline/tensor_copy_10M`: `Tensor::copy()` of every variable (allocate + copy in candle).
//! - `baseline/to_vec1_10M`: `to_vec1::<f32>()` of every variable (candle's own copy to a host vector).
//! - `baseline/mlp_example_train_step`: one training step of the MLP example (batch 64, 40-256-256-10, AdamW).
//!
//! Run: `cargo bench -p htsr-candle-hook --bench hook -- --warm-up-time 1 --measurement-time 3` (the figures in
//! the report were taken with `RAYON_NUM_THREADS=1`, as the tch bench runs libtorch on one thread).

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{linear, AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use criterion::{criterion_group, criterion_main, Criterion};
use htsr_candle_hook::{HtsrCandleHook, StepInfo};

/// ~10.5 M trainable parameters in four matrices.
fn varmap_10m() -> VarMap {
    let varmap = VarMap::new();
    for (name, r, c) in [
        ("l1", 2048, 2048),
        ("l2", 2048, 2048),
        ("l3", 1024, 2048),
        ("l4", 256, 2048),
    ] {
        varmap
            .get(
                (r, c),
                &format!("{name}.weight"),
                candle_nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
                DType::F32,
                &Device::Cpu,
            )
            .unwrap();
    }
    varmap
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let varmap = varmap_10m();
    let params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
    eprintln!(
        "model: {params} parameters ({:.1} MB f32); candle threads: {}",
        params as f64 * 4.0 / 1e6,
        candle_core::utils::get_num_threads()
    );

    let mut g = c.benchmark_group("hook");
    {
        let mut hook = HtsrCandleHook::builder()
            .dir(tmp.path())
            .run("not-due")
            .every(1_000_000_000)
            .build()
            .unwrap();
        let mut step = 1u64;
        g.bench_function("not_due_step", |b| {
            b.iter(|| {
                step += 1;
                hook.step(std::hint::black_box(step), &varmap).unwrap()
            })
        });
        hook.finish().unwrap();
    }
    {
        let mut hook = HtsrCandleHook::builder()
            .dir(tmp.path())
            .run("ckpt")
            .every(1)
            .keep_last(2)
            .build()
            .unwrap();
        let mut step = 0u64;
        g.sample_size(20);
        g.bench_function("checkpoint_step_10M", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    hook.flush().unwrap(); // the writer has caught up: measure the snapshot alone
                    step += 1;
                    let t0 = Instant::now();
                    let out = hook
                        .checkpoint(step, &varmap, StepInfo::new().loss(1.0))
                        .unwrap();
                    total += t0.elapsed();
                    std::hint::black_box(out);
                }
                total
            })
        });
        hook.finish().unwrap();
    }
    g.finish();

    let mut g = c.benchmark_group("baseline");
    g.sample_size(20);
    let vars = varmap.all_vars();
    g.bench_function("tensor_copy_10M", |b| {
        b.iter(|| {
            vars.iter()
                .map(|v| v.copy().unwrap())
                .collect::<Vec<Tensor>>()
        })
    });
    g.bench_function("to_vec1_10M", |b| {
        b.iter(|| {
            vars.iter()
                .map(|v| v.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                .collect::<Vec<_>>()
        })
    });

    // One training step of the MLP example (random data of MNIST-1D's shape).
    let mvm = VarMap::new();
    let vb = VarBuilder::from_varmap(&mvm, DType::F32, &Device::Cpu);
    let fc1 = linear(40, 256, vb.pp("fc1")).unwrap();
    let fc2 = linear(256, 256, vb.pp("fc2")).unwrap();
    let fc3 = linear(256, 10, vb.pp("fc3")).unwrap();
    let mut opt = AdamW::new(
        mvm.all_vars(),
        ParamsAdamW {
            lr: 1e-3,
            ..Default::default()
        },
    )
    .unwrap();
    let x = Tensor::randn(0f32, 1., (64, 40), &Device::Cpu).unwrap();
    let y = Tensor::from_vec(
        (0..64u32).map(|i| i % 10).collect::<Vec<_>>(),
        64,
        &Device::Cpu,
    )
    .unwrap();
    g.sample_size(50);
    g.bench_function("mlp_example_train_step", |b| {
        b.iter(|| {
            let h = fc1.forward(&x).unwrap().relu().unwrap();
            let h = fc2.forward(&h).unwrap().relu().unwrap();
            let logits = fc3.forward(&h).unwrap();
            let loss = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
            opt.backward_step(&loss).unwrap();
            loss.to_scalar::<f32>().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
