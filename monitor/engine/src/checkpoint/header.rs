//! The safetensors header: read with positioned reads from an open file, validated with checked arithmetic, and
//! hashed. Nothing beyond the header is read here.
//!
//! A safetensors file is an 8-byte little-endian header length `n`, `n` bytes of JSON (tensor name -> dtype, shape,
//! `data_offsets` relative to the end of the header; an optional `__metadata__` of string pairs), then the data.
//! Valid means: every tensor's offsets are ordered, contiguous from 0, and as long as its shape and dtype say; the
//! file is complete when it is exactly `8 + n + data length` bytes long.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::UNIX_EPOCH;

use safetensors::Dtype;
use serde::Deserialize;

use super::error::CheckpointError;

/// Headers longer than this are refused (safetensors' own limit is 100 MB).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// One tensor as the header describes it; offsets are absolute positions in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderTensor {
    /// The tensor's name in the file.
    pub name: String,
    /// The element type, as the header gives it.
    pub dtype: Dtype,
    /// The tensor's shape, outermost axis first.
    pub shape: Vec<usize>,
    /// Absolute byte offset of the first element.
    pub start: u64,
    /// Bytes of data.
    pub len: u64,
}

/// A parsed, validated header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `n`, the JSON's length.
    pub header_len: u64,
    /// Total bytes of tensor data the header describes.
    pub data_len: u64,
    /// Tensors in file order (by offset).
    pub tensors: Vec<HeaderTensor>,
    /// `__metadata__`.
    pub metadata: BTreeMap<String, String>,
    /// blake3 of the header's JSON bytes, hex: it changes when any tensor's shape, dtype, offsets or metadata do.
    pub hash: String,
}

impl Header {
    /// The file length the header implies: 8 + n + data.
    pub fn expected_len(&self) -> u64 {
        8 + self.header_len + self.data_len
    }
}

/// What one look at a file found: its length and modification time, and its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderProbe {
    /// The file's length in bytes at the time of the look.
    pub file_len: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 when the filesystem has none).
    pub mtime_ns: i128,
    /// The parsed, validated header.
    pub header: Header,
}

impl HeaderProbe {
    /// The length the header implies.
    pub fn expected_len(&self) -> u64 {
        self.header.expected_len()
    }

    /// blake3 of the header's JSON bytes, hex (see [`Header::hash`]).
    pub fn header_hash(&self) -> &str {
        &self.header.hash
    }

    /// True when the file is exactly as long as its header says.
    pub fn is_complete(&self) -> bool {
        self.file_len == self.expected_len()
    }
}

/// Modification time of `meta` in nanoseconds since the Unix epoch.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Opens `path` and reads its header. A file still being written has a length that differs from the header's:
/// that is not an error here ([`HeaderProbe::is_complete`] says so), so that a watcher can wait for it.
pub fn probe_file(path: &Path) -> Result<HeaderProbe, CheckpointError> {
    let file = File::open(path).map_err(|e| CheckpointError::io(path, e))?;
    probe_open_file(&file, path)
}

/// [`probe_file`] on a file already open (its length and mtime from `fstat`, the header by positioned reads).
pub fn probe_open_file(file: &File, path: &Path) -> Result<HeaderProbe, CheckpointError> {
    let meta = file.metadata().map_err(|e| CheckpointError::io(path, e))?;
    let file_len = meta.len();
    let header = read_header(file, file_len, path)?;
    Ok(HeaderProbe {
        file_len,
        mtime_ns: mtime_ns(&meta),
        header,
    })
}

/// The JSON of one tensor entry, before validation.
#[derive(Deserialize)]
struct RawTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

