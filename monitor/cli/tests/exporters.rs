//! End-to-end tests of the exporters with their real consumers: the real daemon fills a real store from
//! checkpoints written by the test helpers; TensorBoard's own loader (`EventMultiplexer`, Python `tensorboard`)
//! reads the event files, and prometheus_client's OpenMetrics parser reads the `/metrics` page scraped over
//! loopback. The Python is the project's virtual environment (`.venv/bin/python`, made by `bash scripts/setup`);
//! without it these tests fail and say so.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use htsr_contracts::{CheckpointRecord, LayerReport, Phase};
use htsr_exporters::tensorboard::run_folder_name;
use serde_json::Value;

/// How long a condition may take before the test calls it a hang (a generous limit, not a performance bound).
const HANG: Duration = Duration::from_secs(120);

/// A layer name as a safetensors file may spell it: quotes, a backslash, a newline and non-ASCII letters.
const WEIRD_LAYER: &str = "enc.\"q\\k\nv\" ü→λ";

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: these tests read the exporters' output with TensorBoard and prometheus_client from the \
         project's virtual environment; run `bash scripts/setup` (from the repository root) first",
        python.display()
    );
    python
}

/// Runs `tests/exporters/<script>` with `args` (and `stdin`), returns its standard output parsed as JSON.
fn run_python(script: &str, args: &[&Path], stdin: Option<&[u8]>) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/exporters")
        .join(script);
    let mut child = Command::new(python())
        .arg(&path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the project's Python");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named"),
        "{script}: a Python package is missing from .venv: run `bash scripts/setup` (it installs the pinned \
         tensorboard and prometheus-client)\n{err}"
    );
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{err}",
        out.status
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// `htsr-watch export --db DIR/.htsr --format tensorboard -o LOGDIR`; returns its stderr.
fn export_tensorboard(dir: &Path, logdir: &Path) -> String {
    let out = Command::new(BIN)
        .args(["export", "--db"])
        .arg(dir.join(".htsr"))
        .args(["--format", "tensorboard", "-o"])
        .arg(logdir)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "export failed: {err}");
    err
}

fn assert_watch_once_ok(dir: &Path, extra: &[&str]) -> String {
    let out = watch_once(dir, extra);
    let err = stderr(&out);
    assert!(out.status.success(), "htsr-watch --once failed: {err}");
    err
}

/// A checkpoint of `layers` (tensor name, rows, cols) at `step`, seeded by `seed`, with `meta` added.
fn write_layers(
    path: &Path,
    layers: &[(&str, usize, usize)],
    step: u64,
    seed: u64,
    meta: &[(&str, String)],
) {
    let layers: Vec<(&str, usize, usize, u64)> = layers
        .iter()
        .enumerate()
        .map(|(i, (n, r, c))| (*n, *r, *c, seed * 10 + i as u64))
        .collect();
    let mut meta: Vec<(&str, String)> = meta.to_vec();
    meta.push(("htsr.step", step.to_string()));
    write_atomic(path, &layers_bytes(&layers, &meta));
}

fn weird_tensor() -> String {
    format!("{WEIRD_LAYER}.weight")
}

/// The scalars a layer report should have in TensorBoard, computed here from the report's fields.
fn expected_scalars(l: &LayerReport) -> Vec<(&'static str, f64)> {
    let mut v = Vec::new();
    if let Some(p) = &l.power_law {
        v.push(("alpha", p.alpha));
        v.push(("D", p.d));
    }
    if let Some(mp) = &l.mp {
        v.push(("num_spikes", mp.num_spikes as f64));
        v.push(("mp_softrank", mp.mp_softrank));
    }
    if let Some(m) = &l.metrics {
        v.push(("stable_rank", m.stable_rank));
    }
    if let Some(g) = l.erg.as_ref().and_then(|e| e.ERG_gap) {
        v.push(("ERG_gap", g as f64));
    }
    if let Some(p) = l.phase() {
        let index = Phase::ALL.iter().position(|q| *q == p).unwrap();
        v.push(("phase", index as f64));
    }
    v.retain(|(_, x)| x.is_finite());
    v
}

