//! One checkpoint, analyzed and stored: open it (memory-mapped), check it is still the file readiness saw,
//! analyze one tensor at a time (so memory follows the largest layer), reuse frozen layers, and write all
//! layers in one batch. A cancelled job writes nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use htsr_contracts::{CheckpointRecord, CheckpointStatus, FileIdentity, LayerReport, LayerStatus};
use htsr_storage::Store;

use htsr_contracts::phase_counts;
use htsr_engine::analyze::{analyze_tensor, layer_name, wanted, AnalyzeOptions};
use htsr_engine::checkpoint::{Checkpoint, CheckpointError};

use crate::frozen::{tensor_hash, FrozenMemo};
use crate::identity::{look, LookError};
use crate::queue::Job;

/// What the workers share.
#[derive(Debug)]
pub struct WorkerContext {
    pub store: Store,
    pub opts: AnalyzeOptions,
    pub frozen: FrozenMemo,
    /// Set on shutdown: a worker stops between tensors and writes nothing.
    pub cancel: Arc<AtomicBool>,
}

/// How a job ended.
#[derive(Debug)]
pub enum Outcome {
    /// All layers stored in one batch.
    Stored {
        job: Job,
        layers: usize,
        failed_layers: usize,
        reused: usize,
        seconds: f64,
        phase_counts: htsr_contracts::PhaseCounts,
    },
    /// The file could not be read as a checkpoint; a failed record with this reason was stored.
    StoredFailed { job: Job, reason: String },
    /// The file changed since readiness looked at it: look again.
    Changed { job: Job },
    /// The file vanished before it could be opened.
    Gone { job: Job },
    /// Shutdown: dropped before writing anything.
    Cancelled { job: Job },
    /// Reading (other than vanishing) or storing failed; nothing was written. Retried later.
    Error { job: Job, reason: String },
    /// The store refused it for good (another file holds the same run and step); nothing was written and it is
    /// not retried until the file changes.
    Rejected { job: Job, reason: String },
}

/// The outcome of a store write that failed: a conflict is final, anything else (a full disk) is retried.
fn store_error(job: Job, what: &str, e: htsr_storage::Error) -> Outcome {
    let reason = format!("{what}: {e}");
    match e {
        htsr_storage::Error::Conflict { .. } => Outcome::Rejected { job, reason },
        _ => Outcome::Error { job, reason },
    }
}

