//! TensorBoard event files from the store: one TensorBoard run folder per htsr run, `LOGDIR/<run>/`, holding per
//! layer the scalars `htsr/<layer>/{alpha, D, num_spikes, mp_softrank, stable_rank, ERG_gap, phase}` and the
//! histogram `htsr/<layer>/log10_eigenvalues`, one point per checkpoint (step = the checkpoint's step, wall time
//! = its `htsr.wall_time` metadata, else when it was analyzed); the phase legend as one text summary per run
//! (`htsr/phase_legend`); per checkpoint the training loop's `htsr/checkpoint/{loss, lr, batch_size, epoch}` where
//! its metadata has them (so alpha can be read against the loss in one place), and
//! `htsr/checkpoint/analysis_seconds`, written last.
//!
//! Exporting is idempotent. What a run folder already holds is read back from its event files (TensorBoard's
//! own view: records up to the first defect of each file), and only what is missing is written: a checkpoint
//! whose last value (`htsr/checkpoint/analysis_seconds`) is there is complete; of one whose writer was cut off,
//! only the values not there yet are written. Points are never rewritten: a checkpoint that the daemon analyzes
//! again after its file changed keeps its first values in TensorBoard.
//!
//! A value the store does not have (a skipped layer, a failed fit, NaN) is not written; numerically zero
//! eigenvalues have no log10 and are left out of the histogram.

mod live;
mod mapping;
mod resume;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use htsr_api::History;
use htsr_contracts::naming::keys;
use htsr_contracts::{CheckpointRecord, CheckpointStatus};

use crate::warn::WarnOnce;
pub use live::spawn_live;
use mapping::training_scalars;
pub use mapping::{
    esd_histogram, layer_scalars, layer_tag, legend_markdown, run_folder_name, CHECKPOINT_TAG,
    HISTOGRAM, LEGEND_TAG, SCALARS,
};
use resume::RunState;

/// Why an export failed. Every variant names the path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The history could not be read.
    #[error("reading the store {store}: {source}")]
    Store {
        /// Where the history comes from.
        store: String,
        /// What the store (or the daemon serving it) said.
        #[source]
        source: htsr_api::Error,
    },
    /// A run folder could not be listed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An event file could not be created, written, flushed or read.
    #[error(transparent)]
    Events(#[from] htsr_tensorboard::Error),
}

impl ExportError {
    /// What went wrong, without the path: the key under which a live exporter reports it once (a full disk is
    /// one cause, however many run folders it hits).
    pub fn cause(&self) -> String {
        match self {
            ExportError::Store { source, .. } => format!("store {:?}", source.kind),
            ExportError::Io { op, source, .. }
            | ExportError::Events(htsr_tensorboard::Error::Io { op, source, .. }) => {
                format!("{op} {:?}", source.kind())
            }
            ExportError::Events(e) => e.to_string(),
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Checkpoints written now.
    pub written: u64,
    /// Checkpoints that the run folders held already (not written again).
    pub present: u64,
    /// Summary values written (scalars, histograms, legends).
    pub points: u64,
}

impl std::ops::AddAssign for ExportSummary {
    fn add_assign(&mut self, o: ExportSummary) {
        self.written += o.written;
        self.present += o.present;
        self.points += o.points;
    }
}

/// Writes the store's history as TensorBoard runs under a LOGDIR (see the module's documentation).
pub struct TensorBoardExporter {
    store: Arc<dyn History>,
    logdir: PathBuf,
    runs: HashMap<String, RunState>,
    warned: WarnOnce,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for TensorBoardExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorBoardExporter")
            .field("store", &self.store.source())
            .field("logdir", &self.logdir)
            .field("runs", &self.runs.len())
            .finish()
    }
}

impl TensorBoardExporter {
    /// An exporter from `store` (the store in the daemon's process, or a daemon through its client) into `logdir`
    /// (created when the first point is written).
    pub fn new(store: Arc<dyn History>, logdir: impl Into<PathBuf>) -> Self {
        TensorBoardExporter {
            store,
            logdir: logdir.into(),
            runs: HashMap::new(),
            warned: WarnOnce::new("tensorboard"),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Makes [`export_all`](Self::export_all) return early once `stop` is set (a daemon shutting down must not
    /// wait for a long catch-up; what was not written is written next time).
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = stop;
        self
    }

    /// The LOGDIR.
    pub fn logdir(&self) -> &Path {
        &self.logdir
    }

    /// The TensorBoard run folder of htsr run `run`: `LOGDIR/<`[`run_folder_name`]`>`.
    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.logdir.join(run_folder_name(run))
    }

    fn store_err(&self) -> impl Fn(htsr_api::Error) -> ExportError + '_ {
        |source| ExportError::Store {
            store: self.store.source(),
            source,
        }
    }

