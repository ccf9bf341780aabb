//! `htsr-watch DIR` as a long-running companion of a training run, tested as one: the real binary, real
//! directories, real files rewritten in place, real signals, a real full disk. Nothing here measures time: every
//! wait is for a condition (a log line, an event, a process exit), with a generous limit that only catches hangs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use htsr_storage::fixtures::Tmpfs;
use notify::event::{AccessKind, EventKind};
use notify::Watcher;

/// Limit for waits that only guard against a hang.
const HANG: Duration = Duration::from_secs(180);

/// Opens seen under `dir` by an inotify observer of the test's own: (opens of checkpoint files, opens of `run_dir`
/// itself, which each rescan's directory listing causes).
struct OpenObserver {
    _watcher: notify::RecommendedWatcher,
    rx: mpsc::Receiver<PathBuf>,
}

impl OpenObserver {
    fn watch(dir: &Path) -> OpenObserver {
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                if matches!(ev.kind, EventKind::Access(AccessKind::Open(_))) {
                    for p in ev.paths {
                        let _ = tx.send(p);
                    }
                }
            }
        })
        .unwrap();
        watcher
            .watch(dir, notify::RecursiveMode::Recursive)
            .unwrap();
        let observer = OpenObserver {
            _watcher: watcher,
            rx,
        };
        // Adding the recursive watch lists every subdirectory (opens the observer itself caused): open a marker and
        // drop everything up to it, so that only what happens from now on is seen. One inotify queue keeps order.
        let marker = dir.join(".observer-marker");
        std::fs::write(&marker, b"").unwrap();
        drop(std::fs::File::open(&marker).unwrap());
        let start = Instant::now();
        loop {
            let left = HANG.saturating_sub(start.elapsed());
            let p = observer
                .rx
                .recv_timeout(left)
                .expect("the observer's own marker open never arrived");
            if p == marker {
                break;
            }
        }
        observer
    }

    /// Every open seen so far.
    fn drain(&self) -> Vec<PathBuf> {
        self.rx.try_iter().collect()
    }

    /// Collects opens until `run_dir` has been opened `listings` times; returns the checkpoint files opened meanwhile.
    fn until_listings(&self, run_dir: &Path, listings: usize) -> Vec<PathBuf> {
        let (mut seen, mut files) = (0, Vec::new());
        let start = Instant::now();
        while seen < listings {
            let left = HANG.saturating_sub(start.elapsed());
            let p = self.rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "only {seen} of {listings} rescans of {} seen",
                    run_dir.display()
                )
            });
            if p == run_dir {
                seen += 1;
            } else if p.extension().is_some_and(|e| e == "safetensors") {
                files.push(p);
            }
        }
        files
    }
}

#[test]
fn an_idle_daemon_opens_no_checkpoint_between_rescans() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let run = dir.join("run");
    for i in 1..=3u64 {
        write_checkpoint(&run, &step_name(i), &Spec::seed(i));
    }
    // Rescans every 0.2 s, so that the quiet period below covers many of them.
    let mut daemon = Daemon::start(&dir, &tmp.path().join("log"), &["--rescan", "0.2"]);
    daemon.wait_for("stored run=", 3, HANG);
    let observer = OpenObserver::watch(&dir);
    // Ten rescans: each lists the run directory (an open of the directory) and stats the files (no open).
    let opened = observer.until_listings(&run, 10);
    assert!(
        opened.is_empty(),
        "the idle daemon opened stored, unchanged checkpoints: {opened:?}"
    );
    // And it is still doing its job: a new checkpoint is stored (the positive control).
    write_checkpoint(&run, &step_name(4), &Spec::seed(4));
    daemon.wait_for("stored run=", 4, HANG);
    let (status, log) = daemon.terminate(HANG);
    assert!(status.success(), "{status:?}\n{log}");
}

#[test]
fn an_idle_daemon_touches_nothing_without_a_rescan_or_a_change() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let (idle, busy) = (dir.join("idle"), dir.join("busy"));
    for i in 1..=3u64 {
        write_checkpoint(&idle, &step_name(i), &Spec::seed(i));
    }
    write_checkpoint(&busy, &step_name(1), &Spec::seed(10));
    // No periodic rescan during the test: only changes may wake the daemon.
    let mut daemon = Daemon::start(&dir, &tmp.path().join("log"), &["--rescan", "3600"]);
    daemon.wait_for("stored run=", 4, HANG);
    let observer = OpenObserver::watch(&dir);
    // Something happens elsewhere (another run gets a checkpoint): the daemon wakes for it, scans that run, stores
    // it. The idle run must see nothing meanwhile: no listing, no open. (A daemon woken by its own reads would list
    // it over and over.)
    for i in 2..=4u64 {
        write_checkpoint(&busy, &step_name(i), &Spec::seed(10 + i));
        daemon.wait_for("stored run=", 3 + i as usize, HANG);
    }
    let (status, log) = daemon.terminate(HANG);
    assert!(status.success(), "{log}");
    let touched: Vec<PathBuf> = observer
        .drain()
        .into_iter()
        .filter(|p| p.starts_with(&idle))
        .collect();
    assert!(
        touched.is_empty(),
        "the idle run was listed or read while nothing changed in it: {} opens, e.g. {:?}",
        touched.len(),
        touched.first()
    );
}

