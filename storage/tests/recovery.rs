//! Opening damaged or foreign stores: version mismatch is refused untouched; a store sled reports corrupt is moved
//! aside by the daemon's open (never deleted) and replaced by a fresh one; the reading commands' open never creates,
//! moves or changes anything, and says what is true (missing, held, damaged).

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use htsr_storage::{fixtures, Error, ErrorKind, OpenOutcome, Store};

fn populated(path: &Path) {
    let (store, _) = Store::open(path).unwrap();
    for step in 0..20 {
        let (rec, layers) = fixtures::checkpoint("r", step, 10);
        store.write_checkpoint(&rec, &layers, &[]).unwrap();
    }
}

fn overwrite(file: &Path, offset: u64) {
    let mut f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[0xAB; 512]).unwrap();
}

#[test]
fn an_unknown_schema_version_is_refused_and_the_store_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    populated(&path);
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", b"99".to_vec())
            .unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    match &err {
        Error::UnsupportedVersion {
            found, understood, ..
        } => {
            assert_eq!(found, "99");
            assert_eq!(understood, &vec![1]);
        }
        other => panic!("expected UnsupportedVersion, got {other}"),
    }
    assert!(err.to_string().contains("understands version 1"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing moved aside"
    );
    let db = sled::open(&path).unwrap();
    assert_eq!(
        db.open_tree("checkpoints").unwrap().len(),
        20,
        "data untouched"
    );
}

fn assert_recovered(dir: &Path, path: &Path) {
    let (store, outcome) = Store::open(path).unwrap();
    let OpenOutcome::Recovered { moved_to, reason } = &outcome else {
        panic!("expected Recovered, got {outcome:?}")
    };
    assert!(!reason.is_empty());
    assert!(moved_to.starts_with(dir));
    assert!(
        moved_to
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("store.corrupt-"),
        "{moved_to:?}"
    );
    assert!(
        moved_to.join("db").exists() && moved_to.join("conf").exists(),
        "old store kept whole"
    );
    assert!(outcome
        .to_string()
        .contains(&moved_to.display().to_string()));
    assert!(store.runs().unwrap().is_empty(), "fresh store");
    let (rec, layers) = fixtures::checkpoint("r", 1, 3);
    store.write_checkpoint(&rec, &layers, &[]).unwrap();
    drop(store);
    let (store, outcome) = Store::open(path).unwrap();
    assert_eq!(outcome, OpenOutcome::Opened);
    assert_eq!(store.layers_at("r", 1).unwrap(), layers);
}

#[test]
fn a_store_with_an_overwritten_config_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    populated(&path);
    overwrite(&path.join("conf"), 0);
    assert_recovered(dir.path(), &path);
}

#[test]
fn a_store_with_an_overwritten_log_head_is_moved_aside() {
    // sled silently truncates its log at the first damaged entry; here that loses the version key, which a
    // store we created always has, so the damage is detected instead of showing an empty history.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    populated(&path);
    overwrite(&path.join("db"), 0);
    assert_recovered(dir.path(), &path);
}

#[test]
fn a_path_that_cannot_hold_a_store_is_an_error_not_a_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    // A store under a regular file cannot be created; nothing existed there to move aside.
    assert!(Store::open(file.join("store")).is_err());
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

/// Every file under `dir` with its bytes, to show that nothing changed.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn reading_opens_never_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let err = Store::open_existing(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("no store at"), "{err}");
    assert!(!path.exists());
}

#[test]
fn reading_opens_of_a_held_store_say_so_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    populated(&path);
    let (held, _) = Store::open(&path).unwrap();
    let before = snapshot(dir.path());
    let err = Store::open_existing(&path).unwrap_err();
    assert!(err.is_locked(), "{err}");
    // The daemon's own open says "held" too, and does not set a held store aside.
    let err = Store::open(&path).unwrap_err();
    assert!(err.is_locked(), "{err}");
    assert_eq!(snapshot(dir.path()), before);
    drop(held);
    assert_eq!(
        Store::open_existing(&path)
            .unwrap()
            .steps("r")
            .unwrap()
            .len(),
        20
    );
}

#[test]
fn reading_opens_of_a_damaged_store_report_it_and_move_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    populated(&path);
    overwrite(&path.join("conf"), 0);
    let before = snapshot(dir.path());
    let err = Store::open_existing(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_eq!(snapshot(dir.path()), before, "nothing moved or rewritten");
}

#[test]
fn an_io_error_on_open_is_reported_not_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    populated(&path);
    // A directory where sled's database file should be: an I/O error on open (EISDIR), not corruption. (Tests run
    // as root in CI, where permission bits do not stop anything.)
    std::fs::remove_file(path.join("db")).unwrap();
    std::fs::create_dir(path.join("db")).unwrap();
    let before = snapshot(dir.path());
    let err = Store::open(&path).unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing moved aside"
    );
}
