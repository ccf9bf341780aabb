//! When is a checkpoint ready? A pure state machine over successive [`Look`]s of each path (no I/O here, so it
//! is tested with made-up looks).
//!
//! - Ready: a complete, valid header, and size, mtime and header unchanged across two looks `settle` apart.
//! - Still being written (growing, incomplete, invalid): looked at again with exponential backoff.
//! - Given up (stored as a failed checkpoint): invalid and unchanged for `invalid_looks` looks and at least
//!   `invalid_grace`, or not ready after `give_up` (a writer that died mid-file). A later change to the file is a
//!   new identity and starts over.
//! - Settled paths (stored, skipped, failed) are remembered with their size and mtime, so that a rescan costs one
//!   `stat` per file and only a changed file is looked at again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::identity::{Look, LookError, Validity};
use crate::scan::Candidate;

/// Timing of the readiness checks.
#[derive(Debug, Clone)]
pub struct ReadinessConfig {
    /// Gap between the two looks that must agree before a complete file is read.
    pub settle: Duration,
    /// Longest wait between looks at a file that is not ready.
    pub max_backoff: Duration,
    /// Consecutive identical looks at an invalid file before it is declared broken...
    pub invalid_looks: u32,
    /// ...provided it was first seen at least this long ago.
    pub invalid_grace: Duration,
    /// A file not ready after this long is declared broken whatever its state.
    pub give_up: Duration,
}

impl Default for ReadinessConfig {
    fn default() -> Self {
        ReadinessConfig {
            settle: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            invalid_looks: 4,
            invalid_grace: Duration::from_secs(1),
            give_up: Duration::from_secs(30),
        }
    }
}

/// What to do with a path after a look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not decided yet; it will be due again.
    Wait,
    /// Complete and stable: read it.
    Ready(Candidate, Look),
    /// Declared broken: store it as a failed checkpoint with this reason.
    Broken(Candidate, Look, String),
    /// The path is gone; forget it.
    Gone(Candidate),
    /// An I/O error (permission denied, ...): `first` is true the first time for this path, so it is logged
    /// once; `give_up` is true once it has lasted as long as an invalid file is given.
    IoError {
        candidate: Candidate,
        reason: String,
        first: bool,
        give_up: bool,
    },
}

#[derive(Debug)]
struct Pending {
    candidate: Candidate,
    first_seen: Instant,
    last_key: Option<(u64, i128, Validity)>,
    same_looks: u32,
    backoff: Duration,
    due: Instant,
    io_errors: u32,
}

/// Every path the daemon is waiting on, and every path it has settled.
#[derive(Debug, Default)]
pub struct Tracker {
    config: ReadinessConfig,
    pending: HashMap<PathBuf, Pending>,
    settled: HashMap<PathBuf, (u64, i128)>,
}

impl Tracker {
    pub fn new(config: ReadinessConfig) -> Self {
        Tracker {
            config,
            pending: HashMap::new(),
            settled: HashMap::new(),
        }
    }

    /// A scan or an event found this candidate, whose current size and mtime are `stat` (None when the stat
    /// failed: the look will say why). Returns true when the path is (now) pending.
    pub fn offer(&mut self, candidate: Candidate, stat: Option<(u64, i128)>, now: Instant) -> bool {
        if let Some(p) = self.pending.get_mut(&candidate.path) {
            // Something happened to it: look again soon, but never sooner than `settle` after the last look.
            p.due = p.due.min(now + self.config.settle);
            return true;
        }
        if let (Some(s), Some(settled)) = (stat, self.settled.get(&candidate.path)) {
            if s == *settled {
                return false;
            }
        }
        self.settled.remove(&candidate.path);
        self.pending.insert(
            candidate.path.clone(),
            Pending {
                candidate,
                first_seen: now,
                last_key: None,
                same_looks: 0,
                backoff: self.config.settle,
                due: now,
                io_errors: 0,
            },
        );
        true
    }

