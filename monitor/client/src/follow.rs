//! The daemon's live events for a viewer, whatever happens to the daemon.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

use eventsource_stream::EventStream;
use futures_util::StreamExt;
use htsr_api::wire::{events, Lagged, Request};
use htsr_api::{ErrorKind, ServerInfo, ViewerEvent};
use htsr_contracts::LiveEvent;
use http_body_util::BodyDataStream;

use crate::endpoint::Endpoint;
use crate::http;
use crate::remote::{runtime, server_info};

/// Waits between attempts to reach a daemon: short at first (a restart takes a moment), then once a second.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(1);
/// A daemon of another API version is asked again this seldom (it may be restarted with a matching htsr).
const VERSION_RETRY: Duration = Duration::from_secs(5);

/// Follows the daemon at `endpoint` on a thread of its own: [`ViewerEvent::Attached`] each time a daemon answers
/// (at start, after a restart, or when one starts where there was none), its events as [`ViewerEvent::Live`],
/// [`ViewerEvent::Resync`] when the viewer fell behind, and [`ViewerEvent::Detached`] when the connection breaks,
/// after which it reconnects by itself. The thread ends when the receiver is dropped and an event is due.
pub fn follow(endpoint: Endpoint, token: Option<String>) -> Receiver<ViewerEvent> {
    let (tx, rx) = channel();
    let spawned = std::thread::Builder::new()
        .name("htsr-follow".into())
        .spawn(move || follow_loop(endpoint, token, tx));
    if let Err(e) = spawned {
        // The receiver then reports disconnection at once; the viewer shows the history without live events.
        eprintln!("htsr: cannot start following the daemon: {e}");
    }
    rx
}

enum Ended {
    /// The viewer is gone: stop.
    ViewerGone,
    /// The stream ended or could not start; `attached` says whether the viewer had been told it was attached.
    Broken { reason: String, version: bool },
}

fn follow_loop(endpoint: Endpoint, token: Option<String>, tx: Sender<ViewerEvent>) {
    let Ok(rt) = runtime() else {
        let _ = tx.send(ViewerEvent::Detached {
            reason: "cannot start an event loop to follow the daemon".into(),
        });
        return;
    };
    let mut retry = FIRST_RETRY;
    let mut said_version = false;
    loop {
        let mut attached = false;
        match rt.block_on(stream_once(&endpoint, token.as_deref(), &tx, &mut attached)) {
            Ended::ViewerGone => return,
            Ended::Broken { reason, version } => {
                if attached {
                    retry = FIRST_RETRY;
                    if tx.send(ViewerEvent::Detached { reason }).is_err() {
                        return;
                    }
                } else if version && !said_version {
                    said_version = true;
                    if tx.send(ViewerEvent::Detached { reason }).is_err() {
                        return;
                    }
                }
                let wait = if version { VERSION_RETRY } else { retry };
                std::thread::sleep(wait);
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

/// One connection: info, then the event stream until it ends.
async fn stream_once(
    endpoint: &Endpoint,
    token: Option<&str>,
    tx: &Sender<ViewerEvent>,
    attached: &mut bool,
) -> Ended {
    let broken = |e: htsr_api::Error| Ended::Broken {
        version: e.kind == ErrorKind::Unsupported,
        reason: e.message,
    };
    if let Err(e) = server_info(endpoint, token).await {
        return broken(e);
    }
    let response =
        match http::send(endpoint, "GET", &Request::Events.target(None), token).await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                return broken(http::body(endpoint, r).await.err().unwrap_or_else(|| {
                    htsr_api::Error::connection("the event stream was refused")
                }))
            }
            Err(e) => return broken(e),
        };
    let mut stream = EventStream::new(BodyDataStream::new(response.into_body()));
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(e) => e,
            Err(e) => {
                return Ended::Broken {
                    reason: format!("the connection to the daemon at {endpoint} broke: {e}"),
                    version: false,
                }
            }
        };
        let viewer_event = match event.event.as_str() {
            events::HELLO => match serde_json::from_str::<ServerInfo>(&event.data) {
                Ok(info) => {
                    *attached = true;
                    ViewerEvent::Attached(info)
                }
                Err(_) => continue,
            },
            events::LIVE => match serde_json::from_str::<LiveEvent>(&event.data) {
                Ok(live) => ViewerEvent::Live(live),
                // An event this version does not know (a newer daemon of the same API): nothing to show.
                Err(_) => continue,
            },
            events::LAGGED => match serde_json::from_str::<Lagged>(&event.data) {
                Ok(l) => ViewerEvent::Resync { missed: l.missed },
                Err(_) => ViewerEvent::Resync { missed: 0 },
            },
            _ => continue,
        };
        if tx.send(viewer_event).is_err() {
            return Ended::ViewerGone;
        }
    }
    Ended::Broken {
        reason: format!("the htsr-watch daemon at {endpoint} stopped"),
        version: false,
    }
}
