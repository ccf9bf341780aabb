//! Helpers for the daemon's end-to-end tests: a checkpoint writer (real safetensors files, written under a
//! temporary name and renamed, as the training hook does), the binary, and a look into the store afterwards.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use safetensors::tensor::TensorView;
use safetensors::Dtype;

pub const BIN: &str = env!("CARGO_BIN_EXE_htsr-watch");

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
    pub seed: u64,
    /// `htsr.step` metadata.
    pub step: Option<u64>,
    /// `htsr.run` metadata.
    pub run: Option<String>,
    /// Tensors whose seed is fixed (frozen layers): name -> seed.
    pub frozen: HashMap<String, u64>,
}

impl Spec {
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

/// `htsr-watch DIR --headless --once [extra]`, waited for.
pub fn watch_once(dir: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg(dir)
        .args(["--headless", "--once"])
        .args(extra)
        .env("HTSR_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A daemon running in the background, its log in a file. Dropping it kills the process, so that a failing
/// assertion leaves nothing behind.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
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

impl Daemon {
    pub fn start(dir: &Path, log: &Path, extra: &[&str]) -> Daemon {
        Self::start_logging(dir, log, extra, "info")
    }

    /// Like [`Daemon::start`], with `HTSR_LOG` set to `filter` (e.g. "debug").
    pub fn start_logging(dir: &Path, log: &Path, extra: &[&str], filter: &str) -> Daemon {
        let file = std::fs::File::create(log).unwrap();
        let child = Command::new(BIN)
            .arg(dir)
            .arg("--headless")
            .args(extra)
            .env("HTSR_LOG", filter)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Daemon {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `n` lines containing `needle`; panics with the log after `timeout`.
    pub fn wait_for(&mut self, needle: &str, n: usize, timeout: Duration) {
        let start = Instant::now();
        loop {
            let text = self.log_text();
            if text.matches(needle).count() >= n {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the daemon exited early ({status}); log:\n{text}");
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {n} x {needle:?}; log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    }

    pub fn signal(&self, sig: i32) {
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    /// Sends SIGTERM and waits for the exit (a daemon that is still alive after `timeout` is a hang: the test
    /// fails and the process is killed).
    pub fn terminate(self, timeout: Duration) -> (ExitStatus, String) {
        self.stop_with(libc::SIGTERM, timeout)
    }

    /// Sends `sig` and waits for the exit, as [`Daemon::terminate`].
    pub fn stop_with(mut self, sig: i32, timeout: Duration) -> (ExitStatus, String) {
        self.signal(sig);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.log_text());
            }
            if start.elapsed() > timeout {
                panic!(
                    "the daemon did not exit within {timeout:?} of signal {sig}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Opens the store of `dir` (no daemon may hold it).
pub fn open_store(dir: &Path) -> htsr_storage::Store {
    let (store, outcome) = htsr_storage::Store::open(dir.join(".htsr")).unwrap();
    assert_ne!(
        outcome,
        htsr_storage::OpenOutcome::Created,
        "the daemon should have created the store"
    );
    store
}

/// Every (run, step, checkpoint record) in the store.
pub fn all_checkpoints(store: &htsr_storage::Store) -> Vec<htsr_contracts::CheckpointRecord> {
    let mut out = Vec::new();
    for run in store.runs().unwrap() {
        out.extend(store.checkpoints(&run.run).unwrap());
    }
    out
}

/// Keys in the store's identities tree: one per stored checkpoint file.
pub fn identity_count(store: &htsr_storage::Store) -> u64 {
    store
        .stats()
        .unwrap()
        .trees
        .iter()
        .find(|t| t.name == "identities")
        .unwrap()
        .keys
}
