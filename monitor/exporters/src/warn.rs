//! One warning per cause: an exporter that keeps failing for the same reason (a full disk, a LOGDIR it may not
//! write) must not flood the log once per checkpoint, and must never stop the daemon either.

use std::collections::HashSet;

/// Remembers which causes were already reported.
#[derive(Debug, Default)]
pub struct WarnOnce {
    exporter: &'static str,
    seen: HashSet<String>,
}

impl WarnOnce {
    /// A reporter whose lines start with `exporter` (`"tensorboard"`, `"metrics"`).
    pub fn new(exporter: &'static str) -> Self {
        WarnOnce {
            exporter,
            seen: HashSet::new(),
        }
    }

    /// Logs `message` as a warning unless `cause` was reported before; returns whether it was logged.
    pub fn warn(&mut self, cause: &str, message: &dyn std::fmt::Display) -> bool {
        if !self.seen.insert(cause.to_string()) {
            return false;
        }
        tracing::warn!(
            "{}: {message} (reported once; analysis and storage go on)",
            self.exporter
        );
        true
    }

    /// Whether anything was reported.
    pub fn any(&self) -> bool {
        !self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::WarnOnce;

    #[test]
    fn each_cause_is_reported_once() {
        let mut w = WarnOnce::new("test");
        assert!(!w.any());
        assert!(w.warn("disk full", &"no space left on /x"));
        assert!(!w.warn("disk full", &"no space left on /x again"));
        assert!(w.warn("permission denied", &"/y: permission denied"));
        assert!(w.any());
    }
}
