//! Spectra files (`*.esd.safetensors`, [`htsr_contracts::spectra`]): the eigenvalues a training process computed
//! itself, as a [`FileJob`] for the same atomic writer as the weights.

use std::collections::{BTreeMap, HashMap};

use htsr_contracts::spectra::{self, keys};

use crate::{Dtype, FileJob, TensorSnapshot};

pub use htsr_contracts::spectra::LayerSpectrum;

/// The spectra file of one step (of one rank when `rank` is `Some((r, w))` with w > 1). `metadata` holds the
/// checkpoint's `htsr.*` keys ([`crate::checkpoint_metadata`]); `assignment` maps every layer of the model to the
/// rank computing it (all ranks write the same).
pub fn spectra_job(
    step: u64,
    rank: Option<(usize, usize)>,
    layers: Vec<LayerSpectrum>,
    assignment: &BTreeMap<String, usize>,
    mut metadata: HashMap<String, String>,
) -> FileJob {
    metadata.insert(keys::KIND.into(), spectra::KIND_SPECTRA.into());
    metadata.insert(keys::FORMAT.into(), spectra::FORMAT_VERSION.to_string());
    let (r, w) = rank.unwrap_or((0, 1));
    metadata.insert(keys::RANK.into(), r.to_string());
    metadata.insert(keys::WORLD_SIZE.into(), w.to_string());
    if w > 1 {
        metadata.insert(
            keys::ASSIGNMENT.into(),
            serde_json::to_string(assignment).expect("a map of strings to numbers serializes"),
        );
    }
    let mut tensors = Vec::with_capacity(layers.len());
    for layer in layers {
        metadata.insert(
            format!("{}{}", keys::LAYER_PREFIX, layer.tensor),
            serde_json::to_string(&layer.meta).expect("a SpectrumMeta serializes"),
        );
        if layer.meta.skipped.is_some() || layer.meta.failed.is_some() {
            continue;
        }
        tensors.push(TensorSnapshot {
            shape: vec![layer.eigenvalues.len()],
            data: layer
                .eigenvalues
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            name: layer.tensor,
            dtype: Dtype::F64,
        });
    }
    FileJob {
        file_name: spectra::spectra_file_name(step, rank),
        metadata,
        tensors,
    }
}

/// The content hash a spectra file records per layer ([`htsr_contracts::spectra::SpectrumMeta::hash`]): blake3 over the dtype's name, the
/// shape (u64 little-endian each) and the raw bytes, as htsr-engine hashes a weight tensor for frozen-layer reuse.
pub fn content_hash<'a>(
    dtype: Dtype,
    shape: &[usize],
    bytes: impl IntoIterator<Item = &'a [u8]>,
) -> String {
    let mut h = blake3::Hasher::new();
    h.update(format!("{dtype:?}").as_bytes());
    for d in shape {
        h.update(&(*d as u64).to_le_bytes());
    }
    for chunk in bytes {
        h.update(chunk);
    }
    h.finalize().to_hex().to_string()
}
