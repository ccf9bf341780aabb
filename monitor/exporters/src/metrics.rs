//! The Prometheus endpoint: `GET /metrics` in the OpenMetrics text format (prometheus-client's encoder), served
//! by a small hyper server on a tokio runtime of its own thread; a second thread turns the daemon's live events
//! into metric values. Neither is ever waited for by the daemon: it only sends events into a channel.
//!
//! Series (every name starts with `htsr_`):
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `htsr_layer_alpha` | gauge | run, layer | power-law alpha at the run's latest checkpoint |
//! | `htsr_layer_ks_distance` | gauge | run, layer | the fit's Kolmogorov-Smirnov distance D |
//! | `htsr_layer_mp_spikes` | gauge | run, layer | eigenvalues above the Marchenko-Pastur bulk |
//! | `htsr_layer_phase` | gauge | run, layer, phase | 1 for the layer's phase, 0 for the six others |
//! | `htsr_run_step` | gauge | run | the step those values are from |
//! | `htsr_checkpoints_stored_total` | counter | | checkpoints stored since the daemon started |
//! | `htsr_checkpoints_failed_total` | counter | | checkpoints that failed since the daemon started |
//! | `htsr_backlog_checkpoints` | gauge | | queued + being analyzed + waiting to be complete |
//! | `htsr_analysis_seconds` | histogram | | seconds per stored checkpoint, since the daemon started |
//! | `htsr_store_size_bytes` | gauge | | the store's files on disk, measured at each scrape |
//!
//! Cardinality: 10 series per (run, layer) with a fit (alpha, D, spikes and 7 phase series), 1 per run, and 19
//! for the daemon (the histogram's 12 buckets, +Inf, sum and count, and four others). Every run in the store is
//! shown (the latest checkpoint of each, read at start-up), so a store of 10 runs of a 100-layer model gives
//! about 10,000 series. A layer that is skipped (a bias) or whose fit failed has no series; a layer that
//! disappears from a run's newest checkpoint loses its series.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use htsr_contracts::{LayerReport, LiveEvent, Phase};
use htsr_storage::Store;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::warn::WarnOnce;

/// The content type of the page in OpenMetrics 1.0, which Prometheus asks for first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the page in Prometheus' classic text format 0.0.4, for every client that does not ask for
/// OpenMetrics (`curl`, older scrapers, `prometheus_client.parser`).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics: it names `application/openmetrics-text` with a non-zero
/// quality. Anything else (no header, `text/plain`, `*/*`) gets the classic text format.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            media.eq_ignore_ascii_case("application/openmetrics-text") && q > 0.0
        })
    })
}

/// The OpenMetrics page in the classic text format 0.0.4. The two differ, for what htsr serves, only in the
/// names: a counter family is `name_total` in the classic format (`name` in OpenMetrics), and the classic format
/// has no `# UNIT` and no `# EOF`. Samples and their escapes are the same.
pub fn classic_text(openmetrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.strip_suffix(" counter"))
        {
            counters.insert(name.to_string());
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# TYPE ", "# HELP "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// A client that has not sent its request headers after this long is dropped (a stuck client holds nothing).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why `--metrics ADDR` was refused before anything started.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    /// ADDR is not HOST:PORT, or HOST does not resolve.
    #[error("--metrics {addr}: not an address to listen on (expected HOST:PORT, e.g. 127.0.0.1:9464): {source}")]
    Invalid {
        /// What was given.
        addr: String,
        /// Why it does not resolve.
        #[source]
        source: std::io::Error,
    },
    /// ADDR resolves to no address at all.
    #[error("--metrics {addr}: resolves to no address")]
    Empty {
        /// What was given.
        addr: String,
    },
    /// ADDR is reachable from other machines and that was not allowed.
    #[error(
        "--metrics {addr}: {ip} is not a loopback address, so other machines could read /metrics; use a loopback \
         address (127.0.0.1:PORT or [::1]:PORT), or add --metrics-allow-remote to serve on {addr} anyway"
    )]
    NotLoopback {
        /// What was given.
        addr: String,
        /// The address that is not loopback.
        ip: std::net::IpAddr,
    },
}

/// Resolves `--metrics ADDR` to the address to bind: HOST:PORT (a name such as `localhost` is resolved, and its
/// first address used). Unless `allow_remote`, every address HOST resolves to must be loopback (`0.0.0.0` and
/// `[::]` are not: they listen on every interface).
pub fn resolve_addr(addr: &str, allow_remote: bool) -> Result<SocketAddr, AddrError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|source| AddrError::Invalid {
            addr: addr.to_string(),
            source,
        })?
        .collect();
    let first = *addrs.first().ok_or_else(|| AddrError::Empty {
        addr: addr.to_string(),
    })?;
    if !allow_remote {
        // An IPv4-mapped IPv6 loopback ([::ffff:127.0.0.1]) is loopback too.
        if let Some(a) = addrs.iter().find(|a| !a.ip().to_canonical().is_loopback()) {
            return Err(AddrError::NotLoopback {
                addr: addr.to_string(),
                ip: a.ip(),
            });
        }
    }
    Ok(first)
}

