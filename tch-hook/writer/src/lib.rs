//! htsr-writer: checkpoint files written the way `htsr-watch` expects them, off the training thread.
//!
//! No libtorch here: the training-loop integrations (the tch hook, the Python package) take their snapshot of the
//! weights as [`TensorSnapshot`]s (raw bytes in the tensor's own dtype) and hand them to a [`CheckpointWriter`],
//! which serializes and writes them on its own thread.
//!
//! Guarantees:
//! - A file is written under a temporary name in its final directory (hidden and ending in `.tmp`, so the daemon
//!   never reads it), fsync'ed, renamed to its final name, and the directory is fsync'ed: a reader sees a complete
//!   file or none. A failed write removes the temporary file and never leaves a file under a final name.
//! - At most `queue` snapshots are alive at once (queued or being written). When the writer falls behind, the
//!   caller waits or skips ([`WhenBehind`]) and [`Reservation`] says which happened.
//! - A write error is logged when it happens and returned by the next [`CheckpointWriter::take_error`] (the hooks
//!   return it from their next call); later checkpoints are attempted as usual.

#![warn(missing_docs)]

mod metadata;
pub mod spectra;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use metadata::{checkpoint_metadata, StepInfo};
pub use safetensors::Dtype;
pub use spectra::{content_hash, spectra_job, LayerSpectrum};
pub use write::{prune_checkpoints, write_atomically};

/// Default number of snapshots that may be pending (queued or being written) at once.
pub const DEFAULT_QUEUE: usize = 2;

/// One tensor of a snapshot: its raw little-endian bytes in its own dtype.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSnapshot {
    /// The tensor's name in the checkpoint (`fc1.weight`).
    pub name: String,
    /// The element type of `data`.
    pub dtype: Dtype,
    /// The tensor's shape, outermost axis first.
    pub shape: Vec<usize>,
    /// Row-major elements, little-endian, `shape.iter().product() * dtype size` bytes.
    pub data: Vec<u8>,
}

impl safetensors::View for &TensorSnapshot {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// One file to write: `file_name` in the writer's directory, with these tensors and `__metadata__`.
#[derive(Debug, Clone)]
pub struct FileJob {
    /// The final file name, in the writer's directory.
    pub file_name: String,
    /// The file's `__metadata__` (the `htsr.*` keys and any others).
    pub metadata: HashMap<String, String>,
    /// The tensors to write, each under its own name.
    pub tensors: Vec<TensorSnapshot>,
}

/// A file whose contents are computed on the writer thread (a spectra file built from a CPU snapshot), so that the
/// training thread pays only for the snapshot.
pub type BuildJob = Box<dyn FnOnce() -> BuiltFile + Send>;

/// What a [`BuildJob`] hands back.
pub struct BuiltFile {
    /// The file to write, or the reason none could be built, in words.
    pub file: Result<FileJob, String>,
    /// The snapshot's byte buffers, spent: the writer recycles them for the next snapshot, which then copies into
    /// warm pages instead of faulting in fresh ones (a third of a 100M-parameter model's snapshot time).
    pub spent_buffers: Vec<Vec<u8>>,
}

/// What the writer thread is handed.
enum Job {
    Ready(FileJob),
    Deferred { file_name: String, build: BuildJob },
}

/// What the writer does when it falls behind and the queue of pending snapshots is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenBehind {
    /// Block the caller until a slot frees up (default).
    #[default]
    Wait,
    /// Skip this snapshot and go on at once.
    Skip,
}

/// A queue slot taken by [`CheckpointWriter::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// A slot was free.
    Reserved,
    /// The queue was full; the caller waited this long for a slot.
    Waited(Duration),
    /// The queue was full and the writer is configured to skip: no slot, take no snapshot.
    Skipped,
}

/// Why a write failed. Write errors carry the final path the file was meant for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Writing a file failed; no file was left under `path`.
    #[error("writing checkpoint {path} failed: {message}")]
    Write {
        /// The final path the file was meant for.
        path: PathBuf,
        /// What failed, in words.
        message: String,
    },
    /// The writer thread is gone (it panicked, or the writer was finished).
    #[error("the checkpoint writer thread stopped unexpectedly")]
    WriterGone,
}

/// Files written and failed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Files written completely (renamed to their final name).
    pub written: u64,
    /// Files whose write failed (nothing left under their final name).
    pub failed: u64,
}

