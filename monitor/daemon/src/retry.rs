//! Results the store refused (a full disk, denied permissions) are kept and written again with exponential backoff,
//! without analyzing the checkpoint again; one warning per cause until a write succeeds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::daemon::Daemon;
use crate::queue::Job;
use crate::worker::PendingWrite;

/// First wait before retrying a store write that failed.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// A store write waiting for its next attempt.
pub(crate) struct Retry {
    pub job: Job,
    pub write: Box<PendingWrite>,
    /// Whether the checkpoint's analysis succeeded (a failed record is retried the same way).
    pub stored_failed: Option<String>,
    pub attempts: u32,
    pub due: Instant,
    pub layers_failed: usize,
}

impl Daemon {
    /// Keeps results the store refused for a later attempt, with exponential backoff, and says so once per cause.
    pub(crate) fn schedule_retry(
        &mut self,
        job: Job,
        write: Box<PendingWrite>,
        error: htsr_storage::Error,
        stored_failed: Option<String>,
        layers_failed: usize,
        attempts: u32,
    ) {
        let path = job.candidate.path.clone();
        if self.cfg.once {
            // `--once` does not wait minutes for a disk to empty: it reports and exits non-zero.
            self.summary.failed += 1;
            self.progress.warn(format!(
                "{}: storing {}@{}: {error}",
                self.store.path().display(),
                job.run,
                job.step
            ));
            return;
        }
        let backoff = FIRST_RETRY
            .saturating_mul(1u32 << attempts.min(16))
            .min(self.cfg.max_retry_backoff);
        if self.warned_causes.insert(error.kind()) {
            self.progress.warn(format!(
                "{}: cannot store results ({error}); keeping them and retrying with backoff (up to {} s) until it \
                 works",
                self.store.path().display(),
                self.cfg.max_retry_backoff.as_secs()
            ));
        } else {
            tracing::debug!(run = %job.run, step = job.step, %error, attempts, "store write failed again");
        }
        self.retries.insert(
            path,
            Retry {
                job,
                write,
                stored_failed,
                attempts,
                due: Instant::now() + backoff,
                layers_failed,
            },
        );
    }

    /// Retries the store writes that are due. A path whose file changed meanwhile was dropped from the retries when
    /// its new version became a job.
    pub(crate) fn retry_due(&mut self, now: Instant) {
        let due: Vec<PathBuf> = self
            .retries
            .iter()
            .filter(|(_, r)| r.due <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for path in due {
            let Some(retry) = self.retries.remove(&path) else {
                continue;
            };
            match retry.write.write(&self.store) {
                Ok(()) => {
                    self.warned_causes.clear();
                    let Retry {
                        job,
                        write,
                        stored_failed,
                        layers_failed,
                        ..
                    } = retry;
                    tracing::info!(run = %job.run, step = job.step, "stored after a retry");
                    if stored_failed.is_none() {
                        self.summary.stored += 1;
                        if layers_failed > 0 {
                            self.summary.failed += 1;
                        }
                        self.progress.stored(
                            &job.run,
                            job.step,
                            write.reports.len(),
                            layers_failed,
                            0,
                            write.record.analysis_seconds,
                            write.record.phase_counts,
                        );
                    }
                }
                Err(e) => {
                    let Retry {
                        job,
                        write,
                        stored_failed,
                        layers_failed,
                        attempts,
                        ..
                    } = retry;
                    self.schedule_retry(job, write, e, stored_failed, layers_failed, attempts + 1);
                }
            }
        }
    }
}
