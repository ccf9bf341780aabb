//! The daemon run in-process on real directories and a real store, observed through its live events: a test waits
//! for the event it needs (with a limit that only catches hangs), never for time and never on log text.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

use htsr_contracts::LiveEvent;
use htsr_daemon::{Progress, Shutdown, Summary, WatchConfig};
use htsr_storage::Store;

pub use htsr_engine::test_files::*;

mod backlog;
pub use backlog::*;

/// Limit for waits that only guard against a hang.
pub const HANG: Duration = Duration::from_secs(180);

/// The configuration `htsr-watch DIR` starts with: the store in `DIR/.htsr`.
pub fn config(dir: &Path) -> WatchConfig {
    std::fs::create_dir_all(dir).unwrap();
    WatchConfig::new(dir.to_path_buf(), dir.join(".htsr"))
}

/// Runs the daemon with `--once` semantics on this thread; returns what it did and every event it sent.
pub fn once(mut cfg: WatchConfig) -> (Summary, Vec<LiveEvent>) {
    cfg.once = true;
    let (store, _) = Store::open(&cfg.store_dir).unwrap();
    let (tx, rx) = channel();
    let progress = Progress::new(vec![tx], &cfg.root);
    let summary = htsr_daemon::run(cfg, store, progress, Shutdown::new()).unwrap();
    (summary, rx.try_iter().collect())
}

/// A daemon running on its own thread, and what it has told so far.
pub struct Watching {
    pub store: Store,
    events: Receiver<LiveEvent>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<anyhow::Result<Summary>>>,
    /// Every event received so far, in order.
    pub seen: Vec<LiveEvent>,
}

/// Starts the daemon on `cfg` in the background.
pub fn start(cfg: WatchConfig) -> Watching {
    let (store, _) = Store::open(&cfg.store_dir).unwrap();
    let (tx, rx) = channel();
    let progress = Progress::new(vec![tx], &cfg.root);
    let shutdown = Shutdown::new();
    let thread = {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        std::thread::spawn(move || htsr_daemon::run(cfg, store, progress, shutdown))
    };
    Watching {
        store,
        events: rx,
        shutdown,
        thread: Some(thread),
        seen: Vec::new(),
    }
}

impl Watching {
    /// The next event; panics after [`HANG`] with what was seen.
    pub fn next(&mut self) -> LiveEvent {
        match self.events.recv_timeout(HANG) {
            Ok(e) => {
                self.seen.push(e.clone());
                e
            }
            Err(e) => panic!("no event from the daemon ({e}); seen: {:#?}", self.seen),
        }
    }

    /// Waits for the first event `f` accepts and returns what `f` made of it.
    pub fn until<T>(&mut self, mut f: impl FnMut(&LiveEvent) -> Option<T>) -> T {
        loop {
            let e = self.next();
            if let Some(t) = f(&e) {
                return t;
            }
        }
    }

    /// Waits until checkpoint (`run`, `step`) is stored.
    pub fn stored(&mut self, run: &str, step: u64) {
        self.until(|e| match e {
            LiveEvent::CheckpointStored {
                run: r, step: s, ..
            } if r == run && *s == step => Some(()),
            _ => None,
        })
    }

    /// Waits for `n` more stored checkpoints; returns them.
    pub fn stored_n(&mut self, n: usize) -> Vec<(String, u64)> {
        (0..n)
            .map(|_| {
                self.until(|e| match e {
                    LiveEvent::CheckpointStored { run, step, .. } => Some((run.clone(), *step)),
                    _ => None,
                })
            })
            .collect()
    }

    /// Stops the daemon as a signal would and returns its summary.
    pub fn stop(mut self) -> Summary {
        self.shutdown.trigger();
        let summary = self
            .thread
            .take()
            .unwrap()
            .join()
            .expect("the daemon panicked")
            .unwrap();
        self.seen.extend(self.events.try_iter());
        summary
    }

    /// Every stored checkpoint event seen so far, as (run, step).
    pub fn all_stored(&self) -> Vec<(String, u64)> {
        stored_in(&self.seen)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        // A failing test must not leave the daemon's thread running in the test binary.
        self.shutdown.trigger();
    }
}

/// The (run, step) of every stored checkpoint among `events`.
pub fn stored_in(events: &[LiveEvent]) -> Vec<(String, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            LiveEvent::CheckpointStored { run, step, .. } => Some((run.clone(), *step)),
            _ => None,
        })
        .collect()
}

/// The (run, path, reason) of every failed checkpoint among `events`.
pub fn failed_in(events: &[LiveEvent]) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            LiveEvent::CheckpointFailed { run, path, reason } => {
                Some((run.clone(), path.clone(), reason.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Opens the store a daemon left at `dir/.htsr`.
pub fn open_store(dir: &Path) -> Store {
    Store::open(dir.join(".htsr")).unwrap().0
}

/// The path a test writes step `step` of run directory `run` to.
pub fn step_path(dir: &Path, run: &str, step: u64) -> PathBuf {
    dir.join(run).join(step_name(step))
}