    /// Remembers a path as done with this size and mtime (stored, skipped because already stored, or failed).
    pub fn settle(&mut self, path: &Path, size: u64, mtime_ns: i128) {
        self.pending.remove(path);
        self.settled.insert(path.to_path_buf(), (size, mtime_ns));
    }

    /// Forgets a settled path, so that the next scan looks at it again (its job found the file changed, or
    /// storing it failed).
    pub fn unsettle(&mut self, path: &Path) {
        self.settled.remove(path);
    }

    /// Stops waiting on a path without settling it (given up in `--once` mode).
    pub fn drop_pending(&mut self, path: &Path) {
        self.pending.remove(path);
    }

    /// Forgets everything under `dir` that is pending (its directory was removed).
    pub fn forget_under(&mut self, dir: &Path) {
        self.pending.retain(|p, _| !p.starts_with(dir));
        self.settled.retain(|p, _| !p.starts_with(dir));
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Pending paths whose next look is due, with their candidates.
    pub fn due(&self, now: Instant) -> Vec<Candidate> {
        let mut due: Vec<_> = self
            .pending
            .values()
            .filter(|p| p.due <= now)
            .map(|p| p.candidate.clone())
            .collect();
        due.sort_by(|a, b| a.path.cmp(&b.path));
        due
    }

    /// When the next pending look is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.due).min()
    }

    /// Applies a look (or its failure) to a pending path.
    pub fn observe(&mut self, path: &Path, look: Result<Look, LookError>, now: Instant) -> Verdict {
        let cfg = self.config.clone();
        let Some(p) = self.pending.get_mut(path) else {
            return Verdict::Wait;
        };
        let look = match look {
            Ok(look) => look,
            Err(LookError::Gone) => {
                let p = self.pending.remove(path).expect("pending");
                self.settled.remove(path);
                return Verdict::Gone(p.candidate);
            }
            Err(LookError::Io(reason)) => {
                p.io_errors += 1;
                let first = p.io_errors == 1;
                let give_up = p.io_errors >= cfg.invalid_looks
                    && now.duration_since(p.first_seen) >= cfg.invalid_grace;
                p.due = now + p.backoff;
                p.backoff = (p.backoff * 2).min(cfg.max_backoff);
                return Verdict::IoError {
                    candidate: p.candidate.clone(),
                    reason,
                    first,
                    give_up,
                };
            }
        };
        let key = (look.size, look.mtime_ns, look.validity.clone());
        if p.last_key.as_ref() == Some(&key) {
            p.same_looks += 1;
        } else {
            p.same_looks = 0;
            p.last_key = Some(key);
        }
        let age = now.duration_since(p.first_seen);
        match &look.validity {
            Validity::Complete { .. } if p.same_looks >= 1 => {
                let candidate = p.candidate.clone();
                self.settle(path, look.size, look.mtime_ns);
                return Verdict::Ready(candidate, look);
            }
            Validity::Complete { .. } => {
                p.due = now + cfg.settle;
                return Verdict::Wait;
            }
            Validity::Invalid { reason }
                if p.same_looks + 1 >= cfg.invalid_looks && age >= cfg.invalid_grace =>
            {
                let reason = reason.clone();
                let candidate = p.candidate.clone();
                self.settle(path, look.size, look.mtime_ns);
                return Verdict::Broken(candidate, look, reason);
            }
            Validity::Invalid { reason } | Validity::Incomplete { reason }
                if age >= cfg.give_up =>
            {
                let reason = format!(
                    "{reason}; still not a complete checkpoint after {} s",
                    cfg.give_up.as_secs()
                );
                let candidate = p.candidate.clone();
                self.settle(path, look.size, look.mtime_ns);
                return Verdict::Broken(candidate, look, reason);
            }
            _ => {}
        }
        p.due = now + p.backoff;
        p.backoff = (p.backoff * 2).min(cfg.max_backoff);
        Verdict::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str) -> Candidate {
        Candidate {
            path: PathBuf::from(name),
            rel: name.to_string(),
            dir_run: "r".to_string(),
            sharded: false,
            rank: None,
        }
    }

