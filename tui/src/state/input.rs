//! Keys and mouse to state changes. crossterm's event types are plain data, so this stays testable without a
//! terminal: tests feed `KeyEvent`s and look at the state.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};

use super::{App, View};

/// Rows moved by page up/down.
const PAGE: isize = 10;

impl App {
    pub fn handle_event(&mut self, event: Event) {
        match event {
            Event::Key(k) if k.kind != KeyEventKind::Release => self.handle_key(k),
            Event::Mouse(m) => match m.kind {
                MouseEventKind::ScrollDown => self.move_selection(1),
                MouseEventKind::ScrollUp => self.move_selection(-1),
                _ => {}
            },
            _ => {}
        }
    }

    pub fn handle_key(&mut self, k: KeyEvent) {
        self.message_unread = false;
        if k.modifiers.contains(KeyModifiers::CONTROL) && matches!(k.code, KeyCode::Char('c')) {
            self.quit = true;
            return;
        }
        if self.filter_editing {
            self.filter_key(k);
            return;
        }
        if self.help {
            // Any key closes the help screen; q still quits.
            self.help = false;
            if k.code == KeyCode::Char('q') {
                self.quit = true;
            }
            return;
        }
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::PageDown => self.move_selection(PAGE),
            KeyCode::PageUp => self.move_selection(-PAGE),
            KeyCode::Home | KeyCode::Char('g') => self.move_selection(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_selection(isize::MAX / 2),
            KeyCode::Left | KeyCode::Char('h') => self.move_checkpoint(-1),
            KeyCode::Right | KeyCode::Char('l') => self.move_checkpoint(1),
            KeyCode::Tab => self.cycle_view(1),
            KeyCode::BackTab => self.cycle_view(-1),
            KeyCode::Char(c @ '1'..='4') => self.go(View::TABS[(c as u8 - b'1') as usize]),
            KeyCode::Enter => self.enter(),
            KeyCode::Esc => self.escape(),
            KeyCode::Char('/') => self.filter_editing = true,
            KeyCode::Char('s') => self.smoothing = !self.smoothing,
            KeyCode::Char('p') => self.set_paused(!self.paused),
            KeyCode::Char('r') => self.go(View::Runs),
            _ => {}
        }
    }

    fn filter_key(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Enter => self.filter_editing = false,
            KeyCode::Esc => {
                self.filter_editing = false;
                self.filter.clear();
                self.refilter();
            }
            KeyCode::Backspace => {
                self.filter.pop();
                self.refilter();
            }
            KeyCode::Char(c) => {
                self.filter.push(c);
                self.refilter();
            }
            _ => {}
        }
    }

    /// Shows `view`, remembering where esc goes back to.
    pub fn go(&mut self, view: View) {
        if view != self.view {
            self.back.push(self.view);
            if self.back.len() > 16 {
                self.back.remove(0);
            }
            self.view = view;
        }
    }

    fn cycle_view(&mut self, by: isize) {
        let i = View::TABS.iter().position(|v| *v == self.view).unwrap_or(0) as isize;
        let n = View::TABS.len() as isize;
        self.view = View::TABS[((i + by).rem_euclid(n)) as usize];
    }

    fn enter(&mut self) {
        match self.view {
            View::Layers | View::PhaseMap => {
                if self.selected_row().is_some() {
                    self.detail_cursor = None;
                    self.go(View::Detail);
                }
            }
            View::Runs => {
                if let Some(run) = self
                    .runs
                    .get(self.runs_cursor.selected)
                    .map(|r| r.run.clone())
                {
                    self.switch_run(run);
                    self.run_picked = true;
                    self.go(View::Layers);
                }
            }
            View::Detail => {}
        }
    }

    fn escape(&mut self) {
        if !self.filter.is_empty() && matches!(self.view, View::Layers | View::PhaseMap) {
            self.filter.clear();
            self.refilter();
            return;
        }
        if let Some(v) = self.back.pop() {
            self.view = v;
        } else if self.view != View::Layers {
            self.view = View::Layers;
        }
    }

    /// Up/down: runs in the Runs view, layers everywhere else (the detail view follows the selected layer).
    pub fn move_selection(&mut self, by: isize) {
        if self.view == View::Runs {
            self.runs_cursor.step(by, self.runs.len());
            return;
        }
        self.layers_cursor.step(by, self.filtered.len());
        let before = self.selected_layer.clone();
        self.sync_selected_name();
        if before != self.selected_layer {
            self.detail_cursor = None;
        }
    }

    /// Left/right through the selected layer's checkpoints in the detail view.
    fn move_checkpoint(&mut self, by: isize) {
        if self.view != View::Detail {
            return;
        }
        let Some(d) = &self.detail else { return };
        let Some(i) = d.index(self.detail_cursor) else {
            return;
        };
        let last = d.points.len() - 1;
        let j = (i as isize + by).clamp(0, last as isize) as usize;
        // Reaching the newest again follows new checkpoints as they arrive.
        self.detail_cursor = (j != last).then_some(j);
    }
}
