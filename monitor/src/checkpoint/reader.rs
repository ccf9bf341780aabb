//! Opening a checkpoint: one memory-mapped safetensors file, or a Hugging Face sharded directory read as one.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use super::error::{describe_safetensors_error, CheckpointError};

/// The index file of a Hugging Face sharded checkpoint.
pub const SHARD_INDEX_FILE: &str = "model.safetensors.index.json";

/// One tensor of a checkpoint: where its bytes are and what they hold.
#[derive(Debug, Clone)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    shard: usize,
    range: Range<usize>,
}

impl TensorEntry {
    pub fn byte_len(&self) -> usize {
        self.range.len()
    }
}

/// An open checkpoint. Tensors are read lazily from the memory maps, one at a time.
pub struct Checkpoint {
    path: PathBuf,
    /// One memory map per file (one for a plain checkpoint, one per shard).
    shards: Vec<Mmap>,
    tensors: Vec<TensorEntry>,
    metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Checkpoint {
    /// Opens a `.safetensors` file or a directory holding `model.safetensors.index.json` and its shards.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| CheckpointError::io(path, e))?;
        if meta.is_dir() {
            let index = path.join(SHARD_INDEX_FILE);
            if index.is_file() {
                return Self::open_sharded(path, &index);
            }
            return Err(CheckpointError::NotACheckpoint {
                path: path.to_path_buf(),
            });
        }
        let mut checkpoint = Checkpoint {
            path: path.to_path_buf(),
            shards: Vec::new(),
            tensors: Vec::new(),
            metadata: BTreeMap::new(),
        };
        checkpoint.add_shard(path, None)?;
        Ok(checkpoint)
    }

    fn open_sharded(dir: &Path, index: &Path) -> Result<Self, CheckpointError> {
        let text = std::fs::read_to_string(index).map_err(|e| CheckpointError::io(index, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| CheckpointError::Index {
                path: index.to_path_buf(),
                reason: format!("not JSON: {e}"),
            })?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| CheckpointError::Index {
                path: index.to_path_buf(),
                reason: "no \"weight_map\" object".into(),
            })?;
        // Shards in first-mentioned order; each tensor must live in the shard the index names.
        let mut shard_files: Vec<String> = Vec::new();
        let mut expected: HashMap<String, String> = HashMap::new();
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| CheckpointError::Index {
                path: index.to_path_buf(),
                reason: format!("weight_map entry {tensor:?} is not a file name"),
            })?;
            if file.contains('/') || file.contains("..") {
                return Err(CheckpointError::Index {
                    path: index.to_path_buf(),
                    reason: format!("shard name {file:?} leaves the checkpoint directory"),
                });
            }
            if !shard_files.iter().any(|f| f == file) {
                shard_files.push(file.to_string());
            }
            expected.insert(tensor.clone(), file.to_string());
        }
        shard_files.sort();
        let mut checkpoint = Checkpoint {
            path: dir.to_path_buf(),
            shards: Vec::new(),
            tensors: Vec::new(),
            metadata: BTreeMap::new(),
        };
        if let Some(meta) = json.get("metadata").and_then(|m| m.as_object()) {
            for (k, v) in meta {
                if let Some(s) = v.as_str() {
                    checkpoint.metadata.insert(k.clone(), s.to_string());
                }
            }
        }
        for file in &shard_files {
            checkpoint.add_shard(&dir.join(file), Some(&expected))?;
        }
        for tensor in expected.keys() {
            if !checkpoint.tensors.iter().any(|t| &t.name == tensor) {
                return Err(CheckpointError::Index {
                    path: index.to_path_buf(),
                    reason: format!("tensor {tensor:?} is in weight_map but in no shard"),
                });
            }
        }
        Ok(checkpoint)
    }

    fn add_shard(
        &mut self,
        path: &Path,
        only: Option<&HashMap<String, String>>,
    ) -> Result<(), CheckpointError> {
        let file = File::open(path).map_err(|e| CheckpointError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| CheckpointError::io(path, e))?
            .len();
        if len == 0 {
            return Err(CheckpointError::invalid(path, "the file is empty"));
        }
        // SAFETY: the map is read-only. Writers are expected to rename complete files into place; a file
        // truncated in place while mapped would fault, which is why the daemon validates length first.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| CheckpointError::io(path, e))?;
        let (header_len, metadata) = SafeTensors::read_metadata(&map)
            .map_err(|e| CheckpointError::invalid(path, describe_safetensors_error(&e, len)))?;
        let data_start = 8 + header_len;
        let shard = self.shards.len();
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut infos: Vec<(String, &safetensors::tensor::TensorInfo)> =
            metadata.tensors().into_iter().collect();
        // File order (by data offset) keeps reports in the order the writer chose.
        infos.sort_by_key(|(_, info)| info.data_offsets.0);
        for (name, info) in infos {
            if let Some(only) = only {
                if only.get(&name).map(String::as_str) != Some(file_name.as_str()) {
                    continue;
                }
            }
            self.tensors.push(TensorEntry {
                name,
                dtype: info.dtype,
                shape: info.shape.clone(),
                shard,
                range: data_start + info.data_offsets.0..data_start + info.data_offsets.1,
            });
        }
        if let Some(m) = metadata.metadata() {
            for (k, v) in m {
                self.metadata.insert(k.clone(), v.clone());
            }
        }
        self.shards.push(map);
        Ok(())
    }

    /// The checkpoint's path (the file, or the sharded directory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    /// `__metadata__` strings of every shard (the index's `metadata` too, for sharded checkpoints).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The raw little-endian bytes of a tensor.
    pub fn bytes(&self, entry: &TensorEntry) -> &[u8] {
        &self.shards[entry.shard][entry.range.clone()]
    }
}
