//! Where a command finds its store, and how the reading commands (`browse`, `export`, `db`) open one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use htsr_storage::{ErrorKind, Store};

/// Exit code for usage errors and for a store that cannot be opened.
pub const EXIT_USAGE: u8 = 2;

/// The default store of a watched directory: `DIR/.htsr/`.
pub fn default_store(dir: &Path) -> PathBuf {
    dir.join(".htsr")
}

/// Opens an existing store for the reading commands (`browse`, `export`, `db`): never created, never moved aside,
/// never recovered; what is wrong is said as it is (missing, held by a running daemon, damaged, foreign).
pub fn open_existing(path: &Path, command: &str) -> Result<Store, ExitCode> {
    match Store::open_existing(path) {
        Ok(store) => Ok(store),
        Err(e) => {
            let what = match e.kind() {
                ErrorKind::Locked => format!(
                    "{} is in use by a running htsr-watch daemon (one process opens a store at a time). Its dashboard \
                     shows this store live; or stop it (Ctrl-C) and run this again.",
                    path.display()
                ),
                ErrorKind::NotFound => e.to_string(),
                ErrorKind::Corrupt => format!(
                    "{}: the store is damaged ({e}); it was left as it is. `htsr-watch DIR` sets a damaged store aside \
                     and rebuilds it from the checkpoints that still exist.",
                    path.display()
                ),
                _ => format!("{}: {e}", path.display()),
            };
            eprintln!("htsr-watch {command}: {what}");
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}
