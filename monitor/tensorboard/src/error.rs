//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong writing or reading an event file.
///
/// Every variant names the file (or, for [`Error::Io`] while creating one,
/// the folder or file being created), and its message starts with that
/// path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error.
    #[error("{}: {op} failed: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// What was being done: `"create folder"`, `"create"`, `"write"`,
        /// `"flush"`, `"fsync"`, `"open"`, `"stat"`, `"read"`.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A record ends before its declared end (the file was cut short, or is
    /// still being written).
    #[error("{}: truncated record at byte {offset}: file ends inside the {part}", path.display())]
    Truncated {
        /// The event file.
        path: PathBuf,
        /// Byte offset of the start of the record.
        offset: u64,
        /// The part of the record that is incomplete.
        part: RecordPart,
    },

    /// A stored checksum does not match the bytes it covers.
    #[error(
        "{}: corrupt record at byte {offset}: {part} mismatch (stored {stored:#010x}, computed {computed:#010x})",
        path.display()
    )]
    Checksum {
        /// The event file.
        path: PathBuf,
        /// Byte offset of the start of the record.
        offset: u64,
        /// [`RecordPart::LengthCrc`] or [`RecordPart::DataCrc`].
        part: RecordPart,
        /// The masked CRC stored in the file.
        stored: u32,
        /// The masked CRC computed from the bytes.
        computed: u32,
    },

    /// A record's checksums match, but its data is not an `Event`.
    #[error("{}: record at byte {offset} is not an Event: {source}", path.display())]
    Decode {
        /// The event file.
        path: PathBuf,
        /// Byte offset of the start of the record.
        offset: u64,
        /// The decoding error.
        #[source]
        source: prost::DecodeError,
    },

    /// The caller's input cannot be written (nothing was written).
    #[error("{}: cannot write {tag:?}: {reason}", path.display())]
    InvalidInput {
        /// The event file it was meant for.
        path: PathBuf,
        /// The tag of the summary.
        tag: String,
        /// What is wrong.
        reason: String,
    },

    /// An earlier write to this writer failed, so the file may end in a
    /// partial record; the writer refuses further writes.
    #[error("{}: writer unusable after an earlier write error", path.display())]
    Poisoned {
        /// The event file.
        path: PathBuf,
    },
}

/// A part of a TFRecord: `length (u64 LE) | masked CRC of length (u32 LE) |
/// data | masked CRC of data (u32 LE)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordPart {
    /// The 8-byte length.
    Length,
    /// The 4-byte masked CRC of the length.
    LengthCrc,
    /// The data.
    Data,
    /// The 4-byte masked CRC of the data.
    DataCrc,
}

impl fmt::Display for RecordPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordPart::Length => "length",
            RecordPart::LengthCrc => "length CRC",
            RecordPart::Data => "data",
            RecordPart::DataCrc => "data CRC",
        })
    }
}
