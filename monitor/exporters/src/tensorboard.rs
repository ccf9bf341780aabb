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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use htsr_api::History;
use htsr_contracts::naming::keys;
use htsr_contracts::{
    CheckpointRecord, CheckpointStatus, EsdHistogram, LayerReport, LiveEvent, Phase,
};
use htsr_tensorboard::proto::event::What;
use htsr_tensorboard::{read_events_until_defect, EventWriter, HistogramProto};

use crate::warn::WarnOnce;

/// The text summary that explains the integer `phase` scalars (one per run).
pub const LEGEND_TAG: &str = "htsr/phase_legend";

/// Written last for each checkpoint: its presence marks the checkpoint as complete in a run folder.
pub const CHECKPOINT_TAG: &str = "htsr/checkpoint/analysis_seconds";

/// The training loop's numbers for a checkpoint, as scalars (tag, value), where its metadata has them.
fn training_scalars(record: &CheckpointRecord) -> Vec<(&'static str, f64)> {
    let t = record.training();
    [
        ("htsr/checkpoint/loss", t.loss),
        ("htsr/checkpoint/lr", t.lr),
        ("htsr/checkpoint/batch_size", t.batch_size.map(|b| b as f64)),
        ("htsr/checkpoint/epoch", t.epoch.map(|e| e as f64)),
    ]
    .into_iter()
    .filter_map(|(tag, v)| Some((tag, v?)))
    .collect()
}

/// The per-layer histogram's name under `htsr/<layer>/`.
pub const HISTOGRAM: &str = "log10_eigenvalues";

/// The per-layer scalars' names under `htsr/<layer>/`, in the order they are written.
pub const SCALARS: [&str; 7] = [
    "alpha",
    "D",
    "num_spikes",
    "mp_softrank",
    "stable_rank",
    "ERG_gap",
    "phase",
];

/// Event files are recognised by this prefix (TensorBoard's own rule).
const EVENT_FILE_PREFIX: &str = "events.out.tfevents.";

/// The tag of `metric` of layer `layer`: `htsr/<layer>/<metric>`.
pub fn layer_tag(layer: &str, metric: &str) -> String {
    format!("htsr/{layer}/{metric}")
}

/// The scalars written for one layer report: `(name, value)` for each of [`SCALARS`] that the report has and
/// that is finite. `phase` is the phase's index in [`Phase::ALL`] (see [`legend_markdown`]).
pub fn layer_scalars(report: &LayerReport) -> Vec<(&'static str, f64)> {
    let pl = report.power_law.as_ref();
    let candidates = [
        ("alpha", pl.map(|p| p.alpha)),
        ("D", pl.map(|p| p.d)),
        (
            "num_spikes",
            report.mp.as_ref().map(|m| m.num_spikes as f64),
        ),
        ("mp_softrank", report.mp.as_ref().map(|m| m.mp_softrank)),
        (
            "stable_rank",
            report.metrics.as_ref().map(|m| m.stable_rank),
        ),
        (
            "ERG_gap",
            report
                .erg
                .as_ref()
                .and_then(|e| e.ERG_gap)
                .map(|g| g as f64),
        ),
        ("phase", report.phase().map(|p| p.index() as f64)),
    ];
    candidates
        .into_iter()
        .filter_map(|(name, v)| v.filter(|v| v.is_finite()).map(|v| (name, v)))
        .collect()
}

