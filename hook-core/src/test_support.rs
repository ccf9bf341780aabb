//! Test support (feature `test-support`): seeded layers in PyTorch layout, the file the tch hook writes for them,
//! and comparisons of the analyses of two files. The framework hooks' tests build the same layers in their own
//! framework, write them with their hook, and compare.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use htsr_contracts::naming::checkpoint_file_name;
use htsr_engine::analyze::{analyze_checkpoint, AnalyzeOptions, CheckpointAnalysis};
use htsr_writer::{
    checkpoint_metadata, CheckpointWriter, Dtype, FileJob, StepInfo, TensorSnapshot, WhenBehind,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One parameter in PyTorch layout, as f32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// The PyTorch name (`fc1.weight`).
    pub name: String,
    /// The PyTorch shape (`[out, in]`, `[out, in, k]`, `[out, in, kh, kw]`).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

impl Layer {
    /// The value at a multi-index of the PyTorch shape.
    pub fn at(&self, index: &[usize]) -> f32 {
        let flat = index
            .iter()
            .zip(&self.shape)
            .fold(0, |acc, (&i, &d)| acc * d + i);
        self.values[flat]
    }

    /// The values transposed to `[in, out]` (a 2-D layer only): how Burn stores a `Linear` weight.
    pub fn transposed(&self) -> Vec<f32> {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let mut out = vec![0.0; self.values.len()];
        for r in 0..rows {
            for c in 0..cols {
                out[c * rows + r] = self.values[r * cols + c];
            }
        }
        out
    }
}

/// Seeded values: uniform noise scaled like a default-initialized layer (1/sqrt(fan-in)), plus a rank-one spike so
/// that the spectra have structure for the fits to find.
pub fn seeded_layer(name: &str, shape: &[usize], seed: u64) -> Layer {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product::<usize>().max(1);
    let scale = 1.0 / (cols as f32).sqrt();
    let u: Vec<f32> = (0..rows).map(|_| rng.random_range(-1.0..1.0)).collect();
    let v: Vec<f32> = (0..cols).map(|_| rng.random_range(-1.0..1.0)).collect();
    let values = (0..rows * cols)
        .map(|i| {
            let noise: f32 = rng.random_range(-1.0..1.0);
            scale * (noise + 2.0 * u[i / cols] * v[i % cols])
        })
        .collect();
    Layer {
        name: name.to_string(),
        shape: shape.to_vec(),
        values,
    }
}

/// The parity model in PyTorch terms: dense layers (one at the top, two in a list of blocks, a head), a Conv1d and
/// a Conv2d, and the dense layers' biases.
pub fn parity_layers(seed: u64) -> Vec<Layer> {
    [
        ("fc1.weight", vec![96, 40]),
        ("fc1.bias", vec![96]),
        ("blocks.0.fc.weight", vec![64, 96]),
        ("blocks.0.fc.bias", vec![64]),
        ("blocks.1.fc.weight", vec![64, 64]),
        ("blocks.1.fc.bias", vec![64]),
        ("conv1.weight", vec![24, 8, 5]),
        ("conv2.weight", vec![16, 12, 3, 3]),
        ("head.weight", vec![10, 64]),
        ("head.bias", vec![10]),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, shape))| seeded_layer(name, &shape, seed * 100 + i as u64))
    .collect()
}

/// The layers as f32 snapshots (PyTorch layout, little-endian bytes), what the tch hook's snapshot holds.
pub fn snapshots(layers: &[Layer]) -> Vec<TensorSnapshot> {
    layers
        .iter()
        .map(|l| TensorSnapshot {
            name: l.name.clone(),
            dtype: Dtype::F32,
            shape: l.shape.clone(),
            data: l.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        })
        .collect()
}

/// Writes `tensors` as the tch hook does after its snapshot (the tensors of two or more dimensions, sorted by name,
/// the same metadata, through htsr-writer's [`CheckpointWriter`]) into `dir/run/step-<step>.safetensors`.
pub fn write_as_tch_hook(dir: &Path, run: &str, step: u64, tensors: &[TensorSnapshot]) -> PathBuf {
    let run_dir = dir.join(run);
    fs::create_dir_all(&run_dir).unwrap();
    let mut tensors: Vec<TensorSnapshot> = tensors
        .iter()
        .filter(|t| t.shape.len() >= 2)
        .cloned()
        .collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let mut writer = CheckpointWriter::start(run_dir.clone(), 2, WhenBehind::Wait, None).unwrap();
    writer.reserve().unwrap();
    let metadata = checkpoint_metadata(step, run, 0.0, StepInfo::new(), &Default::default());
    writer
        .submit(FileJob {
            file_name: checkpoint_file_name(step),
            metadata,
            tensors,
        })
        .unwrap();
    writer.finish().unwrap();
    run_dir.join(checkpoint_file_name(step))
}

