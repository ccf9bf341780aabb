//! Hand-written `prost` messages for the parts of TensorBoard's protocol
//! buffers that event files use.
//!
//! Field numbers and types were taken from the descriptors compiled into the
//! `tensorboard` Python wheel (2.21.0, `tensorboard/compat/proto/*_pb2.py`),
//! which mirror TensorFlow's `event.proto`, `summary.proto`,
//! `histogram.proto`, `tensor.proto`, `tensor_shape.proto` and `types.proto`
//! (all `proto3`). Field names follow the `.proto` files, so TensorFlow's
//! documentation applies.
//!
//! Omitted: `TensorProto.resource_handle_val` (14) and
//! `TensorProto.variant_val` (15). `prost` skips them when decoding, as it
//! does with any field it does not know.

/// One record of an event file (`tensorboard.Event`, `event.proto`).
///
/// The first record of every file holds only
/// [`event::What::FileVersion`]`("brain.Event:2")`; the records after it
/// usually hold a [`Summary`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Wall-clock time of the event, in seconds since the Unix epoch
    /// (field 1).
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global step of the event (field 2).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event holds (the `what` oneof, fields 3 to 9).
    #[prost(oneof = "event::What", tags = "3, 4, 5, 6, 7, 8, 9")]
    pub what: Option<event::What>,
    /// Which program wrote the file (field 10; optional).
    #[prost(message, optional, tag = "10")]
    pub source_metadata: Option<SourceMetadata>,
}

/// Types nested in [`Event`].
pub mod event {
    /// The `what` oneof of [`Event`](super::Event).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        /// Version of the file format, e.g. `"brain.Event:2"` (field 3).
        #[prost(string, tag = "3")]
        FileVersion(String),
        /// An encoded `GraphDef` (field 4), kept as bytes.
        #[prost(bytes = "vec", tag = "4")]
        GraphDef(Vec<u8>),
        /// A set of summary values (field 5).
        #[prost(message, tag = "5")]
        Summary(super::Summary),
        /// A log message (field 6; deprecated in TensorFlow).
        #[prost(message, tag = "6")]
        LogMessage(super::LogMessage),
        /// A session start/stop/checkpoint marker (field 7).
        #[prost(message, tag = "7")]
        SessionLog(super::SessionLog),
        /// Run metadata with a tag (field 8).
        #[prost(message, tag = "8")]
        TaggedRunMetadata(super::TaggedRunMetadata),
        /// An encoded `MetaGraphDef` (field 9), kept as bytes.
        #[prost(bytes = "vec", tag = "9")]
        MetaGraphDef(Vec<u8>),
    }
}

/// Which program wrote an event file (`tensorboard.SourceMetadata`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SourceMetadata {
    /// Name of the writer (field 1).
    #[prost(string, tag = "1")]
    pub writer: String,
}

/// A log message (`tensorboard.LogMessage`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogMessage {
    /// Severity, a [`LogLevel`] value (field 1).
    #[prost(enumeration = "LogLevel", tag = "1")]
    pub level: i32,
    /// The message (field 2).
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `tensorboard.LogMessage.Level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LogLevel {
    /// `UNKNOWN` (0).
    Unknown = 0,
    /// `DEBUGGING` (10).
    Debugging = 10,
    /// `INFO` (20).
    Info = 20,
    /// `WARN` (30).
    Warn = 30,
    /// `ERROR` (40).
    Error = 40,
    /// `FATAL` (50).
    Fatal = 50,
}

/// A session start/stop/checkpoint marker (`tensorboard.SessionLog`).
///
/// TensorBoard treats a `START` at step *s* as a restart and drops data it
/// already loaded at steps ≥ *s*.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionLog {
    /// A [`SessionStatus`] value (field 1).
    #[prost(enumeration = "SessionStatus", tag = "1")]
    pub status: i32,
    /// Checkpoint path, for `CHECKPOINT` (field 2).
    #[prost(string, tag = "2")]
    pub checkpoint_path: String,
    /// Free text (field 3).
    #[prost(string, tag = "3")]
    pub msg: String,
}

/// `tensorboard.SessionLog.SessionStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SessionStatus {
    /// `STATUS_UNSPECIFIED` (0).
    StatusUnspecified = 0,
    /// `START` (1).
    Start = 1,
    /// `STOP` (2).
    Stop = 2,
    /// `CHECKPOINT` (3).
    Checkpoint = 3,
}

/// Run metadata with a tag (`tensorboard.TaggedRunMetadata`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaggedRunMetadata {
    /// Tag (field 1).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// An encoded `RunMetadata` (field 2), kept as bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub run_metadata: Vec<u8>,
}

/// A set of summary values (`tensorboard.Summary`, `summary.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values (field 1).
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// One tagged value of a [`Summary`] (`tensorboard.Summary.Value`).
///
/// Note the field numbers: `metadata` is field **9** and `node_name` is
/// field 7.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// Name of the node that produced the value; unused by TensorBoard
    /// (field 7).
    #[prost(string, tag = "7")]
    pub node_name: String,
    /// Tag, the name of the time series (field 1).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Which plugin owns the value and how to read it (field 9).
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The value itself (the `value` oneof, fields 2 to 6 and 8).
    #[prost(oneof = "summary_value::Value", tags = "2, 3, 4, 5, 6, 8")]
    pub value: Option<summary_value::Value>,
}

