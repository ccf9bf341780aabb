//! Checkpoints are untrusted input. Tensor names and `htsr.*` metadata full of control characters, escape
//! sequences (screen clears, title and clipboard writes), bidirectional overrides, NUL, very long and very wide
//! strings go through every output of the real binary: the analyze table, CSV and JSON (to a pipe and to a real
//! pseudo-terminal), the daemon's log, export, db stats, the report (HTML, SVG, PNG), TensorBoard event files and
//! folders, /metrics, and the dashboard. What reaches a terminal carries no control character htsr did not write
//! itself; the data outputs give back the original strings exactly.
//!
//! The names are drawn from a seeded generator (`HTSR_TEST_SEED` replays a run), beside a fixed set of known
//! attacks that every run includes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use htsr_contracts::text::is_unsafe;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

const HANG: Duration = Duration::from_secs(180);

/// Strings every run feeds in: the attacks seen in the wild, and the shapes that broke outputs before.
const KNOWN: &[&str] = &[
    "evil\x1b[2J\x1b]0;PWNED\x07name",
    "clip\x1b]52;c;aGVsbG8=\x07board",
    "a\u{202e}gpj.exe",
    "nul\0byte",
    "tab\tnew\nline\rcr",
    "c1\u{9b}31mcsi",
    "couche_é_ü_日本語のとても長い名前のレイヤー",
    "rocket🚀fire🔥",
    "e\u{301}combining",
    "<script>alert(1)</script>",
    "quote\"back\\slash'apostrophe",
    "del\x7fbell\x07",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random name: pieces of the known attacks, random characters of every troublesome class, and sometimes a very
/// long run of one wide character.
fn random_name(rng: &mut Rng) -> String {
    let classes: [&dyn Fn(&mut Rng) -> char; 6] = [
        &|r| char::from(b'a' + r.below(26) as u8),
        &|r| char::from(r.below(32) as u8),
        &|r| char::from_u32(0x80 + r.below(32) as u32).unwrap(),
        &|r| {
            [
                '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
                '\u{2068}', '\u{2069}',
            ][r.below(9)]
        },
        &|r| ['日', '本', '語', '🚀', 'é', '\u{301}', '\u{200b}', '한'][r.below(8)],
        &|r| {
            [
                '\x1b', '[', ']', ';', '\x07', '"', '\\', '/', '.', '<', '>', '&',
            ][r.below(12)]
        },
    ];
    let mut s = String::new();
    for _ in 0..1 + rng.below(4) {
        match rng.below(4) {
            0 => s.push_str(KNOWN[rng.below(KNOWN.len())]),
            1 => s.push_str(&"長".repeat(40 + rng.below(80))),
            _ => {
                for _ in 0..1 + rng.below(12) {
                    let c = classes[rng.below(classes.len())];
                    s.push(c(rng));
                }
            }
        }
    }
    // Every name is a distinct tensor name, and `.weight` is the suffix htsr strips.
    s
}

/// Control characters in `text` that are not among `allowed`.
fn foreign_controls(text: &str, allowed: &[char]) -> BTreeSet<char> {
    text.chars()
        .filter(|c| is_unsafe(*c) && !allowed.contains(c))
        .collect()
}

/// `text` without the colour sequences htsr writes itself (`ESC [ 3x m` and `ESC [ 0 m`).
fn without_own_colours(text: &str) -> String {
    let mut out = text.to_string();
    for code in [
        "\x1b[0m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[36m",
        "\x1b[37m",
    ] {
        out = out.replace(code, "");
    }
    out
}

/// Runs `cmd` with its standard output on a fresh pseudo-terminal (as a user's terminal), returning what it
/// printed there.
fn on_terminal(cmd: &mut Command) -> String {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills the two descriptors; the name, termios and window size are optional.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // The command keeps the terminal's descriptors it was given: drop them, or the terminal never reads as ended.
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut reader = std::fs::File::from(master);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        // EIO once the child closed the terminal's last writer: that is the end.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(out);
    });
    let deadline = Instant::now() + HANG;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "{cmd:?} hung");
        std::thread::sleep(Duration::from_millis(20));
    }
    String::from_utf8_lossy(&rx.recv_timeout(HANG).unwrap()).into_owned()
}

