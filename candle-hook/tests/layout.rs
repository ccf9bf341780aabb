//! Names, shapes, values and dtypes of what the Candle hook writes: the VarMap's names (VarBuilder paths through
//! nested prefixes and numbered layers), sorted; Linear weights in PyTorch's [out, in] checked element by element
//! (and against what the layer computes); Conv1d/Conv2d kernels; 1-D variables left to `min_dims`; f16/bf16/f64
//! kept.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{
    conv1d, conv2d, linear, linear_no_bias, Conv1dConfig, Conv2dConfig, VarBuilder, VarMap,
};
use htsr_candle_hook::{HtsrCandleHook, StepInfo};
use htsr_hook_core::test_support::{f32s, seeded_layer, tensors};
use safetensors::Dtype;

/// Writes one checkpoint of `varmap` with `min_dims` into `dir/run` and returns its path.
fn write(dir: &Path, run: &str, varmap: &VarMap, min_dims: usize) -> PathBuf {
    let mut hook = HtsrCandleHook::builder()
        .dir(dir)
        .run(run)
        .every(1)
        .min_dims(min_dims)
        .build()
        .unwrap();
    hook.step_with(3, varmap, StepInfo::new()).unwrap();
    hook.finish().unwrap();
    dir.join(run).join("step-000000003.safetensors")
}

#[test]
fn names_are_the_varmaps_and_shapes_are_pytorch_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    for i in 0..2 {
        let block = vb.pp("encoder").pp("layers").pp(i);
        linear(12, 20, block.pp("proj")).unwrap();
        candle_nn::layer_norm(20, 1e-5, block.pp("norm")).unwrap();
    }
    conv2d(3, 8, 3, Conv2dConfig::default(), vb.pp("conv")).unwrap();
    conv1d(4, 6, 5, Conv1dConfig::default(), vb.pp("mixer").pp("conv")).unwrap();
    linear_no_bias(20, 6, vb.pp("head")).unwrap();

    let got: Vec<(String, Vec<usize>)> = tensors(&write(tmp.path(), "all", &varmap, 1))
        .into_iter()
        .map(|(name, (_, shape, _))| (name, shape))
        .collect();
    let want: Vec<(&str, Vec<usize>)> = vec![
        ("conv.bias", vec![8]),
        ("conv.weight", vec![8, 3, 3, 3]),
        ("encoder.layers.0.norm.bias", vec![20]),
        ("encoder.layers.0.norm.weight", vec![20]),
        ("encoder.layers.0.proj.bias", vec![20]),
        ("encoder.layers.0.proj.weight", vec![20, 12]),
        ("encoder.layers.1.norm.bias", vec![20]),
        ("encoder.layers.1.norm.weight", vec![20]),
        ("encoder.layers.1.proj.bias", vec![20]),
        ("encoder.layers.1.proj.weight", vec![20, 12]),
        ("head.weight", vec![6, 20]),
        ("mixer.conv.bias", vec![6]),
        ("mixer.conv.weight", vec![6, 4, 5]),
    ];
    let want: Vec<(String, Vec<usize>)> =
        want.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
    assert_eq!(got, want);

    let names: Vec<String> = tensors(&write(tmp.path(), "default", &varmap, 2))
        .into_keys()
        .collect();
    assert_eq!(
        names,
        [
            "conv.weight",
            "encoder.layers.0.proj.weight",
            "encoder.layers.1.proj.weight",
            "head.weight",
            "mixer.conv.weight"
        ]
    );
    let mut hook = HtsrCandleHook::builder()
        .dir(tmp.path())
        .run("filtered")
        .every(1)
        .filter(|n| n.starts_with("encoder."))
        .build()
        .unwrap();
    hook.step(0, &varmap).unwrap();
    hook.finish().unwrap();
    let names: Vec<String> = tensors(&tmp.path().join("filtered/step-000000000.safetensors"))
        .into_keys()
        .collect();
    assert_eq!(
        names,
        [
            "encoder.layers.0.proj.weight",
            "encoder.layers.1.proj.weight"
        ]
    );
}

