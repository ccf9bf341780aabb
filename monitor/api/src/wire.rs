//! The wire between a daemon and its viewers: HTTP/1.1 with JSON bodies, and the daemon's live events as
//! server-sent events, over a Unix socket beside the store (and TCP on request).
//!
//! Why HTTP and JSON rather than gRPC: the same endpoints serve the dashboard, scripts (`curl --unix-socket`),
//! Python and a browser (the live page reads the event stream with the browser's own `EventSource`), and the daemon
//! already runs hyper for `/metrics`; the bodies are small (a checkpoint's reports are tens of kilobytes) and JSON
//! keeps them readable in a terminal.
//!
//! Every request is described by one [`Request`] value: [`Request::target`] writes its path and query,
//! [`Request::parse`] reads them back, so the client and the server cannot disagree on a name. Paths carry the API
//! version (`/api/v1/...`); `GET /api/info` is unversioned and answers [`ServerInfo`], which a client reads first.

use serde::{Deserialize, Serialize};

use htsr_contracts::LiveEvent;

use crate::error::{Error, ErrorKind};
use crate::history::RowFormat;

/// The version of this API. A client and a daemon of different versions refuse each other with a message naming
/// both: bump it whenever a request, a result type or an event changes shape.
pub const API_VERSION: u32 = 1;

/// `GET` here answers [`ServerInfo`] whatever the version: the path a client asks first.
pub const INFO_PATH: &str = "/api/info";

/// Prefix of every versioned request path.
pub fn prefix() -> String {
    format!("/api/v{API_VERSION}")
}

/// Response header carrying the server's [`API_VERSION`].
pub const VERSION_HEADER: &str = "x-htsr-api-version";

/// Query parameter that carries the access token where a header cannot (a browser's `EventSource`).
pub const TOKEN_PARAM: &str = "token";

/// Names of the server-sent events on `GET /api/v1/events`.
pub mod events {
    /// First event of every stream: the [`super::ServerInfo`] of the daemon.
    pub const HELLO: &str = "hello";
    /// One [`htsr_contracts::LiveEvent`] as JSON.
    pub const LIVE: &str = "live";
    /// The client fell behind and `missed` events were dropped for it: it must re-read what it shows.
    pub const LAGGED: &str = "lagged";
}

/// Who is answering: read first by every client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The daemon's [`API_VERSION`].
    pub api_version: u32,
    /// The daemon's htsr version.
    pub htsr_version: String,
    /// Its process id.
    pub pid: u32,
    /// The store it serves.
    pub store: String,
    /// The directory it watches.
    pub watching: Option<String>,
}

impl ServerInfo {
    /// An error unless this server speaks the client's [`API_VERSION`]; the message names both versions.
    pub fn check_version(&self, endpoint: &str) -> Result<(), Error> {
        if self.api_version == API_VERSION {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "the htsr-watch daemon at {endpoint} (pid {}, htsr {}) speaks htsr API v{}; this client (htsr {}) \
                 speaks v{API_VERSION}: use the same htsr version on both sides",
                self.pid,
                self.htsr_version,
                self.api_version,
                env!("CARGO_PKG_VERSION"),
            ),
        ))
    }
}

/// What a viewer is told: the daemon's events, and what happened to its connection to the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewerEvent {
    /// Something the daemon did.
    Live(LiveEvent),
    /// Connected (or connected again) to a daemon: everything shown must be re-read.
    Attached(ServerInfo),
    /// The connection to the daemon broke (it stopped or restarted); the viewer keeps what it shows and the
    /// client reconnects by itself.
    Detached {
        /// Why, in words.
        reason: String,
    },
    /// Events were dropped because the viewer fell behind: everything shown must be re-read.
    Resync {
        /// How many.
        missed: u64,
    },
}

impl From<LiveEvent> for ViewerEvent {
    fn from(e: LiveEvent) -> Self {
        ViewerEvent::Live(e)
    }
}

/// Payload of a [`events::LAGGED`] event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lagged {
    /// Events dropped.
    pub missed: u64,
}

/// One request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is the History method of the same name
pub enum Request {
    Runs,
    RunSummary {
        run: String,
    },
    Checkpoints {
        run: String,
    },
    Checkpoint {
        run: String,
        step: u64,
    },
    Steps {
        run: String,
    },
    LayerNames {
        run: String,
    },
    Trajectory {
        run: String,
        layer: String,
    },
    PhaseGrid {
        run: String,
        max_columns: Option<usize>,
        until: Option<u64>,
    },
    LayerReport {
        run: String,
        step: u64,
        layer: String,
    },
    LayersAt {
        run: String,
        step: u64,
    },
    RawEigenvalues {
        run: String,
        step: u64,
        layer: String,
    },
    Stats,
    Export {
        run: Option<String>,
        format: RowFormat,
    },
    Pin {
        run: String,
        step: u64,
    },
    Unpin {
        run: String,
        step: u64,
    },
    /// The live event stream (server-sent events).
    Events,
}

