//! The core on raw tensors: the same file as the tch hook's way of writing, selection by dimensions and name, and
//! parameters a framework cannot express in safetensors (left out of weights, listed as skipped in spectra).

use htsr_contracts::spectra::{keys, SpectrumMeta};
use htsr_hook_core::test_support::{
    assert_same_analysis, metadata, parity_layers, snapshots, tensors, write_as_tch_hook,
};
use htsr_hook_core::{
    BufferPool, HookCore, HookError, Mode, ParamSource, Select, Snapshot, StepInfo, StepOutcome,
    TensorSnapshot, Unsupported,
};

#[test]
fn raw_tensors_are_written_as_the_tch_hook_writes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = snapshots(&parity_layers(5));
    let reference = write_as_tch_hook(tmp.path(), "tch", 2, &raw);
    let mut hook = HookCore::builder()
        .dir(tmp.path())
        .run("core")
        .every(2)
        .build()
        .unwrap();
    assert_eq!(
        hook.step_with(1, raw.as_slice(), StepInfo::new()).unwrap(),
        StepOutcome::NotDue
    );
    assert_eq!(
        hook.step_with(2, raw.as_slice(), StepInfo::new()).unwrap(),
        StepOutcome::Queued
    );
    hook.finish().unwrap();
    let ours = tmp.path().join("core/step-000000002.safetensors");
    assert_eq!(tensors(&ours), tensors(&reference));
    assert_eq!(assert_same_analysis(&ours, &reference), 6);
}

/// A source holding one quantized parameter beside raw f32 tensors.
struct WithQuantized(Vec<TensorSnapshot>);

impl ParamSource for WithQuantized {
    fn shapes(&self, select: Select<'_>) -> Vec<(String, Vec<usize>)> {
        let mut s = self.0.as_slice().shapes(select);
        if select("q.weight", &[32, 16]) {
            s.push(("q.weight".into(), vec![32, 16]));
        }
        s
    }
    fn snapshot(
        &self,
        select: Select<'_>,
        buffers: &mut BufferPool,
    ) -> Result<Snapshot, HookError> {
        let mut s = self.0.as_slice().snapshot(select, buffers)?;
        if select("q.weight", &[32, 16]) {
            s.unsupported.push(Unsupported {
                name: "q.weight".into(),
                shape: vec![32, 16],
                dtype: "QFloat".into(),
            });
        }
        Ok(s)
    }
}

#[test]
fn unsupported_dtypes_are_left_out_of_weights_and_skipped_in_spectra() {
    let tmp = tempfile::tempdir().unwrap();
    let source = WithQuantized(snapshots(&parity_layers(6)));
    let mut hook = HookCore::builder()
        .dir(tmp.path())
        .run("q")
        .every(1)
        .mode(Mode::Both)
        .filter(|name| !name.starts_with("conv"))
        .build()
        .unwrap();
    hook.step_with(4, &source, StepInfo::new()).unwrap();
    hook.finish().unwrap();
    let dir = tmp.path().join("q");
    let names: Vec<String> = tensors(&dir.join("step-000000004.safetensors"))
        .into_keys()
        .collect();
    assert_eq!(
        names,
        [
            "blocks.0.fc.weight",
            "blocks.1.fc.weight",
            "fc1.weight",
            "head.weight"
        ],
        "2-D, passing the filter, the quantized one left out"
    );
    let meta = metadata(&dir.join("step-000000004.esd.safetensors"));
    let q: SpectrumMeta =
        serde_json::from_str(&meta[&format!("{}q.weight", keys::LAYER_PREFIX)]).unwrap();
    assert!(q.skipped.as_deref().unwrap().contains("QFloat"), "{q:?}");
    assert!(!meta.contains_key(&format!("{}conv1.weight", keys::LAYER_PREFIX)));
}
