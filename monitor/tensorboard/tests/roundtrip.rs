//! Write -> read_events round trips and damaged files, without TensorBoard.

use std::fs;
use std::path::Path;

use htsr_tensorboard::proto::{event::What, summary_value::Value, DataType};
use htsr_tensorboard::{
    masked_crc32c, read_events, Error, Event, EventWriter, RecordPart, SummaryValue, FILE_VERSION,
};

/// The single summary value of an event.
fn value(event: &Event) -> &SummaryValue {
    match &event.what {
        Some(What::Summary(s)) => {
            assert_eq!(s.value.len(), 1);
            &s.value[0]
        }
        other => panic!("expected a summary, got {other:?}"),
    }
}

fn write_sample(dir: &Path) -> std::path::PathBuf {
    let mut w = EventWriter::create(dir).unwrap();
    w.add_scalar("loss", 0.1, 3, 1_700_000_000.25).unwrap();
    w.add_scalar("loss", f32::NAN, -4, 1.5).unwrap();
    w.add_histogram("h", &[-2.0, 0.0, 0.5, 0.5, 1e6], 9, 2.5)
        .unwrap();
    w.add_histogram_buckets(
        "hb",
        -1.0,
        4.0,
        3.0,
        5.0,
        17.0,
        &[0.0, 10.0, f64::MAX],
        &[1.0, 2.0, 0.0],
        10,
        3.5,
    )
    .unwrap();
    w.add_text("notes", "# Title\n\nünïcödé ✓", i64::MAX, 4.5)
        .unwrap();
    w.flush().unwrap();
    w.path().to_path_buf()
}

#[test]
fn round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("a/b/run"); // parents are created
    let path = write_sample(&run);
    assert_eq!(path.parent().unwrap(), run);
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("events.out.tfevents."), "{name}");

    let events = read_events(&path).unwrap();
    assert_eq!(events.len(), 6);

    assert_eq!(events[0].what, Some(What::FileVersion(FILE_VERSION.into())));
    assert_eq!(FILE_VERSION, "brain.Event:2");
    assert_eq!(events[0].step, 0);
    assert!(events[0].wall_time > 1.6e9);

    assert_eq!((events[1].step, events[1].wall_time), (3, 1_700_000_000.25));
    assert_eq!(value(&events[1]).tag, "loss");
    assert_eq!(value(&events[1]).value, Some(Value::SimpleValue(0.1)));
    match value(&events[2]).value {
        Some(Value::SimpleValue(v)) => assert!(v.is_nan()),
        ref other => panic!("{other:?}"),
    }
    assert_eq!(events[2].step, -4);

    let Some(Value::Histo(h)) = &value(&events[3]).value else {
        panic!("not a histogram")
    };
    assert_eq!((h.min, h.max, h.num), (-2.0, 1e6, 5.0));
    assert_eq!((h.sum, h.sum_squares), (1e6 - 1.0, 4.0 + 0.5 + 1e12));
    let nonzero: Vec<f64> = h.bucket.iter().copied().filter(|&c| c > 0.0).collect();
    assert_eq!(nonzero, vec![1.0, 1.0, 2.0, 1.0]);
    assert_eq!(h.bucket.len(), h.bucket_limit.len());
    assert!(h.bucket_limit.windows(2).all(|w| w[0] < w[1]));

    let Some(Value::Histo(hb)) = &value(&events[4]).value else {
        panic!("not a histogram")
    };
    assert_eq!(hb.bucket_limit, vec![0.0, 10.0, f64::MAX]);
    assert_eq!(hb.bucket, vec![1.0, 2.0, 0.0]);
    assert_eq!(
        (hb.min, hb.max, hb.num, hb.sum, hb.sum_squares),
        (-1.0, 4.0, 3.0, 5.0, 17.0)
    );

    let text = value(&events[5]);
    assert_eq!(events[5].step, i64::MAX);
    assert_eq!(text.tag, "notes");
    let plugin = text
        .metadata
        .as_ref()
        .unwrap()
        .plugin_data
        .as_ref()
        .unwrap();
    assert_eq!(plugin.plugin_name, "text");
    let Some(Value::Tensor(t)) = &text.value else {
        panic!("not a tensor")
    };
    assert_eq!(t.dtype, DataType::DtString as i32);
    assert_eq!(t.tensor_shape.as_ref().unwrap().dim.len(), 0);
    assert_eq!(
        t.string_val,
        vec!["# Title\n\nünïcödé ✓".as_bytes().to_vec()]
    );
}

