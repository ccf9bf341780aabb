//! The files the Burn hook writes analyze exactly as the files the tch hook writes for the same weights, and its
//! spectra files as its weights files (the tch hook's parity rule: eigenvalues to 1e-9 of lambda_max, alpha to
//! 1e-6). The weights are seeded arrays in PyTorch layout; the Burn model holds the same values in Burn's layout.
//!
//! Names: this model's Burn record paths are PyTorch's own (`fc1.weight`, `blocks.0.fc.weight`, `conv1.weight`),
//! so the two files have the same tensor names. (Burn names differ from PyTorch's only for the norm layers'
//! `gamma`/`beta` (PyTorch `weight`/`bias`, 1-D and not saved by default) and enum variants, which Burn adds to
//! the path.)

mod common;

use std::collections::BTreeSet;

use common::{device, net_from};
use htsr_burn_hook::{HtsrBurnHook, Mode};
use htsr_contracts::spectra::{keys, SpectrumMeta};
use htsr_hook_core::test_support::{
    analyze, assert_same_analysis, assert_spectra_match_weights, files, metadata, parity_layers,
    snapshots, tensors, write_as_tch_hook,
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
    let dir = tmp.path().join("r");
    assert_eq!(
        files(&dir),
        BTreeSet::from([
            "step-000000010.safetensors".to_string(),
            "step-000000010.esd.safetensors".to_string()
        ])
    );
    let layers = assert_spectra_match_weights(
        &dir.join("step-000000010.safetensors"),
        &dir.join("step-000000010.esd.safetensors"),
    );
    assert_eq!(
        layers,
        [
            "blocks.0.fc",
            "blocks.1.fc",
            "conv1",
            "conv2",
            "fc1",
            "head"
        ]
    );
    let meta = metadata(&dir.join("step-000000010.esd.safetensors"));
    assert_eq!(meta["htsr.step"], "10");
    assert_eq!(meta[keys::KIND], "spectra");
    let conv2: SpectrumMeta =
        serde_json::from_str(&meta[&format!("{}conv2.weight", keys::LAYER_PREFIX)]).unwrap();
    assert_eq!((conv2.N, conv2.M, conv2.rf), (16, 12, 9));
    assert_eq!(conv2.shape, [16, 12, 3, 3]);
    assert_eq!(conv2.hash.len(), 64, "a blake3 content hash");
    let fc1: SpectrumMeta =
        serde_json::from_str(&meta[&format!("{}fc1.weight", keys::LAYER_PREFIX)]).unwrap();
    assert_eq!(
        (fc1.shape.as_slice(), fc1.N, fc1.M),
        ([96, 40].as_slice(), 96, 40)
    );
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
    let dir = tmp.path().join("r");
    assert_eq!(
        files(&dir),
        BTreeSet::from([
            "step-000000005.safetensors".to_string(),
            "step-000000005.rank-0-of-2.esd.safetensors".to_string(),
            "step-000000005.rank-1-of-2.esd.safetensors".to_string(),
        ])
    );
    let layers = |rank: usize| -> (BTreeSet<String>, String) {
        let meta = metadata(&dir.join(format!("step-000000005.rank-{rank}-of-2.esd.safetensors")));
        assert_eq!(meta[keys::RANK], rank.to_string());
        let names = meta
            .keys()
            .filter_map(|k| k.strip_prefix(keys::LAYER_PREFIX))
            .map(String::from)
            .collect();
        (names, meta[keys::ASSIGNMENT].clone())
    };
    let ((zero, a0), (one, a1)) = (layers(0), layers(1));
    assert_eq!(a0, a1, "every rank writes the same assignment");
    assert!(zero.is_disjoint(&one) && !zero.is_empty() && !one.is_empty());
    assert_eq!(zero.union(&one).count(), 6);
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
    let path = tmp.path().join("s/step-000000003.esd.safetensors");
    assert_eq!(files(&tmp.path().join("s")).len(), 1, "spectra only");
    let head: SpectrumMeta =
        serde_json::from_str(&metadata(&path)[&format!("{}head.weight", keys::LAYER_PREFIX)])
            .unwrap();
    assert!(
        head.failed.as_deref().unwrap_or("").contains("NaN"),
        "{head:?}"
    );
    let a = analyze(&path);
    let head = a.layers.iter().find(|l| l.report.name == "head").unwrap();
    assert_eq!(head.report.status, htsr_contracts::LayerStatus::Failed);
}
