//! The filesystem events that wake the daemon's loop, and the messages it sleeps on.
//!
//! All the watching is advisory: a full scan at start and every `rescan` means a lost event (or a filesystem that
//! sends none) costs latency, never data. Only events that can mean new or changed checkpoint data wake the loop
//! (never an open or a read, which the daemon's own looks cause).

use std::path::PathBuf;
use std::sync::mpsc::Sender;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::daemon::Daemon;
use crate::worker::Outcome;

/// What wakes the daemon's loop.
pub(crate) enum Msg {
    /// Paths an event that may change checkpoint data touched.
    Fs(Vec<PathBuf>),
    RescanAll,
    WatchError(String),
    Done(Box<Outcome>),
    Wake,
}

pub(crate) fn wrap_outcome(o: Outcome) -> Msg {
    Msg::Done(Box::new(o))
}

/// True for events that can mean new or changed checkpoint data: creation, a data write, a close after writing, a
/// rename, a removal. Opens, reads and attribute changes are not (the daemon's own looks cause opens).
fn may_change_data(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        // Unknown kinds (other platforms, rescans) are taken as changes: a lost change costs more than a scan.
        EventKind::Any | EventKind::Other => true,
    }
}

impl Daemon {
    pub(crate) fn start_watcher(&mut self, tx: Sender<Msg>) -> Option<Box<dyn Watcher + Send>> {
        // Runs on notify's thread: events that cannot change checkpoint data are dropped here and never wake the
        // daemon's loop.
        let handler = move |res: notify::Result<notify::Event>| {
            let msg = match res {
                Ok(ev) if ev.need_rescan() => Msg::RescanAll,
                Ok(ev) if may_change_data(&ev.kind) => Msg::Fs(ev.paths),
                Ok(_) => return,
                Err(e) => Msg::WatchError(e.to_string()),
            };
            let _ = tx.send(msg);
        };
        let watcher: notify::Result<Box<dyn Watcher + Send>> = match self.cfg.poll {
            Some(interval) => notify::PollWatcher::new(
                handler,
                notify::Config::default().with_poll_interval(interval),
            )
            .map(|w| Box::new(w) as Box<dyn Watcher + Send>),
            None => {
                notify::recommended_watcher(handler).map(|w| Box::new(w) as Box<dyn Watcher + Send>)
            }
        };
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                self.progress.warn(format!(
                    "{}: cannot watch for changes ({e}); relying on the rescan every {} s",
                    self.cfg.root.display(),
                    self.cfg.rescan.as_secs_f64()
                ));
                return None;
            }
        };
        if let Err(e) = watcher.watch(&self.cfg.root, RecursiveMode::Recursive) {
            self.progress.warn(format!(
                "{}: cannot watch for changes ({e}); relying on the rescan every {} s",
                self.cfg.root.display(),
                self.cfg.rescan.as_secs_f64()
            ));
            return None;
        }
        Some(watcher)
    }
}