impl Outcome {
    pub fn job(&self) -> &Job {
        match self {
            Outcome::Stored { job, .. }
            | Outcome::StoredFailed { job, .. }
            | Outcome::Changed { job }
            | Outcome::Gone { job }
            | Outcome::Cancelled { job }
            | Outcome::Error { job, .. }
            | Outcome::Rejected { job, .. } => job,
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Stores a checkpoint that could not be read, with no layers.
pub fn store_failed(
    store: &Store,
    run: &str,
    step: u64,
    identity: FileIdentity,
    metadata: std::collections::BTreeMap<String, String>,
    reason: &str,
) -> htsr_storage::Result<()> {
    let record = CheckpointRecord {
        run: run.to_string(),
        step,
        identity,
        metadata,
        analyzed_at: unix_now(),
        analysis_seconds: 0.0,
        status: CheckpointStatus::Failed,
        errors: vec![reason.to_string()],
        layer_count: 0,
        phase_counts: [0; htsr_contracts::Phase::COUNT],
    };
    store.write_checkpoint(&record, &[], &[])
}

/// Analyzes and stores one checkpoint.
pub fn process(ctx: &WorkerContext, job: Job) -> Outcome {
    let started = Instant::now();
    let path = job.candidate.path.clone();
    let checkpoint = match Checkpoint::open(&path) {
        Ok(c) => c,
        Err(e) if e.is_not_found() => return Outcome::Gone { job },
        Err(CheckpointError::Io { source, .. }) => {
            return Outcome::Error {
                job,
                reason: source.to_string(),
            }
        }
        Err(e) => {
            let reason = e.to_string();
            return match store_failed(
                &ctx.store,
                &job.run,
                job.step,
                job.identity.clone(),
                job.metadata.clone(),
                &reason,
            ) {
                Ok(()) => Outcome::StoredFailed { job, reason },
                Err(e) => store_error(job, "storing the failed record", e),
            };
        }
    };
    // The file may have been replaced between the readiness look and the open. A file deleted after the open
    // is still read whole: the mapping keeps its bytes.
    match look(&path, job.candidate.sharded) {
        Ok(now) if now.identity(&job.identity.path) != job.identity => {
            return Outcome::Changed { job }
        }
        Ok(_) | Err(LookError::Gone) => {}
        Err(LookError::Io(reason)) => return Outcome::Error { job, reason },
    }

    let previous = ctx
        .frozen
        .previous(&ctx.store, &job.run, job.step, &ctx.opts);
    let mut reports: Vec<LayerReport> = Vec::new();
    let mut raw: Vec<(String, Vec<f64>)> = Vec::new();
    let mut hashes = HashMap::new();
    let mut reused = 0;
    for entry in checkpoint
        .tensors()
        .iter()
        .filter(|t| wanted(&ctx.opts, &t.name))
    {
        if ctx.cancel.load(Ordering::SeqCst) {
            return Outcome::Cancelled { job };
        }
        let layer_started = Instant::now();
        let hash = tensor_hash(entry, checkpoint.bytes(entry));
        hashes.insert(entry.name.clone(), hash);
        let name = layer_name(&entry.name);
        let frozen = previous
            .as_ref()
            .filter(|p| p.hashes.get(&entry.name) == Some(&hash))
            .and_then(|p| {
                let report = ctx
                    .store
                    .layer_report(&job.run, p.step, name)
                    .ok()
                    .flatten()?;
                Some((p.step, report))
            });
        if let Some((step, mut report)) = frozen {
            if let Ok(Some(evals)) = ctx.store.raw_eigenvalues(&job.run, step, name) {
                raw.push((report.name.clone(), evals));
            }
            report.reused_from_step = Some(step);
            report.seconds = layer_started.elapsed().as_secs_f64();
            reports.push(report);
            reused += 1;
            continue;
        }
        let analysis = analyze_tensor(&checkpoint, entry, &ctx.opts);
        if let Some(evals) = analysis.eigenvalues {
            raw.push((analysis.report.name.clone(), evals));
        }
        reports.push(analysis.report);
    }
    drop(checkpoint);
    if ctx.cancel.load(Ordering::SeqCst) {
        return Outcome::Cancelled { job };
    }
    let counts = phase_counts(&reports);
    let seconds = started.elapsed().as_secs_f64();
    let record = CheckpointRecord {
        run: job.run.clone(),
        step: job.step,
        identity: job.identity.clone(),
        metadata: job.metadata.clone(),
        analyzed_at: unix_now(),
        analysis_seconds: seconds,
        status: CheckpointStatus::Complete,
        errors: Vec::new(),
        layer_count: reports.len(),
        phase_counts: counts,
    };
    if let Err(e) = ctx.store.write_checkpoint(&record, &reports, &raw) {
        return store_error(job, "storing the results", e);
    }
    ctx.frozen.remember(&job.run, job.step, hashes);
    Outcome::Stored {
        layers: reports.len(),
        failed_layers: reports
            .iter()
            .filter(|r| r.status == LayerStatus::Failed)
            .count(),
        reused,
        seconds,
        phase_counts: counts,
        job,
    }
}

/// [`process`], with a panic in the analysis turned into a failed checkpoint instead of a lost worker.
fn process_guarded(ctx: &WorkerContext, job: Job) -> Outcome {
    let copy = job.clone();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| process(ctx, job))) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let reason = format!("the analysis panicked: {what}");
            match store_failed(
                &ctx.store,
                &copy.run,
                copy.step,
                copy.identity.clone(),
                copy.metadata.clone(),
                &reason,
            ) {
                Ok(()) => Outcome::StoredFailed { job: copy, reason },
                Err(e) => Outcome::Error {
                    job: copy,
                    reason: format!("{reason}; storing the failed record: {e}"),
                },
            }
        }
    }
}

/// A fixed pool of worker threads taking jobs from one channel and sending outcomes back.
pub struct Pool {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    pub fn start<M: Send + 'static>(
        size: usize,
        ctx: Arc<WorkerContext>,
        done: Sender<M>,
        wrap: fn(Outcome) -> M,
    ) -> std::io::Result<Pool> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for i in 0..size.max(1) {
            let rx: Arc<Mutex<Receiver<Job>>> = rx.clone();
            let ctx = ctx.clone();
            let done = done.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("htsr-worker-{i}"))
                    .spawn(move || loop {
                        let job = {
                            let guard = rx.lock().unwrap_or_else(|e| e.into_inner());
                            guard.recv()
                        };
                        let Ok(job) = job else { return };
                        let outcome = process_guarded(&ctx, job);
                        if done.send(wrap(outcome)).is_err() {
                            return;
                        }
                    })?,
            );
        }
        Ok(Pool {
            jobs: Some(tx),
            threads,
        })
    }

    pub fn submit(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            // The workers outlive the pool's sender; a send fails only after `join`.
            let _ = tx.send(job);
        }
    }

    /// Closes the job channel and waits for the workers to finish their current job.
    pub fn join(mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
