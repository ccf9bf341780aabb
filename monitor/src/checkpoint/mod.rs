//! Reading checkpoints: safetensors files (memory-mapped) and Hugging Face sharded directories, and turning
//! their tensors into the matrices the spectrum is computed from.

mod dtype;
mod error;
mod matrices;
mod probe;
mod reader;

pub use dtype::{decode_into, is_integer_or_bool, ElementType};
pub use error::CheckpointError;
pub use matrices::{MatrixPlan, SliceLayout};
pub use probe::{probe_file, HeaderProbe};
pub use reader::{Checkpoint, TensorEntry, SHARD_INDEX_FILE};
