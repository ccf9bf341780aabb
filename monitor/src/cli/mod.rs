//! The `htsr-watch` commands other than `analyze`: `watch` (the default: `htsr-watch DIR`), `browse`, `export`
//! and `db stats`. The binary only parses arguments and calls these.

pub mod browse;
pub mod db;
pub mod export;
pub mod logging;
pub mod watch;

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

/// Creates the store at `path` if there is none, atomically: it is made under a temporary sibling name and
/// renamed into place once its schema version is on disk. `Store::open` alone creates it in place, and a daemon
/// killed in the few milliseconds before the version key is flushed leaves a directory the next start takes
/// for a corrupt store (set aside, rebuilt: nothing lost, but an alarming message and a `.corrupt-*` folder).
pub fn create_store_atomically(path: &Path) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "htsr".to_string());
    let tmp = path.with_file_name(format!(".{}.creating", name.trim_start_matches('.')));
    if tmp.exists() {
        // Left by a start that was killed while creating: it holds nothing yet.
        std::fs::remove_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    {
        let (store, _) = Store::open(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        store
            .flush()
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    match std::fs::rename(&tmp, path) {
        Ok(()) => Ok(()),
        // Another process created it meanwhile: use theirs.
        Err(_) if path.exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}
