//! Graceful shutdown: the first SIGINT or SIGTERM (or the dashboard quitting) asks the daemon to stop taking
//! work and to drop the checkpoint in flight without writing it; a second signal exits at once. Either way no
//! checkpoint is half-written: each is one atomic store batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use signal_hook::consts::{SIGINT, SIGTERM};

type Wakers = Arc<Mutex<Vec<Box<dyn Fn() + Send>>>>;

/// A cloneable "please stop" handle, with a callback that wakes the daemon's loop.
#[derive(Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    wakers: Wakers,
    /// Run before a second signal exits the process (the dashboard restores the terminal here).
    before_forced_exit: Wakers,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("requested", &self.is_requested())
            .finish()
    }
}

impl Shutdown {
    /// A handle with nothing requested and no callbacks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the daemon to stop. Idempotent.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        for wake in self.wakers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            wake();
        }
    }

    /// True once a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The flag itself, for workers that poll it between tensors.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    /// Registers a callback run on every trigger (the daemon sends itself a wake-up message).
    pub fn on_trigger(&self, wake: impl Fn() + Send + 'static) {
        self.wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(wake));
        if self.is_requested() {
            // Triggered before the daemon listened: wake it anyway.
            if let Some(w) = self.wakers.lock().unwrap_or_else(|e| e.into_inner()).last() {
                w();
            }
        }
    }

    /// Registers what must happen before a second signal exits the process at once.
    pub fn before_forced_exit(&self, f: impl Fn() + Send + 'static) {
        self.before_forced_exit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(f));
    }

    /// Installs the handlers: the first SIGINT/SIGTERM triggers this shutdown (and logs it); a further signal
    /// runs the `before_forced_exit` callbacks and exits at once with 128 + the signal number. Both are handled
    /// on a thread of their own, not in the signal handler, so that the terminal can be restored first.
    pub fn install_signal_handlers(&self) -> std::io::Result<()> {
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("htsr-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if me.is_requested() {
                        for f in me
                            .before_forced_exit
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .iter()
                        {
                            f();
                        }
                        std::process::exit(128 + sig);
                    }
                    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                    tracing::info!("{name}: finishing up (a second signal exits at once)");
                    me.trigger();
                }
            })?;
        Ok(())
    }
}