/// The final file names of `dir`.
pub fn files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Every tensor of a safetensors file: name -> (dtype, shape, bytes).
pub fn tensors(path: &Path) -> BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, t)| (name, (t.dtype(), t.shape().to_vec(), t.data().to_vec())))
        .collect()
}

/// The `__metadata__` of a safetensors file.
pub fn metadata(path: &Path) -> HashMap<String, String> {
    let bytes = fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    header.metadata().clone().unwrap_or_default()
}

/// Little-endian f32 bytes as values.
pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// htsr-engine's analysis of a file with the default options.
pub fn analyze(path: &Path) -> CheckpointAnalysis {
    analyze_checkpoint(path, &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("analyzing {}: {e}", path.display()))
}

/// Asserts that two files analyze exactly alike: the same layers, and for each the same eigenvalues and the same
/// report (every field but the time it took: lambda_max, alpha, xmin, D, spikes, phase, ...), bit for bit.
/// Returns the number of analyzed layers.
pub fn assert_same_analysis(a: &Path, b: &Path) -> usize {
    let (a, b) = (analyze(a), analyze(b));
    let names = |x: &CheckpointAnalysis| -> Vec<String> {
        x.layers.iter().map(|l| l.report.name.clone()).collect()
    };
    assert_eq!(names(&a), names(&b), "the same layers in the same order");
    let mut analyzed = 0;
    for (la, lb) in a.layers.iter().zip(&b.layers) {
        let name = &la.report.name;
        let bits = |e: &Option<Vec<f64>>| -> Option<Vec<u64>> {
            e.as_ref().map(|v| v.iter().map(|x| x.to_bits()).collect())
        };
        assert_eq!(
            bits(&la.eigenvalues),
            bits(&lb.eigenvalues),
            "{name}: eigenvalues"
        );
        let (ra, rb) = (&la.report, &lb.report);
        let metric =
            |r: &htsr_contracts::LayerReport| r.metrics.as_ref().map(|m| m.lambda_max.to_bits());
        assert_eq!(metric(ra), metric(rb), "{name}: lambda_max");
        let fit = |r: &htsr_contracts::LayerReport| {
            r.power_law.as_ref().map(|p| {
                (
                    p.alpha.to_bits(),
                    p.xmin.to_bits(),
                    p.d.to_bits(),
                    p.num_pl_spikes,
                )
            })
        };
        assert_eq!(fit(ra), fit(rb), "{name}: alpha, xmin, D, power-law spikes");
        let spikes = |r: &htsr_contracts::LayerReport| r.mp.as_ref().map(|m| m.num_spikes);
        assert_eq!(spikes(ra), spikes(rb), "{name}: MP spikes");
        let json = |r: &htsr_contracts::LayerReport| {
            let mut r = r.clone();
            r.seconds = 0.0;
            serde_json::to_value(&r).unwrap()
        };
        assert_eq!(
            json(ra),
            json(rb),
            "{name}: the whole report (phase included)"
        );
        if la.eigenvalues.is_some() {
            assert!(ra.phase.is_some(), "{name}: an analyzed layer has a phase");
            analyzed += 1;
        }
    }
    analyzed
}

/// Asserts that a spectra file analyzes as the weights file of the same step: the same analyzed layers, eigenvalues
/// within 1e-9 of each layer's lambda_max and alpha within 1e-6 (relative), as the tch hook's parity tests demand.
/// Returns the analyzed layer names.
pub fn assert_spectra_match_weights(weights: &Path, spectra: &Path) -> Vec<String> {
    let by_layer = |a: &CheckpointAnalysis| -> BTreeMap<String, (Vec<f64>, Option<f64>)> {
        a.layers
            .iter()
            .filter_map(|l| {
                let ev = l.eigenvalues.clone()?;
                Some((l.report.name.clone(), (ev, l.report.alpha())))
            })
            .collect()
    };
    let (w, s) = (by_layer(&analyze(weights)), by_layer(&analyze(spectra)));
    assert_eq!(w.keys().collect::<Vec<_>>(), s.keys().collect::<Vec<_>>());
    for (name, (ev_w, alpha_w)) in &w {
        let (ev_s, alpha_s) = &s[name];
        assert_eq!(ev_w.len(), ev_s.len(), "{name}");
        let max = ev_w.last().copied().unwrap();
        for (a, b) in ev_w.iter().zip(ev_s) {
            assert!((a - b).abs() <= 1e-9 * max, "{name}: {a} vs {b}");
        }
        match (alpha_w, alpha_s) {
            (Some(a), Some(b)) => {
                assert!((a - b).abs() <= 1e-6 * a.abs(), "{name}: alpha {a} vs {b}")
            }
            (a, b) => assert_eq!(a, b, "{name}: alpha"),
        }
    }
    w.into_keys().collect()
}

