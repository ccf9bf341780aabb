//! Layers the caller holds in memory instead of in a file (the Python package's torch tensors and numpy arrays), and
//! eigenvalues the caller computed elsewhere: the same checks, plan, fits and report as [`crate::analyze::analyze_tensor`]
//! gives the same tensor read from a safetensors file.

use std::time::Instant;

use htsr_contracts::{LayerKind, LayerReport, LayerStatus};
use safetensors::Dtype;

use crate::analyze::{
    analyze_planned, finish, layer_name, unanalyzed, AnalyzeOptions, LayerAnalysis,
};
use crate::checkpoint::{is_integer_or_bool, ElementType, MatrixPlan, TensorSource};
use crate::spectrum::eigen::PooledSpectrum;
use crate::spectrum::{analyze_eigenvalues, LayerShape};

/// Analyzes the tensor `tensor` held as its raw little-endian bytes in `dtype`, of this `shape` (row-major): the
/// report [`crate::analyze::analyze_tensor`] gives the same tensor in a file, number for number. Integer tensors and shapes
/// that are not layers are skipped, an undecodable dtype or a byte count that does not match the shape fails, as
/// reports with their reason.
pub fn analyze_bytes(
    tensor: &str,
    dtype: Dtype,
    shape: &[usize],
    bytes: &[u8],
    opts: &AnalyzeOptions,
) -> LayerAnalysis {
    let started = Instant::now();
    let dtype_name = format!("{dtype:?}");
    let report = || LayerReport::unanalyzed(layer_name(tensor), tensor, shape, &dtype_name);
    if is_integer_or_bool(dtype) {
        let reason = format!("{dtype:?} tensor: integer and bool tensors hold no weights");
        return unanalyzed(report(), LayerStatus::Skipped, reason, started);
    }
    let Some(element) = ElementType::from_dtype(dtype) else {
        let reason = format!("unsupported dtype {dtype:?} (htsr reads F32, F16, BF16 and F64)");
        return unanalyzed(report(), LayerStatus::Failed, reason, started);
    };
    let plan = match MatrixPlan::for_shape(shape) {
        Ok(plan) => plan,
        Err(reason) => return unanalyzed(report(), LayerStatus::Skipped, reason, started),
    };
    let expected = shape.iter().product::<usize>() * element.size();
    if bytes.len() != expected {
        let reason = format!(
            "{} bytes for shape {shape:?} of {dtype:?}, expected {expected}",
            bytes.len()
        );
        return unanalyzed(report(), LayerStatus::Failed, reason, started);
    }
    let source = TensorSource::from_bytes(bytes, element, &plan);
    // Memory reads cannot fail and there is no cancel flag; should that ever change, the error becomes the
    // layer's reason rather than a panic in the caller's process.
    let opts = AnalyzeOptions {
        cancel: None,
        ..opts.clone()
    };
    analyze_planned(report(), &plan, &source, &opts, started)
        .unwrap_or_else(|e| unanalyzed(report(), LayerStatus::Failed, e.to_string(), started))
}

/// Analyzes a pooled spectrum computed elsewhere (eigenvalues a user brings, or a training process computed) as
/// the layer `tensor` of weight `shape` (empty when unknown), `dtype` and `kind`: fits, metrics, phase and report
/// exactly as for eigenvalues htsr-engine computed itself. `pooled.evals` must be ascending, finite and
/// non-negative (the caller validates them); the size filters are not applied.
pub fn analyze_pooled(
    tensor: &str,
    shape: &[usize],
    dtype: &str,
    kind: LayerKind,
    pooled: PooledSpectrum,
    layer_shape: LayerShape,
    opts: &AnalyzeOptions,
) -> LayerAnalysis {
    let started = Instant::now();
    let mut report = LayerReport::unanalyzed(layer_name(tensor), tensor, shape, dtype);
    report.layer_type = kind;
    let analysis = analyze_eigenvalues(pooled, layer_shape, &opts.spectrum);
    finish(report, analysis, opts, started)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;

    /// A deterministic tensor of `shape`, as f32 bytes.
    fn tensor(shape: &[usize]) -> Vec<u8> {
        crate::layer_spectrum::tests::f32_bytes(shape.iter().product(), 7)
    }

    #[test]
    fn memory_and_file_give_the_same_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let shapes: [(&str, Vec<usize>); 3] = [
            ("conv.weight", vec![16, 8, 3, 3]),
            ("fc.weight", vec![120, 40]),
            ("c1.weight", vec![12, 6, 5]),
        ];
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = shapes
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone(), tensor(s)))
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
            .iter()
            .map(|(n, s, b)| {
                let v = safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b).unwrap();
                (n.clone(), v)
            })
            .collect();
        safetensors::tensor::serialize_to_file(views, None, &path).unwrap();
        let opts = AnalyzeOptions {
            spectrum: crate::SpectrumOptions {
                randomize_seed: Some(3),
                ..Default::default()
            },
            ..AnalyzeOptions::default()
        };
        let checkpoint = Checkpoint::open(&path).unwrap();
        for (name, shape, bytes) in &data {
            let entry = checkpoint
                .tensors()
                .iter()
                .find(|t| &t.name == name)
                .unwrap();
            let mut from_file = crate::analyze::analyze_tensor(&checkpoint, entry, &opts).unwrap();
            let mut from_memory = analyze_bytes(name, Dtype::F32, shape, bytes, &opts);
            from_file.report.seconds = 0.0;
            from_memory.report.seconds = 0.0;
            // Debug text rather than ==: NaN fields (an edge mass with no spikes) are equal there.
            assert_eq!(
                format!("{:?}", from_file.report),
                format!("{:?}", from_memory.report),
                "{name}"
            );
            assert_eq!(from_file.eigenvalues, from_memory.eigenvalues, "{name}");
        }
    }

    #[test]
    fn bad_inputs_become_reports() {
        let opts = AnalyzeOptions::default();
        let r = analyze_bytes("ids", Dtype::I64, &[4, 4], &[0; 128], &opts).report;
        assert_eq!(r.status, LayerStatus::Skipped);
        let r = analyze_bytes("b", Dtype::F32, &[10], &[0; 40], &opts).report;
        assert_eq!(r.status, LayerStatus::Skipped);
        let r = analyze_bytes("w", Dtype::F32, &[10, 10], &[0; 12], &opts).report;
        assert_eq!(r.status, LayerStatus::Failed);
        assert!(r.reason.unwrap().contains("12 bytes"));
    }

    #[test]
    fn pooled_eigenvalues_are_analyzed_as_computed_ones() {
        let shape = [200usize, 50];
        let bytes = tensor(&shape);
        let opts = AnalyzeOptions::default();
        let from_weights = analyze_bytes("w", Dtype::F32, &shape, &bytes, &opts);
        let (pooled, plan) =
            crate::analyze::tensor_spectrum(Dtype::F32, &shape, &bytes, crate::EigenMethod::Gram)
                .unwrap();
        let layer_shape = LayerShape {
            n: plan.n(),
            m: plan.m(),
            rf: plan.slices,
        };
        let mut from_evals =
            analyze_pooled("w", &shape, "F32", plan.kind, pooled, layer_shape, &opts);
        let mut expected = from_weights.report;
        expected.seconds = 0.0;
        from_evals.report.seconds = 0.0;
        assert_eq!(format!("{:?}", from_evals.report), format!("{expected:?}"));
    }
}
