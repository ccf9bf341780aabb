//! `htsr-watch analyze PATH`: one checkpoint analyzed once and printed as a table, CSV or JSON.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use htsr_engine::analyze::{analyze_checkpoint, AnalyzeOptions};
use htsr_engine::spectrum::EigenMethod;

use crate::output::{write_table, Format};

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
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
            htsr_engine::spectrum::set_threads(n);
        }
    }
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
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
        Format::Csv => crate::output::write_csv(&mut out, &analysis)?,
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