#[test]
fn writes_under_the_store_and_its_log_trigger_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let run = dir.join("run");
    write_checkpoint(&run, &step_name(1), &Spec::seed(1));
    // A store inside DIR under a name without a dot (so only the daemon's ignore rules keep it out), no periodic
    // rescan during the test, and every accepted event in the log.
    let store = dir.join("store");
    let mut daemon = Daemon::start_logging(
        &dir,
        &tmp.path().join("log"),
        &["--db", store.to_str().unwrap(), "--rescan", "3600"],
        "htsr_daemon=trace,info",
    );
    daemon.wait_for("stored run=", 1, HANG);
    for i in 0..20 {
        std::fs::write(store.join(format!("junk-{i}")), b"written by someone").unwrap();
        std::fs::write(dir.join("store.log"), format!("line {i}\n")).unwrap();
        std::fs::remove_file(store.join(format!("junk-{i}"))).unwrap();
    }
    // Events arrive in order: once this later checkpoint is stored, every event above was handled.
    write_checkpoint(&run, &step_name(2), &Spec::seed(2));
    daemon.wait_for("stored run=", 2, HANG);
    let (status, log) = daemon.terminate(HANG);
    assert!(status.success(), "{log}");
    let marks: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("a change marks its part of the tree"))
        .collect();
    assert!(
        marks.iter().any(|l| l.contains("step-000002")),
        "the sentinel checkpoint's events were seen: {log}"
    );
    let from_store: Vec<&&str> = marks
        .iter()
        .filter(|l| l.contains(store.to_str().unwrap()))
        .collect();
    assert!(
        from_store.is_empty(),
        "writes under the store woke the daemon: {from_store:?}"
    );
}

#[test]
fn sigint_during_an_event_storm_stops_the_daemon_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let run = dir.join("run");
    write_checkpoint(&run, &step_name(1), &Spec::seed(1));
    let mut daemon = Daemon::start(&dir, &tmp.path().join("log"), &[]);
    daemon.wait_for("stored run=", 1, HANG);
    // The storm: files created, written, renamed and deleted as fast as the test can, without pause.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let storm = {
        let (stop, rounds, run) = (stop.clone(), rounds.clone(), run.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let tmp = run.join(format!(".storm-{i}.tmp"));
                let fin = run.join(format!("storm-{}.safetensors", i % 50));
                let _ = std::fs::write(&tmp, b"not a checkpoint yet");
                let _ = std::fs::rename(&tmp, &fin);
                if i.is_multiple_of(3) {
                    let _ = std::fs::remove_file(&fin);
                }
                i += 1;
                rounds.store(i, Ordering::Relaxed);
            }
        })
    };
    while rounds.load(Ordering::Relaxed) < 20_000 {
        std::thread::yield_now();
    }
    let (status, log) = daemon.stop_with(libc::SIGINT, HANG);
    stop.store(true, Ordering::Relaxed);
    storm.join().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("SIGINT: finishing up"), "{log}");
}

#[test]
fn sigint_during_a_long_analysis_stores_nothing_half_done_and_the_next_start_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    // Six 1536x1536 layers: seconds of linear algebra on any machine, so the signal lands mid-analysis.
    let layers: Vec<(String, usize, usize, u64)> = (0..6)
        .map(|i| (format!("l{i}.weight"), 1536, 1536, 900 + i))
        .collect();
    let refs: Vec<(&str, usize, usize, u64)> = layers
        .iter()
        .map(|(n, r, c, s)| (n.as_str(), *r, *c, *s))
        .collect();
    write_atomic(
        &run.join(step_name(1)),
        &layers_bytes(&refs, &[("htsr.step", "1".into())]),
    );
    let mut daemon =
        Daemon::start_logging(&dir, &tmp.path().join("log"), &[], "htsr_daemon=debug,info");
    daemon.wait_for(" step=1 path=", 1, HANG);
    let (status, log) = daemon.stop_with(libc::SIGINT, HANG);
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains("stored run="), "{log}");
    {
        let store = open_store(&dir);
        assert!(
            store.checkpoints("run").unwrap().is_empty(),
            "a half-analyzed checkpoint was stored"
        );
    }
    let out = watch_once(&dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = open_store(&dir);
    assert_eq!(store.layers_at("run", 1).unwrap().len(), 6);
}