fn expected_wall_time(r: &CheckpointRecord) -> f64 {
    r.metadata
        .get("htsr.wall_time")
        .map(|s| s.parse().unwrap())
        .unwrap_or(r.analyzed_at)
}

/// Points TensorBoard holds: (TensorBoard run, tag, step) -> every point found there (a duplicate shows as two).
type Points = BTreeMap<(String, String, i64), Vec<Value>>;

fn points(tb: &Value, section: &str) -> Points {
    let mut out = Points::new();
    for (run, r) in tb.as_object().unwrap() {
        for p in r[section].as_array().unwrap() {
            let key = (
                run.clone(),
                p["tag"].as_str().unwrap().to_string(),
                p["step"].as_i64().unwrap(),
            );
            out.entry(key).or_default().push(p.clone());
        }
    }
    out
}

/// Checks everything TensorBoard read against the store: every scalar and histogram of every (layer, step)
/// exactly once with the store's values (f32 for scalars) and wall time, the checkpoint marker, one legend per
/// run, and nothing else. Returns how many points it checked.
fn check_against_store(tb: &Value, store: &htsr_storage::Store) -> usize {
    let scalars = points(tb, "scalars");
    let histograms = points(tb, "histograms");
    let text = points(tb, "text");
    for (key, found) in scalars.iter().chain(&histograms).chain(&text) {
        assert_eq!(
            found.len(),
            1,
            "{key:?} is in TensorBoard {} times",
            found.len()
        );
    }
    let mut want_scalars = BTreeSet::new();
    let mut want_histograms = BTreeSet::new();
    let mut want_runs = BTreeSet::new();
    for run in store.runs().unwrap() {
        let folder = run_folder_name(&run.run);
        want_runs.insert(folder.clone());
        for record in store.checkpoints(&run.run).unwrap() {
            let step = record.step as i64;
            let wall = expected_wall_time(&record);
            let marker = (
                folder.clone(),
                "htsr/checkpoint/analysis_seconds".to_string(),
                step,
            );
            let got = &scalars
                .get(&marker)
                .unwrap_or_else(|| panic!("no {marker:?}"))[0];
            assert_eq!(
                got["value"].as_f64().unwrap(),
                record.analysis_seconds as f32 as f64
            );
            want_scalars.insert(marker);
            // The training loop's numbers, where the checkpoint has them.
            let training = record.training();
            for (tag, value) in [
                ("loss", training.loss),
                ("lr", training.lr),
                ("batch_size", training.batch_size.map(|b| b as f64)),
                ("epoch", training.epoch.map(|e| e as f64)),
            ] {
                let key = (folder.clone(), format!("htsr/checkpoint/{tag}"), step);
                match value {
                    Some(v) => {
                        let got = &scalars.get(&key).unwrap_or_else(|| panic!("no {key:?}"))[0];
                        assert_eq!(got["value"].as_f64().unwrap(), v as f32 as f64, "{key:?}");
                        want_scalars.insert(key);
                    }
                    None => assert!(
                        !scalars.contains_key(&key),
                        "{key:?} without a value in the store"
                    ),
                }
            }
            for layer in store.layers_at(&run.run, record.step).unwrap() {
                for (metric, value) in expected_scalars(&layer) {
                    let key = (
                        folder.clone(),
                        format!("htsr/{}/{metric}", layer.name),
                        step,
                    );
                    let got = &scalars
                        .get(&key)
                        .unwrap_or_else(|| panic!("TensorBoard lacks {key:?}"))[0];
                    assert_eq!(
                        got["value"].as_f64().unwrap(),
                        value as f32 as f64,
                        "{key:?}: TensorBoard's value is not the store's"
                    );
                    assert_eq!(got["wall_time"].as_f64().unwrap(), wall, "{key:?}");
                    want_scalars.insert(key);
                }
                let Some(esd) = &layer.esd else { continue };
                let nonzero: u64 = esd.counts.iter().map(|&c| c as u64).sum();
                if nonzero == 0 {
                    continue;
                }
                let key = (
                    folder.clone(),
                    format!("htsr/{}/log10_eigenvalues", layer.name),
                    step,
                );
                let h = &histograms
                    .get(&key)
                    .unwrap_or_else(|| panic!("TensorBoard lacks the histogram {key:?}"))[0];
                assert_eq!(h["num"].as_f64().unwrap(), nonzero as f64, "{key:?}");
                let buckets: f64 = h["bucket"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b.as_f64().unwrap())
                    .sum();
                assert_eq!(buckets, nonzero as f64, "{key:?}");
                // Limits in log10 units: the last is the log10 of the largest eigenvalue.
                let limits = h["bucket_limit"].as_array().unwrap();
                assert_eq!(
                    limits.last().unwrap().as_f64().unwrap(),
                    esd.log10_hi,
                    "{key:?}"
                );
                assert!(
                    (h["min"].as_f64().unwrap() - esd.log10_lo).abs() < 1e-9,
                    "{key:?}"
                );
                assert!(
                    (h["max"].as_f64().unwrap() - esd.lambda_max.log10()).abs() < 1e-9,
                    "{key:?}"
                );
                assert_eq!(h["wall_time"].as_f64().unwrap(), wall, "{key:?}");
                want_histograms.insert(key);
            }
        }
    }
    let got_scalars: BTreeSet<_> = scalars.keys().cloned().collect();
    assert_eq!(
        got_scalars, want_scalars,
        "scalars in TensorBoard vs in the store"
    );
    let got_histograms: BTreeSet<_> = histograms.keys().cloned().collect();
    assert_eq!(
        got_histograms, want_histograms,
        "histograms in TensorBoard vs in the store"
    );
    let got_runs: BTreeSet<String> = tb.as_object().unwrap().keys().cloned().collect();
    assert_eq!(got_runs, want_runs, "TensorBoard's runs");
    // The legend: one text summary per run, naming every phase with its integer.
    for run in &want_runs {
        let legends: Vec<_> = text
            .iter()
            .filter(|((r, t, _), _)| r == run && t == "htsr/phase_legend")
            .collect();
        assert_eq!(legends.len(), 1, "legends of {run}");
        let md = legends[0].1[0]["string"].as_str().unwrap();
        for p in Phase::ALL {
            assert!(
                md.contains(&format!("| {} | `{}` |", p.index(), p.as_str())),
                "{md}"
            );
        }
    }
    want_scalars.len() + want_histograms.len()
}

