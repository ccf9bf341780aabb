//! Drawing the dashboard into a string, for tests and for the binary's end-to-end checks: the same state,
//! loading and views as the terminal, on ratatui's `TestBackend`.

use htsr_api::History;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

use crate::options::DashboardOptions;
use crate::state::{load, App};
use crate::view;

/// Draws `app` (after bringing it up to date with `store`) at `width` x `height`; returns the screen's text,
/// one line per row, trailing spaces kept.
pub fn render_app(app: &mut App, store: &dyn History, width: u16, height: u16) -> String {
    let buf = render_buffer(app, store, width, height);
    let mut out = String::with_capacity((width as usize + 1) * height as usize);
    for y in 0..height {
        for x in 0..width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Draws `app` as [`render_app`] does and returns the cells themselves, with their colours, for tests that check
/// how something is drawn and not only what is written.
pub fn render_buffer(app: &mut App, store: &dyn History, width: u16, height: u16) -> Buffer {
    load::prepare(app, store, width, height);
    let mut terminal =
        Terminal::new(TestBackend::new(width, height)).expect("the test backend cannot fail");
    terminal
        .draw(|f| view::draw(f, app))
        .expect("the test backend cannot fail");
    terminal.backend().buffer().clone()
}

/// The first screen the dashboard would show for `store`.
pub fn render_to_string(
    store: &dyn History,
    opts: DashboardOptions,
    width: u16,
    height: u16,
) -> String {
    let mut app = App::new(opts);
    render_app(&mut app, store, width, height)
}
