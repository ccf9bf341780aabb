//! A store on a full disk (a 2 MB tmpfs, mounted by the test: CI runs as root): writes fail with an out-of-space
//! error while everything written before stays readable, nothing is moved aside, and once space is back the store
//! reopens itself on the next write and takes the rest.

use htsr_storage::fixtures::{self, Tmpfs};
use htsr_storage::{ErrorKind, OpenOutcome, Store};

#[test]
#[ignore = "needs root: mounts a tmpfs; scripts/test runs it"]
fn a_full_disk_fails_writes_keeps_the_past_and_recovers_when_space_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(dir.path(), "2m");
    let path = dir.path().join("store");
    let (store, outcome) = Store::open(&path).unwrap();
    assert_eq!(outcome, OpenOutcome::Created);
    let write = |step: u64| {
        let (record, reports) = fixtures::checkpoint("run", step, 24);
        let raw: Vec<(String, Vec<f64>)> = reports
            .iter()
            .take(4)
            .map(|r| (r.name.clone(), fixtures::eigenvalues(256, step)))
            .collect();
        store.write_checkpoint(&record, &reports, &raw)
    };
    let mut acknowledged = Vec::new();
    let mut failures = 0;
    for step in 0..1000u64 {
        match write(step) {
            Ok(()) => acknowledged.push(step),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::OutOfSpace, "{e}");
                assert!(e.is_transient());
                failures += 1;
                if failures == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(failures, 3, "the 2 MB disk never filled up");
    assert!(acknowledged.len() > 5, "{acknowledged:?}");
    // While the disk is full, a read gives a whole checkpoint or a transient out-of-space error (sled may fail
    // reads too after a failed write, until the store is reopened), never part of one.
    for &s in &acknowledged {
        match store.layers_at("run", s) {
            Ok(layers) => assert_eq!(layers.len(), 24, "step {s}"),
            Err(e) => assert!(
                e.kind() == ErrorKind::OutOfSpace && e.is_transient(),
                "step {s}: {e}"
            ),
        }
    }

    fs.resize("64m");
    // With room again, reads reopen the store by themselves: every acknowledged checkpoint is there, whole.
    for &s in &acknowledged {
        let layers = store
            .layers_at("run", s)
            .unwrap_or_else(|e| panic!("step {s} after space came back: {e}"));
        assert_eq!(layers.len(), 24, "step {s}");
    }
    let next = acknowledged.last().unwrap() + 1;
    for step in next..next + 5 {
        write(step).unwrap_or_else(|e| panic!("step {step} after space came back: {e}"));
        acknowledged.push(step);
    }
    drop(store);
    let (store, outcome) = Store::open(&path).unwrap();
    assert_eq!(outcome, OpenOutcome::Opened, "nothing was set aside");
    let steps = store.steps("run").unwrap();
    for s in &acknowledged {
        assert!(steps.contains(s), "acknowledged step {s} lost");
    }
    for &s in &steps {
        assert_eq!(
            store.layers_at("run", s).unwrap().len(),
            24,
            "step {s} partial"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing moved aside"
    );
}
