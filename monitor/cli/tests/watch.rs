//! End-to-end tests of `htsr-watch DIR`: the real binary on temporary directories, real safetensors files
//! written by a test writer (temporary name, then rename), and the store opened afterwards to check what it holds.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::*;
use htsr_contracts::{CheckpointStatus, LayerStatus};

/// Asserts that `run` holds exactly `steps`, each complete with all its layers.
fn assert_complete(store: &htsr_storage::Store, run: &str, steps: &[u64]) {
    let records = store.checkpoints(run).unwrap();
    let got: Vec<u64> = records.iter().map(|r| r.step).collect();
    assert_eq!(got, steps, "steps of run {run}");
    for r in &records {
        assert_eq!(
            r.status,
            CheckpointStatus::Complete,
            "{run}@{}: {:?}",
            r.step,
            r.errors
        );
        assert_eq!(r.layer_count, LAYERS_PER_CHECKPOINT, "{run}@{}", r.step);
        let layers = store.layers_at(run, r.step).unwrap();
        let names: BTreeSet<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            BTreeSet::from(["fc1", "fc1.bias", "fc2", "fc3"]),
            "{run}@{}",
            r.step
        );
        for l in &layers {
            if l.name == "fc1.bias" {
                assert_eq!(l.status, LayerStatus::Skipped);
            } else {
                assert_eq!(
                    l.status,
                    LayerStatus::Success,
                    "{run}@{} {}: {:?}",
                    r.step,
                    l.name,
                    l.reason
                );
                assert!(l.alpha().is_some_and(|a| a.is_finite()));
            }
        }
    }
}

fn two_run_backlog(dir: &Path, per_run: u64) {
    for i in 1..=per_run {
        // runA: the step comes from `htsr.step` metadata (100 x the number in the name).
        let spec = Spec {
            step: Some(i * 100),
            ..Spec::seed(i)
        };
        write_checkpoint(&dir.join("runA"), &step_name(i), &spec);
        // runB: from the name.
        write_checkpoint(&dir.join("runB"), &step_name(i * 10), &Spec::seed(1000 + i));
    }
}