/// Every event file under `logdir` with its size.
fn event_files(logdir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    for run in std::fs::read_dir(logdir).unwrap() {
        let run = run.unwrap().path();
        for f in std::fs::read_dir(&run).unwrap() {
            let f = f.unwrap();
            out.insert(f.path(), f.metadata().unwrap().len());
        }
    }
    out
}

#[test]
#[ignore = "needs .venv from bash scripts/setup --test; scripts/test runs it"]
fn an_exported_store_reads_back_in_tensorboard_once_per_point_and_a_second_export_adds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    let logdir = tmp.path().join("tb");
    // runA: the test model, steps from the metadata, wall time from the analysis.
    for (i, step) in [100u64, 200, 300].into_iter().enumerate() {
        let spec = Spec {
            step: Some(step),
            ..Spec::seed(i as u64 + 1)
        };
        write_checkpoint(&dir.join("runA"), &step_name(step), &spec);
    }
    // A run whose name is no folder name (from `htsr.run`), with the checkpoint's wall time and a layer whose
    // name has quotes, a backslash and a newline.
    let weird = weird_tensor();
    let layers = [("fc1.weight", 64, 32), (weird.as_str(), 48, 24)];
    for (i, step) in [5u64, 10].into_iter().enumerate() {
        let meta = [
            ("htsr.run", "sweep/b".to_string()),
            ("htsr.wall_time", format!("{}.25", 1_700_000_000 + i * 60)),
            ("htsr.loss", format!("{}", 2.5 / (i + 1) as f64)),
            ("htsr.lr", "0.01".to_string()),
            ("htsr.batch_size", "32".to_string()),
        ];
        write_layers(
            &dir.join("b").join(step_name(step)),
            &layers,
            step,
            40 + i as u64,
            &meta,
        );
    }
    assert_watch_once_ok(&dir, &[]);

    // Event files make a folder: -o is required.
    let out = Command::new(BIN)
        .args(["export", "--db"])
        .arg(dir.join(".htsr"))
        .args(["--format", "tensorboard"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("-o LOGDIR"), "{}", stderr(&out));

    let first = export_tensorboard(&dir, &logdir);
    assert!(first.contains("5 checkpoints written"), "{first}");
    let tb = run_python("read_tensorboard.py", &[&logdir], None);
    let store = open_store(&dir);
    let checked = check_against_store(&tb, &store);
    // 3 dense layers x 7 scalars + 1 histogram, 3 checkpoints, plus 2 layers x 8 at 2 checkpoints, plus markers;
    // a failed fit (none expected here) would lower it, so this only guards against checking nothing.
    assert!(
        checked >= 3 * 3 * 6 + 2 * 2 * 6,
        "checked only {checked} points"
    );
    assert!(
        tb.as_object()
            .unwrap()
            .contains_key(&run_folder_name("sweep/b")),
        "runs: {:?}",
        tb.as_object().unwrap().keys()
    );
    let weird_tag = format!("htsr/{WEIRD_LAYER}/alpha");
    assert!(
        points(&tb, "scalars")
            .keys()
            .any(|(_, t, _)| *t == weird_tag),
        "the layer with quotes, a backslash and a newline is missing"
    );
    drop(store);

    // Again: nothing new, not even an empty file.
    let files = event_files(&logdir);
    let second = export_tensorboard(&dir, &logdir);
    assert!(second.contains("0 checkpoints written"), "{second}");
    assert!(second.contains("5 were there already"), "{second}");
    assert_eq!(
        event_files(&logdir),
        files,
        "a second export changed the event files"
    );

    // A new checkpoint: only it is added, and TensorBoard still has every point once.
    let spec = Spec {
        step: Some(400),
        ..Spec::seed(4)
    };
    write_checkpoint(&dir.join("runA"), &step_name(400), &spec);
    assert_watch_once_ok(&dir, &[]);
    let third = export_tensorboard(&dir, &logdir);
    assert!(third.contains("1 checkpoints written"), "{third}");
    assert!(third.contains("5 were there already"), "{third}");
    let tb = run_python("read_tensorboard.py", &[&logdir], None);
    check_against_store(&tb, &open_store(&dir));
}

