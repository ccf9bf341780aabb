//! Spectra files (`*.esd.safetensors`): what a training process writes when it computes the eigenvalues itself, on
//! the device that holds the weights, instead of writing the weights. One definition for the writers (the tch hook,
//! the Python callbacks) and the daemon that reads them.
//!
//! A spectra file is a safetensors file. Each analyzed layer is one 1-D F64 tensor, named as the weight tensor it
//! was computed from (`fc1.weight`), holding the layer's pooled eigenvalues, ascending: exactly what htsr-engine
//! computes from the weights (lambda = squared singular values, no 1/N, Conv2D slices scaled by conv2d_norm, all
//! slices pooled). Its `__metadata__` holds the usual `htsr.*` keys of the checkpoint, [`keys::KIND`] =
//! [`KIND_SPECTRA`], and one [`keys::LAYER_PREFIX`]`<tensor>` entry per layer (analyzed or not) whose value is a
//! [`SpectrumMeta`] in JSON.
//!
//! With several ranks, each rank writes the layers assigned to it in its own file
//! (`step-<step>.rank-<r>-of-<w>.esd.safetensors`) and every rank's file carries the whole assignment
//! ([`keys::ASSIGNMENT`]), so that the daemon knows which layers a missing rank owed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::LayerKind;

/// One layer of a spectra file as a writer holds it: the weight tensor's name, its pooled eigenvalues (ascending;
/// empty when the layer has no spectrum) and what the file says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpectrum {
    /// The weight tensor's name in the checkpoint (`fc1.weight`), which the eigenvalue tensor is named after.
    pub tensor: String,
    /// The layer's pooled eigenvalues (squared singular values, no 1/N), ascending; empty without a spectrum.
    pub eigenvalues: Vec<f64>,
    /// What the file's metadata says about the layer.
    pub meta: SpectrumMeta,
}

/// `htsr.kind` of a spectra file.
pub const KIND_SPECTRA: &str = "spectra";
/// The version of this format.
pub const FORMAT_VERSION: u32 = 1;
/// The extension that makes a checkpoint a spectra file.
pub const SPECTRA_EXTENSION: &str = ".esd.safetensors";

/// Metadata keys of spectra files (besides the checkpoint keys of [`crate::naming::keys`]).
pub mod keys {
    /// `spectra` for a spectra file.
    pub const KIND: &str = "htsr.kind";
    /// The format version, [`super::FORMAT_VERSION`].
    pub const FORMAT: &str = "htsr.spectra.format";
    /// This file's rank (0-based) and the number of ranks.
    pub const RANK: &str = "htsr.rank";
    /// The number of ranks writing spectra files for the checkpoint (see [`RANK`]).
    pub const WORLD_SIZE: &str = "htsr.world_size";
    /// JSON object: tensor name -> rank that computes it, over every rank.
    pub const ASSIGNMENT: &str = "htsr.spectra.assignment";
    /// Prefix of each layer's [`super::SpectrumMeta`].
    pub const LAYER_PREFIX: &str = "htsr.spectrum.";
}

/// What a spectra file says about one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct SpectrumMeta {
    /// The weight tensor's shape and dtype, as the training process held it.
    pub shape: Vec<usize>,
    /// The weight tensor's dtype in safetensors' spelling (`F32`, `BF16`, ...).
    pub dtype: String,
    /// How the tensor was read as matrices (dense, conv1d, conv2d, other).
    pub kind: LayerKind,
    /// WeightWatcher's N and M (per slice) and rf (slices pooled).
    pub N: usize,
    /// Shorter side of each slice, min(rows, cols) (WeightWatcher `M`).
    pub M: usize,
    /// Number of slices pooled into the spectrum (WeightWatcher `rf`).
    pub rf: usize,
    /// WeightWatcher's `sv_min` (the largest of the per-slice smallest singular values) and `rank_loss` (summed over
    /// slices), which need the per-slice spectra that pooling loses.
    #[serde(with = "crate::floats::f64_json")]
    pub sv_min: f64,
    /// WeightWatcher's `rank_loss`: eigenvalues at or below each slice's numerical-zero level, summed over slices.
    pub rank_loss: usize,
    /// The precision the Gram matrix was accumulated in on the device: `f64`, or `f32` where the device's f64 is
    /// slow (the eigenvalues are stored as f64 either way).
    pub precision: String,
    /// blake3 of dtype, shape and the tensor's bytes (as htsr-engine hashes a weight tensor), for frozen-layer
    /// reuse; empty when the writer did not hash.
    #[serde(default)]
    pub hash: String,
    /// Why no eigenvalues were computed for a layer that is deliberately not analyzed (not a matrix, a size
    /// limit); the tensor is then absent.
    #[serde(default)]
    pub skipped: Option<String>,
    /// Why no eigenvalues could be computed for a layer that should have had them (NaN or infinite weights); the
    /// tensor is then absent.
    #[serde(default)]
    pub failed: Option<String>,
}

