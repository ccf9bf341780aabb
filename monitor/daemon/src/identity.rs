//! One cheap look at a checkpoint: its size, modification time, header hash, `__metadata__` and whether the header
//! says it is complete. Nothing beyond the headers is read, and nothing is mapped.

use std::collections::BTreeMap;
use std::path::Path;

use htsr_contracts::naming::SHARD_INDEX_FILE;
use htsr_contracts::FileIdentity;
use htsr_engine::checkpoint::{
    mtime_ns, parse_shard_index, probe_file, sharded_fingerprint, CheckpointError, HeaderProbe,
};

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
    /// The `__metadata__` of a complete checkpoint (every shard's and the index's, for a sharded one).
    pub metadata: BTreeMap<String, String>,
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

/// The validity of one file's probe; Err for a file that is gone or unreadable.
fn validity_of(probe: &Result<HeaderProbe, CheckpointError>) -> Result<Validity, LookError> {
    match probe {
        Ok(p) if p.is_complete() => Ok(Validity::Complete {
            header_hash: p.header.hash.clone(),
        }),
        Ok(p) if p.file_len < p.expected_len() => Ok(Validity::Incomplete {
            reason: format!(
                "{} of the {} bytes its header announces",
                p.file_len,
                p.expected_len()
            ),
        }),
        Ok(p) => Ok(Validity::Invalid {
            reason: format!(
                "the file is {} bytes, longer than the {} its header announces",
                p.file_len,
                p.expected_len()
            ),
        }),
        Err(e) if e.is_not_found() => Err(LookError::Gone),
        Err(CheckpointError::Io { source, .. }) => Err(io_error(source)),
        Err(CheckpointError::Invalid { reason, .. }) => Ok(Validity::Invalid {
            reason: reason.clone(),
        }),
        Err(e) => Ok(Validity::Invalid {
            reason: e.to_string(),
        }),
    }
}

fn look_file(path: &Path) -> Result<Look, LookError> {
    let probe = probe_file(path);
    let validity = validity_of(&probe)?;
    let (size, mtime_ns, metadata) = match probe {
        Ok(p) => (p.file_len, p.mtime_ns, p.header.metadata),
        Err(_) => {
            let meta = std::fs::metadata(path).map_err(|e| io_error(&e))?;
            (meta.len(), mtime_ns(&meta), BTreeMap::new())
        }
    };
    Ok(Look {
        size,
        mtime_ns,
        validity,
        metadata,
    })
}

/// A sharded checkpoint: its size is the sum of the index and the shards it names, its mtime the latest, its hash
/// covers the index and every shard header ([`sharded_fingerprint`], as the engine computes it when it opens the
/// checkpoint); it is complete when every shard the index names is.
fn look_sharded(dir: &Path) -> Result<Look, LookError> {
    let index_path = dir.join(SHARD_INDEX_FILE);
    let index_bytes = std::fs::read(&index_path).map_err(|e| io_error(&e))?;
    let index_meta = std::fs::metadata(&index_path).map_err(|e| io_error(&e))?;
    let invalid = |reason: String, size: u64, mtime: i128| Look {
        size,
        mtime_ns: mtime,
        validity: Validity::Invalid { reason },
        metadata: BTreeMap::new(),
    };
    let index = match parse_shard_index(&index_bytes, &index_path) {
        Ok(index) => index,
        Err(e) => {
            return Ok(invalid(
                e.to_string(),
                index_meta.len(),
                mtime_ns(&index_meta),
            ))
        }
    };
    let mut metadata = index.metadata.clone();
    let mut validity: Option<Validity> = None;
    let mut shards: Vec<(String, u64, i128, String)> = Vec::new();
    let (mut size, mut mtime) = (index_meta.len(), mtime_ns(&index_meta));
    for name in &index.files {
        let probe = probe_file(&dir.join(name));
        if matches!(&probe, Err(e) if e.is_not_found()) {
            validity.get_or_insert(Validity::Incomplete {
                reason: format!("shard {name} is not there yet"),
            });
            continue;
        }
        match validity_of(&probe)? {
            Validity::Complete { header_hash } => {
                let p = probe.expect("a complete shard was probed");
                metadata.extend(p.header.metadata);
                shards.push((name.clone(), p.file_len, p.mtime_ns, header_hash));
            }
            Validity::Incomplete { reason } => {
                if let Ok(p) = &probe {
                    size += p.file_len;
                    mtime = mtime.max(p.mtime_ns);
                }
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
    if let Some(validity) = validity {
        let size = size + shards.iter().map(|s| s.1).sum::<u64>();
        let mtime = shards.iter().map(|s| s.2).fold(mtime, i128::max);
        return Ok(Look {
            size,
            mtime_ns: mtime,
            validity,
            metadata: BTreeMap::new(),
        });
    }
    let fp = sharded_fingerprint(
        &index_bytes,
        index_meta.len(),
        mtime_ns(&index_meta),
        shards
            .iter()
            .map(|(n, l, m, h)| (n.as_str(), *l, *m, h.as_str())),
    );
    Ok(Look {
        size: fp.size,
        mtime_ns: fp.mtime_ns,
        validity: Validity::Complete {
            header_hash: fp.hash,
        },
        metadata,
    })
}

/// Size and mtime only (stats, no reads), computed as [`look`] computes them: a rescan compares this with what
/// was settled, so that an unchanged checkpoint costs a `stat`.
pub fn stat(path: &Path, sharded: bool) -> std::io::Result<(u64, i128)> {
    if !sharded {
        let meta = std::fs::metadata(path)?;
        return Ok((meta.len(), mtime_ns(&meta)));
    }
    let index_path = path.join(SHARD_INDEX_FILE);
    let index = std::fs::metadata(&index_path)?;
    let (mut size, mut mtime) = (index.len(), mtime_ns(&index));
    // The shard list is the index's: reading it is one small file, and it is what `look` sums over.
    let bytes = std::fs::read(&index_path)?;
    let files = parse_shard_index(&bytes, &index_path)
        .map(|i| i.files)
        .unwrap_or_default();
    for name in files {
        match std::fs::metadata(path.join(&name)) {
            Ok(meta) => {
                size += meta.len();
                mtime = mtime.max(mtime_ns(&meta));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok((size, mtime))
}