    /// Writes every checkpoint of `run` (every run when `None`) that LOGDIR does not hold yet, then flushes
    /// (fsync) and closes each run's event file.
    pub fn export_all(&mut self, run: Option<&str>) -> Result<ExportSummary, ExportError> {
        let runs: Vec<String> = match run {
            Some(r) => vec![r.to_string()],
            None => self
                .store
                .runs()
                .map_err(self.store_err())?
                .into_iter()
                .map(|s| s.run)
                .collect(),
        };
        let mut summary = ExportSummary::default();
        for run in runs {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let records = self.store.checkpoints(&run).map_err(self.store_err())?;
            for record in &records {
                if self.stop.load(Ordering::Relaxed) {
                    break;
                }
                summary += self.guarded(&run, |me| me.write_record(record))?;
            }
            self.guarded(&run, |me| me.close_run(&run))?;
        }
        Ok(summary)
    }

    /// Writes checkpoint (`run`, `step`) unless LOGDIR holds it already, and flushes (fsync) its run's event
    /// file, which stays open for the next checkpoint. A checkpoint the store does not hold writes nothing.
    pub fn export_checkpoint(
        &mut self,
        run: &str,
        step: u64,
    ) -> Result<ExportSummary, ExportError> {
        let Some(record) = self.store.checkpoint(run, step).map_err(self.store_err())? else {
            return Ok(ExportSummary::default());
        };
        self.guarded(run, |me| {
            let s = me.write_record(&record)?;
            me.runs.get_mut(run).map_or(Ok(()), RunState::flush)?;
            Ok(s)
        })
    }

    /// Flushes (fsync) every open event file.
    pub fn flush(&mut self) -> Result<(), ExportError> {
        let runs: Vec<String> = self.runs.keys().cloned().collect();
        for run in runs {
            self.guarded(&run, |me| {
                me.runs.get_mut(&run).map_or(Ok(()), RunState::flush)
            })?;
        }
        Ok(())
    }

    /// Runs `f`; on failure forgets what it knew of `run`'s folder, so that the next attempt reads back what
    /// really reached the files (an event file cut off by a full disk) and writes only what is missing.
    fn guarded<T>(
        &mut self,
        run: &str,
        f: impl FnOnce(&mut Self) -> Result<T, ExportError>,
    ) -> Result<T, ExportError> {
        let out = f(self);
        if out.is_err() {
            // Dropping the writer hands what it buffered to the file if it can; the reload reads what made it.
            self.runs.remove(run);
        }
        out
    }

    fn close_run(&mut self, run: &str) -> Result<(), ExportError> {
        if let Some(state) = self.runs.get_mut(run) {
            state.flush()?;
            if let Some(w) = state.writer.take() {
                w.close()?;
            }
        }
        Ok(())
    }

    fn state(&mut self, run: &str) -> Result<&mut RunState, ExportError> {
        if !self.runs.contains_key(run) {
            let state = RunState::load(self.run_dir(run), &mut self.warned)?;
            self.runs.insert(run.to_string(), state);
        }
        Ok(self.runs.get_mut(run).expect("just inserted"))
    }

    fn write_record(&mut self, record: &CheckpointRecord) -> Result<ExportSummary, ExportError> {
        // A failed checkpoint has no layers to show.
        if record.status != CheckpointStatus::Complete {
            return Ok(ExportSummary::default());
        }
        let Ok(step) = i64::try_from(record.step) else {
            self.warned.warn(
                &format!("step {}", record.step),
                &format_args!(
                    "run {:?} step {} is beyond TensorBoard's steps (i64); not exported",
                    record.run, record.step
                ),
            );
            return Ok(ExportSummary::default());
        };
        if self.state(&record.run)?.done.contains(&step) {
            return Ok(ExportSummary {
                present: 1,
                ..ExportSummary::default()
            });
        }
        let layers = self
            .store
            .layers_at(&record.run, record.step)
            .map_err(self.store_err())?;
        let wall = wall_time(record);
        let state = self.state(&record.run)?;
        let there = state.partial.remove(&step).unwrap_or_default();
        let mut points = 0;
        if !state.legend {
            state
                .writer()?
                .add_text(LEGEND_TAG, &legend_markdown(), step, wall)?;
            state.legend = true;
            points += 1;
        }
        for layer in &layers {
            for (metric, value) in layer_scalars(layer) {
                let tag = layer_tag(&layer.name, metric);
                if !there.contains(&tag) {
                    state.writer()?.add_scalar(&tag, value as f32, step, wall)?;
                    points += 1;
                }
            }
            if let Some(histo) = layer.esd.as_ref().and_then(esd_histogram) {
                let tag = layer_tag(&layer.name, HISTOGRAM);
                if !there.contains(&tag) {
                    state
                        .writer()?
                        .add_histogram_proto(&tag, histo, step, wall)?;
                    points += 1;
                }
            }
        }
        for (tag, value) in training_scalars(record) {
            if !there.contains(tag) {
                state.writer()?.add_scalar(tag, value as f32, step, wall)?;
                points += 1;
            }
        }
        state
            .writer()?
            .add_scalar(CHECKPOINT_TAG, record.analysis_seconds as f32, step, wall)?;
        state.done.insert(step);
        Ok(ExportSummary {
            written: 1,
            present: 0,
            points: points + 1,
        })
    }
}

/// The wall time of a checkpoint's points: its `htsr.wall_time` metadata when that is a time, else when htsr
/// analyzed it.
pub fn wall_time(record: &CheckpointRecord) -> f64 {
    record
        .metadata
        .get(keys::WALL_TIME)
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t > 0.0)
        .unwrap_or(record.analyzed_at)
}