/// Types nested in [`SummaryValue`].
pub mod summary_value {
    /// The `value` oneof of [`SummaryValue`](super::SummaryValue).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// A scalar (field 2).
        #[prost(float, tag = "2")]
        SimpleValue(f32),
        /// An obsolete histogram encoding (field 3), kept as bytes.
        #[prost(bytes = "vec", tag = "3")]
        ObsoleteOldStyleHistogram(Vec<u8>),
        /// An encoded image (field 4).
        #[prost(message, tag = "4")]
        Image(super::SummaryImage),
        /// A histogram (field 5).
        #[prost(message, tag = "5")]
        Histo(super::HistogramProto),
        /// An encoded audio clip (field 6).
        #[prost(message, tag = "6")]
        Audio(super::SummaryAudio),
        /// A tensor, read according to the value's metadata (field 8).
        /// Boxed, so that the other variants stay small.
        #[prost(message, boxed, tag = "8")]
        Tensor(Box<super::TensorProto>),
    }
}

/// An encoded image (`tensorboard.Summary.Image`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryImage {
    /// Height in pixels (field 1).
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Width in pixels (field 2).
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grayscale, 2 grayscale + alpha, 3 RGB, 4 RGBA, 5 DIGITAL_YUV,
    /// 6 BGRA (field 3).
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The image in PNG or JPEG (field 4).
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// An encoded audio clip (`tensorboard.Summary.Audio`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryAudio {
    /// Sample rate in Hz (field 1).
    #[prost(float, tag = "1")]
    pub sample_rate: f32,
    /// Number of channels (field 2).
    #[prost(int64, tag = "2")]
    pub num_channels: i64,
    /// Length in frames (field 3).
    #[prost(int64, tag = "3")]
    pub length_frames: i64,
    /// The encoded clip (field 4).
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_audio_string: Vec<u8>,
    /// MIME type of the clip (field 5).
    #[prost(string, tag = "5")]
    pub content_type: String,
}

/// Which plugin owns a [`SummaryValue`] and how to read it
/// (`tensorboard.SummaryMetadata`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// Plugin name and plugin-specific content (field 1).
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
    /// Display name (field 2).
    #[prost(string, tag = "2")]
    pub display_name: String,
    /// Long description, Markdown (field 3).
    #[prost(string, tag = "3")]
    pub summary_description: String,
    /// A [`DataClass`] value (field 4). TensorBoard fills it in when it
    /// loads values written without it.
    #[prost(enumeration = "DataClass", tag = "4")]
    pub data_class: i32,
}

/// Plugin name and content of a [`SummaryMetadata`]
/// (`tensorboard.SummaryMetadata.PluginData`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// Plugin name, e.g. `"text"`, `"scalars"`, `"histograms"` (field 1).
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// Plugin-specific content, usually an encoded protobuf (field 2).
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `tensorboard.DataClass`: how TensorBoard's data layer stores a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DataClass {
    /// `DATA_CLASS_UNKNOWN` (0).
    Unknown = 0,
    /// `DATA_CLASS_SCALAR` (1).
    Scalar = 1,
    /// `DATA_CLASS_TENSOR` (2).
    Tensor = 2,
    /// `DATA_CLASS_BLOB_SEQUENCE` (3).
    BlobSequence = 3,
}

