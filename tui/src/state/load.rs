//! Reading from the store into the view models, just what the next frame shows.
//!
//! Called once per loop iteration before drawing; each part re-reads only when marked dirty or when what is
//! on screen changed. The costs are bounded by the screen, not by the run's length: the newest two
//! checkpoints' reports, one phase row per grid column, trajectories of the layers on screen (kept as bounded
//! histories), and the selected layer's trajectory.

use htsr_api::Result;
use ratatui::layout::Rect;

use super::detail::{thin, DetailModel, OverlayModel};
use super::{alerts, history::History, layers, App, RunModel, View};
use crate::layout;

/// Points per run in the Runs overlay; a chart has fewer cells than that.
const OVERLAY_POINTS: usize = 400;

/// Brings `app` up to date with `store` for a terminal of `width` x `height`. A failed read is reported in the
/// footer rather than ending the dashboard: the daemon may be mid-write, and the next frame tries again.
pub fn prepare(app: &mut App, store: &dyn htsr_api::History, width: u16, height: u16) {
    if let Err(e) = prepare_inner(app, store, width, height) {
        app.push_message(format!("could not read the store: {e}"));
    }
}

fn prepare_inner(
    app: &mut App,
    store: &dyn htsr_api::History,
    width: u16,
    height: u16,
) -> Result<()> {
    app.size = (width, height);
    let body = layout::screen(Rect::new(0, 0, width, height)).body;
    if app.dirty.runs {
        app.dirty.runs = false;
        app.runs = store.runs()?;
        app.runs_cursor.step(0, app.runs.len());
        if app.run.is_none() {
            let wanted = app
                .initial_run
                .as_deref()
                .filter(|w| app.runs.iter().any(|r| r.run == *w));
            if let Some(run) = wanted.map(str::to_string).or_else(|| newest_run(&app.runs)) {
                app.switch_run(run);
            }
        }
        if let Some(i) = app
            .runs
            .iter()
            .position(|r| Some(&r.run) == app.run.as_ref())
        {
            if app.view != View::Runs {
                app.runs_cursor.selected = i;
            }
        }
    }
    if app.dirty.run {
        app.dirty.run = false;
        app.dirty.grid = true;
        load_run(app, store)?;
    }
    app.layers_cursor
        .keep_visible(layout::table_rows(body), app.filtered.len());
    let columns = layout::grid_columns(body);
    if app.dirty.grid || columns != app.grid_columns {
        app.dirty.grid = false;
        app.grid_columns = columns;
        if let Some(run) = app.run.clone() {
            app.grid = store.phase_grid(&run, Some(columns), None)?;
        }
        app.alerts = alerts::alerts(app.model.as_ref().map_or(&[], |m| &m.rows), &app.grid);
    }
    load_histories(app, store, layout::table_rows(body))?;
    if app.view == View::Detail {
        load_detail(app, store)?;
    }
    if app.view == View::Runs {
        load_overlay(app, store)?;
    }
    Ok(())
}

/// The run that received a checkpoint last (the one a user starting the dashboard is most likely training now);
/// the first by name among runs stored at the same instant.
fn newest_run(runs: &[htsr_api::RunSummary]) -> Option<String> {
    runs.iter()
        .rev()
        .max_by(|a, b| a.last_stored_at.total_cmp(&b.last_stored_at))
        .map(|r| r.run.clone())
}

