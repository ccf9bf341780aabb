//! One checkpoint, analyzed and stored: open it, check it is still the version readiness saw, analyze one tensor
//! at a time with positioned reads (so memory follows the largest layer), reuse frozen layers, check that nothing
//! changed while it was read, and write all layers in one batch. A cancelled or torn read writes nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use htsr_contracts::{
    CheckpointRecord, CheckpointSource, CheckpointStatus, FileIdentity, LayerReport, LayerStatus,
};
use htsr_storage::Store;

use htsr_contracts::phase_counts;
use htsr_engine::analyze::{analyze_tensors, layer_name, wanted, AnalyzeOptions};
use htsr_engine::checkpoint::{Checkpoint, CheckpointError};
use htsr_engine::spectra::{analyze_spectra, is_spectra};

use crate::frozen::FrozenMemo;
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
    /// Reading failed (other than vanishing or changing); nothing was written. The file is read again later.
    Error { job: Job, reason: String },
    /// The analysis is done but the store refused it for a reason that may pass (a full disk): the write is
    /// retried with backoff, without analyzing again.
    StoreFailed {
        job: Job,
        write: Box<PendingWrite>,
        error: htsr_storage::Error,
    },
    /// The store refused it for good (another file holds the same run and step); nothing was written and it is
    /// not retried until the file changes.
    Rejected { job: Job, reason: String },
}

/// One checkpoint's results, ready for [`Store::write_checkpoint`].
#[derive(Debug, Clone)]
pub struct PendingWrite {
    pub record: CheckpointRecord,
    pub reports: Vec<LayerReport>,
    pub raw: Vec<(String, Vec<f64>)>,
}

impl PendingWrite {
    pub fn write(&self, store: &Store) -> htsr_storage::Result<()> {
        store.write_checkpoint(&self.record, &self.reports, &self.raw)
    }
}

