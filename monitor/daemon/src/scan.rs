//! Which paths under the watched directory are checkpoints, and to which run each belongs.
//!
//! The contract ([`htsr_contracts::naming`]): a checkpoint is a `*.safetensors` file or a directory holding
//! `model.safetensors.index.json`; names starting with `.` or ending in `.tmp`/`.partial` are never read. A run is
//! a directory holding checkpoints: DIR itself, or any directory below it down to [`MAX_RUN_DEPTH`] levels (so
//! `DIR/hf/run-1700000000/` is run `hf/run-1700000000`, as the training callbacks lay runs out), named by its path
//! relative to DIR. Hidden directories and the store are never entered.

use std::io;
use std::path::{Component, Path, PathBuf};

use htsr_contracts::naming::{is_checkpoint_name, is_ignored_name, SHARD_INDEX_FILE};

/// How deep below DIR run directories are looked for: DIR/a/b/c/d is the deepest run. Deeper checkpoints are not
/// watched (a rescan stats every directory down to this depth, so the bound keeps a rescan of a large tree cheap).
pub const MAX_RUN_DEPTH: usize = 4;

/// A path that looks like a checkpoint, before anything in it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    /// The path relative to the watched directory, `/`-separated: the identity the store keeps, so that the
    /// history stays valid when the directory (and its `.htsr/` store) is moved.
    pub rel: String,
    /// The run the directory layout says (`htsr.run` metadata may override it).
    pub dir_run: String,
    /// True for a sharded checkpoint (a directory).
    pub sharded: bool,
    /// For a spectra file of one rank of a multi-rank run: (rank, world size). Its rank files are one checkpoint.
    pub rank: Option<(usize, usize)>,
}

/// A part of the tree to look at again after an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// The whole watched directory.
    All,
    /// One top-level entry of it: a checkpoint file directly in DIR, a sharded checkpoint, or a run directory.
    Entry(PathBuf),
}

/// The watched directory's layout.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    root_run: String,
    ignored: Vec<PathBuf>,
}