#[test]
#[ignore = "needs root: mounts a tmpfs; scripts/test runs it"]
fn a_full_store_keeps_its_past_retries_and_stores_the_rest_once_space_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let disk = tmp.path().join("disk");
    let fs = Tmpfs::mount(&disk, "2m");
    // Forty small layers per checkpoint: each stored checkpoint takes a good part of the 2 MB.
    let total = 30u64;
    for step in 1..=total {
        let names: Vec<String> = (0..40).map(|i| format!("l{i}.weight")).collect();
        let layers: Vec<(&str, usize, usize, u64)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), 32, 16, step * 100 + i as u64))
            .collect();
        write_atomic(
            &run.join(step_name(step)),
            &layers_bytes(&layers, &[("htsr.step", step.to_string())]),
        );
    }
    let db = disk.join("store");
    let mut daemon = Daemon::start(
        &dir,
        &tmp.path().join("log"),
        &["--db", db.to_str().unwrap()],
    );
    daemon.wait_for("cannot store results", 1, HANG);
    let stored_before = daemon.log_text().matches("stored run=").count();
    fs.resize("64m");
    daemon.wait_for("stored run=", total as usize, HANG);
    let (status, log) = daemon.terminate(HANG);
    assert!(status.success(), "{log}");
    assert_eq!(
        log.matches("cannot store results").count(),
        1,
        "one warning per cause: {log}"
    );
    assert!(log.contains("stored after a retry"), "{log}");
    assert!(stored_before >= 1, "{log}");
    let (store, outcome) = htsr_storage::Store::open(&db).unwrap();
    assert_eq!(outcome, htsr_storage::OpenOutcome::Opened);
    let steps = store.steps("run").unwrap();
    assert_eq!(steps, (1..=total).collect::<Vec<_>>());
    for s in steps {
        assert_eq!(store.layers_at("run", s).unwrap().len(), 40, "step {s}");
    }
    let names: Vec<String> = std::fs::read_dir(&disk)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["store"], "nothing was moved aside");
}

/// Runs `htsr-watch ARGS` and returns its stdout, failing with its stderr unless it succeeded.
fn cli_ok(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn reading_commands_attach_to_the_daemon_that_holds_the_store_and_move_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let run = dir.join("run");
    write_checkpoint(&run, &step_name(1), &Spec::seed(1));
    let out = watch_once(&dir, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut daemon = Daemon::start(&dir, &tmp.path().join("log"), &[]);
    daemon.wait_for("serve: viewers attach at", 1, HANG);
    let socket = dir.join(".htsr.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is its owner's only");
    let db = dir.join(".htsr");
    let (d, b) = (dir.as_os_str(), db.as_os_str());
    let csv = std::ffi::OsStr::new;

    // The same commands as without a daemon, positional DIR or --db STORE alike.
    let first = cli_ok(&[csv("export"), csv("--format"), csv("csv"), d]);
    assert_eq!(
        first.lines().count(),
        1 + 4,
        "header and four tensors: {first}"
    );
    assert_eq!(
        cli_ok(&[csv("export"), csv("--format"), csv("csv"), csv("--db"), b]),
        first
    );
    let stats = cli_ok(&[csv("db"), csv("stats"), csv("--db"), b]);
    assert!(
        stats.contains("checkpoints") && stats.contains("on disk"),
        "{stats}"
    );
    let pinned = cli_ok(&[csv("db"), csv("pin"), csv("--db"), b, csv("run"), csv("1")]);
    assert!(pinned.contains("pinned run step 1"), "{pinned}");
    let report = tmp.path().join("report.html");
    cli_ok(&[csv("report"), d, csv("-o"), report.as_os_str()]);
    assert!(std::fs::read_to_string(&report).unwrap().contains("<svg"));

    // A checkpoint stored while attached shows in the next export, whose rows the final store holds unchanged.
    write_checkpoint(&run, &step_name(2), &Spec::seed(2));
    daemon.wait_for("stored run=", 1, HANG);
    let during = cli_ok(&[csv("export"), csv("--format"), csv("csv"), d]);
    assert_eq!(during.lines().count(), 1 + 8, "{during}");
    assert!(
        during.starts_with(&first),
        "the first checkpoint's rows did not change"
    );
    let (status, log) = daemon.terminate(HANG);
    assert!(status.success(), "{log}");
    assert!(!socket.exists(), "the socket goes with the daemon");
    // The same export without a daemon (the store opened directly) is byte for byte the same.
    assert_eq!(
        cli_ok(&[csv("export"), csv("--format"), csv("csv"), d]),
        during
    );
    let siblings: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("corrupt"))
        .collect();
    assert!(siblings.is_empty(), "{siblings:?}");
    let store = open_store(&dir);
    assert_eq!(store.steps("run").unwrap(), vec![1, 2]);
    assert!(
        store.is_pinned("run", 1).unwrap(),
        "pinned through the daemon"
    );
}
