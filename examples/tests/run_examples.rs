//! Runs the example binaries end to end (small settings) on the MNIST-1D data that `scripts/setup` generates.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use safetensors::SafeTensors;

fn files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn metadata(path: &Path) -> std::collections::HashMap<String, String> {
    let bytes = fs::read(path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    header.metadata().clone().unwrap()
}

#[test]
fn the_mlp_example_writes_checkpoints_and_prints_the_watch_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mlp"))
        .args(["--steps", "40", "--every", "10", "--run", "t", "--dir"])
        .arg(tmp.path())
        .env_remove("HTSR_DIR")
        .env_remove("HTSR_RUN")
        .env_remove("HTSR_EVERY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("htsr-watch {}", tmp.path().display())),
        "{stdout}"
    );
    assert!(stdout.contains("test accuracy"), "{stdout}");
    let want: BTreeSet<String> = [10, 20, 30, 40]
        .iter()
        .map(|s| format!("step-{s:09}.safetensors"))
        .collect();
    assert_eq!(files(&tmp.path().join("t")), want);
    let meta = metadata(&tmp.path().join("t/step-000000040.safetensors"));
    assert_eq!(meta["htsr.step"], "40");
    assert_eq!(meta["htsr.batch_size"], "64");
}

#[test]
fn the_batch_sweep_writes_one_run_per_batch_size_with_its_batch_size() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_batch_sweep"))
        .args([
            "--epochs",
            "2",
            "--train-samples",
            "512",
            "--batch-sizes",
            "64,256",
        ])
        .args(["--channels", "4,8", "--fc", "24,12", "--dir"])
        .arg(tmp.path())
        .env_remove("HTSR_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("| 64 | 16 |") && stdout.contains("| 256 | 4 |"),
        "{stdout}"
    );
    assert_eq!(
        files(tmp.path()),
        ["bs-256", "bs-64"].into_iter().map(String::from).collect()
    );
    for (bs, steps) in [(64, [0, 8, 16]), (256, [0, 2, 4])] {
        let run = tmp.path().join(format!("bs-{bs}"));
        let want: BTreeSet<String> = steps
            .iter()
            .map(|s| format!("step-{s:09}.safetensors"))
            .collect();
        assert_eq!(files(&run), want, "initialisation and two epoch ends");
        let last = run.join(format!("step-{:09}.safetensors", steps[2]));
        let meta = metadata(&last);
        assert_eq!(meta["htsr.batch_size"], bs.to_string());
        assert_eq!(meta["htsr.epoch"], "2");
        assert_eq!(meta["htsr.model"], "minialexnet1d");
        let bytes = fs::read(&last).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("fc1.weight").unwrap().shape(), [24, 8 * 10]);
        assert_eq!(st.tensor("fc2.weight").unwrap().shape(), [12, 24]);
        assert_eq!(st.tensor("conv2.weight").unwrap().shape(), [8, 4, 5]);
    }
}
