//! CSV and JSONL exports: WeightWatcher's column names, one row per (run, step, layer), readable as is.

use htsr_contracts::row::COLUMNS;
use htsr_storage::export::{write_csv, write_jsonl};
use htsr_storage::{fixtures, Store};

fn store_with_two_runs(dir: &tempfile::TempDir) -> Store {
    let (store, _) = Store::open(dir.path().join("store")).unwrap();
    for run in ["alpha-run", "beta,\"quoted\""] {
        for step in [100u64, 200] {
            let mut layers = vec![
                fixtures::layer_report("enc.0.attn, \"q\"\nproj", step),
                fixtures::skipped_report("enc.0.bias"),
            ];
            layers[0].metrics.as_mut().unwrap().alpha_weighted = f64::NAN;
            let rec = fixtures::checkpoint_record(run, step, &layers);
            store.write_checkpoint(&rec, &layers, &[]).unwrap();
        }
    }
    store
}

#[test]
fn csv_has_weightwatcher_columns_and_reads_back_cell_for_cell() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_two_runs(&dir);
    let mut buf = Vec::new();
    assert_eq!(write_csv(&store, None, &mut buf).unwrap(), 8);
    let mut rd = csv::Reader::from_reader(buf.as_slice());
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, COLUMNS);
    for ww in [
        "name",
        "layer_type",
        "N",
        "M",
        "alpha",
        "D",
        "W_scale",
        "mp_softrank",
        "status",
        "warning",
    ] {
        assert!(header.iter().any(|h| h == ww), "missing {ww}");
    }
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 8);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    // Ordered by run, step, layer; quoting keeps commas, quotes and newlines inside one cell.
    assert_eq!(&rows[0][col("run")], "alpha-run");
    assert_eq!(&rows[0][col("step")], "100");
    assert_eq!(&rows[0][col("name")], "enc.0.attn, \"q\"\nproj");
    assert_eq!(&rows[4][col("run")], "beta,\"quoted\"");
    let report = store
        .layer_report("alpha-run", 100, "enc.0.attn, \"q\"\nproj")
        .unwrap()
        .unwrap();
    let alpha: f64 = rows[0][col("alpha")].parse().unwrap();
    assert_eq!(
        alpha,
        report.alpha().unwrap(),
        "full precision in the export"
    );
    assert_eq!(&rows[0][col("alpha_weighted")], "", "NaN is an empty cell");
    assert_eq!(&rows[0][col("phase")], report.phase().unwrap().as_str());
    // The skipped layer: status and reason, every number empty.
    let skipped = &rows[1];
    assert_eq!(&skipped[col("status")], "skipped");
    assert_eq!(&skipped[col("reason")], "1-D tensor");
    for c in [
        "alpha",
        "N",
        "D",
        "num_spikes",
        "phase",
        "very_heavy_tailed",
    ] {
        assert_eq!(&skipped[col(c)], "", "column {c}");
    }

    let mut one = Vec::new();
    assert_eq!(write_csv(&store, Some("alpha-run"), &mut one).unwrap(), 4);
    let mut empty = Vec::new();
    assert_eq!(write_csv(&store, Some("nope"), &mut empty).unwrap(), 0);
    assert_eq!(
        String::from_utf8(empty).unwrap().trim_end(),
        COLUMNS.join(",")
    );
}

#[test]
fn jsonl_has_one_object_per_row_with_the_same_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_two_runs(&dir);
    let mut buf = Vec::new();
    assert_eq!(
        write_jsonl(&store, Some("beta,\"quoted\""), &mut buf).unwrap(),
        4
    );
    let text = String::from_utf8(buf).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), COLUMNS.len());
    assert!(COLUMNS.iter().all(|c| rows[0].get(c).is_some()));
    assert_eq!(rows[2]["step"], 200);
    assert!(rows[0]["alpha_weighted"].is_null());
    assert!(rows[1]["alpha"].is_null());
    assert_eq!(rows[1]["status"], "skipped");
}
