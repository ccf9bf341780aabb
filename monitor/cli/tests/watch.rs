//! End-to-end tests of `htsr-watch DIR`: the real binary on temporary directories, real safetensors files
//! written by a test writer (temporary name, then rename), and the store opened afterwards to check what it holds.

mod common;

use std::time::Duration;

use common::*;
use htsr_contracts::CheckpointStatus;

#[test]
fn once_exits_zero_when_every_checkpoint_is_stored_and_one_when_one_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = dir.join("r");
    for i in [1u64, 3] {
        write_checkpoint(&run, &step_name(i), &Spec::seed(i));
    }
    let out = watch_once(dir, &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(log.matches("stored run=r").count(), 2, "{log}");
    // Garbage under a final name: stored as failed, said in the log, exit 1; and again at the next start.
    write_atomic(&run.join(step_name(2)), &[0x5a; 300]);
    for _ in 0..2 {
        let out = watch_once(dir, &["--give-up", "2"]);
        let log = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{log}");
    }
    let out = watch_once(dir, &["--give-up", "2"]);
    assert!(
        stderr(&out).contains("0 stored, 3 already stored, 1 failed"),
        "{}",
        stderr(&out)
    );
    let store = open_store(dir);
    assert_eq!(
        store.checkpoint("r", 2).unwrap().unwrap().status,
        CheckpointStatus::Failed
    );
    assert_eq!(
        store.checkpoint("r", 3).unwrap().unwrap().status,
        CheckpointStatus::Complete
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
    let mut kills_during_analysis = 0;
    for cycle in 0..30 {
        let log = tmp.path().join(format!("log-{cycle}"));
        // Debug lines say when each analysis starts, so the test can tell which kills cut one short.
        let mut daemon = Daemon::start_logging(dir, &log, &["--once"], "htsr_daemon=debug,info");
        // Kill after a random number (1 to 6) of this cycle's checkpoints were stored, plus a random few
        // milliseconds: inside an analysis, a store write, or between them; every 7th cycle during start-up.
        let remaining = total - stored_before;
        let k = if cycle % 7 == 0 {
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
        // Killed during an analysis: the log's last word on a checkpoint is that its analysis started.
        let text = daemon.log_text();
        if text
            .rfind(" analyzing")
            .is_some_and(|a| text.rfind("stored run=").is_none_or(|s| a > s))
        {
            kills_during_analysis += 1;
        }
        drop(daemon);
        let store = match htsr_storage::Store::open(dir.join(".htsr")) {
            Ok((store, outcome)) => {
                assert!(
                    !matches!(outcome, htsr_storage::OpenOutcome::Recovered { .. }),
                    "cycle {cycle}: the store was corrupted: {outcome}"
                );
                store
            }
            Err(e) => panic!("cycle {cycle}: {e}"),
        };
        let records = all_checkpoints(&store);
        // Nothing already stored is lost, and nothing is stored half.
        assert!(
            records.len() >= stored_before,
            "cycle {cycle}: {} < {stored_before}",
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
            // This cycle's daemon logged k stores before the kill: they are in the store.
            assert!(
                records.len() >= stored_before + k,
                "cycle {cycle}: {} < {stored_before} + {k}",
                records.len()
            );
        }
        stored_before = records.len();
        if stored_before == total {
            // Finished before the kill: start over with a fresh backlog so that kills keep landing mid-work.
            drop(store);
            std::fs::remove_dir_all(dir.join(".htsr")).unwrap();
            stored_before = 0;
        }
    }
    // The kills must have cut analyses short, or this test did not test what it is for. They land within 15 ms
    // of a store, when the next analysis has just begun; a floor well below what such timing gives.
    eprintln!("cycles killed during an analysis: {kills_during_analysis} of 30");
    assert!(
        kills_during_analysis >= 5,
        "only {kills_during_analysis} kills landed during an analysis"
    );
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

#[test]
#[ignore = "needs root: mounts a tmpfs; scripts/test runs it"]
fn a_read_only_checkpoint_folder_says_how_to_put_the_store_elsewhere_and_that_works() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("readonly");
    let disk = htsr_storage::fixtures::Tmpfs::mount(&dir, "4m");
    write_checkpoint(&dir.join("run"), &step_name(1), &Spec::seed(1));
    disk.make_read_only();

    let out = watch_once(&dir, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "opening the store {}",
            dir.join(".htsr").display()
        )),
        "the error names the store: {err}"
    );
    assert!(
        err.contains("put it elsewhere with --db PATH"),
        "the error says how to keep the store elsewhere: {err}"
    );

    let elsewhere = tmp.path().join("stores").join("readonly");
    let out = watch_once(&dir, &["--db", elsewhere.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_complete(
        &htsr_storage::Store::open_existing(&elsewhere).unwrap(),
        "run",
        &[1],
    );
}