/// The newest checkpoint's rows, paired with the previous checkpoint's for the change column.
fn load_run(app: &mut App, store: &dyn htsr_api::History) -> Result<()> {
    let Some(run) = app.run.clone() else {
        return Ok(());
    };
    let steps = store.steps(&run)?;
    let Some(&latest) = steps.last() else {
        app.model = None;
        app.refilter();
        return Ok(());
    };
    let prev = steps.len().checked_sub(2).map(|i| steps[i]);
    let latest_reports = store.layers_at(&run, latest)?;
    // Live, the previous checkpoint is the one already on screen: take its numbers from the rows held
    // instead of decoding its reports again (that halves the cost of a new checkpoint).
    let held = app
        .model
        .as_ref()
        .filter(|m| m.run == run && Some(m.latest_step) == prev);
    let rows = match held {
        Some(m) => {
            let by_name = m
                .rows
                .iter()
                .map(|r| (r.name.as_str(), (r.alpha, r.phase)))
                .collect();
            layers::rows_after(&latest_reports, &by_name)
        }
        None => {
            let prev_reports = match prev {
                Some(p) => store.layers_at(&run, p)?,
                None => Vec::new(),
            };
            layers::rows(&latest_reports, &prev_reports)
        }
    };
    // Extend the histories already held by the new checkpoint instead of re-reading them; a history that
    // missed a checkpoint (several arrived between two frames) is dropped and re-read when shown.
    for row in &rows {
        if let Some(h) = app.histories.get_mut(&row.name) {
            if h.last_step == Some(latest) {
                continue;
            }
            if h.last_step.is_some() && h.last_step == prev {
                h.push(latest, row.alpha);
            } else {
                app.histories.remove(&row.name);
            }
        }
    }
    app.model = Some(RunModel {
        run,
        latest_step: latest,
        prev_step: prev,
        checkpoints: steps.len(),
        rows,
    });
    // The selected layer's trajectory and the runs overlay grew too.
    app.detail = None;
    app.dirty.overlay = true;
    app.refilter();
    Ok(())
}

/// Sparkline histories for the rows on screen that have none yet.
fn load_histories(
    app: &mut App,
    store: &dyn htsr_api::History,
    rows_on_screen: usize,
) -> Result<()> {
    let Some(m) = &app.model else { return Ok(()) };
    let start = app.layers_cursor.offset;
    let wanted: Vec<String> = app
        .filtered
        .iter()
        .skip(start)
        .take(rows_on_screen)
        .map(|&i| m.rows[i].name.clone())
        .filter(|n| !app.histories.contains_key(n))
        .collect();
    let run = m.run.clone();
    for name in wanted {
        let mut h = History::new();
        for p in store.trajectory(&run, &name)? {
            h.push(p.step, p.alpha);
        }
        app.histories.insert(name, h);
    }
    Ok(())
}

/// The selected layer's trajectory and the report of the chosen checkpoint.
fn load_detail(app: &mut App, store: &dyn htsr_api::History) -> Result<()> {
    let (Some(run), Some(layer)) = (app.run.clone(), app.selected_layer.clone()) else {
        return Ok(());
    };
    let stale = app
        .detail
        .as_ref()
        .is_none_or(|d| d.run != run || d.layer != layer);
    if stale {
        let points = store.trajectory(&run, &layer)?;
        let losses = htsr_api::loss_series(&store.checkpoints(&run)?);
        app.detail = Some(DetailModel {
            run: run.clone(),
            layer: layer.clone(),
            points,
            report: None,
            losses,
        });
    }
    let Some(d) = app.detail.as_mut() else {
        return Ok(());
    };
    if let Some(i) = d.index(app.detail_cursor) {
        let step = d.points[i].step;
        if d.report.as_ref().map(|r| r.0) != Some(step) {
            d.report = Some((step, store.layer_report(&run, step, &layer)?));
        }
    }
    Ok(())
}

/// The selected layer's alpha in every run.
fn load_overlay(app: &mut App, store: &dyn htsr_api::History) -> Result<()> {
    let Some(layer) = app.selected_layer.clone() else {
        return Ok(());
    };
    if !app.dirty.overlay && app.overlay.as_ref().is_some_and(|o| o.layer == layer) {
        return Ok(());
    }
    app.dirty.overlay = false;
    let mut series = Vec::new();
    for r in &app.runs {
        let pts: Vec<(f64, f64)> = store
            .trajectory(&r.run, &layer)?
            .iter()
            .filter_map(|p| Some((p.step as f64, p.alpha?)))
            .collect();
        if !pts.is_empty() {
            series.push((r.run.clone(), thin(pts, OVERLAY_POINTS)));
        }
    }
    app.overlay = Some(OverlayModel { layer, series });
    Ok(())
}
