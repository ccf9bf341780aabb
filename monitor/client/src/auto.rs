//! [`open`]: the daemon when one serves the store, the store itself otherwise, and the switch between the two when
//! a daemon starts or stops while a viewer is open.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use htsr_api::{
    Error, ErrorKind, History, PhaseGrid, PinOutcome, Result, RowFormat, RunSummary, ServerInfo,
    StoreStats, TrajectoryPoint,
};
use htsr_contracts::{CheckpointRecord, LayerReport};

use crate::endpoint::Endpoint;
use crate::local::LocalHistory;
use crate::remote::RemoteHistory;

/// What a viewer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A store directory (`DIR/.htsr`, or `--db PATH`): its daemon if one runs, else the store.
    Store(PathBuf),
    /// A daemon by address (`http://HOST:PORT`).
    Daemon(Endpoint),
}

/// The store of a watched directory: `DIR/.htsr/`.
pub fn default_store(dir: &Path) -> PathBuf {
    dir.join(".htsr")
}

impl Target {
    /// What a user names on a command line or in Python: a daemon's `http://HOST:PORT`, a store directory (one
    /// that holds a store's files), or a watched directory (whose store is `DIR/.htsr`).
    pub fn from_arg(arg: &str) -> Result<Target> {
        if arg.starts_with("https://") {
            return Err(Error::invalid(format!(
                "{arg}: htsr-watch serves plain HTTP; reach a remote daemon through an SSH tunnel \
                 (ssh -L 7641:127.0.0.1:7641 HOST, then http://127.0.0.1:7641)"
            )));
        }
        if Endpoint::is_url(arg) {
            return Endpoint::parse_url(arg).map(Target::Daemon);
        }
        let path = Path::new(arg);
        Ok(Target::Store(if is_store(path) {
            path.to_path_buf()
        } else {
            default_store(path)
        }))
    }
}

/// Whether `path` is a store directory itself (it holds sled's `conf` and `db` files).
fn is_store(path: &Path) -> bool {
    path.join("conf").is_file() && path.join("db").is_file()
}

/// An opened history, and what answers it.
pub struct Opened {
    /// The history, to hand to the dashboard, the report or an export.
    pub history: Arc<dyn History>,
    /// The daemon that answered when it was opened; None when the store was opened directly.
    pub attached: Option<ServerInfo>,
    /// Where the daemon of this target listens (for [`crate::follow`]).
    pub endpoint: Endpoint,
    /// The token presented to it.
    pub token: Option<String>,
}

/// How long a store held by a process that does not serve it (yet) is waited for: a daemon opens its store a moment
/// before its socket answers, and a viewer reading the store directly (a dashboard whose daemon just stopped) lets
/// it go once idle for a few seconds (htsr-watch's dashboards: 3 s, checked every 0.75 s). Longer than that, so
/// that an export or a report run right after a daemon stops waits for the viewers instead of failing.
const HELD_STORE_WAIT: Duration = Duration::from_secs(10);

/// Opens `target` for reading. With `idle_release`, a store opened directly is let go after that long without a
/// question (for viewers that stay open, such as the dashboard), so that a daemon can start on it; the viewer then
/// reads through that daemon.
pub fn open(
    target: &Target,
    token: Option<String>,
    idle_release: Option<Duration>,
) -> Result<Opened> {
    match target {
        Target::Daemon(endpoint) => {
            let remote = RemoteHistory::connect(endpoint.clone(), token.clone())?;
            Ok(Opened {
                attached: Some(remote.info().clone()),
                history: Arc::new(remote),
                endpoint: endpoint.clone(),
                token,
            })
        }
        Target::Store(store) => {
            let endpoint = Endpoint::for_store(store);
            let current = connect_store(store, &endpoint, token.as_deref(), idle_release)?;
            let attached = match &current {
                Current::Remote(r) => Some(r.info().clone()),
                Current::Local(_) => None,
            };
            Ok(Opened {
                history: Arc::new(AutoHistory {
                    store: store.clone(),
                    endpoint: endpoint.clone(),
                    token: token.clone(),
                    idle_release,
                    current: Mutex::new(current),
                }),
                attached,
                endpoint,
                token,
            })
        }
    }
}

#[derive(Clone)]
enum Current {
    Remote(Arc<RemoteHistory>),
    Local(Arc<LocalHistory>),
}

impl Current {
    fn history(&self) -> &dyn History {
        match self {
            Current::Remote(r) => &**r,
            Current::Local(l) => &**l,
        }
    }

    /// Whether `e` means the other side should be tried: the daemon is gone, or a daemon took the store.
    fn lost(&self, e: &Error) -> bool {
        match self {
            Current::Remote(_) => e.kind == ErrorKind::Connection,
            Current::Local(_) => matches!(e.kind, ErrorKind::Locked | ErrorKind::Unavailable),
        }
    }
}

