//! The sled store: one tree per concern, one atomic transaction per checkpoint.
//!
//! | tree              | key                          | value                                        |
//! |-------------------|------------------------------|----------------------------------------------|
//! | `meta`            | `schema_version`             | JSON number                                  |
//! | `layer_ids`       | run, layer name              | u32 BE: the layer's index in its run          |
//! | `layer_names`     | run, u32 index               | the layer name (UTF-8), so indices give first-seen order |
//! | `checkpoints`     | run, step                    | JSON [`CheckpointRecord`]                     |
//! | `identities`      | path, size, mtime, hash      | JSON `[run, step]`: "seen this file already?" |
//! | `points`          | run, layer index, step       | compact trajectory point                      |
//! | `reports`         | run, layer index, step       | compressed JSON [`LayerReport`]               |
//! | `phase_rows`      | run, step                    | one phase byte per layer index                |
//! | `raw_eigenvalues` | run, step, layer index       | f64 LE bytes (latest and pinned checkpoints)  |
//! | `pins`            | run, step                    | empty                                         |

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use sled::{Batch, Db, Tree};

use crate::error::{Error, ErrorKind, Result};
use crate::keys;

use crate::recovery;
use crate::write;
use htsr_contracts::{CheckpointRecord, LayerReport};

/// The schema this code writes. Bump it when a stored layout changes in a way older code cannot read.
pub const SCHEMA_VERSION: u32 = 1;
/// Schema versions this code can read.
pub const UNDERSTOOD_VERSIONS: &[u32] = &[1];
pub(crate) const VERSION_KEY: &[u8] = b"schema_version";

/// Free bytes a filesystem must have before a store that ran out of space on it is reopened (sled writes while it
/// opens; a few segments of its log).
const REOPEN_MIN_FREE_BYTES: u64 = 8 << 20;

/// Tree names, also used by `stats()`.
pub(crate) const TREES: [&str; 10] = [
    "meta",
    "layer_ids",
    "layer_names",
    "checkpoints",
    "identities",
    "points",
    "reports",
    "phase_rows",
    "raw_eigenvalues",
    "pins",
];

/// What `Store::open` found. `Recovered` must be shown to the user: the old store was set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// No store existed; a new one was created with the current schema version.
    Created,
    /// An existing store of an understood version was opened.
    Opened,
    /// sled could not open the store; it was renamed to `moved_to` (never deleted) and a fresh store created.
    /// The daemon can rebuild it from the checkpoints that still exist.
    Recovered {
        /// Where the damaged store now lies.
        moved_to: PathBuf,
        /// Why sled could not open it (the error, in words).
        reason: String,
    },
}

impl std::fmt::Display for OpenOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenOutcome::Created => f.write_str("created a new store"),
            OpenOutcome::Opened => f.write_str("opened the store"),
            OpenOutcome::Recovered { moved_to, reason } => write!(
                f,
                "the store could not be opened ({reason}); it was moved aside to {} and a fresh store was \
                 created: analyses will be rebuilt from the checkpoints that still exist",
                moved_to.display()
            ),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Trees {
    pub meta: Tree,
    pub layer_ids: Tree,
    pub layer_names: Tree,
    pub checkpoints: Tree,
    pub identities: Tree,
    pub points: Tree,
    pub reports: Tree,
    pub phase_rows: Tree,
    pub raw: Tree,
    pub pins: Tree,
}

