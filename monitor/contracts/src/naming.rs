//! The checkpoint naming contract, one definition for every writer (the tch hook, the Python callbacks) and the
//! daemon that reads what they write.
//!
//! - A checkpoint is a `*.safetensors` file, or a directory holding [`SHARD_INDEX_FILE`] and its shards.
//! - Names starting with `.` or ending in `.tmp` / `.partial` are never read: writers write under such a name and
//!   rename into place once the file is complete.
//! - A run is a subdirectory of the watched directory (or the directory itself); `htsr.run` may override it.
//! - The step is `htsr.step`, else the last number in the file name, else the order seen.

/// The index file of a Hugging Face sharded checkpoint.
pub const SHARD_INDEX_FILE: &str = "model.safetensors.index.json";

/// The extension of a checkpoint file.
pub const CHECKPOINT_EXTENSION: &str = ".safetensors";

/// The `__metadata__` keys htsr writes and reads. Writers may add any other `htsr.*` key.
pub mod keys {
    /// Prefix of every htsr metadata key.
    pub const PREFIX: &str = "htsr.";
    /// The training step (an unsigned integer).
    pub const STEP: &str = "htsr.step";
    /// The run id; overrides the directory the file is in.
    pub const RUN: &str = "htsr.run";
    /// The epoch the training loop was in (an unsigned integer).
    pub const EPOCH: &str = "htsr.epoch";
    /// Unix seconds when the checkpoint was taken.
    pub const WALL_TIME: &str = "htsr.wall_time";
    /// The training loss at the checkpoint (a float).
    pub const LOSS: &str = "htsr.loss";
    /// The learning rate at the checkpoint (a float).
    pub const LR: &str = "htsr.lr";
    /// The training batch size (an unsigned integer).
    pub const BATCH_SIZE: &str = "htsr.batch_size";

    /// `key` with the `htsr.` prefix added when it lacks it.
    pub fn prefixed(key: &str) -> String {
        if key.starts_with(PREFIX) {
            key.to_string()
        } else {
            format!("{PREFIX}{key}")
        }
    }
}

/// Environment variables the writers read (`HtsrHook::builder()`, `htsr.Checkpointer`).
pub mod env {
    /// The output directory (the one `htsr-watch` watches).
    pub const DIR: &str = "HTSR_DIR";
    /// Checkpoint every N steps (`0` disables step-based checkpoints).
    pub const EVERY: &str = "HTSR_EVERY";
    /// The run name (the subdirectory of the output directory).
    pub const RUN: &str = "HTSR_RUN";
    /// What a checkpoint holds: `weights`, `spectra` or `both`.
    pub const MODE: &str = "HTSR_MODE";
    /// The launcher's rank and world size (torchrun), read in this order before Slurm's.
    pub const RANK: &str = "RANK";
    /// torchrun's number of processes, read with [`RANK`].
    pub const WORLD_SIZE: &str = "WORLD_SIZE";
    /// Slurm's task rank, read when torchrun's variables are absent.
    pub const SLURM_PROCID: &str = "SLURM_PROCID";
    /// Slurm's number of tasks, read with [`SLURM_PROCID`].
    pub const SLURM_NTASKS: &str = "SLURM_NTASKS";

    /// This process's (rank, world size) from a distributed launcher's environment (torchrun's `RANK` /
    /// `WORLD_SIZE`, else Slurm's `SLURM_PROCID` / `SLURM_NTASKS`); (0, 1) without one; Err for values that are not
    /// a rank of a world.
    pub fn rank_from(get: impl Fn(&str) -> Option<String>) -> Result<(usize, usize), String> {
        for (r, w) in [(RANK, WORLD_SIZE), (SLURM_PROCID, SLURM_NTASKS)] {
            let (Some(rank), Some(world)) = (get(r), get(w)) else {
                continue;
            };
            let parse = |name: &str, v: &str| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("{name}={v:?} is not a whole number"))
            };
            let (rank, world) = (parse(r, &rank)?, parse(w, &world)?);
            if world == 0 || rank >= world {
                return Err(format!("{r}={rank} is not a rank of {w}={world}"));
            }
            return Ok((rank, world));
        }
        Ok((0, 1))
    }

    /// [`EVERY`] from `get`: None when unset or empty, Err naming the variable for a value that is not a whole
    /// number of steps.
    pub fn every_from(get: impl Fn(&str) -> Option<String>) -> Option<Result<u64, String>> {
        let v = get(EVERY).filter(|v| !v.trim().is_empty())?;
        Some(
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("{EVERY}={v:?} is not a whole number of steps")),
        )
    }

    /// [`MODE`] from `get`: None when unset or empty, Err naming the variable for a value that names no
    /// [`CheckpointMode`](super::CheckpointMode).
    pub fn mode_from(
        get: impl Fn(&str) -> Option<String>,
    ) -> Option<Result<super::CheckpointMode, String>> {
        let v = get(MODE).filter(|v| !v.trim().is_empty())?;
        Some(
            super::CheckpointMode::parse(v.trim()).ok_or_else(|| {
                format!("{MODE}={v:?}: expected {}", super::CheckpointMode::EXPECTED)
            }),
        )
    }
}

