//! `htsr-watch DIR [--db PATH] [--headless] [--once] [--poll[=SECONDS]] [--jobs N] [--tensorboard LOGDIR]
//! [--metrics ADDR [--metrics-allow-remote]]`: the daemon, with the dashboard on the main thread when stdout is a
//! terminal, else headless (log lines, progress bar); the exporters subscribe to its live events (`exporters`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use htsr_contracts::LiveEvent;
use htsr_daemon::{Progress, Shutdown, WatchConfig};
use htsr_storage::{OpenOutcome, Store};
use htsr_tui::{DashboardOptions, Mode};

use crate::logging;
use crate::open_store::{default_store, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The directory to watch: checkpoints directly in it, or one subdirectory per run.
    pub dir: Option<PathBuf>,
    /// The store (default: DIR/.htsr/).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// No dashboard: log one line per checkpoint (the default when stdout is not a terminal).
    #[arg(long)]
    pub headless: bool,
    /// Process the checkpoints that exist, then exit: 0 when none failed, 1 otherwise.
    #[arg(long)]
    pub once: bool,
    /// Poll the directory every SECONDS (default 2) instead of using filesystem events (network mounts, WSL).
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, require_equals = true, default_missing_value = "2")]
    pub poll: Option<f64>,
    /// Checkpoints analyzed at once (of different runs); each uses all cores for its linear algebra.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: u64,
    /// Full rescan interval in seconds (events can be lost).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub rescan: f64,
    /// A file still incomplete or invalid after SECONDS is stored as a failed checkpoint (a writer that died).
    #[arg(long = "give-up", value_name = "SECONDS", default_value_t = 30.0)]
    pub give_up: f64,
    #[command(flatten)]
    pub engine: crate::analyze::EngineArgs,
    #[command(flatten)]
    pub exporters: crate::exporters::ExporterArgs,
}

fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "--{name} must be a positive number of seconds, not {v}"
        ))
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
    let poll = match args.poll.map(|p| seconds("poll", p)).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("htsr-watch: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let rescan = match seconds("rescan", args.rescan) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("htsr-watch: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let give_up = match seconds("give-up", args.give_up) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("htsr-watch: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
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
    // Before the store opens: a metrics port in use is a usage error at start-up, not a surprise later.
    let exporters = match args.exporters.prepare() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };

    let (store, outcome) = match Store::open(&store_dir) {
        Ok(v) => v,
        Err(e) if e.is_locked() => {
            eprintln!(
                "htsr-watch: {} is held by another process (one process opens a store at a time: is another \
                 htsr-watch running on it?)",
                store_dir.display()
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(e) => {
            eprintln!("htsr-watch: opening the store {}: {e}", store_dir.display());
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let recovered = matches!(outcome, OpenOutcome::Recovered { .. }).then(|| outcome.to_string());
    if let Some(msg) = &recovered {
        eprintln!("htsr-watch: {msg}");
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
    cfg.poll = poll;
    cfg.rescan = rescan;
    cfg.jobs = args.jobs as usize;
    cfg.readiness.give_up = give_up;
    args.engine.apply_threads();
    cfg.analyze = args.engine.options();
    cfg.readiness.invalid_grace = cfg.readiness.invalid_grace.min(give_up);

    let mut exporters = exporters.start(&store, shutdown.flag());
    if !dashboard {
        let mut subscribers = exporters.take_subscribers();
        let bar_thread = bar.map(|bar| {
            let (tx, rx) = std::sync::mpsc::channel();
            subscribers.push(tx);
            crate::logging::drive_progress_bar(bar, rx)
        });
        let progress = Progress::new(subscribers, &dir);
        let summary = htsr_daemon::run(cfg, store, progress, shutdown)?;
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
    if let Some(msg) = recovered {
        let _ = tx.send(LiveEvent::Message(msg));
    }
    let daemon = {
        let store = store.clone();
        let shutdown = shutdown.clone();
        let mut subscribers = exporters.take_subscribers();
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
    let shown = htsr_tui::run_dashboard(store, Some(rx), opts);
    shutdown.trigger();
    let summary = daemon
        .join()
        .map_err(|_| anyhow::anyhow!("the daemon thread panicked"))??;
    exporters.finish();
    shown?;
    tracing::info!(
        "dashboard closed after {} checkpoints stored",
        summary.stored
    );
    Ok(ExitCode::SUCCESS)
}