fn read_header(file: &File, file_len: u64, path: &Path) -> Result<Header, CheckpointError> {
    let invalid = |reason: String| CheckpointError::invalid(path, reason);
    if file_len < 8 {
        return Err(invalid(if file_len == 0 {
            "the file is empty".to_string()
        } else {
            format!("the file is {file_len} bytes, too short for a header")
        }));
    }
    let mut len_bytes = [0u8; 8];
    read_at(file, &mut len_bytes, 0, path)?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_LEN {
        return Err(invalid(format!(
            "the header length field ({header_len}) is absurdly large: not a safetensors file"
        )));
    }
    if 8 + header_len > file_len {
        return Err(invalid(format!(
            "the header length field ({header_len}) points past the end of the file ({file_len} bytes): truncated or \
             not safetensors"
        )));
    }
    let mut json = vec![0u8; header_len as usize];
    read_at(file, &mut json, 8, path)?;
    let text = std::str::from_utf8(&json)
        .map_err(|_| invalid("the header is not UTF-8: not a safetensors file".to_string()))?;
    let raw: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| invalid(format!("the header is not valid safetensors JSON ({e})")))?;
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::new();
    for (name, value) in raw {
        if name == "__metadata__" {
            metadata = serde_json::from_value(value)
                .map_err(|e| invalid(format!("__metadata__ must map strings to strings ({e})")))?;
            continue;
        }
        let t: RawTensor =
            serde_json::from_value(value).map_err(|e| invalid(format!("tensor {name:?}: {e}")))?;
        tensors.push((name, t));
    }
    // Offsets must tile the data exactly, in order, with no gap and no overlap (safetensors' own rule).
    tensors.sort_by_key(|(_, t)| t.data_offsets);
    let data_start = 8 + header_len;
    let mut expected_start = 0u64;
    let mut out = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let (start, end) = t.data_offsets;
        if start != expected_start || end < start {
            return Err(invalid(format!(
                "tensor {name:?}: its data offsets [{start}, {end}] do not follow the previous tensor's end \
                 ({expected_start}): overlapping, reversed or with a gap"
            )));
        }
        let elements = t
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        let bytes = elements.and_then(|n| n.checked_mul(t.dtype.bitsize() as u64));
        let bytes = match bytes {
            Some(bits) if bits % 8 == 0 => bits / 8,
            _ => {
                return Err(invalid(format!(
                "tensor {name:?}: shape {:?} of {:?} overflows or is not a whole number of bytes",
                t.shape, t.dtype
            )))
            }
        };
        if end - start != bytes {
            return Err(invalid(format!(
                "tensor {name:?}: shape {:?} of {:?} needs {bytes} bytes, its data offsets span {}",
                t.shape,
                t.dtype,
                end - start
            )));
        }
        let abs_start = data_start
            .checked_add(start)
            .ok_or_else(|| invalid(format!("tensor {name:?}: its data offsets overflow")))?;
        out.push(HeaderTensor {
            name,
            dtype: t.dtype,
            shape: t.shape,
            start: abs_start,
            len: bytes,
        });
        expected_start = end;
    }
    data_start
        .checked_add(expected_start)
        .ok_or_else(|| invalid("the tensors' data offsets overflow".to_string()))?;
    Ok(Header {
        header_len,
        data_len: expected_start,
        tensors: out,
        metadata,
        hash: blake3::hash(&json).to_hex().to_string(),
    })
}

/// `read_exact_at`, with a short read (the file shrank) reported as a truncated file naming `path`.
pub(crate) fn read_at(
    file: &File,
    buf: &mut [u8],
    offset: u64,
    path: &Path,
) -> Result<(), CheckpointError> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            CheckpointError::Changed {
                path: path.to_path_buf(),
                reason: format!(
                    "the file ended before byte {} while it was read: truncated or rewritten",
                    offset + buf.len() as u64
                ),
            }
        } else {
            CheckpointError::io(path, e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(header: &str, data_len: usize) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, data_len));
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn a_valid_header_gives_absolute_offsets_in_file_order() {
        let h = r#"{"__metadata__":{"htsr.step":"3"},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},"a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#;
        let (_d, path) = file_with(h, 24);
        let p = probe_file(&path).unwrap();
        assert!(p.is_complete());
        let names: Vec<_> = p.header.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(p.header.tensors[0].start, 8 + h.len() as u64);
        assert_eq!(p.header.tensors[1].len, 8);
        assert_eq!(p.header.metadata["htsr.step"], "3");
    }

    #[test]
    fn huge_offsets_are_an_error_not_an_overflow() {
        let h = format!(
            r#"{{"a":{{"dtype":"U8","shape":[1],"data_offsets":[0,{}]}}}}"#,
            u64::MAX
        );
        let (_d, path) = file_with(&h, 1);
        let err = probe_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("\"a\"") && err.contains("needs 1 bytes"),
            "{err}"
        );
        let h = format!(
            r#"{{"a":{{"dtype":"F64","shape":[{}, 4],"data_offsets":[0,8]}}}}"#,
            u64::MAX / 2
        );
        let (_d, path) = file_with(&h, 8);
        assert!(probe_file(&path)
            .unwrap_err()
            .to_string()
            .contains("overflows"));
    }

    #[test]
    fn a_short_file_is_incomplete_not_invalid() {
        let h = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
        let (_d, path) = file_with(h, 10);
        let p = probe_file(&path).unwrap();
        assert!(!p.is_complete());
        assert_eq!(p.expected_len(), 8 + h.len() as u64 + 16);
    }
}
