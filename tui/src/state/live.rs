//! Applying the daemon's events. Nothing is read here: events only mark what the next frame must re-read, so
//! a burst of checkpoints costs one reload, and a paused dashboard keeps its picture.

use super::App;
use crate::options::Mode;
use htsr_api::ViewerEvent;
use htsr_contracts::live::LiveEvent;

impl App {
    /// Applies one event from the daemon or about the connection to it.
    pub fn apply(&mut self, event: impl Into<ViewerEvent>) {
        match event.into() {
            ViewerEvent::Live(e) => self.apply_live(e),
            ViewerEvent::Attached(info) => {
                if self.mode == Mode::Browse {
                    self.mode = Mode::Attached;
                }
                self.daemon_gone = false;
                self.dirty = super::Dirty::all();
                self.push_message(format!(
                    "attached to the htsr-watch daemon (pid {}) watching {}",
                    info.pid,
                    info.watching.as_deref().unwrap_or("?")
                ));
            }
            ViewerEvent::Detached { reason } => {
                if !self.daemon_gone {
                    self.daemon_gone = true;
                    self.analyzing = None;
                    self.push_message(format!("{reason}; showing the history, reconnecting"));
                }
            }
            ViewerEvent::Resync { .. } => self.dirty = super::Dirty::all(),
        }
    }

    fn apply_live(&mut self, event: LiveEvent) {
        match event {
            LiveEvent::Analyzing { run, step, .. } => self.analyzing = Some((run, step)),
            LiveEvent::CheckpointStored { run, step, .. } => {
                if self
                    .analyzing
                    .as_ref()
                    .is_some_and(|a| a.0 == run && a.1 == step)
                {
                    self.analyzing = None;
                }
                if self.paused {
                    if self.run.as_deref().is_none_or(|r| r == run) {
                        self.unseen += 1;
                    }
                    return;
                }
                self.dirty.runs = true;
                self.dirty.overlay = true;
                if self.run.as_deref().is_none_or(|r| r == run) {
                    self.dirty.run = true;
                } else if !self.run_picked {
                    // Follow the run that is receiving checkpoints, unless the user chose one.
                    self.switch_run(run);
                }
            }
            LiveEvent::CheckpointFailed { run, path, reason } => {
                self.analyzing = None;
                self.dirty.runs = !self.paused;
                self.push_message(format!("{run}: {path} failed: {reason}"));
            }
            LiveEvent::Status(s) => self.status = s,
            LiveEvent::Message { text } => self.push_message(text),
        }
    }

    /// The daemon's sending side closed: it stopped. The history stays browsable.
    pub fn daemon_stopped(&mut self) {
        if !self.daemon_gone {
            self.daemon_gone = true;
            self.analyzing = None;
            self.push_message("the daemon stopped: showing history only".to_string());
        }
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        if !paused {
            // Catch up with everything stored meanwhile, in any run.
            self.unseen = 0;
            self.dirty = super::Dirty::all();
        }
    }
}
