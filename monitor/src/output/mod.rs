//! How `htsr-watch analyze` prints: a table for people, CSV with WeightWatcher's column names, JSON for programs.

mod table;

pub use table::{phase_colour, write_table};

/// Output formats of `htsr-watch analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// CSV of one analysis (placeholder until wired to htsr-storage's export rows).
pub fn write_csv(
    _out: &mut dyn std::io::Write,
    _analysis: &crate::analyze::CheckpointAnalysis,
) -> std::io::Result<()> {
    Err(std::io::Error::other("csv output: TODO"))
}
