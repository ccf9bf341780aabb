//! The layers of a spectra file as a training process produces them (the tch hook, the Python callbacks): the
//! same plan, size filters and pooling rule as a weight file read by [`crate::analyze_checkpoint`], so that a
//! spectra file holds exactly the eigenvalues htsr-engine would compute from the weights.

use htsr_contracts::spectra::{LayerSpectrum, SpectrumMeta};
use htsr_contracts::LayerKind;
use safetensors::Dtype;

use crate::analyze::{size_filter, tensor_spectrum, AnalyzeOptions};
use crate::checkpoint::MatrixPlan;
use crate::spectrum::eigen::{zero_threshold, PooledSpectrum};
use crate::spectrum::EigenMethod;

/// How a tensor of `shape` is read as matrices, under the size limits of `limits` (WeightWatcher's `min_evals`,
/// `max_evals`, `max_N`); Err is why it gets no spectrum.
pub fn plan_for(shape: &[usize], limits: &AnalyzeOptions) -> Result<MatrixPlan, String> {
    let plan = MatrixPlan::for_shape(shape)?;
    size_filter(&plan, limits)?;
    Ok(plan)
}

/// A layer with no eigenvalues, and why: deliberately not analyzed (`failed` false: not a matrix, a size limit)
/// or unusable (`failed` true: NaN or infinite weights).
pub fn no_spectrum(
    tensor: &str,
    shape: &[usize],
    dtype: &str,
    reason: String,
    failed: bool,
) -> LayerSpectrum {
    let (skipped, failed) = if failed {
        (None, Some(reason))
    } else {
        (Some(reason), None)
    };
    LayerSpectrum {
        tensor: tensor.to_string(),
        eigenvalues: Vec::new(),
        meta: SpectrumMeta {
            shape: shape.to_vec(),
            dtype: dtype.to_string(),
            kind: MatrixPlan::for_shape(shape).map_or(LayerKind::Other, |p| p.kind),
            N: 0,
            M: 0,
            rf: 0,
            sv_min: f64::NAN,
            rank_loss: 0,
            precision: String::new(),
            hash: String::new(),
            skipped,
            failed,
        },
    }
}

fn with_spectrum(
    tensor: &str,
    shape: &[usize],
    dtype: &str,
    plan: &MatrixPlan,
    pooled: PooledSpectrum,
    precision: &str,
    hash: String,
) -> LayerSpectrum {
    LayerSpectrum {
        tensor: tensor.to_string(),
        meta: SpectrumMeta {
            shape: shape.to_vec(),
            dtype: dtype.to_string(),
            kind: plan.kind,
            N: plan.n(),
            M: plan.m(),
            rf: plan.slices,
            sv_min: pooled.sv_min,
            rank_loss: pooled.rank_loss,
            precision: precision.to_string(),
            hash,
            skipped: None,
            failed: None,
        },
        eigenvalues: pooled.evals,
    }
}

/// The spectrum of a tensor held as raw little-endian `bytes` (a CPU snapshot of the weights), computed here in
/// float64 on the Gram path, as [`crate::analyze::analyze_tensor`] computes it from a file. `hash` is the content
/// hash the file records (the writer's `content_hash` of the same bytes).
pub fn from_bytes(
    tensor: &str,
    dtype: Dtype,
    shape: &[usize],
    bytes: &[u8],
    limits: &AnalyzeOptions,
    hash: String,
) -> LayerSpectrum {
    let dtype_name = format!("{dtype:?}");
    if let Err(reason) = plan_for(shape, limits) {
        return no_spectrum(tensor, shape, &dtype_name, reason, false);
    }
    match tensor_spectrum(dtype, shape, bytes, EigenMethod::Gram) {
        Ok((pooled, plan)) => with_spectrum(tensor, shape, &dtype_name, &plan, pooled, "f64", hash),
        // The plan was fine: what is left is the bytes or the weights themselves (a short buffer, NaN).
        Err(reason) => no_spectrum(tensor, shape, &dtype_name, reason, true),
    }
}

