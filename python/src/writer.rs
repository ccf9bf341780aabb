//! `htsr._native.Writer`: htsr-writer's background [`CheckpointWriter`] for the Python callbacks. The file names,
//! the `htsr.*` metadata, the temporary names and the atomic write are htsr's Rust definitions
//! (htsr-contracts' naming and spectra contracts, htsr-writer's `checkpoint_metadata`, `spectra_job` and
//! `write_atomically`), the same the tch hook uses; Python only decides when and hands over bytes or eigenvalues.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use htsr_contracts::naming::{self, checkpoint_file_name, env, keys};
use htsr_contracts::spectra::spectra_file_name;
use htsr_engine::analyze::AnalyzeOptions;
use htsr_writer::{
    checkpoint_metadata, spectra_job, BuiltFile, CheckpointWriter, FileJob, LayerSpectrum,
    Reservation, StepInfo, TensorSnapshot, WhenBehind,
};
use numpy::{PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::convert::parse_dtype;
use crate::spectra::{from_device, from_snapshot, no_spectrum};
use crate::WriteError;

/// A tensor handed over for a snapshot: name, safetensors dtype name, shape, and its bytes as a uint8 array.
type PyTensor<'py> = (String, String, Vec<usize>, PyReadonlyArray1<'py, u8>);
/// A layer whose eigenvalues the device computed: name, dtype name, weight shape, per-slice eigenvalues
/// (slices x M), and the precision of the Gram matrix (`f64` or `f32`).
type PyDeviceLayer<'py> = (
    String,
    String,
    Vec<usize>,
    PyReadonlyArray2<'py, f64>,
    String,
);
/// A layer with no spectrum: name, dtype name, shape, why, and whether that is a failure (NaN weights) rather than
/// a deliberate skip (not a matrix, a size limit).
type PyNoSpectrum = (String, String, Vec<usize>, String, bool);

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn write_error(e: htsr_writer::WriteError) -> PyErr {
    WriteError::new_err(e.to_string())
}

/// The writer of one run directory (`dir/run`), with its `htsr.*` extras and its rank.
#[pyclass(module = "htsr._native")]
pub struct Writer {
    inner: CheckpointWriter,
    run: String,
    run_dir: PathBuf,
    extras: BTreeMap<String, String>,
    rank: (usize, usize),
    limits: AnalyzeOptions,
}

impl Writer {
    fn info(
        epoch: Option<u64>,
        loss: Option<f64>,
        lr: Option<f64>,
        batch_size: Option<u64>,
    ) -> StepInfo {
        StepInfo {
            epoch,
            loss,
            lr,
            batch_size,
        }
    }

    /// Passes `r` through; when it is an error, gives the reserved queue slot back first.
    fn or_release<T>(&self, r: PyResult<T>) -> PyResult<T> {
        if r.is_err() {
            self.inner.release();
        }
        r
    }
}

