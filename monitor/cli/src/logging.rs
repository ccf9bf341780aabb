//! Log lines (tracing) for the daemon: to stderr in headless mode, printed around the progress bar so that the
//! bar is not torn; to a file beside the store when the dashboard owns the terminal.

use std::io::Write;
use std::path::{Path, PathBuf};

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use htsr_contracts::LiveEvent;
use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Writes each log line to stderr, suspending the progress bar (if any) while it does.
#[derive(Clone)]
struct BarAwareStderr(Option<ProgressBar>);

struct Line {
    bar: Option<ProgressBar>,
    buf: Vec<u8>,
}

impl Write for Line {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A log line as it may reach a terminal: the formatter escapes ESC in the values it quotes but not every other
/// control character a checkpoint's name may hold; those are escaped here. Line feeds and the formatter's
/// own colour sequences (ESC) stay.
fn safe_line(buf: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(buf);
    htsr_contracts::text::escape_unsafe_except(&text, &['\n', '\x1b'])
        .into_owned()
        .into_bytes()
}

impl Drop for Line {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::stderr().lock().write_all(&safe_line(&self.buf));
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

impl<'a> MakeWriter<'a> for BarAwareStderr {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line {
            bar: self.0.clone(),
            buf: Vec::new(),
        }
    }
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("HTSR_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Logs to stderr (around `bar`). Colours only when stderr is a terminal.
pub fn to_stderr(bar: Option<ProgressBar>) {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(BarAwareStderr(bar))
        .try_init();
}

/// The log file is rotated once it passes this size...
const LOG_MAX_BYTES: usize = 10 << 20;
/// ...keeping this many older files (`.1` the newest), so a daemon running for weeks holds at most 40 MB of logs.
const LOG_KEEP: usize = 3;

/// The log file and its rotated predecessors.
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    std::iter::once(path.to_path_buf())
        .chain((1..=LOG_KEEP).map(|i| PathBuf::from(format!("{}.{i}", path.display()))))
        .collect()
}

/// The log file, rotated by size (file-rotate: `log` -> `log.1` -> ... -> `log.KEEP`, then dropped); each line
/// made terminal-safe, since the file is read with `cat` and `less`.
struct SafeRotatingFile(FileRotate<AppendCount>);

impl Write for SafeRotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&safe_line(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn rotating_file(path: &Path, max_bytes: usize) -> SafeRotatingFile {
    SafeRotatingFile(FileRotate::new(
        path,
        AppendCount::new(LOG_KEEP),
        // A line is never cut: rotation happens after the write that passes the size.
        ContentLimit::BytesSurpassed(max_bytes),
        Compression::None,
        None,
    ))
}

/// Logs to a size-bounded, rotating file, for when the dashboard owns the terminal.
pub fn to_file(path: &Path) -> std::io::Result<()> {
    // Opened (and created) here, so that a directory that cannot hold it is an error at start-up.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(rotating_file(path, LOG_MAX_BYTES)))
        .try_init();
    Ok(())
}

/// Drives the headless progress bar from the daemon's events until the daemon stops (its sender is dropped):
/// the bar shows the backlog (done out of done + queued + analyzing + waiting), the rate and the ETA.
pub fn drive_progress_bar(
    bar: ProgressBar,
    events: std::sync::mpsc::Receiver<LiveEvent>,
) -> std::thread::JoinHandle<()> {
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {pos}/{len} checkpoints [{wide_bar}] {per_sec} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    std::thread::spawn(move || {
        for event in events {
            match event {
                LiveEvent::Analyzing { run, step, .. } => bar.set_message(format!(
                    "{}@{step}",
                    htsr_contracts::text::terminal_safe(&run)
                )),
                LiveEvent::Status(s) => {
                    let done = s.done + s.failed;
                    let pending = (s.queued + s.in_flight + s.waiting) as u64;
                    bar.set_length(done + pending);
                    bar.set_position(done);
                    // The spinner redraws on a timer: only while there is work, so an idle daemon sleeps.
                    if pending > 0 {
                        bar.enable_steady_tick(std::time::Duration::from_millis(200));
                    } else {
                        bar.disable_steady_tick();
                    }
                }
                _ => {}
            }
        }
        bar.finish_and_clear();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_by_size_keeps_three_files_and_escapes_what_a_name_smuggles_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".htsr.log");
        let mut log = rotating_file(&path, 100);
        for i in 0..20 {
            log.write_all(format!("line {i:02} run=evil\x07\u{202e}name\n").as_bytes())
                .unwrap();
        }
        log.flush().unwrap();
        let files = log_files(&path);
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(
                text.len() <= 100 + 40,
                "{}: {} bytes",
                f.display(),
                text.len()
            );
            assert!(
                text.contains("\\x07") && text.contains("\\u{202e}"),
                "{text:?}"
            );
            assert!(!text.contains('\x07') && !text.contains('\u{202e}'));
        }
        // The newest lines are in the log, the ones before in .1, .2, .3; older ones were dropped.
        assert!(std::fs::read_to_string(&files[0])
            .unwrap()
            .contains("line 19"));
        assert!(!files
            .iter()
            .any(|f| std::fs::read_to_string(f).unwrap().contains("line 00 ")));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1 + LOG_KEEP);
    }
}
