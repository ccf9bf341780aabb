//! The event-file writer.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use crate::error::Error;
use crate::histogram::histogram_from_values;
use crate::proto::{
    event, summary_value, DataType, Event, HistogramProto, PluginData, Summary, SummaryMetadata,
    SummaryValue, TensorProto, TensorShapeProto,
};
use crate::record::frame_record;

/// The `file_version` of the first record of every file.
pub const FILE_VERSION: &str = "brain.Event:2";

/// Counter that makes file names unique within the process.
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many names [`EventWriter::create`] tries before giving up.
const MAX_NAME_ATTEMPTS: u32 = 1000;

/// Current time in seconds since the Unix epoch, with sub-second
/// precision: the usual `wall_time` argument.
///
/// Gives 0.0 if the system clock is before 1970.
pub fn wall_time_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The host name for file names: the kernel's on Linux, else `$HOSTNAME`
/// or `%COMPUTERNAME%`, else `localhost`; characters other than ASCII
/// letters, digits, `.`, `-` and `_` become `_`.
fn hostname() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "localhost".to_string()
    } else {
        clean
    }
}

/// Writes one TensorBoard event file.
///
/// Records are buffered in memory and reach the file when the buffer
/// fills, on [`flush`](Self::flush), on [`close`](Self::close), or when the
/// writer is dropped (dropping ignores errors; call `flush` or `close` to
/// see them).
///
/// All `add_*` methods take the step and the wall time (seconds since the
/// Unix epoch, see [`wall_time_now`]) explicitly, and write one event
/// holding one summary value. Steps need not increase: TensorBoard keeps
/// every point of a file whose version is `brain.Event:2`, as this
/// writer's are.
///
/// After a failed write the file may end in a partial record, so the
/// writer then refuses further writes with [`Error::Poisoned`].
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
    payload: Vec<u8>,
    framed: Vec<u8>,
    poisoned: bool,
}

