//! The daemon's live events, fanned out to every attached viewer through one bounded ring.
//!
//! The daemon sends each event into a plain channel and never waits; a forwarding thread puts it into a tokio
//! broadcast ring of fixed size that every viewer's stream reads at its own pace. A viewer that falls more than the
//! ring behind (a stuck or stopped process) skips what it missed and is sent a `lagged` event, after which it
//! re-reads what it shows: memory stays bounded by the ring, whatever the viewers do.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::response::sse::Event;
use futures_util::{Stream, StreamExt};
use htsr_api::wire::{events, Lagged};
use htsr_api::ServerInfo;
use htsr_contracts::{DaemonStatus, LiveEvent};
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

/// Where viewers subscribe. The forwarding thread holds the only strong sender, so when the daemon stops (its
/// channel closes) every stream ends and the viewers see the daemon go.
#[derive(Clone)]
pub(crate) struct Fanout {
    sender: broadcast::WeakSender<Arc<LiveEvent>>,
    /// The newest queue status, sent first to a viewer that attaches (statuses are sent only on change).
    status: Arc<Mutex<Option<DaemonStatus>>>,
    /// Event streams open now: a server that stops lets them end cleanly first.
    open: Arc<AtomicUsize>,
}

/// Counts one open stream for as long as it lives.
struct OpenStream(Arc<AtomicUsize>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Fanout {
    /// Starts the forwarding thread from the daemon's channel into a ring of `capacity` events.
    pub(crate) fn start(
        daemon: Receiver<LiveEvent>,
        capacity: usize,
    ) -> std::io::Result<(Fanout, JoinHandle<()>)> {
        let (tx, _) = broadcast::channel::<Arc<LiveEvent>>(capacity.max(1));
        let status = Arc::new(Mutex::new(None));
        let fanout = Fanout {
            sender: tx.downgrade(),
            status: status.clone(),
            open: Arc::new(AtomicUsize::new(0)),
        };
        let thread = std::thread::Builder::new()
            .name("htsr-serve-events".into())
            .spawn(move || {
                while let Ok(event) = daemon.recv() {
                    if let LiveEvent::Status(s) = &event {
                        *status.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.clone());
                    }
                    // No viewer attached is not an error: the event is simply not kept.
                    let _ = tx.send(Arc::new(event));
                }
            })?;
        Ok((fanout, thread))
    }

    /// One viewer's stream: `hello` (who is answering), the newest status, then every event as it comes, with a
    /// `lagged` event wherever the viewer fell behind. Ends when the daemon stops.
    pub(crate) fn stream(
        &self,
        info: &ServerInfo,
    ) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
        let receiver = self.sender.upgrade().map(|tx| tx.subscribe());
        let mut first = vec![json_event(events::HELLO, info)];
        let status = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(s) = status {
            first.push(json_event(events::LIVE, &LiveEvent::Status(s)));
        }
        self.open.fetch_add(1, Ordering::AcqRel);
        let guard = OpenStream(self.open.clone());
        let live = futures_util::stream::iter(receiver)
            .flat_map(BroadcastStream::new)
            .map(|item| match item {
                Ok(event) => json_event(events::LIVE, &*event),
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    json_event(events::LAGGED, &Lagged { missed })
                }
            });
        futures_util::stream::iter(first).chain(live).map(move |e| {
            let _held = &guard;
            Ok(e)
        })
    }

    /// Event streams open now.
    pub(crate) fn open_streams(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

fn json_event<T: serde::Serialize>(name: &str, value: &T) -> Event {
    // Serializing these types cannot fail (no maps with non-string keys, floats written as numbers or null).
    let data = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    Event::default().event(name).data(data)
}
