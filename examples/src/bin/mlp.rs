//! The minimal htsr example: a small MLP on MNIST-1D, a checkpoint every few steps.
//!
//!     cargo run -p htsr-examples --release --bin mlp -- --dir htsr-demo --steps 300 --every 20
//!     htsr-watch htsr-demo

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use htsr_examples::{default_mnist1d_dir, evaluate, Dataset};
use htsr_tch_hook::{HtsrHook, StepInfo};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

#[derive(Parser)]
#[command(about = "Train a small MLP on MNIST-1D with the htsr hook")]
struct Args {
    /// Output directory (what `htsr-watch` watches)
    #[arg(long, env = "HTSR_DIR", default_value = "htsr-demo")]
    dir: PathBuf,
    /// Run name (subdirectory of --dir)
    #[arg(long, env = "HTSR_RUN", default_value = "mlp")]
    run: String,
    /// Training steps
    #[arg(long, default_value_t = 300)]
    steps: u64,
    /// Checkpoint every N steps
    #[arg(long, env = "HTSR_EVERY", default_value_t = 20)]
    every: u64,
    /// Batch size
    #[arg(long, default_value_t = 64)]
    batch_size: i64,
    /// Hidden width
    #[arg(long, default_value_t = 256)]
    hidden: i64,
    /// Learning rate (Adam)
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// libtorch intra-op threads (1 is fastest for a model this small, and immune to busy neighbours)
    #[arg(long, default_value_t = 1)]
    threads: i32,
    /// MNIST-1D folder written by scripts/setup
    #[arg(long, default_value_os_t = default_mnist1d_dir())]
    data: PathBuf,
}

fn main() -> Result<()> {
    htsr_examples::init_logging();
    let args = Args::parse();
    tch::set_num_threads(args.threads);
    tch::manual_seed(0);
    let data = Dataset::load(&args.data)?;

    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let net = nn::seq()
        .add(nn::linear(
            &root / "fc1",
            data.signal_len(),
            args.hidden,
            Default::default(),
        ))
        .add_fn(|x| x.relu())
        .add(nn::linear(
            &root / "fc2",
            args.hidden,
            args.hidden,
            Default::default(),
        ))
        .add_fn(|x| x.relu())
        .add(nn::linear(
            &root / "fc3",
            args.hidden,
            10,
            Default::default(),
        ));
    let mut opt = nn::Adam::default().build(&vs, args.lr)?;

    // ANCHOR: hook
    let mut hook = HtsrHook::builder()
        .dir(&args.dir)
        .run(&args.run)
        .every(args.every)
        .build()?;
    // ANCHOR_END: hook

    let n = data.x_train.size()[0];
    let steps_per_epoch = (n / args.batch_size).max(1) as u64;
    let mut perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
    for step in 0..args.steps {
        let epoch = step / steps_per_epoch;
        let i = (step % steps_per_epoch) as i64;
        if i == 0 && step > 0 {
            perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        }
        let idx = perm.narrow(0, i * args.batch_size, args.batch_size);
        let loss = net
            .forward(&data.x_train.index_select(0, &idx))
            .cross_entropy_for_logits(&data.y_train.index_select(0, &idx));
        opt.backward_step(&loss);
        let loss = loss.double_value(&[]);
        // ANCHOR: hook
        let info = StepInfo::new()
            .epoch(epoch)
            .loss(loss)
            .lr(args.lr)
            .batch_size(args.batch_size as u64);
        // Checkpoints the weights after `step + 1` updates.
        hook.step_with(step + 1, &vs, info)?;
        // ANCHOR_END: hook
        if (step + 1) % 100 == 0 {
            println!("step {:>5}  loss {loss:.4}", step + 1);
        }
    }
    // ANCHOR: hook
    hook.finish()?;
    // ANCHOR_END: hook
    let acc = evaluate(&data.x_test, &data.y_test, 4096, |x| net.forward(x));
    println!(
        "test accuracy {:.2}% after {} steps",
        acc * 100.0,
        args.steps
    );
    println!(
        "checkpoints in {}; watch them with:",
        args.dir.join(&args.run).display()
    );
    println!("    htsr-watch {}", args.dir.display());
    Ok(())
}
