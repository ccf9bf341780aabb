//! Two files claiming one (run, step) are refused, not silently merged; and a failed record that an earlier,
//! unreadable version of a file left under a guessed step disappears once the file is stored properly.

use htsr_contracts::CheckpointStatus;
use htsr_storage::fixtures::{checkpoint, checkpoint_record};
use htsr_storage::{Error, Store};

#[test]
fn a_second_file_for_the_same_run_and_step_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path().join("db")).unwrap();
    let (record, layers) = checkpoint("r", 10, 3);
    store.write_checkpoint(&record, &layers, &[]).unwrap();

    let mut other = record.clone();
    other.identity.path = "/ckpt/r/copy-of-step-10.safetensors".into();
    let err = store.write_checkpoint(&other, &layers, &[]).unwrap_err();
    assert!(matches!(err, Error::Conflict { step: 10, .. }), "{err}");
    assert!(err.to_string().contains("copy-of-step-10"), "{err}");
    let kept = store.checkpoint("r", 10).unwrap().unwrap();
    assert_eq!(
        kept.identity.path, record.identity.path,
        "the stored file is kept"
    );

    // The same file rewritten (new size) replaces its own record.
    let mut rewritten = record.clone();
    rewritten.identity.size += 1;
    store.write_checkpoint(&rewritten, &layers, &[]).unwrap();
    assert_eq!(
        store.checkpoint("r", 10).unwrap().unwrap().identity.size,
        rewritten.identity.size
    );
}

#[test]
fn a_failed_record_of_the_same_file_under_a_guessed_step_is_superseded() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path().join("db")).unwrap();
    // While unreadable, the file got a failed record under the step its name suggested.
    let mut failed = checkpoint_record("r", 3, &[]);
    failed.identity.path = "/ckpt/r/latest.safetensors".into();
    failed.status = CheckpointStatus::Failed;
    failed.errors = vec!["truncated".into()];
    store.write_checkpoint(&failed, &[], &[]).unwrap();
    // Readable now, its metadata says step 40.
    let (mut good, layers) = checkpoint("r", 40, 2);
    good.identity.path = failed.identity.path.clone();
    good.identity.size += 7;
    store.write_checkpoint(&good, &layers, &[]).unwrap();
    let steps: Vec<u64> = store
        .checkpoints("r")
        .unwrap()
        .iter()
        .map(|c| c.step)
        .collect();
    assert_eq!(steps, [40], "the failed record at step 3 is gone");
    assert!(store
        .phase_grid("r", None, None)
        .unwrap()
        .steps
        .iter()
        .all(|s| *s == 40));
}