impl Trees {
    fn open(db: &Db) -> Result<Trees> {
        Ok(Trees {
            meta: db.open_tree(TREES[0])?,
            layer_ids: db.open_tree(TREES[1])?,
            layer_names: db.open_tree(TREES[2])?,
            checkpoints: db.open_tree(TREES[3])?,
            identities: db.open_tree(TREES[4])?,
            points: db.open_tree(TREES[5])?,
            reports: db.open_tree(TREES[6])?,
            phase_rows: db.open_tree(TREES[7])?,
            raw: db.open_tree(TREES[8])?,
            pins: db.open_tree(TREES[9])?,
        })
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&Tree> {
        Some(match name {
            "meta" => &self.meta,
            "layer_ids" => &self.layer_ids,
            "layer_names" => &self.layer_names,
            "checkpoints" => &self.checkpoints,
            "identities" => &self.identities,
            "points" => &self.points,
            "reports" => &self.reports,
            "phase_rows" => &self.phase_rows,
            "raw_eigenvalues" => &self.raw,
            "pins" => &self.pins,
            _ => return None,
        })
    }
}

/// Checks (or, for a new store, writes) the schema version of an opened database.
fn check_version(db: Db, path: &Path, existed: bool) -> Result<(OpenDb, bool)> {
    let t = Trees::open(&db)?;
    let created = match t.meta.get(VERSION_KEY)? {
        Some(v) => {
            let found: Option<u32> = serde_json::from_slice(&v).ok();
            match found {
                Some(n) if UNDERSTOOD_VERSIONS.contains(&n) => false,
                _ => {
                    return Err(Error::UnsupportedVersion {
                        path: path.to_path_buf(),
                        found: String::from_utf8_lossy(&v).into_owned(),
                        understood: UNDERSTOOD_VERSIONS.to_vec(),
                    })
                }
            }
        }
        None => {
            let has_data = TREES[1..]
                .iter()
                .any(|n| t.by_name(n).is_some_and(|tr| !tr.is_empty()));
            if has_data || existed {
                return Err(Error::Corrupt {
                    tree: "meta",
                    detail: "no schema version key: sled recovered an empty or damaged log".into(),
                });
            }
            t.meta
                .insert(VERSION_KEY, serde_json::to_vec(&SCHEMA_VERSION)?)?;
            db.flush()?;
            true
        }
    };
    Ok((OpenDb { db, t }, created))
}

/// An open sled database and its trees.
pub(crate) struct OpenDb {
    pub db: Db,
    pub t: Trees,
}

/// What writes serialize on: the store's write lock holds this.
#[derive(Debug, Default)]
struct WriteState {
    /// Set by [`Store::close`]: every later write is refused, so that a process that is exiting never starts one.
    closed: bool,
    /// A write failed with an I/O error: sled keeps that error and its in-memory state may be ahead of the disk,
    /// so the next write reopens the database first (it re-reads exactly what is durable). Holds the error's kind.
    reopen_before_next_write: Option<ErrorKind>,
}

struct Shared {
    path: PathBuf,
    db: RwLock<Option<Arc<OpenDb>>>,
    writes: Mutex<WriteState>,
    /// Set while `WriteState::reopen_before_next_write` is: reads then try the reopen too, so that a store that
    /// ran out of space serves reads again as soon as there is room, without waiting for the next write.
    reopen_pending: AtomicBool,
    /// htsr's own lock on the store (see [`crate::recovery`]); held as long as the store is open.
    _lock: Option<std::fs::File>,
}

/// The history of every run. Cheap to clone (every clone shares one database); writes are serialized internally
/// so that the daemon's workers and a pin from the dashboard never interleave.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl Store {
    /// Opens (or creates) the store at `path`, a directory, for the daemon: the one opener that may create a store
    /// or set a corrupt one aside.
    ///
    /// - Another process holding the store: [`Error::Locked`] (check with [`Error::is_locked`]).
    /// - A store of another schema version: [`Error::UnsupportedVersion`], nothing is touched.
    /// - A store sled reports corrupt (or panics on): renamed to `<path>.corrupt-<unix seconds>`, a fresh store is
    ///   created, and the outcome is [`OpenOutcome::Recovered`] naming where the old one went.
    /// - Anything else (out of space, permission denied, too many open files): the error, and nothing moves.
    pub fn open(path: impl AsRef<Path>) -> Result<(Store, OpenOutcome)> {
        recovery::open(path.as_ref())
    }