/// The layers of [`parity_layers`] that have a spectrum (two or more dimensions), sorted.
pub const PARITY_LAYERS: [&str; 6] = [
    "blocks.0.fc",
    "blocks.1.fc",
    "conv1",
    "conv2",
    "fc1",
    "head",
];

/// Asserts what a hook in `Mode::Both` leaves in `dir` for [`parity_layers`] at `step`: the weights file and the
/// spectra file, the spectra analyzing as the weights ([`assert_spectra_match_weights`]) for every parity layer, and
/// the spectra file's metadata (its kind and step, conv2's N, M, receptive field and content hash).
pub fn assert_both_mode_checkpoint(dir: &Path, step: u64) {
    let weights = checkpoint_file_name(step);
    let spectra = htsr_contracts::spectra::spectra_file_name(step, None);
    assert_eq!(
        files(dir),
        BTreeSet::from([weights.clone(), spectra.clone()])
    );
    let layers = assert_spectra_match_weights(&dir.join(&weights), &dir.join(&spectra));
    assert_eq!(layers, PARITY_LAYERS);
    let meta = metadata(&dir.join(&spectra));
    assert_eq!(meta["htsr.step"], step.to_string());
    assert_eq!(meta[htsr_contracts::spectra::keys::KIND], "spectra");
    let conv2 = layer_meta(&meta, "conv2.weight");
    assert_eq!((conv2.N, conv2.M, conv2.rf), (16, 12, 9));
    assert_eq!(conv2.shape, [16, 12, 3, 3]);
    assert_eq!(conv2.hash.len(), 64, "a blake3 content hash");
}

/// Asserts what two ranks of a hook in `Mode::Both` leave in `dir` for [`parity_layers`] at `step`: one weights file
/// (rank 0's) and one spectra file per rank, the ranks' layers disjoint, together every parity layer, and the same
/// assignment recorded by both.
pub fn assert_two_ranks_split_the_layers(dir: &Path, step: u64) {
    let spectra = |rank| htsr_contracts::spectra::spectra_file_name(step, Some((rank, 2)));
    assert_eq!(
        files(dir),
        BTreeSet::from([checkpoint_file_name(step), spectra(0), spectra(1)])
    );
    let layers = |rank: usize| -> (BTreeSet<String>, String) {
        let meta = metadata(&dir.join(spectra(rank)));
        let keys = htsr_contracts::spectra::keys::LAYER_PREFIX;
        assert_eq!(meta[htsr_contracts::spectra::keys::RANK], rank.to_string());
        let names = meta
            .keys()
            .filter_map(|k| k.strip_prefix(keys))
            .map(String::from)
            .collect();
        (
            names,
            meta[htsr_contracts::spectra::keys::ASSIGNMENT].clone(),
        )
    };
    let ((zero, a0), (one, a1)) = (layers(0), layers(1));
    assert_eq!(a0, a1, "every rank writes the same assignment");
    assert!(zero.is_disjoint(&one) && !zero.is_empty() && !one.is_empty());
    assert_eq!(zero.union(&one).count(), PARITY_LAYERS.len());
}

/// Asserts that the spectra file at `path` records `head.weight` as failed because of a NaN, and that the
/// analysis of the file reports the `head` layer as failed.
pub fn assert_nan_head_is_a_failed_layer(path: &Path) {
    let head = layer_meta(&metadata(path), "head.weight");
    assert!(
        head.failed.as_deref().unwrap_or("").contains("NaN"),
        "{head:?}"
    );
    let analysis = analyze(path);
    let head = analysis
        .layers
        .iter()
        .find(|l| l.report.name == "head")
        .unwrap();
    assert_eq!(head.report.status, htsr_contracts::LayerStatus::Failed);
}

fn layer_meta(
    meta: &HashMap<String, String>,
    tensor: &str,
) -> htsr_contracts::spectra::SpectrumMeta {
    let key = format!("{}{tensor}", htsr_contracts::spectra::keys::LAYER_PREFIX);
    serde_json::from_str(&meta[&key]).unwrap_or_else(|e| panic!("{key}: {e}"))
}
