//! `htsr-watch db stats [DIR | URL | --db STORE|URL]`: how big each tree of the store is; `db pin` / `db unpin`:
//! keep a checkpoint's raw eigenvalues (normally only each run's latest checkpoint keeps them). Through the daemon
//! when one holds the store.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use htsr_api::PinOutcome;
use htsr_contracts::text::terminal_safe;

use crate::open_store::TokenArg;
use crate::open_store::{describe, open_history, target_of, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

/// Which store: `--db STORE|URL`, else the current directory's `.htsr/`.
#[derive(Args, Debug)]
pub struct DbTarget {
    /// The store (a watched directory's `.htsr/`), or a daemon's http://HOST:PORT.
    #[arg(long, value_name = "STORE|URL")]
    pub db: Option<String>,
    #[command(flatten)]
    pub token: TokenArg,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Keys and bytes per tree, and the size on disk.
    Stats {
        #[command(flatten)]
        target: DbTarget,
        /// A watched directory (its `.htsr/` store), or a daemon's http://HOST:PORT.
        #[arg(value_name = "DIR|URL", conflicts_with = "db")]
        dir: Option<String>,
    },
    /// Keep the raw eigenvalues of RUN at STEP when newer checkpoints arrive (only the latest keeps them).
    Pin {
        #[command(flatten)]
        target: DbTarget,
        run: String,
        step: u64,
    },
    /// Let a pinned checkpoint's raw eigenvalues go (dropped unless it is the run's latest).
    Unpin {
        #[command(flatten)]
        target: DbTarget,
        run: String,
        step: u64,
    },
}

pub fn run(args: DbArgs) -> anyhow::Result<ExitCode> {
    let (target, dir, command) = match &args.command {
        DbCommand::Stats { target, dir } => (target, dir.as_deref(), "db stats"),
        DbCommand::Pin { target, .. } => (target, None, "db pin"),
        DbCommand::Unpin { target, .. } => (target, None, "db unpin"),
    };
    let where_ = match target_of(target.db.as_deref(), dir) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("htsr-watch {command}: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let history = match open_history(&where_, target.token.token.clone(), command, None) {
        Ok(o) => o.history,
        Err(code) => return Ok(code),
    };
    match args.command {
        DbCommand::Pin { run, step, .. } => {
            let shown = terminal_safe(&run);
            match history.pin(&run, step)? {
                PinOutcome::NoSuchCheckpoint => {
                    eprintln!(
                        "htsr-watch db pin: no checkpoint of run \"{shown}\" at step {step} in {}",
                        describe(&where_)
                    );
                    Ok(ExitCode::from(1))
                }
                PinOutcome::Kept => {
                    println!("pinned {shown} step {step}: raw eigenvalues kept");
                    Ok(ExitCode::SUCCESS)
                }
                PinOutcome::AlreadyDropped => {
                    println!(
                        "pinned {shown} step {step}: raw eigenvalues were already dropped; they will be kept if the \
                         checkpoint is analyzed again"
                    );
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        DbCommand::Unpin { run, step, .. } => {
            history.unpin(&run, step)?;
            println!("unpinned {} step {step}", terminal_safe(&run));
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Stats { .. } => {
            println!("{}", history.stats()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
