//! The server and its client together, in process, on a real sled store and a real Unix socket (and TCP): every
//! query answers what the store answers, exports are byte for byte the store's, live events reach every viewer,
//! a viewer that stops reading is told it lagged while the others go on, and garbage, half-open and a thousand
//! dropped connections leave the server answering.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use htsr_api::{ErrorKind, History, PinOutcome, RowFormat, ServerInfo, ViewerEvent, API_VERSION};
use htsr_client::{Endpoint, RemoteHistory};
use htsr_contracts::{DaemonStatus, LiveEvent};
use htsr_server::{bind_unix, Limits, Running, ServeOptions, Server};
use htsr_storage::{fixtures, Store};

/// How long a step may take before the test calls it a hang (not a performance bound).
const HANG: Duration = Duration::from_secs(60);

fn info(store: &Path) -> ServerInfo {
    ServerInfo {
        api_version: API_VERSION,
        htsr_version: "test".into(),
        pid: std::process::id(),
        store: store.display().to_string(),
        watching: Some("/watched".into()),
    }
}

/// A store with two runs of `steps` checkpoints of 6 layers, raw eigenvalues kept for the latest.
fn filled_store(dir: &Path, steps: u64) -> Store {
    let (store, _) = Store::open(dir.join(".htsr")).unwrap();
    for run in ["bs-16", "bs-64"] {
        for k in 1..=steps {
            let (record, layers) = fixtures::checkpoint(run, k * 100, 6);
            let raw: Vec<(String, Vec<f64>)> = layers
                .iter()
                .map(|l| (l.name.clone(), fixtures::eigenvalues(50, k)))
                .collect();
            store.write_checkpoint(&record, &layers, &raw).unwrap();
        }
    }
    store
}

struct Served {
    running: Option<Running>,
    events: Sender<LiveEvent>,
    socket: std::path::PathBuf,
}

fn serve(
    store: &Store,
    limits: Limits,
    tcp: Option<(std::net::TcpListener, Option<String>)>,
) -> Served {
    let socket = store.path().with_file_name(".htsr.sock");
    let unix = bind_unix(&socket).unwrap();
    let (tx, rx) = channel();
    let (tcp, token) = match tcp {
        Some((l, t)) => (Some(l), t),
        None => (None, None),
    };
    let running = Server::start(
        Arc::new(store.clone()),
        rx,
        ServeOptions {
            info: info(store.path()),
            unix: Some(unix),
            tcp,
            token,
            page: None,
            limits,
        },
    )
    .unwrap();
    Served {
        running: Some(running),
        events: tx,
        socket,
    }
}

fn remote(s: &Served) -> RemoteHistory {
    RemoteHistory::connect(Endpoint::Unix(s.socket.clone()), None).unwrap()
}

fn export(h: &dyn History, run: Option<&str>, format: RowFormat) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let rows = h.export(run, format, &mut out).unwrap();
    (out, rows)
}

