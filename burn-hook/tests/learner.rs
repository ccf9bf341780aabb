//! Burn's `Learner` integration: the model carries a `SharedBurnHook` in a `#[module(skip)]` field and calls it
//! from its `TrainStep::optimize` override, which the `Learner` runs once per optimizer step with the updated model.

mod common;

use std::collections::BTreeSet;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::train::{
    ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainOutput, TrainStep,
};
use common::{device, Mlp};
use htsr_burn_hook::{HtsrBurnHook, SharedBurnHook, StepInfo};
use htsr_hook_core::test_support::{files, metadata, tensors};

#[derive(Module, Debug)]
struct Classifier {
    mlp: Mlp,
    #[module(skip)]
    htsr: Option<SharedBurnHook>,
}

#[derive(Clone, Debug)]
struct Batch {
    x: Tensor<2>,
    y: Tensor<1, Int>,
}

#[derive(Clone)]
struct ToBatch;

impl Batcher<(Vec<f32>, i64), Batch> for ToBatch {
    fn batch(&self, items: Vec<(Vec<f32>, i64)>, device: &Device) -> Batch {
        let n = items.len();
        let x: Vec<f32> = items.iter().flat_map(|(x, _)| x.iter().copied()).collect();
        let y: Vec<i64> = items.iter().map(|(_, y)| *y).collect();
        Batch {
            x: Tensor::from_data(TensorData::new(x, [n, 16]), device),
            y: Tensor::from_data(TensorData::new(y, [n]), device),
        }
    }
}

impl Classifier {
    fn classify(&self, b: Batch) -> ClassificationOutput {
        let logits = self.mlp.forward(b.x);
        let loss =
            CrossEntropyLoss::new(None, &logits.device()).forward(logits.clone(), b.y.clone());
        ClassificationOutput::new(loss, logits, b.y)
    }
}

impl TrainStep for Classifier {
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, b: Batch) -> TrainOutput<ClassificationOutput> {
        let out = self.classify(b);
        TrainOutput::new(self, out.loss.backward(), out)
    }

    // The default body is `optim.step(lr, self, grads)`; the hook sees the model it returns.
    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        let info = StepInfo::new().lr(lr.base());
        let model = optim.step(lr, self, grads);
        if let Some(htsr) = &model.htsr {
            htsr.after_update(&model, info);
        }
        model
    }
}

impl InferenceStep for Classifier {
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, b: Batch) -> ClassificationOutput {
        self.classify(b)
    }
}

/// `n` samples of 16 features, labelled by the largest of the first four.
fn samples(n: usize, offset: usize) -> Vec<(Vec<f32>, i64)> {
    (0..n)
        .map(|i| {
            let x: Vec<f32> = (0..16)
                .map(|j| (((i + offset) * 7919 + j * 104729) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let y = (0..4).max_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap() as i64;
            (x, y)
        })
        .collect()
}

#[test]
fn the_learner_writes_checkpoints_through_the_optimize_override() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device();
    let htsr = HtsrBurnHook::builder()
        .dir(tmp.path())
        .run("learner")
        .every(4)
        .build()
        .unwrap()
        .into_shared();
    let model = Classifier {
        mlp: Mlp::new(24, &device),
        htsr: Some(htsr.clone()),
    };
    // 320 samples in batches of 32: 10 optimizer steps per epoch, 2 epochs.
    let train = DataLoaderBuilder::new(ToBatch)
        .batch_size(32)
        .build(InMemDataset::new(samples(320, 0)));
    let valid = DataLoaderBuilder::new(ToBatch)
        .batch_size(32)
        .build(InMemDataset::new(samples(64, 1000)));
    let result = SupervisedTraining::new(tmp.path().join("artifacts"), train, valid)
        .num_epochs(2)
        .with_application_logger(None)
        .launch(Learner::new(model, AdamConfig::new().init(), 1e-3));
    assert_eq!(htsr.steps(), 20, "one call per optimizer step");
    let stats = htsr.finish().unwrap();
    assert_eq!((stats.written, stats.failed), (5, 0));

    let dir = tmp.path().join("learner");
    let want: BTreeSet<String> = [4, 8, 12, 16, 20]
        .into_iter()
        .map(|s| format!("step-{s:09}.safetensors"))
        .collect();
    assert_eq!(files(&dir), want);
    let last = dir.join("step-000000020.safetensors");
    let t = tensors(&last);
    let names: Vec<&String> = t.keys().collect();
    assert_eq!(
        names,
        ["mlp.fc1.weight", "mlp.fc2.weight", "mlp.out.weight"]
    );
    assert_eq!(t["mlp.fc1.weight"].1, [24, 16], "PyTorch layout");
    assert_eq!(metadata(&last)["htsr.lr"].parse::<f64>().unwrap(), 1e-3);
    // The last checkpoint holds the trained model's weights.
    let trained = result
        .model
        .mlp
        .fc1
        .weight
        .val()
        .inner()
        .transpose()
        .into_data();
    assert_eq!(t["mlp.fc1.weight"].2.as_slice(), trained.as_bytes());
}
