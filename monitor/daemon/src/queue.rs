//! Checkpoints ready to be analyzed, ordered by (run, step). At most one checkpoint per run is handed out at a
//! time, so that a run's checkpoints are stored in step order and each can reuse the previous one's reports
//! for frozen layers; `--jobs` workers therefore work on different runs in parallel.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use htsr_contracts::FileIdentity;

use crate::scan::Candidate;

/// One checkpoint to analyze.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub candidate: Candidate,
    pub identity: FileIdentity,
    pub run: String,
    pub step: u64,
    pub metadata: BTreeMap<String, String>,
    /// For the rank files of one step of a multi-rank run: the files present (by rank) and the world size; the
    /// candidate then stands for the group (its path is the name the rank files share, which no file has).
    pub parts: Option<RankParts>,
}

/// The rank files that make one checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RankParts {
    pub world: usize,
    /// (rank, path) of the files present, by rank.
    pub files: Vec<(usize, PathBuf)>,
}

impl RankParts {
    /// The ranks whose files are absent.
    pub fn missing(&self) -> Vec<usize> {
        (0..self.world)
            .filter(|r| !self.files.iter().any(|(f, _)| f == r))
            .collect()
    }
}

type Key = (String, u64, PathBuf);

/// The queue. A path is queued at most once: a newer version of a queued file replaces the older job.
#[derive(Debug, Default)]
pub struct WorkQueue {
    items: BTreeMap<Key, Job>,
    keys: HashMap<PathBuf, Key>,
}

impl WorkQueue {
    pub fn push(&mut self, job: Job) {
        if let Some(old) = self.keys.remove(&job.candidate.path) {
            self.items.remove(&old);
        }
        let key = (job.run.clone(), job.step, job.candidate.path.clone());
        self.keys.insert(job.candidate.path.clone(), key.clone());
        self.items.insert(key, job);
    }

    /// The first job in (run, step) order whose run has no job in flight.
    pub fn pop_next(&mut self, busy_runs: &HashSet<String>) -> Option<Job> {
        let key = self
            .items
            .keys()
            .find(|(run, _, _)| !busy_runs.contains(run))?
            .clone();
        let job = self.items.remove(&key)?;
        self.keys.remove(&job.candidate.path);
        Some(job)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(run: &str, step: u64, path: &str) -> Job {
        Job {
            candidate: Candidate {
                path: PathBuf::from(path),
                rel: path.to_string(),
                dir_run: run.to_string(),
                sharded: false,
                rank: None,
            },
            identity: FileIdentity {
                path: path.to_string(),
                size: step,
                mtime_ns: 0,
                header_hash: String::new(),
            },
            run: run.to_string(),
            step,
            metadata: BTreeMap::new(),
            parts: None,
        }
    }

    #[test]
    fn jobs_come_out_by_run_then_step_one_per_busy_run() {
        let mut q = WorkQueue::default();
        q.push(job("b", 1, "b1"));
        q.push(job("a", 10, "a10"));
        q.push(job("a", 2, "a2"));
        let mut busy = HashSet::new();
        let first = q.pop_next(&busy).unwrap();
        assert_eq!((first.run.as_str(), first.step), ("a", 2));
        busy.insert("a".to_string());
        let second = q.pop_next(&busy).unwrap();
        assert_eq!((second.run.as_str(), second.step), ("b", 1));
        busy.insert("b".to_string());
        assert!(q.pop_next(&busy).is_none());
        busy.clear();
        assert_eq!(q.pop_next(&busy).unwrap().step, 10);
        assert!(q.is_empty());
    }

    #[test]
    fn a_requeued_path_replaces_its_older_job() {
        let mut q = WorkQueue::default();
        q.push(job("a", 1, "x"));
        q.push(job("a", 5, "x"));
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_next(&HashSet::new()).unwrap().step, 5);
    }
}