/// What a writer puts in a checkpoint (`HTSR_MODE`, a hook's `.mode(...)`, `Checkpointer(mode=...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointMode {
    /// The weights (`step-N.safetensors`), for `htsr-watch` to analyze (the default).
    #[default]
    Weights,
    /// Only each layer's eigenvalues, computed in the training process (`step-N.esd.safetensors`, or one file per
    /// rank).
    Spectra,
    /// Both.
    Both,
}

impl CheckpointMode {
    /// The names [`CheckpointMode::parse`] accepts, for error messages.
    pub const EXPECTED: &'static str = "weights, spectra or both";

    /// The mode a name means: `weights`, `spectra` or `both`.
    pub fn parse(s: &str) -> Option<CheckpointMode> {
        match s {
            "weights" => Some(CheckpointMode::Weights),
            "spectra" => Some(CheckpointMode::Spectra),
            "both" => Some(CheckpointMode::Both),
            _ => None,
        }
    }

    /// The mode's name, as [`CheckpointMode::parse`] reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointMode::Weights => "weights",
            CheckpointMode::Spectra => "spectra",
            CheckpointMode::Both => "both",
        }
    }
}

/// The writers' output directory when neither the caller nor [`env::DIR`] names one.
pub const DEFAULT_DIR: &str = "htsr-runs";
/// The writers' checkpoint interval in steps when neither the caller nor [`env::EVERY`] sets one.
pub const DEFAULT_EVERY: u64 = 100;

/// The run name a writer uses when neither the caller nor [`env::RUN`] names one: `run-<unix seconds>`.
pub fn default_run_name(unix_seconds: u64) -> String {
    format!("run-{unix_seconds}")
}

/// Checks that `run` can name a run directory under the output directory: one non-empty path component.
pub fn check_run_name(run: &str) -> Result<(), String> {
    if run.is_empty() || run == "." || run == ".." || run.contains(['/', '\\']) {
        return Err(format!(
            "run name {run:?} must be one non-empty path component"
        ));
    }
    Ok(())
}

/// FNV-1a, 64 bits, of `bytes`: a hash every htsr build computes the same way (std's hashers may change between
/// Rust releases), for names derived from other names (a run's TensorBoard folder, a long store path's socket).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Zero-padding of the step in file names: nine digits sort correctly up to a billion steps.
const STEP_DIGITS: usize = 9;

/// `step-<9-digit zero-padded step>.safetensors`, the final name of a weight checkpoint.
pub fn checkpoint_file_name(step: u64) -> String {
    format!("step-{step:0STEP_DIGITS$}{CHECKPOINT_EXTENSION}")
}

/// The temporary name a writer uses for `final_name` before renaming it into place: hidden and ending in `.tmp`,
/// so the daemon never reads it; `unique` (a process id, say) keeps two writers apart.
pub fn temporary_file_name(final_name: &str, unique: u64) -> String {
    format!(".{final_name}.{unique}.tmp")
}

/// The step of a name [`checkpoint_file_name`] made (`step-<digits>.safetensors`), or None for any other name.
pub fn step_of_checkpoint_file_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix("step-")?
        .strip_suffix(CHECKPOINT_EXTENSION)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// True for names the contract says are never read: hidden files and temporary files.
pub fn is_ignored_name(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".partial")
}