#[test]
fn a_backlog_in_two_runs_is_stored_once_and_a_restart_analyzes_nothing_new() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    two_run_backlog(dir, 10);
    // Never read: a temporary name and a hidden file.
    std::fs::write(
        dir.join("runA/step-000099.safetensors.tmp"),
        b"half written",
    )
    .unwrap();
    std::fs::write(dir.join("runA/.step-000098.safetensors"), b"hidden").unwrap();

    // Two workers: the two runs are analyzed in parallel, each run in step order.
    let out = watch_once(dir, &["--jobs", "2"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{:?}\n{log}", out.status);
    assert_eq!(log.matches("stored run=").count(), 20, "{log}");
    assert!(log.contains("phases:"), "{log}");

    let analyzed_at: HashMap<(String, u64), f64>;
    {
        let store = open_store(dir);
        assert_complete(
            &store,
            "runA",
            &(1..=10).map(|i| i * 100).collect::<Vec<_>>(),
        );
        assert_complete(
            &store,
            "runB",
            &(1..=10).map(|i| i * 10).collect::<Vec<_>>(),
        );
        assert_eq!(store.runs().unwrap().len(), 2);
        assert_eq!(identity_count(&store), 20);
        analyzed_at = all_checkpoints(&store)
            .into_iter()
            .map(|r| ((r.run, r.step), r.analyzed_at))
            .collect();
    }

    // A second run finds every identity stored: nothing is analyzed or rewritten.
    let out = watch_once(dir, &[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(log.matches("stored run=").count(), 0, "{log}");
    assert!(
        log.contains("0 stored, 20 already stored, 0 failed"),
        "{log}"
    );
    let store = open_store(dir);
    let again: HashMap<(String, u64), f64> = all_checkpoints(&store)
        .into_iter()
        .map(|r| ((r.run, r.step), r.analyzed_at))
        .collect();
    assert_eq!(again, analyzed_at);
    drop(store);

    // The reading commands: export and db stats.
    let db = dir.join(".htsr");
    let out = std::process::Command::new(BIN)
        .args(["export", "--db"])
        .arg(&db)
        .args(["--format", "csv", "--run", "runB"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(csv.lines().count(), 1 + 10 * LAYERS_PER_CHECKPOINT, "{csv}");
    let out = std::process::Command::new(BIN)
        .args(["export", "--format", "jsonl", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        20 * LAYERS_PER_CHECKPOINT
    );
    let out = std::process::Command::new(BIN)
        .args(["db", "stats", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("identities") && l.contains(" 20 ")),
        "{text}"
    );

    // Pinning: the latest checkpoint holds its raw eigenvalues, so pinning it keeps them; an unknown step is an error.
    let latest = {
        let store = open_store(dir);
        store.latest_step("runB").unwrap().unwrap()
    };
    let pin = |step: u64| {
        std::process::Command::new(BIN)
            .args(["db", "pin", "--db"])
            .arg(&db)
            .args(["runB", &step.to_string()])
            .output()
            .unwrap()
    };
    let out = pin(latest);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("raw eigenvalues kept"));
    assert_eq!(pin(latest + 1_000_000).status.code(), Some(1));
    let store = open_store(dir);
    assert!(store.is_pinned("runB", latest).unwrap());
}

#[test]
fn checkpoints_directly_in_dir_and_run_metadata_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("myrun");
    write_checkpoint(&dir, "a.safetensors", &Spec::seed(1));
    write_checkpoint(&dir, "b.safetensors", &Spec::seed(2));
    let spec = Spec {
        run: Some("renamed".into()),
        ..Spec::seed(3)
    };
    write_checkpoint(&dir.join("sub"), "ck-7.safetensors", &spec);
    let out = watch_once(&dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = open_store(&dir);
    // No number in the names: steps in the order seen.
    assert_complete(&store, "myrun", &[0, 1]);
    assert_complete(&store, "renamed", &[7]);
}

#[test]
fn a_corrupt_file_is_stored_failed_and_analyzed_again_once_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = dir.join("r");
    for i in [1u64, 3, 4] {
        write_checkpoint(&run, &step_name(i), &Spec::seed(i));
    }
    // Garbage under a final name, and a valid header whose data stop short (a writer that died).
    write_atomic(&run.join(step_name(2)), &[0x5a; 300]);
    let full = checkpoint_bytes(&Spec::seed(5));
    write_atomic(&run.join(step_name(5)), &full[..full.len() - 100]);

    let out = watch_once(dir, &["--give-up", "2"]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    {
        let store = open_store(dir);
        let records = store.checkpoints("r").unwrap();
        assert_eq!(
            records.iter().map(|r| r.step).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        for r in &records {
            match r.step {
                2 | 5 => {
                    assert_eq!(r.status, CheckpointStatus::Failed);
                    assert_eq!(r.layer_count, 0);
                    assert!(store.layers_at("r", r.step).unwrap().is_empty());
                    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
                }
                _ => assert_eq!(r.status, CheckpointStatus::Complete),
            }
        }
        let reason = |s: u64| records.iter().find(|r| r.step == s).unwrap().errors[0].clone();
        assert!(reason(2).contains("header"), "{}", reason(2));
        assert!(reason(5).contains("bytes"), "{}", reason(5));
        assert!(log.contains("failed run=r step=2"), "{log}");
    }

    // Fixing the corrupt file (a new identity) gets it analyzed; the truncated one is still failed: exit 1.
    write_checkpoint(&run, &step_name(2), &Spec::seed(2));
    let out = watch_once(dir, &["--give-up", "2"]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("stored run=r step=2 "), "{log}");
    let store = open_store(dir);
    let two = store.checkpoint("r", 2).unwrap().unwrap();
    assert_eq!(two.status, CheckpointStatus::Complete);
    assert_eq!(
        store.layers_at("r", 2).unwrap().len(),
        LAYERS_PER_CHECKPOINT
    );
    assert_eq!(
        identity_count(&store),
        5,
        "the failed identity of step 2 was replaced"
    );
}

#[test]
fn frozen_layers_reuse_the_previous_report_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = dir.join("ft");
    let frozen = |seed: u64| Spec {
        frozen: HashMap::from([("fc1.weight".to_string(), 4242)]),
        ..Spec::seed(seed)
    };
    for i in 1..=3u64 {
        write_checkpoint(&run, &step_name(i), &frozen(i));
    }
    let out = watch_once(dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("step=2 layers=4 failed_layers=0 reused=1"),
        "{}",
        stderr(&out)
    );
    {
        let store = open_store(dir);
        let first = store.layer_report("ft", 1, "fc1").unwrap().unwrap();
        assert_eq!(first.reused_from_step, None);
        for step in [2u64, 3] {
            let fc1 = store.layer_report("ft", step, "fc1").unwrap().unwrap();
            assert_eq!(fc1.reused_from_step, Some(step - 1));
            assert_eq!(fc1.power_law, first.power_law);
            assert_eq!(fc1.metrics, first.metrics);
            let fc2 = store.layer_report("ft", step, "fc2").unwrap().unwrap();
            assert_eq!(fc2.reused_from_step, None, "fc2 changes every step");
        }
    }
    // A new process has no hashes in memory: it rebuilds them from the previous checkpoint's file.
    write_checkpoint(&run, &step_name(4), &frozen(4));
    let out = watch_once(dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = open_store(dir);
    let fc1 = store.layer_report("ft", 4, "fc1").unwrap().unwrap();
    assert_eq!(fc1.reused_from_step, Some(3));
    assert_eq!(
        store
            .layer_report("ft", 4, "fc3")
            .unwrap()
            .unwrap()
            .reused_from_step,
        None
    );
}

#[test]
fn checkpoints_arriving_while_it_runs_are_stored_and_sigterm_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    std::fs::create_dir_all(&dir).unwrap();
    let mut daemon = Daemon::start(&dir, &tmp.path().join("log"), &[]);
    daemon.wait_for("watching", 1, Duration::from_secs(30));
    for i in 1..=3u64 {
        write_checkpoint(&dir.join("live"), &step_name(i), &Spec::seed(i));
        std::thread::sleep(Duration::from_millis(100));
    }
    // A new run directory appearing after the start.
    write_checkpoint(&dir.join("later"), &step_name(5), &Spec::seed(50));
    daemon.wait_for("stored run=", 4, Duration::from_secs(30));
    let (status, log) = daemon.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    let store = open_store(&dir);
    assert_complete(&store, "live", &[1, 2, 3]);
    assert_complete(&store, "later", &[5]);
}

#[test]
fn the_polling_watcher_sees_new_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    std::fs::create_dir_all(&dir).unwrap();
    let mut daemon = Daemon::start(
        &dir,
        &tmp.path().join("log"),
        &["--poll=0.2", "--rescan", "600"],
    );
    daemon.wait_for("watching", 1, Duration::from_secs(30));
    write_checkpoint(&dir.join("p"), &step_name(1), &Spec::seed(1));
    daemon.wait_for("stored run=p step=1 ", 1, Duration::from_secs(30));
    let (status, log) = daemon.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn a_file_written_slowly_under_its_final_name_is_never_read_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    std::fs::create_dir_all(dir.join("slow")).unwrap();
    let mut daemon = Daemon::start(&dir, &tmp.path().join("log"), &[]);
    daemon.wait_for("watching", 1, Duration::from_secs(30));
    let bytes = checkpoint_bytes(&Spec::seed(9));
    let path = dir.join("slow").join(step_name(9));
    {
        let mut f = std::fs::File::create(&path).unwrap();
        // 3 bytes first (not even a header length), then chunks with pauses longer than the settle time.
        f.write_all(&bytes[..3]).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(150));
        for chunk in bytes[3..].chunks(bytes.len() / 12 + 1) {
            f.write_all(chunk).unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(120));
        }
    }
    daemon.wait_for("stored run=slow step=9 ", 1, Duration::from_secs(30));
    let (status, log) = daemon.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        !log.contains("failed run="),
        "never judged while half written:\n{log}"
    );
    assert_eq!(log.matches("stored run=slow").count(), 1, "{log}");
    let store = open_store(&dir);
    assert_complete(&store, "slow", &[9]);
    let record = store.checkpoint("slow", 9).unwrap().unwrap();
    assert_eq!(record.identity.size, bytes.len() as u64);
}

#[test]
fn files_deleted_while_it_works_do_not_stop_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    for i in 1..=20u64 {
        write_checkpoint(&dir.join("d"), &step_name(i), &Spec::seed(i));
    }
    let mut daemon = Daemon::start(&dir, &tmp.path().join("log"), &[]);
    // Delete every other checkpoint, from the end, while the backlog is being worked through; then the run
    // directory of another run altogether.
    write_checkpoint(&dir.join("gone"), &step_name(1), &Spec::seed(77));
    daemon.wait_for("watching", 1, Duration::from_secs(30));
    let mut deleted = BTreeSet::new();
    for i in (1..=20u64).rev().filter(|i| i % 2 == 0) {
        let _ = std::fs::remove_file(dir.join("d").join(step_name(i)));
        deleted.insert(i);
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_dir_all(dir.join("gone"));
    // The daemon keeps working: a checkpoint written afterwards is stored.
    write_checkpoint(&dir.join("d"), &step_name(21), &Spec::seed(21));
    daemon.wait_for("stored run=d step=21 ", 1, Duration::from_secs(60));
    let (status, log) = daemon.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        !log.contains("failed run="),
        "a vanished file is not a failed checkpoint:\n{log}"
    );
    let store = open_store(&dir);
    for r in all_checkpoints(&store) {
        // Whatever was stored is whole: a file deleted after it was opened is read from its mapping.
        assert_eq!(r.status, CheckpointStatus::Complete, "{}@{}", r.run, r.step);
        assert_eq!(
            store.layers_at(&r.run, r.step).unwrap().len(),
            LAYERS_PER_CHECKPOINT
        );
    }
    let stored: BTreeSet<u64> = store
        .checkpoints("d")
        .unwrap()
        .iter()
        .map(|r| r.step)
        .collect();
    for i in (1..=21u64).filter(|i| !deleted.contains(i)) {
        assert!(
            stored.contains(&i),
            "surviving step {i} missing; stored {stored:?}\n{log}"
        );
    }
}

