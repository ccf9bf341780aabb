//! Log lines (tracing) for the daemon: to stderr in headless mode, printed around the progress bar so that the
//! bar is not torn; to a file beside the store when the dashboard owns the terminal.

use std::io::Write;
use std::path::{Path, PathBuf};

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

impl Drop for Line {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.buf);
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

/// The log file is rotated when it reaches this size...
const LOG_MAX_BYTES: u64 = 10 << 20;
/// ...keeping this many older files (`.1` the newest), so a daemon running for weeks holds at most 40 MB of logs.
const LOG_KEEP: usize = 3;

/// The log file and its rotated predecessors.
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    std::iter::once(path.to_path_buf())
        .chain((1..=LOG_KEEP).map(|i| rotated(path, i)))
        .collect()
}

fn rotated(path: &Path, i: usize) -> PathBuf {
    PathBuf::from(format!("{}.{i}", path.display()))
}

/// An append-only log file that rotates itself by size: `log` -> `log.1` -> ... -> `log.KEEP` (dropped).
struct RotatingFile {
    path: PathBuf,
    file: std::fs::File,
    len: u64,
}

impl RotatingFile {
    fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        for i in (1..LOG_KEEP).rev() {
            let from = rotated(&self.path, i);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, i + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        *self = RotatingFile::open(&self.path)?;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.len > 0 && self.len + buf.len() as u64 > LOG_MAX_BYTES {
            // A failed rotation keeps appending: losing the size bound beats losing the log line.
            let _ = self.rotate();
        }
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Logs to a size-bounded, rotating file, for when the dashboard owns the terminal.
pub fn to_file(path: &Path) -> std::io::Result<()> {
    let file = RotatingFile::open(path)?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
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
