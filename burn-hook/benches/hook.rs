//! The Burn hook's cost on the training thread, beside what it is compared with (as tch-hook/benches/hook.rs).
//!
//! - `hook/not_due_step`: `hook.step()` on a step that is not a checkpoint step (target: < 1 µs).
//! - `hook/checkpoint_step_10M`: `hook.checkpoint()` for a ~10.5 M-parameter model (four Linear layers, 42 MB of
//!   f32) on the flex backend with autodiff, with a free queue slot (the previous checkpoint is flushed outside
//!   the timed region): the snapshot the training thread pays (Burn's `into_data` of each weight transposed to
//!   PyTorch's layout, and a copy into the writer's recycled buffers).
//! - `baseline/into_data_10M`: `into_data()` of every weight as Burn stores it (no transposition).
//! - `baseline/into_data_transposed_10M`: `transpose().into_data()` of every weight.
//! - `baseline/mlp_example_train_step`: one training step of the MLP example (batch 64, 40-256-256-10, Adam).
//!
//! Run: `cargo bench -p htsr-burn-hook --bench hook -- --warm-up-time 1 --measurement-time 3` (the figures in the
//! report were taken with `RAYON_NUM_THREADS=1`, as the tch bench runs libtorch on one thread).

use std::time::{Duration, Instant};

use burn::module::Param;
use burn::nn::loss::CrossEntropyLoss;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{criterion_group, criterion_main, Criterion};
use htsr_burn_hook::{HtsrBurnHook, StepInfo};

/// ~10.5 M trainable parameters in four matrices (PyTorch shapes 2048x2048, 2048x2048, 1024x2048, 256x2048).
#[derive(Module, Debug)]
struct Big {
    l1: Linear,
    l2: Linear,
    l3: Linear,
    l4: Linear,
}

fn linear(out: usize, inp: usize, device: &Device) -> Linear {
    let w = Tensor::<2>::random([inp, out], Distribution::Normal(0.0, 0.02), device);
    Linear {
        weight: Param::from_tensor(w),
        bias: None,
    }
}

#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    act: Relu,
}

fn bench(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    device.seed(0);
    let tmp = tempfile::tempdir().unwrap();
    let model = Big {
        l1: linear(2048, 2048, &device),
        l2: linear(2048, 2048, &device),
        l3: linear(1024, 2048, &device),
        l4: linear(256, 2048, &device),
    };
    let params = model.num_params();
    eprintln!(
        "model: {params} parameters ({:.1} MB f32); rayon threads: {}",
        params as f64 * 4.0 / 1e6,
        rayon_threads()
    );

    let mut g = c.benchmark_group("hook");
    {
        let mut hook = HtsrBurnHook::builder()
            .dir(tmp.path())
            .run("not-due")
            .every(1_000_000_000)
            .build()
            .unwrap();
        let mut step = 1u64;
        g.bench_function("not_due_step", |b| {
            b.iter(|| {
                step += 1;
                hook.step(std::hint::black_box(step), &model).unwrap()
            })
        });
        hook.finish().unwrap();
    }
    {
        let mut hook = HtsrBurnHook::builder()
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
                        .checkpoint(step, &model, StepInfo::new().loss(1.0))
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
    let weights = [&model.l1, &model.l2, &model.l3, &model.l4];
    g.bench_function("into_data_10M", |b| {
        b.iter(|| {
            weights
                .iter()
                .map(|l| l.weight.val().inner().into_data())
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("into_data_transposed_10M", |b| {
        b.iter(|| {
            weights
                .iter()
                .map(|l| l.weight.val().inner().transpose().into_data())
                .collect::<Vec<_>>()
        })
    });

    // One training step of the MLP example (random data of MNIST-1D's shape).
    let mut mlp = Mlp {
        fc1: LinearConfig::new(40, 256).init(&device),
        fc2: LinearConfig::new(256, 256).init(&device),
        fc3: LinearConfig::new(256, 10).init(&device),
        act: Relu::new(),
    };
    let mut optim = AdamConfig::new().init();
    let x = Tensor::<2>::random([64, 40], Distribution::Default, &device);
    let y = Tensor::<1, Int>::from_data(
        TensorData::new((0..64).map(|i| i % 10).collect::<Vec<i64>>(), [64]),
        &device,
    );
    g.sample_size(50);
    g.bench_function("mlp_example_train_step", |b| {
        b.iter(|| {
            let h = mlp.act.forward(mlp.fc1.forward(x.clone()));
            let h = mlp.act.forward(mlp.fc2.forward(h));
            let logits = mlp.fc3.forward(h);
            let loss = CrossEntropyLoss::new(None, &device).forward(logits, y.clone());
            let value = loss.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(loss.backward(), &mlp);
            mlp = optim.step(1e-3, mlp.clone(), grads);
            value
        })
    });
    g.finish();
}

fn rayon_threads() -> String {
    std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        format!(
            "{} (all cores)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        )
    })
}

criterion_group!(benches, bench);
criterion_main!(benches);
