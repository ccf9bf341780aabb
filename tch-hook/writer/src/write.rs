//! One file, written atomically, and the pruning of old checkpoints.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use htsr_contracts::naming::{step_of_checkpoint_file_name, temporary_file_name};

use crate::TensorSnapshot;

/// Writes `tensors` and `metadata` as the safetensors file `dir/final_name`: temporary name in `dir` -> fsync ->
/// rename -> fsync of `dir`. On error the temporary file is removed and nothing exists under `final_name` that
/// was not there before. The error is in words, naming the file.
pub fn write_atomically(
    dir: &Path,
    final_name: &str,
    tensors: &[TensorSnapshot],
    metadata: &HashMap<String, String>,
) -> Result<(), String> {
    let tmp = dir.join(temporary_file_name(final_name, std::process::id() as u64));
    let final_path = dir.join(final_name);
    let result = (|| -> Result<(), String> {
        let views = tensors.iter().map(|s| (s.name.as_str(), s));
        safetensors::tensor::serialize_to_file(views, Some(metadata.clone()), &tmp)
            .map_err(|e| format!("serializing to {}: {e}", tmp.display()))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| format!("syncing {}: {e}", tmp.display()))?;
        fs::rename(&tmp, &final_path)
            .map_err(|e| format!("renaming {} into place: {e}", tmp.display()))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("syncing {}: {e}", dir.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes all but the `keep` highest-step checkpoint files (`step-<digits>.safetensors`) of `dir`. Other files
/// are never touched.
pub fn prune_checkpoints(dir: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut steps: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            step_of_checkpoint_file_name(name.to_str()?).map(|s| (s, e.path()))
        })
        .collect();
    if steps.len() <= keep {
        return;
    }
    steps.sort();
    let excess = steps.len() - keep;
    for (_, path) in steps.into_iter().take(excess) {
        if let Err(e) = fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "htsr: cannot remove old checkpoint");
        }
    }
}
