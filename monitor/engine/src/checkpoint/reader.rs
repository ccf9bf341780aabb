//! Opening a checkpoint: one safetensors file, or a Hugging Face sharded directory read as one. Tensors are read
//! with positioned reads (`read_exact_at`) from the open files, block by block, never memory-mapped: a file that
//! another process truncates or rewrites while it is read gives a short read or a changed `fstat`, which
//! [`Checkpoint::check_unchanged`] reports, instead of a fault that kills the reader.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use htsr_contracts::naming::SHARD_INDEX_FILE;
use safetensors::Dtype;

use super::error::CheckpointError;
use super::header::{mtime_ns, probe_open_file, read_at, HeaderProbe};

/// One tensor of a checkpoint: where its bytes are and what they hold.
#[derive(Debug, Clone)]
pub struct TensorEntry {
    /// The tensor's name in the checkpoint.
    pub name: String,
    /// The element type, as the header gives it.
    pub dtype: Dtype,
    /// The tensor's shape, outermost axis first.
    pub shape: Vec<usize>,
    shard: usize,
    /// Absolute offset of the first byte in its file.
    start: u64,
    len: u64,
}

impl TensorEntry {
    /// Which file of the checkpoint holds it: its position among the shards, in the index's sorted order (0 for a
    /// single file).
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Bytes of the tensor's data in the file.
    pub fn byte_len(&self) -> usize {
        self.len as usize
    }
}

/// What identifies a checkpoint's bytes on disk: total size, latest modification time, and a hash over the
/// header(s) (and, for a sharded checkpoint, the index). Two equal fingerprints mean the same version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Total bytes: the file's length, or for a sharded checkpoint the index's plus every shard's.
    pub size: u64,
    /// The latest modification time over the files, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Hex hash: the file's header hash, or for a sharded checkpoint blake3 over the index bytes and each shard's name
    /// and header hash.
    pub hash: String,
}

/// One open file of a checkpoint, with what it looked like when it was opened.
struct Shard {
    path: PathBuf,
    file: File,
    file_len: u64,
    mtime_ns: i128,
    header_hash: String,
}

/// The index file of a sharded checkpoint, as read when it was opened.
struct OpenIndex {
    bytes: Vec<u8>,
    len: u64,
    mtime_ns: i128,
}

/// An open checkpoint. Tensors are read on demand, one block at a time.
pub struct Checkpoint {
    path: PathBuf,
    shards: Vec<Shard>,
    index: Option<OpenIndex>,
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

/// The shard files a sharded checkpoint's index names, sorted, and which file holds each tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIndex {
    /// The shard file names the index's `weight_map` lists, sorted, deduplicated.
    pub files: Vec<String>,
    /// Tensor name -> the shard file that holds it.
    pub weight_map: HashMap<String, String>,
    /// The index's `metadata` object (its string values only).
    pub metadata: BTreeMap<String, String>,
}

/// Parses `model.safetensors.index.json` (its bytes; `path` names it in errors).
pub fn parse_shard_index(bytes: &[u8], path: &Path) -> Result<ShardIndex, CheckpointError> {
    let bad = |reason: String| CheckpointError::Index {
        path: path.to_path_buf(),
        reason,
    };
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("no \"weight_map\" object".into()))?;
    let mut files: Vec<String> = Vec::new();
    let mut weight_map = HashMap::new();
    for (tensor, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| bad(format!("weight_map entry {tensor:?} is not a file name")))?;
        if file.contains('/') || file.contains("..") {
            return Err(bad(format!(
                "shard name {file:?} leaves the checkpoint directory"
            )));
        }
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
        weight_map.insert(tensor.clone(), file.to_string());
    }
    files.sort();
    let metadata = json
        .get("metadata")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(ShardIndex {
        files,
        weight_map,
        metadata,
    })
}

