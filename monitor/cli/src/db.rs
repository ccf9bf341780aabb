//! `htsr-watch db stats --db PATH`: how big each tree of the store is; `db pin` / `db unpin`: keep a
//! checkpoint's raw eigenvalues (normally only each run's latest checkpoint keeps them).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use htsr_storage::stats::human_bytes;

use crate::open_store::open_existing;

#[derive(Args, Debug)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Keys and bytes per tree, and the size on disk.
    Stats {
        /// The store (a watched directory's `.htsr/`).
        #[arg(long)]
        db: PathBuf,
    },
    /// Keep the raw eigenvalues of RUN at STEP when newer checkpoints arrive (only the latest keeps them).
    Pin {
        #[arg(long)]
        db: PathBuf,
        run: String,
        step: u64,
    },
    /// Let a pinned checkpoint's raw eigenvalues go (dropped unless it is the run's latest).
    Unpin {
        #[arg(long)]
        db: PathBuf,
        run: String,
        step: u64,
    },
}

pub fn run(args: DbArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DbCommand::Pin { db, run, step } => {
            let store = match open_existing(&db, "db pin") {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            if store.checkpoint(&run, step)?.is_none() {
                eprintln!(
                    "htsr-watch db pin: no checkpoint of run {run:?} at step {step} in {}",
                    db.display()
                );
                return Ok(ExitCode::from(1));
            }
            let held = store.pin(&run, step)?;
            println!(
                "pinned {run} step {step}: raw eigenvalues {}",
                if held {
                    "kept"
                } else {
                    "were already dropped; they will be kept if the checkpoint is analyzed again"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Unpin { db, run, step } => {
            let store = match open_existing(&db, "db unpin") {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            store.unpin(&run, step)?;
            println!("unpinned {run} step {step}");
            Ok(ExitCode::SUCCESS)
        }
        DbCommand::Stats { db } => {
            let store = match open_existing(&db, "db stats") {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            let stats = store.stats()?;
            println!(
                "store {} (schema version {})",
                stats.path, stats.schema_version
            );
            println!("{:<16} {:>10} {:>12}", "tree", "keys", "bytes");
            for t in &stats.trees {
                println!("{:<16} {:>10} {:>12}", t.name, t.keys, human_bytes(t.bytes));
            }
            println!(
                "{:<16} {:>10} {:>12}",
                "logical",
                "",
                human_bytes(stats.logical_bytes)
            );
            println!(
                "{:<16} {:>10} {:>12}",
                "on disk",
                "",
                human_bytes(stats.on_disk_bytes)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