/// The file name of the spectra of `step`, for rank `rank` of `world` (None or a world of one: a single file).
pub fn spectra_file_name(step: u64, rank: Option<(usize, usize)>) -> String {
    match rank {
        Some((r, w)) if w > 1 => format!("step-{step:09}.rank-{r}-of-{w}{SPECTRA_EXTENSION}"),
        _ => format!("step-{step:09}{SPECTRA_EXTENSION}"),
    }
}

/// The name of rank `rank` of `world`'s file in the group whose shared name is `merged` (see [`merged_name`]).
pub fn rank_file_name(merged: &str, rank: usize, world: usize) -> String {
    let stem = merged.strip_suffix(SPECTRA_EXTENSION).unwrap_or(merged);
    format!("{stem}.rank-{rank}-of-{world}{SPECTRA_EXTENSION}")
}

/// True for a spectra file name (final or not: combine with [`crate::naming::is_checkpoint_name`]).
pub fn is_spectra_name(name: &str) -> bool {
    name.ends_with(SPECTRA_EXTENSION)
}

/// The (rank, world size) a rank file's name carries, e.g. `step-000000100.rank-1-of-4.esd.safetensors` -> (1, 4).
pub fn rank_of_name(name: &str) -> Option<(usize, usize)> {
    let stem = name.strip_suffix(SPECTRA_EXTENSION)?;
    let (_, rank) = stem.rsplit_once(".rank-")?;
    let (r, w) = rank.split_once("-of-")?;
    let (r, w): (usize, usize) = (r.parse().ok()?, w.parse().ok()?);
    (w > 0 && r < w).then_some((r, w))
}

/// The name shared by the rank files of one step: the name with its `.rank-R-of-W` part removed.
pub fn merged_name(name: &str) -> String {
    match (name.strip_suffix(SPECTRA_EXTENSION), rank_of_name(name)) {
        (Some(stem), Some(_)) => {
            let base = stem.rsplit_once(".rank-").map_or(stem, |(b, _)| b);
            format!("{base}{SPECTRA_EXTENSION}")
        }
        _ => name.to_string(),
    }
}

/// The weights file of the same step as the spectra file `name` (`mode = both` writes the two side by side):
/// `step-000000100.esd.safetensors` and its rank files -> `step-000000100.safetensors`. None for other names.
pub fn weights_name(name: &str) -> Option<String> {
    let merged = merged_name(name);
    let stem = merged.strip_suffix(SPECTRA_EXTENSION)?;
    Some(format!("{stem}{}", crate::naming::CHECKPOINT_EXTENSION))
}

/// Whether the checkpoint paths `a` and `b` (`/`-separated, as the store keeps them) are one checkpoint: the same
/// path, or the weights file and the spectra file(s) of one step in one directory. Such files are one checkpoint,
/// never two that claim the same run and step.
pub fn same_checkpoint(a: &str, b: &str) -> bool {
    fn as_weights(p: &str) -> String {
        let (dir, name) = p.rsplit_once('/').map_or(("", p), |(d, n)| (d, n));
        match weights_name(name) {
            Some(w) if dir.is_empty() => w,
            Some(w) => format!("{dir}/{w}"),
            None => p.to_string(),
        }
    }
    a == b || as_weights(a) == as_weights(b)
}

