//! Where a command finds its store, and how the reading commands (`browse`, `export`, `db`) open one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use htsr_storage::{OpenOutcome, Store};

/// Exit code for usage errors and for a store that cannot be opened.
pub const EXIT_USAGE: u8 = 2;

/// The default store of a watched directory: `DIR/.htsr/`.
pub fn default_store(dir: &Path) -> PathBuf {
    dir.join(".htsr")
}

/// Opens an existing store for reading commands (`browse`, `export`, `db stats`): a missing store is an error
/// (not silently created), a store held by a running daemon is said so clearly.
pub fn open_existing(path: &Path, command: &str) -> Result<Store, ExitCode> {
    if !path.exists() {
        eprintln!(
            "htsr-watch {command}: no store at {} (the daemon creates DIR/.htsr/ when it runs: `htsr-watch DIR`)",
            path.display()
        );
        return Err(ExitCode::from(EXIT_USAGE));
    }
    match Store::open(path) {
        Ok((store, outcome)) => {
            if let OpenOutcome::Recovered { .. } = outcome {
                eprintln!("htsr-watch {command}: {outcome}");
            }
            Ok(store)
        }
        Err(e) if e.is_locked() => {
            eprintln!(
                "htsr-watch {command}: {} is in use by a running htsr-watch daemon (one process opens a store at a \
                 time). Its dashboard shows this store live; or stop it (Ctrl-C) and run this again.",
                path.display()
            );
            Err(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => {
            eprintln!("htsr-watch {command}: {}: {e}", path.display());
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}