/// The address could not be bound (in use, not an address of this machine, a privileged port).
#[derive(Debug, thiserror::Error)]
#[error("--metrics: cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// What the system said.
    #[source]
    pub source: std::io::Error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct LayerLabels {
    run: String,
    layer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    run: String,
    layer: String,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    run: String,
}

/// Every metric, registered in one registry. Clones share the values.
#[derive(Clone)]
struct Metrics {
    alpha: Family<LayerLabels, Gauge<f64, AtomicU64>>,
    ks_distance: Family<LayerLabels, Gauge<f64, AtomicU64>>,
    mp_spikes: Family<LayerLabels, Gauge>,
    phase: Family<PhaseLabels, Gauge>,
    run_step: Family<RunLabels, Gauge>,
    stored: Counter,
    failed: Counter,
    backlog: Gauge,
    analysis_seconds: Histogram,
    store_size: Gauge,
}

impl Metrics {
    fn new() -> (Metrics, Registry) {
        let m = Metrics {
            alpha: Family::default(),
            ks_distance: Family::default(),
            mp_spikes: Family::default(),
            phase: Family::default(),
            run_step: Family::default(),
            stored: Counter::default(),
            failed: Counter::default(),
            backlog: Gauge::default(),
            // 10 ms to about 30 minutes, a factor of 3 apart: a small MLP to a large transformer.
            analysis_seconds: Histogram::new(exponential_buckets(0.01, 3.0, 12)),
            store_size: Gauge::default(),
        };
        let mut r = Registry::with_prefix("htsr");
        r.register(
            "layer_alpha",
            "Power-law exponent alpha of the layer's ESD tail at the run's latest checkpoint",
            m.alpha.clone(),
        );
        r.register(
            "layer_ks_distance",
            "Kolmogorov-Smirnov distance D between the layer's ESD tail and its power-law fit",
            m.ks_distance.clone(),
        );
        r.register(
            "layer_mp_spikes",
            "Eigenvalues of the layer above the Marchenko-Pastur bulk edge (plus Tracy-Widom margin)",
            m.mp_spikes.clone(),
        );
        r.register(
            "layer_phase",
            "1 for the layer's training phase at the run's latest checkpoint, 0 for the others",
            m.phase.clone(),
        );
        r.register(
            "run_step",
            "Step of the run's latest checkpoint, which the htsr_layer_* series show",
            m.run_step.clone(),
        );
        r.register(
            "checkpoints_stored",
            "Checkpoints analyzed and stored since the daemon started",
            m.stored.clone(),
        );
        r.register(
            "checkpoints_failed",
            "Checkpoints that could not be analyzed since the daemon started",
            m.failed.clone(),
        );
        r.register(
            "backlog_checkpoints",
            "Checkpoints queued, being analyzed, or waiting to be complete",
            m.backlog.clone(),
        );
        r.register_with_unit(
            "analysis",
            "Seconds to analyze and store one checkpoint, since the daemon started",
            Unit::Seconds,
            m.analysis_seconds.clone(),
        );
        r.register_with_unit(
            "store_size",
            "Size of the store's files on disk",
            Unit::Bytes,
            m.store_size.clone(),
        );
        (m, r)
    }
}

/// Keeps the per-layer series in step with each run's latest checkpoint.
struct Latest {
    metrics: Metrics,
    /// Per run: the step shown and the layers that have series.
    runs: BTreeMap<String, (u64, BTreeSet<String>)>,
}

impl Latest {
    fn remove_layer(&self, run: &str, layer: &str) {
        let labels = LayerLabels {
            run: run.to_string(),
            layer: layer.to_string(),
        };
        self.metrics.alpha.remove(&labels);
        self.metrics.ks_distance.remove(&labels);
        self.metrics.mp_spikes.remove(&labels);
        for p in Phase::ALL {
            self.metrics.phase.remove(&PhaseLabels {
                run: run.to_string(),
                layer: layer.to_string(),
                phase: p.as_str(),
            });
        }
    }

