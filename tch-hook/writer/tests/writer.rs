//! The writer on real files, without libtorch: atomicity seen by a concurrent reader, keep-last-K, back-pressure
//! made deterministic by holding the writer thread, and I/O errors reported by the next call.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use htsr_contracts::naming::checkpoint_file_name;
use htsr_writer::{
    CheckpointWriter, Dtype, FileJob, Reservation, TensorSnapshot, WhenBehind, WriteError,
};
use safetensors::SafeTensors;

/// A checkpoint of `tensors` f32 matrices of `rows` x 64, filled with `step`-dependent bytes.
fn job(step: u64, tensors: usize, rows: usize) -> FileJob {
    let tensors = (0..tensors)
        .map(|i| TensorSnapshot {
            name: format!("layer{i}.weight"),
            dtype: Dtype::F32,
            shape: vec![rows, 64],
            data: (0..rows * 64)
                .flat_map(|k| ((step * 1000 + i as u64 + k as u64) as f32).to_le_bytes())
                .collect(),
        })
        .collect();
    FileJob {
        file_name: checkpoint_file_name(step),
        metadata: HashMap::from([("htsr.step".to_string(), step.to_string())]),
        tensors,
    }
}

fn submit(writer: &CheckpointWriter, step: u64) -> Reservation {
    let r = writer.reserve().unwrap();
    if r != Reservation::Skipped {
        writer.submit(job(step, 2, 8)).unwrap();
    }
    r
}

fn files(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn a_polling_reader_never_sees_a_partial_final_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (dir, stop) = (dir.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut parsed, mut temps_seen, mut bad) = (0u64, 0u64, Vec::new());
            let mut seen = BTreeSet::new();
            loop {
                // The stop flag is read before the pass, so the pass after it was set sees every final file.
                let last_pass = stop.load(Ordering::Acquire);
                for e in fs::read_dir(&dir).unwrap().flatten() {
                    let n = e.file_name().into_string().unwrap();
                    if n.starts_with('.') {
                        temps_seen += 1;
                        continue;
                    }
                    let Ok(bytes) = fs::read(e.path()) else {
                        continue;
                    };
                    match SafeTensors::deserialize(&bytes) {
                        Ok(st) if st.len() == 3 => parsed += 1,
                        Ok(st) => bad.push(format!("{n}: {} tensors", st.len())),
                        Err(err) => bad.push(format!("{n}: {err}")),
                    }
                    seen.insert(n);
                }
                if last_pass {
                    return (parsed, temps_seen, bad, seen);
                }
            }
        })
    };
    let mut writer = CheckpointWriter::start(dir.clone(), 2, WhenBehind::Wait, None).unwrap();
    for step in 0..60u64 {
        writer.reserve().unwrap();
        writer.submit(job(step, 3, 512)).unwrap();
    }
    writer.finish().unwrap();
    stop.store(true, Ordering::Release);
    let (parsed, temps_seen, bad, seen) = reader.join().unwrap();
    assert!(
        bad.is_empty(),
        "the reader opened partial or wrong final files: {bad:?}"
    );
    assert_eq!(seen.len(), 60, "the reader saw {} final files", seen.len());
    assert!(parsed >= 60);
    eprintln!("reader: {parsed} complete parses, {temps_seen} temporary names seen and ignored");
}

#[test]
fn files_hold_the_snapshot_bytes_and_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer =
        CheckpointWriter::start(tmp.path().to_path_buf(), 1, WhenBehind::Wait, None).unwrap();
    let sent = job(42, 2, 4);
    writer.reserve().unwrap();
    writer.submit(sent.clone()).unwrap();
    let stats = writer.finish().unwrap();
    assert_eq!((stats.written, stats.failed), (1, 0));
    let bytes = fs::read(tmp.path().join(checkpoint_file_name(42))).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for t in &sent.tensors {
        let view = st.tensor(&t.name).unwrap();
        assert_eq!(view.shape(), t.shape.as_slice());
        assert_eq!(view.data(), t.data.as_slice());
    }
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(header.metadata().as_ref().unwrap()["htsr.step"], "42");
}