    fn look(size: u64, validity: Validity) -> Result<Look, LookError> {
        Ok(Look {
            size,
            mtime_ns: size as i128,
            validity,
            metadata: Default::default(),
        })
    }

    fn complete() -> Validity {
        Validity::Complete {
            header_hash: "h".into(),
        }
    }

    #[test]
    fn a_complete_file_is_ready_after_two_identical_looks() {
        let mut t = Tracker::new(ReadinessConfig::default());
        let t0 = Instant::now();
        assert!(t.offer(cand("a"), Some((10, 10)), t0));
        assert_eq!(
            t.observe(Path::new("a"), look(10, complete()), t0),
            Verdict::Wait
        );
        assert!(t.due(t0).is_empty());
        let t1 = t0 + Duration::from_millis(60);
        assert_eq!(t.due(t1).len(), 1);
        assert!(matches!(
            t.observe(Path::new("a"), look(10, complete()), t1),
            Verdict::Ready(..)
        ));
        assert!(t.is_idle());
        // Settled: the same stat is not offered again; a changed one is.
        assert!(!t.offer(cand("a"), Some((10, 10)), t1));
        assert!(t.offer(cand("a"), Some((11, 11)), t1));
    }

    #[test]
    fn a_growing_file_is_never_ready() {
        let mut t = Tracker::new(ReadinessConfig::default());
        let mut now = Instant::now();
        t.offer(cand("a"), None, now);
        for size in 1..20u64 {
            let v = if size % 2 == 0 {
                complete()
            } else {
                Validity::Incomplete {
                    reason: "short".into(),
                }
            };
            assert_eq!(t.observe(Path::new("a"), look(size, v), now), Verdict::Wait);
            now += Duration::from_millis(500);
        }
    }

    #[test]
    fn an_invalid_unchanging_file_is_declared_broken_after_the_grace() {
        let cfg = ReadinessConfig::default();
        let mut t = Tracker::new(cfg.clone());
        let t0 = Instant::now();
        t.offer(cand("a"), None, t0);
        let bad = || {
            look(
                5,
                Validity::Invalid {
                    reason: "garbage".into(),
                },
            )
        };
        for i in 0..cfg.invalid_looks {
            assert_eq!(
                t.observe(
                    Path::new("a"),
                    bad(),
                    t0 + Duration::from_millis(10 * i as u64)
                ),
                Verdict::Wait
            );
        }
        match t.observe(Path::new("a"), bad(), t0 + cfg.invalid_grace) {
            Verdict::Broken(_, _, reason) => assert_eq!(reason, "garbage"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn a_truncated_file_is_given_up_after_the_timeout() {
        let cfg = ReadinessConfig::default();
        let mut t = Tracker::new(cfg.clone());
        let t0 = Instant::now();
        t.offer(cand("a"), None, t0);
        let short = || {
            look(
                5,
                Validity::Incomplete {
                    reason: "5 of 9 bytes".into(),
                },
            )
        };
        assert_eq!(t.observe(Path::new("a"), short(), t0), Verdict::Wait);
        assert_eq!(
            t.observe(Path::new("a"), short(), t0 + Duration::from_secs(5)),
            Verdict::Wait
        );
        assert!(matches!(
            t.observe(Path::new("a"), short(), t0 + cfg.give_up),
            Verdict::Broken(..)
        ));
    }

    #[test]
    fn a_vanished_file_is_forgotten() {
        let mut t = Tracker::new(ReadinessConfig::default());
        let t0 = Instant::now();
        t.offer(cand("a"), None, t0);
        assert!(matches!(
            t.observe(Path::new("a"), Err(LookError::Gone), t0),
            Verdict::Gone(_)
        ));
        assert!(t.is_idle());
    }
}