#[test]
fn records_are_framed_as_tfrecords() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_sample(tmp.path());
    let bytes = fs::read(&path).unwrap();
    // Walk the records by hand; they must tile the file exactly.
    let mut offset = 0;
    let mut count = 0;
    while offset < bytes.len() {
        let len_bytes = &bytes[offset..offset + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(bytes[offset + 8..offset + 12].try_into().unwrap());
        assert_eq!(len_crc, masked_crc32c(len_bytes));
        let data = &bytes[offset + 12..offset + 12 + len];
        let data_crc = u32::from_le_bytes(
            bytes[offset + 12 + len..offset + 16 + len]
                .try_into()
                .unwrap(),
        );
        assert_eq!(data_crc, masked_crc32c(data));
        offset += 16 + len;
        count += 1;
    }
    assert_eq!(offset, bytes.len());
    assert_eq!(count, 6);
    // The first record is exactly the file-version event: field 1 (wall
    // time, fixed64), then field 3 = "brain.Event:2".
    assert_eq!(bytes[12], 0x09);
    assert_eq!(&bytes[21..23], &[0x1a, 13]);
    assert_eq!(&bytes[23..36], b"brain.Event:2");
}

#[test]
fn truncated_file_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_sample(tmp.path());
    let full = fs::read(&path).unwrap();
    let first_len = 12 + u64::from_le_bytes(full[..8].try_into().unwrap()) as usize + 4;

    // Cut inside each part of the second record.
    let cases = [
        (first_len + 3, RecordPart::Length),
        (first_len + 10, RecordPart::LengthCrc),
        (first_len + 13, RecordPart::Data),
        (full.len() - 1, RecordPart::DataCrc), // last record
    ];
    for (cut, want_part) in cases {
        let cut_path = tmp.path().join(format!("events.out.tfevents.cut{cut}"));
        fs::write(&cut_path, &full[..cut]).unwrap();
        let err = read_events(&cut_path).unwrap_err();
        match &err {
            Error::Truncated { path, part, .. } => {
                assert_eq!(path, &cut_path);
                assert_eq!(*part, want_part, "cut at {cut}");
            }
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&*cut_path.to_string_lossy()), "{msg}");
        assert!(msg.contains("truncated"), "{msg}");
    }
}

/// Byte offsets at which the records of an event file start.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        offsets.push(offset);
        offset += 16 + u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap()) as usize;
    }
    offsets
}

#[test]
fn corrupt_bytes_fail_the_crc_check() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_sample(tmp.path());
    let full = fs::read(&path).unwrap();
    let offsets = record_offsets(&full);
    let (second, last) = (offsets[1], *offsets.last().unwrap());

    // A flipped bit in: the data, the data CRC, the length, the length CRC.
    for (index, want_offset, want_part) in [
        (second + 20, second, RecordPart::DataCrc),
        (full.len() - 2, last, RecordPart::DataCrc),
        (second + 1, second, RecordPart::LengthCrc),
        (last + 9, last, RecordPart::LengthCrc),
    ] {
        let mut bad = full.clone();
        bad[index] ^= 0x10;
        let bad_path = tmp.path().join("events.out.tfevents.bad");
        fs::write(&bad_path, &bad).unwrap();
        let err = read_events(&bad_path).unwrap_err();
        match &err {
            Error::Checksum {
                path,
                offset,
                part,
                stored,
                computed,
            } => {
                assert_eq!(path, &bad_path);
                assert_eq!(*part, want_part, "flipped byte {index}");
                assert_eq!(*offset, want_offset as u64, "flipped byte {index}");
                assert_ne!(stored, computed);
            }
            other => panic!("flipped byte {index}: expected Checksum, got {other:?}"),
        }
        assert!(err.to_string().contains(&*bad_path.to_string_lossy()));
    }
}

