//! [`Cut`]: a history as it stood at one moment. A report asks dozens of questions; while a daemon keeps storing
//! checkpoints, each answer could come from a different moment (a phase map one checkpoint longer than the
//! trajectories beside it). A cut records each run's newest step once, then answers every question as if nothing
//! later had been stored, so the report equals the one the same store gives after the daemon stops.

use std::collections::BTreeMap;
use std::io::Write;

use htsr_contracts::{CheckpointRecord, LayerReport};

use crate::error::Result;
use crate::history::{History, PinOutcome, RowFormat};
use crate::query::{PhaseGrid, RunSummary, StoreStats, TrajectoryPoint};

/// A read-only view of `inner` that holds each run at the checkpoint that was its newest when the cut was made.
/// Runs that appear later are not shown. Writes (`pin`, `unpin`) are refused.
pub struct Cut<'a> {
    inner: &'a dyn History,
    runs: Vec<RunSummary>,
    last: BTreeMap<String, u64>,
}

impl<'a> Cut<'a> {
    /// Cuts `inner` now.
    pub fn new(inner: &'a dyn History) -> Result<Self> {
        let runs = inner.runs()?;
        let last = runs.iter().map(|r| (r.run.clone(), r.last_step)).collect();
        Ok(Cut { inner, runs, last })
    }

    fn until(&self, run: &str) -> Option<u64> {
        self.last.get(run).copied()
    }

    /// Whether `step` of `run` existed when the cut was made (or could have: steps stored later under a smaller
    /// number are let through, they are indistinguishable without a clock).
    fn holds(&self, run: &str, step: u64) -> bool {
        self.until(run).is_some_and(|last| step <= last)
    }
}

impl History for Cut<'_> {
    fn source(&self) -> String {
        self.inner.source()
    }

    fn runs(&self) -> Result<Vec<RunSummary>> {
        Ok(self.runs.clone())
    }

    fn run_summary(&self, run: &str) -> Result<Option<RunSummary>> {
        Ok(self.runs.iter().find(|r| r.run == run).cloned())
    }

    fn checkpoints(&self, run: &str) -> Result<Vec<CheckpointRecord>> {
        let mut v = self.inner.checkpoints(run)?;
        v.retain(|c| self.holds(run, c.step));
        Ok(v)
    }

    fn checkpoint(&self, run: &str, step: u64) -> Result<Option<CheckpointRecord>> {
        if !self.holds(run, step) {
            return Ok(None);
        }
        self.inner.checkpoint(run, step)
    }

    fn steps(&self, run: &str) -> Result<Vec<u64>> {
        let mut v = self.inner.steps(run)?;
        v.retain(|&s| self.holds(run, s));
        Ok(v)
    }

    fn layer_names(&self, run: &str) -> Result<Vec<String>> {
        if self.until(run).is_none() {
            return Ok(Vec::new());
        }
        self.inner.layer_names(run)
    }

    fn trajectory(&self, run: &str, layer: &str) -> Result<Vec<TrajectoryPoint>> {
        let mut v = self.inner.trajectory(run, layer)?;
        v.retain(|p| self.holds(run, p.step));
        Ok(v)
    }

    fn phase_grid(
        &self,
        run: &str,
        max_columns: Option<usize>,
        until: Option<u64>,
    ) -> Result<PhaseGrid> {
        let Some(last) = self.until(run) else {
            return Ok(PhaseGrid::default());
        };
        let until = until.map_or(last, |u| u.min(last));
        self.inner.phase_grid(run, max_columns, Some(until))
    }

    fn layer_report(&self, run: &str, step: u64, layer: &str) -> Result<Option<LayerReport>> {
        if !self.holds(run, step) {
            return Ok(None);
        }
        self.inner.layer_report(run, step, layer)
    }

    fn layers_at(&self, run: &str, step: u64) -> Result<Vec<LayerReport>> {
        if !self.holds(run, step) {
            return Ok(Vec::new());
        }
        self.inner.layers_at(run, step)
    }

    fn raw_eigenvalues(&self, run: &str, step: u64, layer: &str) -> Result<Option<Vec<f64>>> {
        if !self.holds(run, step) {
            return Ok(None);
        }
        self.inner.raw_eigenvalues(run, step, layer)
    }

    fn stats(&self) -> Result<StoreStats> {
        self.inner.stats()
    }

    fn export(&self, run: Option<&str>, format: RowFormat, out: &mut dyn Write) -> Result<u64> {
        self.inner.export(run, format, out)
    }

    fn pin(&self, _run: &str, _step: u64) -> Result<PinOutcome> {
        Err(crate::Error::invalid("a cut of the history is read-only"))
    }

    fn unpin(&self, _run: &str, _step: u64) -> Result<()> {
        Err(crate::Error::invalid("a cut of the history is read-only"))
    }
}
