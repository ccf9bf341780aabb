//! Drawing: pure functions of the state into a ratatui `Frame`. Nothing here reads the store or changes state.

mod chrome;
mod detail;
mod empty;
mod help;
mod layers;
mod phase_map;
mod runs;
pub mod sparkline;
pub mod style;

use ratatui::Frame;

use crate::layout;
use crate::state::{App, View};

/// Draws one frame of the whole dashboard.
pub fn draw(frame: &mut Frame, app: &App) {
    let screen = layout::screen(frame.area());
    chrome::header(frame, screen.header, app);
    if app.model.is_none() && app.runs.is_empty() {
        empty::draw(frame, screen.body, app);
    } else {
        match app.view {
            View::Layers => layers::draw(frame, screen.body, app),
            View::PhaseMap => phase_map::draw(frame, screen.body, app),
            View::Detail => detail::draw(frame, screen.body, app),
            View::Runs => runs::draw(frame, screen.body, app),
        }
    }
    chrome::footer(frame, screen.footer, app);
    if app.help {
        help::draw(frame, frame.area());
    }
    no_control_characters(frame.buffer_mut());
}

/// The views draw names through [`style::clip`] and [`style::safe`], which show control characters and
/// bidirectional overrides as visible escapes. This last pass guarantees it for whatever else a checkpoint's text
/// reaches: no cell leaves with a character that could steer the terminal (the dashboard itself draws none).
fn no_control_characters(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        if cell.symbol().chars().any(htsr_contracts::text::is_unsafe) {
            cell.set_symbol("\u{fffd}");
        }
    }
}
