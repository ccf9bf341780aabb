//! `htsr-watch`: watch a checkpoint directory (the daemon), or analyze one checkpoint.

mod analyze;
mod browse;
mod db;
mod export;
mod exporters;
mod logging;
mod open_store;
mod output;
mod report;
mod serve;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    watch: watch::WatchArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyze one safetensors file (or sharded checkpoint directory) once and print the result.
    Analyze(analyze::AnalyzeArgs),
    /// Browse a store's history in the dashboard: attached to its running daemon (live), or on the store itself.
    Browse(browse::BrowseArgs),
    /// Export every stored layer report as CSV or JSON lines.
    Export(export::ExportArgs),
    /// Store maintenance: `db stats`, `db pin`, `db unpin`.
    Db(db::DbArgs),
    /// Write a report to share: one self-contained HTML file, or the charts as SVG or PNG files.
    Report(report::ReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Analyze(args)) => analyze::run(args),
        Some(Command::Browse(args)) => browse::run(args),
        Some(Command::Export(args)) => export::run(args),
        Some(Command::Db(args)) => db::run(args),
        Some(Command::Report(args)) => report::run(args),
        None => watch::run(cli.watch),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Errors can quote names and metadata from checkpoints: never raw to the terminal.
            eprintln!(
                "htsr-watch: {}",
                htsr_contracts::text::terminal_safe(&format!("{e:#}"))
            );
            ExitCode::from(2)
        }
    }
}
