//! Where a command finds its history, and how the reading commands (`browse`, `export`, `report`, `db`) open it:
//! through the daemon that holds the store when one runs, else the store itself; a daemon elsewhere by its URL.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use htsr_api::ErrorKind;
use htsr_client::{Endpoint, Opened, Target};

/// Exit code for usage errors and for a store that cannot be opened.
pub const EXIT_USAGE: u8 = 2;

/// How long a dashboard that opened a store itself keeps it without a question before letting it go, so that a
/// daemon started meanwhile can take it (the dashboard then reads through that daemon).
pub const DASHBOARD_IDLE_RELEASE: Duration = Duration::from_secs(3);

pub use htsr_client::default_store;

/// Where a reading command's history is: `[DIR|URL]`, `--db STORE|URL` and `--token`, the same for `browse`,
/// `export` and `report`.
#[derive(clap::Args, Debug)]
pub struct HistorySource {
    /// The store (a directory), or a daemon's http://HOST:PORT.
    #[arg(long, value_name = "STORE|URL", conflicts_with = "dir")]
    pub db: Option<String>,
    /// A watched directory (its `.htsr/` store, default: the current directory), or a daemon's http://HOST:PORT.
    #[arg(value_name = "DIR|URL")]
    pub dir: Option<String>,
    #[command(flatten)]
    pub token: TokenArg,
}

/// The token of a daemon that serves other machines (`--serve-allow-remote`).
#[derive(clap::Args, Debug, Clone)]
pub struct TokenArg {
    /// The daemon's access token (in its store directory, serve.token), for a daemon reached by URL.
    #[arg(long, env = "HTSR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl HistorySource {
    /// The target named, or the usage error said on stderr for `command` and its exit code.
    pub fn target(&self, command: &str) -> Result<Target, ExitCode> {
        target_of(self.db.as_deref(), self.dir.as_deref()).map_err(|e| {
            eprintln!("htsr-watch {command}: {e}");
            ExitCode::from(EXIT_USAGE)
        })
    }
}

/// What a reading command reads: `--db` (a store directory, or a daemon's `http://HOST:PORT`), else the positional
/// `DIR` (a watched directory, whose store is `DIR/.htsr`, a store directory, or a URL), else the current
/// directory.
pub fn target_of(db: Option<&str>, dir: Option<&str>) -> Result<Target, String> {
    match (db, dir) {
        (Some(d), _) if Endpoint::is_url(d) || d.starts_with("https://") => {
            Target::from_arg(d).map_err(|e| e.message)
        }
        (Some(d), _) => Ok(Target::Store(PathBuf::from(d))),
        (None, Some(d)) => Target::from_arg(d).map_err(|e| e.message),
        (None, None) => Ok(Target::Store(default_store(Path::new(".")))),
    }
}

/// A name for the target in messages.
pub fn describe(target: &Target) -> String {
    match target {
        Target::Store(p) => p.display().to_string(),
        Target::Daemon(e) => e.to_string(),
    }
}

/// Opens `target` for `command`; what is wrong is said as it is (missing, held by a process that does not serve
/// it, damaged, a daemon that cannot be reached or refuses the token) and becomes exit code 2.
pub fn open_history(
    target: &Target,
    token: Option<String>,
    command: &str,
    idle_release: Option<Duration>,
) -> Result<Opened, ExitCode> {
    match htsr_client::open(target, token, idle_release) {
        Ok(opened) => Ok(opened),
        Err(e) => {
            let name = describe(target);
            let what = match (e.kind, target) {
                (ErrorKind::NotFound, Target::Store(p)) => format!(
                    "no store at {} (the daemon creates DIR/.htsr/ when it runs: `htsr-watch DIR`)",
                    p.display()
                ),
                (ErrorKind::Corrupt, _) => format!(
                    "{name}: the store is damaged ({e}); it was left as it is. `htsr-watch DIR` sets a damaged store \
                     aside and rebuilds it from the checkpoints that still exist."
                ),
                (ErrorKind::Connection, Target::Daemon(_)) => format!(
                    "{e} (is `htsr-watch DIR --serve ADDR` running there, or your SSH tunnel open?)"
                ),
                (ErrorKind::Denied, _) => format!(
                    "{name}: {e} (the token is in the store directory, serve.token, on the daemon's machine; pass it \
                     with --token or HTSR_TOKEN)"
                ),
                _ => e.message.clone(),
            };
            eprintln!(
                "htsr-watch {command}: {}",
                htsr_contracts::text::terminal_safe(&what)
            );
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}