/// The stored 96-bin ESD as a TensorBoard histogram over log10(lambda): bucket limits in log10 units (the right
/// edge of each bin), `min`/`max` the smallest and largest log10 eigenvalue, `num` the non-zero eigenvalues,
/// `sum` and `sum_squares` from the bin centres. Empty outer bins are left out (TensorBoard's loaders then agree,
/// see htsr-tensorboard's README). `None` when no eigenvalue is above the zero floor.
pub fn esd_histogram(esd: &EsdHistogram) -> Option<HistogramProto> {
    let n = esd.counts.len();
    let first = esd.counts.iter().position(|&c| c > 0)?;
    let last = esd.counts.iter().rposition(|&c| c > 0)?;
    if !(esd.log10_lo.is_finite() && esd.log10_hi.is_finite()) {
        return None;
    }
    let width = (esd.log10_hi - esd.log10_lo) / n as f64;
    // The last edge is log10_hi itself, not lo + n * width, which can differ from it in the last bit.
    let edge = |i: usize| {
        if i == n {
            esd.log10_hi
        } else {
            esd.log10_lo + width * i as f64
        }
    };
    let log_max =
        (esd.lambda_max > 0.0 && esd.lambda_max.is_finite()).then(|| esd.lambda_max.log10());
    // The bins span [smallest, largest] log10 eigenvalue, so the first and last bins hold those two; a lone
    // non-empty bin among several means all eigenvalues were equal (the bins were widened around that value).
    let (min, max) = match log_max {
        Some(m) if first == last && n > 1 => (m, m),
        Some(m) => (edge(first), m.clamp(edge(first), edge(last + 1))),
        None => (edge(first), edge(last + 1)),
    };
    let (mut num, mut sum, mut sum_squares) = (0.0, 0.0, 0.0);
    let mut bucket_limit = Vec::with_capacity(last + 1 - first);
    let mut bucket = Vec::with_capacity(last + 1 - first);
    for i in first..=last {
        let c = f64::from(esd.counts[i]);
        let centre = 0.5 * (edge(i) + edge(i + 1));
        num += c;
        sum += c * centre;
        sum_squares += c * centre * centre;
        bucket_limit.push(edge(i + 1));
        bucket.push(c);
    }
    Some(HistogramProto {
        min,
        max,
        num,
        sum,
        sum_squares,
        bucket_limit,
        bucket,
    })
}

/// The Markdown of the phase legend: each phase's integer, name and meaning.
pub fn legend_markdown() -> String {
    let mut s = String::from(
        "**htsr phases.** The scalar `htsr/<layer>/phase` is the layer's training phase (Martin & Mahoney, \
         arXiv 1901.08276) as an integer:\n\n| value | phase | meaning |\n|---:|---|---|\n",
    );
    for p in Phase::ALL {
        s.push_str(&format!(
            "| {} | `{}` | {} |\n",
            p.index(),
            p.as_str(),
            p.meaning()
        ));
    }
    s.push_str(
        "\n`htsr/<layer>/log10_eigenvalues` is the layer's ESD (the eigenvalues of W^T W) as a histogram of \
         log10(lambda), from htsr's 96 log-spaced bins; numerically zero eigenvalues are left out. \
         `htsr/checkpoint/analysis_seconds` is how long htsr took to analyze the checkpoint.\n",
    );
    s
}

/// The folder name (one path component) of htsr run `run` under LOGDIR.
///
/// A run name that is a safe folder name is kept as it is. Otherwise (a `/`, a `\`, a control character or
/// bidirectional override, empty, `.`, `..`, or longer than a file name may be) those characters become `_`, the
/// name is cut to fit, and a hash of the real name is appended, so that two runs never share a folder: `exp/1`
/// becomes `exp_1-<16 hex digits>`.
pub fn run_folder_name(run: &str) -> String {
    let safe = |c: char| !(c == '/' || c == '\\' || htsr_contracts::text::is_unsafe(c));
    if !run.is_empty()
        && run != "."
        && run != ".."
        && run.len() <= MAX_FOLDER_BYTES
        && run.chars().all(safe)
    {
        return run.to_string();
    }
    let mut cleaned = String::new();
    for c in run.chars().map(|c| if safe(c) { c } else { '_' }) {
        if cleaned.len() + c.len_utf8() > MAX_FOLDER_BYTES - 17 {
            break;
        }
        cleaned.push(c);
    }
    let cleaned = cleaned.trim_matches('.');
    // Stable across Rust versions and platforms (std's hashers are not), so folders stay put.
    let hash = htsr_contracts::naming::stable_hash(run.as_bytes());
    if cleaned.is_empty() {
        format!("run-{hash:016x}")
    } else {
        format!("{cleaned}-{hash:016x}")
    }
}