impl Layout {
    /// `root` should be canonical (event paths are compared with it); `ignored` holds paths never scanned (the
    /// store, when it lives inside DIR under a name without a leading dot).
    pub fn new(root: PathBuf, ignored: Vec<PathBuf>) -> Self {
        let root_run = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "default".to_string());
        Layout {
            root,
            root_run,
            ignored,
        }
    }

    /// The run id of checkpoints directly in DIR: the directory's own name.
    #[cfg(test)]
    pub fn root_run(&self) -> &str {
        &self.root_run
    }

    /// The part of the tree an event on `path` may have changed; None for paths the daemon never reads.
    pub fn scope_of(&self, path: &Path) -> Option<Scope> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let mut components = rel.components();
        let first = match components.next() {
            None => return Some(Scope::All),
            Some(Component::Normal(first)) => first,
            Some(_) => return None,
        };
        let name = first.to_string_lossy();
        if name.starts_with('.') {
            return None;
        }
        if self.is_ignored_path(path) {
            return None;
        }
        let top = self.root.join(first);
        Some(Scope::Entry(top))
    }

    /// Every candidate in `scope`. Errors (a directory removed, permission denied) are returned beside the
    /// candidates found, with the path they concern; a path that vanished is not an error.
    pub fn scan(&self, scope: &Scope) -> (Vec<Candidate>, Vec<(PathBuf, io::Error)>) {
        let mut found = Vec::new();
        let mut errors = Vec::new();
        match scope {
            Scope::All => match std::fs::read_dir(&self.root) {
                Ok(entries) => {
                    for entry in entries {
                        match entry {
                            Ok(e) => self.scan_top(&e.path(), &mut found, &mut errors),
                            Err(e) => errors.push((self.root.clone(), e)),
                        }
                    }
                }
                Err(e) => errors.push((self.root.clone(), e)),
            },
            Scope::Entry(top) => self.scan_top(top, &mut found, &mut errors),
        }
        errors.retain(|(_, e)| e.kind() != io::ErrorKind::NotFound);
        found.sort_by(|a, b| a.path.cmp(&b.path));
        (found, errors)
    }

    fn is_ignored_path(&self, path: &Path) -> bool {
        self.ignored.iter().any(|i| path.starts_with(i))
    }

    fn scan_top(
        &self,
        top: &Path,
        found: &mut Vec<Candidate>,
        errors: &mut Vec<(PathBuf, io::Error)>,
    ) {
        let Some(name) = top.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return;
        };
        if is_ignored_name(&name) || self.is_ignored_path(top) {
            return;
        }
        let meta = match std::fs::metadata(top) {
            Ok(m) => m,
            Err(e) => return errors.push((top.to_path_buf(), e)),
        };
        if meta.is_file() {
            if is_checkpoint_name(&name) {
                found.push(self.candidate(top, self.root_run.clone(), false));
            }
            return;
        }
        if !meta.is_dir() {
            return;
        }
        if top.join(SHARD_INDEX_FILE).is_file() {
            found.push(self.candidate(top, self.root_run.clone(), true));
            return;
        }
        self.scan_run_dir(top, &name, 1, found, errors);
    }

    /// The checkpoints of the run directory `dir` (run `run`, `depth` levels below DIR), and of the run directories
    /// below it while the depth allows.
    fn scan_run_dir(
        &self,
        dir: &Path,
        run: &str,
        depth: usize,
        found: &mut Vec<Candidate>,
        errors: &mut Vec<(PathBuf, io::Error)>,
    ) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return errors.push((dir.to_path_buf(), e)),
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    errors.push((dir.to_path_buf(), e));
                    continue;
                }
            };
            let path = entry.path();
            let child = entry.file_name().to_string_lossy().into_owned();
            if is_ignored_name(&child) || self.is_ignored_path(&path) {
                continue;
            }
            let is_dir = match std::fs::metadata(&path) {
                Ok(m) => m.is_dir(),
                Err(e) => {
                    errors.push((path, e));
                    continue;
                }
            };
            if is_dir {
                if path.join(SHARD_INDEX_FILE).is_file() {
                    found.push(self.candidate(&path, run.to_string(), true));
                } else if depth < MAX_RUN_DEPTH {
                    self.scan_run_dir(&path, &format!("{run}/{child}"), depth + 1, found, errors);
                }
            } else if is_checkpoint_name(&child) {
                found.push(self.candidate(&path, run.to_string(), false));
            }
        }
    }

    fn candidate(&self, path: &Path, dir_run: String, sharded: bool) -> Candidate {
        let rank = (!sharded)
            .then(|| path.file_name().and_then(|n| n.to_str()))
            .flatten()
            .and_then(htsr_contracts::spectra::rank_of_name);
        Candidate {
            path: path.to_path_buf(),
            rel: self.rel(path),
            dir_run,
            sharded,
            rank,
        }
    }

    /// `path` relative to DIR, `/`-separated.
    pub fn rel(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_finds_runs_files_and_shards() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("runA")).unwrap();
        std::fs::create_dir_all(root.join("runB/sharded-5")).unwrap();
        std::fs::create_dir_all(root.join(".htsr")).unwrap();
        std::fs::create_dir_all(root.join("sharded-9")).unwrap();
        std::fs::create_dir_all(root.join("runs/hf/run-17/.hidden")).unwrap();
        std::fs::create_dir_all(root.join("a/b/c/d/e")).unwrap();
        for p in [
            "top-1.safetensors",
            "runA/s-1.safetensors",
            "runA/.s-2.safetensors",
            "runA/s-3.safetensors.tmp",
            "runB/sharded-5/model-00001-of-00001.safetensors",
            "runB/sharded-5/model.safetensors.index.json",
            "sharded-9/model.safetensors.index.json",
            ".htsr/x.safetensors",
            "runs/hf/run-17/step-000000010.safetensors",
            "runs/hf/run-17/.hidden/step-000000010.safetensors",
            "a/b/c/d/step-1.safetensors",
            "a/b/c/d/e/step-1.safetensors",
        ] {
            std::fs::write(root.join(p), b"x").unwrap();
        }
        let layout = Layout::new(root.clone(), vec![root.join(".htsr")]);
        let (found, errors) = layout.scan(&Scope::All);
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<_> = found
            .iter()
            .map(|c| (c.rel.as_str(), c.dir_run.as_str(), c.sharded))
            .collect();
        let root_run = layout.root_run().to_string();
        assert_eq!(
            got,
            vec![
                ("a/b/c/d/step-1.safetensors", "a/b/c/d", false),
                ("runA/s-1.safetensors", "runA", false),
                ("runB/sharded-5", "runB", true),
                (
                    "runs/hf/run-17/step-000000010.safetensors",
                    "runs/hf/run-17",
                    false
                ),
                ("sharded-9", root_run.as_str(), true),
                ("top-1.safetensors", root_run.as_str(), false),
            ]
        );
        assert_eq!(layout.scope_of(&root.join(".htsr/db")), None);
        assert_eq!(
            layout.scope_of(&root.join("runA/s-9.safetensors")),
            Some(Scope::Entry(root.join("runA")))
        );
        assert_eq!(layout.scope_of(&root), Some(Scope::All));
        // An event deep inside a nested run rescans its top-level entry.
        assert_eq!(
            layout.scope_of(&root.join("runs/hf/run-17/step-000000020.safetensors")),
            Some(Scope::Entry(root.join("runs")))
        );
    }
}
