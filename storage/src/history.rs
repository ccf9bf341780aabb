//! The store answers [`History`] itself: the process that holds it (the daemon, or a reading command when no
//! daemon runs) hands `&Store` to every viewer as a `&dyn History`.

use std::io::Write;

use htsr_api::{
    History, PhaseGrid, PinOutcome, RowFormat, RunSummary, StoreStats, TrajectoryPoint,
};
use htsr_contracts::{CheckpointRecord, LayerReport};

use crate::error::{Error, ErrorKind};
use crate::store::Store;

impl From<Error> for htsr_api::Error {
    fn from(e: Error) -> Self {
        let kind = match e.kind() {
            ErrorKind::Locked => htsr_api::ErrorKind::Locked,
            ErrorKind::NotFound => htsr_api::ErrorKind::NotFound,
            ErrorKind::Corrupt => htsr_api::ErrorKind::Corrupt,
            ErrorKind::Unsupported => htsr_api::ErrorKind::Unsupported,
            ErrorKind::Input => htsr_api::ErrorKind::Invalid,
            ErrorKind::Closed => htsr_api::ErrorKind::Unavailable,
            ErrorKind::OutOfSpace
            | ErrorKind::PermissionDenied
            | ErrorKind::TooManyOpenFiles
            | ErrorKind::Io => htsr_api::ErrorKind::Io,
        };
        htsr_api::Error::new(kind, e.to_string())
    }
}

type Result<T> = htsr_api::Result<T>;

impl History for Store {
    fn source(&self) -> String {
        self.path().display().to_string()
    }

    fn runs(&self) -> Result<Vec<RunSummary>> {
        Ok(Store::runs(self)?)
    }

    fn run_summary(&self, run: &str) -> Result<Option<RunSummary>> {
        Ok(Store::run_summary(self, run)?)
    }

    fn checkpoints(&self, run: &str) -> Result<Vec<CheckpointRecord>> {
        Ok(Store::checkpoints(self, run)?)
    }

    fn checkpoint(&self, run: &str, step: u64) -> Result<Option<CheckpointRecord>> {
        Ok(Store::checkpoint(self, run, step)?)
    }

    fn steps(&self, run: &str) -> Result<Vec<u64>> {
        Ok(Store::steps(self, run)?)
    }

    fn layer_names(&self, run: &str) -> Result<Vec<String>> {
        Ok(Store::layer_names(self, run)?)
    }

    fn trajectory(&self, run: &str, layer: &str) -> Result<Vec<TrajectoryPoint>> {
        Ok(Store::trajectory(self, run, layer)?)
    }

    fn phase_grid(
        &self,
        run: &str,
        max_columns: Option<usize>,
        until: Option<u64>,
    ) -> Result<PhaseGrid> {
        Ok(Store::phase_grid(self, run, max_columns, until)?)
    }

    fn layer_report(&self, run: &str, step: u64, layer: &str) -> Result<Option<LayerReport>> {
        Ok(Store::layer_report(self, run, step, layer)?)
    }

    fn layers_at(&self, run: &str, step: u64) -> Result<Vec<LayerReport>> {
        Ok(Store::layers_at(self, run, step)?)
    }

    fn raw_eigenvalues(&self, run: &str, step: u64, layer: &str) -> Result<Option<Vec<f64>>> {
        Ok(Store::raw_eigenvalues(self, run, step, layer)?)
    }

    fn stats(&self) -> Result<StoreStats> {
        Ok(Store::stats(self)?)
    }

    fn export(&self, run: Option<&str>, format: RowFormat, out: &mut dyn Write) -> Result<u64> {
        Ok(match format {
            RowFormat::Csv => crate::export::write_csv(self, run, out)?,
            RowFormat::Jsonl => crate::export::write_jsonl(self, run, out)?,
        })
    }

    fn pin(&self, run: &str, step: u64) -> Result<PinOutcome> {
        if Store::checkpoint(self, run, step)?.is_none() {
            return Ok(PinOutcome::NoSuchCheckpoint);
        }
        Ok(if Store::pin(self, run, step)? {
            PinOutcome::Kept
        } else {
            PinOutcome::AlreadyDropped
        })
    }

    fn unpin(&self, run: &str, step: u64) -> Result<()> {
        Ok(Store::unpin(self, run, step)?)
    }
}
