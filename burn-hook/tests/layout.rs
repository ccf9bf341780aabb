//! Names, shapes, layouts, values and dtypes of what the Burn hook writes: Burn's record paths through nested
//! modules, a Vec of layers, an Option and an enum; Linear weights transposed to PyTorch's [out, in] and checked
//! element by element; Conv1d/Conv2d kernels as they are; 1-D parameters left to `min_dims`; f16/bf16/f64 kept.

mod common;

use std::path::Path;

use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig, LinearLayout};
use burn::prelude::*;
use burn::tensor::DType;
use common::{device, param};
use htsr_burn_hook::{HtsrBurnHook, StepInfo};
use htsr_hook_core::test_support::{f32s, seeded_layer, tensors};
use safetensors::Dtype;

#[derive(Module, Debug)]
struct Inner {
    proj: Linear,
    norm: LayerNorm,
}

#[derive(Module, Debug)]
enum Mixer {
    Dense(Linear),
    Conv(Conv1d),
}

#[derive(Module, Debug)]
struct Zoo {
    encoder: Vec<Inner>,
    mixer: Mixer,
    conv: Conv2d,
    maybe: Option<Linear>,
    nothing: Option<Linear>,
    /// A column-major Linear: Burn's `val()` is still [d_input, d_output].
    col: Linear,
}

fn zoo(device: &Device) -> Zoo {
    Zoo {
        encoder: (0..2)
            .map(|_| Inner {
                proj: LinearConfig::new(12, 20).init(device),
                norm: LayerNormConfig::new(20).init(device),
            })
            .collect(),
        mixer: Mixer::Dense(LinearConfig::new(20, 6).with_bias(false).init(device)),
        conv: Conv2dConfig::new([3, 8], [3, 2]).init(device),
        maybe: Some(LinearConfig::new(6, 5).init(device)),
        nothing: None,
        col: LinearConfig::new(7, 9)
            .with_layout(LinearLayout::Col)
            .init(device),
    }
}

/// Writes one checkpoint of `model` with `min_dims` into `dir/run` and returns its path.
fn write<M: Module>(dir: &Path, run: &str, model: &M, min_dims: usize) -> std::path::PathBuf {
    let mut hook = HtsrBurnHook::builder()
        .dir(dir)
        .run(run)
        .every(1)
        .min_dims(min_dims)
        .build()
        .unwrap();
    hook.step_with(3, model, StepInfo::new()).unwrap();
    hook.finish().unwrap();
    dir.join(run).join("step-000000003.safetensors")
}

#[test]
fn names_are_burn_record_paths_and_shapes_are_pytorch_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device();
    let model = zoo(&device);
    let got: Vec<(String, Vec<usize>)> = tensors(&write(tmp.path(), "all", &model, 1))
        .into_iter()
        .map(|(name, (_, shape, _))| (name, shape))
        .collect();
    let want: Vec<(&str, Vec<usize>)> = vec![
        ("col.bias", vec![9]),
        ("col.weight", vec![9, 7]),
        ("conv.bias", vec![8]),
        ("conv.weight", vec![8, 3, 3, 2]),
        ("encoder.0.norm.beta", vec![20]),
        ("encoder.0.norm.gamma", vec![20]),
        ("encoder.0.proj.bias", vec![20]),
        ("encoder.0.proj.weight", vec![20, 12]),
        ("encoder.1.norm.beta", vec![20]),
        ("encoder.1.norm.gamma", vec![20]),
        ("encoder.1.proj.bias", vec![20]),
        ("encoder.1.proj.weight", vec![20, 12]),
        ("maybe.bias", vec![5]),
        ("maybe.weight", vec![5, 6]),
        ("mixer.Dense.weight", vec![6, 20]),
    ];
    let want: Vec<(String, Vec<usize>)> =
        want.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
    assert_eq!(got, want);

    // The default (min_dims 2) keeps the matrices and kernels only; the name filter applies on top.
    let names: Vec<String> = tensors(&write(tmp.path(), "default", &model, 2))
        .into_keys()
        .collect();
    assert_eq!(
        names,
        [
            "col.weight",
            "conv.weight",
            "encoder.0.proj.weight",
            "encoder.1.proj.weight",
            "maybe.weight",
            "mixer.Dense.weight"
        ]
    );
    let mut hook = HtsrBurnHook::builder()
        .dir(tmp.path())
        .run("filtered")
        .every(1)
        .filter(|n| n.starts_with("encoder."))
        .build()
        .unwrap();
    hook.step(0, &model).unwrap();
    hook.finish().unwrap();
    let names: Vec<String> = tensors(&tmp.path().join("filtered/step-000000000.safetensors"))
        .into_keys()
        .collect();
    assert_eq!(names, ["encoder.0.proj.weight", "encoder.1.proj.weight"]);

    // An enum's other variant: a Conv1d is not transposed.
    let conv_mixer = Zoo {
        mixer: Mixer::Conv(Conv1dConfig::new(4, 6, 3).init(&device)),
        ..zoo(&device)
    };
    let t = tensors(&write(tmp.path(), "enum", &conv_mixer, 2));
    assert_eq!(t["mixer.Conv.weight"].1, [6, 4, 3]);
}

