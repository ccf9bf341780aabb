//! `htsr-watch`: watch a checkpoint directory (the daemon), or analyze one checkpoint.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use htsr_monitor::analyze::{analyze_checkpoint, AnalyzeOptions};
use htsr_monitor::output::{write_table, Format};
use htsr_monitor::spectrum::EigenMethod;

#[derive(Parser, Debug)]
#[command(
    name = "htsr-watch",
    version,
    about = "Watch neural-network layers learn: per-layer ESD, power-law alpha, MP bulk and training phase",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `htsr-watch DIR ...`: the daemon (the default command).
    #[command(flatten)]
    watch: htsr_monitor::cli::watch::WatchArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyze one safetensors file (or sharded checkpoint directory) once and print the result.
    Analyze(AnalyzeArgs),
    /// Browse a store's history in the dashboard (no daemon).
    Browse(htsr_monitor::cli::browse::BrowseArgs),
    /// Export every stored layer report as CSV or JSON lines.
    Export(htsr_monitor::cli::export::ExportArgs),
    /// Store maintenance: `db stats`.
    Db(htsr_monitor::cli::db::DbArgs),
}

#[derive(Args, Debug)]
struct AnalyzeArgs {
    /// A .safetensors file, or a directory holding model.safetensors.index.json and its shards.
    path: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Analyze only layers whose name matches this regular expression.
    #[arg(long)]
    layers: Option<String>,
    /// Also compare each layer with an element-shuffled copy (correlation traps).
    #[arg(long)]
    randomize: bool,
    /// Seed of the shuffle for --randomize.
    #[arg(long, default_value_t = 0, requires = "randomize")]
    seed: u64,
    /// Eigenvalues from singular values of W instead of the Gram matrix (slower, exact for tiny eigenvalues).
    #[arg(long)]
    accurate: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Which layers are too small or too large to analyze (WeightWatcher 0.7.7's defaults).
#[derive(Args, Debug, Clone)]
struct LimitArgs {
    #[arg(long, default_value_t = 8)]
    min_evals: usize,
    #[arg(long, default_value_t = 15000)]
    max_evals: usize,
    #[arg(long = "max-n", default_value_t = 50000)]
    max_n: usize,
    /// Worker threads for the linear algebra (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

impl LimitArgs {
    fn options(&self) -> AnalyzeOptions {
        AnalyzeOptions {
            min_evals: self.min_evals,
            max_evals: self.max_evals,
            max_n: self.max_n,
            ..AnalyzeOptions::default()
        }
    }

    fn apply_threads(&self) {
        if let Some(n) = self.threads {
            htsr_monitor::spectrum::set_threads(n);
        }
    }
}

fn run_analyze(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    args.limits.apply_threads();
    let mut opts = args.limits.options();
    if let Some(re) = &args.layers {
        opts.layer_filter =
            Some(regex::Regex::new(re).map_err(|e| anyhow::anyhow!("--layers: {e}"))?);
    }
    if args.accurate {
        opts.spectrum.method = EigenMethod::Accurate;
    }
    if args.randomize {
        opts.spectrum.randomize_seed = Some(args.seed);
    }
    let analysis = match analyze_checkpoint(&args.path, &opts) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("htsr-watch analyze: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let stdout = std::io::stdout();
    let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = stdout.lock();
    match args.format {
        Format::Table => write_table(&mut out, &analysis, colour)?,
        Format::Json => {
            let layers: Vec<_> = analysis.layers.iter().map(|l| &l.report).collect();
            let doc = serde_json::json!({
                "path": analysis.path,
                "metadata": analysis.metadata,
                "seconds": analysis.seconds,
                "layers": layers,
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        Format::Csv => htsr_monitor::output::write_csv(&mut out, &analysis)?,
    }
    out.flush()?;
    if analysis.layers.is_empty() {
        eprintln!(
            "htsr-watch analyze: {}: no tensors to analyze",
            args.path.display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(if analysis.any_failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Analyze(args)) => run_analyze(args),
        Some(Command::Browse(args)) => htsr_monitor::cli::browse::run(args),
        Some(Command::Export(args)) => htsr_monitor::cli::export::run(args),
        Some(Command::Db(args)) => htsr_monitor::cli::db::run(args),
        None => htsr_monitor::cli::watch::run(cli.watch),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("htsr-watch: {e:#}");
            ExitCode::from(2)
        }
    }
}
