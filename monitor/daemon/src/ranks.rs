//! Spectra files of a multi-rank run: each rank writes its own file for a step, and the files of one step become
//! one checkpoint once all have arrived, or, after the give-up time, with the layers of the missing ranks stored
//! as missing (never dropped silently).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::daemon::Daemon;
use crate::identity::{look, Look, Validity};
use crate::queue::RankParts;
use crate::scan::Candidate;

/// The path a group of rank files stands for: the name they share (`step-N.esd.safetensors`) in their directory.
fn group_path(candidate: &Candidate) -> PathBuf {
    let name = candidate
        .path
        .file_name()
        .map(|n| htsr_contracts::spectra::merged_name(&n.to_string_lossy()))
        .unwrap_or_default();
    candidate.path.with_file_name(name)
}

/// The rank files of one step seen so far.
pub(crate) struct RankGroup {
    /// The first rank file's candidate (its run, its directory).
    pub first: Candidate,
    pub world: usize,
    /// When the first file was ready: the group gives up waiting for the others `give_up` later.
    pub since: Instant,
}

impl Daemon {
    /// A rank file is complete: look at its siblings (the other ranks' files of the same step); once all are
    /// complete the group becomes one job. Looking at the siblings directly (rather than waiting for each to be
    /// ready on its own) also re-forms a group when one file of an already stored step is rewritten.
    pub(crate) fn rank_file_ready(&mut self, candidate: Candidate, now: Instant) {
        let Some((_, world)) = candidate.rank else {
            return;
        };
        let key = group_path(&candidate);
        let group = self.groups.entry(key.clone()).or_insert_with(|| RankGroup {
            first: candidate.clone(),
            world,
            since: now,
        });
        if group.world != world {
            tracing::warn!(path = %candidate.path.display(), "rank files of one step disagree on the number of ranks");
        }
        if let Some(parts) = self.complete_parts(&key) {
            if parts.missing().is_empty() {
                self.make_group_job(key, parts);
            }
        }
    }

    /// The rank files of group `key` that are complete now.
    fn complete_parts(&self, key: &Path) -> Option<RankParts> {
        let group = self.groups.get(key)?;
        let merged = key.file_name()?.to_string_lossy().into_owned();
        let mut files = Vec::new();
        for rank in 0..group.world {
            let path = key.with_file_name(htsr_contracts::spectra::rank_file_name(
                &merged,
                rank,
                group.world,
            ));
            if let Ok(l) = look(&path, false) {
                if matches!(l.validity, Validity::Complete { .. }) {
                    files.push((rank, path));
                }
            }
        }
        Some(RankParts {
            world: group.world,
            files,
        })
    }

    /// Groups still incomplete after the give-up time become jobs with the files that arrived: their missing
    /// layers are stored as missing, never dropped silently.
    pub(crate) fn groups_due(&mut self, now: Instant) {
        let give_up = self.cfg.readiness.give_up;
        let due: Vec<PathBuf> = self
            .groups
            .iter()
            .filter(|(_, g)| g.since + give_up <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            match self.complete_parts(&key) {
                Some(parts) if !parts.files.is_empty() => {
                    tracing::warn!(
                        "{}: ranks {:?} of {} did not write their spectra within {} s; storing the step without \
                         their layers (listed as missing)",
                        key.display(),
                        parts.missing(),
                        parts.world,
                        give_up.as_secs()
                    );
                    self.make_group_job(key, parts);
                }
                _ => {
                    self.groups.remove(&key);
                }
            }
        }
    }

    /// One job for the rank files `parts` of group `key`: its identity combines the files' identities, so a later
    /// change (a missing rank arriving) is a new version of the same checkpoint.
    fn make_group_job(&mut self, key: PathBuf, parts: RankParts) {
        let Some(group) = self.groups.remove(&key) else {
            return;
        };
        let mut hasher = blake3::Hasher::new();
        let (mut size, mut mtime) = (0u64, 0i128);
        let mut metadata = std::collections::BTreeMap::new();
        for (rank, path) in &parts.files {
            let Ok(l) = look(path, false) else {
                // Gone meanwhile: the next scan forms the group again.
                return;
            };
            let Validity::Complete { header_hash } = &l.validity else {
                return;
            };
            size += l.size;
            mtime = mtime.max(l.mtime_ns);
            hasher.update(&(*rank as u64).to_le_bytes());
            hasher.update(header_hash.as_bytes());
            for (k, v) in l.metadata {
                metadata.entry(k).or_insert(v);
            }
        }
        hasher.update(&(parts.world as u64).to_le_bytes());
        let candidate = Candidate {
            rel: self.layout.rel(&key),
            path: key,
            dir_run: group.first.dir_run.clone(),
            sharded: false,
            rank: None,
        };
        let look = Look {
            size,
            mtime_ns: mtime,
            validity: Validity::Complete {
                header_hash: hasher.finalize().to_hex().to_string(),
            },
            metadata,
        };
        if self.already_stored(&candidate, &look) {
            return;
        }
        self.make_job(candidate, look, Some(parts));
    }
}
