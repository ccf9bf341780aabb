//! One cheap look at a checkpoint: its size, modification time, header hash and whether the header says it is
//! complete. Nothing beyond the headers is read.

use std::path::Path;
use std::time::UNIX_EPOCH;

use htsr_contracts::FileIdentity;

use htsr_contracts::naming::{is_checkpoint_name, SHARD_INDEX_FILE};
use htsr_engine::checkpoint::{probe_file, CheckpointError};

/// What the header says about the bytes on disk now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    /// The header is valid and the file is exactly as long as it says.
    Complete { header_hash: String },
    /// The header is valid but the data are shorter than it says: still being written, or truncated.
    Incomplete { reason: String },
    /// Not a valid safetensors file (yet): an empty file, a partial header, garbage, a file longer than its header.
    Invalid { reason: String },
}

/// One look at a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    pub size: u64,
    pub mtime_ns: i128,
    pub validity: Validity,
}

impl Look {
    /// The identity the store keys this look by. Invalid files get an empty header hash, so that a failed record
    /// is recognized after a restart and a changed file (new size or mtime) is a new identity.
    pub fn identity(&self, rel: &str) -> FileIdentity {
        FileIdentity {
            path: rel.to_string(),
            size: self.size,
            mtime_ns: self.mtime_ns,
            header_hash: match &self.validity {
                Validity::Complete { header_hash } => header_hash.clone(),
                _ => String::new(),
            },
        }
    }
}

/// Why no look was possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookError {
    /// The path no longer exists (deleted, renamed away, its directory removed).
    Gone,
    /// Any other I/O error (permission denied, ...), in words.
    Io(String),
}

fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128)
}

fn io_error(e: &std::io::Error) -> LookError {
    if e.kind() == std::io::ErrorKind::NotFound {
        LookError::Gone
    } else {
        LookError::Io(e.to_string())
    }
}

/// Looks at a checkpoint file or sharded checkpoint directory.
pub fn look(path: &Path, sharded: bool) -> Result<Look, LookError> {
    if sharded {
        look_sharded(path)
    } else {
        look_file(path)
    }
}

fn validity_of(
    probe: Result<htsr_engine::checkpoint::HeaderProbe, CheckpointError>,
) -> Result<Validity, LookError> {
    match probe {
        Ok(p) if p.is_complete() => Ok(Validity::Complete {
            header_hash: p.header_hash,
        }),
        Ok(p) if p.file_len < p.expected_len => Ok(Validity::Incomplete {
            reason: format!(
                "{} of the {} bytes its header announces",
                p.file_len, p.expected_len
            ),
        }),
        Ok(p) => Ok(Validity::Invalid {
            reason: format!(
                "the file is {} bytes, longer than the {} its header announces",
                p.file_len, p.expected_len
            ),
        }),
        Err(e) if e.is_not_found() => Err(LookError::Gone),
        Err(CheckpointError::Io { source, .. }) => Err(io_error(&source)),
        Err(CheckpointError::Invalid { reason, .. }) => Ok(Validity::Invalid { reason }),
        Err(e) => Ok(Validity::Invalid {
            reason: e.to_string(),
        }),
    }
}

fn look_file(path: &Path) -> Result<Look, LookError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(&e))?;
    let validity = validity_of(probe_file(path))?;
    // A second stat: if the file changed while its header was read, the next look will see it.
    Ok(Look {
        size: meta.len(),
        mtime_ns: mtime_ns(&meta),
        validity,
    })
}

/// A sharded checkpoint: its size is the sum of the index and the shards, its mtime the latest, its hash covers
/// the index and every shard header; it is complete when every shard is.
fn look_sharded(dir: &Path) -> Result<Look, LookError> {
    let index_path = dir.join(SHARD_INDEX_FILE);
    let index = std::fs::read(&index_path).map_err(|e| io_error(&e))?;
    let index_meta = std::fs::metadata(&index_path).map_err(|e| io_error(&e))?;
    let mut size = index_meta.len();
    let mut mtime = mtime_ns(&index_meta);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&index);
    let mut shards: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io_error(&e))?
        .filter_map(|e| e.ok())
        .filter(|e| is_checkpoint_name(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    shards.sort();
    let mut validity: Option<Validity> = None;
    for shard in &shards {
        let meta = std::fs::metadata(shard).map_err(|e| io_error(&e))?;
        size += meta.len();
        mtime = mtime.max(mtime_ns(&meta));
        let name = shard.file_name().unwrap_or_default().to_string_lossy();
        match validity_of(probe_file(shard))? {
            Validity::Complete { header_hash } => {
                hasher.update(name.as_bytes());
                hasher.update(header_hash.as_bytes());
            }
            Validity::Incomplete { reason } => {
                validity.get_or_insert(Validity::Incomplete {
                    reason: format!("shard {name}: {reason}"),
                });
            }
            Validity::Invalid { reason } => {
                validity = Some(Validity::Invalid {
                    reason: format!("shard {name}: {reason}"),
                });
            }
        }
    }
    if shards.is_empty() {
        validity = Some(Validity::Incomplete {
            reason: "the index names shards, none is there yet".to_string(),
        });
    }
    Ok(Look {
        size,
        mtime_ns: mtime,
        validity: validity.unwrap_or_else(|| Validity::Complete {
            header_hash: hasher.finalize().to_hex().to_string(),
        }),
    })
}

/// Size and mtime only (stats, no reads), computed as [`look`] computes them: a rescan compares this with what
/// was settled, so that an unchanged checkpoint costs a `stat`.
pub fn stat(path: &Path, sharded: bool) -> std::io::Result<(u64, i128)> {
    if !sharded {
        let meta = std::fs::metadata(path)?;
        return Ok((meta.len(), mtime_ns(&meta)));
    }
    let index = std::fs::metadata(path.join(SHARD_INDEX_FILE))?;
    let (mut size, mut mtime) = (index.len(), mtime_ns(&index));
    for entry in std::fs::read_dir(path)?.filter_map(|e| e.ok()) {
        if is_checkpoint_name(&entry.file_name().to_string_lossy()) {
            let meta = std::fs::metadata(entry.path())?;
            size += meta.len();
            mtime = mtime.max(mtime_ns(&meta));
        }
    }
    Ok((size, mtime))
}
