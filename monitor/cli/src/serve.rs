//! `htsr-watch DIR` serves what it holds: the store's history and its live events on a Unix socket beside the
//! store (always, owner-only), and with `--serve ADDR` on TCP too, with a live page of the report at `/`.
//!
//! Start-up decides what is fatal, as for `--metrics`: an ADDR that is not loopback without
//! `--serve-allow-remote`, or one that cannot be bound, is a usage error before anything is analyzed. A socket that
//! cannot be made (a read-only directory) is a warning: the daemon still analyzes and stores, viewers just cannot
//! attach.

use std::net::TcpListener;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use clap::Args;
use htsr_api::{Cut, History, ServerInfo};
use htsr_contracts::LiveEvent;
use htsr_exporters::metrics::resolve_addr;
use htsr_server::{Limits, PageFn, Running, ServeOptions, Server};

use crate::open_store::EXIT_USAGE;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Also serve the history, its live events and a live page at http://ADDR/ (HOST:PORT; loopback only unless
    /// --serve-allow-remote). Viewers attach with `htsr-watch browse http://ADDR`, through an SSH tunnel from
    /// other machines.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
    /// Allow --serve on an address other machines can reach; every request must then carry the store's token
    /// (generated once, kept in STORE/serve.token, printed when created).
    #[arg(long, requires = "serve")]
    pub serve_allow_remote: bool,
}

/// The listeners bound before the daemon starts.
pub struct Prepared {
    tcp: Option<TcpListener>,
    allow_remote: bool,
}

impl ServeArgs {
    /// Checks `--serve` and binds it; on a usage error prints it and returns exit code 2.
    pub fn prepare(&self) -> Result<Prepared, ExitCode> {
        let tcp = match &self.serve {
            None => None,
            Some(addr) => {
                let bound = resolve_addr(addr, self.serve_allow_remote)
                    .map_err(|e| e.to_string().replace("--metrics", "--serve"))
                    .and_then(|a| {
                        TcpListener::bind(a)
                            .map_err(|e| format!("--serve: cannot listen on {a}: {e}"))
                    });
                match bound {
                    Ok(l) => Some(l),
                    Err(e) => {
                        eprintln!("htsr-watch: {e}");
                        return Err(ExitCode::from(EXIT_USAGE));
                    }
                }
            }
        };
        Ok(Prepared {
            tcp,
            allow_remote: self.serve_allow_remote,
        })
    }
}

impl Prepared {
    /// Starts serving `store` (the store at `store_dir`, watched from `dir`); returns the server and the channel
    /// for the daemon's events, or None (said in the log) when neither listener could be made.
    pub fn start(
        self,
        store: Arc<dyn History>,
        store_dir: &Path,
        dir: &Path,
    ) -> Option<(Running, Sender<LiveEvent>)> {
        let socket_path = htsr_api::local::socket_path(store_dir);
        let unix = match htsr_server::bind_unix(&socket_path) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(
                    "serve: cannot make the socket {} ({e}); viewers cannot attach (`htsr-watch browse` needs it)",
                    socket_path.display()
                );
                None
            }
        };
        let mut tcp = self.tcp;
        let token = match (&tcp, self.allow_remote) {
            (Some(_), true) => match htsr_server::load_or_create_token(store_dir) {
                Ok(t) => {
                    if t.created {
                        // Printed once, when made; afterwards it is in the file, for whoever may read the store.
                        eprintln!(
                            "htsr-watch: remote viewers need this token (kept in {}): {}",
                            t.path.display(),
                            t.token
                        );
                    }
                    Some(t.token)
                }
                Err(e) => {
                    tracing::warn!(
                        "serve: cannot make the token file in {} ({e}); not serving TCP without it",
                        store_dir.display()
                    );
                    tcp = None;
                    None
                }
            },
            _ => None,
        };
        if unix.is_none() && tcp.is_none() {
            return None;
        }
        let info = ServerInfo {
            api_version: htsr_api::API_VERSION,
            htsr_version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            store: store_dir.display().to_string(),
            watching: Some(dir.display().to_string()),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let page: Arc<PageFn> = Arc::new(live_page);
        let options = ServeOptions {
            info,
            unix,
            tcp,
            token,
            page: Some(page),
            limits: Limits::default(),
        };
        match Server::start(store, rx, options) {
            Ok(running) => {
                if let Some(p) = running.socket_path() {
                    tracing::info!("serve: viewers attach at {}", p.display());
                }
                if let Some(a) = running.tcp_addr() {
                    // Tests and scripts that pass port 0 read the real port from this line.
                    tracing::info!(
                        "serve: http://{a}/ (live page; `htsr-watch browse http://{a}`)"
                    );
                }
                Some((running, tx))
            }
            Err(e) => {
                tracing::warn!("serve: cannot start serving: {e}; viewers cannot attach");
                None
            }
        }
    }
}

/// The script that makes the report live: it listens to the daemon's events and, when a checkpoint is stored,
/// fetches the page again and swaps its body in, keeping the scroll position.
const LIVE_SCRIPT: &str = r#"<script>
(() => {
  const token = new URLSearchParams(location.search).get("token");
  const q = token ? "?token=" + encodeURIComponent(token) : "";
  let pending = null;
  const refresh = async () => {
    pending = null;
    const r = await fetch(location.pathname + q, { cache: "no-store" });
    if (!r.ok) return;
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    const y = window.scrollY;
    document.body.replaceChildren(...doc.body.childNodes);
    document.title = doc.title;
    window.scrollTo(0, y);
    document.documentElement.dataset.htsrRefreshed = String(Number(document.documentElement.dataset.htsrRefreshed || 0) + 1);
  };
  const events = new EventSource("/api/v1/events" + q);
  events.addEventListener("live", (e) => {
    const ev = JSON.parse(e.data);
    if (ev.event === "checkpoint_stored" && pending === null) pending = setTimeout(refresh, 300);
  });
  events.addEventListener("lagged", () => { if (pending === null) pending = setTimeout(refresh, 300); });
  events.addEventListener("hello", () => { document.documentElement.dataset.htsrLive = "1"; });
})();
</script>"#;

/// The live page: the report of the whole store as it stands, with [`LIVE_SCRIPT`].
fn live_page(history: &dyn History) -> Result<String, String> {
    let cut = Cut::new(history).map_err(|e| e.to_string())?;
    let options = htsr_report::ReportOptions {
        title: Some("htsr: live".into()),
        source: Some(history.source()),
        ..htsr_report::ReportOptions::default()
    };
    let html = match htsr_report::Report::from_history(&cut, &options) {
        Ok(report) => report.to_html().map_err(|e| e.to_string())?,
        Err(htsr_report::Error::Usage(msg)) => format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>htsr: live</title><link rel=\"icon\" href=\"data:,\"></head><body><p>{}</p>\
             </body></html>",
            htsr_report::html_escape(&msg)
        ),
        Err(e) => return Err(e.to_string()),
    };
    Ok(match html.rfind("</body>") {
        Some(i) => format!("{}{LIVE_SCRIPT}{}", &html[..i], &html[i..]),
        None => format!("{html}{LIVE_SCRIPT}"),
    })
}