struct Shared {
    /// Snapshots queued or being written.
    pending: Mutex<usize>,
    freed: Condvar,
    has_error: AtomicBool,
    errors: Mutex<Vec<WriteError>>,
    written: AtomicU64,
    failed: AtomicU64,
    /// Buffers of written snapshots, reused by the next snapshot (avoids re-faulting fresh pages).
    pool: Mutex<Vec<Vec<Vec<u8>>>>,
    /// Test support: while true, the writer thread holds the next job without writing it.
    held: Mutex<bool>,
    released: Condvar,
    /// Test support: callers blocked in `reserve` waiting for a slot.
    waiters: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A background writer of files into one directory.
pub struct CheckpointWriter {
    dir: PathBuf,
    queue: usize,
    when_behind: WhenBehind,
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for CheckpointWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointWriter")
            .field("dir", &self.dir)
            .field("queue", &self.queue)
            .field("when_behind", &self.when_behind)
            .finish_non_exhaustive()
    }
}

impl CheckpointWriter {
    /// Starts a writer into `dir` (which must exist). `queue` (at least 1) snapshots may be pending at once;
    /// `keep_last` keeps only that many of the newest `step-*.safetensors` files after each write.
    pub fn start(
        dir: PathBuf,
        queue: usize,
        when_behind: WhenBehind,
        keep_last: Option<usize>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(0),
            freed: Condvar::new(),
            has_error: AtomicBool::new(false),
            errors: Mutex::new(Vec::new()),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            pool: Mutex::new(Vec::new()),
            held: Mutex::new(false),
            released: Condvar::new(),
            waiters: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = {
            let shared = Arc::clone(&shared);
            let dir = dir.clone();
            std::thread::Builder::new()
                .name("htsr-writer".into())
                .spawn(move || writer_loop(rx, &shared, &dir, keep_last))?
        };
        Ok(CheckpointWriter {
            dir,
            queue: queue.max(1),
            when_behind,
            shared,
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// The directory files are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes a queue slot before a snapshot is copied, so that at most `queue` snapshots are alive at once.
    /// A [`Reservation::Reserved`] or [`Reservation::Waited`] slot must be given back by [`Self::submit`] or
    /// [`Self::release`].
    pub fn reserve(&self) -> Result<Reservation, WriteError> {
        let mut pending = lock(&self.shared.pending);
        if *pending < self.queue {
            *pending += 1;
            return Ok(Reservation::Reserved);
        }
        if self.when_behind == WhenBehind::Skip {
            return Ok(Reservation::Skipped);
        }
        let started = Instant::now();
        self.shared.waiters.fetch_add(1, Ordering::SeqCst);
        while *pending >= self.queue {
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                self.shared.waiters.fetch_sub(1, Ordering::SeqCst);
                return Err(WriteError::WriterGone);
            }
            // The timeout only guards against a writer thread that died without notifying.
            pending = self
                .shared
                .freed
                .wait_timeout(pending, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        self.shared.waiters.fetch_sub(1, Ordering::SeqCst);
        *pending += 1;
        Ok(Reservation::Waited(started.elapsed()))
    }

    /// Gives back a reserved slot without submitting (the snapshot failed).
    pub fn release(&self) {
        release_slot(&self.shared);
    }

    /// Byte buffers of an earlier snapshot, for the next one to copy into (empty when none is free).
    pub fn recycled_buffers(&self) -> Vec<Vec<u8>> {
        lock(&self.shared.pool).pop().unwrap_or_default()
    }

    /// Hands a snapshot to the writer thread; its slot is freed once it is written (or failed).
    pub fn submit(&self, job: FileJob) -> Result<(), WriteError> {
        self.send(Job::Ready(job))
    }

    /// Hands the writer thread a file to build there (`file_name` names it in errors); its slot is freed once it
    /// is written (or failed).
    pub fn submit_deferred(&self, file_name: String, build: BuildJob) -> Result<(), WriteError> {
        self.send(Job::Deferred { file_name, build })
    }

    fn send(&self, job: Job) -> Result<(), WriteError> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            self.release();
            return Err(WriteError::WriterGone);
        }
        Ok(())
    }

    /// The first write error since the last call, if any (later ones of the same batch are logged and dropped).
    pub fn take_error(&self) -> Option<WriteError> {
        if !self.shared.has_error.load(Ordering::Acquire) {
            return None;
        }
        let mut errors = lock(&self.shared.errors);
        self.shared.has_error.store(false, Ordering::Release);
        if errors.is_empty() {
            return None;
        }
        let first = errors.remove(0);
        if !errors.is_empty() {
            tracing::error!(
                more = errors.len(),
                "htsr: further checkpoint writes failed"
            );
            errors.clear();
        }
        Some(first)
    }

    /// Waits until every submitted file is written (or failed); returns a pending write error, if any.
    pub fn flush(&self) -> Result<(), WriteError> {
        {
            let mut pending = lock(&self.shared.pending);
            while *pending > 0 {
                if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                    break;
                }
                pending = self
                    .shared
                    .freed
                    .wait_timeout(pending, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        self.take_error().map_or(Ok(()), Err)
    }

    /// Files written and failed so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            written: self.shared.written.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
        }
    }

    /// Writes what is queued, stops the thread, and returns the first pending write error, if any.
    pub fn finish(&mut self) -> Result<WriterStats, WriteError> {
        self.tx.take();
        self.hold(false);
        let panicked = match self.thread.take() {
            Some(t) => t.join().is_err(),
            None => false,
        };
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        if panicked {
            return Err(WriteError::WriterGone);
        }
        Ok(self.stats())
    }

    fn hold(&self, held: bool) {
        self.control().hold(held);
    }

    /// Test support: a handle that holds and releases the writer thread from another thread.
    #[doc(hidden)]
    pub fn control(&self) -> WriterControl {
        WriterControl(Arc::clone(&self.shared))
    }
}

/// Test support: lets a test fill the writer's queue deterministically instead of racing the disk.
#[doc(hidden)]
#[derive(Clone)]
pub struct WriterControl(Arc<Shared>);

impl WriterControl {
    /// While held, the writer thread keeps the next job (and its queue slot) without writing it. Finishing or
    /// dropping the writer releases it.
    pub fn hold(&self, held: bool) {
        *lock(&self.0.held) = held;
        self.0.released.notify_all();
    }

    /// How many callers are blocked in [`CheckpointWriter::reserve`] waiting for a slot.
    pub fn waiting_callers(&self) -> u64 {
        self.0.waiters.load(Ordering::SeqCst)
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.finish() {
                tracing::error!(error = %e, "htsr: error while flushing checkpoints on drop");
            }
        }
    }
}

fn release_slot(shared: &Shared) {
    let mut pending = lock(&shared.pending);
    *pending = pending.saturating_sub(1);
    shared.freed.notify_all();
}

fn writer_loop(rx: mpsc::Receiver<Job>, shared: &Shared, dir: &Path, keep_last: Option<usize>) {
    for job in rx {
        {
            let mut held = lock(&shared.held);
            while *held {
                held = shared
                    .released
                    .wait(held)
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
        let (job, final_path, deferred) = match job {
            Job::Ready(job) => {
                let path = dir.join(&job.file_name);
                (Ok(job), path, false)
            }
            Job::Deferred { file_name, build } => {
                let built = build();
                recycle(shared, built.spent_buffers);
                (built.file, dir.join(file_name), true)
            }
        };
        let written = job.and_then(|job| {
            write_atomically(dir, &job.file_name, &job.tensors, &job.metadata).map(|()| job)
        });
        match written {
            Err(message) => {
                tracing::error!(path = %final_path.display(), %message, "htsr: checkpoint write failed");
                lock(&shared.errors).push(WriteError::Write {
                    path: final_path,
                    message,
                });
                shared.has_error.store(true, Ordering::Release);
                shared.failed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(job) => {
                shared.written.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(path = %final_path.display(), "htsr: checkpoint written");
                if let Some(k) = keep_last {
                    prune_checkpoints(dir, k);
                }
                // A built file's tensors are small eigenvalue arrays: its snapshot's buffers were recycled above.
                if !deferred {
                    recycle(shared, job.tensors.into_iter().map(|s| s.data).collect());
                }
            }
        }
        release_slot(shared);
    }
}

/// Keeps a spent snapshot's buffers for the next snapshot (at most two sets, so memory stays bounded).
fn recycle(shared: &Shared, buffers: Vec<Vec<u8>>) {
    if buffers.is_empty() {
        return;
    }
    let mut pool = lock(&shared.pool);
    if pool.len() < 2 {
        pool.push(buffers);
    }
}