impl EventWriter {
    /// Creates `run_dir` (and its parents) if needed, creates a new event
    /// file in it, and writes the file-version record.
    ///
    /// The file is named
    /// `events.out.tfevents.<unix seconds, 10 digits>.<host>.<pid>.<n>`,
    /// where `n` counts the files this process has created; it is opened
    /// with `create_new`, so an existing file is never overwritten (if the
    /// name is taken, the next `n` is tried). Two writers created in the
    /// same second by one process therefore get different files.
    ///
    /// The file-version record is handed to the operating system before
    /// this returns (not fsynced).
    pub fn create(run_dir: impl AsRef<Path>) -> Result<EventWriter, Error> {
        let run_dir = run_dir.as_ref();
        fs::create_dir_all(run_dir).map_err(|source| Error::Io {
            path: run_dir.to_path_buf(),
            op: "create folder",
            source,
        })?;
        let now = wall_time_now();
        let host = hostname();
        let pid = std::process::id();
        let mut attempts = 0;
        let (path, file) = loop {
            let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("events.out.tfevents.{:010}.{host}.{pid}.{n}", now as u64);
            let path = run_dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == ErrorKind::AlreadyExists && attempts < MAX_NAME_ATTEMPTS => {
                    attempts += 1;
                }
                Err(source) => {
                    return Err(Error::Io {
                        path,
                        op: "create",
                        source,
                    })
                }
            }
        };
        let mut writer = EventWriter {
            path,
            file: BufWriter::with_capacity(64 * 1024, file),
            payload: Vec::new(),
            framed: Vec::new(),
            poisoned: false,
        };
        writer.write_event(&Event {
            wall_time: now,
            step: 0,
            what: Some(event::What::FileVersion(FILE_VERSION.to_string())),
            source_metadata: None,
        })?;
        writer.flush_to_os()?;
        Ok(writer)
    }

    /// The path of the event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a scalar: a summary value with `simple_value` (no metadata),
    /// which TensorBoard shows in its Scalars tab. The `f32` is stored
    /// bit for bit (NaN and infinities included).
    pub fn add_scalar(
        &mut self,
        tag: &str,
        value: f32,
        step: i64,
        wall_time: f64,
    ) -> Result<(), Error> {
        self.write_value(
            SummaryValue {
                tag: tag.to_string(),
                value: Some(summary_value::Value::SimpleValue(value)),
                ..Default::default()
            },
            step,
            wall_time,
        )
    }

    /// Writes a histogram of `values`, binned in TensorFlow's default
    /// buckets ([`default_bucket_limits`](crate::default_bucket_limits)) and
    /// encoded as TensorFlow encodes it (each run of empty buckets merged
    /// into one empty bucket, whose limit is the next bucket's left edge),
    /// except that the empty runs before the first and after the last
    /// non-empty bucket are left out, so that TensorBoard's default (Rust)
    /// loader draws the outer buckets from `min` and to `max`.
    ///
    /// `min`, `max`, `num`, `sum` and `sum_squares` are filled in. An
    /// empty `values` gives a histogram with no buckets and all five zero
    /// (TensorFlow would write `min = f64::MAX`, `max = -f64::MAX` and one
    /// empty bucket, which TensorBoard's Rust loader turns into one bucket
    /// spanning `[f64::MAX, -f64::MAX]`). A NaN or infinite value is an
    /// [`Error::InvalidInput`] and nothing is written.
    pub fn add_histogram(
        &mut self,
        tag: &str,
        values: &[f64],
        step: i64,
        wall_time: f64,
    ) -> Result<(), Error> {
        let histo = histogram_from_values(values).map_err(|reason| self.invalid(tag, reason))?;
        self.add_histogram_proto(tag, histo, step, wall_time)
    }

    /// Writes a histogram that the caller has already binned.
    ///
    /// `bucket_counts[i]` counts the values in
    /// `[bucket_limits[i - 1], bucket_limits[i])`; the limits should
    /// increase, and the last is usually `f64::MAX`. The two slices must
    /// have the same length, else [`Error::InvalidInput`].
    #[allow(clippy::too_many_arguments)]
    pub fn add_histogram_buckets(
        &mut self,
        tag: &str,
        min: f64,
        max: f64,
        num: f64,
        sum: f64,
        sum_squares: f64,
        bucket_limits: &[f64],
        bucket_counts: &[f64],
        step: i64,
        wall_time: f64,
    ) -> Result<(), Error> {
        if bucket_limits.len() != bucket_counts.len() {
            return Err(self.invalid(
                tag,
                format!(
                    "{} bucket limits but {} bucket counts",
                    bucket_limits.len(),
                    bucket_counts.len()
                ),
            ));
        }
        let histo = HistogramProto {
            min,
            max,
            num,
            sum,
            sum_squares,
            bucket_limit: bucket_limits.to_vec(),
            bucket: bucket_counts.to_vec(),
        };
        self.add_histogram_proto(tag, histo, step, wall_time)
    }

    /// Writes a [`HistogramProto`] as it is (summary value field `histo`,
    /// no metadata; TensorBoard shows it in its Histograms and
    /// Distributions tabs).
    pub fn add_histogram_proto(
        &mut self,
        tag: &str,
        histo: HistogramProto,
        step: i64,
        wall_time: f64,
    ) -> Result<(), Error> {
        self.write_value(
            SummaryValue {
                tag: tag.to_string(),
                value: Some(summary_value::Value::Histo(histo)),
                ..Default::default()
            },
            step,
            wall_time,
        )
    }

    /// Writes a text summary, which TensorBoard's Text tab renders as
    /// Markdown.
    ///
    /// The value is a rank-0 `DT_STRING` tensor holding the UTF-8 bytes of
    /// `markdown`, with metadata naming the `text` plugin (empty plugin
    /// content, no data class): byte for byte what TensorBoard's own
    /// `tensorboard.plugins.text.summary_v2.text_pb(tag, markdown)` builds.
    pub fn add_text(
        &mut self,
        tag: &str,
        markdown: &str,
        step: i64,
        wall_time: f64,
    ) -> Result<(), Error> {
        self.write_value(text_value(tag, markdown), step, wall_time)
    }

    /// Writes any event as one record (buffered).
    pub fn write_event(&mut self, event: &Event) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::Poisoned {
                path: self.path.clone(),
            });
        }
        self.payload.clear();
        event
            .encode(&mut self.payload)
            .expect("a Vec<u8> grows as needed");
        self.framed.clear();
        frame_record(&self.payload, &mut self.framed);
        if let Err(source) = self.file.write_all(&self.framed) {
            self.poisoned = true;
            return Err(Error::Io {
                path: self.path.clone(),
                op: "write",
                source,
            });
        }
        Ok(())
    }

    /// Hands buffered records to the operating system and waits until they
    /// are on disk (`fsync`).
    pub fn flush(&mut self) -> Result<(), Error> {
        self.flush_to_os()?;
        self.file.get_ref().sync_all().map_err(|source| Error::Io {
            path: self.path.clone(),
            op: "fsync",
            source,
        })
    }

    /// Flushes (with `fsync`, as [`flush`](Self::flush)) and closes the
    /// file.
    pub fn close(mut self) -> Result<(), Error> {
        self.flush()
    }

    fn flush_to_os(&mut self) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::Poisoned {
                path: self.path.clone(),
            });
        }
        self.file.flush().map_err(|source| {
            self.poisoned = true;
            Error::Io {
                path: self.path.clone(),
                op: "flush",
                source,
            }
        })
    }

    fn write_value(&mut self, value: SummaryValue, step: i64, wall_time: f64) -> Result<(), Error> {
        self.write_event(&Event {
            wall_time,
            step,
            what: Some(event::What::Summary(Summary { value: vec![value] })),
            source_metadata: None,
        })
    }

    fn invalid(&self, tag: &str, reason: String) -> Error {
        Error::InvalidInput {
            path: self.path.clone(),
            tag: tag.to_string(),
            reason,
        }
    }
}

/// The summary value of a text summary (see [`EventWriter::add_text`]).
pub(crate) fn text_value(tag: &str, markdown: &str) -> SummaryValue {
    SummaryValue {
        tag: tag.to_string(),
        metadata: Some(SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: "text".to_string(),
                content: Vec::new(),
            }),
            ..Default::default()
        }),
        value: Some(summary_value::Value::Tensor(Box::new(TensorProto {
            dtype: DataType::DtString as i32,
            tensor_shape: Some(TensorShapeProto::default()),
            string_val: vec![markdown.as_bytes().to_vec()],
            ..Default::default()
        }))),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_clean() {
        let h = hostname();
        assert!(!h.is_empty());
        assert!(h
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
    }

    #[test]
    fn text_value_matches_tensorboard_text_pb() {
        // tensorboard 2.21.0:
        // summary_v2.text_pb("notes", "# Hi *there*").SerializeToString()
        let expected =
            "0a250a056e6f746573421208071200420c23204869202a74686572652a4a080a060a0474657874";
        let summary = Summary {
            value: vec![text_value("notes", "# Hi *there*")],
        };
        let hex: String = summary
            .encode_to_vec()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
    }
}