#[test]
fn zero_byte_file_has_no_events_and_missing_file_is_io_error() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("events.out.tfevents.empty");
    fs::write(&empty, b"").unwrap();
    assert!(read_events(&empty).unwrap().is_empty());

    let missing = tmp.path().join("nope");
    let err = read_events(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { op: "open", .. }), "{err:?}");
    assert!(err.to_string().contains(&*missing.to_string_lossy()));
}

#[test]
fn writers_created_in_the_same_second_get_distinct_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writers: Vec<EventWriter> = (0..5)
        .map(|_| EventWriter::create(tmp.path()).unwrap())
        .collect();
    for (i, w) in writers.iter_mut().enumerate() {
        w.add_scalar("x", i as f32, 0, 1.0).unwrap();
        w.flush().unwrap();
    }
    let mut names: Vec<String> = writers
        .iter()
        .map(|w| w.path().file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 5);
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 5);
    // Each file holds only its own events.
    for (i, w) in writers.iter().enumerate() {
        let events = read_events(w.path()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(value(&events[1]).value, Some(Value::SimpleValue(i as f32)));
    }
}

#[test]
fn an_existing_file_is_never_overwritten() {
    // Learn the name pattern from one writer, then occupy the next 200
    // names (this second and the next) before creating another writer.
    let tmp = tempfile::tempdir().unwrap();
    let first = EventWriter::create(tmp.path()).unwrap();
    let name = first
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let (stem, n) = name.rsplit_once('.').unwrap();
    let n: u64 = n.parse().unwrap();
    let parts: Vec<&str> = stem.splitn(4, '.').collect(); // events out tfevents rest
    let (secs, rest) = parts[3].split_once('.').unwrap();
    let secs: u64 = secs.parse().unwrap();
    let mut occupied = Vec::new();
    for s in [secs, secs + 1] {
        for k in n + 1..=n + 200 {
            let p = tmp
                .path()
                .join(format!("events.out.tfevents.{s:010}.{rest}.{k}"));
            fs::write(&p, b"sentinel").unwrap();
            occupied.push(p);
        }
    }
    let second = EventWriter::create(tmp.path()).unwrap();
    assert!(!occupied.contains(&second.path().to_path_buf()));
    for p in &occupied {
        assert_eq!(fs::read(p).unwrap(), b"sentinel");
    }
    assert_eq!(read_events(second.path()).unwrap().len(), 1);
}

#[test]
fn invalid_input_writes_nothing_and_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = EventWriter::create(tmp.path()).unwrap();
    let err = w
        .add_histogram("spectrum", &[1.0, f64::INFINITY], 0, 0.0)
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&*w.path().to_string_lossy()), "{msg}");
    assert!(msg.contains("spectrum") && msg.contains("index 1"), "{msg}");
    let err = w
        .add_histogram_buckets("b", 0.0, 1.0, 1.0, 1.0, 1.0, &[1.0, 2.0], &[1.0], 0, 0.0)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    // The writer still works and the file holds only the version record.
    w.flush().unwrap();
    assert_eq!(read_events(w.path()).unwrap().len(), 1);
}

#[test]
fn create_fails_with_the_folder_in_the_message() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let run = file.join("run"); // a folder under a regular file
    let err = EventWriter::create(&run).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                op: "create folder",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&*run.to_string_lossy()), "{err}");
}