#[test]
fn every_query_answers_as_the_store_does() {
    let tmp = tempfile::tempdir().unwrap();
    let store = filled_store(tmp.path(), 5);
    let served = serve(&store, Limits::default(), None);
    let r = remote(&served);
    let local: &dyn History = &store;
    assert_eq!(r.info().store, store.path().display().to_string());

    assert_eq!(r.runs().unwrap(), local.runs().unwrap());
    assert_eq!(r.runs().unwrap().len(), 2);
    for run in ["bs-16", "bs-64", "no-such-run"] {
        assert_eq!(r.run_summary(run).unwrap(), local.run_summary(run).unwrap());
        assert_eq!(r.checkpoints(run).unwrap(), local.checkpoints(run).unwrap());
        assert_eq!(r.steps(run).unwrap(), local.steps(run).unwrap());
        assert_eq!(r.layer_names(run).unwrap(), local.layer_names(run).unwrap());
        for (cols, until) in [
            (None, None),
            (Some(3), None),
            (Some(2), Some(300)),
            (None, Some(0)),
        ] {
            assert_eq!(
                r.phase_grid(run, cols, until).unwrap(),
                local.phase_grid(run, cols, until).unwrap()
            );
        }
        for step in [100, 500, 9999] {
            assert_eq!(
                r.checkpoint(run, step).unwrap(),
                local.checkpoint(run, step).unwrap()
            );
            assert_eq!(
                r.layers_at(run, step).unwrap(),
                local.layers_at(run, step).unwrap()
            );
        }
        for layer in local
            .layer_names("bs-16")
            .unwrap()
            .iter()
            .map(String::as_str)
            .chain(["nope"])
        {
            assert_eq!(
                r.trajectory(run, layer).unwrap(),
                local.trajectory(run, layer).unwrap()
            );
            for step in [100, 500] {
                assert_eq!(
                    r.layer_report(run, step, layer).unwrap(),
                    local.layer_report(run, step, layer).unwrap()
                );
                // Raw eigenvalues cross the wire exactly (f64 JSON round trip).
                assert_eq!(
                    r.raw_eigenvalues(run, step, layer).unwrap(),
                    local.raw_eigenvalues(run, step, layer).unwrap()
                );
            }
        }
    }
    assert!(r
        .raw_eigenvalues("bs-16", 500, &local.layer_names("bs-16").unwrap()[0])
        .unwrap()
        .is_some());
    let (rs, ls) = (r.stats().unwrap(), local.stats().unwrap());
    assert_eq!(
        (rs.trees, rs.logical_bytes, rs.path),
        (ls.trees, ls.logical_bytes, ls.path)
    );

    for format in [RowFormat::Csv, RowFormat::Jsonl] {
        for run in [None, Some("bs-64")] {
            let (remote_bytes, remote_rows) = export(&r, run, format);
            let (local_bytes, local_rows) = export(local, run, format);
            assert_eq!(remote_bytes, local_bytes, "{format:?} {run:?}");
            assert_eq!(remote_rows, local_rows, "{format:?} {run:?}");
        }
    }
    assert_eq!(export(&r, None, RowFormat::Csv).1, 2 * 5 * 6);
    let e = r
        .export(Some("nope"), RowFormat::Csv, &mut Vec::new())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");

    // The only writes: pin and unpin, through the daemon.
    assert_eq!(r.pin("bs-16", 100).unwrap(), PinOutcome::AlreadyDropped);
    assert_eq!(r.pin("bs-16", 500).unwrap(), PinOutcome::Kept);
    assert_eq!(r.pin("bs-16", 12345).unwrap(), PinOutcome::NoSuchCheckpoint);
    assert!(store.is_pinned("bs-16", 500).unwrap());
    r.unpin("bs-16", 500).unwrap();
    assert!(!store.is_pinned("bs-16", 500).unwrap());
}

#[test]
fn an_export_taken_while_checkpoints_arrive_is_the_store_of_one_moment() {
    let tmp = tempfile::tempdir().unwrap();
    let store = filled_store(tmp.path(), 3);
    let served = serve(&store, Limits::default(), None);
    let r = remote(&served);
    // A writer stores more checkpoints while exports are taken.
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for k in 4..=40u64 {
                let (record, layers) = fixtures::checkpoint("bs-16", k * 100, 6);
                store.write_checkpoint(&record, &layers, &[]).unwrap();
            }
        })
    };
    let mut during = Vec::new();
    while !writer.is_finished() {
        during.push(export(&r, None, RowFormat::Csv).0);
    }
    writer.join().unwrap();
    during.push(export(&r, None, RowFormat::Csv).0);
    let after = String::from_utf8(export(&store, None, RowFormat::Csv).0).unwrap();
    let after_rows: std::collections::HashSet<&str> = after.lines().collect();
    for text in &during {
        let text = std::str::from_utf8(text).unwrap();
        let mut steps = std::collections::BTreeMap::<&str, usize>::new();
        for line in text.lines() {
            assert!(
                after_rows.contains(line),
                "a row the final store does not hold: {line}"
            );
            *steps.entry(line.split(',').nth(1).unwrap()).or_default() += 1;
        }
        // Every checkpoint in an export is whole: all six layers of each run at that step.
        for (step, n) in steps.iter().filter(|(s, _)| **s != "step") {
            assert_eq!(n % 6, 0, "step {step}: {n} rows");
        }
    }
    assert!(during.len() >= 2, "exports taken: {}", during.len());
}

/// Reads a raw SSE stream until `want` appears in it.
fn read_until(stream: &mut UnixStream, want: &str) -> String {
    stream.set_read_timeout(Some(HANG)).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = stream
            .read(&mut buf)
            .expect("the stream ended or hung before what was wanted");
        assert!(
            n > 0,
            "the stream ended; seen: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if text.contains(want) {
            return text.into_owned();
        }
    }
}

fn next_event(rx: &Receiver<ViewerEvent>) -> ViewerEvent {
    rx.recv_timeout(HANG).expect("no event from the daemon")
}