/// Every query parameter any request takes; each request uses some of them.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_columns: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<RowFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl Request {
    /// The request's name: the last segment of its path.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Runs => "runs",
            Request::RunSummary { .. } => "run_summary",
            Request::Checkpoints { .. } => "checkpoints",
            Request::Checkpoint { .. } => "checkpoint",
            Request::Steps { .. } => "steps",
            Request::LayerNames { .. } => "layer_names",
            Request::Trajectory { .. } => "trajectory",
            Request::PhaseGrid { .. } => "phase_grid",
            Request::LayerReport { .. } => "layer_report",
            Request::LayersAt { .. } => "layers_at",
            Request::RawEigenvalues { .. } => "raw_eigenvalues",
            Request::Stats => "stats",
            Request::Export { .. } => "export",
            Request::Pin { .. } => "pin",
            Request::Unpin { .. } => "unpin",
            Request::Events => "events",
        }
    }

    /// Whether the request changes the store (sent as POST; the others are GET).
    pub fn is_write(&self) -> bool {
        matches!(self, Request::Pin { .. } | Request::Unpin { .. })
    }

    /// The HTTP method.
    pub fn method(&self) -> &'static str {
        if self.is_write() {
            "POST"
        } else {
            "GET"
        }
    }

    fn params(&self) -> Params {
        let mut p = Params::default();
        match self.clone() {
            Request::Runs | Request::Stats | Request::Events => {}
            Request::RunSummary { run }
            | Request::Checkpoints { run }
            | Request::Steps { run }
            | Request::LayerNames { run } => p.run = Some(run),
            Request::Checkpoint { run, step }
            | Request::LayersAt { run, step }
            | Request::Pin { run, step }
            | Request::Unpin { run, step } => {
                p.run = Some(run);
                p.step = Some(step);
            }
            Request::Trajectory { run, layer } => {
                p.run = Some(run);
                p.layer = Some(layer);
            }
            Request::PhaseGrid {
                run,
                max_columns,
                until,
            } => {
                p.run = Some(run);
                p.max_columns = max_columns;
                p.until = until;
            }
            Request::LayerReport { run, step, layer }
            | Request::RawEigenvalues { run, step, layer } => {
                p.run = Some(run);
                p.step = Some(step);
                p.layer = Some(layer);
            }
            Request::Export { run, format } => {
                p.run = run;
                p.format = Some(format);
            }
        }
        p
    }

    /// The request's path and query, e.g. `/api/v1/trajectory?run=a&layer=fc1`, with `token` added when given.
    pub fn target(&self, token: Option<&str>) -> String {
        let mut p = self.params();
        p.token = token.map(str::to_string);
        let query = serde_urlencoded::to_string(&p).unwrap_or_default();
        let path = format!("{}/{}", prefix(), self.name());
        if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        }
    }

    /// Reads a request from its method, path and query (the inverse of [`target`](Self::target)), with the token
    /// the query carried, if any.
    pub fn parse(
        method: &str,
        path: &str,
        query: Option<&str>,
    ) -> Result<(Request, Option<String>), Error> {
        let name = match path.strip_prefix(&prefix()).and_then(|r| r.strip_prefix('/')) {
            Some(name) => name,
            None => {
                return Err(match path.strip_prefix("/api/v").and_then(|r| r.split('/').next()) {
                    Some(v) if v.parse::<u32>().is_ok() => Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "this htsr-watch daemon (htsr {}) speaks htsr API v{API_VERSION}; the client asked for \
                             v{v}: use the same htsr version on both sides",
                            env!("CARGO_PKG_VERSION")
                        ),
                    ),
                    _ => Error::new(ErrorKind::NotFound, format!("no such endpoint: {path}")),
                })
            }
        };
        let p: Params = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| Error::invalid(format!("{path}: bad query: {e}")))?;
        let need_run = |p: &Params| {
            p.run
                .clone()
                .ok_or_else(|| Error::invalid(format!("{path}: the parameter `run` is missing")))
        };
        let need_step = |p: &Params| {
            p.step
                .ok_or_else(|| Error::invalid(format!("{path}: the parameter `step` is missing")))
        };
        let need_layer = |p: &Params| {
            p.layer
                .clone()
                .ok_or_else(|| Error::invalid(format!("{path}: the parameter `layer` is missing")))
        };
        let request = match name {
            "runs" => Request::Runs,
            "run_summary" => Request::RunSummary { run: need_run(&p)? },
            "checkpoints" => Request::Checkpoints { run: need_run(&p)? },
            "checkpoint" => Request::Checkpoint {
                run: need_run(&p)?,
                step: need_step(&p)?,
            },
            "steps" => Request::Steps { run: need_run(&p)? },
            "layer_names" => Request::LayerNames { run: need_run(&p)? },
            "trajectory" => Request::Trajectory {
                run: need_run(&p)?,
                layer: need_layer(&p)?,
            },
            "phase_grid" => Request::PhaseGrid {
                run: need_run(&p)?,
                max_columns: p.max_columns,
                until: p.until,
            },
            "layer_report" => Request::LayerReport {
                run: need_run(&p)?,
                step: need_step(&p)?,
                layer: need_layer(&p)?,
            },
            "layers_at" => Request::LayersAt {
                run: need_run(&p)?,
                step: need_step(&p)?,
            },
            "raw_eigenvalues" => Request::RawEigenvalues {
                run: need_run(&p)?,
                step: need_step(&p)?,
                layer: need_layer(&p)?,
            },
            "stats" => Request::Stats,
            "export" => Request::Export {
                run: p.run.clone(),
                format: p.format.unwrap_or(RowFormat::Csv),
            },
            "pin" => Request::Pin {
                run: need_run(&p)?,
                step: need_step(&p)?,
            },
            "unpin" => Request::Unpin {
                run: need_run(&p)?,
                step: need_step(&p)?,
            },
            "events" => Request::Events,
            other => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("no such endpoint: {}/{other}", prefix()),
                ))
            }
        };
        if request.method() != method && !(method == "HEAD" && request.method() == "GET") {
            return Err(Error::invalid(format!(
                "{path} takes {}, not {method}",
                request.method()
            )));
        }
        Ok((request, p.token))
    }
}

