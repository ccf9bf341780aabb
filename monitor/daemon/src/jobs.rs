//! From a ready file to a job: which run and step it is, whether it is stored already (or is the spectra twin of a
//! weights file being analyzed), and what is stored for a file that stays broken.

use htsr_contracts::{naming, CheckpointStatus, LayerStatus};

use crate::daemon::Daemon;
use crate::identity::{Look, Validity};
use crate::queue::{Job, RankParts};
use crate::scan::Candidate;
use crate::worker::failed_record;

impl Daemon {
    /// True (and the path settled) for a spectra file written beside the weights of the same step (`mode = both`):
    /// the two are one checkpoint, and the weights are analyzed (they give the same eigenvalues and more).
    pub(crate) fn weights_beside(&mut self, candidate: &Candidate, l: &Look) -> bool {
        let weights = candidate
            .path
            .file_name()
            .and_then(|n| htsr_contracts::spectra::weights_name(&n.to_string_lossy()))
            .map(|w| candidate.path.with_file_name(w));
        match weights {
            Some(w) if w.is_file() => {
                self.tracker.settle(&candidate.path, l.size, l.mtime_ns);
                self.summary.skipped += 1;
                tracing::debug!(path = %candidate.path.display(), "spectra of a step whose weights are analyzed");
                true
            }
            _ => false,
        }
    }

    /// True (and the path settled) when this exact file is in the store already.
    pub(crate) fn already_stored(&mut self, candidate: &Candidate, l: &Look) -> bool {
        if matches!(l.validity, Validity::Incomplete { .. }) {
            return false;
        }
        let identity = l.identity(&candidate.rel);
        match self.store.find_by_identity(&identity) {
            Ok(Some(record)) => {
                self.tracker.settle(&candidate.path, l.size, l.mtime_ns);
                self.summary.skipped += 1;
                if self.cfg.once && self.record_failed(&record) {
                    self.summary.failed += 1;
                }
                tracing::debug!(path = %candidate.path.display(), run = %record.run, step = record.step, "already stored");
                true
            }
            Ok(None) => false,
            Err(e) => {
                self.progress.warn(format!(
                    "{}: reading the store: {e}",
                    self.store.path().display()
                ));
                false
            }
        }
    }

    pub(crate) fn record_failed(&self, record: &htsr_contracts::CheckpointRecord) -> bool {
        record.status == CheckpointStatus::Failed
            || self
                .store
                .layers_at(&record.run, record.step)
                .map(|ls| ls.iter().any(|l| l.status == LayerStatus::Failed))
                .unwrap_or(true)
    }

    /// The step of a checkpoint: `htsr.step`, else the last number in its name, else the order seen.
    pub(crate) fn step_for(
        &mut self,
        run: &str,
        candidate: &Candidate,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> u64 {
        let from_meta = metadata
            .get(naming::keys::STEP)
            .and_then(|s| naming::step_from_metadata(s));
        let name = candidate
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let step = match from_meta.or_else(|| naming::step_from_name(&name)) {
            Some(step) => step,
            None => {
                let stored = self.store.latest_step(run).ok().flatten();
                let base = stored.max(self.assigned.get(run).copied());
                base.map_or(0, |b| b + 1)
            }
        };
        let slot = self.assigned.entry(run.to_string()).or_insert(step);
        *slot = (*slot).max(step);
        step
    }

    pub(crate) fn make_job(&mut self, candidate: Candidate, look: Look, parts: Option<RankParts>) {
        if self.retries.remove(&candidate.path).is_some() {
            tracing::debug!(path = %candidate.path.display(), "a new version supersedes results waiting to be stored");
        }
        // The look read the header(s): their metadata says the run and the step, nothing is opened again here.
        let metadata = look.metadata.clone();
        let run = metadata
            .get(naming::keys::RUN)
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| candidate.dir_run.clone());
        let step = self.step_for(&run, &candidate, &metadata);
        let identity = look.identity(&candidate.rel);
        self.queue.push(Job {
            candidate,
            identity,
            run,
            step,
            metadata,
            parts,
        });
    }

    pub(crate) fn store_broken(
        &mut self,
        candidate: &Candidate,
        look: &Look,
        reason: String,
        metadata: std::collections::BTreeMap<String, String>,
    ) {
        let run = candidate.dir_run.clone();
        let step = self.step_for(&run, candidate, &metadata);
        self.summary.failed += 1;
        self.progress.failed(&run, step, &candidate.path, &reason);
        let identity = look.identity(&candidate.rel);
        let write = failed_record(&run, step, identity.clone(), metadata.clone(), &reason);
        if let Err(e) = write.write(&self.store) {
            let job = Job {
                candidate: candidate.clone(),
                identity,
                run,
                step,
                metadata,
                parts: None,
            };
            self.schedule_retry(job, Box::new(write), e, Some(reason), 0, 0);
        }
    }
}
