//! The whole chain with real parts: the minimal example trains with the hook, the real `htsr-watch` daemon
//! watches the directory (headless) while it does, the store ends up with every checkpoint and every layer
//! exactly once, the CSV export has the expected rows and columns, and `htsr-watch browse` in tmux shows the run.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use htsr_contracts::CheckpointStatus;
use htsr_e2e::{binary, checkpoint_files, run_ok, shell_line, signal, train_mlp, wait_for, Tmux};
use htsr_engine::checkpoint::Checkpoint;
use htsr_storage::Store;

const STEPS: u64 = 300;
const EVERY: u64 = 20;

#[test]
fn train_watch_store_export_browse() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let log_path = root.join("daemon.log");
    let log = std::fs::File::create(&log_path).unwrap();

    // 1. The daemon starts first, on an empty directory, as a user would start it before training.
    let mut daemon = Command::new(binary("htsr-watch"))
        .arg(root)
        .arg("--headless")
        .env("HTSR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();

    // 2. Training with the hook writes a checkpoint every EVERY steps.
    train_mlp(root, "mlp", STEPS, EVERY);
    let files = checkpoint_files(&root.join("mlp"));
    assert_eq!(
        files.len() as u64,
        STEPS / EVERY,
        "one file per {EVERY} steps: {files:?}"
    );

    // 3. The daemon stores each one; then SIGTERM stops it cleanly.
    let stored = |text: &str| text.matches("stored run=mlp").count();
    wait_for(
        "the daemon to store every checkpoint",
        Duration::from_secs(120),
        || {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            (stored(&text) >= files.len()).then_some(())
        },
    );
    signal(&daemon, libc::SIGTERM);
    let status = daemon.wait().unwrap();
    let log_text = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "graceful shutdown exits 0; log:\n{log_text}"
    );
    assert_eq!(
        stored(&log_text),
        files.len(),
        "each checkpoint stored once:\n{log_text}"
    );

    // 4. The store has every checkpoint exactly once, each with every layer of its file.
    let store_dir = root.join(".htsr");
    {
        let (store, _) = Store::open(&store_dir).unwrap();
        let records = store.checkpoints("mlp").unwrap();
        let steps: Vec<u64> = records.iter().map(|r| r.step).collect();
        let expected: Vec<u64> = (1..=STEPS / EVERY).map(|k| k * EVERY).collect();
        assert_eq!(steps, expected, "steps from the hook's htsr.step metadata");
        for (record, file) in records.iter().zip(&files) {
            assert_eq!(record.status, CheckpointStatus::Complete, "{record:?}");
            assert_eq!(
                record.metadata.get("htsr.run").map(String::as_str),
                Some("mlp")
            );
            let tensors: BTreeSet<String> = Checkpoint::open(file)
                .unwrap()
                .tensors()
                .iter()
                .map(|t| t.name.clone())
                .collect();
            let layers = store.layers_at("mlp", record.step).unwrap();
            let stored_tensors: BTreeSet<String> =
                layers.iter().map(|l| l.tensor.clone()).collect();
            assert_eq!(
                layers.len(),
                tensors.len(),
                "no layer twice at step {}",
                record.step
            );
            assert_eq!(
                stored_tensors, tensors,
                "every tensor at step {}",
                record.step
            );
            let analyzed = layers.iter().filter(|l| l.alpha().is_some()).count();
            assert_eq!(
                analyzed, 3,
                "fc1, fc2, fc3 analyzed at step {}",
                record.step
            );
        }
    }

    // 5. The CSV export: one row per (checkpoint, layer), WeightWatcher's columns plus run, step and phase.
    let out = run_ok(
        Command::new(binary("htsr-watch"))
            .args(["export", "--db"])
            .arg(&store_dir)
            .args(["--format", "csv"]),
    );
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "run",
        "step",
        "name",
        "alpha",
        "D",
        "xmin",
        "num_spikes",
        "mp_softrank",
        "phase",
    ] {
        assert!(
            header.iter().any(|h| h == col),
            "column {col} in {header:?}"
        );
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let per_file = Checkpoint::open(&files[0]).unwrap().tensors().len();
    assert_eq!(rows.len(), files.len() * per_file);
    let name_col = header.iter().position(|h| h == "name").unwrap();
    assert!(
        rows.iter().any(|r| &r[name_col] == "fc1"),
        "layer names without .weight"
    );

    // 6. `htsr-watch browse` in a real terminal shows the run and its layers, quits, and restores the terminal.
    let tmux = Tmux::start(
        &shell_line(
            &binary("htsr-watch"),
            &["browse", &root.display().to_string()],
        ),
        100,
        30,
    );
    tmux.wait_for_text(&["mlp", "fc1", "fc2", "fc3"], Duration::from_secs(30));
    tmux.quit_and_check_restored(Duration::from_secs(15));
}
