//! Resuming: what a run folder already holds, read back from its event files as TensorBoard reads them, so
//! that an export writes only what is missing.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use htsr_tensorboard::proto::event::What;
use htsr_tensorboard::{read_events_until_defect, EventWriter};

use super::{ExportError, CHECKPOINT_TAG, LEGEND_TAG};
use crate::warn::WarnOnce;

/// Event files are recognised by this prefix (TensorBoard's own rule).
const EVENT_FILE_PREFIX: &str = "events.out.tfevents.";

/// What one run folder holds, as read back from its event files, and the file being appended to.
pub(super) struct RunState {
    pub(super) folder: PathBuf,
    /// Steps whose checkpoint is complete (its [`CHECKPOINT_TAG`] is there).
    pub(super) done: HashSet<i64>,
    /// Tags at steps whose checkpoint is not complete: a writer cut off mid-checkpoint.
    pub(super) partial: HashMap<i64, HashSet<String>>,
    pub(super) legend: bool,
    pub(super) writer: Option<EventWriter>,
    pub(super) unflushed: bool,
}

impl RunState {
    /// Reads every event file directly in `folder` (a folder that does not exist holds nothing).
    pub(super) fn load(folder: PathBuf, warned: &mut WarnOnce) -> Result<RunState, ExportError> {
        let mut state = RunState {
            folder,
            done: HashSet::new(),
            partial: HashMap::new(),
            legend: false,
            writer: None,
            unflushed: false,
        };
        let entries = match std::fs::read_dir(&state.folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(state),
            Err(source) => {
                return Err(ExportError::Io {
                    path: state.folder,
                    op: "list",
                    source,
                })
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ExportError::Io {
                path: state.folder.clone(),
                op: "list",
                source,
            })?;
            let is_events = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(EVENT_FILE_PREFIX));
            if is_events && entry.file_type().is_ok_and(|t| t.is_file()) {
                files.push(entry.path());
            }
        }
        // TensorBoard reads a folder's files in name order; so does this, so that "complete" means the same.
        files.sort();
        for path in files {
            let (events, defect) = read_events_until_defect(&path)?;
            if let Some(defect) = defect {
                match defect {
                    // A writer killed mid-record: expected after a crash, and TensorBoard ignores the rest too.
                    htsr_tensorboard::Error::Truncated { .. } => {
                        tracing::debug!("tensorboard: {defect}; the records before it count")
                    }
                    _ => {
                        warned.warn(&format!("defect {}", path.display()), &defect);
                    }
                }
            }
            for event in events {
                let Some(What::Summary(summary)) = event.what else {
                    continue;
                };
                for value in summary.value {
                    state.saw(event.step, value.tag);
                }
            }
        }
        Ok(state)
    }

    pub(super) fn saw(&mut self, step: i64, tag: String) {
        if tag == LEGEND_TAG {
            self.legend = true;
        } else if tag == CHECKPOINT_TAG {
            self.done.insert(step);
            self.partial.remove(&step);
        } else if tag.starts_with("htsr/") && !self.done.contains(&step) {
            self.partial.entry(step).or_default().insert(tag);
        }
    }

    pub(super) fn writer(&mut self) -> Result<&mut EventWriter, ExportError> {
        if self.writer.is_none() {
            self.writer = Some(EventWriter::create(&self.folder)?);
        }
        self.unflushed = true;
        Ok(self.writer.as_mut().expect("just created"))
    }

    pub(super) fn flush(&mut self) -> Result<(), ExportError> {
        if let (true, Some(w)) = (self.unflushed, self.writer.as_mut()) {
            w.flush()?;
        }
        self.unflushed = false;
        Ok(())
    }
}
