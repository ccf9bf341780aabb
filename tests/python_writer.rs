//! Checkpoints written from Python with the `safetensors` package (as a PyTorch user's `save_file` of a state
//! dict would be: temp name, then `os.replace`), mixed dtypes and biases included, are watched and stored like
//! the hook's own: steps from `htsr.step`, every tensor once, the matrices analyzed; and pandas reads the CSV
//! export as is.

use std::process::Command;

use htsr_contracts::{CheckpointStatus, LayerStatus};
use htsr_e2e::{binary, run_ok, workspace_root};
use htsr_storage::Store;

const WRITER: &str = r#"
import os, sys
import numpy as np
from safetensors.numpy import save_file

run_dir = sys.argv[1]
os.makedirs(run_dir, exist_ok=True)
rng = np.random.default_rng(0)
w1 = rng.standard_normal((96, 48)).astype(np.float32) / np.sqrt(96)
w2 = rng.standard_normal((48, 24)).astype(np.float32) / np.sqrt(48)
for step in (10, 20, 30):
    w1 += 0.05 * np.outer(rng.standard_normal(96), rng.standard_normal(48)).astype(np.float32)
    tensors = {"encoder.layer1.weight": w1, "encoder.layer1.bias": np.zeros(96, np.float32),
               "encoder.layer2.weight": w2.astype(np.float16)}
    final = os.path.join(run_dir, f"model-{step:06d}.safetensors")
    tmp = os.path.join(run_dir, f".model-{step:06d}.safetensors.tmp")
    save_file(tensors, tmp, metadata={"htsr.step": str(step), "htsr.lr": "0.001"})
    os.replace(tmp, final)
"#;

#[test]
fn checkpoints_written_by_python_safetensors_are_watched() {
    let python = workspace_root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `bash scripts/setup` first",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        Command::new(&python)
            .args(["-c", WRITER])
            .arg(dir.path().join("pyrun")),
    );
    run_ok(
        Command::new(binary("htsr-watch"))
            .arg(dir.path())
            .args(["--headless", "--once"]),
    );
    let (store, _) = Store::open(dir.path().join(".htsr")).unwrap();
    let records = store.checkpoints("pyrun").unwrap();
    let steps: Vec<u64> = records.iter().map(|r| r.step).collect();
    assert_eq!(steps, [10, 20, 30]);
    for r in &records {
        assert_eq!(r.status, CheckpointStatus::Complete);
        assert_eq!(r.metadata["htsr.lr"], "0.001");
        let layers = store.layers_at("pyrun", r.step).unwrap();
        let mut names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            ["encoder.layer1", "encoder.layer1.bias", "encoder.layer2"]
        );
        for l in &layers {
            let expected = if l.name.ends_with("bias") {
                LayerStatus::Skipped
            } else {
                LayerStatus::Success
            };
            assert_eq!(
                l.status, expected,
                "{} at {}: {:?}",
                l.name, r.step, l.reason
            );
        }
        let f16 = layers.iter().find(|l| l.name == "encoder.layer2").unwrap();
        assert_eq!(f16.dtype, "F16");
    }
    // The weights of layer 2 never change: from the second checkpoint on, its report is reused.
    let last = store.layers_at("pyrun", 30).unwrap();
    let frozen = last.iter().find(|l| l.name == "encoder.layer2").unwrap();
    assert!(frozen.reused_from_step.is_some(), "{frozen:?}");
    drop(store);

    // pandas reads the export with no options: numbers as numbers, missing values as NaN, one row per layer.
    let csv = dir.path().join("history.csv");
    run_ok(
        Command::new(binary("htsr-watch"))
            .args(["export", "--format", "csv", "--db"])
            .arg(dir.path().join(".htsr"))
            .arg("-o")
            .arg(&csv),
    );
    let out = run_ok(Command::new(&python).args(["-c", PANDAS_READER]).arg(&csv));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 9");
}

const PANDAS_READER: &str = r#"
import sys
import pandas as pd
df = pd.read_csv(sys.argv[1])
assert len(df) == 9, len(df)
assert df["step"].dtype.kind == "i", df["step"].dtype
assert df["alpha"].dtype.kind == "f", df["alpha"].dtype
bias = df[df.name == "encoder.layer1.bias"]
assert bias["alpha"].isna().all() and (bias["status"] == "skipped").all()
fc = df[(df.name == "encoder.layer1") & (df.step == 30)]
assert fc["alpha"].iloc[0] > 1 and fc["phase"].iloc[0] in (
    "random_like", "bleeding_out", "bulk_plus_spikes", "bulk_decay", "heavy_tailed", "rank_collapse")
print("ok", len(df))
"#;
