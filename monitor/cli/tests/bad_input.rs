//! Bad input gets a clear error naming the file and tensor, other layers are still analyzed, and the exit code
//! says whether anything failed. Runs the real `htsr-watch analyze` binary on real files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use htsr_contracts::{LayerStatus, Phase};
use htsr_engine::analyze::{analyze_checkpoint, AnalyzeOptions};
use htsr_engine::checkpoint::{probe_file, Checkpoint};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

/// A tensor to write: name, dtype, shape, little-endian bytes.
struct T(&'static str, Dtype, Vec<usize>, Vec<u8>);

fn f32s(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A deterministic, full-rank-ish 64x32 matrix.
fn good_matrix(seed: u32) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2654435761).max(1);
    f32s((0..64 * 32).map(|_| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s as f32 / u32::MAX as f32) - 0.5
    }))
}

fn write(path: &Path, tensors: &[T], metadata: Option<HashMap<String, String>>) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|T(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let bytes = safetensors::serialize(views, metadata).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn analyze(path: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_htsr-watch"))
        .arg("analyze")
        .arg(path)
        .args(extra)
        .output()
        .unwrap()
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn file_error(path: &Path) -> String {
    let out = analyze(path, &[]);
    assert_eq!(out.status.code(), Some(2), "unreadable file -> exit 2");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains(&path.display().to_string()),
        "error names the file: {err}"
    );
    err
}

#[test]
fn truncated_file_is_refused_with_the_reason() {
    let d = dir();
    let p = d.path().join("model.safetensors");
    write(
        &p,
        &[T("fc.weight", Dtype::F32, vec![64, 32], good_matrix(1))],
        None,
    );
    let len = std::fs::metadata(&p).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len - 100).unwrap();
    let err = file_error(&p);
    assert!(err.contains("truncated"), "{err}");
    let probe = probe_file(&p);
    assert!(probe.is_err() || !probe.unwrap().is_complete());
}

#[test]
fn text_file_and_empty_file_are_not_safetensors() {
    let d = dir();
    let text = d.path().join("notes.safetensors");
    std::fs::write(&text, "these are not the weights you are looking for\n").unwrap();
    let err = file_error(&text);
    assert!(err.contains("not a valid safetensors file"), "{err}");
    let empty = d.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    assert!(file_error(&empty).contains("empty"));
}

#[test]
fn header_that_lies_about_sizes_is_refused() {
    let d = dir();
    let p = d.path().join("liar.safetensors");
    let header = br#"{"fc.weight":{"dtype":"F32","shape":[64,32],"data_offsets":[0,8192]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend(vec![0u8; 4096]); // half the data the header promises
    std::fs::write(&p, &bytes).unwrap();
    let err = file_error(&p);
    assert!(
        err.contains("do not cover") || err.contains("invalid"),
        "{err}"
    );
}

#[test]
fn directory_without_a_checkpoint_says_so() {
    let d = dir();
    let err = file_error(d.path());
    assert!(err.contains("no checkpoint here"), "{err}");
}

#[test]
fn bad_tensors_fail_alone_and_the_rest_is_analyzed() {
    let d = dir();
    let p = d.path().join("mixed.safetensors");
    let mut nan = f32s((0..64 * 32).map(|i| i as f32 / 100.0));
    nan[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
    nan[4..8].copy_from_slice(&f32::INFINITY.to_le_bytes());
    write(
        &p,
        &[
            T("good.weight", Dtype::F32, vec![64, 32], good_matrix(2)),
            T("nan.weight", Dtype::F32, vec![64, 32], nan),
            T(
                "zero.weight",
                Dtype::F32,
                vec![64, 32],
                vec![0u8; 64 * 32 * 4],
            ),
            T(
                "row.weight",
                Dtype::F32,
                vec![1, 300],
                f32s((0..300).map(|i| i as f32)),
            ),
            T(
                "fp8.weight",
                Dtype::F8_E4M3,
                vec![64, 32],
                vec![1u8; 64 * 32],
            ),
            T("steps", Dtype::I64, vec![4], vec![0u8; 32]),
            T(
                "good.bias",
                Dtype::F32,
                vec![64],
                f32s((0..64).map(|i| i as f32)),
            ),
        ],
        None,
    );
    let out = analyze(&p, &[]);
    assert_eq!(out.status.code(), Some(1), "a failed layer -> exit 1");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("1 analyzed, 3 failed, 3 skipped"), "{table}");

    let a = analyze_checkpoint(&p, &AnalyzeOptions::default()).unwrap();
    let by: HashMap<&str, _> = a
        .layers
        .iter()
        .map(|l| (l.report.name.as_str(), &l.report))
        .collect();
    assert_eq!(by["good"].status, LayerStatus::Success);
    let reason = |n: &str| by[n].reason.clone().unwrap_or_default();
    assert_eq!(by["nan"].status, LayerStatus::Failed);
    assert!(
        reason("nan").contains("1 NaN and 1 infinite"),
        "{}",
        reason("nan")
    );
    assert_eq!(by["zero"].status, LayerStatus::Failed);
    assert!(reason("zero").contains("all weights are zero"));
    assert_eq!(by["zero"].phase(), Some(Phase::RankCollapse));
    assert_eq!(by["row"].status, LayerStatus::Skipped);
    assert!(
        reason("row").contains("below min_evals"),
        "{}",
        reason("row")
    );
    assert_eq!(by["fp8"].status, LayerStatus::Failed);
    assert!(reason("fp8").contains("unsupported dtype F8_E4M3"));
    assert_eq!(by["steps"].status, LayerStatus::Skipped);
    assert!(reason("steps").contains("integer"));
    assert!(reason("good.bias").contains("1-D"));
}

