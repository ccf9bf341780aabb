//! The HTTP side: every request of `htsr_api::wire` answered from the served [`History`].
//!
//! Requests are parsed by [`Request::parse`], the same code the client writes them with. Store reads run on the
//! runtime's blocking pool (lower priority than the daemon's threads) and at most `reads` of them at once; the
//! export streams through a small channel, so a client that reads slowly holds one blocking thread and a few
//! chunks, never the daemon.

use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request as HttpRequest, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use htsr_api::wire::{self, Request};
use htsr_api::{Error, ErrorKind, History, ServerInfo};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::events::Fanout;
use crate::serve::PageFn;

/// How a connection reached the server: a local socket (owner-only by its file mode) or TCP (token checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Local,
    Tcp,
}

pub(crate) struct AppState {
    pub history: Arc<dyn History>,
    pub info: ServerInfo,
    pub fanout: Fanout,
    pub token: Option<String>,
    pub page: Option<Arc<PageFn>>,
    pub reads: Arc<Semaphore>,
    pub exports: Arc<Semaphore>,
    pub keep_alive: std::time::Duration,
}

pub(crate) fn router(state: Arc<AppState>, transport: Transport) -> axum::Router {
    axum::Router::new()
        .route("/", axum::routing::get(page))
        .route(wire::INFO_PATH, axum::routing::get(info))
        .route("/api/{*rest}", axum::routing::any(api))
        .fallback(not_found)
        .layer(axum::Extension(transport))
        .with_state(state)
}

fn with_version(mut r: Response) -> Response {
    r.headers_mut()
        .insert(wire::VERSION_HEADER, HeaderValue::from(wire::API_VERSION));
    r
}

fn error_response(e: &Error) -> Response {
    let status =
        StatusCode::from_u16(wire::status_of(e.kind)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(e).unwrap_or_default();
    with_version(
        (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
    )
}

fn json_response(body: Vec<u8>) -> Response {
    with_version(
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
    )
}

/// The token a request presents: `Authorization: Bearer T`, the `token` query parameter, or the `htsr_token` cookie.
fn presented_token<'a>(headers: &'a HeaderMap, query_token: Option<&'a str>) -> Option<&'a str> {
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.trim());
    }
    if query_token.is_some() {
        return query_token;
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("htsr_token="))
}

fn authorize(
    state: &AppState,
    transport: Transport,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<(), Error> {
    let Some(token) = &state.token else {
        return Ok(());
    };
    if transport == Transport::Local {
        return Ok(());
    }
    match presented_token(headers, query_token) {
        Some(given) if crate::token::matches(token, given) => Ok(()),
        Some(_) => Err(Error::new(ErrorKind::Denied, "wrong token")),
        None => Err(Error::new(
            ErrorKind::Denied,
            "this htsr-watch daemon requires its token (in the store directory, serve.token): pass it with \
             --token, HTSR_TOKEN, an `Authorization: Bearer` header or ?token=",
        )),
    }
}

fn query_token(query: Option<&str>) -> Option<String> {
    query.and_then(|q| {
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == wire::TOKEN_PARAM).then(|| v.to_string())
        })
    })
}

async fn info(
    State(state): State<Arc<AppState>>,
    axum::Extension(transport): axum::Extension<Transport>,
    req: HttpRequest,
) -> Response {
    let token = query_token(req.uri().query());
    if let Err(e) = authorize(&state, transport, req.headers(), token.as_deref()) {
        return error_response(&e);
    }
    match serde_json::to_vec(&state.info) {
        Ok(body) => json_response(body),
        Err(e) => error_response(&Error::new(ErrorKind::Io, e.to_string())),
    }
}

async fn not_found(req: HttpRequest) -> Response {
    error_response(&Error::new(
        ErrorKind::NotFound,
        format!("no such endpoint: {}", req.uri().path()),
    ))
}

async fn page(
    State(state): State<Arc<AppState>>,
    axum::Extension(transport): axum::Extension<Transport>,
    req: HttpRequest,
) -> Response {
    let token = query_token(req.uri().query());
    if let Err(e) = authorize(&state, transport, req.headers(), token.as_deref()) {
        return error_response(&e);
    }
    let Some(render) = state.page.clone() else {
        return error_response(&Error::new(
            ErrorKind::NotFound,
            "this daemon serves no page",
        ));
    };
    let Ok(_permit) = state.reads.clone().acquire_owned().await else {
        return error_response(&Error::new(ErrorKind::Unavailable, "shutting down"));
    };
    let history = state.history.clone();
    match tokio::task::spawn_blocking(move || render(&*history)).await {
        Ok(Ok(html)) => {
            let mut r = with_version(
                (
                    [
                        (
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("text/html; charset=utf-8"),
                        ),
                        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    ],
                    html,
                )
                    .into_response(),
            );
            // A browser that opened the page with ?token= keeps it for the page's own requests.
            if let Some(t) = token.filter(|t| t.bytes().all(|b| b.is_ascii_alphanumeric())) {
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "htsr_token={t}; HttpOnly; SameSite=Strict; Path=/"
                )) {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
            }
            r
        }
        Ok(Err(message)) => error_response(&Error::new(ErrorKind::Io, message)),
        Err(e) => error_response(&Error::new(
            ErrorKind::Io,
            format!("rendering the page: {e}"),
        )),
    }
}

