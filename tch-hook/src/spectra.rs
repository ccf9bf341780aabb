//! Spectra mode: the eigenvalues of each layer computed inside the training process, exactly as htsr-engine would
//! compute them from the weights (lambda = squared singular values from the Gram matrix of the smaller side, Conv2D
//! and Conv1d slices as `MatrixPlan` cuts them, conv2d_norm, pooled; docs/ALGORITHMS.md sections 1-2), so that only
//! the eigenvalues leave the device.
//!
//! - A tensor on an accelerator: the Gram matrices and `linalg_eigvalsh` run on its device, on the training thread
//!   (the eigenvalues are small; the weights never cross the bus).
//! - A tensor on the CPU: the training thread takes the same snapshot as in weights mode and the writer thread
//!   computes the spectrum from it with htsr-engine, so a step waits no longer than it does for a weight checkpoint.

use htsr_contracts::LayerKind;
use htsr_engine::analyze::AnalyzeOptions;
use htsr_engine::checkpoint::MatrixPlan;
use htsr_engine::layer_spectrum;
use htsr_writer::{content_hash, Dtype, LayerSpectrum, TensorSnapshot};
use tch::{Device, Kind, Tensor};

/// The precision of the Gram matrix and the eigensolver on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpectraPrecision {
    /// float64, as htsr-engine computes (the default; parity with weights mode to rounding).
    #[default]
    F64,
    /// float32, for devices whose float64 is slow (consumer GPUs); recorded in the file.
    F32,
}

impl SpectraPrecision {
    fn name(self) -> &'static str {
        match self {
            SpectraPrecision::F64 => "f64",
            SpectraPrecision::F32 => "f32",
        }
    }
}

pub(crate) use htsr_engine::layer_spectrum::{no_spectrum, plan_for};

/// A layer deliberately not analyzed (not a matrix, a size limit), and why.
pub(crate) fn skipped(tensor: &str, shape: &[usize], dtype: &str, reason: String) -> LayerSpectrum {
    no_spectrum(tensor, shape, dtype, reason, false)
}

/// The spectrum of a CPU snapshot, computed by htsr-engine (on the writer thread).
pub(crate) fn from_snapshot(snap: &TensorSnapshot, opts: &AnalyzeOptions) -> LayerSpectrum {
    let hash = content_hash(snap.dtype, &snap.shape, [snap.data.as_slice()]);
    layer_spectrum::from_bytes(&snap.name, snap.dtype, &snap.shape, &snap.data, opts, hash)
}

/// The slices of `w` (on its device) as one `[rf, rows, cols]` tensor, as `MatrixPlan` reads them.
fn slices(w: &Tensor, shape: &[usize], plan: &MatrixPlan) -> Tensor {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    match plan.kind {
        LayerKind::Conv1d => w.permute([2, 0, 1]),
        LayerKind::Conv2d if plan.layout.slice_stride == 1 => {
            // PyTorch (out, in, kh, kw): slice p is [:, :, p] of (out, in, kh*kw).
            w.reshape([dims[0], dims[1], dims[2] * dims[3]])
                .permute([2, 0, 1])
        }
        // Keras (kh, kw, in, out): slice p is [p] of (kh*kw, in, out).
        LayerKind::Conv2d => w.reshape([dims[0] * dims[1], dims[2], dims[3]]),
        _ => w.unsqueeze(0),
    }
}

/// The spectrum of `t` computed on its own device: the Gram matrix of each slice's smaller side and its
/// eigenvalues (`linalg_eigvalsh`), batched over slices; only the eigenvalues are copied back.
pub(crate) fn on_device(
    name: &str,
    t: &Tensor,
    dtype: Dtype,
    opts: &AnalyzeOptions,
    precision: SpectraPrecision,
) -> Result<LayerSpectrum, tch::TchError> {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let dtype_name = format!("{dtype:?}");
    let plan = match plan_for(&shape, opts) {
        Ok(plan) => plan,
        Err(reason) => return Ok(skipped(name, &shape, &dtype_name, reason)),
    };
    let _guard = tch::no_grad_guard();
    let kind = match precision {
        SpectraPrecision::F64 => Kind::Double,
        SpectraPrecision::F32 => Kind::Float,
    };
    let w = t.detach().f_to_kind(kind)?;
    if !bool::try_from(w.f_isfinite()?.f_all()?)? {
        let nan = i64::try_from(w.f_isnan()?.f_sum(Kind::Int64)?)?;
        let inf = i64::try_from(w.f_isinf()?.f_sum(Kind::Int64)?)?;
        let reason = format!("weights contain {nan} NaN and {inf} infinite values");
        return Ok(no_spectrum(name, &shape, &dtype_name, reason, true));
    }
    let s = slices(&w, &shape, &plan).f_mul_scalar(plan.scale)?;
    // Samples along the larger side: the Gram matrix is features x features.
    let gram = if plan.cols <= plan.rows {
        s.f_transpose(1, 2)?.f_matmul(&s)?
    } else {
        s.f_matmul(&s.f_transpose(1, 2)?)?
    };
    let evals = gram
        .f_linalg_eigvalsh("L")?
        .f_clamp_min(0.0)?
        .f_to_kind(Kind::Double)?
        .f_to_device(Device::Cpu)?
        .f_contiguous()?;
    let mut flat = vec![0f64; plan.num_evals()];
    evals.f_copy_data(&mut flat, plan.num_evals())?;
    Ok(layer_spectrum::from_slices(
        name,
        &shape,
        &dtype_name,
        &flat,
        precision.name(),
        opts,
    ))
}
