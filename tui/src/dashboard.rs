//! The event loop: poll the terminal with a timeout, drain the daemon's channel, re-read what changed, draw
//! once. Everything blocking (analysis) happens in the daemon's threads; this thread only reads the store.

use std::io;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use crossterm::event;
use htsr_storage::Store;

use crate::options::DashboardOptions;
use crate::state::{load, App};
use crate::terminal::TerminalGuard;
use crate::view;
use htsr_contracts::live::LiveEvent;

/// How long to wait for a key before looking at the channel again: short enough that new checkpoints appear
/// promptly, long enough that an idle dashboard costs nothing.
const TICK: Duration = Duration::from_millis(100);

/// Runs the dashboard on the calling thread until the user quits (q or Ctrl-C). The terminal is restored on
/// return and on panic.
pub fn run_dashboard(
    store: Store,
    events: Option<Receiver<LiveEvent>>,
    opts: DashboardOptions,
) -> io::Result<()> {
    let mut guard = TerminalGuard::enter()?;
    let mut app = App::new(opts);
    let mut events = events;
    loop {
        let size = guard.terminal.size()?;
        load::prepare(&mut app, &store, size.width, size.height);
        guard.terminal.draw(|f| view::draw(f, &app))?;
        if event::poll(TICK)? {
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
                    Ok(e) => app.apply(e),
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
