//! A cheap look at a file's safetensors header, without mapping the data: is the file complete, and what
//! identifies its contents.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::error::{describe_safetensors_error, CheckpointError};

/// What the header says about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderProbe {
    pub file_len: u64,
    /// The length the header implies: 8 + header + the end of the last tensor.
    pub expected_len: u64,
    /// blake3 of the header bytes, hex: it changes when any tensor's shape, dtype, offsets or metadata do.
    pub header_hash: String,
}

impl HeaderProbe {
    pub fn is_complete(&self) -> bool {
        self.file_len == self.expected_len
    }
}

/// Reads and validates the header of a safetensors file. A file still being written has a length that
/// differs from the header's; that is reported as an `Invalid` error naming both lengths.
pub fn probe_file(path: &Path) -> Result<HeaderProbe, CheckpointError> {
    let mut file = File::open(path).map_err(|e| CheckpointError::io(path, e))?;
    let file_len = file
        .metadata()
        .map_err(|e| CheckpointError::io(path, e))?
        .len();
    let mut len_bytes = [0u8; 8];
    if file_len < 8 {
        let reason = if file_len == 0 {
            "the file is empty".to_string()
        } else {
            format!("the file is {file_len} bytes, too short for a header")
        };
        return Err(CheckpointError::invalid(path, reason));
    }
    file.read_exact(&mut len_bytes)
        .map_err(|e| CheckpointError::io(path, e))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(CheckpointError::invalid(
            path,
            format!("the header length field ({header_len}) points past the end of the file ({file_len} bytes): truncated or not safetensors"),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|e| CheckpointError::io(path, e))?;
    let json: serde_json::Value = serde_json::from_slice(&header).map_err(|e| {
        CheckpointError::invalid(
            path,
            describe_safetensors_error(&safetensors::SafeTensorError::JsonError(e), file_len),
        )
    })?;
    let obj = json
        .as_object()
        .ok_or_else(|| CheckpointError::invalid(path, "the header is not a JSON object"))?;
    let mut data_end = 0u64;
    for (name, value) in obj {
        if name == "__metadata__" {
            continue;
        }
        let end = value
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(|e| e.as_u64())
            .ok_or_else(|| {
                CheckpointError::invalid(path, format!("tensor {name:?} has no data_offsets"))
            })?;
        data_end = data_end.max(end);
    }
    Ok(HeaderProbe {
        file_len,
        expected_len: 8 + header_len + data_end,
        header_hash: blake3::hash(&header).to_hex().to_string(),
    })
}