fn stored(step: u64) -> LiveEvent {
    LiveEvent::CheckpointStored {
        run: "bs-16".into(),
        step,
        layers: 6,
        seconds: 0.25,
        phase_counts: [1, 1, 1, 1, 1, 1, 0],
    }
}

#[test]
fn live_events_reach_every_viewer_and_a_stuck_viewer_is_told_it_lagged() {
    let tmp = tempfile::tempdir().unwrap();
    let store = filled_store(tmp.path(), 1);
    let limits = Limits {
        event_buffer: 8,
        ..Limits::default()
    };
    let served = serve(&store, limits, None);
    let endpoint = Endpoint::Unix(served.socket.clone());

    // The newest status is the first thing a viewer that attaches later hears.
    served
        .events
        .send(LiveEvent::Status(DaemonStatus {
            queued: 3,
            ..DaemonStatus::default()
        }))
        .unwrap();
    // A stuck viewer: it asks for the stream and never reads it.
    let mut stuck = UnixStream::connect(&served.socket).unwrap();
    stuck
        .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();

    let viewers: Vec<Receiver<ViewerEvent>> = (0..3)
        .map(|_| htsr_client::follow(endpoint.clone(), None))
        .collect();
    for rx in &viewers {
        assert!(matches!(next_event(rx), ViewerEvent::Attached(i) if i.pid == std::process::id()));
        // The status sent before anyone attached.
        let mut e = next_event(rx);
        while !matches!(e, ViewerEvent::Live(LiveEvent::Status(_))) {
            e = next_event(rx);
        }
        assert!(matches!(e, ViewerEvent::Live(LiveEvent::Status(s)) if s.queued == 3));
    }
    // Far more events than the stuck viewer's socket can hold; each reaches every reading viewer, in order.
    let big = "x".repeat(2000);
    for step in 0..600u64 {
        served
            .events
            .send(LiveEvent::Message {
                text: format!("{step} {big}"),
            })
            .unwrap();
        for rx in &viewers {
            loop {
                match next_event(rx) {
                    ViewerEvent::Live(LiveEvent::Message { text }) => {
                        assert!(
                            text.starts_with(&format!("{step} ")),
                            "{step}: {}",
                            &text[..10]
                        );
                        break;
                    }
                    ViewerEvent::Resync { .. } => panic!("a reading viewer lagged"),
                    _ => {}
                }
            }
        }
    }
    served.events.send(stored(4242)).unwrap();
    // The stuck viewer reads at last: it was told it missed events, then hears the newest ones.
    let text = read_until(&mut stuck, "\"step\":4242");
    assert!(text.contains("event: lagged"), "no lagged event");
    assert!(text.contains("event: hello"));
    // The daemon's channel never filled: sending never blocked, and the server kept nothing of the stuck viewer.
    for rx in &viewers {
        assert!(matches!(
            next_event(rx),
            ViewerEvent::Live(LiveEvent::CheckpointStored { step: 4242, .. })
        ));
    }
}

#[test]
fn viewers_see_the_daemon_go_and_come_back() {
    let tmp = tempfile::tempdir().unwrap();
    let store = filled_store(tmp.path(), 1);
    let mut served = serve(&store, Limits::default(), None);
    let rx = htsr_client::follow(Endpoint::Unix(served.socket.clone()), None);
    assert!(matches!(next_event(&rx), ViewerEvent::Attached(_)));
    served.running.take().unwrap().stop();
    assert!(!served.socket.exists(), "the socket goes with the server");
    loop {
        match next_event(&rx) {
            ViewerEvent::Detached { reason } => {
                assert!(
                    reason.contains("stopped") || reason.contains("broke"),
                    "{reason}"
                );
                break;
            }
            ViewerEvent::Live(_) => {}
            other => panic!("{other:?}"),
        }
    }
    // A new daemon on the same store: the viewer attaches again by itself.
    let again = serve(&store, Limits::default(), None);
    assert!(matches!(next_event(&rx), ViewerEvent::Attached(_)));
    again.events.send(stored(77)).unwrap();
    loop {
        if let ViewerEvent::Live(LiveEvent::CheckpointStored { step, .. }) = next_event(&rx) {
            assert_eq!(step, 77);
            break;
        }
    }
}

