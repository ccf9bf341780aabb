//! Reading checkpoints: safetensors files and Hugging Face sharded directories, read with positioned reads (never
//! memory-mapped, so a file another process rewrites cannot fault the reader), and turning their tensors into the
//! matrices the spectrum is computed from.

mod dtype;
mod error;
mod header;
mod matrices;
mod reader;
mod source;

pub use dtype::{decode_into, is_integer_or_bool, ElementType};
pub use error::CheckpointError;
pub use header::{
    mtime_ns, probe_file, probe_open_file, Header, HeaderProbe, HeaderTensor, MAX_HEADER_LEN,
};
pub use htsr_contracts::naming::SHARD_INDEX_FILE;
pub use matrices::{MatrixPlan, SliceLayout};
pub use reader::{
    parse_shard_index, sharded_fingerprint, Checkpoint, Fingerprint, ShardIndex, TensorEntry,
};
pub use source::TensorSource;
