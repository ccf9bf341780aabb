//! `htsr-watch DIR [--db PATH] [--headless] [--once] [--poll[=SECONDS]] [--jobs N] [--tensorboard LOGDIR]
//! [--metrics ADDR [--metrics-allow-remote]] [--serve ADDR [--serve-allow-remote]]`: the daemon, with the dashboard
//! on the main thread when stdout is a terminal, else headless (log lines, progress bar). The exporters and the
//! server (`serve`) subscribe to its live events; the server lets any number of viewers read the store it holds.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use htsr_contracts::LiveEvent;
use htsr_daemon::{Progress, Shutdown, WatchConfig};
use htsr_storage::{ErrorKind, OpenOutcome, Store};
use htsr_tui::{DashboardOptions, Mode};

use crate::logging;
use crate::open_store::{default_store, EXIT_USAGE};

/// A positive number of seconds, as clap parses `--poll`, `--rescan` and `--give-up`.
fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("must be a positive number of seconds, not {s}"))
    }
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The directory to watch: checkpoints directly in it, or one subdirectory per run.
    pub dir: Option<PathBuf>,
    /// The store (default: DIR/.htsr/). Use it when DIR is read-only, or to keep one store per experiment.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// No dashboard: log one line per checkpoint (the default when stdout is not a terminal).
    #[arg(long)]
    pub headless: bool,
    /// Process the checkpoints that exist, then exit: 0 when none failed, 1 otherwise.
    #[arg(long)]
    pub once: bool,
    /// Poll the directory every SECONDS (default 2) instead of using filesystem events (network mounts, WSL).
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, require_equals = true, default_missing_value = "2",
          value_parser = seconds)]
    pub poll: Option<Duration>,
    /// Checkpoints analyzed at once (of different runs); each uses all cores for its linear algebra.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: u64,
    /// Full rescan interval in seconds (events can be lost).
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub rescan: Duration,
    /// A file still incomplete or invalid after SECONDS is stored as a failed checkpoint (a writer that died).
    #[arg(long = "give-up", value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub give_up: Duration,
    #[command(flatten)]
    pub engine: crate::analyze::EngineArgs,
    #[command(flatten)]
    pub exporters: crate::exporters::ExporterArgs,
    #[command(flatten)]
    pub serve: crate::serve::ServeArgs,
}

/// How long the daemon waits for a store held by a process that does not serve it: a reader (a dashboard or an
/// export that opened the store itself) lets go within seconds.
const STORE_WAIT: Duration = Duration::from_secs(15);