#[test]
fn garbage_oversized_half_open_and_a_thousand_dropped_connections_leave_it_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let store = filled_store(tmp.path(), 2);
    let limits = Limits {
        header_timeout: Duration::from_millis(500),
        max_connections: 64,
        ..Limits::default()
    };
    let served = serve(&store, limits, None);
    let r = remote(&served);
    let want = History::runs(&store).unwrap();

    // Half-open: connected, nothing sent. More than the connection limit of them.
    let half_open: Vec<UnixStream> = (0..100)
        .map(|_| UnixStream::connect(&served.socket).unwrap())
        .collect();
    // Garbage, an oversized header, a request line that never ends.
    for payload in [
        b"\x00\x01\x02garbage\r\n\r\n".to_vec(),
        [b"GET /api/v1/runs HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; 1 << 20], b"\r\n\r\n"].concat(),
        b"GET /api/v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nxx".to_vec(),
        b"POST /api/v1/pin?run=bs-16&step=100 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n12345".to_vec(),
    ] {
        let mut s = UnixStream::connect(&served.socket).unwrap();
        let _ = s.write_all(&payload);
        let mut answer = Vec::new();
        s.set_read_timeout(Some(HANG)).unwrap();
        let _ = s.read_to_end(&mut answer);
    }
    // A thousand connections opened and dropped at once.
    for _ in 0..1000 {
        drop(UnixStream::connect(&served.socket).unwrap());
    }
    // The half-open ones are dropped by the header timeout; until then new clients may be refused. Wait for
    // the server to answer again (a condition, with a hang guard), then check it answers correctly.
    let deadline = Instant::now() + HANG;
    let answer = loop {
        match r.runs() {
            Ok(v) => break v,
            Err(e) if Instant::now() < deadline && e.kind == ErrorKind::Connection => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(answer, want);
    // The half-open connections were closed by the server (EOF on read), not kept forever.
    for mut s in half_open {
        s.set_read_timeout(Some(HANG)).unwrap();
        let mut b = [0u8; 16];
        assert_eq!(s.read(&mut b).unwrap_or(0), 0);
    }
    // And a well-formed request of a wrong kind gets a clear answer.
    let mut s = UnixStream::connect(&served.socket).unwrap();
    s.write_all(b"GET /api/v1/pin?run=a&step=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("takes POST"), "{answer}");
}

#[test]
fn a_client_of_another_api_version_is_told_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let store = filled_store(tmp.path(), 1);
    let served = serve(&store, Limits::default(), None);
    // An older client asking a path of another version.
    let mut s = UnixStream::connect(&served.socket).unwrap();
    s.write_all(b"GET /api/v0/runs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.contains("v0") && answer.contains(&format!("v{API_VERSION}")),
        "{answer}"
    );

    // A daemon that speaks another version: the client refuses it, naming both.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let sock = other.join("d.sock");
    let (_tx, rx) = channel();
    let mut newer = info(&other);
    newer.api_version = API_VERSION + 1;
    let _running = Server::start(
        Arc::new(store.clone()),
        rx,
        ServeOptions {
            info: newer,
            unix: Some(bind_unix(&sock).unwrap()),
            tcp: None,
            token: None,
            page: None,
            limits: Limits::default(),
        },
    )
    .unwrap();
    let e = RemoteHistory::connect(Endpoint::Unix(sock), None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(
        e.message.contains(&format!("v{}", API_VERSION + 1))
            && e.message.contains(&format!("v{API_VERSION}")),
        "{e}"
    );
}

#[test]
fn tcp_requires_the_token_when_one_is_set_and_the_socket_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let store = filled_store(tmp.path(), 1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = serve(
        &store,
        Limits::default(),
        Some((listener, Some("s3cret".into()))),
    );
    let tcp = Endpoint::Tcp {
        host: "127.0.0.1".into(),
        port,
    };
    for token in [
        None,
        Some("wrong".to_string()),
        Some("s3cre".into()),
        Some("s3cret0".into()),
    ] {
        let e = RemoteHistory::connect(tcp.clone(), token.clone()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Denied, "{token:?}: {e}");
    }
    let r = RemoteHistory::connect(tcp.clone(), Some("s3cret".into())).unwrap();
    assert_eq!(r.runs().unwrap(), History::runs(&store).unwrap());
    // Events over TCP need it too; the local socket does not.
    assert!(remote(&served).runs().is_ok());
    let rx = htsr_client::follow(tcp, Some("s3cret".into()));
    assert!(matches!(next_event(&rx), ViewerEvent::Attached(_)));
}
