//! Analysis from spectra files (`*.esd.safetensors`, see [`htsr_contracts::spectra`]): the eigenvalues a training
//! process computed itself, on the device that holds the weights, fitted and classified exactly as eigenvalues this
//! engine computed from weights would be. Several rank files of one step are one checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use htsr_contracts::spectra::{self, keys, SpectrumMeta};
use htsr_contracts::{LayerReport, LayerStatus};
use safetensors::Dtype;

use crate::analyze::{
    finish, layer_name, size_filter, unanalyzed, wanted, AnalyzeOptions, CheckpointAnalysis,
    LayerAnalysis,
};
use crate::checkpoint::{decode_into, Checkpoint, CheckpointError, ElementType, MatrixPlan};
use crate::spectrum::eigen::PooledSpectrum;
use crate::spectrum::{analyze_eigenvalues, LayerShape};

/// True when a checkpoint's metadata says it is a spectra file.
pub fn is_spectra(metadata: &BTreeMap<String, String>) -> bool {
    metadata.get(keys::KIND).map(String::as_str) == Some(spectra::KIND_SPECTRA)
}

/// One opened spectra file with its rank.
struct RankFile {
    checkpoint: Checkpoint,
    rank: usize,
    world: usize,
}

fn rank_of(checkpoint: &Checkpoint) -> Result<(usize, usize), CheckpointError> {
    let meta = checkpoint.metadata();
    let num = |key: &str, default: usize| -> Result<usize, CheckpointError> {
        match meta.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                CheckpointError::invalid(checkpoint.path(), format!("{key} is {v:?}, not a number"))
            }),
        }
    };
    let (rank, world) = (num(keys::RANK, 0)?, num(keys::WORLD_SIZE, 1)?);
    if world == 0 || rank >= world {
        return Err(CheckpointError::invalid(
            checkpoint.path(),
            format!("rank {rank} of {world} is not a rank"),
        ));
    }
    Ok((rank, world))
}