/// Layers to ranks, balanced by cost rather than count: each layer (with its cost) goes to the rank with the least
/// work so far, the costliest first (the longest-processing-time rule). Deterministic, so every rank computes the
/// same assignment without talking to the others.
pub fn assign_layers(costs: &[(String, f64)], world: usize) -> BTreeMap<String, usize> {
    let world = world.max(1);
    let mut order: Vec<&(String, f64)> = costs.iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut load = vec![0.0f64; world];
    let mut out = BTreeMap::new();
    for (name, cost) in order {
        let rank = (0..world)
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        load[rank] += cost;
        out.insert(name.clone(), rank);
    }
    out
}

/// The cost of a layer's spectrum on the Gram path: rf slices of an N x M product (N M^2) and an M x M
/// eigensolver (about 4/3 M^3 with eigenvalues only, counted as M^3).
pub fn spectrum_cost(n: usize, m: usize, rf: usize) -> f64 {
    let (n, m) = (n as f64, m as f64);
    rf as f64 * (n * m * m + m * m * m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_and_spectra_of_one_step_are_one_checkpoint() {
        assert_eq!(
            weights_name("step-000000100.esd.safetensors").as_deref(),
            Some("step-000000100.safetensors")
        );
        assert_eq!(
            weights_name("step-000000100.rank-1-of-4.esd.safetensors").as_deref(),
            Some("step-000000100.safetensors")
        );
        assert_eq!(weights_name("step-000000100.safetensors"), None);
        assert!(same_checkpoint(
            "r/step-000000010.safetensors",
            "r/step-000000010.esd.safetensors"
        ));
        assert!(same_checkpoint(
            "step-1.esd.safetensors",
            "step-1.safetensors"
        ));
        assert!(same_checkpoint("r/a.safetensors", "r/a.safetensors"));
        assert!(!same_checkpoint(
            "r/step-000000010.safetensors",
            "s/step-000000010.esd.safetensors"
        ));
        assert!(!same_checkpoint(
            "r/step-000000010.safetensors",
            "r/step-000000020.esd.safetensors"
        ));
        assert!(!same_checkpoint("r/a.safetensors", "r/b.safetensors"));
    }

    #[test]
    fn names_carry_step_and_rank() {
        assert_eq!(
            spectra_file_name(100, None),
            "step-000000100.esd.safetensors"
        );
        assert_eq!(
            spectra_file_name(100, Some((0, 1))),
            "step-000000100.esd.safetensors"
        );
        let n = spectra_file_name(7, Some((1, 4)));
        assert_eq!(n, "step-000000007.rank-1-of-4.esd.safetensors");
        assert_eq!(rank_of_name(&n), Some((1, 4)));
        assert_eq!(merged_name(&n), "step-000000007.esd.safetensors");
        assert_eq!(rank_file_name(&merged_name(&n), 1, 4), n);
        assert!(is_spectra_name(&n));
        assert_eq!(
            rank_of_name("step-000000007.rank-4-of-4.esd.safetensors"),
            None
        );
        assert_eq!(rank_of_name("step-000000007.esd.safetensors"), None);
        assert!(crate::naming::is_checkpoint_name(&n));
    }

    #[test]
    fn assignment_balances_cost_and_is_deterministic() {
        let costs: Vec<(String, f64)> = [
            ("big", 100.0),
            ("a", 30.0),
            ("b", 30.0),
            ("c", 30.0),
            ("d", 10.0),
        ]
        .iter()
        .map(|(n, c)| (n.to_string(), *c))
        .collect();
        let a = assign_layers(&costs, 2);
        assert_eq!(a, assign_layers(&costs, 2));
        let load = |r: usize| -> f64 {
            costs
                .iter()
                .filter(|(n, _)| a[n] == r)
                .map(|(_, c)| c)
                .sum()
        };
        assert_eq!(a["big"], 0);
        assert_eq!((load(0), load(1)), (100.0, 100.0));
        let one = assign_layers(&costs, 1);
        assert!(one.values().all(|&r| r == 0));
    }
}
