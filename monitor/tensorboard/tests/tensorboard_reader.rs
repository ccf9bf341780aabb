//! The real consumer: TensorBoard's own Python loaders read what this crate
//! writes.
//!
//! The Python interpreter is the project's virtual environment, `.venv/bin/python` at the repository root,
//! which `bash scripts/setup --test` creates with the `tensorboard` package. Plain `cargo test` leaves them out
//! (ignored); `scripts/test` runs them with `--include-ignored`, and then they fail, never skip, when that Python
//! cannot be run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Json, Read};
use htsr_tensorboard::proto::{event::What, summary_value::Value};
use htsr_tensorboard::{read_events, EventWriter, HistogramProto, Summary};

/// The project's Python: `.venv/bin/python` at the repository root (two levels above this crate).
fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

/// Runs tests/read_with_tensorboard.py and returns its standard output.
fn run_script(args: &[&str]) -> String {
    let python = python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_with_tensorboard.py");
    let how_to_fix = format!(
        "These tests read event files with TensorBoard's own Python loaders, from {} with the `tensorboard` \
         package: run `bash scripts/setup` (from the repository root) to install it.",
        python.display()
    );
    let output = Command::new(&python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run TensorBoard's Python {}: {e}\n{how_to_fix}",
                python.display()
            )
        });
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("No module named") {
            how_to_fix.as_str()
        } else {
            ""
        };
        panic!(
            "{} {} {args:?} failed ({}):\n{stderr}\n{hint}",
            python.display(),
            script.display(),
            output.status,
        );
    }
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// What TensorBoard loads from a run folder.
fn tensorboard_read(run_dir: &Path) -> Json {
    let out = run_script(&["read", run_dir.to_str().expect("UTF-8 path")]);
    let json = common::parse(out.trim());
    assert_eq!(json.key("file_version").f64(), 2.0);
    json
}

/// Rows of `section` whose "tag" is `tag`, in TensorBoard's order.
fn rows<'a>(json: &'a Json, section: &str, tag: &str) -> Vec<&'a Json> {
    json.key(section)
        .arr()
        .iter()
        .filter(|r| r.key("tag").str() == tag)
        .collect()
}

#[test]
#[ignore = "needs .venv from bash scripts/setup --test; scripts/test runs it"]
fn scalars_are_bit_exact_at_out_of_order_steps_and_two_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = EventWriter::create(tmp.path()).unwrap();

    let loss: Vec<(i64, f32)> = vec![
        (5, 0.1),
        (1, 1.0 / 3.0),
        (3, -0.0),
        (2, f32::MIN_POSITIVE),
        (100, f32::from_bits(1)), // smallest subnormal
        (0, f32::MAX),
        (7, f32::MIN),
        (-1, std::f32::consts::PI),
        (1 << 40, 1.0 + f32::EPSILON),
        (4, f32::INFINITY),
        (6, f32::NEG_INFINITY),
        (3, 16_777_217.0), // rounds to 16777216 in f32; step repeated
    ];
    let alpha: Vec<(i64, f32)> = vec![(10, 2.25), (0, 6.02e23), (5, -1.5e-30), (9, 0.7)];

    let wall = |k: usize| 1_700_000_000.0 + k as f64 * 0.123_456_789;
    for (k, &(step, v)) in loss.iter().enumerate() {
        w.add_scalar("train/loss", v, step, wall(k)).unwrap();
        if let Some(&(s, a)) = alpha.get(k) {
            w.add_scalar("layer.3/alpha", a, s, wall(100 + k)).unwrap();
        }
    }
    w.add_scalar("train/loss", f32::NAN, 8, wall(99)).unwrap();
    w.flush().unwrap();

    let json = tensorboard_read(tmp.path());
    assert_eq!(
        json.key("tags").key("scalars").strs(),
        vec!["layer.3/alpha", "train/loss"]
    );

    for (tag, written, wall_base) in [("train/loss", &loss, 0), ("layer.3/alpha", &alpha, 100)] {
        let got = rows(&json, "scalars", tag);
        let expected_len = written.len() + usize::from(tag == "train/loss");
        assert_eq!(
            got.len(),
            expected_len,
            "{tag}: TensorBoard dropped or added points"
        );
        for (k, (row, &(step, v))) in got.iter().zip(written.iter()).enumerate() {
            assert_eq!(row.key("step").i64(), step, "{tag} #{k}");
            assert_eq!(
                row.key("wall_time").f64(),
                wall(wall_base + k),
                "{tag} #{k}"
            );
            let bits = row.key("bits").i64() as u32;
            assert_eq!(
                bits,
                v.to_bits(),
                "{tag} #{k}: wrote {v:e} ({:#010x}), TensorBoard read {:#010x}",
                v.to_bits(),
                bits
            );
            // The double TensorBoard holds is exactly the f32.
            assert_eq!(
                row.key("value").f64().to_bits(),
                (v as f64).to_bits(),
                "{tag} #{k}"
            );
        }
    }
    let last = rows(&json, "scalars", "train/loss").pop().unwrap();
    assert_eq!(last.key("step").i64(), 8);
    assert!(last.key("value").f64().is_nan());

    // TensorBoard's data layer sees both tags as scalars, with the same bits.
    for tag in ["train/loss", "layer.3/alpha"] {
        let dl = json.key("data_layer").key(tag);
        assert_eq!(dl.key("plugin").str(), "scalars", "{tag}");
        assert_eq!(dl.key("data_class").str(), "DATA_CLASS_SCALAR", "{tag}");
    }
    let migrated = rows(&json, "migrated_scalars", "layer.3/alpha");
    assert_eq!(migrated.len(), alpha.len());
    for (row, &(step, v)) in migrated.iter().zip(alpha.iter()) {
        assert_eq!(row.key("dtype").str(), "float32");
        assert_eq!(row.key("step").i64(), step);
        assert_eq!(row.key("bits").i64() as u32, v.to_bits());
    }
}

