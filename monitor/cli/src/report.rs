//! `htsr-watch report [DIR | URL | --db STORE|URL] [--run R]... [--steps S1,S2,...] [--layers REGEX]
//! [--format html|svg|png] -o PATH`: a report to share, as one self-contained HTML file or as chart files
//! (htsr-report draws both). Through the daemon when one holds the store: the report is the store as it stood
//! when the report began.

use std::path::{Path, PathBuf};

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use htsr_report::{Report, ReportOptions};

use crate::open_store::{describe, open_history, HistorySource, EXIT_USAGE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// One HTML file: inline SVG and CSS, no script, nothing fetched.
    Html,
    /// One SVG file per chart, into the directory given with -o.
    Svg,
    /// One PNG file per chart, into the directory given with -o.
    Png,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub source: HistorySource,
    /// Only this run (repeat for several; default: every run). Two or more runs are also compared.
    #[arg(long = "run", value_name = "RUN")]
    pub runs: Vec<String>,
    /// Checkpoints whose ESDs are drawn (default: each run's first and last).
    #[arg(long, value_delimiter = ',', value_name = "S1,S2,...")]
    pub steps: Vec<u64>,
    /// Only layers whose name matches this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub layers: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// The HTML file to write, or the directory for svg/png (created if missing).
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: PathBuf,
    /// PNG pixels per SVG pixel (2 suits print).
    #[arg(long, default_value_t = 2.0)]
    pub scale: f32,
    /// Most checkpoint columns of a phase map (evenly spaced, newest kept).
    #[arg(long, default_value_t = htsr_report::DEFAULT_MAX_COLUMNS)]
    pub max_columns: usize,
    /// The page title.
    #[arg(long)]
    pub title: Option<String>,
}

/// Writes `bytes` under a temporary name beside `path`, then renames it: a reader never sees half a report.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{}: not a file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, bytes).map_err(|e| anyhow::anyhow!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let target = match args.source.target("report") {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    let layers = match &args.layers {
        Some(re) => match regex::Regex::new(re) {
            Ok(re) => Some(re),
            Err(e) => {
                eprintln!("htsr-watch report: --layers: {e}");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
        },
        None => None,
    };
    if !(args.scale.is_finite() && args.scale > 0.0 && args.scale <= 16.0) {
        eprintln!("htsr-watch report: --scale must be in (0, 16]");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let opened = match open_history(&target, args.source.token.token.clone(), "report", None) {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let options = ReportOptions {
        runs: args.runs.clone(),
        steps: args.steps.clone(),
        layers,
        max_columns: Some(args.max_columns),
        title: args.title.clone(),
        source: Some(describe(&target)),
    };
    let report = match Report::from_history(&*opened.history, &options) {
        Ok(r) => r,
        Err(htsr_report::Error::Usage(msg)) => {
            eprintln!(
                "htsr-watch report: {}",
                htsr_contracts::text::terminal_safe(&msg)
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(e) => return Err(e.into()),
    };
    if report.runs.iter().all(|r| r.phase_grid.layers.is_empty()) {
        eprintln!(
            "htsr-watch report: no analyzed layer{} in {}",
            if args.layers.is_some() {
                " matches --layers"
            } else {
                ""
            },
            describe(&target)
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    match args.format {
        ReportFormat::Html => {
            let html = report.to_html()?;
            write_atomic(&args.output, html.as_bytes())?;
            eprintln!(
                "htsr-watch report: HTML report ({} KB, {} run{}) written to {}",
                html.len() / 1024,
                report.runs.len(),
                if report.runs.len() == 1 { "" } else { "s" },
                args.output.display()
            );
        }
        ReportFormat::Svg | ReportFormat::Png => {
            std::fs::create_dir_all(&args.output)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.output.display()))?;
            let figures = report.figures()?;
            for f in &figures {
                let (file, bytes) = match args.format {
                    ReportFormat::Png => (
                        format!("{}.png", f.name),
                        htsr_report::svg_to_png(&f.svg, args.scale)?,
                    ),
                    _ => (format!("{}.svg", f.name), f.svg.clone().into_bytes()),
                };
                write_atomic(&args.output.join(&file), &bytes)?;
                println!(
                    "{}",
                    htsr_contracts::text::terminal_safe(
                        &args.output.join(&file).display().to_string()
                    )
                );
            }
            eprintln!(
                "htsr-watch report: {} charts written to {}",
                figures.len(),
                args.output.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
