//! Entering and leaving the dashboard's terminal mode. The terminal is restored on every exit path: on drop of
//! the guard (return, `?`, unwinding) and, before the message is printed, in a panic hook, as bottom and
//! tokio-console do, so that a panic's message is readable and the shell is usable afterwards.

use std::io::{self, Stdout};
use std::panic::{self, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, ThreadId};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

type Hook = Arc<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Whether a dashboard owns the terminal now (raw mode, alternate screen).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Restores the terminal if a dashboard owns it; does nothing (writes nothing) otherwise. For exit paths outside
/// the dashboard's thread, such as the daemon's "second signal exits at once".
pub fn restore_if_active() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        restore();
    }
}

/// Undoes everything `TerminalGuard::enter` did. Safe to call more than once; errors are ignored because this
/// runs while leaving, when nothing better can be done with them.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
}

pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
    previous_hook: Hook,
}

impl TerminalGuard {
    /// Raw mode, alternate screen, mouse capture, and a panic hook that restores the terminal first.
    pub fn enter() -> io::Result<Self> {
        let previous_hook: Hook = Arc::from(panic::take_hook());
        let chained = previous_hook.clone();
        let owner = thread::current().id();
        panic::set_hook(Box::new(move |info| panic_hook(owner, info, &*chained)));
        let setup = || -> io::Result<Terminal<CrosstermBackend<Stdout>>> {
            enable_raw_mode()?;
            execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
            let mut t = Terminal::new(CrosstermBackend::new(io::stdout()))?;
            t.clear()?;
            Ok(t)
        };
        match setup() {
            Ok(terminal) => {
                ACTIVE.store(true, Ordering::SeqCst);
                Ok(TerminalGuard {
                    terminal,
                    previous_hook,
                })
            }
            Err(e) => {
                restore();
                let prev = previous_hook.clone();
                panic::set_hook(Box::new(move |info| prev(info)));
                Err(e)
            }
        }
    }
}

/// The panic hook while the dashboard runs. A panic on the dashboard's thread ends it: restore the terminal, then
/// print. A panic on another thread (a daemon worker, which catches it and stores the layer as failed) must not
/// tear the dashboard down, nor print over it; its message reaches the user through the failed record.
fn panic_hook(
    owner: ThreadId,
    info: &PanicHookInfo<'_>,
    previous: &(dyn Fn(&PanicHookInfo<'_>) + Sync + Send),
) {
    if thread::current().id() == owner {
        restore_if_active();
        previous(info);
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ACTIVE.store(false, Ordering::SeqCst);
        restore();
        // Put the caller's hook back so that later panics print as they did before the dashboard.
        if !std::thread::panicking() {
            let prev = self.previous_hook.clone();
            panic::set_hook(Box::new(move |info| prev(info)));
        }
    }
}