#[test]
#[ignore = "needs .venv from bash scripts/setup --test; scripts/test runs it"]
fn histograms_match_what_was_written() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = EventWriter::create(tmp.path()).unwrap();

    // Spectrum-like values: eigenvalues spread over six decades, plus zero
    // and negatives.
    let spectrum: Vec<f64> = (0..500)
        .map(|i| 10f64.powf(-3.0 + 6.0 * i as f64 / 499.0))
        .chain([0.0, -0.25, -1e-9, 1e-13])
        .collect();
    w.add_histogram("layer1/esd", &spectrum, 20, 1_700_000_001.5)
        .unwrap();
    w.add_histogram("layer1/esd", &[1.0, 2.0, 2.0, 3.0], 10, 1_700_000_000.5)
        .unwrap();
    let limits = [-1.0, 0.5, 1.0, 4.0, f64::MAX];
    let counts = [0.0, 3.0, 0.0, 7.0, 1.0];
    w.add_histogram_buckets(
        "prebinned",
        -0.5,
        9.0,
        11.0,
        30.0,
        120.0,
        &limits,
        &counts,
        3,
        42.0,
    )
    .unwrap();
    w.add_histogram("single", &[3.0], 4, 5.0).unwrap();
    w.add_histogram("single", &[], 5, 6.0).unwrap(); // empty
    w.flush().unwrap();

    // What the file holds, per read_events.
    let written: Vec<(String, i64, HistogramProto)> = read_events(w.path())
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.what {
            Some(What::Summary(Summary { mut value })) => {
                let v = value.remove(0);
                match v.value {
                    Some(Value::Histo(h)) => Some((v.tag, e.step, h)),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect();
    assert_eq!(written.len(), 5);

    let json = tensorboard_read(tmp.path());
    assert_eq!(
        json.key("tags").key("histograms").strs(),
        vec!["layer1/esd", "prebinned", "single"]
    );
    let mut got = rows(&json, "histograms", "layer1/esd");
    got.extend(rows(&json, "histograms", "prebinned"));
    got.extend(rows(&json, "histograms", "single"));
    assert_eq!(got.len(), 5);
    for (row, (tag, step, h)) in got.iter().zip(&written) {
        assert_eq!(row.key("tag").str(), tag);
        assert_eq!(row.key("step").i64(), *step);
        assert_eq!(row.key("min").f64(), h.min, "{tag}@{step}");
        assert_eq!(row.key("max").f64(), h.max, "{tag}@{step}");
        assert_eq!(row.key("num").f64(), h.num, "{tag}@{step}");
        assert_eq!(row.key("sum").f64(), h.sum, "{tag}@{step}");
        assert_eq!(row.key("sum_squares").f64(), h.sum_squares, "{tag}@{step}");
        assert_eq!(
            row.key("bucket_limit").f64s(),
            h.bucket_limit,
            "{tag}@{step}"
        );
        assert_eq!(row.key("bucket").f64s(), h.bucket, "{tag}@{step}");
    }

    // Independent expectations, not taken from the file.
    let esd = got[0];
    assert_eq!(esd.key("step").i64(), 20);
    assert_eq!(esd.key("num").f64(), spectrum.len() as f64);
    assert_eq!(esd.key("min").f64(), -0.25);
    assert_eq!(esd.key("max").f64(), 1000.0);
    assert_eq!(
        esd.key("bucket").f64s().iter().sum::<f64>(),
        spectrum.len() as f64
    );
    // No empty outer buckets: first and last hold data, and the last
    // right edge is above max.
    let counts_esd = esd.key("bucket").f64s();
    assert!(counts_esd[0] > 0.0 && *counts_esd.last().unwrap() > 0.0);
    assert!(*esd.key("bucket_limit").f64s().last().unwrap() > 1000.0);
    let small = got[1];
    assert_eq!(small.key("step").i64(), 10); // out of order: kept
    let nonzero: Vec<f64> = small
        .key("bucket")
        .f64s()
        .into_iter()
        .filter(|&c| c > 0.0)
        .collect();
    assert_eq!(nonzero, vec![1.0, 2.0, 1.0]);
    let pre = got[2];
    assert_eq!(pre.key("bucket_limit").f64s(), limits);
    assert_eq!(pre.key("bucket").f64s(), counts);
    assert_eq!(pre.key("wall_time").f64(), 42.0);
    let (single, empty) = (got[3], got[4]);
    assert_eq!(single.key("bucket").f64s(), vec![1.0]);
    assert_eq!(
        (single.key("min").f64(), single.key("max").f64()),
        (3.0, 3.0)
    );
    assert!(single.key("bucket_limit").f64s()[0] > 3.0);
    assert_eq!(empty.key("step").i64(), 5);
    assert_eq!(empty.key("num").f64(), 0.0);
    assert!(empty.key("bucket").arr().is_empty());

    for tag in ["layer1/esd", "prebinned", "single"] {
        let dl = json.key("data_layer").key(tag);
        assert_eq!(dl.key("plugin").str(), "histograms", "{tag}");
        assert_eq!(dl.key("data_class").str(), "DATA_CLASS_TENSOR", "{tag}");
    }
}

#[test]
#[ignore = "needs .venv from bash scripts/setup --test; scripts/test runs it"]
fn text_is_read_by_the_text_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = EventWriter::create(tmp.path()).unwrap();
    let notes = [
        (
            0,
            "# Run notes\n\n| layer | alpha |\n|---|---|\n| fc1 | 2.31 |",
        ),
        (7, "ünïcödé, emoji 🙂, quotes \" and \\ and a tab\t."),
        (3, ""),
    ];
    for (step, md) in notes {
        w.add_text("notes", md, step, 1.25 + step as f64).unwrap();
    }
    w.add_text("config", "lr = `1e-3`", 0, 2.0).unwrap();
    w.flush().unwrap();

    let json = tensorboard_read(tmp.path());
    let got = rows(&json, "text", "notes");
    assert_eq!(got.len(), notes.len());
    for (row, (step, md)) in got.iter().zip(notes) {
        assert_eq!(row.key("step").i64(), step);
        assert_eq!(row.key("wall_time").f64(), 1.25 + step as f64);
        assert_eq!(row.key("string").str(), md);
        assert!(row.key("shape").arr().is_empty(), "rank 0");
    }
    assert_eq!(
        rows(&json, "text", "config")[0].key("string").str(),
        "lr = `1e-3`"
    );
    for tag in ["config", "notes"] {
        let dl = json.key("data_layer").key(tag);
        assert_eq!(dl.key("plugin").str(), "text", "{tag}");
        assert_eq!(dl.key("data_class").str(), "DATA_CLASS_TENSOR", "{tag}");
    }
}

#[test]
#[ignore = "needs .venv from bash scripts/setup --test; scripts/test runs it"]
fn text_summary_is_byte_identical_to_tensorboards_text_pb() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = EventWriter::create(tmp.path()).unwrap();
    let (tag, md) = ("layer2/notes", "**α** = 2.31 🙂\n- item");
    w.add_text(tag, md, 0, 0.0).unwrap();
    w.flush().unwrap();
    let events = read_events(w.path()).unwrap();
    let Some(What::Summary(summary)) = &events[1].what else {
        panic!("not a summary")
    };
    let ours: String = prost::Message::encode_to_vec(summary)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let theirs = run_script(&["text_pb", tag, md]);
    assert_eq!(ours, theirs.trim());
}

#[test]
#[ignore = "needs .venv from bash scripts/setup --test; scripts/test runs it"]
fn tensorboard_reads_two_files_created_in_the_same_second() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = EventWriter::create(tmp.path()).unwrap();
    let mut b = EventWriter::create(tmp.path()).unwrap();
    assert_ne!(a.path(), b.path());
    a.add_scalar("a", 1.5, 1, 10.0).unwrap();
    b.add_scalar("b", 2.5, 2, 11.0).unwrap();
    a.close().unwrap();
    b.close().unwrap();

    let json = tensorboard_read(tmp.path());
    assert_eq!(json.key("tags").key("scalars").strs(), vec!["a", "b"]);
    assert_eq!(rows(&json, "scalars", "a")[0].key("value").f64(), 1.5);
    assert_eq!(rows(&json, "scalars", "b")[0].key("value").f64(), 2.5);
}