/// A tiny deterministic generator for the kill delays (the seed is printed so a failure can be replayed).
fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

#[test]
fn sigkill_at_random_moments_loses_and_repeats_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let per_run = 30u64;
    two_run_backlog(dir, per_run);
    let total = 2 * per_run as usize;
    let mut seed = test_seed("sigkill_at_random_moments");
    let mut stored_before = 0usize;
    let mut kills_after_work = 0;
    for round in 0..30 {
        let log = tmp.path().join(format!("log-{round}"));
        let mut daemon = Daemon::start(dir, &log, &["--once"]);
        // Kill after a random number (1 to 6) of this round's checkpoints were stored, plus a random few
        // milliseconds: inside an analysis, a store write, or between them; every 7th round during start-up.
        let remaining = total - stored_before;
        let k = if round % 7 == 0 {
            0
        } else {
            1 + (lcg(&mut seed) % remaining.min(6) as u64) as usize
        };
        if k > 0 {
            daemon.wait_for("stored run=", k, Duration::from_secs(60));
        }
        std::thread::sleep(Duration::from_millis(lcg(&mut seed) % 15));
        daemon.signal(libc::SIGKILL);
        let _ = daemon.child.wait();
        drop(daemon);
        let store = match htsr_storage::Store::open(dir.join(".htsr")) {
            Ok((store, outcome)) => {
                assert!(
                    !matches!(outcome, htsr_storage::OpenOutcome::Recovered { .. }),
                    "round {round}: the store was corrupted: {outcome}"
                );
                store
            }
            Err(e) => panic!("round {round}: {e}"),
        };
        let records = all_checkpoints(&store);
        // Nothing already stored is lost, and nothing is stored half.
        assert!(
            records.len() >= stored_before,
            "round {round}: {} < {stored_before}",
            records.len()
        );
        for r in &records {
            assert_eq!(
                store.layers_at(&r.run, r.step).unwrap().len(),
                LAYERS_PER_CHECKPOINT,
                "{}@{}",
                r.run,
                r.step
            );
        }
        assert_eq!(identity_count(&store) as usize, records.len());
        if k > 0 {
            // This round's daemon logged k stores before the kill: they are in the store.
            assert!(
                records.len() >= stored_before + k,
                "round {round}: {} < {stored_before} + {k}",
                records.len()
            );
            kills_after_work += 1;
        }
        stored_before = records.len();
        if stored_before == total {
            // Finished before the kill: start over with a fresh backlog so that kills keep landing mid-work.
            drop(store);
            std::fs::remove_dir_all(dir.join(".htsr")).unwrap();
            stored_before = 0;
        }
    }
    // Every round but the start-up ones (each 7th) killed a daemon that had stored work in that round.
    assert_eq!(kills_after_work, 25);
    let out = watch_once(dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = open_store(dir);
    assert_complete(
        &store,
        "runA",
        &(1..=per_run).map(|i| i * 100).collect::<Vec<_>>(),
    );
    assert_complete(
        &store,
        "runB",
        &(1..=per_run).map(|i| i * 10).collect::<Vec<_>>(),
    );
    assert_eq!(identity_count(&store) as usize, total);
}