#[test]
#[ignore = "needs .venv from bash scripts/setup --test; scripts/test runs it"]
fn a_checkpoint_cut_off_mid_write_is_completed_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    let logdir = tmp.path().join("tb");
    for step in [1u64, 2] {
        let spec = Spec {
            step: Some(step),
            ..Spec::seed(step)
        };
        write_checkpoint(&dir.join("run"), &step_name(step), &spec);
    }
    assert_watch_once_ok(&dir, &[]);
    export_tensorboard(&dir, &logdir);
    // Cut the event file inside the last checkpoint (as a killed exporter or a full disk leaves it): its marker
    // (a record of about 60 bytes) is gone, and the file ends inside the record before it (the last layer's
    // histogram, over a kilobyte).
    let (file, len) = event_files(&logdir).into_iter().next().unwrap();
    let cut = len - 100;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let (_, defect) = htsr_tensorboard::read_events_until_defect(&file).unwrap();
    assert!(
        matches!(defect, Some(htsr_tensorboard::Error::Truncated { .. })),
        "the cut should leave a partial record: {defect:?}"
    );
    let again = export_tensorboard(&dir, &logdir);
    assert!(again.contains("1 checkpoints written"), "{again}");
    let tb = run_python("read_tensorboard.py", &[&logdir], None);
    check_against_store(&tb, &open_store(&dir));
}