#[test]
fn half_precision_dtypes_give_the_f32_answer() {
    let d = dir();
    let base = good_matrix(3);
    let as_f32: Vec<f32> = base
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let to = |f: fn(f32) -> [u8; 2]| -> Vec<u8> { as_f32.iter().flat_map(|v| f(*v)).collect() };
    let p = d.path().join("dtypes.safetensors");
    write(
        &p,
        &[
            T("f32.weight", Dtype::F32, vec![64, 32], base.clone()),
            T(
                "f64.weight",
                Dtype::F64,
                vec![64, 32],
                as_f32
                    .iter()
                    .flat_map(|v| (*v as f64).to_le_bytes())
                    .collect(),
            ),
            T(
                "f16.weight",
                Dtype::F16,
                vec![64, 32],
                to(|v| half::f16::from_f32(v).to_le_bytes()),
            ),
            T(
                "bf16.weight",
                Dtype::BF16,
                vec![64, 32],
                to(|v| half::bf16::from_f32(v).to_le_bytes()),
            ),
        ],
        None,
    );
    let a = analyze_checkpoint(&p, &AnalyzeOptions::default()).unwrap();
    let norm = |i: usize| a.layers[i].report.metrics.as_ref().unwrap().norm;
    assert_eq!(norm(0), norm(1), "f64 of the same values is exact");
    assert!((norm(2) / norm(0) - 1.0).abs() < 1e-3, "f16 rounding only");
    assert!((norm(3) / norm(0) - 1.0).abs() < 1e-2, "bf16 rounding only");
}

#[test]
fn sharded_checkpoint_reads_as_one() {
    let d = dir();
    let ck = d.path().join("sharded");
    std::fs::create_dir(&ck).unwrap();
    let meta: HashMap<String, String> = [("htsr.step".to_string(), "42".to_string())].into();
    write(
        &ck.join("model-00001-of-00002.safetensors"),
        &[T("a.weight", Dtype::F32, vec![64, 32], good_matrix(4))],
        Some(meta),
    );
    write(
        &ck.join("model-00002-of-00002.safetensors"),
        &[T("b.weight", Dtype::F32, vec![64, 32], good_matrix(5))],
        None,
    );
    std::fs::write(
        ck.join("model.safetensors.index.json"),
        r#"{"metadata":{"total_size":16384},"weight_map":{"a.weight":"model-00001-of-00002.safetensors","b.weight":"model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let c = Checkpoint::open(&ck).unwrap();
    let names: Vec<&str> = c.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a.weight", "b.weight"]);
    assert_eq!(c.metadata()["htsr.step"], "42");
    let out = analyze(&ck, &["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["layers"].as_array().unwrap().len(), 2);
    assert_eq!(json["layers"][1]["status"], "success");

    // An index naming a shard that is missing is an error that names the missing file.
    std::fs::remove_file(ck.join("model-00002-of-00002.safetensors")).unwrap();
    let err = Checkpoint::open(&ck).unwrap_err().to_string();
    assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");
}

#[test]
fn layer_filter_and_csv_output() {
    let d = dir();
    let p: PathBuf = d.path().join("two.safetensors");
    write(
        &p,
        &[
            T("enc.fc.weight", Dtype::F32, vec![64, 32], good_matrix(6)),
            T("dec.fc.weight", Dtype::F32, vec![64, 32], good_matrix(7)),
        ],
        None,
    );
    let out = analyze(&p, &["--format", "csv", "--layers", "^enc"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for col in [
        "name",
        "alpha",
        "D",
        "xmin",
        "num_pl_spikes",
        "mp_softrank",
        "phase",
        "warning",
    ] {
        assert!(header.contains(&col), "CSV column {col} in {header:?}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains("enc.fc"));
}

#[test]
fn a_name_json_cannot_hold_as_text_is_refused_and_the_error_is_safe_to_print() {
    // A lone UTF-16 surrogate escaped in the header (JSON can spell it, UTF-8 text cannot hold it), beside an escape
    // sequence: the file is refused with an error naming it, and nothing raw reaches the terminal.
    let tmp = dir();
    let path = tmp.path().join("surrogate.safetensors");
    let header =
        br#"{"\ud800evil\u001b[2J.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 16]);
    std::fs::write(&path, bytes).unwrap();
    let err = file_error(&path);
    assert!(
        !err.chars()
            .any(|c| htsr_contracts::text::is_unsafe(c) && c != '\n'),
        "{err:?}"
    );
}

#[test]
fn long_and_wide_names_keep_the_table_whole_and_aligned() {
    // Once a panic ("start byte index 14 is not a char boundary"): a long name of multi-byte characters clipped by
    // bytes; and wide characters misaligned the columns.
    let tmp = dir();
    let path = tmp.path().join("names.safetensors");
    let names = [
        "couche_é_ü_日本語のとても長い名前のレイヤー_これは本当に長い.weight",
        "fc.weight",
        "emoji🚀🚀.weight",
    ];
    let tensors: Vec<T> = names
        .iter()
        .enumerate()
        .map(|(i, n)| T(n, Dtype::F32, vec![64, 32], good_matrix(i as u32 + 1)))
        .collect();
    write(&path, &tensors, None);
    let out = analyze(&path, &["--color", "never"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every data row has its shape column ("64x32") at the same display column as the header's "shape".
    let column_of =
        |line: &str, word: &str| htsr_contracts::text::width(&line[..line.find(word).unwrap()]);
    let header = table.lines().nth(1).unwrap();
    let at = column_of(header, "shape");
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("64x32")).collect();
    assert_eq!(rows.len(), 3, "{table}");
    for row in rows {
        assert_eq!(column_of(row, "64x32"), at, "misaligned:\n{table}");
    }
    assert!(
        table.contains("…"),
        "the long name is clipped, at the front:\n{table}"
    );
}