/// True for a final checkpoint file name.
pub fn is_checkpoint_name(name: &str) -> bool {
    !is_ignored_name(name) && name.ends_with(CHECKPOINT_EXTENSION)
}

/// The last number in a file or directory name (`step-000100.safetensors` -> 100), ignoring the extension: the
/// step of a checkpoint whose metadata has no `htsr.step`.
pub fn step_from_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(CHECKPOINT_EXTENSION).unwrap_or(name);
    let bytes = stem.as_bytes();
    let end = bytes.iter().rposition(u8::is_ascii_digit)? + 1;
    let start = bytes[..end]
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    // Keep the last 19 digits so that absurdly long numbers still parse.
    let start = start.max(end.saturating_sub(19));
    stem[start..end].parse().ok()
}

/// The step a checkpoint's metadata gives: `htsr.step` as an unsigned integer (a float with no fraction, as some
/// writers print it, is accepted).
pub fn step_from_metadata(value: &str) -> Option<u64> {
    let s = value.trim();
    s.parse::<u64>().ok().or_else(|| {
        s.parse::<f64>()
            .ok()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_round_trip_and_sort_by_step() {
        assert_eq!(checkpoint_file_name(100), "step-000000100.safetensors");
        assert_eq!(
            step_of_checkpoint_file_name(&checkpoint_file_name(12345)),
            Some(12345)
        );
        assert_eq!(step_of_checkpoint_file_name("step-.safetensors"), None);
        assert_eq!(step_of_checkpoint_file_name("step-+1.safetensors"), None);
        assert_eq!(step_of_checkpoint_file_name("latest.safetensors"), None);
        assert!(checkpoint_file_name(99) < checkpoint_file_name(100));
    }

    #[test]
    fn run_names_are_one_path_component() {
        assert_eq!(default_run_name(17), "run-17");
        assert!(check_run_name(&default_run_name(17)).is_ok());
        for bad in ["", ".", "..", "a/b", "a\\b"] {
            assert!(check_run_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn temporary_names_are_never_read() {
        let tmp = temporary_file_name(&checkpoint_file_name(7), 42);
        assert!(is_ignored_name(&tmp), "{tmp}");
        assert!(!is_checkpoint_name(&tmp));
        assert!(is_checkpoint_name(&checkpoint_file_name(7)));
    }

    #[test]
    fn steps_come_from_the_last_number_in_the_name() {
        assert_eq!(step_from_name("step-000100.safetensors"), Some(100));
        assert_eq!(step_from_name("epoch3-step42.safetensors"), Some(42));
        assert_eq!(step_from_name("model.safetensors"), None);
        assert_eq!(step_from_name("checkpoint-7"), Some(7));
        assert_eq!(step_from_name("12"), Some(12));
    }

    #[test]
    fn temporary_and_hidden_names_are_never_checkpoints() {
        assert!(is_checkpoint_name("a.safetensors"));
        assert!(!is_checkpoint_name(".a.safetensors"));
        assert!(!is_checkpoint_name("a.safetensors.tmp"));
        assert!(!is_checkpoint_name("a.safetensors.partial"));
        assert!(!is_checkpoint_name("a.bin"));
    }

    #[test]
    fn ranks_come_from_torchrun_then_slurm() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(env::rank_from(env(&[])), Ok((0, 1)));
        assert_eq!(
            env::rank_from(env(&[("RANK", "1"), ("WORLD_SIZE", "2")])),
            Ok((1, 2))
        );
        assert_eq!(
            env::rank_from(env(&[("SLURM_PROCID", "3"), ("SLURM_NTASKS", "4")])),
            Ok((3, 4))
        );
        assert!(env::rank_from(env(&[("RANK", "2"), ("WORLD_SIZE", "2")])).is_err());
        assert!(env::rank_from(env(&[("RANK", "x"), ("WORLD_SIZE", "2")])).is_err());
    }

    #[test]
    fn metadata_steps_accept_integers_and_whole_floats() {
        assert_eq!(step_from_metadata(" 42 "), Some(42));
        assert_eq!(step_from_metadata("42.0"), Some(42));
        assert_eq!(step_from_metadata("42.5"), None);
        assert_eq!(step_from_metadata("-1"), None);
        assert_eq!(keys::prefixed("lr"), "htsr.lr");
        assert_eq!(keys::prefixed("htsr.lr"), "htsr.lr");
    }
}
