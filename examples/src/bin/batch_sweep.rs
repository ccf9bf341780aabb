//! The batch-size experiment of Martin & Mahoney (spec/HTSR.md section 8.1), scaled to a 2-core CPU:
//! a MiniAlexNet-style network adapted to MNIST-1D's 1-D signals (two Conv1d blocks, then the dense FC1 and FC2,
//! then the 10-way output) trained once per batch size, each run into its own directory `DIR/bs-<size>`.
//!
//!     cargo run -p htsr-examples --bin batch_sweep -- --dir htsr-sweep
//!     htsr-watch htsr-sweep
//!
//! As in the paper: SGD with momentum 0.9, learning rate 0.01 decayed x0.95 every epoch, MSE loss on the softmax
//! output, glorot-normal weights and biases 0.1, the same number of epochs for every batch size. A checkpoint is
//! written at initialisation and at every epoch end (plus every `--every` steps when given), each carrying
//! `htsr.batch_size`, `htsr.epoch`, `htsr.loss` and `htsr.lr`. The layers to look at are `fc1.weight` and
//! `fc2.weight`.
//!
//! `--steps N` trains every batch size for the same number of optimizer steps instead of the same number of epochs
//! (equal epochs leave the large batches with few steps); the learning-rate decay still applies per epoch, so
//! `--lr-decay 1` gives every batch size the same constant learning rate.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};
use htsr_examples::{default_mnist1d_dir, evaluate, Mnist1d};
use htsr_tch_hook::{HtsrHook, StepInfo};
use tch::nn::{self, Init, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Loss {
    /// Mean squared error between the softmax output and the one-hot label (the paper's choice)
    Mse,
    /// Cross-entropy
    Ce,
}

#[derive(Parser)]
#[command(about = "MiniAlexNet-1D on MNIST-1D at several batch sizes, with the htsr hook")]
struct Args {
    /// Output directory; each batch size is run `bs-<size>` inside it
    #[arg(long, env = "HTSR_DIR", default_value = "htsr-sweep")]
    dir: PathBuf,
    /// Batch sizes, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = [4, 16, 64, 256, 1024])]
    batch_sizes: Vec<i64>,
    /// Epochs per batch size
    #[arg(long, default_value_t = 4)]
    epochs: u64,
    /// Train every batch size for N optimizer steps instead of --epochs epochs (0: use --epochs); the last epoch is
    /// cut short
    #[arg(long, default_value_t = 0)]
    steps: u64,
    /// Use only the first N training samples (0: all that setup generated)
    #[arg(long, default_value_t = 0)]
    train_samples: i64,
    /// Also checkpoint every N steps (0: only at initialisation and epoch ends)
    #[arg(long, default_value_t = 0)]
    every: u64,
    /// Initial learning rate (SGD, momentum 0.9)
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// Learning-rate factor applied after every epoch
    #[arg(long, default_value_t = 0.95)]
    lr_decay: f64,
    #[arg(long, value_enum, default_value_t = Loss::Mse)]
    loss: Loss,
    /// Channels of the two convolutions; FC1's input is the second times 10
    #[arg(long, value_delimiter = ',', default_values_t = [32, 128])]
    channels: Vec<i64>,
    /// Widths of FC1 and FC2 (the paper's 384 and 192)
    #[arg(long, value_delimiter = ',', default_values_t = [384, 192])]
    fc: Vec<i64>,
    /// Random seed (the same initial weights for every batch size)
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// libtorch intra-op threads
    #[arg(long, default_value_t = 1)]
    threads: i32,
    /// MNIST-1D folder written by scripts/setup
    #[arg(long, default_value_os_t = default_mnist1d_dir())]
    data: PathBuf,
}

/// conv(5, same) -> ReLU -> maxpool(3, stride 2) -> batch norm, twice; FC1, FC2 (ReLU); output 10.
fn mini_alexnet_1d(p: &nn::Path, len: i64, channels: &[i64], fc: &[i64]) -> nn::SequentialT {
    let glorot = |fan_in: i64, fan_out: i64| Init::Randn {
        mean: 0.0,
        stdev: (2.0 / (fan_in + fan_out) as f64).sqrt(),
    };
    let conv = |p: nn::Path, cin: i64, cout: i64| {
        let cfg = nn::ConvConfig {
            padding: 2,
            ws_init: glorot(cin * 5, cout * 5),
            bs_init: Init::Const(0.1),
            ..Default::default()
        };
        nn::conv1d(p, cin, cout, 5, cfg)
    };
    let linear = |p: nn::Path, i: i64, o: i64| {
        nn::linear(
            p,
            i,
            o,
            nn::LinearConfig {
                ws_init: glorot(i, o),
                bs_init: Some(Init::Const(0.1)),
                bias: true,
            },
        )
    };
    let flat = channels[1] * (len / 4);
    nn::seq_t()
        .add_fn(|x| x.unsqueeze(1))
        .add(conv(p / "conv1", 1, channels[0]))
        .add_fn(|x| x.relu().max_pool1d(3, 2, 1, 1, false))
        .add(nn::batch_norm1d(p / "bn1", channels[0], Default::default()))
        .add(conv(p / "conv2", channels[0], channels[1]))
        .add_fn(|x| x.relu().max_pool1d(3, 2, 1, 1, false))
        .add(nn::batch_norm1d(p / "bn2", channels[1], Default::default()))
        .add_fn(|x| x.flatten(1, -1))
        .add(linear(p / "fc1", flat, fc[0]))
        .add_fn(|x| x.relu())
        .add(linear(p / "fc2", fc[0], fc[1]))
        .add_fn(|x| x.relu())
        .add(linear(p / "out", fc[1], 10))
}

struct RunResult {
    batch_size: i64,
    steps: u64,
    train_loss: f64,
    train_acc: f64,
    test_acc: f64,
    seconds: f64,
}

fn train_one(
    args: &Args,
    data: &Mnist1d,
    x_train: &Tensor,
    y_train: &Tensor,
    bs: i64,
) -> Result<RunResult> {
    let t0 = Instant::now();
    tch::manual_seed(args.seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = mini_alexnet_1d(&vs.root(), data.signal_len(), &args.channels, &args.fc);
    let mut opt = nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    }
    .build(&vs, args.lr)?;
    let mut hook = HtsrHook::builder()
        .dir(&args.dir)
        .run(format!("bs-{bs}"))
        .every(args.every)
        .metadata("model", "minialexnet1d")
        .metadata("dataset", "mnist1d")
        .metadata("batch_size", bs.to_string())
        .build()?;
    let n = x_train.size()[0];
    let per_epoch = n / bs;
    if per_epoch == 0 {
        bail!("batch size {bs} is larger than the {n} training samples");
    }
    let epochs = match args.steps {
        0 => args.epochs,
        s => s.div_ceil(per_epoch as u64),
    };
    let one_hot = |y: &Tensor| y.one_hot(10).to_kind(Kind::Float);
    let mut lr = args.lr;
    let mut step = 0u64;
    let mut last_loss = f64::NAN;
    hook.checkpoint(
        0,
        &vs,
        StepInfo::new().epoch(0).lr(lr).batch_size(bs as u64),
    )?;
    for epoch in 0..epochs {
        let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let batches = match args.steps {
            0 => per_epoch,
            s => (s - step).min(per_epoch as u64) as i64,
        };
        let mut sum = 0.0;
        for i in 0..batches {
            let idx = perm.narrow(0, i * bs, bs);
            let (x, y) = (x_train.index_select(0, &idx), y_train.index_select(0, &idx));
            let out = net.forward_t(&x, true);
            let loss = match args.loss {
                Loss::Mse => out
                    .softmax(-1, Kind::Float)
                    .mse_loss(&one_hot(&y), tch::Reduction::Mean),
                Loss::Ce => out.cross_entropy_for_logits(&y),
            };
            opt.backward_step(&loss);
            step += 1;
            last_loss = loss.double_value(&[]);
            sum += last_loss;
            let info = StepInfo::new()
                .epoch(epoch)
                .loss(last_loss)
                .lr(lr)
                .batch_size(bs as u64);
            hook.step_with(step, &vs, info)?;
        }
        let info = StepInfo::new()
            .epoch(epoch + 1)
            .loss(sum / batches as f64)
            .lr(lr)
            .batch_size(bs as u64);
        hook.epoch_end(step, &vs, info)?;
        lr *= args.lr_decay;
        opt.set_lr(lr);
        eprintln!(
            "  bs {bs:>5} epoch {:>3}: mean train loss {:.5}",
            epoch + 1,
            sum / batches as f64
        );
    }
    hook.finish()?;
    let train_acc = evaluate(x_train, y_train, 4096, |x| net.forward_t(x, false));
    let test_acc = evaluate(&data.x_test, &data.y_test, 4096, |x| {
        net.forward_t(x, false)
    });
    Ok(RunResult {
        batch_size: bs,
        steps: step,
        train_loss: last_loss,
        train_acc,
        test_acc,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn main() -> Result<()> {
    htsr_examples::init_logging();
    let args = Args::parse();
    if args.channels.len() != 2 || args.fc.len() != 2 {
        bail!("--channels and --fc take two numbers each");
    }
    tch::set_num_threads(args.threads);
    let data = Mnist1d::load(&args.data)?;
    let n_all = data.x_train.size()[0];
    let n = if args.train_samples > 0 {
        args.train_samples.min(n_all)
    } else {
        n_all
    };
    let (x_train, y_train) = (data.x_train.narrow(0, 0, n), data.y_train.narrow(0, 0, n));
    let flat = args.channels[1] * (data.signal_len() / 4);
    let length = match args.steps {
        0 => format!("{} epochs", args.epochs),
        s => format!("{s} steps"),
    };
    println!(
        "MiniAlexNet-1D: FC1 {}x{} (Q = {:.2}), FC2 {}x{} (Q = {:.2}); {n} training and {} test samples; {length}; \
         {:?} loss",
        args.fc[0],
        flat,
        flat.max(args.fc[0]) as f64 / flat.min(args.fc[0]) as f64,
        args.fc[1],
        args.fc[0],
        args.fc[0] as f64 / args.fc[1] as f64,
        data.x_test.size()[0],
        args.loss
    );
    let mut results = Vec::new();
    for &bs in &args.batch_sizes {
        let r = train_one(&args, &data, &x_train, &y_train, bs)?;
        println!(
            "batch size {:>5}: {:>6} steps, final batch loss {:.4}, train accuracy {:.2}%, test accuracy {:.2}% ({:.1} s)",
            r.batch_size,
            r.steps,
            r.train_loss,
            r.train_acc * 100.0,
            r.test_acc * 100.0,
            r.seconds
        );
        results.push(r);
    }
    println!("\n| batch size | steps | train accuracy | test accuracy | seconds |\n|---:|---:|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {} | {:.2}% | {:.2}% | {:.1} |",
            r.batch_size,
            r.steps,
            r.train_acc * 100.0,
            r.test_acc * 100.0,
            r.seconds
        );
    }
    println!(
        "\nruns in {}/bs-*; watch them with:\n    htsr-watch {}",
        args.dir.display(),
        args.dir.display()
    );
    Ok(())
}
