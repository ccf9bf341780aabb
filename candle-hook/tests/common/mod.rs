//! Models shared by the tests: the parity model built with candle-nn and set to PyTorch-layout layers, and a
//! small MLP to train.

#![allow(dead_code)] // each test binary uses its own share of these

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{
    conv1d, conv2d, linear, Conv1dConfig, Conv2dConfig, Linear, Optimizer, VarBuilder, VarMap,
};
use htsr_hook_core::test_support::Layer;

/// The parity model, as PyTorch names it: `fc1`, `blocks.{0,1}.fc`, `conv1`, `conv2`, `head` (see
/// `parity_layers`), created by candle-nn's own layers so that the names and shapes are candle-nn's.
pub fn parity_varmap(layers: &[Layer]) -> VarMap {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    linear(40, 96, vb.pp("fc1")).unwrap();
    linear(96, 64, vb.pp("blocks").pp(0).pp("fc")).unwrap();
    linear(64, 64, vb.pp("blocks").pp(1).pp("fc")).unwrap();
    conv1d(8, 24, 5, Conv1dConfig::default(), vb.pp("conv1")).unwrap();
    conv2d(12, 16, 3, Conv2dConfig::default(), vb.pp("conv2")).unwrap();
    linear(64, 10, vb.pp("head")).unwrap();
    {
        let vars = varmap.data().lock().unwrap();
        for l in layers {
            let value =
                Tensor::from_vec(l.values.clone(), l.shape.as_slice(), &Device::Cpu).unwrap();
            // `set` checks the shape: candle-nn's layout is PyTorch's.
            vars[&l.name].set(&value).unwrap();
        }
    }
    varmap
}

/// A small MLP to train: 16 -> width -> width -> 4.
pub struct Mlp {
    pub varmap: VarMap,
    fc1: Linear,
    fc2: Linear,
    out: Linear,
}

impl Mlp {
    pub fn new(width: usize) -> Self {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        Self {
            fc1: linear(16, width, vb.pp("fc1")).unwrap(),
            fc2: linear(width, width, vb.pp("fc2")).unwrap(),
            out: linear(width, 4, vb.pp("out")).unwrap(),
            varmap,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let x = self.fc1.forward(x).unwrap().relu().unwrap();
        let x = self.fc2.forward(&x).unwrap().relu().unwrap();
        self.out.forward(&x).unwrap()
    }

    /// The raw f32 bytes of every 2-D variable, by name.
    pub fn weight_bytes(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        self.varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.dims().len() == 2)
            .map(|(name, v)| {
                let values = v.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (
                    name.clone(),
                    values.iter().flat_map(|x| x.to_le_bytes()).collect(),
                )
            })
            .collect()
    }
}

/// A fixed batch: 64 samples of 16 features, labelled by the largest of the first four.
pub fn batch() -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..64 * 16)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    let x = Tensor::from_vec(x, (64, 16), &Device::Cpu).unwrap();
    let y = x.narrow(1, 0, 4).unwrap().argmax(D::Minus1).unwrap();
    (x, y)
}

/// One optimizer step on `batch`; returns the loss.
pub fn train_step(m: &Mlp, opt: &mut impl Optimizer, (x, y): &(Tensor, Tensor)) -> f64 {
    let loss = candle_nn::loss::cross_entropy(&m.forward(x), y).unwrap();
    opt.backward_step(&loss).unwrap();
    loss.to_scalar::<f32>().unwrap() as f64
}