/// The outcome of a store write that failed: a conflict is final, anything else (a full disk) keeps the results
/// for a retry.
fn store_error(job: Job, write: PendingWrite, e: htsr_storage::Error) -> Outcome {
    match e {
        htsr_storage::Error::Conflict { .. } | htsr_storage::Error::Invalid(_) => {
            Outcome::Rejected {
                job,
                reason: format!("storing the results: {e}"),
            }
        }
        error => Outcome::StoreFailed {
            job,
            write: Box::new(write),
            error,
        },
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
            | Outcome::StoreFailed { job, .. }
            | Outcome::Rejected { job, .. } => job,
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The record of a checkpoint that could not be read, with no layers.
/// The record of a checkpoint whose every layer was analyzed (skips and failed fits included).
fn complete_record(
    job: &Job,
    reports: &[LayerReport],
    started: Instant,
    source: CheckpointSource,
) -> CheckpointRecord {
    CheckpointRecord {
        run: job.run.clone(),
        step: job.step,
        identity: job.identity.clone(),
        metadata: job.metadata.clone(),
        analyzed_at: unix_now(),
        analysis_seconds: started.elapsed().as_secs_f64(),
        status: CheckpointStatus::Complete,
        errors: Vec::new(),
        layer_count: reports.len(),
        phase_counts: phase_counts(reports),
        source,
    }
}

pub fn failed_record(
    run: &str,
    step: u64,
    identity: FileIdentity,
    metadata: std::collections::BTreeMap<String, String>,
    reason: &str,
) -> PendingWrite {
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
        source: Default::default(),
    };
    PendingWrite {
        record,
        reports: Vec::new(),
        raw: Vec::new(),
    }
}

/// What happened to a checkpoint whose reading failed: a file that vanished is gone, one that changed is looked
/// at again, a cancelled job writes nothing, and other I/O errors are retried.
fn read_failed(job: Job, e: CheckpointError) -> Outcome {
    match e {
        e if e.is_not_found() => Outcome::Gone { job },
        CheckpointError::Changed { reason, .. } => {
            tracing::debug!(path = %job.candidate.path.display(), %reason, "changed while it was read");
            Outcome::Changed { job }
        }
        CheckpointError::Cancelled => Outcome::Cancelled { job },
        other => Outcome::Error {
            job,
            reason: other.to_string(),
        },
    }
}

/// Analyzes and stores one checkpoint.
pub fn process(ctx: &WorkerContext, job: Job) -> Outcome {
    let started = Instant::now();
    let path = job.candidate.path.clone();
    if let Some(parts) = job.parts.clone() {
        let paths = parts.files.iter().map(|(_, p)| p.clone()).collect();
        return process_spectra(ctx, job, paths, Some(parts.world), parts.missing());
    }
    let checkpoint = match Checkpoint::open(&path) {
        Ok(c) => c,
        Err(e @ (CheckpointError::Invalid { .. } | CheckpointError::Index { .. })) => {
            // Readiness saw a complete, valid file; if it is invalid now, it changed since: look again.
            tracing::debug!(path = %path.display(), error = %e, "invalid when opened");
            return Outcome::Changed { job };
        }
        Err(e) => return read_failed(job, e),
    };
    if is_spectra(checkpoint.metadata()) {
        drop(checkpoint);
        return process_spectra(ctx, job, vec![path], None, Vec::new());
    }
    // The files opened must be the version readiness saw (a rename or a rewrite may have come in between).
    let fp = checkpoint.fingerprint();
    let id = &job.identity;
    if (fp.size, fp.mtime_ns, fp.hash.as_str()) != (id.size, id.mtime_ns, id.header_hash.as_str()) {
        return Outcome::Changed { job };
    }
    let analyzed = match analyze_checkpoint(ctx, &job, &checkpoint) {
        Ok(a) => a,
        Err(Stop::Cancelled) => return Outcome::Cancelled { job },
        Err(Stop::Read(e)) => return read_failed(job, e),
    };
    // Bytes read from a file that changed meanwhile may be torn: such a read is dropped, never stored.
    if let Err(e) = checkpoint.check_unchanged() {
        return read_failed(job, e);
    }
    drop(checkpoint);
    if ctx.cancel.load(Ordering::SeqCst) {
        return Outcome::Cancelled { job };
    }
    let record = complete_record(&job, &analyzed.reports, started, Default::default());
    let write = PendingWrite {
        record,
        reports: analyzed.reports,
        raw: analyzed.raw,
    };
    if let Err(e) = write.write(&ctx.store) {
        return store_error(job, write, e);
    }
    ctx.frozen.remember(&job.run, job.step, analyzed.hashes);
    Outcome::Stored {
        layers: write.reports.len(),
        failed_layers: write
            .reports
            .iter()
            .filter(|r| r.status == LayerStatus::Failed)
            .count(),
        reused: analyzed.reused,
        seconds: write.record.analysis_seconds,
        phase_counts: write.record.phase_counts,
        job,
    }
}

/// Why an analysis stopped before its end.
enum Stop {
    Cancelled,
    Read(CheckpointError),
}

/// One checkpoint's layers, analyzed or reused, in the file's order.
struct Analyzed {
    reports: Vec<LayerReport>,
    /// Raw eigenvalues of the layers that have them.
    raw: Vec<(String, Vec<f64>)>,
    /// Each tensor's content hash, for the next checkpoint's frozen-layer check.
    hashes: HashMap<String, [u8; 32]>,
    /// Layers whose report was reused from the previous checkpoint.
    reused: usize,
}

/// Every wanted tensor of `checkpoint`: first the frozen ones (bytes equal to the previous checkpoint's reuse its
/// report), then the others, scheduled so that every core works (narrow layers in parallel, wide ones in turn).
fn analyze_checkpoint(
    ctx: &WorkerContext,
    job: &Job,
    checkpoint: &Checkpoint,
) -> Result<Analyzed, Stop> {
    let previous = ctx
        .frozen
        .previous(&ctx.store, &job.run, job.step, &ctx.opts);
    let mut hashes = HashMap::new();
    let mut slots: Vec<Option<(LayerReport, Option<Vec<f64>>)>> = Vec::new();
    let mut to_analyze = Vec::new();
    let mut buf = Vec::new();
    let entries: Vec<_> = checkpoint
        .tensors()
        .iter()
        .filter(|t| wanted(&ctx.opts, &t.name))
        .collect();
    for (i, entry) in entries.iter().enumerate() {
        if ctx.cancel.load(Ordering::SeqCst) {
            return Err(Stop::Cancelled);
        }
        let layer_started = Instant::now();
        let hash = checkpoint
            .tensor_hash(entry, &mut buf)
            .map_err(Stop::Read)?;
        hashes.insert(entry.name.clone(), hash);
        let frozen_at = previous
            .as_ref()
            .filter(|p| p.hashes.get(&entry.name) == Some(&hash))
            .map(|p| p.step);
        match frozen_at.and_then(|step| reuse(ctx, job, step, layer_name(&entry.name))) {
            Some((mut report, evals)) => {
                report.seconds = layer_started.elapsed().as_secs_f64();
                slots.push(Some((report, evals)));
            }
            None => {
                slots.push(None);
                to_analyze.push((i, *entry));
            }
        }
    }
    let reused = slots.iter().flatten().count();
    let fresh: Vec<_> = to_analyze.iter().map(|(_, e)| *e).collect();
    let analyses = analyze_tensors(checkpoint, &fresh, &ctx.opts).map_err(Stop::Read)?;
    for ((i, _), a) in to_analyze.iter().zip(analyses) {
        slots[*i] = Some((a.report, a.eigenvalues));
    }
    let mut reports = Vec::with_capacity(slots.len());
    let mut raw = Vec::new();
    for (report, evals) in slots.into_iter().flatten() {
        if let Some(evals) = evals {
            raw.push((report.name.clone(), evals));
        }
        reports.push(report);
    }
    Ok(Analyzed {
        reports,
        raw,
        hashes,
        reused,
    })
}

/// The stored report (and raw eigenvalues, if kept) of `layer` at the frozen `step`, marked as reused from it.
fn reuse(
    ctx: &WorkerContext,
    job: &Job,
    step: u64,
    layer: &str,
) -> Option<(LayerReport, Option<Vec<f64>>)> {
    let mut report = ctx
        .store
        .layer_report(&job.run, step, layer)
        .ok()
        .flatten()?;
    let evals = ctx
        .store
        .raw_eigenvalues(&job.run, step, layer)
        .ok()
        .flatten();
    report.reused_from_step = Some(step);
    Some((report, evals))
}

/// A checkpoint of spectra files (one file, or the rank files of one step): the eigenvalues are in the files, so
/// only the fits run here. Layers owed by `missing` ranks are stored as missing.
fn process_spectra(
    ctx: &WorkerContext,
    job: Job,
    paths: Vec<std::path::PathBuf>,
    world: Option<usize>,
    missing: Vec<usize>,
) -> Outcome {
    let started = Instant::now();
    let analysis = match analyze_spectra(&paths, &ctx.opts, world) {
        Ok(a) => a,
        Err(CheckpointError::Invalid { path, reason }) => {
            let reason = format!("{}: {reason}", path.display());
            let write = failed_record(
                &job.run,
                job.step,
                job.identity.clone(),
                job.metadata.clone(),
                &reason,
            );
            return match write.write(&ctx.store) {
                Ok(()) => Outcome::StoredFailed { job, reason },
                Err(e) => store_error(job, write, e),
            };
        }
        Err(e) => return read_failed(job, e),
    };
    if ctx.cancel.load(Ordering::SeqCst) {
        return Outcome::Cancelled { job };
    }
    let mut reports = Vec::with_capacity(analysis.layers.len());
    let mut raw = Vec::new();
    for layer in analysis.layers {
        if let Some(evals) = layer.eigenvalues {
            raw.push((layer.report.name.clone(), evals));
        }
        reports.push(layer.report);
    }
    let source = CheckpointSource::Spectra {
        ranks: world.unwrap_or(1),
        missing,
    };
    let record = complete_record(&job, &reports, started, source);
    let write = PendingWrite {
        record,
        reports,
        raw,
    };
    if let Err(e) = write.write(&ctx.store) {
        return store_error(job, write, e);
    }
    Outcome::Stored {
        layers: write.reports.len(),
        failed_layers: write
            .reports
            .iter()
            .filter(|r| matches!(r.status, LayerStatus::Failed | LayerStatus::Missing))
            .count(),
        reused: 0,
        seconds: write.record.analysis_seconds,
        phase_counts: write.record.phase_counts,
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
            let write = failed_record(
                &copy.run,
                copy.step,
                copy.identity.clone(),
                copy.metadata.clone(),
                &reason,
            );
            match write.write(&ctx.store) {
                Ok(()) => Outcome::StoredFailed { job: copy, reason },
                Err(e) => store_error(copy, write, e),
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

    /// Closes the job channel without waiting: the process is exiting and a worker inside an eigensolver cannot be
    /// interrupted. It can no longer store anything (the store is closed first).
    pub fn abandon(mut self) {
        self.jobs = None;
        self.threads.clear();
    }

    /// Closes the job channel and waits for the workers to finish their current job.
    pub fn join(mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
