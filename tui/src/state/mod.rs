//! The dashboard's state: plain data, no terminal. `load` fills it from the store, `live` applies the daemon's
//! events, `input` applies keys; `view` only reads it.

pub mod alerts;
pub mod detail;
pub mod history;
pub mod input;
pub mod layers;
pub mod live;
pub mod load;

use std::collections::{HashMap, VecDeque};

use htsr_api::{PhaseGrid, RunSummary};

use crate::options::{DashboardOptions, Mode};
use crate::smoothing::DEFAULT_WEIGHT;
use htsr_contracts::live::DaemonStatus;

pub use alerts::Alert;
pub use detail::{DetailModel, OverlayModel};
pub use history::History;
pub use layers::LayerRow;

/// The four screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Layers,
    PhaseMap,
    Detail,
    Runs,
}

impl View {
    pub const TABS: [View; 4] = [View::Layers, View::PhaseMap, View::Detail, View::Runs];

    pub fn title(self) -> &'static str {
        match self {
            View::Layers => "Layers",
            View::PhaseMap => "Phase map",
            View::Detail => "Layer detail",
            View::Runs => "Runs",
        }
    }
}

/// The selected run's newest checkpoint, as the Layers table shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunModel {
    pub run: String,
    pub latest_step: u64,
    pub prev_step: Option<u64>,
    pub checkpoints: usize,
    pub rows: Vec<LayerRow>,
}

/// A scrolling list position: the selected item and the first item on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub selected: usize,
    pub offset: usize,
}

impl Cursor {
    /// Moves by `delta` within `len` items.
    pub fn step(&mut self, delta: isize, len: usize) {
        if len == 0 {
            *self = Cursor::default();
            return;
        }
        self.selected = (self.selected as isize + delta).clamp(0, len as isize - 1) as usize;
    }

    /// Scrolls so that the selection is on screen in a window of `rows` items.
    pub fn keep_visible(&mut self, rows: usize, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
        let rows = rows.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + rows {
            self.offset = self.selected + 1 - rows;
        }
        self.offset = self.offset.min(len.saturating_sub(rows));
    }
}

/// What must be re-read from the store before the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dirty {
    pub runs: bool,
    pub run: bool,
    pub grid: bool,
    pub overlay: bool,
}

