//! The first screen of a fresh watch: nothing analyzed yet, so say where checkpoints are expected.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::style::{bold, dim, safe};
use crate::options::Mode;
use crate::state::App;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let lines = match app.mode {
        Mode::Live | Mode::Attached => vec![
            Line::styled(
                format!("Waiting for checkpoints in {}", safe(&app.title)),
                bold(),
            ),
            Line::raw(""),
            Line::raw("Each *.safetensors file written there (or in a run"),
            Line::raw("subdirectory) is analyzed as it appears; its layers"),
            Line::raw("and their phases show up here as soon as they are stored."),
            Line::raw(""),
            Line::styled(
                format!(
                    "queue {} · analyzing {} · done {}",
                    app.status.queued, app.status.in_flight, app.status.done
                ),
                dim(),
            ),
        ],
        Mode::Browse => vec![
            Line::styled(format!("No runs stored in {}", safe(&app.title)), bold()),
            Line::raw(""),
            Line::raw("Run `htsr-watch DIR` on a checkpoint directory to fill this store."),
        ],
    };
    let [_, mid, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(lines.len() as u16),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        mid,
    );
}
