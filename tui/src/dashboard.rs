//! The event loop: poll the terminal with a timeout, drain the daemon's channel, re-read what changed, draw
//! once. Everything blocking (analysis) happens in the daemon's threads; this thread only reads the history (the
//! store in the daemon's own process, or the daemon over its socket for an attached viewer).

use std::io;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use crossterm::event;
use htsr_api::{History, ViewerEvent};

use crate::options::DashboardOptions;
use crate::state::{load, App};
use crate::terminal::TerminalGuard;
use crate::view;

/// How long to wait for a key before looking at the channel again: short enough that new checkpoints appear
/// promptly.
const TICK: Duration = Duration::from_millis(100);

/// With no key, no live event and no resize, the screen is redrawn only this often (for the ages it shows), so an
/// idle dashboard costs almost nothing: redrawing at every tick took 0.7% of a core for an unchanged screen.
const IDLE_REDRAW: Duration = Duration::from_secs(1);

/// Runs the dashboard on the calling thread until the user quits (q or Ctrl-C), drawing `store` and following
/// `events` (the daemon's own [`htsr_contracts::LiveEvent`]s in its process, or an attached viewer's
/// [`ViewerEvent`]s). The terminal is restored on return and on panic.
pub fn run_dashboard<E: Into<ViewerEvent>>(
    store: &dyn History,
    events: Option<Receiver<E>>,
    opts: DashboardOptions,
) -> io::Result<()> {
    let mut guard = TerminalGuard::enter()?;
    let mut app = App::new(opts);
    let mut events = events;
    let mut drawn: Option<(Instant, ratatui::layout::Size)> = None;
    let mut changed = true;
    loop {
        let size = guard.terminal.size()?;
        let due = match drawn {
            None => true,
            Some((at, drawn_size)) => changed || drawn_size != size || at.elapsed() >= IDLE_REDRAW,
        };
        if due {
            load::prepare(&mut app, store, size.width, size.height);
            guard.terminal.draw(|f| view::draw(f, &app))?;
            drawn = Some((Instant::now(), size));
            changed = false;
        }
        if event::poll(TICK)? {
            changed = true;
            // Take every pending input before the next draw so that held keys and wheel bursts stay smooth.
            loop {
                app.handle_event(event::read()?);
                if app.quit || !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        if let Some(rx) = &events {
            loop {
                match rx.try_recv() {
                    Ok(e) => {
                        app.apply(e);
                        changed = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        // The daemon only drops its sender when the process is shutting down (a signal, or a
                        // fatal error the binary prints once the terminal is restored): leave with it.
                        app.daemon_stopped();
                        app.quit = true;
                        events = None;
                        break;
                    }
                }
            }
        }
        if app.quit {
            return Ok(());
        }
    }
}
