//! How the binary starts the dashboard.

/// Whether a daemon feeds the dashboard, or it only browses a store's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A daemon is analyzing checkpoints and sends [`htsr_contracts::LiveEvent`]s.
    #[default]
    Live,
    /// History only (`htsr-watch browse`): nothing new will arrive.
    Browse,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DashboardOptions {
    /// Shown in the header and on the waiting screen: the watched directory or the store's path.
    pub title: String,
    /// The run to show first; the first run by name when None or unknown.
    pub initial_run: Option<String>,
    pub mode: Mode,
}
