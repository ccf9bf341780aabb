//! `htsr-watch db stats --db PATH`: how big each tree of the store is.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use htsr_storage::stats::human_bytes;

use super::open_existing;

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
}

pub fn run(args: DbArgs) -> anyhow::Result<ExitCode> {
    match args.command {
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