#[test]
fn linear_weights_are_transposed_and_kernels_kept_element_by_element() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device();
    let dense = seeded_layer("dense.weight", &[7, 5], 1); // PyTorch [out, in]
    let k1 = seeded_layer("c1.weight", &[6, 4, 3], 2);
    let k2 = seeded_layer("c2.weight", &[5, 3, 2, 4], 3);

    #[derive(Module, Debug)]
    struct Layers {
        dense: Linear,
        c1: Conv1d,
        c2: Conv2d,
    }
    let mut c1 = Conv1dConfig::new(4, 6, 3).init(&device);
    c1.weight = param(k1.values.clone(), [6, 4, 3], &device);
    let mut c2 = Conv2dConfig::new([3, 5], [2, 4]).init(&device);
    c2.weight = param(k2.values.clone(), [5, 3, 2, 4], &device);
    let model = Layers {
        // Burn holds [in, out]: element [i][o] is PyTorch's [o][i].
        dense: Linear {
            weight: param(dense.transposed(), [5, 7], &device),
            bias: None,
        },
        c1,
        c2,
    };
    let burn_dense = model.dense.weight.val().inner().into_data();
    assert_eq!(burn_dense.shape().as_slice(), [5, 7]);
    let burn_dense = burn_dense.as_slice::<f32>().unwrap().to_vec();

    let t = tensors(&write(tmp.path(), "values", &model, 2));
    let (dtype, shape, bytes) = &t["dense.weight"];
    assert_eq!((*dtype, shape.as_slice()), (Dtype::F32, [7, 5].as_slice()));
    let file = f32s(bytes);
    for o in 0..7 {
        for i in 0..5 {
            assert_eq!(file[o * 5 + i], dense.at(&[o, i]), "[{o}][{i}]");
            assert_eq!(file[o * 5 + i], burn_dense[i * 7 + o], "Burn's [{i}][{o}]");
        }
    }
    // What the layers compute agrees: y = W x in PyTorch's terms, so input e_i gives column i of the file's
    // [out, in] matrix. For the default (row) layout and for a column-major Linear, whose storage differs.
    let col = LinearConfig::new(5, 7)
        .with_layout(LinearLayout::Col)
        .with_bias(false)
        .init(&device);
    #[derive(Module, Debug)]
    struct Col {
        col: Linear,
    }
    let col = Col { col };
    let col_file = f32s(&tensors(&write(tmp.path(), "col", &col, 2))["col.weight"].2);
    for (layer, file) in [(&model.dense, &file), (&col.col, &col_file)] {
        for i in 0..5 {
            let mut e = vec![0f32; 5];
            e[i] = 1.0;
            let y = layer.forward(Tensor::<2>::from_data(TensorData::new(e, [1, 5]), &device));
            let y = y.inner().into_data().as_slice::<f32>().unwrap().to_vec();
            let column: Vec<f32> = (0..7).map(|o| file[o * 5 + i]).collect();
            assert_eq!(y, column, "input {i}");
        }
    }
    assert_eq!(t["c1.weight"].1, k1.shape);
    assert_eq!(
        f32s(&t["c1.weight"].2),
        k1.values,
        "Conv1d kernels are already [out, in, k]"
    );
    assert_eq!(t["c2.weight"].1, k2.shape);
    assert_eq!(
        f32s(&t["c2.weight"].2),
        k2.values,
        "Conv2d kernels are already [out, in, kh, kw]"
    );
    for (o, i, y, x) in [(0, 0, 0, 0), (4, 2, 1, 3), (2, 1, 0, 2)] {
        assert_eq!(
            f32s(&t["c2.weight"].2)[((o * 3 + i) * 2 + y) * 4 + x],
            k2.at(&[o, i, y, x])
        );
    }
}

#[test]
fn half_and_double_precision_models_keep_their_dtype() {
    let tmp = tempfile::tempdir().unwrap();
    let device = device();
    let dense = seeded_layer("fc.weight", &[6, 4], 9);
    let kernel = seeded_layer("conv.weight", &[3, 2, 5], 10);

    #[derive(Module, Debug)]
    struct Small {
        fc: Linear,
        conv: Conv1d,
    }
    for (dtype, want) in [
        (DType::F16, Dtype::F16),
        (DType::BF16, Dtype::BF16),
        (DType::F64, Dtype::F64),
        (DType::F32, Dtype::F32),
    ] {
        let w = Tensor::<2>::from_data(TensorData::new(dense.transposed(), [4, 6]), &device)
            .cast(dtype);
        let k = Tensor::<3>::from_data(TensorData::new(kernel.values.clone(), [3, 2, 5]), &device)
            .cast(dtype);
        let mut conv = Conv1dConfig::new(2, 3, 5).init(&device);
        conv.weight = burn::module::Param::from_tensor(k);
        let model = Small {
            fc: Linear {
                weight: burn::module::Param::from_tensor(w),
                bias: None,
            },
            conv,
        };
        assert_eq!(model.fc.weight.val().dtype(), dtype);
        let run = format!("{dtype:?}");
        let t = tensors(&write(tmp.path(), &run, &model, 2));
        let (got, shape, bytes) = &t["fc.weight"];
        assert_eq!((*got, shape.as_slice()), (want, [6, 4].as_slice()), "{run}");
        assert_eq!(t["conv.weight"].0, want, "{run}");
        // The bytes are the model's own values in their dtype (transposed), not a conversion through f32.
        let expected = model.fc.weight.val().inner().transpose().into_data();
        assert_eq!(bytes.as_slice(), expected.as_bytes(), "{run}");
        let first = match want {
            Dtype::F16 => half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f64(),
            Dtype::BF16 => half::bf16::from_le_bytes([bytes[0], bytes[1]]).to_f64(),
            Dtype::F64 => f64::from_le_bytes(bytes[..8].try_into().unwrap()),
            _ => f32::from_le_bytes(bytes[..4].try_into().unwrap()) as f64,
        };
        let tolerance = match want {
            Dtype::BF16 => 1e-2,
            Dtype::F16 => 1e-3,
            _ => 0.0,
        };
        assert!(
            (first - dense.at(&[0, 0]) as f64).abs() <= tolerance * dense.at(&[0, 0]).abs() as f64,
            "{run}: {first} vs {}",
            dense.at(&[0, 0])
        );
    }
}
