//! Spectra mode on real tch tensors: the eigenvalues the hook writes are the ones htsr-engine computes from the
//! weights (from a CPU snapshot: the same code on the same bytes; on the device: libtorch's eigensolver, equal to
//! rounding), and ranks split the layers between them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use htsr_contracts::spectra::{keys, SpectrumMeta};
use htsr_engine::analyze::{analyze_checkpoint, AnalyzeOptions, CheckpointAnalysis};
use htsr_tch_hook::{HtsrHook, Mode, SpectraPrecision};
use safetensors::SafeTensors;
use tch::nn::VarStore;
use tch::Device;

/// Dense, Conv1d and Conv2d (PyTorch layout) weights, and a bias that is no layer.
fn model(seed: i64) -> VarStore {
    tch::set_num_threads(1);
    tch::manual_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let _ = (&root / "fc1").randn("weight", &[96, 40], 0.0, 0.1);
    let _ = (&root / "fc2").randn("weight", &[30, 96], 0.0, 0.1);
    let _ = (&root / "conv1").randn("weight", &[24, 8, 5], 0.0, 0.2);
    let _ = (&root / "conv2").randn("weight", &[16, 12, 3, 3], 0.0, 0.2);
    let _ = (&root / "fc1").randn("bias", &[96], 0.0, 0.1);
    vs
}

fn files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Layer name -> (eigenvalues, alpha) of an analysis.
fn by_layer(a: &CheckpointAnalysis) -> BTreeMap<String, (Vec<f64>, Option<f64>)> {
    a.layers
        .iter()
        .filter_map(|l| {
            let ev = l.eigenvalues.clone()?;
            Some((l.report.name.clone(), (ev, l.report.alpha())))
        })
        .collect()
}

fn metadata(path: &Path) -> std::collections::HashMap<String, String> {
    let bytes = fs::read(path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    header.metadata().clone().unwrap()
}

#[test]
fn both_mode_writes_weights_and_spectra_equal_to_the_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let vs = model(1);
    let mut hook = HtsrHook::builder()
        .dir(tmp.path())
        .run("r")
        .every(10)
        .mode(Mode::Both)
        .build()
        .unwrap();
    hook.step(10, &vs).unwrap();
    hook.finish().unwrap();
    let dir = tmp.path().join("r");
    assert_eq!(
        files(&dir),
        BTreeSet::from([
            "step-000000010.safetensors".to_string(),
            "step-000000010.esd.safetensors".to_string()
        ])
    );
    let opts = AnalyzeOptions::default();
    let weights = analyze_checkpoint(&dir.join("step-000000010.safetensors"), &opts).unwrap();
    let spectra = analyze_checkpoint(&dir.join("step-000000010.esd.safetensors"), &opts).unwrap();
    let (w, s) = (by_layer(&weights), by_layer(&spectra));
    assert_eq!(
        w.keys().collect::<Vec<_>>(),
        ["conv1", "conv2", "fc1", "fc2"],
        "the four layers, not the bias"
    );
    // From a CPU snapshot the writer thread runs the engine on the same bytes: identical numbers.
    assert_eq!(w, s);
    let meta = metadata(&dir.join("step-000000010.esd.safetensors"));
    assert_eq!(meta["htsr.step"], "10");
    assert_eq!(meta[keys::KIND], "spectra");
    let conv2: SpectrumMeta =
        serde_json::from_str(&meta[&format!("{}conv2.weight", keys::LAYER_PREFIX)]).unwrap();
    assert_eq!((conv2.N, conv2.M, conv2.rf), (16, 12, 9));
    assert_eq!(conv2.shape, [16, 12, 3, 3]);
    assert_eq!(conv2.hash.len(), 64, "a blake3 content hash");
}

