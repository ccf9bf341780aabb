//! Frozen layers: a tensor whose bytes (and dtype and shape) equal the same tensor in the run's previous stored
//! checkpoint gets that checkpoint's report back instead of a recomputed one, with `reused_from_step` set.
//!
//! The tensor hashes of the last checkpoint of each run are kept in memory; after a restart they are rebuilt
//! once per run from the previous checkpoint's file, if it is still there and unchanged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use htsr_contracts::CheckpointStatus;
use htsr_storage::Store;

use htsr_engine::analyze::{wanted, AnalyzeOptions};
use htsr_engine::checkpoint::Checkpoint;

use crate::identity::look;

pub type TensorHash = [u8; 32];

/// The tensor hashes of one stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    pub step: u64,
    pub hashes: HashMap<String, TensorHash>,
}

/// The last stored checkpoint's hashes, per run.
#[derive(Debug)]
pub struct FrozenMemo {
    root: PathBuf,
    last: Mutex<HashMap<String, Arc<Previous>>>,
}

impl FrozenMemo {
    pub fn new(root: PathBuf) -> Self {
        FrozenMemo {
            root,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// The hashes of the run's last complete checkpoint stored before `step`, if they can be had.
    pub fn previous(
        &self,
        store: &Store,
        run: &str,
        step: u64,
        opts: &AnalyzeOptions,
    ) -> Option<Arc<Previous>> {
        let steps = store.steps(run).ok()?;
        let record = steps
            .iter()
            .rev()
            .filter(|s| **s < step)
            .filter_map(|s| store.checkpoint(run, *s).ok().flatten())
            .find(|c| c.status == CheckpointStatus::Complete)?;
        if let Some(p) = self.lock().get(run) {
            if p.step == record.step {
                return Some(p.clone());
            }
        }
        // Not in memory (a restart): hash the previous file, if it is still the file that was analyzed.
        let path = self.root.join(&record.identity.path);
        let now = look(&path, path.is_dir()).ok()?;
        if now.identity(&record.identity.path) != record.identity {
            return None;
        }
        let checkpoint = Checkpoint::open(&path).ok()?;
        let mut buf = Vec::new();
        let hashes = checkpoint
            .tensors()
            .iter()
            .filter(|t| wanted(opts, &t.name))
            .map(|t| Some((t.name.clone(), checkpoint.tensor_hash(t, &mut buf).ok()?)))
            .collect::<Option<_>>()?;
        checkpoint.check_unchanged().ok()?;
        let prev = Arc::new(Previous {
            step: record.step,
            hashes,
        });
        self.lock().insert(run.to_string(), prev.clone());
        Some(prev)
    }

    /// Records the hashes of a checkpoint just stored, if it is now the run's latest known one.
    pub fn remember(&self, run: &str, step: u64, hashes: HashMap<String, TensorHash>) {
        let mut last = self.lock();
        if last.get(run).is_none_or(|p| p.step <= step) {
            last.insert(run.to_string(), Arc::new(Previous { step, hashes }));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Previous>>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}