    /// Shows checkpoint `step` of `run`, unless a later one is shown already.
    fn show(&mut self, run: &str, step: u64, layers: &[LayerReport]) {
        if self.runs.get(run).is_some_and(|(shown, _)| *shown > step) {
            return;
        }
        let before = self.runs.remove(run).map(|(_, l)| l).unwrap_or_default();
        let mut now = BTreeSet::new();
        for report in layers {
            let labels = LayerLabels {
                run: run.to_string(),
                layer: report.name.clone(),
            };
            let m = &self.metrics;
            let pl = report.power_law.as_ref();
            let mut any = false;
            let mut set_f64 = |family: &Family<LayerLabels, Gauge<f64, AtomicU64>>,
                               v: Option<f64>| match v
                .filter(|v| v.is_finite())
            {
                Some(v) => {
                    family.get_or_create(&labels).set(v);
                    any = true;
                }
                None => {
                    family.remove(&labels);
                }
            };
            set_f64(&m.alpha, pl.map(|p| p.alpha));
            set_f64(&m.ks_distance, pl.map(|p| p.d));
            match report.mp.as_ref() {
                Some(mp) => {
                    m.mp_spikes
                        .get_or_create(&labels)
                        .set(i64::try_from(mp.num_spikes).unwrap_or(i64::MAX));
                    any = true;
                }
                None => {
                    m.mp_spikes.remove(&labels);
                }
            }
            for p in Phase::ALL {
                let labels = PhaseLabels {
                    run: run.to_string(),
                    layer: report.name.clone(),
                    phase: p.as_str(),
                };
                match report.phase() {
                    Some(current) => {
                        m.phase.get_or_create(&labels).set(i64::from(current == p));
                        any = true;
                    }
                    None => {
                        m.phase.remove(&labels);
                    }
                }
            }
            if any {
                now.insert(report.name.clone());
            }
        }
        for gone in before.difference(&now) {
            self.remove_layer(run, gone);
        }
        self.metrics
            .run_step
            .get_or_create(&RunLabels {
                run: run.to_string(),
            })
            .set(i64::try_from(step).unwrap_or(i64::MAX));
        self.runs.insert(run.to_string(), (step, now));
    }

    /// Shows `run`'s checkpoint `step` as the store holds it.
    fn show_from_store(&mut self, store: &Store, run: &str, step: u64) -> Result<(), String> {
        let layers = store.layers_at(run, step).map_err(|e| {
            format!(
                "reading {run}@{step} from the store {}: {e}",
                store.path().display()
            )
        })?;
        self.show(run, step, &layers);
        Ok(())
    }

    /// Shows the latest checkpoint of every run in the store.
    fn catch_up(&mut self, store: &Store) -> Result<usize, String> {
        let err =
            |e: htsr_storage::Error| format!("reading the store {}: {e}", store.path().display());
        let runs = store.runs().map_err(err)?;
        for r in &runs {
            self.show_from_store(store, &r.run, r.last_step)?;
        }
        Ok(runs.len())
    }
}

/// A bound (but not yet serving) metrics endpoint: binding first, at start-up, turns a port in use into an
/// error before the daemon starts.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` (port 0: any free port; see [`local_addr`](Self::local_addr)).
    pub fn bind(addr: SocketAddr) -> Result<MetricsServer, BindError> {
        let bind_err = |source| BindError { addr, source };
        let listener = TcpListener::bind(addr).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        Ok(MetricsServer { listener, addr })
    }

    /// The address actually bound, with the real port.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts serving `http://ADDR/metrics` on its own thread, and a second thread that shows the latest
    /// checkpoint of every run in `store`, then follows `events` (until they disconnect: the daemon stopped; the
    /// page is served until the process ends). Returns the second thread's handle.
    pub fn start(
        self,
        store: Store,
        events: Receiver<LiveEvent>,
    ) -> std::io::Result<JoinHandle<()>> {
        let (metrics, registry) = Metrics::new();
        let page = Page {
            registry: Arc::new(registry),
            store_size: metrics.store_size.clone(),
            store_path: store.path().to_path_buf(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let listener = self.listener;
        std::thread::Builder::new()
            .name("htsr-metrics-http".into())
            .spawn(move || runtime.block_on(serve(listener, page)))?;
        std::thread::Builder::new()
            .name("htsr-metrics".into())
            .spawn(move || follow(metrics, store, events))
    }
}

/// What a scrape needs.
#[derive(Clone)]
struct Page {
    registry: Arc<Registry>,
    store_size: Gauge,
    store_path: PathBuf,
}

impl Page {
    fn render(&self) -> Result<String, std::fmt::Error> {
        self.store_size
            .set(i64::try_from(htsr_storage::on_disk_bytes(&self.store_path)).unwrap_or(i64::MAX));
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, &self.registry)?;
        Ok(body)
    }

    async fn respond(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let plain = |status: StatusCode, text: &'static str| {
            let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
            *r.status_mut() = status;
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        };
        if req.uri().path() != "/metrics" {
            return Ok(plain(
                StatusCode::NOT_FOUND,
                "htsr-watch serves its metrics at /metrics\n",
            ));
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
            r.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            return Ok(r);
        }
        let openmetrics = wants_openmetrics(
            req.headers()
                .get(hyper::header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        Ok(match self.render() {
            Ok(body) => {
                let (body, content_type) = if openmetrics {
                    (body, CONTENT_TYPE)
                } else {
                    (classic_text(&body), TEXT_CONTENT_TYPE)
                };
                let mut r = Response::new(Full::new(Bytes::from(body)));
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(content_type),
                );
                r
            }
            Err(_) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding the metrics failed\n",
            ),
        })
    }
}

