//! The [`History`] trait: every question a viewer asks of the stored history.

use std::io::Write;

use serde::{Deserialize, Serialize};

use htsr_contracts::{CheckpointRecord, LayerReport};

use crate::error::Result;
use crate::query::{PhaseGrid, RunSummary, StoreStats, TrajectoryPoint};

/// The row formats of `htsr-watch export`: one row per (run, step, layer) with WeightWatcher's column names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowFormat {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl RowFormat {
    /// The name used on the command line and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RowFormat::Csv => "csv",
            RowFormat::Jsonl => "jsonl",
        }
    }
}

/// What `pin` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinOutcome {
    /// The checkpoint's raw eigenvalues are held and will be kept.
    Kept,
    /// The checkpoint is pinned, but its raw eigenvalues were dropped before; they are kept if it is analyzed again.
    AlreadyDropped,
    /// There is no such checkpoint; nothing was pinned.
    NoSuchCheckpoint,
}

/// The stored history of every run, as the dashboard, the report, the exports and Python read it. Implemented by
/// the store itself (in the process that holds it) and by the client of a running daemon, so a viewer never knows
/// which one it talks to.
///
/// Every method reads, except [`pin`](History::pin) and [`unpin`](History::unpin), which only choose which raw
/// eigenvalues the store keeps.
pub trait History: Send + Sync {
    /// Where the answers come from, for titles and messages: a store's path, or the daemon serving it.
    fn source(&self) -> String;

    /// Every run with its summary, ordered by run name.
    fn runs(&self) -> Result<Vec<RunSummary>>;

    /// One run's summary; None if it has no checkpoints.
    fn run_summary(&self, run: &str) -> Result<Option<RunSummary>>;

    /// The checkpoints of a run, ascending by step.
    fn checkpoints(&self, run: &str) -> Result<Vec<CheckpointRecord>>;

    /// One checkpoint's record.
    fn checkpoint(&self, run: &str, step: u64) -> Result<Option<CheckpointRecord>>;

    /// Steps of a run, ascending.
    fn steps(&self, run: &str) -> Result<Vec<u64>>;

    /// Layer names of a run in the order they were first seen.
    fn layer_names(&self, run: &str) -> Result<Vec<String>>;

    /// One layer's history in step order.
    fn trajectory(&self, run: &str, layer: &str) -> Result<Vec<TrajectoryPoint>>;

    /// The layers x checkpoints phase grid of the checkpoints up to step `until` (all when None), with at most
    /// `max_columns` evenly spaced checkpoints, always including the newest.
    fn phase_grid(
        &self,
        run: &str,
        max_columns: Option<usize>,
        until: Option<u64>,
    ) -> Result<PhaseGrid>;

    /// The full report of one layer at one checkpoint, with its ESD.
    fn layer_report(&self, run: &str, step: u64, layer: &str) -> Result<Option<LayerReport>>;

    /// All reports of one checkpoint, in first-seen layer order.
    fn layers_at(&self, run: &str, step: u64) -> Result<Vec<LayerReport>>;

    /// Raw eigenvalues, held only for each run's latest checkpoint and for pinned ones.
    fn raw_eigenvalues(&self, run: &str, step: u64, layer: &str) -> Result<Option<Vec<f64>>>;

    /// Sizes per tree and on disk.
    fn stats(&self) -> Result<StoreStats>;

    /// Writes every (checkpoint, layer) row of `run` (or of every run) to `out`, as the checkpoints stood when the
    /// export began; returns the rows written.
    fn export(&self, run: Option<&str>, format: RowFormat, out: &mut dyn Write) -> Result<u64>;

    /// Keeps the raw eigenvalues of (run, step) when newer checkpoints arrive.
    fn pin(&self, run: &str, step: u64) -> Result<PinOutcome>;

    /// Lets a pinned checkpoint's raw eigenvalues go (dropped unless it is the run's latest).
    fn unpin(&self, run: &str, step: u64) -> Result<()>;
}

/// Counts the records of a CSV text fed in pieces: newlines outside quoted fields, less the header. How a client
/// counts the rows of an export it receives as bytes (CSV quotes a field holding a newline and escapes a quote by
/// doubling it, so toggling on every quote tracks whether a newline is inside a field).
#[derive(Debug, Default, Clone, Copy)]
pub struct CsvRecords {
    quoted: bool,
    lines: u64,
}

impl CsvRecords {
    /// Takes the next piece of the text.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'"' => self.quoted = !self.quoted,
                b'\n' if !self.quoted => self.lines += 1,
                _ => {}
            }
        }
    }

    /// Records seen so far, the header not counted.
    pub fn records(&self) -> u64 {
        self.lines.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::CsvRecords;

    fn count(pieces: &[&[u8]]) -> u64 {
        let mut c = CsvRecords::default();
        pieces.iter().for_each(|p| c.feed(p));
        c.records()
    }

    #[test]
    fn csv_records_ignore_newlines_inside_quotes_across_pieces() {
        assert_eq!(count(&[b"a,b\n1,2\n3,4\n"]), 2);
        assert_eq!(count(&[b"a,b\n\"x\ny\",2\n\"q\"\"\n\",4\n"]), 2);
        assert_eq!(count(&[b"a,b\n\"x", b"\ny\",2\n\"q\"", b"\"\n\",4\n"]), 2);
        assert_eq!(count(&[b"a,b\n"]), 0);
        assert_eq!(count(&[b""]), 0);
    }
}