#[pymethods]
impl Writer {
    /// Creates `dir/run` (checking that it is writable) and starts the writer thread. `queue` snapshots may be
    /// pending at once; `when_behind` ("wait" or "skip") says what `reserve` does when they are; `keep_last` keeps
    /// only that many newest weight checkpoints; `metadata` are extra `htsr.*` pairs for every file (the prefix is
    /// added when missing); `rank` is (rank, world), default from the launcher's environment; the size limits
    /// decide which layers get a spectrum in spectra mode.
    #[new]
    #[pyo3(signature = (dir, run, *, queue=2, when_behind="wait", keep_last=None, metadata=None, rank=None,
                        min_evals=8, max_evals=15000, max_n=50000))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        dir: PathBuf,
        run: String,
        queue: usize,
        when_behind: &str,
        keep_last: Option<usize>,
        metadata: Option<BTreeMap<String, String>>,
        rank: Option<(usize, usize)>,
        min_evals: usize,
        max_evals: usize,
        max_n: usize,
    ) -> PyResult<Self> {
        naming::check_run_name(&run).map_err(PyValueError::new_err)?;
        let when_behind = match when_behind {
            "wait" => WhenBehind::Wait,
            "skip" => WhenBehind::Skip,
            other => {
                return Err(PyValueError::new_err(format!(
                    "when_behind={other:?}: expected \"wait\" or \"skip\""
                )))
            }
        };
        let rank = match rank {
            Some((r, w)) if w == 0 || r >= w => {
                return Err(PyValueError::new_err(format!(
                    "rank {r} is not a rank of a world of {w}"
                )))
            }
            Some(rw) => rw,
            None => env::rank_from(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
                .map_err(PyValueError::new_err)?,
        };
        let run_dir = dir.join(&run);
        let io = |e: std::io::Error| PyOSError::new_err(format!("{}: {e}", run_dir.display()));
        fs::create_dir_all(&run_dir).map_err(io)?;
        // A directory we cannot write into is reported now rather than at the first checkpoint.
        let probe = run_dir.join(naming::temporary_file_name(
            ".htsr-probe",
            std::process::id() as u64,
        ));
        File::create(&probe).map_err(io)?;
        let _ = fs::remove_file(&probe);
        let inner =
            CheckpointWriter::start(run_dir.clone(), queue, when_behind, keep_last).map_err(io)?;
        let extras = metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (keys::prefixed(&k), v))
            .collect();
        Ok(Writer {
            inner,
            run,
            run_dir,
            extras,
            rank,
            limits: AnalyzeOptions {
                min_evals,
                max_evals,
                max_n,
                ..AnalyzeOptions::default()
            },
        })
    }

    /// The output directory, run name, checkpoint interval and mode a writer uses: each argument that is None is
    /// taken from `HTSR_DIR`, `HTSR_RUN`, `HTSR_EVERY`, `HTSR_MODE` when set, else the defaults (`htsr-runs`,
    /// `run-<unix seconds>`, 100, `weights`), as the tch hook's builder resolves them. With several ranks
    /// (`world` > 1) the run must be named: each rank's clock would give its own default name, and the ranks' files
    /// must land in one run.
    #[staticmethod]
    #[pyo3(signature = (dir=None, run=None, every=None, mode=None, world=1))]
    fn resolve(
        dir: Option<PathBuf>,
        run: Option<String>,
        every: Option<u64>,
        mode: Option<String>,
        world: usize,
    ) -> PyResult<(PathBuf, String, u64, String)> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let dir = dir
            .or_else(|| var(env::DIR).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(naming::DEFAULT_DIR));
        let run = match run.or_else(|| var(env::RUN)) {
            Some(run) => run,
            None if world > 1 => {
                return Err(PyValueError::new_err(format!(
                    "a run of {world} ranks needs a run name that every rank shares: pass run=... or set {}",
                    env::RUN
                )))
            }
            None => naming::default_run_name(unix_now() as u64),
        };
        naming::check_run_name(&run).map_err(PyValueError::new_err)?;
        let every = match every {
            Some(n) => n,
            None => env::every_from(var)
                .transpose()
                .map_err(PyValueError::new_err)?
                .unwrap_or(naming::DEFAULT_EVERY),
        };
        let mode = match mode {
            Some(m) => naming::CheckpointMode::parse(m.trim()).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "mode {m:?}: expected {}",
                    naming::CheckpointMode::EXPECTED
                ))
            })?,
            None => env::mode_from(var)
                .transpose()
                .map_err(PyValueError::new_err)?
                .unwrap_or_default(),
        }
        .as_str()
        .to_string();
        Ok((dir, run, every, mode))
    }

    /// The run name.
    #[getter]
    fn run(&self) -> &str {
        &self.run
    }

    /// The directory files are written to (`dir/run`).
    #[getter]
    fn run_dir(&self) -> PathBuf {
        self.run_dir.clone()
    }

    /// (rank, world size).
    #[getter]
    fn rank(&self) -> (usize, usize) {
        self.rank
    }

    /// Takes a queue slot before a snapshot is taken: `("queued", 0.0)`, `("waited", seconds)` after waiting for
    /// the writer (the GIL is released meanwhile), or `("skipped", 0.0)` when the queue is full and the writer
    /// skips. A taken slot is given back by a `submit_*` call or by `release`.
    fn reserve(&self, py: Python<'_>) -> PyResult<(&'static str, f64)> {
        match py.detach(|| self.inner.reserve()).map_err(write_error)? {
            Reservation::Reserved => Ok(("queued", 0.0)),
            Reservation::Waited(d) => Ok(("waited", d.as_secs_f64())),
            Reservation::Skipped => Ok(("skipped", 0.0)),
        }
    }

    /// Gives a reserved slot back without submitting.
    fn release(&self) {
        self.inner.release();
    }

    /// Writes `step-<step>.safetensors` with these tensors (copied now, GIL released, into buffers the writer
    /// recycles; written on the writer thread) and the checkpoint metadata. Needs a reserved slot.
    #[pyo3(signature = (step, tensors, *, epoch=None, loss=None, lr=None, batch_size=None))]
    #[allow(clippy::too_many_arguments)]
    fn submit_weights<'py>(
        &self,
        py: Python<'py>,
        step: u64,
        tensors: Vec<PyTensor<'py>>,
        epoch: Option<u64>,
        loss: Option<f64>,
        lr: Option<f64>,
        batch_size: Option<u64>,
    ) -> PyResult<()> {
        let views = self.or_release(views(&tensors))?;
        let metadata = checkpoint_metadata(
            step,
            &self.run,
            unix_now(),
            Self::info(epoch, loss, lr, batch_size),
            &self.extras,
        );
        let mut buffers = self.inner.recycled_buffers();
        let tensors = py.detach(|| snapshot(&views, &mut buffers));
        self.inner
            .submit(FileJob {
                file_name: checkpoint_file_name(step),
                metadata,
                tensors,
            })
            .map_err(write_error)
    }

    /// Writes this rank's spectra file of `step` (`step-<step>.esd.safetensors`, or `.rank-R-of-W` with several
    /// ranks): `device` layers with the per-slice eigenvalues the device computed, `cpu` layers as bytes whose
    /// spectra htsr-engine computes on the writer thread, `skipped` layers with their reason (and whether it is a
    /// failure), and the whole `assignment` of layers to ranks. Needs a reserved slot.
    #[pyo3(signature = (step, device, cpu, skipped, assignment, *, epoch=None, loss=None, lr=None, batch_size=None))]
    #[allow(clippy::too_many_arguments)]
    fn submit_spectra<'py>(
        &self,
        py: Python<'py>,
        step: u64,
        device: Vec<PyDeviceLayer<'py>>,
        cpu: Vec<PyTensor<'py>>,
        skipped: Vec<PyNoSpectrum>,
        assignment: BTreeMap<String, usize>,
        epoch: Option<u64>,
        loss: Option<f64>,
        lr: Option<f64>,
        batch_size: Option<u64>,
    ) -> PyResult<()> {
        let metadata = checkpoint_metadata(
            step,
            &self.run,
            unix_now(),
            Self::info(epoch, loss, lr, batch_size),
            &self.extras,
        );
        let mut done: Vec<LayerSpectrum> = Vec::with_capacity(device.len() + skipped.len());
        for (name, dtype, shape, evals, precision) in &device {
            let dtype = self.or_release(parse_dtype(dtype))?;
            let dtype = format!("{dtype:?}");
            done.push(from_device(
                name,
                shape,
                &dtype,
                evals.as_array(),
                precision,
                &self.limits,
            ));
        }
        for (name, dtype, shape, reason, failed) in skipped {
            done.push(no_spectrum(&name, &shape, &dtype, reason, failed));
        }
        let (rank, world) = self.rank;
        let rank_of = (world > 1).then_some((rank, world));
        if cpu.is_empty() {
            done.sort_by(|a, b| a.tensor.cmp(&b.tensor));
            let job = spectra_job(step, rank_of, done, &assignment, metadata);
            return self.inner.submit(job).map_err(write_error);
        }
        let views = self.or_release(views(&cpu))?;
        let mut buffers = self.inner.recycled_buffers();
        let snapshots = py.detach(|| snapshot(&views, &mut buffers));
        let limits = self.limits.clone();
        let build = move || {
            done.extend(
                snapshots
                    .iter()
                    .map(|s| from_snapshot(&s.name, s.dtype, &s.shape, &s.data, &limits)),
            );
            done.sort_by(|a, b| a.tensor.cmp(&b.tensor));
            BuiltFile {
                file: Ok(spectra_job(step, rank_of, done, &assignment, metadata)),
                spent_buffers: snapshots.into_iter().map(|s| s.data).collect(),
            }
        };
        self.inner
            .submit_deferred(spectra_file_name(step, rank_of), Box::new(build))
            .map_err(write_error)
    }

    /// Raises `htsr.WriteError` for the first write that failed since the last call, if any.
    fn take_error(&self) -> PyResult<()> {
        match self.inner.take_error() {
            Some(e) => Err(write_error(e)),
            None => Ok(()),
        }
    }

    /// Waits (GIL released) until every submitted file is written or failed; raises a pending write error.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.flush()).map_err(write_error)
    }

    /// Writes what is queued, stops the writer thread and returns `(written, failed)`; raises a pending write
    /// error. Later submits fail.
    fn finish(&mut self, py: Python<'_>) -> PyResult<(u64, u64)> {
        let inner = &mut self.inner;
        let stats = py.detach(|| inner.finish()).map_err(write_error)?;
        Ok((stats.written, stats.failed))
    }

    /// `(written, failed)` files so far.
    fn stats(&self) -> (u64, u64) {
        let s = self.inner.stats();
        (s.written, s.failed)
    }
}