async fn serve(listener: TcpListener, page: Page) {
    let mut warned = WarnOnce::new("metrics");
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warned.warn("listener", &format_args!("cannot serve /metrics: {e}"));
            return;
        }
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: report it, wait a little, and keep serving.
                warned.warn(
                    &format!("accept {:?}", e.kind()),
                    &format_args!("accepting a connection: {e}"),
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let page = page.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let page = page.clone();
                async move { page.respond(req).await }
            });
            // A client that goes away mid-request is its own business: nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn follow(metrics: Metrics, store: Store, events: Receiver<LiveEvent>) {
    let mut warned = WarnOnce::new("metrics");
    let mut latest = Latest {
        metrics: metrics.clone(),
        runs: BTreeMap::new(),
    };
    match latest.catch_up(&store) {
        Ok(n) => tracing::debug!("metrics: showing the latest checkpoint of {n} runs"),
        Err(e) => {
            warned.warn("store", &e);
        }
    }
    while let Ok(event) = events.recv() {
        match event {
            LiveEvent::CheckpointStored {
                run, step, seconds, ..
            } => {
                metrics.stored.inc();
                if seconds.is_finite() && seconds >= 0.0 {
                    metrics.analysis_seconds.observe(seconds);
                }
                if let Err(e) = latest.show_from_store(&store, &run, step) {
                    warned.warn("store", &e);
                }
            }
            LiveEvent::CheckpointFailed { .. } => {
                metrics.failed.inc();
            }
            LiveEvent::Status(s) => {
                let backlog = s.queued + s.in_flight + s.waiting;
                metrics
                    .backlog
                    .set(i64::try_from(backlog).unwrap_or(i64::MAX));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_pass_without_the_flag() {
        assert_eq!(
            resolve_addr("127.0.0.1:0", false).unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert!(resolve_addr("[::1]:9464", false).is_ok());
        assert!(resolve_addr("[::ffff:127.0.0.1]:9464", false).is_ok());
        for remote in ["0.0.0.0:9464", "[::]:9464", "192.0.2.7:9464"] {
            let e = resolve_addr(remote, false).unwrap_err();
            assert!(matches!(e, AddrError::NotLoopback { .. }), "{remote}: {e}");
            assert!(e.to_string().contains("--metrics-allow-remote"), "{e}");
            assert!(resolve_addr(remote, true).is_ok(), "{remote}");
        }
        for bad in ["9464", "127.0.0.1", "127.0.0.1:port", ""] {
            let e = resolve_addr(bad, false).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn openmetrics_is_served_to_who_asks_for_it_and_the_classic_format_to_everyone_else() {
        for accept in [
            "application/openmetrics-text; version=1.0.0",
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
        ] {
            assert!(wants_openmetrics(Some(accept)), "{accept}");
        }
        for accept in [
            None,
            Some("text/plain;version=0.0.4"),
            Some("*/*"),
            Some("application/openmetrics-text;q=0"),
        ] {
            assert!(!wants_openmetrics(accept), "{accept:?}");
        }
        let om = "# HELP x_stored Stored.\n# TYPE x_stored counter\nx_stored_total 3\n# HELP x_size Size.\n\
                  # TYPE x_size gauge\n# UNIT x_size bytes\nx_size 5\n# EOF\n";
        assert_eq!(
            classic_text(om),
            "# HELP x_stored_total Stored.\n# TYPE x_stored_total counter\nx_stored_total 3\n# HELP x_size Size.\n\
             # TYPE x_size gauge\nx_size 5\n"
        );
    }

    #[test]
    fn a_port_in_use_is_an_error_naming_the_address() {
        let first = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr();
        assert_ne!(addr.port(), 0);
        let e = MetricsServer::bind(addr).unwrap_err();
        assert_eq!(e.source.kind(), std::io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
    }
}
