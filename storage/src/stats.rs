//! `htsr-watch db stats`: how big each tree is, so that a user can see where the space goes.

use serde::Serialize;

use crate::error::Result;
use crate::store::{Store, TREES};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeStats {
    pub name: String,
    pub keys: u64,
    /// Sum of key and value lengths: the logical size, before sled's own overhead.
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub path: String,
    pub schema_version: u32,
    pub trees: Vec<TreeStats>,
    /// Sum of the trees' logical bytes.
    pub logical_bytes: u64,
    /// What the store's files take on disk (sled's log and snapshots: includes space not yet reclaimed).
    pub on_disk_bytes: u64,
}

/// What the store at `path` takes on disk: the size of every file under it, recursively (sled's log, snapshots
/// and blobs). A plain walk of the directory, so it needs no open store (a metrics page measures it per scrape).
pub fn on_disk_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => on_disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl Store {
    /// Sizes per tree (keys, bytes) and on disk. Walks every key: meant for a CLI, not a hot path.
    pub fn stats(&self) -> Result<StoreStats> {
        let db = self.open_db()?;
        let mut trees = Vec::with_capacity(TREES.len());
        for name in TREES {
            let tree = db.t.by_name(name).expect("every name in TREES has a tree");
            let (mut keys, mut bytes) = (0u64, 0u64);
            for kv in tree.iter() {
                let (k, v) = kv?;
                keys += 1;
                bytes += (k.len() + v.len()) as u64;
            }
            trees.push(TreeStats {
                name: name.to_string(),
                keys,
                bytes,
            });
        }
        db.db.flush()?;
        Ok(StoreStats {
            path: self.path().display().to_string(),
            schema_version: self.schema_version()?,
            logical_bytes: trees.iter().map(|t| t.bytes).sum(),
            trees,
            on_disk_bytes: on_disk_bytes(self.path()),
        })
    }
}

/// Bytes with a binary unit, e.g. "12.3 MiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl std::fmt::Display for StoreStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "store {} (schema version {})",
            self.path, self.schema_version
        )?;
        writeln!(f, "{:<16} {:>12} {:>12}", "tree", "keys", "bytes")?;
        for t in &self.trees {
            writeln!(
                f,
                "{:<16} {:>12} {:>12}",
                t.name,
                t.keys,
                human_bytes(t.bytes)
            )?;
        }
        writeln!(
            f,
            "{:<16} {:>12} {:>12}",
            "total",
            self.trees.iter().map(|t| t.keys).sum::<u64>(),
            human_bytes(self.logical_bytes)
        )?;
        write!(
            f,
            "on disk: {} (includes space sled has not reclaimed yet)",
            human_bytes(self.on_disk_bytes)
        )
    }
}