/// Waits until `cond` holds, polling; panics with `what` after [`HANG`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs .venv from bash scripts/setup --test; scripts/test runs it"]
fn live_export_catches_up_then_follows_new_checkpoints_and_a_restart_adds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    let logdir = tmp.path().join("tb");
    let spec = |step: u64| Spec {
        step: Some(step),
        ..Spec::seed(step)
    };
    // Two checkpoints stored before the exporter exists: caught up on start.
    for step in [10u64, 20] {
        write_checkpoint(&dir.join("live"), &step_name(step), &spec(step));
    }
    assert_watch_once_ok(&dir, &[]);
    let log = tmp.path().join("daemon.log");
    let mut daemon = Daemon::start_logging(
        &dir,
        &log,
        &["--tensorboard", logdir.to_str().unwrap()],
        "info,htsr_exporters=debug",
    );
    daemon.wait_for("tensorboard: caught up", 1, HANG);
    assert!(
        daemon.log_text().contains("2 checkpoints written"),
        "{}",
        daemon.log_text()
    );
    // Two more while it runs.
    for step in [30u64, 40] {
        write_checkpoint(&dir.join("live"), &step_name(step), &spec(step));
        daemon.wait_for(
            &format!("tensorboard: exported run=live step={step} "),
            1,
            HANG,
        );
    }
    let (status, log_text) = daemon.terminate(HANG);
    assert!(status.success(), "{log_text}");
    assert!(!log_text.contains("WARN"), "{log_text}");
    let tb = run_python("read_tensorboard.py", &[&logdir], None);
    let store = open_store(&dir);
    check_against_store(&tb, &store);
    let steps: BTreeSet<i64> = points(&tb, "scalars").keys().map(|(_, _, s)| *s).collect();
    assert_eq!(steps, BTreeSet::from([10, 20, 30, 40]));
    drop(store);

    // A restart with the same LOGDIR writes nothing.
    let files = event_files(&logdir);
    let err = assert_watch_once_ok(&dir, &["--tensorboard", logdir.to_str().unwrap()]);
    assert!(
        err.contains("0 checkpoints written, 4 already there"),
        "{err}"
    );
    assert_eq!(event_files(&logdir), files);
}

#[test]
fn an_unwritable_logdir_is_reported_once_and_analysis_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    // A LOGDIR under a regular file cannot be created, even by root.
    let blocker = tmp.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let logdir = blocker.join("tb");
    for step in [1u64, 2, 3] {
        let spec = Spec {
            step: Some(step),
            ..Spec::seed(step)
        };
        write_checkpoint(&dir.join("run"), &step_name(step), &spec);
    }
    let err = assert_watch_once_ok(&dir, &["--tensorboard", logdir.to_str().unwrap()]);
    assert_eq!(err.matches("stored run=run").count(), 3, "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one warning for one cause:\n{err}");
    assert!(
        warnings[0].contains("tensorboard") && warnings[0].contains("not-a-folder"),
        "{err}"
    );
    assert_eq!(all_checkpoints(&open_store(&dir)).len(), 3);
}

/// `GET path` over loopback with a plain HTTP/1.1 request; returns (status line, headers, body).
/// What Prometheus sends: OpenMetrics first, the classic text format as a fallback.
const PROMETHEUS_ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

fn http_get(port: u16, method: &str, path: &str) -> (String, String, String) {
    http_get_accepting(port, method, path, PROMETHEUS_ACCEPT)
}

fn http_get_accepting(
    port: u16,
    method: &str,
    path: &str,
    accept: &str,
) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(HANG)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_lowercase(), body.to_string())
}