/// Analyzes the spectra files `paths` of one step (one file, or the rank files of a multi-rank run) as one
/// checkpoint. With `world` set, layers that the assignment gives to a rank with no file among `paths` are
/// reported as [`LayerStatus::Missing`]. Reports are sorted by tensor name (every writer sorts its layers so).
pub fn analyze_spectra(
    paths: &[PathBuf],
    opts: &AnalyzeOptions,
    world: Option<usize>,
) -> Result<CheckpointAnalysis, CheckpointError> {
    let started = Instant::now();
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let checkpoint = Checkpoint::open(path)?;
        if !is_spectra(checkpoint.metadata()) {
            return Err(CheckpointError::invalid(
                path,
                format!(
                    "not a spectra file ({} is not {:?})",
                    keys::KIND,
                    spectra::KIND_SPECTRA
                ),
            ));
        }
        let (rank, w) = rank_of(&checkpoint)?;
        files.push(RankFile {
            checkpoint,
            rank,
            world: w,
        });
    }
    files.sort_by_key(|f| f.rank);
    let world = world
        .or_else(|| files.first().map(|f| f.world))
        .unwrap_or(1);
    if let Some(f) = files.iter().find(|f| f.world != world) {
        return Err(CheckpointError::invalid(
            f.checkpoint.path(),
            format!("rank file of a world of {}, expected {world}", f.world),
        ));
    }
    let mut metadata = BTreeMap::new();
    let mut layers: Vec<LayerAnalysis> = Vec::new();
    let mut assignment: BTreeMap<String, usize> = BTreeMap::new();
    for f in &files {
        let meta = f.checkpoint.metadata();
        for (k, v) in meta {
            if !k.starts_with(keys::LAYER_PREFIX) {
                metadata.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if let Some(a) = meta.get(keys::ASSIGNMENT) {
            let a: BTreeMap<String, usize> = serde_json::from_str(a).map_err(|e| {
                CheckpointError::invalid(f.checkpoint.path(), format!("{}: {e}", keys::ASSIGNMENT))
            })?;
            assignment.extend(a);
        }
        layers.extend(rank_layers(f, opts)?);
    }
    for f in &files {
        f.checkpoint.check_unchanged()?;
    }
    let present: BTreeSet<usize> = files.iter().map(|f| f.rank).collect();
    for (tensor, rank) in &assignment {
        if present.contains(rank) || !wanted(opts, tensor) {
            continue;
        }
        let mut report = LayerReport::unanalyzed(layer_name(tensor), tensor, &[], "");
        report.status = LayerStatus::Missing;
        report.reason = Some(format!(
            "owed by rank {rank} of {world}, whose spectra file had not arrived when the daemon gave up waiting"
        ));
        layers.push(LayerAnalysis {
            report,
            eigenvalues: None,
        });
    }
    layers.sort_by(|a, b| a.report.tensor.cmp(&b.report.tensor));
    // Numbered as the weights file of the same step would be: every layer the ranks describe or owe, sorted.
    let mut all: BTreeSet<String> = assignment.keys().cloned().collect();
    all.extend(layers.iter().map(|l| l.report.tensor.clone()));
    let order: Vec<&str> = all.iter().map(String::as_str).collect();
    crate::analyze::number_layers(layers.iter_mut().map(|l| &mut l.report), &order);
    metadata.remove(keys::RANK);
    Ok(CheckpointAnalysis {
        path: paths.first().cloned().unwrap_or_default(),
        metadata,
        layers,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The layers of one spectra file.
fn rank_layers(f: &RankFile, opts: &AnalyzeOptions) -> Result<Vec<LayerAnalysis>, CheckpointError> {
    let checkpoint = &f.checkpoint;
    let mut out = Vec::new();
    let mut raw = Vec::new();
    for (key, value) in checkpoint.metadata() {
        let Some(tensor) = key.strip_prefix(keys::LAYER_PREFIX) else {
            continue;
        };
        if !wanted(opts, tensor) {
            continue;
        }
        let started = Instant::now();
        let meta: SpectrumMeta = serde_json::from_str(value)
            .map_err(|e| CheckpointError::invalid(checkpoint.path(), format!("{key}: {e}")))?;
        let mut report =
            LayerReport::unanalyzed(layer_name(tensor), tensor, &meta.shape, &meta.dtype);
        report.layer_type = meta.kind;
        if let Some(reason) = &meta.skipped {
            out.push(unanalyzed(
                report,
                LayerStatus::Skipped,
                reason.clone(),
                started,
            ));
            continue;
        }
        if let Some(reason) = &meta.failed {
            out.push(unanalyzed(
                report,
                LayerStatus::Failed,
                reason.clone(),
                started,
            ));
            continue;
        }
        // The size filters apply as they would to the weights (the writer may have computed more).
        if let Ok(plan) = MatrixPlan::for_shape(&meta.shape) {
            if let Err(reason) = size_filter(&plan, opts) {
                out.push(unanalyzed(report, LayerStatus::Skipped, reason, started));
                continue;
            }
        }
        let entry = checkpoint
            .tensors()
            .iter()
            .find(|t| t.name == tensor)
            .ok_or_else(|| {
                CheckpointError::invalid(
                    checkpoint.path(),
                    format!(
                        "layer {tensor:?} is described but its eigenvalues are not in the file"
                    ),
                )
            })?;
        let want = meta.M * meta.rf;
        if entry.dtype != Dtype::F64 || entry.shape != [want] {
            let reason = format!(
                "its eigenvalues are {:?} {:?}, expected F64 [{want}] (M={} x rf={})",
                entry.dtype, entry.shape, meta.M, meta.rf
            );
            out.push(unanalyzed(report, LayerStatus::Failed, reason, started));
            continue;
        }
        checkpoint.read_tensor(entry, &mut raw)?;
        let mut evals = Vec::with_capacity(want);
        decode_into(ElementType::F64, &raw, &mut evals);
        if let Some(bad) = evals.iter().find(|v| !v.is_finite() || **v < 0.0) {
            let reason = format!("its eigenvalues include {bad}: not a spectrum of W^T W");
            out.push(unanalyzed(report, LayerStatus::Failed, reason, started));
            continue;
        }
        evals.sort_by(f64::total_cmp);
        let pooled = PooledSpectrum {
            evals,
            sv_min: meta.sv_min,
            rank_loss: meta.rank_loss,
        };
        let shape = LayerShape {
            n: meta.N,
            m: meta.M,
            rf: meta.rf,
        };
        let analysis = analyze_eigenvalues(pooled, shape, &opts.spectrum);
        out.push(finish(report, analysis, opts, started));
    }
    Ok(out)
}
