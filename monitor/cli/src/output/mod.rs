//! How `htsr-watch analyze` prints: a table for people, CSV with WeightWatcher's column names, JSON for programs.

mod table;

pub use table::write_table;

/// Output formats of `htsr-watch analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// CSV of one analysis with WeightWatcher's column names (htsr-storage's export rows), so that pandas code
/// written for `watcher.analyze()` reads it unchanged. Run and step come from the file's `htsr.*` metadata.
pub fn write_csv(
    out: &mut dyn std::io::Write,
    analysis: &htsr_engine::CheckpointAnalysis,
) -> std::io::Result<()> {
    let run = analysis
        .metadata
        .get(htsr_contracts::naming::keys::RUN)
        .cloned()
        .unwrap_or_default();
    let step = analysis
        .metadata
        .get(htsr_contracts::naming::keys::STEP)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut writer = csv::Writer::from_writer(out);
    for layer in &analysis.layers {
        writer
            .serialize(htsr_contracts::row::ExportRow::new(
                &run,
                step,
                &layer.report,
            ))
            .map_err(std::io::Error::other)?;
    }
    writer.flush()
}
