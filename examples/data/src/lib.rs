//! The data of htsr's Burn and Candle examples as plain arrays, so that each example turns them into its own
//! framework's tensors: MNIST-1D as `scripts/setup` stores it (`.data/mnist1d/{x,y}_{train,test}.npy`), the
//! seeded shuffle of each epoch, and logging. (The tch examples load the same files straight into tch tensors.)

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Logs (the hooks' "waited"/"skipped" lines among them) to stderr at `warn`, or as `RUST_LOG` says.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
}

/// Where `scripts/setup` writes MNIST-1D: `<repository>/.data/mnist1d`.
pub fn default_mnist1d_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(".data")
        .join("mnist1d")
}

/// A classification data set as `scripts/setup` stores it: `x_train.npy` (f32, one row per sample), `y_train.npy`
/// (i64 labels 0-9), `x_test.npy`, `y_test.npy`. MNIST-1D (Greydanus 2020) has signals of length 40.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Features of one sample (40 for MNIST-1D).
    pub features: usize,
    /// `[n_train * features]`, row-major.
    pub x_train: Vec<f32>,
    /// `[n_train]`
    pub y_train: Vec<i64>,
    /// `[n_test * features]`, row-major.
    pub x_test: Vec<f32>,
    /// `[n_test]`
    pub y_test: Vec<i64>,
}

impl Dataset {
    /// Loads `x_train.npy`, `y_train.npy`, `x_test.npy`, `y_test.npy` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.join("x_train.npy").is_file() {
            bail!(
                "no data set in {} (run `bash scripts/setup` first, or pass --data DIR)",
                dir.display()
            );
        }
        let (train_shape, x_train) = load_f32(&dir.join("x_train.npy"))?;
        let (test_shape, x_test) = load_f32(&dir.join("x_test.npy"))?;
        let y_train = load_i64(&dir.join("y_train.npy"))?;
        let y_test = load_i64(&dir.join("y_test.npy"))?;
        let features = match (train_shape.as_slice(), test_shape.as_slice()) {
            ([_, f], [_, g]) if f == g => *f,
            _ => bail!(
                "{}: x_train {train_shape:?} and x_test {test_shape:?} are not matrices of one width",
                dir.display()
            ),
        };
        if x_train.len() != y_train.len() * features || x_test.len() != y_test.len() * features {
            bail!("{}: inputs and labels differ in length", dir.display());
        }
        Ok(Self {
            features,
            x_train,
            y_train,
            x_test,
            y_test,
        })
    }

    /// Training samples.
    pub fn n_train(&self) -> usize {
        self.y_train.len()
    }

    /// Test samples.
    pub fn n_test(&self) -> usize {
        self.y_test.len()
    }

    /// The training samples at `indices`: their features (row-major) and labels.
    pub fn train_batch(&self, indices: &[usize]) -> (Vec<f32>, Vec<i64>) {
        let f = self.features;
        let mut x = Vec::with_capacity(indices.len() * f);
        let mut y = Vec::with_capacity(indices.len());
        for &i in indices {
            x.extend_from_slice(&self.x_train[i * f..(i + 1) * f]);
            y.push(self.y_train[i]);
        }
        (x, y)
    }
}

fn read(path: &Path) -> Result<npyz::NpyFile<std::io::BufReader<std::fs::File>>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    npyz::NpyFile::new(std::io::BufReader::new(f))
        .with_context(|| format!("reading the header of {}", path.display()))
}

fn load_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let npy = read(path)?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let v: Vec<f32> = npy
        .into_vec()
        .with_context(|| format!("reading {} as f32", path.display()))?;
    Ok((shape, v))
}

fn load_i64(path: &Path) -> Result<Vec<i64>> {
    read(path)?
        .into_vec()
        .with_context(|| format!("reading {} as i64", path.display()))
}

/// The order of the training samples, reshuffled every epoch from one seed (the tch example reshuffles with
/// libtorch's generator; the Burn and Candle examples share this one so that they see the same batches).
#[derive(Debug)]
pub struct Shuffle {
    rng: ChaCha8Rng,
    order: Vec<usize>,
}

impl Shuffle {
    /// A first permutation of `n` samples from `seed`.
    pub fn new(n: usize, seed: u64) -> Self {
        let mut s = Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            order: (0..n).collect(),
        };
        s.reshuffle();
        s
    }

    /// A new permutation (the next epoch's).
    pub fn reshuffle(&mut self) {
        self.order.shuffle(&mut self.rng);
    }

    /// Batch `i` of size `batch_size` of the current permutation.
    pub fn batch(&self, i: usize, batch_size: usize) -> &[usize] {
        &self.order[i * batch_size..(i + 1) * batch_size]
    }
}

/// The fraction of `predictions` equal to `labels`, in [0, 1].
pub fn accuracy(predictions: &[i64], labels: &[i64]) -> f64 {
    let correct = predictions
        .iter()
        .zip(labels)
        .filter(|(p, y)| p == y)
        .count();
    correct as f64 / labels.len().max(1) as f64
}