async fn api(
    State(state): State<Arc<AppState>>,
    axum::Extension(transport): axum::Extension<Transport>,
    req: HttpRequest,
) -> Response {
    let uri = req.uri().clone();
    let (request, token) = match Request::parse(req.method().as_str(), uri.path(), uri.query()) {
        Ok(v) => v,
        Err(e) => return error_response(&e),
    };
    if let Err(e) = authorize(&state, transport, req.headers(), token.as_deref()) {
        return error_response(&e);
    }
    match request {
        Request::Events => {
            let stream = state.fanout.stream(&state.info);
            with_version(
                Sse::new(stream)
                    .keep_alive(KeepAlive::new().interval(state.keep_alive))
                    .into_response(),
            )
        }
        Request::Export { run, format } => export(&state, run, format).await,
        other => {
            let Ok(_permit) = state.reads.clone().acquire_owned().await else {
                return error_response(&Error::new(ErrorKind::Unavailable, "shutting down"));
            };
            let history = state.history.clone();
            match tokio::task::spawn_blocking(move || answer(&*history, other)).await {
                Ok(Ok(body)) => json_response(body),
                Ok(Err(e)) => error_response(&e),
                Err(e) => error_response(&Error::new(ErrorKind::Io, format!("answering: {e}"))),
            }
        }
    }
}

fn json<T: Serialize>(value: T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(&value)
        .map_err(|e| Error::new(ErrorKind::Io, format!("encoding the answer: {e}")))
}

/// One query, answered from the store as JSON.
fn answer(h: &dyn History, request: Request) -> Result<Vec<u8>, Error> {
    match request {
        Request::Runs => json(h.runs()?),
        Request::RunSummary { run } => json(h.run_summary(&run)?),
        Request::Checkpoints { run } => json(h.checkpoints(&run)?),
        Request::Checkpoint { run, step } => json(h.checkpoint(&run, step)?),
        Request::Steps { run } => json(h.steps(&run)?),
        Request::LayerNames { run } => json(h.layer_names(&run)?),
        Request::Trajectory { run, layer } => json(h.trajectory(&run, &layer)?),
        Request::PhaseGrid {
            run,
            max_columns,
            until,
        } => json(h.phase_grid(&run, max_columns, until)?),
        Request::LayerReport { run, step, layer } => json(h.layer_report(&run, step, &layer)?),
        Request::LayersAt { run, step } => json(h.layers_at(&run, step)?),
        Request::RawEigenvalues { run, step, layer } => {
            json(h.raw_eigenvalues(&run, step, &layer)?)
        }
        Request::Stats => json(h.stats()?),
        Request::Pin { run, step } => json(h.pin(&run, step)?),
        Request::Unpin { run, step } => json(h.unpin(&run, step)?),
        Request::Events | Request::Export { .. } => {
            Err(Error::invalid("streamed requests are not answered here"))
        }
    }
}

/// Bytes written by the export, handed to the response body a chunk at a time. `send` blocks while the client
/// has not taken the previous chunks (the channel holds a few), which is what bounds a slow client's memory.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

async fn export(state: &AppState, run: Option<String>, format: htsr_api::RowFormat) -> Response {
    let Ok(permit) = state.exports.clone().acquire_owned().await else {
        return error_response(&Error::new(ErrorKind::Unavailable, "shutting down"));
    };
    // A run that does not exist is an error the client can show, not an empty file.
    if let Some(r) = &run {
        let history = state.history.clone();
        let r2 = r.clone();
        match tokio::task::spawn_blocking(move || history.run_summary(&r2)).await {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => {
                return error_response(&Error::new(
                    ErrorKind::NotFound,
                    format!("no run {r:?} in the store"),
                ))
            }
            Ok(Err(e)) => return error_response(&e),
            Err(e) => return error_response(&Error::new(ErrorKind::Io, e.to_string())),
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let history = state.history.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut w = ChunkWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let result = history
            .export(run.as_deref(), format, &mut w)
            .and_then(|_| w.flush().map_err(Error::from));
        if let Err(e) = result {
            // The status line is sent already: the body is cut short, which the client reports as an error.
            let _ = tx.blocking_send(Err(std::io::Error::other(e.message)));
        }
    });
    let content_type = match format {
        htsr_api::RowFormat::Csv => "text/csv; charset=utf-8",
        htsr_api::RowFormat::Jsonl => "application/x-ndjson",
    };
    with_version(
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
            .into_response(),
    )
}
