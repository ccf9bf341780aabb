//! `htsr-watch export [DIR | URL | --db STORE|URL] [--run R] --format csv|jsonl [-o FILE]`: every stored layer
//! report as rows, with WeightWatcher's column names and the checkpoint's training numbers; `--format tensorboard
//! -o LOGDIR`: TensorBoard event files, one folder per run. Through the daemon when one holds the store: the rows
//! are the store as it stood when the export began.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use htsr_api::RowFormat;

use crate::open_store::{describe, open_history, HistorySource, EXIT_USAGE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
    /// TensorBoard event files under `-o LOGDIR` (what is there already is not written again).
    Tensorboard,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: HistorySource,
    /// Only this run (default: every run).
    #[arg(long)]
    pub run: Option<String>,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write here instead of stdout (`--format tensorboard`: the LOGDIR, required).
    #[arg(short = 'o', long = "output")]
    pub output: Option<std::path::PathBuf>,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let target = match args.source.target("export") {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    if args.format == ExportFormat::Tensorboard && args.output.is_none() {
        eprintln!(
            "htsr-watch export: --format tensorboard writes a folder of event files: name it with -o LOGDIR"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let opened = match open_history(&target, args.source.token.token.clone(), "export", None) {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let history = opened.history;
    if let Some(run) = &args.run {
        if history.run_summary(run)?.is_none() {
            eprintln!(
                "htsr-watch export: no run {} in {}",
                htsr_contracts::text::terminal_safe(&format!("{run:?}")),
                describe(&target)
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    }
    let format = match args.format {
        ExportFormat::Csv => RowFormat::Csv,
        ExportFormat::Jsonl => RowFormat::Jsonl,
        ExportFormat::Tensorboard => {
            let logdir = args.output.as_ref().expect("checked above");
            return crate::exporters::export_tensorboard(history, args.run.as_deref(), logdir);
        }
    };
    let rows = match &args.output {
        Some(p) => {
            let file =
                std::fs::File::create(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let rows = history.export(args.run.as_deref(), format, &mut out)?;
            out.flush()?;
            eprintln!("htsr-watch export: {rows} rows written to {}", p.display());
            rows
        }
        None if std::io::stdout().is_terminal() => {
            // Names and metadata come from the checkpoints, which may be anyone's: on a terminal they are shown
            // with control characters made visible. Files and pipes get the bytes as stored.
            let mut text = Vec::new();
            let rows = history.export(args.run.as_deref(), format, &mut text)?;
            let mut out = std::io::stdout().lock();
            out.write_all(
                htsr_contracts::text::terminal_safe_text(&String::from_utf8_lossy(&text))
                    .as_bytes(),
            )?;
            out.flush()?;
            rows
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let rows = history.export(args.run.as_deref(), format, &mut out)?;
            out.flush()?;
            rows
        }
    };
    let _ = rows;
    Ok(ExitCode::SUCCESS)
}
