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

fn batch_sweep(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_batch_sweep"))
        .args([
            "--epochs",
            "2",
            "--checkpoint-epochs",
            "1",
            "--patience",
            "0",
            "--train-samples",
            "512",
            "--batch-sizes",
            "64,256",
            "--seeds",
            "0,1",
        ])
        .args(["--channels", "4,8", "--fc", "24,12", "--dir"])
        .arg(dir)
        .env_remove("HTSR_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_batch_sweep_writes_one_run_per_batch_size_and_seed_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let stdout = batch_sweep(tmp.path());
    assert!(
        stdout.contains("| 64 | 0 | 2 | 16 |") && stdout.contains("| 256 | 1 | 2 | 4 |"),
        "{stdout}"
    );
    let runs = [
        "bs-256-seed-0",
        "bs-256-seed-1",
        "bs-64-seed-0",
        "bs-64-seed-1",
    ];
    assert_eq!(
        files(tmp.path()),
        runs.into_iter().map(String::from).collect()
    );
    for (bs, steps) in [(64, [0, 8, 16]), (256, [0, 2, 4])] {
        for seed in [0, 1] {
            let run = tmp.path().join(format!("bs-{bs}-seed-{seed}"));
            let mut want: BTreeSet<String> = steps
                .iter()
                .map(|s| format!("step-{s:09}.safetensors"))
                .collect();
            want.insert("result.json".into());
            assert_eq!(files(&run), want, "initialisation, two epoch ends, result");
            let last = run.join(format!("step-{:09}.safetensors", steps[2]));
            let meta = metadata(&last);
            assert_eq!(meta["htsr.batch_size"], bs.to_string());
            assert_eq!(meta["htsr.seed"], seed.to_string());
            assert_eq!(meta["htsr.epoch"], "2");
            assert_eq!(meta["htsr.model"], "minialexnet1d");
            let bytes = fs::read(&last).unwrap();
            let st = SafeTensors::deserialize(&bytes).unwrap();
            assert_eq!(st.tensor("fc1.weight").unwrap().shape(), [24, 8 * 10]);
            assert_eq!(st.tensor("fc2.weight").unwrap().shape(), [12, 24]);
            assert_eq!(st.tensor("conv2.weight").unwrap().shape(), [8, 4, 5]);
            let result: serde_json::Value =
                serde_json::from_slice(&fs::read(run.join("result.json")).unwrap()).unwrap();
            assert_eq!(result["batch_size"], bs);
            assert_eq!(result["steps"], steps[2]);
        }
    }
    // Seeds differ, the same seed repeats.
    let fc1 = |run: &str| {
        let bytes = fs::read(tmp.path().join(run).join("step-000000000.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        st.tensor("fc1.weight").unwrap().data().to_vec()
    };
    assert_eq!(fc1("bs-64-seed-0"), fc1("bs-256-seed-0"));
    assert_ne!(fc1("bs-64-seed-0"), fc1("bs-64-seed-1"));

    // Run again: finished runs are kept as they are; an unfinished one (no result.json) is trained again.
    let kept = fs::read(tmp.path().join("bs-64-seed-0/step-000000016.safetensors")).unwrap();
    fs::remove_file(tmp.path().join("bs-256-seed-1/result.json")).unwrap();
    fs::write(
        tmp.path().join("bs-256-seed-1/step-000000099.safetensors"),
        b"stale",
    )
    .unwrap();
    let stdout = batch_sweep(tmp.path());
    assert_eq!(
        stdout.matches("finished earlier, kept").count(),
        3,
        "{stdout}"
    );
    assert_eq!(
        fs::read(tmp.path().join("bs-64-seed-0/step-000000016.safetensors")).unwrap(),
        kept
    );
    let redone = tmp.path().join("bs-256-seed-1");
    assert!(redone.join("result.json").is_file());
    assert!(!redone.join("step-000000099.safetensors").exists());
}