/// A tensor's bytes borrowed from its numpy view, ready to be copied without the GIL.
struct View<'a> {
    name: String,
    dtype: htsr_writer::Dtype,
    shape: Vec<usize>,
    bytes: &'a [u8],
}

fn views<'a>(tensors: &'a [PyTensor<'_>]) -> PyResult<Vec<View<'a>>> {
    tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            let dtype = parse_dtype(dtype)?;
            let bytes = data.as_slice().map_err(|e| {
                PyValueError::new_err(format!("tensor {name:?}: data is not contiguous: {e}"))
            })?;
            Ok(View {
                name: name.clone(),
                dtype,
                shape: shape.clone(),
                bytes,
            })
        })
        .collect()
}

/// Copies the views into owned snapshots, reusing the writer's recycled buffers where they are large enough.
fn snapshot(views: &[View<'_>], buffers: &mut Vec<Vec<u8>>) -> Vec<TensorSnapshot> {
    buffers.reverse();
    views
        .iter()
        .map(|v| {
            let mut data = buffers.pop().unwrap_or_default();
            data.clear();
            data.extend_from_slice(v.bytes);
            TensorSnapshot {
                name: v.name.clone(),
                dtype: v.dtype,
                shape: v.shape.clone(),
                data,
            }
        })
        .collect()
}

/// Adds this module's functions and classes to `htsr._native`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Writer>()?;
    Ok(())
}