/// One generated checkpoint: its run directory, run name (metadata), layer names and a metadata note.
struct Case {
    dir: String,
    run: String,
    layers: Vec<String>,
}

impl Case {
    /// The run the store keeps: `htsr.run` with surrounding whitespace trimmed (the daemon's rule), else the
    /// directory's name.
    fn stored_run(&self) -> String {
        match self.run.trim() {
            "" => self.dir.clone(),
            r => r.to_string(),
        }
    }
}

fn write_case(root: &Path, i: usize, case: &Case, note: &str) -> PathBuf {
    let data: Vec<(String, Vec<u8>)> = case
        .layers
        .iter()
        .enumerate()
        .map(|(k, l)| (format!("{l}.weight"), matrix(24, 12, (i * 10 + k) as u64)))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, vec![24, 12], b).unwrap(),
            )
        })
        .collect();
    let meta = std::collections::HashMap::from([
        ("htsr.run".to_string(), case.run.clone()),
        ("htsr.step".to_string(), "1".to_string()),
        ("htsr.note".to_string(), note.to_string()),
    ]);
    let bytes = safetensors::tensor::serialize(views, Some(meta)).unwrap();
    let path = root.join(&case.dir).join("step-000000001.safetensors");
    write_atomic(&path, &bytes);
    path
}

fn output(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn csv_column(text: &str, column: &str) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let i = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == column)
        .unwrap();
    r.records().map(|rec| rec.unwrap()[i].to_string()).collect()
}

