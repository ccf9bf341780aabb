//! `htsr-watch browse [--db PATH | DIR]`: the dashboard over a store's history, with no daemon.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use htsr_tui::{DashboardOptions, Mode};

use crate::open_store::{default_store, open_existing, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct BrowseArgs {
    /// The store to browse.
    #[arg(long, conflicts_with = "dir")]
    pub db: Option<PathBuf>,
    /// A watched directory: browse its `.htsr/` store (default: the current directory).
    pub dir: Option<PathBuf>,
}

pub fn run(args: BrowseArgs) -> anyhow::Result<ExitCode> {
    let path = args
        .db
        .clone()
        .unwrap_or_else(|| default_store(&args.dir.clone().unwrap_or_else(|| PathBuf::from("."))));
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "htsr-watch browse: the dashboard needs a terminal; use `htsr-watch export` for files"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let store = match open_existing(&path, "browse") {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let opts = DashboardOptions {
        title: path.display().to_string(),
        initial_run: None,
        mode: Mode::Browse,
    };
    htsr_tui::run_dashboard(store, None, opts)?;
    Ok(ExitCode::SUCCESS)
}