/// The HTTP status for an error of `kind`.
pub fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::NotFound => 404,
        ErrorKind::Invalid => 400,
        ErrorKind::Denied => 401,
        ErrorKind::Unsupported => 400,
        ErrorKind::Locked | ErrorKind::Unavailable | ErrorKind::Connection => 503,
        ErrorKind::Corrupt | ErrorKind::Io => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_request() -> Vec<Request> {
        let run = "exp/1 é&=?#".to_string();
        let layer = "layer.0 weird%20name&x=y".to_string();
        vec![
            Request::Runs,
            Request::RunSummary { run: run.clone() },
            Request::Checkpoints { run: run.clone() },
            Request::Checkpoint {
                run: run.clone(),
                step: 7,
            },
            Request::Steps { run: run.clone() },
            Request::LayerNames { run: run.clone() },
            Request::Trajectory {
                run: run.clone(),
                layer: layer.clone(),
            },
            Request::PhaseGrid {
                run: run.clone(),
                max_columns: Some(40),
                until: Some(900),
            },
            Request::PhaseGrid {
                run: run.clone(),
                max_columns: None,
                until: None,
            },
            Request::LayerReport {
                run: run.clone(),
                step: 3,
                layer: layer.clone(),
            },
            Request::LayersAt {
                run: run.clone(),
                step: u64::MAX,
            },
            Request::RawEigenvalues {
                run: run.clone(),
                step: 0,
                layer,
            },
            Request::Stats,
            Request::Export {
                run: None,
                format: RowFormat::Jsonl,
            },
            Request::Export {
                run: Some(run.clone()),
                format: RowFormat::Csv,
            },
            Request::Pin {
                run: run.clone(),
                step: 1,
            },
            Request::Unpin { run, step: 2 },
            Request::Events,
        ]
    }

    #[test]
    fn every_request_reads_back_as_written() {
        for r in every_request() {
            for token in [None, Some("s3cr&t")] {
                let target = r.target(token);
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (target.as_str(), None),
                };
                let (back, tok) = Request::parse(r.method(), path, query).unwrap();
                assert_eq!(back, r, "{target}");
                assert_eq!(tok.as_deref(), token, "{target}");
            }
        }
    }

    #[test]
    fn bad_requests_are_refused_with_what_is_wrong() {
        let p = prefix();
        let e = Request::parse("GET", &format!("{p}/trajectory"), Some("run=a")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("layer"), "{e}");
        let e =
            Request::parse("GET", &format!("{p}/checkpoint"), Some("run=a&step=x")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        let e = Request::parse("GET", &format!("{p}/runs"), Some("color=red")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        let e = Request::parse("GET", &format!("{p}/pin"), Some("run=a&step=1")).unwrap_err();
        assert!(e.message.contains("POST"), "{e}");
        let e = Request::parse("GET", &format!("{p}/nothing"), None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e = Request::parse("GET", "/api/v999/runs", None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported);
        assert!(
            e.message.contains("v999") && e.message.contains(&format!("v{API_VERSION}")),
            "{e}"
        );
    }

    #[test]
    fn a_server_of_another_version_is_named_in_the_refusal() {
        let info = ServerInfo {
            api_version: API_VERSION + 1,
            htsr_version: "9.9.9".into(),
            pid: 42,
            store: "/x/.htsr".into(),
            watching: None,
        };
        let e = info.check_version("/x/.htsr.sock").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported);
        for part in [
            "9.9.9",
            "pid 42",
            &format!("v{}", API_VERSION + 1),
            &format!("v{API_VERSION}"),
        ] {
            assert!(e.message.contains(part), "{part}: {e}");
        }
    }
}
