//! `htsr-watch analyze PATH`: one checkpoint analyzed once and printed as a table, CSV or JSON.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use htsr_engine::analyze::{analyze_checkpoint, AnalyzeOptions};
use htsr_engine::spectrum::{EigenMethod, SquareMp};

use crate::output::{write_table, Format};
use htsr_contracts::text::{terminal_safe, terminal_safe_text};

/// How layers are analyzed, for `analyze` and the daemon alike (WeightWatcher 0.7.7's defaults, except where
/// docs/ALGORITHMS.md says why not).
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Skip layers with fewer eigenvalues (M x rf) than this.
    #[arg(long, default_value_t = 8)]
    min_evals: usize,
    /// Skip layers with more eigenvalues (M x rf) than this.
    #[arg(long, default_value_t = 15000)]
    max_evals: usize,
    /// Skip layers whose larger side N exceeds this.
    #[arg(long = "max-n", default_value_t = 50000)]
    max_n: usize,
    /// Eigenvalues from singular values of W instead of the Gram matrix (slower, exact for tiny eigenvalues).
    #[arg(long)]
    accurate: bool,
    /// The Marchenko-Pastur fit of square layers (Q = 1): `htsr` scales the quarter-circle law's support with
    /// sigma (better on planted spikes); `ww` reproduces WeightWatcher 0.7.7, whose support is fixed at [0, 2].
    #[arg(long, value_enum, default_value_t = SquareMpArg::Htsr)]
    square_mp: SquareMpArg,
    /// Worker threads for the linear algebra (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SquareMpArg {
    Htsr,
    Ww,
}

impl EngineArgs {
    pub fn options(&self) -> AnalyzeOptions {
        let mut opts = AnalyzeOptions {
            min_evals: self.min_evals,
            max_evals: self.max_evals,
            max_n: self.max_n,
            ..AnalyzeOptions::default()
        };
        if self.accurate {
            opts.spectrum.method = EigenMethod::Accurate;
        }
        opts.spectrum.square_mp = match self.square_mp {
            SquareMpArg::Htsr => SquareMp::Htsr,
            SquareMpArg::Ww => SquareMp::Ww,
        };
        opts
    }

    pub fn apply_threads(&self) {
        if let Some(n) = self.threads {
            htsr_engine::spectrum::set_threads(n);
        }
    }
}

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
    /// Colour the table's phases: when stdout is a terminal and NO_COLOR is unset (auto), always, or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    args.engine.apply_threads();
    let mut opts = args.engine.options();
    if let Some(re) = &args.layers {
        opts.layer_filter =
            Some(regex::Regex::new(re).map_err(|e| anyhow::anyhow!("--layers: {e}"))?);
    }
    if args.randomize {
        opts.spectrum.randomize_seed = Some(args.seed);
    }
    let analysis = match analyze_checkpoint(&args.path, &opts) {
        Ok(a) => a,
        Err(e) => {
            // The message may quote the file's own names: never raw to the terminal.
            eprintln!("htsr-watch analyze: {}", terminal_safe(&e.to_string()));
            return Ok(ExitCode::from(2));
        }
    };
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let colour = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    // CSV and JSON keep the file's bytes as they are in files and pipes; on a terminal, control characters in
    // names and metadata are shown escaped.
    let mut data = Vec::new();
    let out: &mut dyn Write = if terminal {
        &mut data
    } else {
        &mut stdout.lock()
    };
    write_analysis(out, &analysis, args.format, colour)?;
    if terminal {
        let mut out = stdout.lock();
        out.write_all(terminal_safe_text(&String::from_utf8_lossy(&data)).as_bytes())?;
        out.flush()?;
    }
    if analysis.layers.is_empty() {
        eprintln!(
            "htsr-watch analyze: {}: no tensors to analyze",
            terminal_safe(&args.path.display().to_string())
        );
        return Ok(ExitCode::from(1));
    }
    Ok(if analysis.any_failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The analysis in `format`: the table (names already made terminal-safe), CSV or JSON (the file's text as is).
fn write_analysis(
    mut out: &mut dyn Write,
    analysis: &htsr_engine::CheckpointAnalysis,
    format: Format,
    colour: bool,
) -> anyhow::Result<()> {
    match format {
        Format::Table => write_table(out, analysis, colour)?,
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
        Format::Csv => crate::output::write_csv(out, analysis)?,
    }
    out.flush()?;
    Ok(())
}
