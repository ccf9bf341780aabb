//! Helpers for the daemon's end-to-end tests: a checkpoint writer (real safetensors files, written under a
//! temporary name and renamed, as the training hook does), the binary, and a look into the store afterwards.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_htsr-watch");

pub use htsr_engine::test_files::*;

// The daemon's own tests and these share what a stored backlog must look like.
#[path = "../../../daemon/tests/common/backlog.rs"]
mod backlog;
#[allow(unused_imports)]
pub use backlog::*;

/// `htsr-watch DIR --headless --once [extra]`, waited for.
pub fn watch_once(dir: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg(dir)
        .args(["--headless", "--once"])
        .args(extra)
        .env("HTSR_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A daemon running in the background, its log in a file. Dropping it kills the process, so that a failing
/// assertion leaves nothing behind.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Daemon {
    pub fn start(dir: &Path, log: &Path, extra: &[&str]) -> Daemon {
        Self::start_logging(dir, log, extra, "info")
    }

    /// Like [`Daemon::start`], with `HTSR_LOG` set to `filter` (e.g. "debug").
    pub fn start_logging(dir: &Path, log: &Path, extra: &[&str], filter: &str) -> Daemon {
        let file = std::fs::File::create(log).unwrap();
        let child = Command::new(BIN)
            .arg(dir)
            .arg("--headless")
            .args(extra)
            .env("HTSR_LOG", filter)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Daemon {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `n` lines containing `needle`; panics with the log after `timeout`.
    pub fn wait_for(&mut self, needle: &str, n: usize, timeout: Duration) {
        let start = Instant::now();
        loop {
            let text = self.log_text();
            if text.matches(needle).count() >= n {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the daemon exited early ({status}); log:\n{text}");
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {n} x {needle:?}; log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    }

    pub fn signal(&self, sig: i32) {
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    /// Sends SIGTERM and waits for the exit (a daemon that is still alive after `timeout` is a hang: the test
    /// fails and the process is killed).
    pub fn terminate(self, timeout: Duration) -> (ExitStatus, String) {
        self.stop_with(libc::SIGTERM, timeout)
    }

    /// Sends `sig` and waits for the exit, as [`Daemon::terminate`].
    pub fn stop_with(mut self, sig: i32, timeout: Duration) -> (ExitStatus, String) {
        self.signal(sig);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.log_text());
            }
            if start.elapsed() > timeout {
                panic!(
                    "the daemon did not exit within {timeout:?} of signal {sig}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Opens the store of `dir` (no daemon may hold it).
pub fn open_store(dir: &Path) -> htsr_storage::Store {
    let (store, outcome) = htsr_storage::Store::open(dir.join(".htsr")).unwrap();
    assert_ne!(
        outcome,
        htsr_storage::OpenOutcome::Created,
        "the daemon should have created the store"
    );
    store
}

/// Every (run, step, checkpoint record) in the store.
pub fn all_checkpoints(store: &htsr_storage::Store) -> Vec<htsr_contracts::CheckpointRecord> {
    let mut out = Vec::new();
    for run in store.runs().unwrap() {
        out.extend(store.checkpoints(&run.run).unwrap());
    }
    out
}

/// Keys in the store's identities tree: one per stored checkpoint file.
pub fn identity_count(store: &htsr_storage::Store) -> u64 {
    store
        .stats()
        .unwrap()
        .trees
        .iter()
        .find(|t| t.name == "identities")
        .unwrap()
        .keys
}
