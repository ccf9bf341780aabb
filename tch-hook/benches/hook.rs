//! The hook's cost on the training thread, beside what it is compared with.
//!
//! - `hook/not_due_step`: `hook.step()` on a step that is not a checkpoint step (target: < 1 µs).
//! - `hook/checkpoint_step_10M`: `hook.checkpoint()` for a ~10.5 M-parameter model (42 MB of f32), with a free queue
//!   slot (the previous checkpoint is flushed outside the timed region): the snapshot the training thread pays.
//!   Target: within 2x of copying the weights.
//! - `baseline/copy_weights_10M_tensor_copy`: `Tensor::copy()` of every weight (allocate + memcpy in libtorch).
//! - `baseline/copy_weights_10M_into_buffers`: memcpy of every weight into preallocated byte buffers.
//! - `baseline/mlp_example_train_step`: one training step of `examples/src/bin/mlp.rs` (batch 64, 40-256-256-10, Adam).
//!
//! Run: `cargo bench -p htsr-tch-hook --bench hook -- --warm-up-time 1 --measurement-time 3`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use htsr_tch_hook::{HtsrHook, StepInfo};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// ~10.5 M trainable parameters in four matrices.
fn model_10m() -> nn::VarStore {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    for (name, r, c) in [
        ("l1", 2048, 2048),
        ("l2", 2048, 2048),
        ("l3", 1024, 2048),
        ("l4", 256, 2048),
    ] {
        let _ = root.randn(name, &[r, c], 0.0, 0.02);
    }
    vs
}

fn bench(c: &mut Criterion) {
    tch::set_num_threads(1);
    tch::manual_seed(0);
    let tmp = tempfile::tempdir().unwrap();
    let vs = model_10m();
    let params: i64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    eprintln!(
        "model: {params} parameters ({:.1} MB f32)",
        params as f64 * 4.0 / 1e6
    );

    let mut g = c.benchmark_group("hook");
    {
        let mut hook = HtsrHook::builder()
            .dir(tmp.path())
            .run("not-due")
            .every(1_000_000_000)
            .build()
            .unwrap();
        let mut step = 1u64;
        g.bench_function("not_due_step", |b| {
            b.iter(|| {
                step += 1;
                hook.step(std::hint::black_box(step), &vs).unwrap()
            })
        });
        hook.finish().unwrap();
    }
    {
        let mut hook = HtsrHook::builder()
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
                        .checkpoint(step, &vs, StepInfo::new().loss(1.0))
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
    let vars = vs.trainable_variables();
    g.bench_function("copy_weights_10M_tensor_copy", |b| {
        b.iter(|| vars.iter().map(|t| t.copy()).collect::<Vec<Tensor>>())
    });
    let mut buffers: Vec<Vec<u8>> = vars.iter().map(|t| vec![0u8; t.numel() * 4]).collect();
    g.bench_function("copy_weights_10M_into_buffers", |b| {
        b.iter(|| {
            for (t, buf) in vars.iter().zip(buffers.iter_mut()) {
                t.copy_data_u8(buf, t.numel());
            }
        })
    });

    // One training step of the MLP example (random data of MNIST-1D's shape).
    let mvs = nn::VarStore::new(Device::Cpu);
    let root = mvs.root();
    let net = nn::seq()
        .add(nn::linear(&root / "fc1", 40, 256, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&root / "fc2", 256, 256, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&root / "fc3", 256, 10, Default::default()));
    let mut opt = nn::Adam::default().build(&mvs, 1e-3).unwrap();
    let x = Tensor::randn([64, 40], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [64], (Kind::Int64, Device::Cpu));
    g.sample_size(50);
    g.bench_function("mlp_example_train_step", |b| {
        b.iter(|| {
            let loss = net.forward(&x).cross_entropy_for_logits(&y);
            opt.backward_step(&loss);
            loss.double_value(&[])
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
