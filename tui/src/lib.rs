//! htsr-tui: the ratatui dashboard. It never computes a spectrum: it draws what the store holds and what the
//! daemon's live channel brings.
//!
//! Shaped like tokio-console: `state` is plain data (loaded from the store, changed by keys and live events),
//! `view` draws it, `dashboard` is the one loop between them, `terminal` restores the screen on every exit.

pub mod dashboard;
pub mod layout;
pub mod options;
pub mod render;
pub mod smoothing;
pub mod state;
pub mod terminal;
pub mod view;

pub use dashboard::run_dashboard;

pub use options::{DashboardOptions, Mode};
pub use render::{render_app, render_buffer, render_to_string};
pub use state::{App, View};