/// A histogram (`tensorboard.HistogramProto`, `histogram.proto`).
///
/// `bucket[i]` counts the values in
/// `[bucket_limit[i - 1], bucket_limit[i])`; the first bucket has no left
/// limit (TensorBoard draws it from `min`, and the last one up to `max`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    /// Smallest value (field 1).
    #[prost(double, tag = "1")]
    pub min: f64,
    /// Largest value (field 2).
    #[prost(double, tag = "2")]
    pub max: f64,
    /// Number of values (field 3).
    #[prost(double, tag = "3")]
    pub num: f64,
    /// Sum of the values (field 4).
    #[prost(double, tag = "4")]
    pub sum: f64,
    /// Sum of the squares of the values (field 5).
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    /// Right edge of each bucket, increasing (field 6, packed).
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    /// Count in each bucket (field 7, packed).
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// `tensorboard.DataType` (`types.proto`), the element type of a
/// [`TensorProto`]. Only the non-reference types are listed; the
/// [`TensorProto::dtype`] field keeps any other number as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DataType {
    /// `DT_INVALID` (0).
    DtInvalid = 0,
    /// `DT_FLOAT` (1).
    DtFloat = 1,
    /// `DT_DOUBLE` (2).
    DtDouble = 2,
    /// `DT_INT32` (3).
    DtInt32 = 3,
    /// `DT_UINT8` (4).
    DtUint8 = 4,
    /// `DT_INT16` (5).
    DtInt16 = 5,
    /// `DT_INT8` (6).
    DtInt8 = 6,
    /// `DT_STRING` (7).
    DtString = 7,
    /// `DT_COMPLEX64` (8).
    DtComplex64 = 8,
    /// `DT_INT64` (9).
    DtInt64 = 9,
    /// `DT_BOOL` (10).
    DtBool = 10,
    /// `DT_QINT8` (11).
    DtQint8 = 11,
    /// `DT_QUINT8` (12).
    DtQuint8 = 12,
    /// `DT_QINT32` (13).
    DtQint32 = 13,
    /// `DT_BFLOAT16` (14).
    DtBfloat16 = 14,
    /// `DT_QINT16` (15).
    DtQint16 = 15,
    /// `DT_QUINT16` (16).
    DtQuint16 = 16,
    /// `DT_UINT16` (17).
    DtUint16 = 17,
    /// `DT_COMPLEX128` (18).
    DtComplex128 = 18,
    /// `DT_HALF` (19).
    DtHalf = 19,
    /// `DT_RESOURCE` (20).
    DtResource = 20,
    /// `DT_VARIANT` (21).
    DtVariant = 21,
    /// `DT_UINT32` (22).
    DtUint32 = 22,
    /// `DT_UINT64` (23).
    DtUint64 = 23,
    /// `DT_FLOAT8_E5M2` (24).
    DtFloat8E5m2 = 24,
    /// `DT_FLOAT8_E4M3FN` (25).
    DtFloat8E4m3fn = 25,
    /// `DT_FLOAT8_E4M3FNUZ` (26).
    DtFloat8E4m3fnuz = 26,
    /// `DT_FLOAT8_E4M3B11FNUZ` (27).
    DtFloat8E4m3b11fnuz = 27,
    /// `DT_FLOAT8_E5M2FNUZ` (28).
    DtFloat8E5m2fnuz = 28,
    /// `DT_INT4` (29).
    DtInt4 = 29,
    /// `DT_UINT4` (30).
    DtUint4 = 30,
    /// `DT_INT2` (31).
    DtInt2 = 31,
    /// `DT_UINT2` (32).
    DtUint2 = 32,
    /// `DT_FLOAT4_E2M1FN` (33).
    DtFloat4E2m1fn = 33,
}

/// The shape of a tensor (`tensorboard.TensorShapeProto`).
///
/// A scalar has no dimensions (`dim` empty, `unknown_rank` false).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// Dimensions, outermost first (field 2).
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorShapeDim>,
    /// True when the rank is not known (field 3).
    #[prost(bool, tag = "3")]
    pub unknown_rank: bool,
}

/// One dimension of a [`TensorShapeProto`] (`tensorboard.TensorShapeProto.Dim`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeDim {
    /// Size; -1 for unknown (field 1).
    #[prost(int64, tag = "1")]
    pub size: i64,
    /// Optional name (field 2).
    #[prost(string, tag = "2")]
    pub name: String,
}

/// A tensor (`tensorboard.TensorProto`, `tensor.proto`).
///
/// The values are either in `tensor_content` (raw little-endian bytes) or in
/// the `*_val` field that matches `dtype`. Text summaries use
/// `dtype = DT_STRING` and `string_val`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Element type, a [`DataType`] value (field 1).
    #[prost(enumeration = "DataType", tag = "1")]
    pub dtype: i32,
    /// Shape (field 2).
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// Version number, unused (field 3).
    #[prost(int32, tag = "3")]
    pub version_number: i32,
    /// Raw values, little-endian, row-major (field 4).
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    /// `DT_HALF` / `DT_BFLOAT16` values, 16 bits each in an int32
    /// (field 13).
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
    /// `DT_FLOAT` values (field 5).
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    /// `DT_DOUBLE` values (field 6).
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    /// `DT_INT32`, `DT_INT16`, `DT_INT8`, `DT_UINT8` values (field 7).
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    /// `DT_STRING` values (field 8).
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
    /// `DT_COMPLEX64` values, real and imaginary parts interleaved
    /// (field 9).
    #[prost(float, repeated, tag = "9")]
    pub scomplex_val: Vec<f32>,
    /// `DT_INT64` values (field 10).
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    /// `DT_BOOL` values (field 11).
    #[prost(bool, repeated, tag = "11")]
    pub bool_val: Vec<bool>,
    /// `DT_COMPLEX128` values, real and imaginary parts interleaved
    /// (field 12).
    #[prost(double, repeated, tag = "12")]
    pub dcomplex_val: Vec<f64>,
    /// `DT_UINT32` values (field 16).
    #[prost(uint32, repeated, tag = "16")]
    pub uint32_val: Vec<u32>,
    /// `DT_UINT64` values (field 17).
    #[prost(uint64, repeated, tag = "17")]
    pub uint64_val: Vec<u64>,
    /// 8-bit float values, one byte each (field 18).
    #[prost(bytes = "vec", tag = "18")]
    pub float8_val: Vec<u8>,
}