fn connect_store(
    store: &Path,
    endpoint: &Endpoint,
    token: Option<&str>,
    idle_release: Option<Duration>,
) -> Result<Current> {
    let try_daemon = || -> Result<Option<RemoteHistory>> {
        let Endpoint::Unix(socket) = endpoint else {
            return Ok(None);
        };
        if !socket.exists() {
            return Ok(None);
        }
        match RemoteHistory::connect(endpoint.clone(), token.map(str::to_string)) {
            Ok(r) => Ok(Some(r)),
            // A socket nobody answers on is what a killed daemon leaves: read the store.
            Err(e) if e.kind == ErrorKind::Connection => Ok(None),
            Err(e) => Err(e),
        }
    };
    if let Some(r) = try_daemon()? {
        return Ok(Current::Remote(Arc::new(r)));
    }
    let deadline = Instant::now() + HELD_STORE_WAIT;
    loop {
        match LocalHistory::open(store) {
            Ok(l) => {
                let l = match idle_release {
                    Some(idle) => l.release_when_idle(idle),
                    None => l,
                };
                return Ok(Current::Local(Arc::new(l)));
            }
            Err(e) if e.kind == ErrorKind::Locked => {
                if let Some(r) = try_daemon()? {
                    return Ok(Current::Remote(Arc::new(r)));
                }
                if Instant::now() >= deadline {
                    return Err(Error::new(
                        ErrorKind::Locked,
                        format!(
                            "{} is held by another process that does not serve it: an htsr-watch daemon of an older \
                             htsr (stop it and start it again), or another reader of the store, which lets it go \
                             after a few idle seconds",
                            store.display()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A store's history through whichever answers now: its daemon, or the store itself.
struct AutoHistory {
    store: PathBuf,
    endpoint: Endpoint,
    token: Option<String>,
    idle_release: Option<Duration>,
    current: Mutex<Current>,
}

impl AutoHistory {
    fn current(&self) -> Current {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Asks `f` of what answers now; if that is gone (the daemon stopped, or one took the store), asks again of
    /// what answers then.
    fn call<T>(&self, f: impl Fn(&dyn History) -> Result<T>) -> Result<T> {
        let current = self.current();
        match f(current.history()) {
            Err(e) if current.lost(&e) => {
                let next = connect_store(
                    &self.store,
                    &self.endpoint,
                    self.token.as_deref(),
                    self.idle_release,
                )?;
                *self.current.lock().unwrap_or_else(|e| e.into_inner()) = next.clone();
                f(next.history())
            }
            other => other,
        }
    }
}

impl History for AutoHistory {
    fn source(&self) -> String {
        self.current().history().source()
    }
    fn runs(&self) -> Result<Vec<RunSummary>> {
        self.call(|h| h.runs())
    }
    fn run_summary(&self, run: &str) -> Result<Option<RunSummary>> {
        self.call(|h| h.run_summary(run))
    }
    fn checkpoints(&self, run: &str) -> Result<Vec<CheckpointRecord>> {
        self.call(|h| h.checkpoints(run))
    }
    fn checkpoint(&self, run: &str, step: u64) -> Result<Option<CheckpointRecord>> {
        self.call(|h| h.checkpoint(run, step))
    }
    fn steps(&self, run: &str) -> Result<Vec<u64>> {
        self.call(|h| h.steps(run))
    }
    fn layer_names(&self, run: &str) -> Result<Vec<String>> {
        self.call(|h| h.layer_names(run))
    }
    fn trajectory(&self, run: &str, layer: &str) -> Result<Vec<TrajectoryPoint>> {
        self.call(|h| h.trajectory(run, layer))
    }
    fn phase_grid(
        &self,
        run: &str,
        max_columns: Option<usize>,
        until: Option<u64>,
    ) -> Result<PhaseGrid> {
        self.call(|h| h.phase_grid(run, max_columns, until))
    }
    fn layer_report(&self, run: &str, step: u64, layer: &str) -> Result<Option<LayerReport>> {
        self.call(|h| h.layer_report(run, step, layer))
    }
    fn layers_at(&self, run: &str, step: u64) -> Result<Vec<LayerReport>> {
        self.call(|h| h.layers_at(run, step))
    }
    fn raw_eigenvalues(&self, run: &str, step: u64, layer: &str) -> Result<Option<Vec<f64>>> {
        self.call(|h| h.raw_eigenvalues(run, step, layer))
    }
    fn stats(&self) -> Result<StoreStats> {
        self.call(|h| h.stats())
    }
    fn export(&self, run: Option<&str>, format: RowFormat, out: &mut dyn Write) -> Result<u64> {
        // Not retried on another source: what was written already would be written twice.
        self.current().history().export(run, format, out)
    }
    fn pin(&self, run: &str, step: u64) -> Result<PinOutcome> {
        self.call(|h| h.pin(run, step))
    }
    fn unpin(&self, run: &str, step: u64) -> Result<()> {
        self.call(|h| h.unpin(run, step))
    }
}
