//! The tch hook's file for seeded weights is the reference the Burn and Candle hooks' parity tests compare with
//! (`htsr_hook_core::test_support::write_as_tch_hook`): this test holds that reference to the real tch hook, so
//! that "analyzes exactly as the tch hook's file" means the file this hook writes.

use htsr_hook_core::test_support::{
    assert_same_analysis, parity_layers, snapshots, tensors, write_as_tch_hook,
};
use htsr_tch_hook::HtsrHook;
use tch::nn::VarStore;
use tch::{Device, Tensor};

#[test]
fn the_tch_hooks_file_is_the_reference_the_other_hooks_are_compared_with() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = parity_layers(1);
    let reference = write_as_tch_hook(tmp.path(), "reference", 7, &snapshots(&layers));

    let vs = VarStore::new(Device::Cpu);
    for layer in &layers {
        // `blocks.0.fc.weight` is the variable `weight` under the path `blocks / 0 / fc`, as nn::linear names it.
        let (path, name) = layer.name.rsplit_once('.').unwrap();
        let root = path.split('.').fold(vs.root(), |p, part| p / part);
        let shape: Vec<i64> = layer.shape.iter().map(|&d| d as i64).collect();
        let _variable = root.var_copy(name, &Tensor::from_slice(&layer.values).reshape(&shape));
    }
    let mut hook = HtsrHook::builder()
        .dir(tmp.path())
        .run("tch")
        .every(7)
        .build()
        .unwrap();
    hook.step(7, &vs).unwrap();
    hook.finish().unwrap();
    let real = tmp.path().join("tch/step-000000007.safetensors");

    assert_eq!(
        tensors(&real),
        tensors(&reference),
        "names, dtypes, shapes and bytes"
    );
    assert_eq!(
        assert_same_analysis(&real, &reference),
        6,
        "fc1, blocks.0.fc, blocks.1.fc, conv1, conv2, head"
    );
}
