//! [`LocalHistory`]: the store opened by the viewer itself, when no daemon holds it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use htsr_api::{
    History, PhaseGrid, PinOutcome, Result, RowFormat, RunSummary, StoreStats, TrajectoryPoint,
};
use htsr_contracts::{CheckpointRecord, LayerReport};
use htsr_storage::Store;

struct Slot {
    store: Option<Store>,
    last_used: Instant,
}

/// A store opened read-only (never created, never moved aside). With [`release_when_idle`](Self::release_when_idle)
/// it lets the store go after a quiet spell and opens it again on the next question, so that a viewer left open
/// never keeps a daemon from starting on the same store (sled allows one process per store).
pub struct LocalHistory {
    path: PathBuf,
    slot: Arc<Mutex<Slot>>,
}

impl LocalHistory {
    /// Opens the store at `path`; a missing, held or damaged store is an error that says which.
    pub fn open(path: &Path) -> Result<LocalHistory> {
        let store = Store::open_existing(path)?;
        Ok(LocalHistory {
            path: path.to_path_buf(),
            slot: Arc::new(Mutex::new(Slot {
                store: Some(store),
                last_used: Instant::now(),
            })),
        })
    }

    /// Closes the store whenever it has not been asked anything for `idle` (checked by a thread of its own, which
    /// ends with this history).
    pub fn release_when_idle(self, idle: Duration) -> Self {
        let weak: Weak<Mutex<Slot>> = Arc::downgrade(&self.slot);
        let _ = std::thread::Builder::new()
            .name("htsr-store-release".into())
            .spawn(move || loop {
                std::thread::sleep(idle / 4);
                let Some(slot) = weak.upgrade() else { return };
                let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
                if slot.store.is_some() && slot.last_used.elapsed() >= idle {
                    slot.store = None;
                }
            });
        self
    }

    /// Whether the store is open now (false after an idle release).
    pub fn is_open(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .store
            .is_some()
    }

    fn with<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.store.is_none() {
            slot.store = Some(Store::open_existing(&self.path)?);
        }
        let result = f(slot.store.as_ref().expect("opened above"));
        slot.last_used = Instant::now();
        result
    }
}

impl History for LocalHistory {
    fn source(&self) -> String {
        self.path.display().to_string()
    }
    fn runs(&self) -> Result<Vec<RunSummary>> {
        self.with(History::runs)
    }
    fn run_summary(&self, run: &str) -> Result<Option<RunSummary>> {
        self.with(|s| History::run_summary(s, run))
    }
    fn checkpoints(&self, run: &str) -> Result<Vec<CheckpointRecord>> {
        self.with(|s| History::checkpoints(s, run))
    }
    fn checkpoint(&self, run: &str, step: u64) -> Result<Option<CheckpointRecord>> {
        self.with(|s| History::checkpoint(s, run, step))
    }
    fn steps(&self, run: &str) -> Result<Vec<u64>> {
        self.with(|s| History::steps(s, run))
    }
    fn layer_names(&self, run: &str) -> Result<Vec<String>> {
        self.with(|s| History::layer_names(s, run))
    }
    fn trajectory(&self, run: &str, layer: &str) -> Result<Vec<TrajectoryPoint>> {
        self.with(|s| History::trajectory(s, run, layer))
    }
    fn phase_grid(
        &self,
        run: &str,
        max_columns: Option<usize>,
        until: Option<u64>,
    ) -> Result<PhaseGrid> {
        self.with(|s| History::phase_grid(s, run, max_columns, until))
    }
    fn layer_report(&self, run: &str, step: u64, layer: &str) -> Result<Option<LayerReport>> {
        self.with(|s| History::layer_report(s, run, step, layer))
    }
    fn layers_at(&self, run: &str, step: u64) -> Result<Vec<LayerReport>> {
        self.with(|s| History::layers_at(s, run, step))
    }
    fn raw_eigenvalues(&self, run: &str, step: u64, layer: &str) -> Result<Option<Vec<f64>>> {
        self.with(|s| History::raw_eigenvalues(s, run, step, layer))
    }
    fn stats(&self) -> Result<StoreStats> {
        self.with(History::stats)
    }
    fn export(&self, run: Option<&str>, format: RowFormat, out: &mut dyn Write) -> Result<u64> {
        self.with(|s| History::export(s, run, format, out))
    }
    fn pin(&self, run: &str, step: u64) -> Result<PinOutcome> {
        self.with(|s| History::pin(s, run, step))
    }
    fn unpin(&self, run: &str, step: u64) -> Result<()> {
        self.with(|s| History::unpin(s, run, step))
    }
}
