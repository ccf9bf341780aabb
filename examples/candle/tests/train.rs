//! The example trains and checkpoints: a short run writes the checkpoints its options ask for, each holding the
//! MLP's three weight matrices in PyTorch's layout. (This test also makes `cargo test` build the `candle-mlp`
//! binary that the end-to-end tests in `tests/frameworks.rs` run.)

use std::path::Path;
use std::process::Command;

#[test]
fn a_short_run_writes_the_checkpoints_it_asks_for() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.data/mnist1d");
    assert!(
        data.join("info.json").is_file(),
        "MNIST-1D is missing at {}: run `bash scripts/setup` first",
        data.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_candle-mlp"))
        .arg("--dir")
        .arg(dir.path())
        .args(["--run", "short", "--steps", "20", "--every", "10", "--data"])
        .arg(&data)
        .env_remove("HTSR_MODE")
        .env_remove("RANK")
        .env_remove("WORLD_SIZE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("short"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["step-000000010.safetensors", "step-000000020.safetensors"]
    );
    for file in &files {
        let bytes = std::fs::read(dir.path().join("short").join(file)).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut shapes: Vec<(String, Vec<usize>)> = st
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, view.shape().to_vec()))
            .collect();
        shapes.sort();
        assert_eq!(
            shapes,
            [
                ("fc1.weight".to_string(), vec![256, 40]),
                ("fc2.weight".to_string(), vec![256, 256]),
                ("fc3.weight".to_string(), vec![10, 256]),
            ],
            "{file}"
        );
    }
}