impl Dirty {
    pub fn all() -> Self {
        Dirty {
            runs: true,
            run: true,
            grid: true,
            overlay: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub title: String,
    pub mode: Mode,
    pub view: View,
    /// Where esc goes back to.
    pub back: Vec<View>,
    pub help: bool,
    pub quit: bool,

    pub runs: Vec<RunSummary>,
    pub runs_cursor: Cursor,
    pub initial_run: Option<String>,
    /// The run shown; `model` is loaded for it.
    pub run: Option<String>,
    /// The user chose `run` (in the Runs view, or on the command line): new checkpoints of other runs no longer
    /// switch to them.
    pub run_picked: bool,
    pub model: Option<RunModel>,
    /// Rows of `model` that pass the filter, as indices into `model.rows`.
    pub filtered: Vec<usize>,
    pub layers_cursor: Cursor,
    /// The selected layer by name, so that reloads and filters keep it.
    pub selected_layer: Option<String>,
    pub filter: String,
    pub filter_editing: bool,

    pub grid: PhaseGrid,
    /// Columns the grid was loaded for.
    pub grid_columns: usize,
    pub alerts: Vec<Alert>,
    /// Sparkline histories by layer name (bounded per layer, see `history`).
    pub histories: HashMap<String, History>,

    pub detail: Option<DetailModel>,
    /// Checkpoint chosen in the detail view, as an index into its trajectory; None follows the newest.
    pub detail_cursor: Option<usize>,
    pub overlay: Option<OverlayModel>,

    pub smoothing: bool,
    pub smoothing_weight: f64,
    pub paused: bool,
    /// Checkpoints stored while paused, not yet shown.
    pub unseen: u64,

    pub status: DaemonStatus,
    pub analyzing: Option<(String, u64)>,
    pub daemon_gone: bool,
    pub messages: VecDeque<String>,
    /// The newest message has not been seen: the footer shows it until the next key.
    pub message_unread: bool,
    pub dirty: Dirty,
    /// Terminal size the state was last prepared for.
    pub size: (u16, u16),
}

/// Messages kept for the footer; older ones are dropped.
pub const MAX_MESSAGES: usize = 50;

impl App {
    pub fn new(opts: DashboardOptions) -> Self {
        App {
            title: opts.title,
            mode: opts.mode,
            view: View::Layers,
            back: Vec::new(),
            help: false,
            quit: false,
            runs: Vec::new(),
            runs_cursor: Cursor::default(),
            run_picked: opts.initial_run.is_some(),
            initial_run: opts.initial_run,
            run: None,
            model: None,
            filtered: Vec::new(),
            layers_cursor: Cursor::default(),
            selected_layer: None,
            filter: String::new(),
            filter_editing: false,
            grid: PhaseGrid::default(),
            grid_columns: 0,
            alerts: Vec::new(),
            histories: HashMap::new(),
            detail: None,
            detail_cursor: None,
            overlay: None,
            smoothing: true,
            smoothing_weight: DEFAULT_WEIGHT,
            paused: false,
            unseen: 0,
            status: DaemonStatus::default(),
            analyzing: None,
            daemon_gone: false,
            messages: VecDeque::new(),
            message_unread: false,
            dirty: Dirty::all(),
            size: (0, 0),
        }
    }

    pub fn run_name(&self) -> Option<&str> {
        self.model.as_ref().map(|m| m.run.as_str())
    }

    /// The rows on screen in the Layers table, in order.
    pub fn visible_rows(&self) -> impl Iterator<Item = &LayerRow> {
        let rows = self
            .model
            .as_ref()
            .map(|m| m.rows.as_slice())
            .unwrap_or(&[]);
        self.filtered.iter().map(move |&i| &rows[i])
    }

    pub fn selected_row(&self) -> Option<&LayerRow> {
        let m = self.model.as_ref()?;
        self.filtered
            .get(self.layers_cursor.selected)
            .map(|&i| &m.rows[i])
    }

    /// Shows another run: its rows, grid and details are loaded before the next frame.
    pub fn switch_run(&mut self, run: String) {
        if self.run.as_deref() == Some(run.as_str()) {
            return;
        }
        self.run = Some(run);
        self.model = None;
        self.filtered.clear();
        self.histories.clear();
        self.detail = None;
        self.detail_cursor = None;
        self.grid = PhaseGrid::default();
        self.alerts.clear();
        self.unseen = 0;
        self.dirty.run = true;
        self.dirty.grid = true;
    }

    pub fn push_message(&mut self, text: String) {
        if self.messages.len() >= MAX_MESSAGES {
            self.messages.pop_front();
        }
        self.messages.push_back(text);
        self.message_unread = true;
    }

    /// Recomputes the filtered rows and keeps the selected layer selected when it still passes.
    pub fn refilter(&mut self) {
        let Some(m) = &self.model else {
            self.filtered.clear();
            return;
        };
        self.filtered = layers::filtered(&m.rows, &self.filter);
        if let Some(name) = &self.selected_layer {
            if let Some(pos) = self.filtered.iter().position(|&i| &m.rows[i].name == name) {
                self.layers_cursor.selected = pos;
                return;
            }
        }
        self.layers_cursor.step(0, self.filtered.len());
        self.sync_selected_name();
    }

    /// Records the name under the cursor as the selected layer.
    pub fn sync_selected_name(&mut self) {
        if let Some(name) = self.selected_row().map(|r| r.name.clone()) {
            self.selected_layer = Some(name);
        }
    }
}