#[test]
fn spectra_computed_with_libtorch_on_the_device_agree_with_the_engine() {
    // The accelerator path (Gram matrices and eigvalsh in libtorch), run here on the CPU.
    let tmp = tempfile::tempdir().unwrap();
    let vs = model(2);
    for (run, precision, tolerance) in [
        ("f64", SpectraPrecision::F64, 1e-9),
        ("f32", SpectraPrecision::F32, 1e-4),
    ] {
        let mut hook = HtsrHook::builder()
            .dir(tmp.path())
            .run(run)
            .every(1)
            .mode(Mode::Both)
            .spectra_on_device(true)
            .spectra_precision(precision)
            .build()
            .unwrap();
        hook.step(1, &vs).unwrap();
        hook.finish().unwrap();
        let dir = tmp.path().join(run);
        let opts = AnalyzeOptions::default();
        let w =
            by_layer(&analyze_checkpoint(&dir.join("step-000000001.safetensors"), &opts).unwrap());
        let s = by_layer(
            &analyze_checkpoint(&dir.join("step-000000001.esd.safetensors"), &opts).unwrap(),
        );
        assert_eq!(w.keys().collect::<Vec<_>>(), s.keys().collect::<Vec<_>>());
        for (name, (ev_w, alpha_w)) in &w {
            let (ev_s, alpha_s) = &s[name];
            assert_eq!(ev_w.len(), ev_s.len(), "{run} {name}");
            let max = ev_w.last().copied().unwrap();
            for (a, b) in ev_w.iter().zip(ev_s) {
                assert!((a - b).abs() <= tolerance * max, "{run} {name}: {a} vs {b}");
            }
            if precision == SpectraPrecision::F64 {
                let (a, b) = (alpha_w.unwrap(), alpha_s.unwrap());
                assert!((a - b).abs() <= 1e-6 * a, "{name} alpha {a} vs {b}");
            }
        }
        let meta = metadata(&dir.join("step-000000001.esd.safetensors"));
        let fc1: SpectrumMeta =
            serde_json::from_str(&meta[&format!("{}fc1.weight", keys::LAYER_PREFIX)]).unwrap();
        assert_eq!(fc1.precision, run);
    }
}

#[test]
fn ranks_split_the_layers_by_cost_and_only_rank_0_writes_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let vs = model(3);
    for rank in 0..2 {
        let mut hook = HtsrHook::builder()
            .dir(tmp.path())
            .run("r")
            .every(5)
            .mode(Mode::Both)
            .rank(rank, 2)
            .build()
            .unwrap();
        hook.step(5, &vs).unwrap();
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
        assert_eq!(meta[keys::WORLD_SIZE], "2");
        let names = meta
            .keys()
            .filter_map(|k| k.strip_prefix(keys::LAYER_PREFIX))
            .map(String::from)
            .collect();
        (names, meta[keys::ASSIGNMENT].clone())
    };
    let ((zero, assignment0), (one, assignment1)) = (layers(0), layers(1));
    assert_eq!(
        assignment0, assignment1,
        "every rank writes the same assignment"
    );
    assert!(zero.is_disjoint(&one), "{zero:?} {one:?}");
    let all: BTreeSet<String> = zero.union(&one).cloned().collect();
    assert_eq!(
        all,
        ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    assert!(!zero.is_empty() && !one.is_empty(), "both ranks have work");
}

#[test]
fn spectra_only_mode_writes_no_weights_and_reports_nan_layers_as_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let vs = model(4);
    tch::no_grad(|| {
        let mut vars = vs.variables();
        let fc2 = vars.get_mut("fc2.weight").unwrap();
        let _ = fc2.get(0).get(0).fill_(f64::NAN);
    });
    let mut hook = HtsrHook::builder()
        .dir(tmp.path())
        .run("s")
        .every(1)
        .mode(Mode::Spectra)
        .build()
        .unwrap();
    hook.step(3, &vs).unwrap();
    hook.finish().unwrap();
    let dir = tmp.path().join("s");
    assert_eq!(
        files(&dir),
        BTreeSet::from(["step-000000003.esd.safetensors".to_string()])
    );
    let meta = metadata(&dir.join("step-000000003.esd.safetensors"));
    let fc2: SpectrumMeta =
        serde_json::from_str(&meta[&format!("{}fc2.weight", keys::LAYER_PREFIX)]).unwrap();
    assert!(
        fc2.failed
            .as_deref()
            .unwrap()
            .contains("1 NaN and 0 infinite"),
        "{fc2:?}"
    );
    let a = analyze_checkpoint(
        &dir.join("step-000000003.esd.safetensors"),
        &AnalyzeOptions::default(),
    )
    .unwrap();
    let fc2 = a.layers.iter().find(|l| l.report.name == "fc2").unwrap();
    // As a weight checkpoint with a NaN reports it: failed, with the count.
    assert_eq!(fc2.report.status, htsr_contracts::LayerStatus::Failed);
}
