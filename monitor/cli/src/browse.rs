//! `htsr-watch browse [DIR | URL | --db STORE|URL]`: the dashboard over a store's history. Attached to the daemon
//! that holds the store when one runs (live, and quitting leaves the daemon running), else on the store itself,
//! attaching by itself when a daemon starts.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Args;
use htsr_client::Target;
use htsr_tui::{DashboardOptions, Mode};

use crate::open_store::{
    describe, open_history, HistorySource, DASHBOARD_IDLE_RELEASE, EXIT_USAGE,
};

#[derive(Args, Debug)]
pub struct BrowseArgs {
    #[command(flatten)]
    pub source: HistorySource,
    /// The run to show first (default: the run that received a checkpoint last).
    #[arg(long)]
    pub run: Option<String>,
}

pub fn run(args: BrowseArgs) -> anyhow::Result<ExitCode> {
    let target = match args.source.target("browse") {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "htsr-watch browse: the dashboard needs a terminal; use `htsr-watch export` for files"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let opened = match open_history(
        &target,
        args.source.token.token.clone(),
        "browse",
        Some(DASHBOARD_IDLE_RELEASE),
    ) {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    // Live events from the daemon when one answers now or starts later; a daemon named by URL is followed the same
    // way (reconnecting when it restarts).
    let events = htsr_client::follow(opened.endpoint.clone(), opened.token.clone());
    let title = match (&target, &opened.attached) {
        (_, Some(info)) => info.watching.clone().unwrap_or_else(|| info.store.clone()),
        (Target::Store(p), None) => p.display().to_string(),
        (t, None) => describe(t),
    };
    let opts = DashboardOptions {
        title,
        initial_run: args.run.clone(),
        mode: if opened.attached.is_some() {
            Mode::Attached
        } else {
            Mode::Browse
        },
    };
    htsr_tui::run_dashboard(&*opened.history, Some(events), opts)?;
    Ok(ExitCode::SUCCESS)
}
