//! `htsr-watch DIR --tensorboard LOGDIR` and `--metrics ADDR [--metrics-allow-remote]`: the exporters, each a
//! subscriber to the daemon's live events on threads of its own, and `htsr-watch export --format tensorboard`.
//!
//! Start-up decides what is fatal: an ADDR that is not loopback (without `--metrics-allow-remote`) or cannot be
//! bound (a port in use) is a usage error, exit 2, before the daemon starts, because a user who asked for
//! metrics and silently got none would only find out when the dashboards stay empty. Everything after start-up
//! (a LOGDIR that cannot be written, a full disk, a failing accept) is logged once per cause and never stops
//! analysis or storage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;

use clap::Args;
use htsr_api::History;
use htsr_contracts::LiveEvent;
use htsr_exporters::metrics::{resolve_addr, MetricsServer};
use htsr_exporters::tensorboard::{spawn_live, TensorBoardExporter};
use htsr_storage::Store;

use crate::open_store::EXIT_USAGE;

#[derive(Args, Debug)]
pub struct ExporterArgs {
    /// Also write TensorBoard event files into LOGDIR/RUN/ as checkpoints are stored (catching up with the
    /// store first). W&B ingests them with `wandb.init(sync_tensorboard=True)`.
    #[arg(long, value_name = "LOGDIR")]
    pub tensorboard: Option<PathBuf>,
    /// Serve Prometheus / OpenMetrics metrics at http://ADDR/metrics; ADDR is HOST:PORT, loopback only unless
    /// --metrics-allow-remote (port 0: a free port, logged at start).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Allow --metrics on an address other machines can reach (/metrics has no authentication).
    #[arg(long, requires = "metrics")]
    pub metrics_allow_remote: bool,
}

/// The exporters checked (and the metrics port bound) before the daemon starts.
pub struct Prepared {
    tensorboard: Option<PathBuf>,
    metrics: Option<MetricsServer>,
}

impl ExporterArgs {
    /// Checks the flags and binds the metrics address; on a usage error prints it and returns exit code 2.
    pub fn prepare(&self) -> Result<Prepared, ExitCode> {
        let metrics = match &self.metrics {
            None => None,
            Some(addr) => {
                let bound = resolve_addr(addr, self.metrics_allow_remote)
                    .map_err(|e| e.to_string())
                    .and_then(|a| MetricsServer::bind(a).map_err(|e| e.to_string()));
                match bound {
                    Ok(server) => {
                        // Tests and scripts that pass port 0 read the real port from this line.
                        tracing::info!("metrics: serving http://{}/metrics", server.local_addr());
                        Some(server)
                    }
                    Err(e) => {
                        eprintln!("htsr-watch: {e}");
                        return Err(ExitCode::from(EXIT_USAGE));
                    }
                }
            }
        };
        if let Some(logdir) = &self.tensorboard {
            // Created now so that the daemon can be told to ignore it; if that fails, the exporter says why
            // when it first has something to write.
            let _ = std::fs::create_dir_all(logdir);
            tracing::info!(
                "tensorboard: writing event files to {} (one folder per run)",
                logdir.display()
            );
        }
        Ok(Prepared {
            tensorboard: self.tensorboard.clone(),
            metrics,
        })
    }
}

impl Prepared {
    /// Paths the daemon must not scan: a LOGDIR inside the watched directory (every event written there would
    /// otherwise wake the scanner).
    pub fn ignored(&self, dir: &Path) -> Vec<PathBuf> {
        let (Some(logdir), Ok(dir)) = (&self.tensorboard, dir.canonicalize()) else {
            return Vec::new();
        };
        match logdir.canonicalize() {
            // A LOGDIR that is DIR itself or above it must not hide the checkpoints.
            Ok(l) if l.starts_with(&dir) && l != dir => vec![l],
            _ => Vec::new(),
        }
    }

    /// Starts the exporters on `store`; the TensorBoard exporter stops catching up once `stop` is set.
    pub fn start(self, store: &Store, stop: Arc<AtomicBool>) -> Running {
        let mut running = Running {
            subscribers: Vec::new(),
            threads: Vec::new(),
        };
        if let Some(logdir) = self.tensorboard {
            let (tx, rx) = std::sync::mpsc::channel();
            let exporter =
                TensorBoardExporter::new(Arc::new(store.clone()), logdir).with_stop(stop);
            match spawn_live(exporter, rx) {
                Ok(t) => {
                    running.subscribers.push(tx);
                    running.threads.push(t);
                }
                Err(e) => {
                    tracing::warn!("tensorboard: cannot start its thread: {e}; not exporting")
                }
            }
        }
        if let Some(server) = self.metrics {
            let (tx, rx) = std::sync::mpsc::channel();
            let addr = server.local_addr();
            match server.start(store.clone(), rx) {
                Ok(t) => {
                    running.subscribers.push(tx);
                    running.threads.push(t);
                }
                Err(e) => tracing::warn!("metrics: cannot start serving {addr}: {e}"),
            }
        }
        running
    }
}

/// The running exporters: their event channels (for the daemon's `Progress`) and threads.
pub struct Running {
    subscribers: Vec<Sender<LiveEvent>>,
    threads: Vec<JoinHandle<()>>,
}

impl Running {
    /// The exporters' channels, to hand to the daemon: when it stops and drops them, the exporters finish.
    pub fn take_subscribers(&mut self) -> Vec<Sender<LiveEvent>> {
        std::mem::take(&mut self.subscribers)
    }

    /// Waits until the exporters have written what the daemon reported (call after the daemon returned).
    pub fn finish(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// `htsr-watch export --format tensorboard -o LOGDIR`: every checkpoint of `run` (or of every run) that LOGDIR
/// does not hold yet.
pub fn export_tensorboard(
    store: Arc<dyn History>,
    run: Option<&str>,
    logdir: &Path,
) -> anyhow::Result<ExitCode> {
    let mut exporter = TensorBoardExporter::new(store, logdir);
    let s = exporter.export_all(run)?;
    eprintln!(
        "htsr-watch export: {} checkpoints written to {} ({} points); {} were there already",
        s.written,
        logdir.display(),
        s.points,
        s.present
    );
    Ok(ExitCode::SUCCESS)
}
