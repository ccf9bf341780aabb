//! Models shared by the tests: the parity model built from PyTorch-layout layers, and a small MLP to train.

#![allow(dead_code)] // each test binary uses its own share of these

use burn::module::Param;
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLoss;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use htsr_hook_core::test_support::Layer;

/// The CPU backend with autodiff, as in training.
pub fn device() -> Device {
    let device = Device::flex().autodiff();
    device.seed(0);
    device
}

/// A float parameter holding `values` in `shape` (row-major).
pub fn param<const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

#[derive(Module, Debug)]
pub struct Block {
    pub fc: Linear,
}

/// The parity model: PyTorch's `fc1`, `blocks[i].fc`, `conv1`, `conv2`, `head` (see `parity_layers`).
#[derive(Module, Debug)]
pub struct Net {
    pub fc1: Linear,
    pub blocks: Vec<Block>,
    pub conv1: Conv1d,
    pub conv2: Conv2d,
    pub head: Linear,
}

fn layer<'a>(layers: &'a [Layer], name: &str) -> &'a Layer {
    layers
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no layer {name}"))
}

/// A Linear holding PyTorch's `<prefix>.weight` ([out, in], stored transposed as Burn does) and `<prefix>.bias`.
pub fn linear_from(layers: &[Layer], prefix: &str, device: &Device) -> Linear {
    let w = layer(layers, &format!("{prefix}.weight"));
    let b = layer(layers, &format!("{prefix}.bias"));
    Linear {
        weight: param(w.transposed(), [w.shape[1], w.shape[0]], device),
        bias: Some(param(b.values.clone(), [b.shape[0]], device)),
    }
}

/// The parity model holding exactly the values of `layers`.
pub fn net_from(layers: &[Layer], device: &Device) -> Net {
    let c1 = layer(layers, "conv1.weight");
    let c2 = layer(layers, "conv2.weight");
    let mut conv1 = Conv1dConfig::new(c1.shape[1], c1.shape[0], c1.shape[2]).init(device);
    conv1.weight = param(
        c1.values.clone(),
        [c1.shape[0], c1.shape[1], c1.shape[2]],
        device,
    );
    let mut conv2 =
        Conv2dConfig::new([c2.shape[1], c2.shape[0]], [c2.shape[2], c2.shape[3]]).init(device);
    conv2.weight = param(
        c2.values.clone(),
        [c2.shape[0], c2.shape[1], c2.shape[2], c2.shape[3]],
        device,
    );
    Net {
        fc1: linear_from(layers, "fc1", device),
        blocks: (0..2)
            .map(|i| Block {
                fc: linear_from(layers, &format!("blocks.{i}.fc"), device),
            })
            .collect(),
        conv1,
        conv2,
        head: linear_from(layers, "head", device),
    }
}

/// A small MLP to train: 16 -> width -> width -> 4.
#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
    pub out: Linear,
    pub act: Relu,
}

impl Mlp {
    pub fn new(width: usize, device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(16, width).init(device),
            fc2: LinearConfig::new(width, width).init(device),
            out: LinearConfig::new(width, 4).init(device),
            act: Relu::new(),
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.act.forward(self.fc1.forward(x));
        let x = self.act.forward(self.fc2.forward(x));
        self.out.forward(x)
    }
}

/// A fixed batch: 64 samples of 16 features, labelled by the largest of the first four.
pub fn batch(device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let x: Vec<f32> = (0..64 * 16)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    let y: Vec<i64> = x
        .chunks(16)
        .map(|row| (0..4).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap() as i64)
        .collect();
    (
        Tensor::from_data(TensorData::new(x, [64, 16]), device),
        Tensor::from_data(TensorData::new(y, [64]), device),
    )
}

/// One SGD step on `batch`; returns the updated model and the loss.
pub fn train_step(
    model: Mlp,
    optim: &mut ModuleOptimizer,
    (x, y): &(Tensor<2>, Tensor<1, Int>),
) -> (Mlp, f64) {
    let logits = model.forward(x.clone());
    let loss = CrossEntropyLoss::new(None, &logits.device()).forward(logits, y.clone());
    let value = loss.clone().into_scalar::<f32>() as f64;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (optim.step(0.05, model, grads), value)
}

/// The bytes a checkpoint should hold for a Linear weight: the value transposed to [out, in].
pub fn linear_bytes(l: &Linear) -> Vec<u8> {
    l.weight
        .val()
        .inner()
        .transpose()
        .into_data()
        .as_bytes()
        .to_vec()
}