/// The fingerprint of a sharded checkpoint from its index and its shards' (file name, length, mtime, header
/// hash), the shards in the index's sorted order. The daemon's readiness looks compute it the same way.
pub fn sharded_fingerprint<'a>(
    index_bytes: &[u8],
    index_len: u64,
    index_mtime_ns: i128,
    shards: impl IntoIterator<Item = (&'a str, u64, i128, &'a str)>,
) -> Fingerprint {
    let mut hasher = blake3::Hasher::new();
    hasher.update(index_bytes);
    let (mut size, mut mtime) = (index_len, index_mtime_ns);
    for (name, len, m, hash) in shards {
        size += len;
        mtime = mtime.max(m);
        hasher.update(name.as_bytes());
        hasher.update(hash.as_bytes());
    }
    Fingerprint {
        size,
        mtime_ns: mtime,
        hash: hasher.finalize().to_hex().to_string(),
    }
}

impl Checkpoint {
    /// Opens a `.safetensors` file or a directory holding `model.safetensors.index.json` and its shards. Every
    /// file must be complete (exactly as long as its header says).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| CheckpointError::io(path, e))?;
        let mut checkpoint = Checkpoint {
            path: path.to_path_buf(),
            shards: Vec::new(),
            index: None,
            tensors: Vec::new(),
            metadata: BTreeMap::new(),
        };
        if meta.is_dir() {
            let index = path.join(SHARD_INDEX_FILE);
            if !index.is_file() {
                return Err(CheckpointError::NotACheckpoint {
                    path: path.to_path_buf(),
                });
            }
            checkpoint.open_sharded(&index)?;
        } else {
            checkpoint.add_shard(path, None)?;
        }
        Ok(checkpoint)
    }

    fn open_sharded(&mut self, index_path: &Path) -> Result<(), CheckpointError> {
        let file = File::open(index_path).map_err(|e| CheckpointError::io(index_path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| CheckpointError::io(index_path, e))?;
        let mut bytes = vec![0u8; meta.len() as usize];
        read_at(&file, &mut bytes, 0, index_path)?;
        let index = parse_shard_index(&bytes, index_path)?;
        self.metadata.extend(index.metadata.clone());
        self.index = Some(OpenIndex {
            bytes,
            len: meta.len(),
            mtime_ns: mtime_ns(&meta),
        });
        for file in &index.files {
            self.add_shard(&self.path.join(file), Some(&index.weight_map))?;
        }
        for tensor in index.weight_map.keys() {
            if !self.tensors.iter().any(|t| &t.name == tensor) {
                return Err(CheckpointError::Index {
                    path: index_path.to_path_buf(),
                    reason: format!("tensor {tensor:?} is in weight_map but in no shard"),
                });
            }
        }
        Ok(())
    }

    fn add_shard(
        &mut self,
        path: &Path,
        only: Option<&HashMap<String, String>>,
    ) -> Result<(), CheckpointError> {
        let file = File::open(path).map_err(|e| CheckpointError::io(path, e))?;
        let probe: HeaderProbe = probe_open_file(&file, path)?;
        if !probe.is_complete() {
            return Err(CheckpointError::invalid(
                path,
                format!(
                    "the header's tensor offsets do not cover the file's {} bytes exactly ({} expected): truncated, \
                     still being written, or corrupt",
                    probe.file_len,
                    probe.expected_len()
                ),
            ));
        }
        let shard = self.shards.len();
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        for t in probe.header.tensors {
            if let Some(only) = only {
                if only.get(&t.name).map(String::as_str) != Some(file_name.as_str()) {
                    continue;
                }
            }
            self.tensors.push(TensorEntry {
                name: t.name,
                dtype: t.dtype,
                shape: t.shape,
                shard,
                start: t.start,
                len: t.len,
            });
        }
        self.metadata.extend(probe.header.metadata);
        self.shards.push(Shard {
            path: path.to_path_buf(),
            file,
            file_len: probe.file_len,
            mtime_ns: probe.mtime_ns,
            header_hash: probe.header.hash,
        });
        Ok(())
    }

    /// The checkpoint's path (the file, or the sharded directory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensors in file order (shard by shard).
    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    /// `__metadata__` strings of every shard (the index's `metadata` too, for sharded checkpoints).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The path of the file holding `entry`, for messages.
    pub fn file_of(&self, entry: &TensorEntry) -> &Path {
        &self.shards[entry.shard].path
    }

    /// Reads `buf.len()` bytes of `entry`'s data starting `offset` bytes into it.
    pub fn read_bytes(
        &self,
        entry: &TensorEntry,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), CheckpointError> {
        let shard = &self.shards[entry.shard];
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > entry.len) {
            return Err(CheckpointError::invalid(
                &shard.path,
                format!(
                    "tensor {:?}: a read past its {} bytes was asked for",
                    entry.name, entry.len
                ),
            ));
        }
        read_at(&shard.file, buf, entry.start + offset, &shard.path)
    }

    /// All of `entry`'s bytes, into `out` (resized).
    pub fn read_tensor(
        &self,
        entry: &TensorEntry,
        out: &mut Vec<u8>,
    ) -> Result<(), CheckpointError> {
        out.resize(entry.byte_len(), 0);
        self.read_bytes(entry, 0, out)
    }

    /// What the files looked like when they were opened (see [`Fingerprint`]).
    pub fn fingerprint(&self) -> Fingerprint {
        match &self.index {
            None => {
                let s = &self.shards[0];
                Fingerprint {
                    size: s.file_len,
                    mtime_ns: s.mtime_ns,
                    hash: s.header_hash.clone(),
                }
            }
            Some(index) => sharded_fingerprint(
                &index.bytes,
                index.len,
                index.mtime_ns,
                self.shards.iter().map(|s| {
                    let name = s.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    (name, s.file_len, s.mtime_ns, s.header_hash.as_str())
                }),
            ),
        }
    }

    /// Checks that no file changed since it was opened: same length and modification time (`fstat` of the open
    /// file, so a file rewritten in place is seen even when its name now points elsewhere) and the same header.
    /// Call it after reading: bytes read from a file that changed meanwhile may be torn.
    pub fn check_unchanged(&self) -> Result<(), CheckpointError> {
        for s in &self.shards {
            let changed = |reason: String| CheckpointError::Changed {
                path: s.path.clone(),
                reason,
            };
            let meta = s
                .file
                .metadata()
                .map_err(|e| CheckpointError::io(&s.path, e))?;
            if meta.len() != s.file_len {
                return Err(changed(format!(
                    "its length went from {} to {} bytes",
                    s.file_len,
                    meta.len()
                )));
            }
            if mtime_ns(&meta) != s.mtime_ns {
                return Err(changed("its modification time changed".to_string()));
            }
            match probe_open_file(&s.file, &s.path) {
                Ok(p) if p.header.hash == s.header_hash => {}
                Ok(_) => return Err(changed("its header changed".to_string())),
                Err(e) => return Err(changed(format!("its header no longer reads: {e}"))),
            }
        }
        if let Some(index) = &self.index {
            let index_path = self.path.join(SHARD_INDEX_FILE);
            let now =
                std::fs::read(&index_path).map_err(|e| CheckpointError::io(&index_path, e))?;
            if now != index.bytes {
                return Err(CheckpointError::Changed {
                    path: index_path,
                    reason: "the index changed".to_string(),
                });
            }
        }
        Ok(())
    }

    /// blake3 over a tensor's dtype, shape and bytes, read in chunks into `buf`: what frozen-layer reuse compares.
    pub fn tensor_hash(
        &self,
        entry: &TensorEntry,
        buf: &mut Vec<u8>,
    ) -> Result<[u8; 32], CheckpointError> {
        const CHUNK: u64 = 1 << 20;
        let mut h = blake3::Hasher::new();
        h.update(format!("{:?}", entry.dtype).as_bytes());
        for d in &entry.shape {
            h.update(&(*d as u64).to_le_bytes());
        }
        let mut offset = 0u64;
        while offset < entry.len {
            let len = CHUNK.min(entry.len - offset) as usize;
            buf.resize(len, 0);
            self.read_bytes(entry, offset, buf)?;
            h.update(buf);
            offset += len as u64;
        }
        Ok(*h.finalize().as_bytes())
    }
}
