//! Starting and stopping the server: its runtime, its listeners and their connections.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use htsr_api::{History, ServerInfo};
use htsr_contracts::LiveEvent;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use crate::events::Fanout;
use crate::routes::{router, AppState, Transport};
use crate::socket::UnixSocket;

/// How long a stopping server waits for its event streams to end by themselves.
const STREAMS_END: Duration = Duration::from_millis(500);

/// Renders the page served at `/` from the history (the binary supplies it: the live report).
pub type PageFn = dyn Fn(&dyn History) -> Result<String, String> + Send + Sync;

/// The bounds that keep the daemon first whatever its clients do.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Live events a viewer may fall behind by before it is told it lagged (one ring shared by all viewers).
    pub event_buffer: usize,
    /// Store reads (queries, page renders) running at once; further requests wait their turn.
    pub reads: usize,
    /// Exports streaming at once.
    pub exports: usize,
    /// A connection that has not sent its request headers after this long is closed.
    pub header_timeout: Duration,
    /// An idle event stream gets a comment this often, so that a dead peer is noticed.
    pub keep_alive: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            event_buffer: 1024,
            reads: 2,
            exports: 2,
            header_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// What to serve, where.
pub struct ServeOptions {
    /// Who is answering (sent to every client first).
    pub info: ServerInfo,
    /// The Unix socket, bound with [`crate::bind_unix`].
    pub unix: Option<UnixSocket>,
    /// A TCP listener (`--serve ADDR`), bound by the caller.
    pub tcp: Option<std::net::TcpListener>,
    /// When set, every request over TCP must present it.
    pub token: Option<String>,
    /// The page at `/`.
    pub page: Option<Arc<PageFn>>,
    /// Bounds.
    pub limits: Limits,
}

/// The server's entry point.
pub struct Server;

/// A running server. Stopping it (or dropping it) closes every connection, ends every event stream and removes the
/// socket file.
pub struct Running {
    runtime: Option<tokio::runtime::Runtime>,
    fanout: Fanout,
    socket: Option<UnixSocket>,
    socket_path: Option<PathBuf>,
    tcp_addr: Option<SocketAddr>,
    forwarder: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `history` and the daemon's `events` as `options` say, on threads of its own, until stopped.
    pub fn start(
        history: Arc<dyn History>,
        events: Receiver<LiveEvent>,
        mut options: ServeOptions,
    ) -> io::Result<Running> {
        let limits = options.limits.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(limits.reads + limits.exports + 1)
            .thread_name("htsr-serve")
            .on_thread_start(lower_priority)
            .enable_io()
            .enable_time()
            .build()?;
        let (fanout, forwarder) = Fanout::start(events, limits.event_buffer)?;
        let state = Arc::new(AppState {
            history,
            info: options.info.clone(),
            fanout: fanout.clone(),
            token: options.token.clone(),
            page: options.page.clone(),
            reads: Arc::new(Semaphore::new(limits.reads.max(1))),
            exports: Arc::new(Semaphore::new(limits.exports.max(1))),
            keep_alive: limits.keep_alive,
        });
        let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let mut running = Running {
            runtime: None,
            fanout: fanout.clone(),
            socket: None,
            socket_path: None,
            tcp_addr: None,
            forwarder: Some(forwarder),
        };
        let _guard = runtime.enter();
        if let Some(mut socket) = options.unix.take() {
            let std_listener = socket.listener.take().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "the socket was already served")
            })?;
            let listener = tokio::net::UnixListener::from_std(std_listener)?;
            let app = router(state.clone(), Transport::Local);
            let (conns, timeout) = (connections.clone(), limits.header_timeout);
            running.socket_path = Some(socket.path().to_path_buf());
            running.socket = Some(socket);
            runtime.spawn(async move {
                let mut warned = false;
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => serve_connection(stream, app.clone(), &conns, timeout),
                        Err(e) => accept_failed(&mut warned, &e).await,
                    }
                }
            });
        }
        if let Some(std_listener) = options.tcp.take() {
            std_listener.set_nonblocking(true)?;
            running.tcp_addr = Some(std_listener.local_addr()?);
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
            let app = router(state, Transport::Tcp);
            let (conns, timeout) = (connections, limits.header_timeout);
            runtime.spawn(async move {
                let mut warned = false;
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            serve_connection(stream, app.clone(), &conns, timeout)
                        }
                        Err(e) => accept_failed(&mut warned, &e).await,
                    }
                }
            });
        }
        drop(_guard);
        running.runtime = Some(runtime);
        Ok(running)
    }
}

/// Out of descriptors, say: said once, then the listener pauses a little and goes on.
async fn accept_failed(warned: &mut bool, e: &io::Error) {
    if !*warned {
        *warned = true;
        tracing::warn!("serve: accepting a connection failed: {e} (going on)");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Serves one connection on its own task, if there is room for it; otherwise it is closed at once.
fn serve_connection<S>(
    io: S,
    app: axum::Router,
    connections: &Arc<Semaphore>,
    header_timeout: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(permit) = connections.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        // A client that goes away, sends garbage or never finishes its request is its own business: the connection
        // ends, nothing is reported.
        let _ = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
            .await;
    });
}

/// The server's threads yield to the daemon's: analysis and store writes go first on a busy machine.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority have no memory preconditions; on Linux a thread id given to PRIO_PROCESS
    // changes that thread's nice value only. A failure leaves the priority as it was.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

impl Running {
    /// The Unix socket served, if any.
    pub fn socket_path(&self) -> Option<&std::path::Path> {
        self.socket_path.as_deref()
    }

    /// The TCP address served (with its real port), if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Stops serving: connections close, event streams end, the socket file goes.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        // When the daemon has stopped, its channel closes, the forwarder ends and so does every viewer's stream:
        // let them finish cleanly (each viewer then reads "the daemon stopped", not a broken connection), within
        // a bound (a server stopped while its daemon still sends goes at the bound).
        let deadline = std::time::Instant::now() + STREAMS_END;
        while std::time::Instant::now() < deadline {
            let forwarding = self.forwarder.as_ref().is_some_and(|f| !f.is_finished());
            if !forwarding && self.fanout.open_streams() == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
        self.socket = None;
        // The forwarder ends when the daemon drops its sender; it holds nothing worth waiting for.
        self.forwarder = None;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shut();
    }
}
