//! Writes (and reads back) TensorBoard event files: scalars, histograms and
//! text, with no TensorFlow, no protobuf compiler and no unsafe code.
//!
//! # Example
//!
//! ```
//! use htsr_tensorboard::{read_events, wall_time_now, EventWriter};
//!
//! # fn main() -> Result<(), htsr_tensorboard::Error> {
//! # let tmp = tempfile::tempdir().unwrap();
//! # let logdir = tmp.path();
//! // One folder per run; `tensorboard --logdir <logdir>` lists the runs.
//! let run = logdir.join("run-1");
//! let mut writer = EventWriter::create(&run)?;
//!
//! let t = wall_time_now();
//! writer.add_scalar("train/loss", 0.693, 0, t)?;
//! writer.add_histogram("layer1/eigenvalues", &[0.1, 0.5, 2.0, 30.0], 0, t)?;
//! writer.add_text("notes", "**alpha** = 2.31", 0, t)?;
//! writer.flush()?; // buffered until here (or drop/close), then fsynced
//!
//! // Read it back, checking every CRC.
//! let events = read_events(writer.path())?;
//! assert_eq!(events.len(), 4); // the file-version record, then three summaries
//! # Ok(())
//! # }
//! ```
//!
//! # Format
//!
//! An event file, named `events.out.tfevents.<unix seconds>.<host>.<pid>.<n>`
//! inside a run folder, is a sequence of TFRecords:
//!
//! | bytes | content |
//! |---|---|
//! | 8 | data length *n*, u64 little-endian |
//! | 4 | masked CRC-32C of those 8 bytes, u32 little-endian |
//! | *n* | data: an encoded [`Event`] |
//! | 4 | masked CRC-32C of the data, u32 little-endian |
//!
//! where the mask is `((crc >> 15) | (crc << 17)).wrapping_add(0xa282ead8)`
//! ([`masked_crc32c`]). The first event of a file holds only
//! `file_version = "brain.Event:2"`; each later one holds a [`Summary`] with
//! one [`SummaryValue`]:
//!
//! - scalars: `simple_value` (f32);
//! - histograms: `histo`, a [`HistogramProto`];
//! - text: `tensor`, a rank-0 `DT_STRING` [`TensorProto`], with
//!   [`SummaryMetadata`] naming the `text` plugin.
//!
//! The messages are declared by hand in [`proto`] (all public, to inspect
//! what [`read_events`] returns); their field numbers come from the
//! descriptors in the `tensorboard` Python package.

#![forbid(unsafe_code)]
// Stricter than the workspace's lints: every public item of this format crate is documented.
#![warn(missing_docs)]

mod error;
mod histogram;
pub mod proto;
mod record;
mod writer;

pub use error::{Error, RecordPart};
pub use histogram::default_bucket_limits;
pub use proto::{
    Event, HistogramProto, PluginData, Summary, SummaryMetadata, SummaryValue, TensorProto,
    TensorShapeProto,
};
pub use record::{crc32c, masked_crc32c, read_events, read_events_until_defect};
pub use writer::{wall_time_now, EventWriter, FILE_VERSION};
