//! `htsr-watch db stats`: how big each tree is, so that a user can see where the space goes.

use htsr_api::{StoreStats, TreeStats};

use crate::error::Result;
use crate::store::{Store, TREES};

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

pub use htsr_api::human_bytes;
