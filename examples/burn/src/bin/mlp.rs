//! The minimal htsr example with Burn: the MLP of the tch example (`fc1`, `fc2`, `fc3`, hidden width 256, Adam at
//! 1e-3, batches of 64, seed 0) on MNIST-1D, trained on Burn's flex CPU backend, a checkpoint every few steps.
//!
//!     cargo run -p htsr-burn-examples --release --bin burn-mlp -- --dir htsr-demo --steps 300 --every 20
//!     htsr-watch htsr-demo

use std::path::PathBuf;

use anyhow::Result;
use burn::nn::loss::CrossEntropyLoss;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use clap::Parser;
use htsr_burn_hook::{HtsrBurnHook, StepInfo};
use htsr_examples_data::{accuracy, default_mnist1d_dir, Dataset, Shuffle};

#[derive(Parser)]
#[command(about = "Train a small MLP on MNIST-1D with Burn and the htsr hook")]
struct Args {
    /// Output directory (what `htsr-watch` watches)
    #[arg(long, env = "HTSR_DIR", default_value = "htsr-demo")]
    dir: PathBuf,
    /// Run name (subdirectory of --dir)
    #[arg(long, env = "HTSR_RUN", default_value = "burn-mlp")]
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

/// The tch example's network, with its layer names: `fc1.weight` etc. in the checkpoints.
#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
    act: Relu,
}

impl Mlp {
    fn new(inputs: usize, hidden: usize, device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(inputs, hidden).init(device),
            fc2: LinearConfig::new(hidden, hidden).init(device),
            fc3: LinearConfig::new(hidden, 10).init(device),
            act: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.act.forward(self.fc1.forward(x));
        let x = self.act.forward(self.fc2.forward(x));
        self.fc3.forward(x)
    }
}

/// Rows of `x` (row-major, `features` wide) as a tensor.
fn rows(x: Vec<f32>, features: usize, device: &Device) -> Tensor<2> {
    let n = x.len() / features;
    Tensor::from_data(TensorData::new(x, [n, features]), device)
}

fn main() -> Result<()> {
    htsr_examples_data::init_logging();
    let args = Args::parse();
    let device = Device::flex().autodiff();
    device.seed(0);
    let data = Dataset::load(&args.data)?;

    let mut model = Mlp::new(data.features, args.hidden, &device);
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLoss::new(None, &device);

    // ANCHOR: hook
    let mut hook = HtsrBurnHook::builder()
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
        let logits = model.forward(rows(x, data.features, &device));
        let labels = Tensor::<1, Int>::from_data(TensorData::new(y, [args.batch_size]), &device);
        let loss = loss_fn.forward(logits, labels);
        let loss_value = loss.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(args.lr, model, grads);
        // ANCHOR: hook
        let info = StepInfo::new()
            .epoch(epoch)
            .loss(loss_value)
            .lr(args.lr)
            .batch_size(args.batch_size as u64);
        // Checkpoints the weights after `step + 1` updates.
        hook.step_with(step + 1, &model, info)?;
        // ANCHOR_END: hook
        if (step + 1) % 100 == 0 {
            println!("step {:>5}  loss {loss_value:.4}", step + 1);
        }
    }
    // ANCHOR: hook
    hook.finish()?;
    // ANCHOR_END: hook

    // Test accuracy, in chunks, without autodiff.
    let eval = model.valid();
    let mut predictions = Vec::with_capacity(data.n_test());
    for chunk in data.x_test.chunks(4096 * data.features) {
        let logits = eval.forward(rows(
            chunk.to_vec(),
            data.features,
            &eval.fc1.weight.device(),
        ));
        predictions.extend(logits.argmax(1).into_data().try_into_vec_as::<i64>()?);
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