    /// Opens an existing store for the reading commands (`browse`, `export`, `db stats`, `db pin`): never creates
    /// one, never moves one aside; a missing, held or damaged store is an error that says which.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Store> {
        recovery::open_existing(path.as_ref())
    }

    /// Wraps an opened sled database, checking or writing the schema version.
    ///
    /// `existed` says the directory held files before sled opened it: a store this code created always has
    /// its version key (written and flushed first), so an existing store without one is one sled recovered
    /// nothing from (it silently truncates a log at the first damaged entry) and is reported as corrupt.
    pub(crate) fn from_db(
        db: Db,
        path: &Path,
        existed: bool,
        lock: Option<std::fs::File>,
    ) -> Result<(Store, bool)> {
        let (open, created) = check_version(db, path, existed)?;
        Ok((
            Store {
                shared: Arc::new(Shared {
                    path: path.to_path_buf(),
                    db: RwLock::new(Some(Arc::new(open))),
                    writes: Mutex::new(WriteState::default()),
                    reopen_pending: AtomicBool::new(false),
                    _lock: lock,
                }),
            },
            created,
        ))
    }

    /// The open database; [`Error::Unavailable`] while a reopen after an I/O error has not succeeded yet.
    pub(crate) fn open_db(&self) -> Result<Arc<OpenDb>> {
        if self.shared.reopen_pending.load(Ordering::Acquire) {
            // try_lock: a writer holding the lock (possibly this very thread, inside a write) reopens itself.
            if let Ok(mut w) = self.shared.writes.try_lock() {
                // Only while nobody uses the current handle: a caller that holds it (a query that reads twice)
                // would otherwise keep sled's lock, and the reopen would wait on its own caller.
                let unused = self
                    .shared
                    .db
                    .read()
                    .map(|slot| slot.as_ref().is_none_or(|db| Arc::strong_count(db) == 1))
                    .unwrap_or(false);
                if let (Some(kind), true) = (w.reopen_before_next_write, unused) {
                    // Still no room: the old handle answers what it can, and the next read tries again.
                    let _ = self.reopen(&mut w, kind);
                }
            }
        }
        self.shared
            .db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::Unavailable {
                path: self.shared.path.clone(),
            })
    }

    /// The directory this store lives in.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The schema version stored in this store.
    pub fn schema_version(&self) -> Result<u32> {
        let v = self
            .open_db()?
            .t
            .meta
            .get(VERSION_KEY)?
            .ok_or(Error::Corrupt {
                tree: "meta",
                detail: "no version".into(),
            })?;
        Ok(serde_json::from_slice(&v)?)
    }

    fn writes(&self) -> std::sync::MutexGuard<'_, WriteState> {
        self.shared.writes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses every later write and flushes: called when the process is about to exit, so that a worker still
    /// busy cannot begin a write that the exit would cut short. Reads go on working.
    pub fn close(&self) -> Result<()> {
        let mut w = self.writes();
        w.closed = true;
        self.open_db()?.db.flush()?;
        Ok(())
    }

    /// Drops the database and opens it again from disk, under the write lock. After an I/O error (a full disk)
    /// sled keeps failing until reopened; reopening re-reads exactly what was made durable. sled needs free space
    /// to open, so after running out of space the old handle is kept (it answers the reads it can; sled may fail
    /// others with the same error) until the filesystem has room again.
    fn reopen(&self, w: &mut WriteState, after: ErrorKind) -> Result<()> {
        if after == ErrorKind::OutOfSpace {
            let free = rustix::fs::statvfs(&self.shared.path)
                .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
                .unwrap_or(0);
            if free < REOPEN_MIN_FREE_BYTES {
                return Err(Error::Io(std::io::Error::from(
                    std::io::ErrorKind::StorageFull,
                )));
            }
        }
        {
            let mut slot = self.shared.db.write().unwrap_or_else(|e| e.into_inner());
            // The last handle must go before sled can take its file lock again.
            *slot = None;
        }
        let db = if self.shared._lock.is_some() {
            recovery::open_sled_holding_lock(&self.shared.path)?
        } else {
            recovery::open_sled_plain(&self.shared.path)?
        };
        let (open, _) = check_version(db, &self.shared.path, true)?;
        *self.shared.db.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(open));
        w.reopen_before_next_write = None;
        self.shared.reopen_pending.store(false, Ordering::Release);
        Ok(())
    }

    /// Writes one checkpoint's results, all of them or none (a single sled transaction across trees), then
    /// flushes. Rewriting the same (run, step) replaces it whole. `raw_eigenvalues` are kept only while this is
    /// the run's latest checkpoint or pinned; writing a newer checkpoint drops the previous latest's raw values
    /// unless it is pinned.
    pub fn write_checkpoint(
        &self,
        record: &CheckpointRecord,
        layers: &[LayerReport],
        raw_eigenvalues: &[(String, Vec<f64>)],
    ) -> Result<()> {
        let run = record.run.as_str();
        let step = record.step;
        let mut seen = HashSet::new();
        for l in layers {
            if !seen.insert(l.name.as_str()) {
                return Err(Error::Invalid(format!(
                    "layer {:?} appears twice in checkpoint {run}@{step}",
                    l.name
                )));
            }
        }
        for (name, _) in raw_eigenvalues {
            if !seen.contains(name.as_str()) {
                return Err(Error::Invalid(format!(
                    "raw eigenvalues for {name:?}, which has no report"
                )));
            }
        }

        let mut w = self.writes();
        if w.closed {
            return Err(Error::Closed);
        }
        if let Some(kind) = w.reopen_before_next_write {
            self.reopen(&mut w, kind)?;
        }
        let result = self.write_checkpoint_locked(record, layers, raw_eigenvalues);
        if let Err(e) = &result {
            if e.needs_reopen() {
                w.reopen_before_next_write = Some(e.kind());
                self.shared.reopen_pending.store(true, Ordering::Release);
            }
        }
        result
    }

    fn write_checkpoint_locked(
        &self,
        record: &CheckpointRecord,
        layers: &[LayerReport],
        raw_eigenvalues: &[(String, Vec<f64>)],
    ) -> Result<()> {
        let db = self.open_db()?;
        let previous_latest = self.latest_step(&record.run)?;
        let retention = write::Retention {
            previous_latest,
            this_pinned: self.is_pinned(&record.run, record.step)?,
            previous_pinned: match previous_latest {
                Some(prev) => self.is_pinned(&record.run, prev)?,
                None => false,
            },
        };
        write::write_checkpoint(&db, record, layers, raw_eigenvalues, retention)
    }

    /// Keeps the raw eigenvalues of (run, step) from being dropped when newer checkpoints arrive. Returns whether
    /// raw eigenvalues are held for it now (a checkpoint that was already compacted has none to keep).
    pub fn pin(&self, run: &str, step: u64) -> Result<bool> {
        let w = self.writes();
        if w.closed {
            return Err(Error::Closed);
        }
        let db = self.open_db()?;
        db.t.pins.insert(keys::run_step(run, step), &[])?;
        db.db.flush()?;
        Ok(db
            .t
            .raw
            .scan_prefix(keys::run_step(run, step))
            .next()
            .is_some())
    }

    /// Removes a pin; the raw eigenvalues go at once unless (run, step) is the run's latest checkpoint.
    pub fn unpin(&self, run: &str, step: u64) -> Result<()> {
        let w = self.writes();
        if w.closed {
            return Err(Error::Closed);
        }
        let db = self.open_db()?;
        db.t.pins.remove(keys::run_step(run, step))?;
        if self.latest_step(run)? != Some(step) {
            let mut batch = Batch::default();
            for k in db.t.raw.scan_prefix(keys::run_step(run, step)).keys() {
                batch.remove(k?);
            }
            db.t.raw.apply_batch(batch)?;
        }
        db.db.flush()?;
        Ok(())
    }

    /// Whether (run, step) is pinned, i.e. its raw eigenvalues are kept when newer checkpoints arrive.
    pub fn is_pinned(&self, run: &str, step: u64) -> Result<bool> {
        Ok(self
            .open_db()?
            .t
            .pins
            .contains_key(keys::run_step(run, step))?)
    }

    /// Pinned steps of a run, ascending.
    pub fn pinned(&self, run: &str) -> Result<Vec<u64>> {
        self.open_db()?
            .t
            .pins
            .scan_prefix(keys::run_prefix(run))
            .keys()
            .map(|k| {
                let k = k?;
                keys::split_run(&k)
                    .and_then(|(_, rest)| keys::be_u64(rest))
                    .ok_or(Error::Corrupt {
                        tree: "pins",
                        detail: "bad key".into(),
                    })
            })
            .collect()
    }

    /// The highest step stored for `run`.
    pub fn latest_step(&self, run: &str) -> Result<Option<u64>> {
        match self
            .open_db()?
            .t
            .checkpoints
            .scan_prefix(keys::run_prefix(run))
            .keys()
            .next_back()
        {
            None => Ok(None),
            Some(k) => {
                let k = k?;
                let step = keys::split_run(&k)
                    .and_then(|(_, rest)| keys::be_u64(rest))
                    .ok_or(Error::Corrupt {
                        tree: "checkpoints",
                        detail: "bad key".into(),
                    })?;
                Ok(Some(step))
            }
        }
    }

    /// Flushes sled's buffers to disk (writes already flush; this is for callers that want to be sure).
    pub fn flush(&self) -> Result<()> {
        self.open_db()?.db.flush()?;
        Ok(())
    }
}
