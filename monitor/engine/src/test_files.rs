//! Real checkpoint files for tests: seeded f32 matrices in safetensors files, written under a temporary name and
//! renamed as the training hooks write them, and the seed of a randomized test (printed, replayable).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::Dtype;

/// Dense layers of the test model: (tensor name, rows, cols). Plus a bias, which the engine skips.
pub const LAYERS: [(&str, usize, usize); 3] = [
    ("fc1.weight", 64, 32),
    ("fc2.weight", 64, 32),
    ("fc3.weight", 32, 64),
];
/// Layers stored per checkpoint: the three dense layers and the (skipped) bias.
pub const LAYERS_PER_CHECKPOINT: usize = 4;

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Roughly normal: a sum of four uniforms, centred.
    fn normal(&mut self) -> f32 {
        let s: f64 = (0..4)
            .map(|_| (self.next() >> 11) as f64 / (1u64 << 53) as f64)
            .sum();
        ((s - 2.0) * 3f64.sqrt()) as f32
    }
}

/// f32 bytes of a rows x cols matrix, seeded.
pub fn matrix(rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix(seed.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(7));
    let scale = 1.0 / (rows.max(cols) as f32).sqrt();
    (0..rows * cols)
        .flat_map(|_| (rng.normal() * scale).to_le_bytes())
        .collect()
}

/// What goes into one test checkpoint.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Base seed of the random tensors: tensor `i` (not frozen) is drawn with seed `seed * 100 + i`.
    pub seed: u64,
    /// `htsr.step` metadata.
    pub step: Option<u64>,
    /// `htsr.run` metadata.
    pub run: Option<String>,
    /// Tensors whose seed is fixed (frozen layers): name -> seed.
    pub frozen: HashMap<String, u64>,
}

impl Spec {
    /// A spec with this seed and no metadata or frozen tensors.
    pub fn seed(seed: u64) -> Self {
        Spec {
            seed,
            ..Spec::default()
        }
    }
}

/// The bytes of a safetensors checkpoint.
pub fn checkpoint_bytes(spec: &Spec) -> Vec<u8> {
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = LAYERS
        .iter()
        .enumerate()
        .map(|(i, (name, r, c))| {
            let seed = spec
                .frozen
                .get(*name)
                .copied()
                .unwrap_or(spec.seed * 100 + i as u64);
            (name.to_string(), vec![*r, *c], matrix(*r, *c, seed))
        })
        .collect();
    data.push((
        "fc1.bias".to_string(),
        vec![64],
        matrix(64, 1, spec.seed + 999),
    ));
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, shape, bytes)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    let mut meta = HashMap::new();
    if let Some(step) = spec.step {
        meta.insert("htsr.step".to_string(), step.to_string());
    }
    if let Some(run) = &spec.run {
        meta.insert("htsr.run".to_string(), run.clone());
    }
    safetensors::tensor::serialize(views, if meta.is_empty() { None } else { Some(meta) }).unwrap()
}

/// The bytes of a safetensors file holding `layers` (name, rows, cols, seed) as seeded f32 matrices, with `meta`.
pub fn layers_bytes(layers: &[(&str, usize, usize, u64)], meta: &[(&str, String)]) -> Vec<u8> {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = layers
        .iter()
        .map(|(n, r, c, seed)| (n.to_string(), vec![*r, *c], matrix(*r, *c, *seed)))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, shape, bytes)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    let meta: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    safetensors::tensor::serialize(views, if meta.is_empty() { None } else { Some(meta) }).unwrap()
}

/// Writes `bytes` to `path` the way the hook does: a temporary name in the same directory, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) {
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Writes a checkpoint `dir/name` atomically and returns its path.
pub fn write_checkpoint(dir: &Path, name: &str, spec: &Spec) -> PathBuf {
    let path = dir.join(name);
    write_atomic(&path, &checkpoint_bytes(spec));
    path
}

/// The name the tests give step `step`.
pub fn step_name(step: u64) -> String {
    format!("step-{step:06}.safetensors")
}

/// The seed of a randomized test: `HTSR_TEST_SEED` when set (to replay a failure), else a fresh one; printed.
pub fn test_seed(test: &str) -> u64 {
    let seed = std::env::var("HTSR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: seed {seed} (HTSR_TEST_SEED={seed} replays it)");
    seed
}