/// A layer from eigenvalues computed elsewhere (on the training process's device), one row of M per slice in the
/// order of the tensor's [`MatrixPlan`], `slices * M` values in all: checked (count, finite, non-negative), then
/// pooled ascending with `sv_min` (the largest per-slice smallest singular value) and `rank_loss` (per slice, the
/// eigenvalues under the Gram path's zero threshold of that slice's lambda_max), htsr-engine's
/// `pooled_eigenvalues` rule. `precision` names the device arithmetic (`f64`, `f32`).
pub fn from_slices(
    tensor: &str,
    shape: &[usize],
    dtype: &str,
    evals: &[f64],
    precision: &str,
    limits: &AnalyzeOptions,
) -> LayerSpectrum {
    let plan = match plan_for(shape, limits) {
        Ok(plan) => plan,
        Err(reason) => return no_spectrum(tensor, shape, dtype, reason, false),
    };
    let m = plan.m();
    if evals.len() != plan.slices * m {
        let reason = format!(
            "{} eigenvalues computed on the device, expected {} slices x M={}",
            evals.len(),
            plan.slices,
            m
        );
        return no_spectrum(tensor, shape, dtype, reason, true);
    }
    if let Some(bad) = evals.iter().find(|v| !v.is_finite() || **v < 0.0) {
        let reason = format!("eigenvalue {bad} computed on the device: not a spectrum of W^T W");
        return no_spectrum(tensor, shape, dtype, reason, true);
    }
    let (mut sv_min, mut rank_loss) = (0.0f64, 0usize);
    for slice in evals.chunks(m) {
        let max = slice.iter().copied().fold(0.0, f64::max);
        let min = slice.iter().copied().fold(f64::INFINITY, f64::min);
        sv_min = sv_min.max(min.sqrt());
        let zero = zero_threshold(max, plan.n(), EigenMethod::Gram);
        rank_loss += slice.iter().filter(|&&l| l <= zero).count();
    }
    let mut flat = evals.to_vec();
    flat.sort_by(f64::total_cmp);
    let pooled = PooledSpectrum {
        evals: flat,
        sv_min,
        rank_loss,
    };
    with_spectrum(
        tensor,
        shape,
        dtype,
        &plan,
        pooled,
        precision,
        String::new(),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` deterministic pseudo-random f32 values in [-0.5, 0.5), as little-endian bytes.
    pub(crate) fn f32_bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..n)
            .flat_map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32).to_le_bytes()
            })
            .collect()
    }

    #[test]
    fn eigenvalues_from_slices_pool_as_the_engine_does() {
        let bytes = f32_bytes(40 * 24, 3);
        let limits = AnalyzeOptions::default();
        let engine = from_bytes("w", Dtype::F32, &[40, 24], &bytes, &limits, "h".into());
        assert_eq!(engine.meta.hash, "h");
        assert_eq!(engine.eigenvalues.len(), 24);
        // The same eigenvalues, unsorted as a device returns them per slice: the same layer.
        let mut shuffled = engine.eigenvalues.clone();
        shuffled.reverse();
        let device = from_slices("w", &[40, 24], "F32", &shuffled, "f64", &limits);
        assert_eq!(device.eigenvalues, engine.eigenvalues);
        assert_eq!(
            (device.meta.N, device.meta.M, device.meta.rf),
            (engine.meta.N, engine.meta.M, engine.meta.rf)
        );
        assert_eq!(device.meta.rank_loss, engine.meta.rank_loss);
        assert_eq!(device.meta.sv_min, engine.meta.sv_min);
    }

    #[test]
    fn bad_device_eigenvalues_and_unusable_shapes_say_why() {
        let limits = AnalyzeOptions::default();
        let short = from_slices("w", &[40, 24], "F32", &[1.0; 23], "f64", &limits);
        assert!(short
            .meta
            .failed
            .as_deref()
            .unwrap()
            .contains("expected 1 slices x M=24"));
        let mut evals = vec![1.0; 24];
        evals[5] = -0.5;
        let negative = from_slices("w", &[40, 24], "F32", &evals, "f64", &limits);
        assert!(negative.meta.failed.unwrap().contains("-0.5"));
        let bias = from_slices("b", &[40], "F32", &[], "f64", &limits);
        assert!(bias.meta.skipped.is_some() && bias.meta.failed.is_none());
        let nan = from_bytes(
            "w",
            Dtype::F32,
            &[2, 8],
            &[0xff; 64],
            &limits,
            String::new(),
        );
        assert!(nan.meta.skipped.is_some(), "2x8 is below min_evals");
        let mut bytes = f32_bytes(40 * 24, 1);
        bytes[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        let nan = from_bytes("w", Dtype::F32, &[40, 24], &bytes, &limits, String::new());
        assert!(nan.meta.failed.unwrap().contains("NaN"));
    }
}