#[test]
fn keep_last_k_keeps_exactly_the_k_latest() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("notes.txt"), b"not a checkpoint").unwrap();
    let mut writer =
        CheckpointWriter::start(tmp.path().to_path_buf(), 2, WhenBehind::Wait, Some(3)).unwrap();
    for step in (0..20u64).step_by(2) {
        submit(&writer, step);
    }
    writer.finish().unwrap();
    let mut want: BTreeSet<String> = [14, 16, 18].into_iter().map(checkpoint_file_name).collect();
    want.insert("notes.txt".into());
    assert_eq!(files(tmp.path()), want);
}

#[test]
fn a_write_failure_is_returned_by_the_next_call_and_leaves_no_final_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    fs::create_dir(&dir).unwrap();
    let mut writer = CheckpointWriter::start(dir.clone(), 1, WhenBehind::Wait, None).unwrap();
    for step in 0..3u64 {
        submit(&writer, step);
    }
    writer.flush().unwrap();
    assert_eq!(files(&dir).len(), 3);
    // The directory disappears and a regular file takes its place: every write now fails.
    fs::remove_dir_all(&dir).unwrap();
    fs::write(&dir, b"in the way").unwrap();
    let mut errors = Vec::new();
    for step in 3..8u64 {
        submit(&writer, step);
        if let Err(e) = writer.flush() {
            errors.push(e);
        }
    }
    assert_eq!(errors.len(), 5, "one error per failed file: {errors:?}");
    for (e, step) in errors.iter().zip(3u64..) {
        let WriteError::Write { path, message } = e else {
            panic!("unexpected error {e:?}")
        };
        assert_eq!(path, &dir.join(checkpoint_file_name(step)));
        assert!(!message.is_empty());
        assert!(e.to_string().contains("writing checkpoint"), "{e}");
    }
    assert!(
        fs::metadata(&dir).unwrap().is_file(),
        "nothing replaced the obstacle"
    );
    // The directory comes back: later files are written again; the failed steps have none.
    fs::remove_file(&dir).unwrap();
    fs::create_dir(&dir).unwrap();
    for step in 8..10u64 {
        submit(&writer, step);
    }
    let stats = writer.finish().unwrap();
    assert_eq!((stats.written, stats.failed), (5, 5));
    let want: BTreeSet<String> = [8, 9].into_iter().map(checkpoint_file_name).collect();
    assert_eq!(files(&dir), want);
}

#[test]
fn when_behind_skip_skips_while_the_queue_is_full() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer =
        CheckpointWriter::start(tmp.path().to_path_buf(), 1, WhenBehind::Skip, None).unwrap();
    let control = writer.control();
    control.hold(true);
    assert_eq!(submit(&writer, 0), Reservation::Reserved);
    // The held writer keeps step 0's slot: the queue stays full, deterministically.
    assert_eq!(submit(&writer, 1), Reservation::Skipped);
    assert_eq!(submit(&writer, 2), Reservation::Skipped);
    control.hold(false);
    writer.flush().unwrap();
    assert_eq!(submit(&writer, 3), Reservation::Reserved);
    writer.finish().unwrap();
    let want: BTreeSet<String> = [0, 3].into_iter().map(checkpoint_file_name).collect();
    assert_eq!(files(tmp.path()), want);
}

#[test]
fn when_behind_wait_blocks_until_the_writer_frees_a_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer =
        CheckpointWriter::start(tmp.path().to_path_buf(), 1, WhenBehind::Wait, None).unwrap();
    let control = writer.control();
    control.hold(true);
    assert_eq!(submit(&writer, 0), Reservation::Reserved);
    let releaser = {
        let control = control.clone();
        std::thread::spawn(move || {
            // Release the writer only once the caller is blocked waiting for the slot.
            while control.waiting_callers() == 0 {
                std::thread::yield_now();
            }
            control.hold(false);
        })
    };
    let second = submit(&writer, 1);
    releaser.join().unwrap();
    assert!(matches!(second, Reservation::Waited(_)), "{second:?}");
    writer.finish().unwrap();
    let want: BTreeSet<String> = [0, 1].into_iter().map(checkpoint_file_name).collect();
    assert_eq!(files(tmp.path()), want);
}

#[test]
fn dropping_the_writer_writes_what_is_queued() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let writer =
            CheckpointWriter::start(tmp.path().to_path_buf(), 4, WhenBehind::Wait, None).unwrap();
        for step in [5u64, 6, 7] {
            submit(&writer, step);
        }
    }
    let want: BTreeSet<String> = [5, 6, 7].into_iter().map(checkpoint_file_name).collect();
    assert_eq!(files(tmp.path()), want);
}
