//! Opening a store, and what to do when sled cannot.
//!
//! sled 0.34.7 has known crash-corruption reports, and every stored value can be recomputed from checkpoints
//! that still exist, so a store sled refuses is set aside (renamed, never deleted: the user may want it) and a
//! fresh one created. Two failures are NOT treated as corruption: another process holding sled's file lock
//! (the daemon is running: say so), and a schema version we do not understand (a newer htsr wrote it: refuse).

use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::store::{OpenOutcome, Store};

/// Whether a sled error means "another process holds the lock". sled 0.34 reports a failed `flock` as an
/// `io::Error` of kind Other whose text says "could not acquire lock"; WouldBlock is accepted too.
pub fn is_lock_error(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

/// sled panics on some damaged files instead of returning an error; both mean "cannot open".
fn open_sled(path: &Path) -> std::result::Result<sled::Db, String> {
    match catch_unwind(AssertUnwindSafe(|| sled::Config::new().path(path).open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) if is_lock_error(&e) => Err(format!("LOCK:{e}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(match panic.downcast_ref::<String>() {
            Some(s) => format!("sled panicked: {s}"),
            None => match panic.downcast_ref::<&str>() {
                Some(s) => format!("sled panicked: {s}"),
                None => "sled panicked".to_string(),
            },
        }),
    }
}

fn exists_nonempty(path: &Path) -> bool {
    match std::fs::read_dir(path) {
        Ok(mut d) => d.next().is_some(),
        Err(_) => path.exists(),
    }
}

/// `<path>.corrupt-<unix seconds>`, with a counter if that name is taken.
fn aside_path(path: &Path) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = format!("{}.corrupt-{secs}", path.display());
    let mut candidate = PathBuf::from(&base);
    let mut n = 1;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    candidate
}

fn locked(path: &Path, detail: String) -> Error {
    Error::Locked {
        path: path.to_path_buf(),
        detail: detail.trim_start_matches("LOCK:").to_string(),
    }
}

/// Creates a new store beside `path` and renames it into place, so that a process killed while creating it
/// leaves either no store or a complete one with its version key, never a half-made one that the next open
/// would have to set aside as corrupt.
fn create_fresh(path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "htsr".into());
    let tmp = path.with_file_name(format!(".{}.creating", name.trim_start_matches('.')));
    if tmp.exists() {
        // Left by a creation that was killed: it holds nothing worth keeping.
        std::fs::remove_dir_all(&tmp)?;
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    {
        let db = open_sled(&tmp).map_err(|e| {
            Error::Io(std::io::Error::other(format!(
                "cannot create a store at {}: {e}",
                path.display()
            )))
        })?;
        let (store, _) = Store::from_db(db, &tmp, false)?;
        store.flush()?;
    }
    if path.exists() && !exists_nonempty(path) {
        std::fs::remove_dir(path)?;
    }
    match std::fs::rename(&tmp, path) {
        Ok(()) => Ok(()),
        // Another process created it meanwhile: use theirs.
        Err(_) if exists_nonempty(path) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn open(path: &Path) -> Result<(Store, OpenOutcome)> {
    let created = !exists_nonempty(path);
    if created {
        create_fresh(path)?;
    }
    let existed = true;
    let failure = match open_sled(path) {
        Ok(db) => match Store::from_db(db, path, existed) {
            Ok((store, _)) => {
                let outcome = if created {
                    OpenOutcome::Created
                } else {
                    OpenOutcome::Opened
                };
                return Ok((store, outcome));
            }
            Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
            // sled opened the files but reading them failed: the store is damaged.
            Err(e) => e.to_string(),
        },
        Err(e) if e.starts_with("LOCK:") => return Err(locked(path, e)),
        Err(e) => e,
    };
    let moved_to = aside_path(path);
    std::fs::rename(path, &moved_to)?;
    let db = open_sled(path).map_err(|e| {
        if e.starts_with("LOCK:") {
            locked(path, e)
        } else {
            Error::Io(std::io::Error::other(format!(
                "cannot create a fresh store at {}: {e}",
                path.display()
            )))
        }
    })?;
    let (store, _) = Store::from_db(db, path, false)?;
    Ok((
        store,
        OpenOutcome::Recovered {
            moved_to,
            reason: failure,
        },
    ))
}
