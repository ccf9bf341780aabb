//! Opening a store, and what to do when sled cannot.
//!
//! sled 0.34.7 has known crash-corruption reports, and every stored value can be recomputed from checkpoints
//! that still exist, so a store that sled reports corrupt (or panics on) is set aside by the daemon (renamed, never
//! deleted: the user may want it) and a fresh one created. Nothing else is treated as corruption: a store held by
//! another process, a full disk, denied permissions, too many open files and a schema version we do not understand
//! are reported as what they are, and nothing moves. The reading commands never move or create anything.

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::store::{OpenOutcome, Store};

/// htsr's own lock file inside a store: held exclusively by whoever has the store open, so that a second htsr
/// process is told "held" from the lock's own error code rather than from sled's message.
pub const LOCK_FILE: &str = "htsr.lock";

/// Takes htsr's lock on the store at `path` (an existing directory), creating the lock file when `create` is set;
/// None when the file is absent and not created (a store written before htsr had it: sled's lock still applies).
fn lock_store(path: &Path, create: bool) -> Result<Option<File>> {
    let lock_path = path.join(LOCK_FILE);
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .truncate(false)
        .open(&lock_path)
    {
        Ok(f) => f,
        Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(e)),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Io(e)),
    }
}

/// [`open_sled_plain`] for a caller that holds htsr's own lock on the store: then no other process can hold sled's
/// lock, and a held one is this process's previous handle still shutting down (sled releases its file lock only
/// when its background threads have finished with the dropped handle). Waits for that release, polling, for at most
/// [`OWN_HANDLE_RELEASE_LIMIT`]; a lock still held after that is reported as [`Error::Locked`].
pub(crate) fn open_sled_holding_lock(path: &Path) -> Result<sled::Db> {
    let mut waited = std::time::Duration::ZERO;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match open_sled_plain(path) {
            Err(e) if e.is_locked() && waited < OWN_HANDLE_RELEASE_LIMIT => {
                std::thread::sleep(pause);
                waited += pause;
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// How long [`open_sled_holding_lock`] waits for this process's own dropped sled handle to let go of its lock.
const OWN_HANDLE_RELEASE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens sled at `path`, turning a panic inside sled (it panics on some damaged files) into an error, and a held
/// sled lock into [`Error::Locked`].
pub(crate) fn open_sled_plain(path: &Path) -> Result<sled::Db> {
    match catch_unwind(AssertUnwindSafe(|| sled::Config::new().path(path).open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => {
            let e = Error::Sled(e);
            if e.kind() == ErrorKind::Locked {
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(e)
        }
        Err(panic) => Err(Error::Panicked {
            path: path.to_path_buf(),
            detail: panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "no message".to_string()),
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
        let db = open_sled_plain(&tmp)?;
        let (store, _) = Store::from_db(db, &tmp, false, None)?;
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

/// The daemon's open: creates a missing store, and sets a corrupt one aside (renamed, never deleted) for a fresh
/// one. Held, full, unreadable or unwritable stores are errors, and nothing moves.
pub(crate) fn open(path: &Path) -> Result<(Store, OpenOutcome)> {
    let created = !exists_nonempty(path);
    if created {
        create_fresh(path)?;
    }
    let lock = lock_store(path, true)?;
    let failure = match open_sled_holding_lock(path) {
        Ok(db) => match Store::from_db(db, path, true, lock) {
            Ok((store, _)) => {
                let outcome = if created {
                    OpenOutcome::Created
                } else {
                    OpenOutcome::Opened
                };
                return Ok((store, outcome));
            }
            Err(e) if e.kind() == ErrorKind::Corrupt => e,
            Err(e) => return Err(e),
        },
        Err(e) if e.kind() == ErrorKind::Corrupt => e,
        Err(e) => return Err(e),
    };
    // Real corruption: the store is set aside whole (its lock moves with it) and a fresh one takes its place.
    let moved_to = aside_path(path);
    std::fs::rename(path, &moved_to)?;
    create_fresh(path)?;
    let lock = lock_store(path, true)?;
    let db = open_sled_plain(path)?;
    let (store, _) = Store::from_db(db, path, true, lock)?;
    Ok((
        store,
        OpenOutcome::Recovered {
            moved_to,
            reason: failure.to_string(),
        },
    ))
}

/// The reading commands' open: an existing store as it is. Nothing is created (not even the lock file of an older
/// store), nothing is moved; a missing, held, damaged or foreign store is an error that says which.
pub(crate) fn open_existing(path: &Path) -> Result<Store> {
    if !exists_nonempty(path) {
        return Err(Error::NotFound {
            path: path.to_path_buf(),
        });
    }
    let lock = lock_store(path, false)?;
    let db = if lock.is_some() {
        open_sled_holding_lock(path)?
    } else {
        open_sled_plain(path)?
    };
    Ok(Store::from_db(db, path, true, lock)?.0)
}