/// The port in the daemon's "metrics: serving http://127.0.0.1:PORT/metrics" line.
fn metrics_port(log: &str) -> u16 {
    let line = log
        .lines()
        .find(|l| l.contains("metrics: serving http://"))
        .expect("the serving line");
    let after = &line[line.find("127.0.0.1:").expect("the address") + "127.0.0.1:".len()..];
    after[..after.find('/').unwrap()].parse().unwrap()
}

/// The value of the sample `name{labels}` in the parsed families, if present.
fn sample(families: &Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families.as_array().unwrap().iter().find_map(|f| {
        f["samples"].as_array().unwrap().iter().find_map(|s| {
            let l = s["labels"].as_object().unwrap();
            let matches = s["name"] == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v));
            matches.then(|| s["value"].as_f64().unwrap())
        })
    })
}

#[test]
#[ignore = "needs .venv from bash scripts/setup --test; scripts/test runs it"]
fn metrics_serve_the_stores_latest_values_as_valid_openmetrics_with_any_layer_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    let weird = weird_tensor();
    let layers = [
        ("fc1.weight", 64, 32),
        (weird.as_str(), 48, 24),
        ("fc1.bias", 64, 1),
    ];
    let steps = [100u64, 200, 300];
    for (i, step) in steps.into_iter().enumerate() {
        write_layers(
            &dir.join("runM").join(step_name(step)),
            &layers,
            step,
            7 + i as u64,
            &[],
        );
    }
    // Never a checkpoint: stored as failed after --give-up.
    std::fs::write(dir.join("runM").join(step_name(900)), b"not safetensors").unwrap();
    let log = tmp.path().join("daemon.log");
    let mut daemon = Daemon::start(&dir, &log, &["--metrics", "127.0.0.1:0", "--give-up", "1"]);
    daemon.wait_for("metrics: serving http://127.0.0.1:", 1, HANG);
    let port = metrics_port(&daemon.log_text());
    assert_ne!(port, 0);
    // Until the page shows all of it (the exporter follows the daemon's events on its own thread).
    let mut page = String::new();
    wait_until(
        "the page to show every checkpoint and an empty backlog",
        || {
            page = http_get(port, "GET", "/metrics").2;
            page.contains("htsr_checkpoints_stored_total 3\n")
                && page.contains("htsr_checkpoints_failed_total 1\n")
                && page.contains("htsr_backlog_checkpoints 0\n")
                && page.contains("htsr_run_step{run=\"runM\"} 300\n")
        },
    );
    let (status, headers, _) = http_get(port, "GET", "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        headers
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{headers}"
    );
    assert!(http_get(port, "GET", "/nope").0.contains(" 404 "));
    assert!(http_get(port, "POST", "/metrics").0.contains(" 405 "));
    // A client that asks for the classic text format (curl, prometheus_client's own parser) gets it, with every
    // counter a counter, not an empty family beside untyped series.
    let (_, headers, classic) =
        http_get_accepting(port, "GET", "/metrics", "text/plain;version=0.0.4");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    let parsed = run_python(
        "parse_metrics.py",
        &[Path::new("--classic")],
        Some(classic.as_bytes()),
    );
    let counter = |name: &str| {
        parsed
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no family {name} in {parsed}"))
            .clone()
    };
    for (name, want) in [
        ("htsr_checkpoints_stored", 3.0),
        ("htsr_checkpoints_failed", 1.0),
    ] {
        let family = counter(name);
        assert_eq!(family["type"], "counter", "{family}");
        assert_eq!(
            family["samples"][0]["value"].as_f64(),
            Some(want),
            "{family}"
        );
    }
    assert!(
        !parsed
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["type"] == "unknown"),
        "untyped series in {parsed}"
    );
    let (status, log_text) = daemon.terminate(HANG);
    assert!(status.success(), "{log_text}");

    // A strict parser accepts the page (it raises on any malformed line, escape or a missing # EOF).
    let families = run_python("parse_metrics.py", &[], Some(page.as_bytes()));
    let types: BTreeMap<&str, &str> = families
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    for (name, ty) in [
        ("htsr_layer_alpha", "gauge"),
        ("htsr_layer_ks_distance", "gauge"),
        ("htsr_layer_mp_spikes", "gauge"),
        ("htsr_layer_phase", "gauge"),
        ("htsr_checkpoints_stored", "counter"),
        ("htsr_checkpoints_failed", "counter"),
        ("htsr_backlog_checkpoints", "gauge"),
        ("htsr_analysis_seconds", "histogram"),
        ("htsr_store_size_bytes", "gauge"),
    ] {
        assert_eq!(types.get(name).copied(), Some(ty), "{name} in {types:?}");
    }
    assert_eq!(
        sample(&families, "htsr_analysis_seconds_count", &[]),
        Some(3.0)
    );
    assert!(sample(&families, "htsr_store_size_bytes", &[]).unwrap() > 0.0);

    // The values are the store's latest checkpoint's, the odd layer name included, byte for byte.
    let store = open_store(&dir);
    let mut analyzed = 0;
    for l in store.layers_at("runM", 300).unwrap() {
        let labels = [("run", "runM"), ("layer", l.name.as_str())];
        let Some(pl) = &l.power_law else {
            assert_eq!(
                sample(&families, "htsr_layer_alpha", &labels),
                None,
                "{}",
                l.name
            );
            continue;
        };
        analyzed += 1;
        assert_eq!(
            sample(&families, "htsr_layer_alpha", &labels),
            Some(pl.alpha),
            "{}",
            l.name
        );
        assert_eq!(
            sample(&families, "htsr_layer_ks_distance", &labels),
            Some(pl.d),
            "{}",
            l.name
        );
        let spikes = l.mp.as_ref().unwrap().num_spikes as f64;
        assert_eq!(
            sample(&families, "htsr_layer_mp_spikes", &labels),
            Some(spikes),
            "{}",
            l.name
        );
        let phase = l.phase().unwrap();
        for p in Phase::ALL {
            let labels = [
                ("run", "runM"),
                ("layer", l.name.as_str()),
                ("phase", p.as_str()),
            ];
            let want = if p == phase { 1.0 } else { 0.0 };
            assert_eq!(
                sample(&families, "htsr_layer_phase", &labels),
                Some(want),
                "{} {p}",
                l.name
            );
        }
    }
    assert_eq!(analyzed, 2, "fc1 and the odd layer");
    assert!(
        sample(
            &families,
            "htsr_layer_alpha",
            &[("run", "runM"), ("layer", WEIRD_LAYER)]
        )
        .is_some(),
        "the layer named with quotes, a backslash and a newline did not survive the round trip"
    );
    // The skipped bias has no series at all.
    assert_eq!(
        sample(
            &families,
            "htsr_layer_mp_spikes",
            &[("run", "runM"), ("layer", "fc1.bias")]
        ),
        None
    );
}

#[test]
fn a_non_loopback_metrics_address_needs_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let out = watch_once(tmp.path(), &["--metrics", "0.0.0.0:0"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("0.0.0.0:0") && err.contains("--metrics-allow-remote"),
        "{err}"
    );
    assert!(!tmp.path().join(".htsr").exists(), "nothing starts");
    // With the flag it is served (and --once exits when done).
    let out = watch_once(
        tmp.path(),
        &["--metrics", "0.0.0.0:0", "--metrics-allow-remote"],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("metrics: serving http://0.0.0.0:"), "{err}");
}

#[test]
fn a_metrics_port_in_use_is_a_start_up_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = watch_once(tmp.path(), &["--metrics", &addr]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(err.to_lowercase().contains("in use"), "{err}");
    assert!(!tmp.path().join(".htsr").exists(), "nothing starts");
}