#[test]
fn hostile_names_and_metadata_never_reach_a_terminal_raw_and_data_outputs_keep_them_exactly() {
    let seed = test_seed("hostile_names");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("watched");
    // The known attacks, each as a layer name and a run name, then random ones.
    let mut cases = Vec::new();
    for (i, k) in KNOWN.iter().enumerate() {
        cases.push(Case {
            dir: format!("known-{i}"),
            run: format!("run {k}"),
            layers: vec![k.to_string(), format!("{k}.second")],
        });
    }
    for i in 0..12 {
        let layers: BTreeSet<String> = (0..3).map(|_| random_name(&mut rng)).collect();
        cases.push(Case {
            dir: format!("random-{i}"),
            run: random_name(&mut rng),
            layers: layers.into_iter().collect(),
        });
    }
    let files: Vec<PathBuf> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| write_case(&root, i, c, KNOWN[i % KNOWN.len()]))
        .collect();

    // analyze: the table (pipe and terminal), CSV and JSON to a pipe (exact), CSV and JSON on a terminal.
    for (case, file) in cases.iter().zip(&files) {
        let (ok, table, err) = output(
            Command::new(BIN)
                .arg("analyze")
                .arg(file)
                .args(["--color", "never"]),
        );
        assert!(ok, "{err}");
        assert_eq!(
            foreign_controls(&table, &['\n']),
            BTreeSet::new(),
            "table on a pipe:\n{table}"
        );
        let shown = on_terminal(
            Command::new(BIN)
                .arg("analyze")
                .arg(file)
                .args(["--color", "always"]),
        );
        assert_eq!(
            foreign_controls(&without_own_colours(&shown), &['\n', '\r']),
            BTreeSet::new(),
            "table on a terminal:\n{shown}"
        );
        let (ok, csv, _) = output(
            Command::new(BIN)
                .arg("analyze")
                .arg(file)
                .args(["--format", "csv"]),
        );
        assert!(ok);
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(csv_column(&csv, "name")),
            sorted(case.layers.clone()),
            "CSV keeps the names exactly"
        );
        let (ok, json, _) = output(
            Command::new(BIN)
                .arg("analyze")
                .arg(file)
                .args(["--format", "json"]),
        );
        assert!(ok);
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let names: Vec<String> = doc["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            sorted(names),
            sorted(case.layers.clone()),
            "JSON keeps the names exactly"
        );
        assert_eq!(doc["metadata"]["htsr.run"], case.run.as_str());
        for format in ["csv", "json"] {
            let shown = on_terminal(
                Command::new(BIN)
                    .arg("analyze")
                    .arg(file)
                    .args(["--format", format]),
            );
            assert_eq!(
                foreign_controls(&shown, &['\n', '\r', '\t']),
                BTreeSet::new(),
                "{format} on a terminal"
            );
        }
    }

    // The daemon, headless, with /metrics: its log on stderr carries no raw control character either.
    let log = tmp.path().join("daemon.log");
    let mut daemon = Daemon::start(&root, &log, &["--metrics", "127.0.0.1:0"]);
    daemon.wait_for("stored run=", cases.len(), HANG);
    let text = daemon.log_text();
    let port: u16 = {
        let line = text
            .lines()
            .find(|l| l.contains("metrics: serving http://"))
            .unwrap();
        let after = &line[line.find("127.0.0.1:").unwrap() + "127.0.0.1:".len()..];
        after[..after.find('/').unwrap()].parse().unwrap()
    };
    let metrics = {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw.split_once("\r\n\r\n").unwrap().1.to_string()
    };
    let (status, log_text) = daemon.terminate(HANG);
    assert!(status.success(), "{log_text}");
    assert_eq!(
        foreign_controls(&log_text, &['\n']),
        BTreeSet::new(),
        "the daemon's log:\n{log_text}"
    );
    // /metrics is data for Prometheus: the label values give back the names exactly.
    let labels = prometheus_layer_labels(&metrics);
    for case in &cases {
        for layer in &case.layers {
            assert!(
                labels.contains(&(case.stored_run(), layer.clone())),
                "{:?} / {layer:?} not in /metrics:\n{:?}",
                case.run,
                metrics
                    .lines()
                    .filter(|l| l.contains(layer.as_str()))
                    .collect::<Vec<_>>()
            );
        }
    }

    let db = root.join(".htsr");
    // export: exact on a pipe, terminal-safe on a terminal.
    let (ok, csv, err) = output(
        Command::new(BIN)
            .arg("export")
            .arg(&root)
            .args(["--format", "csv"]),
    );
    assert!(ok, "{err}");
    let exported: BTreeSet<(String, String)> = csv_column(&csv, "run")
        .into_iter()
        .zip(csv_column(&csv, "name"))
        .collect();
    for case in &cases {
        for layer in &case.layers {
            assert!(
                exported.contains(&(case.stored_run(), layer.clone())),
                "{layer:?} not exported as it is"
            );
        }
    }
    for args in [
        vec!["export", "--format", "csv"],
        vec!["export", "--format", "jsonl"],
        vec!["db", "stats", "--db"],
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(&args)
            .arg(if args[0] == "db" { &db } else { &root });
        let shown = on_terminal(&mut cmd);
        assert_eq!(
            foreign_controls(&shown, &['\n', '\r', '\t']),
            BTreeSet::new(),
            "{args:?} on a terminal"
        );
    }

    // The report: HTML (escaped), SVG (valid XML, drawn to PNG), and the command's own output.
    let html = tmp.path().join("report.html");
    let (ok, _, err) = output(
        Command::new(BIN)
            .arg("report")
            .arg(&root)
            .arg("-o")
            .arg(&html),
    );
    assert!(ok, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(
        foreign_controls(&page, &['\n', '\t']),
        BTreeSet::new(),
        "raw control characters in the HTML"
    );
    assert!(!page.contains("<script>alert"), "a name became markup");
    let charts = tmp.path().join("charts");
    let (ok, listed, err) = output(
        Command::new(BIN)
            .arg("report")
            .arg(&root)
            .args(["--format", "svg", "-o"])
            .arg(&charts),
    );
    assert!(ok, "{err}");
    assert_eq!(foreign_controls(&listed, &['\n']), BTreeSet::new());
    for entry in std::fs::read_dir(&charts).unwrap() {
        let path = entry.unwrap().path();
        assert!(path.starts_with(&charts));
        let svg = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            foreign_controls(&svg, &['\n', '\t']),
            BTreeSet::new(),
            "{}",
            path.display()
        );
        let png = htsr_report::svg_to_png(&svg, 1.0)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(png.starts_with(b"\x89PNG"));
    }

    // TensorBoard: one folder per run inside LOGDIR, safe names; tags give back the layer names.
    let logdir = tmp.path().join("tb");
    let (ok, _, err) = output(
        Command::new(BIN)
            .arg("export")
            .arg(&root)
            .args(["--format", "tensorboard", "-o"])
            .arg(&logdir),
    );
    assert!(ok, "{err}");
    let mut tags = BTreeSet::new();
    for entry in std::fs::read_dir(&logdir).unwrap() {
        let run_dir = entry.unwrap().path();
        let name = run_dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.chars().any(is_unsafe) && !name.contains('/') && name != "..",
            "{name:?}"
        );
        for file in std::fs::read_dir(&run_dir).unwrap() {
            for event in htsr_tensorboard::read_events(file.unwrap().path()).unwrap() {
                let Some(htsr_tensorboard::proto::event::What::Summary(summary)) = event.what
                else {
                    continue;
                };
                for v in summary.value {
                    if let Some(layer) = v
                        .tag
                        .strip_prefix("htsr/")
                        .and_then(|t| t.strip_suffix("/alpha"))
                    {
                        tags.insert(layer.to_string());
                    }
                }
            }
        }
    }
    for case in &cases {
        for layer in &case.layers {
            assert!(
                tags.contains(layer),
                "{layer:?} not a TensorBoard tag as it is"
            );
        }
    }

    // The dashboard, every view, on ratatui's test backend.
    let store = htsr_storage::Store::open_existing(&db).unwrap();
    for case in &cases {
        let mut app = htsr_tui::App::new(htsr_tui::DashboardOptions {
            title: case.run.clone(),
            initial_run: Some(case.stored_run()),
            mode: htsr_tui::Mode::Browse,
        });
        for key in ['1', '2', '3', '4', '?'] {
            app.handle_event(crossterm_key(key));
            let screen = htsr_tui::render_app(&mut app, &store, 100, 30);
            assert_eq!(
                foreign_controls(&screen, &['\n']),
                BTreeSet::new(),
                "view {key}:\n{screen}"
            );
        }
    }
}

fn crossterm_key(c: char) -> crossterm::event::Event {
    crossterm::event::Event::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char(c),
        crossterm::event::KeyModifiers::NONE,
    ))
}

/// (run, layer) of every `htsr_layer_alpha` sample, with the text format's escapes undone.
fn prometheus_layer_labels(page: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for line in page.lines().filter(|l| l.starts_with("htsr_layer_alpha{")) {
        let mut labels = BTreeMap::new();
        let mut rest = &line["htsr_layer_alpha{".len()..];
        while let Some(eq) = rest.find("=\"") {
            let key = rest[..eq].trim_start_matches(',').to_string();
            let mut value = String::new();
            let mut chars = rest[eq + 2..].char_indices();
            let mut end = 0;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, other)) => value.push(other),
                        None => break,
                    },
                    '"' => {
                        end = eq + 2 + i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
            rest = &rest[end..];
            if rest.starts_with('}') {
                break;
            }
        }
        out.insert((labels["run"].clone(), labels["layer"].clone()));
    }
    out
}
