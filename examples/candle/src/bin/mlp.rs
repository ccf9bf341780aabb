//! The minimal htsr example with Candle: the MLP of the tch example (`fc1`, `fc2`, `fc3`, hidden width 256, Adam at
//! 1e-3, batches of 64, seed 0) on MNIST-1D, trained on Candle's CPU device, a checkpoint every few steps.
//!
//!     cargo run -p htsr-candle-examples --release --bin candle-mlp -- --dir htsr-demo --steps 300 --every 20
//!     htsr-watch htsr-demo

use std::path::PathBuf;

use anyhow::Result;
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{linear, AdamW, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use clap::Parser;
use htsr_candle_hook::{HtsrCandleHook, StepInfo};
use htsr_examples_data::{accuracy, default_mnist1d_dir, Dataset, Shuffle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Parser)]
#[command(about = "Train a small MLP on MNIST-1D with Candle and the htsr hook")]
struct Args {
    /// Output directory (what `htsr-watch` watches)
    #[arg(long, env = "HTSR_DIR", default_value = "htsr-demo")]
    dir: PathBuf,
    /// Run name (subdirectory of --dir)
    #[arg(long, env = "HTSR_RUN", default_value = "candle-mlp")]
    run: String,
    /// Training steps
    #[arg(long, default_value_t = 300)]
    steps: u64,
    /// Checkpoint every N steps
    #[arg(long, env = "HTSR_EVERY", default_value_t = 20)]
    every: u64,
    /// Batch size
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Hidden width
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    /// Learning rate (Adam)
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// MNIST-1D folder written by scripts/setup
    #[arg(long, default_value_os_t = default_mnist1d_dir())]
    data: PathBuf,
}

/// The tch example's network, with its layer names: `fc1.weight` etc. in the VarMap and the checkpoints.
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Mlp {
    fn new(inputs: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: linear(inputs, hidden, vb.pp("fc1"))?,
            fc2: linear(hidden, hidden, vb.pp("fc2"))?,
            fc3: linear(hidden, 10, vb.pp("fc3"))?,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.fc1.forward(x)?.relu()?;
        let x = self.fc2.forward(&x)?.relu()?;
        self.fc3.forward(&x)
    }
}

/// Sets every variable to PyTorch's default initialization of a Linear layer, U(-1/sqrt(in), 1/sqrt(in)) for
/// weight and bias, drawn from `seed`: Candle's CPU generator cannot be seeded, and the run should be repeatable.
fn seeded_init(varmap: &VarMap, seed: u64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let vars = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let prefix = name.rsplit_once('.').map_or(name.as_str(), |(p, _)| p);
        let fan_in = vars[&format!("{prefix}.weight")].dims()[1];
        let bound = 1.0 / (fan_in as f32).sqrt();
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    htsr_examples_data::init_logging();
    let args = Args::parse();
    let device = Device::Cpu;
    let data = Dataset::load(&args.data)?;

    let varmap = VarMap::new();
    let model = Mlp::new(
        data.features,
        args.hidden,
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
    )?;
    seeded_init(&varmap, 0)?;
    // Adam: AdamW without weight decay (candle-nn's default decay is 0.01).
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: args.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;

    // ANCHOR: hook
    let mut hook = HtsrCandleHook::builder()
        .dir(&args.dir)
        .run(&args.run)
        .every(args.every)
        .build()?;
    // ANCHOR_END: hook

    let n = data.n_train();
    let steps_per_epoch = (n / args.batch_size).max(1) as u64;
    let mut order = Shuffle::new(n, 0);
    for step in 0..args.steps {
        let epoch = step / steps_per_epoch;
        let i = (step % steps_per_epoch) as usize;
        if i == 0 && step > 0 {
            order.reshuffle();
        }
        let (x, y) = data.train_batch(order.batch(i, args.batch_size));
        let x = Tensor::from_vec(x, (args.batch_size, data.features), &device)?;
        let y: Vec<u32> = y.into_iter().map(|v| v as u32).collect();
        let y = Tensor::from_vec(y, args.batch_size, &device)?;
        let loss = candle_nn::loss::cross_entropy(&model.forward(&x)?, &y)?;
        opt.backward_step(&loss)?;
        let loss = loss.to_scalar::<f32>()? as f64;
        // ANCHOR: hook
        let info = StepInfo::new()
            .epoch(epoch)
            .loss(loss)
            .lr(args.lr)
            .batch_size(args.batch_size as u64);
        // Checkpoints the weights after `step + 1` updates.
        hook.step_with(step + 1, &varmap, info)?;
        // ANCHOR_END: hook
        if (step + 1) % 100 == 0 {
            println!("step {:>5}  loss {loss:.4}", step + 1);
        }
    }
    // ANCHOR: hook
    hook.finish()?;
    // ANCHOR_END: hook

    let mut predictions = Vec::with_capacity(data.n_test());
    for chunk in data.x_test.chunks(4096 * data.features) {
        let x = Tensor::from_vec(
            chunk.to_vec(),
            (chunk.len() / data.features, data.features),
            &device,
        )?;
        let p = model.forward(&x)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
        predictions.extend(p.into_iter().map(i64::from));
    }
    let acc = accuracy(&predictions, &data.y_test);
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
