//! How the binary starts the dashboard.

/// Where the dashboard's history comes from, and what quitting it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// In the daemon's own process (`htsr-watch DIR`): quitting stops the daemon.
    #[default]
    Live,
    /// A viewer attached to a running daemon (`htsr-watch browse`): live, and quitting leaves the daemon running.
    Attached,
    /// History only: no daemon runs on the store. Becomes [`Mode::Attached`] when one starts.
    Browse,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DashboardOptions {
    /// Shown in the header and on the waiting screen: the watched directory or the store's path.
    pub title: String,
    /// The run to show first; when None or unknown, the run that received a checkpoint last.
    pub initial_run: Option<String>,
    pub mode: Mode,
}