#[test]
fn linear_weights_and_kernels_are_written_element_by_element() {
    let tmp = tempfile::tempdir().unwrap();
    let dense = seeded_layer("dense.weight", &[7, 5], 1); // PyTorch [out, in]
    let k1 = seeded_layer("c1.weight", &[6, 4, 3], 2);
    let k2 = seeded_layer("c2.weight", &[5, 3, 2, 4], 3);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let layer = linear_no_bias(5, 7, vb.pp("dense")).unwrap();
    conv1d(4, 6, 3, Conv1dConfig::default(), vb.pp("c1")).unwrap();
    // A non-square Conv2d kernel through the VarBuilder directly (candle-nn's conv2d takes one kernel size).
    vb.pp("c2")
        .get_with_hints((5, 3, 2, 4), "weight", candle_nn::init::ZERO)
        .unwrap();
    {
        let vars = varmap.data().lock().unwrap();
        for l in [&dense, &k1, &k2] {
            let value =
                Tensor::from_vec(l.values.clone(), l.shape.as_slice(), &Device::Cpu).unwrap();
            vars[&l.name].set(&value).unwrap();
        }
    }

    let t = tensors(&write(tmp.path(), "values", &varmap, 2));
    let (dtype, shape, bytes) = &t["dense.weight"];
    assert_eq!((*dtype, shape.as_slice()), (Dtype::F32, [7, 5].as_slice()));
    let file = f32s(bytes);
    for o in 0..7 {
        for i in 0..5 {
            assert_eq!(file[o * 5 + i], dense.at(&[o, i]), "[{o}][{i}]");
        }
    }
    // What the layer computes agrees: y = W x, so input e_i gives column i of the file's [out, in] matrix.
    for i in 0..5 {
        let mut e = vec![0f32; 5];
        e[i] = 1.0;
        let y = layer
            .forward(&Tensor::from_vec(e, (1, 5), &Device::Cpu).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let column: Vec<f32> = (0..7).map(|o| file[o * 5 + i]).collect();
        assert_eq!(y, column, "input {i}");
    }
    assert_eq!(t["c1.weight"].1, k1.shape);
    assert_eq!(
        f32s(&t["c1.weight"].2),
        k1.values,
        "Conv1d kernels are [out, in, k]"
    );
    assert_eq!(t["c2.weight"].1, k2.shape);
    let c2 = f32s(&t["c2.weight"].2);
    assert_eq!(c2, k2.values, "Conv2d kernels are [out, in, kh, kw]");
    for (o, i, y, x) in [(0, 0, 0, 0), (4, 2, 1, 3), (2, 1, 0, 2)] {
        assert_eq!(c2[((o * 3 + i) * 2 + y) * 4 + x], k2.at(&[o, i, y, x]));
    }
}

#[test]
fn half_and_double_precision_variables_keep_their_dtype() {
    let tmp = tempfile::tempdir().unwrap();
    for (dtype, want) in [
        (DType::F16, Dtype::F16),
        (DType::BF16, Dtype::BF16),
        (DType::F64, Dtype::F64),
        (DType::F32, Dtype::F32),
    ] {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, dtype, &Device::Cpu);
        linear(4, 6, vb.pp("fc")).unwrap();
        conv1d(2, 3, 5, Conv1dConfig::default(), vb.pp("conv")).unwrap();
        let run = dtype.as_str();
        let t = tensors(&write(tmp.path(), run, &varmap, 2));
        let (got, shape, bytes) = &t["fc.weight"];
        assert_eq!((*got, shape.as_slice()), (want, [6, 4].as_slice()), "{run}");
        assert_eq!(t["conv.weight"].0, want, "{run}");
        // The variable's own bytes in its dtype, not a conversion.
        let var = varmap.data().lock().unwrap()["fc.weight"]
            .as_tensor()
            .clone();
        let mut expected = Vec::new();
        var.write_bytes(&mut expected).unwrap();
        assert_eq!(bytes, &expected, "{run}");
    }
}
