//! `htsr-watch export --db PATH [--run R] --format csv|jsonl [-o FILE]`: every stored layer report as rows, with
//! WeightWatcher's column names; `--format tensorboard -o LOGDIR`: TensorBoard event files, one folder per run.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::open_store::{open_existing, EXIT_USAGE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
    /// TensorBoard event files under `-o LOGDIR` (what is there already is not written again).
    Tensorboard,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The store (a watched directory's `.htsr/`).
    #[arg(long)]
    pub db: PathBuf,
    /// Only this run (default: every run).
    #[arg(long)]
    pub run: Option<String>,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write here instead of stdout (`--format tensorboard`: the LOGDIR, required).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = match open_existing(&args.db, "export") {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    if let Some(run) = &args.run {
        if store.run_summary(run)?.is_none() {
            eprintln!("htsr-watch export: no run {run:?} in {}", args.db.display());
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    }
    if args.format == ExportFormat::Tensorboard {
        let Some(logdir) = &args.output else {
            eprintln!(
                "htsr-watch export: --format tensorboard writes a folder of event files: name it with -o LOGDIR"
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        };
        return crate::exporters::export_tensorboard(&store, args.run.as_deref(), logdir);
    }
    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let run = args.run.as_deref();
    let rows = match args.format {
        ExportFormat::Csv => htsr_storage::export::write_csv(&store, run, out)?,
        ExportFormat::Jsonl => htsr_storage::export::write_jsonl(&store, run, out)?,
        ExportFormat::Tensorboard => unreachable!("written above"),
    };
    if let Some(p) = &args.output {
        eprintln!("htsr-watch export: {rows} rows written to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