/// The longest run folder name: file systems allow 255 bytes per name; a margin for the suffixes others add.
const MAX_FOLDER_BYTES: usize = 200;

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

/// What one run folder holds, as read back from its event files, and the file being appended to.
struct RunState {
    folder: PathBuf,
    /// Steps whose checkpoint is complete (its [`CHECKPOINT_TAG`] is there).
    done: HashSet<i64>,
    /// Tags at steps whose checkpoint is not complete: a writer cut off mid-checkpoint.
    partial: HashMap<i64, HashSet<String>>,
    legend: bool,
    writer: Option<EventWriter>,
    unflushed: bool,
}

impl RunState {
    /// Reads every event file directly in `folder` (a folder that does not exist holds nothing).
    fn load(folder: PathBuf, warned: &mut WarnOnce) -> Result<RunState, ExportError> {
        let mut state = RunState {
            folder,
            done: HashSet::new(),
            partial: HashMap::new(),
            legend: false,
            writer: None,
            unflushed: false,
        };
        let entries = match std::fs::read_dir(&state.folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(state),
            Err(source) => {
                return Err(ExportError::Io {
                    path: state.folder,
                    op: "list",
                    source,
                })
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ExportError::Io {
                path: state.folder.clone(),
                op: "list",
                source,
            })?;
            let is_events = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(EVENT_FILE_PREFIX));
            if is_events && entry.file_type().is_ok_and(|t| t.is_file()) {
                files.push(entry.path());
            }
        }
        // TensorBoard reads a folder's files in name order; so does this, so that "complete" means the same.
        files.sort();
        for path in files {
            let (events, defect) = read_events_until_defect(&path)?;
            if let Some(defect) = defect {
                match defect {
                    // A writer killed mid-record: expected after a crash, and TensorBoard ignores the rest too.
                    htsr_tensorboard::Error::Truncated { .. } => {
                        tracing::debug!("tensorboard: {defect}; the records before it count")
                    }
                    _ => {
                        warned.warn(&format!("defect {}", path.display()), &defect);
                    }
                }
            }
            for event in events {
                let Some(What::Summary(summary)) = event.what else {
                    continue;
                };
                for value in summary.value {
                    state.saw(event.step, value.tag);
                }
            }
        }
        Ok(state)
    }

    fn saw(&mut self, step: i64, tag: String) {
        if tag == LEGEND_TAG {
            self.legend = true;
        } else if tag == CHECKPOINT_TAG {
            self.done.insert(step);
            self.partial.remove(&step);
        } else if tag.starts_with("htsr/") && !self.done.contains(&step) {
            self.partial.entry(step).or_default().insert(tag);
        }
    }

    fn writer(&mut self) -> Result<&mut EventWriter, ExportError> {
        if self.writer.is_none() {
            self.writer = Some(EventWriter::create(&self.folder)?);
        }
        self.unflushed = true;
        Ok(self.writer.as_mut().expect("just created"))
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        if let (true, Some(w)) = (self.unflushed, self.writer.as_mut()) {
            w.flush()?;
        }
        self.unflushed = false;
        Ok(())
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

/// Runs `exporter` live on its own thread: first it catches up with everything the store holds, then it writes
/// each checkpoint the daemon reports stored ([`LiveEvent::CheckpointStored`]), until `events` disconnects (the
/// daemon stopped); then it flushes and ends. Failures are logged once per cause and never stop it: after one,
/// the next stored checkpoint makes it catch up with everything again, so nothing is lost while the disk was
/// full.
pub fn spawn_live(
    mut exporter: TensorBoardExporter,
    events: Receiver<LiveEvent>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("htsr-tensorboard".into())
        .spawn(move || {
            let mut warned = WarnOnce::new("tensorboard");
            let mut behind = catch_up(&mut exporter, &mut warned);
            while let Ok(event) = events.recv() {
                let LiveEvent::CheckpointStored { run, step, .. } = event else {
                    continue;
                };
                if behind {
                    behind = catch_up(&mut exporter, &mut warned);
                    continue;
                }
                match exporter.export_checkpoint(&run, step) {
                    Ok(s) if s.written > 0 => tracing::debug!(
                        "tensorboard: exported run={run} step={step} ({} points) to {}",
                        s.points,
                        exporter.run_dir(&run).display()
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        warned.warn(&e.cause(), &e);
                        behind = true;
                    }
                }
            }
            if let Err(e) = exporter.flush() {
                warned.warn(&e.cause(), &e);
            }
        })
}

/// Writes everything the LOGDIR lacks; returns whether the exporter is still behind (the attempt failed, and
/// was reported unless its cause was reported before).
fn catch_up(exporter: &mut TensorBoardExporter, warned: &mut WarnOnce) -> bool {
    match exporter.export_all(None) {
        Ok(s) => {
            tracing::info!(
                "tensorboard: caught up in {}: {} checkpoints written, {} already there",
                exporter.logdir().display(),
                s.written,
                s.present
            );
            false
        }
        Err(e) => {
            warned.warn(&e.cause(), &e);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_run_names_are_kept_and_others_never_collide() {
        assert_eq!(run_folder_name("runA"), "runA");
        assert_eq!(run_folder_name("bs=32 lr=1e-3 ü"), "bs=32 lr=1e-3 ü");
        let a = run_folder_name("exp/1");
        let b = run_folder_name("exp_1");
        assert!(
            a.starts_with("exp_1-") && a.len() == "exp_1-".len() + 16,
            "{a}"
        );
        assert_ne!(a, b);
        for bad in ["", ".", "..", "a\nb", "../x", "a\\b"] {
            let f = run_folder_name(bad);
            assert!(!f.is_empty() && f != "." && f != "..", "{bad:?} -> {f:?}");
            assert!(!f.contains(['/', '\\', '\n']), "{bad:?} -> {f:?}");
        }
        assert_ne!(run_folder_name(""), run_folder_name("."));
    }

    #[test]
    fn the_histogram_keeps_every_count_in_log10_units() {
        let evals: Vec<f64> = (1..=500)
            .map(|i| (i as f64 / 50.0).powi(3))
            .chain([0.0, 0.0])
            .collect();
        let esd = EsdHistogram::from_eigenvalues(&evals, 96);
        let h = esd_histogram(&esd).unwrap();
        assert_eq!(h.num, 500.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 500.0);
        assert_eq!(h.bucket_limit.len(), h.bucket.len());
        assert!(h.bucket_limit.windows(2).all(|w| w[1] > w[0]));
        assert!((h.min - (0.02f64.powi(3)).log10()).abs() < 1e-9);
        assert!((h.max - 1000f64.log10()).abs() < 1e-9);
        assert_eq!(*h.bucket_limit.last().unwrap(), esd.log10_hi);
        assert!(h.bucket[0] > 0.0 && *h.bucket.last().unwrap() > 0.0);
        // One distinct value: one bucket, min = max = its log10.
        let h = esd_histogram(&EsdHistogram::from_eigenvalues(&[4.0, 4.0], 96)).unwrap();
        assert_eq!((h.bucket.len(), h.num), (1, 2.0));
        assert!((h.min - 4f64.log10()).abs() < 1e-12 && (h.max - 4f64.log10()).abs() < 1e-12);
        // Only zeros: nothing to draw.
        assert!(esd_histogram(&EsdHistogram::from_eigenvalues(&[0.0, 0.0], 96)).is_none());
    }

    #[test]
    fn the_legend_names_every_phase_with_its_index() {
        let md = legend_markdown();
        for p in Phase::ALL {
            assert!(
                md.contains(&format!("| {} | `{}` |", p.index(), p.as_str())),
                "{md}"
            );
        }
    }
}
