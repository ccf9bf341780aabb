//! The files the Burn hook writes analyze exactly as the files the tch hook writes for the same weights, and its
//! spectra files as its weights files (the tch hook's parity rule: eigenvalues to 1e-9 of lambda_max, alpha to
//! 1e-6). The weights are seeded arrays in PyTorch layout; the Burn model holds the same values in Burn's layout.
//!
//! Names: this model's Burn record paths are PyTorch's own (`fc1.weight`, `blocks.0.fc.weight`, `conv1.weight`),
//! so the two files have the same tensor names. (Burn names differ from PyTorch's only for the norm layers'
//! `gamma`/`beta` (PyTorch `weight`/`bias`, 1-D and not saved by default) and enum variants, which Burn adds to
//! the path.)

mod common;

use common::{device, net_from};
use htsr_burn_hook::{HtsrBurnHook, Mode};
use htsr_hook_core::test_support::{
    assert_both_mode_checkpoint, assert_nan_head_is_a_failed_layer, assert_same_analysis,
    assert_two_ranks_split_the_layers, files, parity_layers, snapshots, tensors, write_as_tch_hook,
};

#[test]
fn a_burn_checkpoint_analyzes_exactly_as_the_tch_hooks_file_of_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = parity_layers(1);
    let reference = write_as_tch_hook(tmp.path(), "tch", 7, &snapshots(&layers));

    let model = net_from(&layers, &device());
    let mut hook = HtsrBurnHook::builder()
        .dir(tmp.path())
        .run("burn")
        .every(7)
        .build()
        .unwrap();
    hook.step(7, &model).unwrap();
    hook.finish().unwrap();
    let ours = tmp.path().join("burn/step-000000007.safetensors");

    // The same tensors, byte for byte (names, dtypes, PyTorch shapes, values).
    assert_eq!(tensors(&ours), tensors(&reference));
    let analyzed = assert_same_analysis(&ours, &reference);
    assert_eq!(
        analyzed, 6,
        "fc1, blocks.0.fc, blocks.1.fc, conv1, conv2, head"
    );
}

#[test]
fn spectra_analyze_as_the_weights_they_come_from() {
    let tmp = tempfile::tempdir().unwrap();
    let model = net_from(&parity_layers(2), &device());
    let mut hook = HtsrBurnHook::builder()
        .dir(tmp.path())
        .run("r")
        .every(10)
        .mode(Mode::Both)
        .build()
        .unwrap();
    hook.step(10, &model).unwrap();
    hook.finish().unwrap();
    assert_both_mode_checkpoint(&tmp.path().join("r"), 10);
}

#[test]
fn ranks_split_the_layers_and_only_rank_0_writes_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let model = net_from(&parity_layers(3), &device());
    for rank in 0..2 {
        let mut hook = HtsrBurnHook::builder()
            .dir(tmp.path())
            .run("r")
            .every(5)
            .mode(Mode::Both)
            .rank(rank, 2)
            .build()
            .unwrap();
        hook.step(5, &model).unwrap();
        hook.finish().unwrap();
    }
    assert_two_ranks_split_the_layers(&tmp.path().join("r"), 5);
}

#[test]
fn a_layer_with_nan_is_a_failed_layer_in_a_spectra_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut layers = parity_layers(4);
    layers
        .iter_mut()
        .find(|l| l.name == "head.weight")
        .unwrap()
        .values[0] = f32::NAN;
    let model = net_from(&layers, &device());
    let mut hook = HtsrBurnHook::builder()
        .dir(tmp.path())
        .run("s")
        .every(1)
        .mode(Mode::Spectra)
        .build()
        .unwrap();
    hook.step(3, &model).unwrap();
    hook.finish().unwrap();
    assert_eq!(files(&tmp.path().join("s")).len(), 1, "spectra only");
    assert_nan_head_is_a_failed_layer(&tmp.path().join("s/step-000000003.esd.safetensors"));
}