/// Opens the daemon's store, waiting while a reader holds it; None after printing why it cannot.
fn open_store(store_dir: &Path) -> Option<(Store, OpenOutcome)> {
    let deadline = Instant::now() + STORE_WAIT;
    let mut said = false;
    loop {
        match Store::open(store_dir) {
            Ok(v) => return Some(v),
            Err(e) if e.is_locked() => {
                let socket = htsr_api::local::socket_path(store_dir);
                if let Ok(remote) = htsr_client::RemoteHistory::connect(
                    htsr_client::Endpoint::Unix(socket.clone()),
                    None,
                ) {
                    eprintln!(
                        "htsr-watch: {} is already watched by htsr-watch (pid {}, watching {}): see it with \
                         `htsr-watch browse {}`",
                        store_dir.display(),
                        remote.info().pid,
                        remote.info().watching.as_deref().unwrap_or("?"),
                        remote.info().watching.as_deref().unwrap_or("DIR"),
                    );
                    return None;
                }
                if Instant::now() >= deadline {
                    eprintln!(
                        "htsr-watch: {} is held by another process (one process opens a store at a time) that does \
                         not let it go: another htsr-watch of an older version, or a program using the store",
                        store_dir.display()
                    );
                    return None;
                }
                if !said {
                    said = true;
                    eprintln!(
                        "htsr-watch: {} is open in another process (a dashboard or an export reading it?); waiting \
                         up to {} s for it to let go",
                        store_dir.display(),
                        STORE_WAIT.as_secs()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                eprintln!(
                    "htsr-watch: opening the store {}: {e}. The store lives beside the checkpoints by default; when \
                     that directory is not writable, put it elsewhere with --db PATH (e.g. --db ~/htsr-stores/{})",
                    store_dir.display(),
                    store_dir
                        .parent()
                        .and_then(|p| p.canonicalize().ok())
                        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                        .unwrap_or_else(|| "run".into())
                );
                return None;
            }
            Err(e) => {
                eprintln!("htsr-watch: opening the store {}: {e}", store_dir.display());
                return None;
            }
        }
    }
}

pub fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let Some(dir) = args.dir.clone() else {
        eprintln!(
            "htsr-watch: which directory? usage: htsr-watch DIR [--once] [--headless] (see --help)"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    if !dir.is_dir() {
        eprintln!("htsr-watch: {}: not a directory", dir.display());
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let store_dir = args.db.clone().unwrap_or_else(|| default_store(&dir));
    let dashboard = !args.headless && !args.once && std::io::stdout().is_terminal();
    let bar =
        (!dashboard && std::io::stderr().is_terminal()).then(|| indicatif::ProgressBar::new(0));
    let log = PathBuf::from(format!("{}.log", store_dir.display()));
    if dashboard {
        if let Err(e) = logging::to_file(&log) {
            eprintln!("htsr-watch: {}: {e}", log.display());
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    } else {
        logging::to_stderr(bar.clone());
    }
    // Before the store opens: a port in use is a usage error at start-up, not a surprise later.
    let exporters = match args.exporters.prepare() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let serving = match args.serve.prepare() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };

    let Some((store, outcome)) = open_store(&store_dir) else {
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let recovered = matches!(outcome, OpenOutcome::Recovered { .. }).then(|| outcome.to_string());
    if let Some(msg) = &recovered {
        eprintln!("htsr-watch: {}", htsr_contracts::text::terminal_safe(msg));
        tracing::warn!("{msg}");
    }

    let shutdown = Shutdown::new();
    shutdown.before_forced_exit(htsr_tui::terminal::restore_if_active);
    shutdown.install_signal_handlers()?;
    let mut cfg = WatchConfig::new(dir.clone(), store_dir.clone());
    // The log (and its rotated files) changes with every line the daemon logs: never a reason to scan.
    cfg.ignore = logging::log_files(&log);
    cfg.ignore.extend(exporters.ignored(&dir));
    cfg.once = args.once;
    cfg.poll = args.poll;
    cfg.rescan = args.rescan;
    cfg.jobs = args.jobs as usize;
    cfg.readiness.give_up = args.give_up;
    args.engine.apply_threads();
    cfg.analyze = args.engine.options();
    cfg.readiness.invalid_grace = cfg.readiness.invalid_grace.min(args.give_up);

    let mut exporters = exporters.start(&store, shutdown.flag());
    let mut subscribers = exporters.take_subscribers();
    // Served in `--once` mode too: a long backlog is worth watching from another terminal.
    let server = serving
        .start(Arc::new(store.clone()), &store_dir, &dir)
        .map(|(running, tx)| {
            subscribers.push(tx);
            running
        });
    let stop_serving = move || {
        if let Some(s) = server {
            s.stop();
        }
    };

    if !dashboard {
        let bar_thread = bar.map(|bar| {
            let (tx, rx) = std::sync::mpsc::channel();
            subscribers.push(tx);
            crate::logging::drive_progress_bar(bar, rx)
        });
        let progress = Progress::new(subscribers, &dir);
        let summary = htsr_daemon::run(cfg, store, progress, shutdown);
        stop_serving();
        let summary = summary?;
        if let Some(t) = bar_thread {
            let _ = t.join();
        }
        exporters.finish();
        return Ok(if args.once && !summary.all_ok() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }

    // The dashboard on this thread; the daemon on its own; quitting the dashboard stops the daemon gracefully.
    let (tx, rx) = std::sync::mpsc::channel::<LiveEvent>();
    if let Some(text) = recovered {
        let _ = tx.send(LiveEvent::Message { text });
    }
    let daemon = {
        let store = store.clone();
        let shutdown = shutdown.clone();
        subscribers.push(tx);
        let progress = Progress::new(subscribers, &dir);
        std::thread::Builder::new()
            .name("htsr-daemon".into())
            .spawn(move || htsr_daemon::run(cfg, store, progress, shutdown))?
    };
    let opts = DashboardOptions {
        title: dir.display().to_string(),
        initial_run: None,
        mode: Mode::Live,
    };
    let shown = htsr_tui::run_dashboard(&store, Some(rx), opts);
    shutdown.trigger();
    let summary = daemon
        .join()
        .map_err(|_| anyhow::anyhow!("the daemon thread panicked"))?;
    stop_serving();
    let summary = summary?;
    exporters.finish();
    shown?;
    tracing::info!(
        "dashboard closed after {} checkpoints stored",
        summary.stored
    );
    Ok(ExitCode::SUCCESS)
}
