//! View 3, Layer detail: alpha over steps (raw and smoothed), the phase strip, and the ESD of the chosen
//! checkpoint on log-log axes with the power-law fit from xmin and the Marchenko-Pastur bulk edges.
//!
//! ratatui's Chart has linear axes only, so the ESD is plotted as log10 values.

use htsr_api::TrajectoryPoint;
use htsr_contracts::{EsdHistogram, LayerReport, Phase};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, LegendPosition, Paragraph};
use ratatui::Frame;

use super::style::{self, bold, dim, num, phase_glyph, phase_style};
use crate::layout;
use crate::state::detail::thin;
use crate::state::App;

/// Width of the y-axis labels of both charts, fixed so that the phase strip can line up under the alpha chart.
const Y_LABEL: usize = 6;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let (info, alpha, strip, esd) = layout::detail(area);
    let Some(d) = app
        .detail
        .as_ref()
        .filter(|d| Some(&d.layer) == app.selected_layer.as_ref())
    else {
        frame.render_widget(
            Paragraph::new("select a layer in the Layers view and press enter").style(dim()),
            info,
        );
        return;
    };
    let idx = d.index(app.detail_cursor);
    let point = idx.map(|i| &d.points[i]);
    let report = d.report.as_ref().and_then(|r| r.1.as_ref());
    frame.render_widget(
        Paragraph::new(info_lines(
            app,
            &d.layer,
            point,
            report,
            idx,
            d.points.len(),
        )),
        info,
    );
    draw_alpha(frame, alpha, app, point);
    draw_strip(frame, strip, &d.points);
    match report.and_then(|r| r.esd.as_ref()) {
        Some(h) => draw_esd(frame, esd, h, point.map_or(0, |p| p.step)),
        None => {
            let why = report
                .and_then(|r| r.reason.clone())
                .unwrap_or_else(|| "no ESD stored for this checkpoint".into());
            frame.render_widget(
                Paragraph::new(why)
                    .style(dim())
                    .block(Block::bordered().title(" ESD ")),
                esd,
            );
        }
    }
}

fn info_lines(
    app: &App,
    layer: &str,
    p: Option<&TrajectoryPoint>,
    report: Option<&LayerReport>,
    idx: Option<usize>,
    n: usize,
) -> Vec<Line<'static>> {
    let mut first = vec![Span::styled(super::style::safe(layer), bold())];
    if let Some(r) = report {
        let shape = r.shape_text();
        first.push(Span::raw(format!(" · {shape} {}", r.layer_type.as_str())));
    }
    let Some(p) = p else {
        return vec![
            Line::from(first),
            Line::styled("no checkpoints for this layer", dim()),
        ];
    };
    let follow = if app.detail_cursor.is_none() {
        " (newest)"
    } else {
        ""
    };
    first.push(Span::raw(format!(
        " · step {} [{}/{n}]{follow} · ",
        p.step,
        idx.map_or(0, |i| i + 1)
    )));
    match p.phase {
        Some(ph) => first.push(Span::styled(
            format!("{} {}", phase_glyph(ph), ph.as_str()),
            phase_style(ph),
        )),
        None => first.push(Span::styled(p.status.as_str().to_string(), style::warn())),
    }
    let mut second = vec![Span::raw(format!(
        "alpha {} ±{}",
        num(p.alpha, 3),
        num(p.sigma, 2)
    ))];
    if app.smoothing {
        let s = app
            .detail
            .as_ref()
            .map(|d| d.smoothed_series(app.smoothing_weight))
            .unwrap_or_default();
        let sv = s
            .iter()
            .rev()
            .find(|(x, _)| *x <= p.step as f64)
            .map(|q| q.1);
        second.push(Span::styled(
            format!(" (smoothed {})", num(sv, 3)),
            Style::new().fg(Color::Cyan),
        ));
    }
    let xmin = report.and_then(|r| r.power_law.as_ref()).map(|f| f.xmin);
    let erg_gap = report.and_then(|r| r.erg.as_ref()).and_then(|e| e.ERG_gap);
    second.push(Span::raw(format!(
        " · D {} · spikes {} · softrank {} · xmin {} · tail {} · ERG gap {}",
        num(p.d, 3),
        p.num_spikes.map_or("-".into(), |v| v.to_string()),
        num(p.mp_softrank, 3),
        xmin.map_or("-".into(), |x| format!("{x:.3e}")),
        p.num_pl_spikes.map_or("-".into(), |v| v.to_string()),
        erg_gap.map_or("-".into(), |g| format!("{g:+}")),
    )));
    if let Some(reason) = report.and_then(|r| r.reason.clone()) {
        second.push(Span::styled(format!(" · {reason}"), style::warn()));
    } else if !p.warning.as_str().is_empty() {
        second.push(Span::styled(
            format!(" · {}", p.warning.as_str()),
            style::warn(),
        ));
    }
    vec![Line::from(first), Line::from(second)]
}

/// [lo, hi] padded so that a flat series still has a drawable range.
fn bounds(vals: impl Iterator<Item = f64>) -> [f64; 2] {
    let (lo, hi) = vals
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return [0.0, 1.0];
    }
    let pad = ((hi - lo) * 0.05).max(0.05);
    [lo - pad, hi + pad]
}

fn labels(b: [f64; 2], decimals: usize) -> Vec<Line<'static>> {
    let mid = (b[0] + b[1]) / 2.0;
    [b[0], mid, b[1]]
        .iter()
        .map(|v| Line::from(format!("{v:>w$.decimals$}", w = Y_LABEL - 1)))
        .collect()
}

fn step_labels(b: [f64; 2]) -> Vec<Line<'static>> {
    vec![
        Line::from(format!("{}", b[0] as u64)),
        Line::from(format!("{}", b[1] as u64)).right_aligned(),
    ]
}

fn draw_alpha(frame: &mut Frame, area: Rect, app: &App, chosen: Option<&TrajectoryPoint>) {
    let Some(d) = &app.detail else { return };
    let max_pts = (area.width as usize * 2).max(2);
    let raw = thin(d.alpha_series(), max_pts);
    let smooth = if app.smoothing {
        thin(d.smoothed_series(app.smoothing_weight), max_pts)
    } else {
        Vec::new()
    };
    let mark: Vec<(f64, f64)> = chosen
        .and_then(|p| Some((p.step as f64, p.alpha?)))
        .into_iter()
        .collect();
    let xb = match (d.points.first(), d.points.last()) {
        (Some(a), Some(b)) if b.step > a.step => [a.step as f64, b.step as f64],
        (Some(a), _) => [a.step as f64, a.step as f64 + 1.0],
        _ => [0.0, 1.0],
    };
    let yb = bounds(raw.iter().map(|p| p.1));
    let mut sets = vec![Dataset::default()
        .name("raw")
        .marker(Marker::Braille)
        .graph_type(if app.smoothing {
            GraphType::Scatter
        } else {
            GraphType::Line
        })
        .style(Style::new().fg(if app.smoothing {
            Color::DarkGray
        } else {
            Color::Cyan
        }))
        .data(&raw)];
    if app.smoothing {
        sets.push(
            Dataset::default()
                .name(format!("smoothed {}", app.smoothing_weight))
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Cyan))
                .data(&smooth),
        );
    }
    // The training loss on alpha's axis, its own range in its legend entry.
    let (loss, loss_range) = htsr_api::rescale(&thin(d.losses.clone(), max_pts), yb[0], yb[1]);
    if let Some((lo, hi)) = loss_range {
        sets.push(
            Dataset::default()
                .name(format!("loss {lo:.3}..{hi:.3}"))
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::LightMagenta))
                .data(&loss),
        );
    }
    sets.push(
        Dataset::default()
            .name("chosen")
            .marker(Marker::Block)
            .style(Style::new().fg(Color::Yellow))
            .data(&mark),
    );
    let title = format!(
        " alpha over steps · smoothing {} (s) ",
        if app.smoothing { "on" } else { "off" }
    );
    let chart = Chart::new(sets)
        .block(Block::default().title(Line::styled(title, bold())))
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Ratio(1, 3), Constraint::Ratio(2, 3)))
        .x_axis(
            Axis::default()
                .bounds(xb)
                .labels(step_labels(xb))
                .style(dim()),
        )
        .y_axis(
            Axis::default()
                .bounds(yb)
                .labels(labels(yb, 2))
                .style(dim()),
        );
    frame.render_widget(chart, area);
}

/// The phase at each column across the alpha chart's width, under its plot area.
fn draw_strip(frame: &mut Frame, area: Rect, points: &[TrajectoryPoint]) {
    let label = format!("{:>w$}", "phase ", w = Y_LABEL);
    let width = (area.width as usize).saturating_sub(label.chars().count());
    let mut spans = vec![Span::styled(label, dim())];
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
        return;
    };
    // Each column shows the phase of the newest point at or before its step, matching the chart's x scale.
    let span = (last.step - first.step).max(1) as f64;
    let mut j = 0;
    let mut prev: Option<(Option<Phase>, String)> = None;
    for c in 0..width {
        let x = first.step as f64 + span * c as f64 / (width.max(2) - 1) as f64;
        while j + 1 < points.len() && points[j + 1].step as f64 <= x {
            j += 1;
        }
        let ph = points[j].phase;
        let g = ph.map_or(" ", phase_glyph);
        match &mut prev {
            Some((p, s)) if *p == ph => s.push_str(g),
            _ => {
                if let Some((p, s)) = prev.take() {
                    spans.push(Span::styled(s, p.map_or(Style::new(), phase_style)));
                }
                prev = Some((ph, g.to_string()));
            }
        }
    }
    if let Some((p, s)) = prev {
        spans.push(Span::styled(s, p.map_or(Style::new(), phase_style)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn line<'a>(name: String, color: Color, data: &'a [(f64, f64)]) -> Dataset<'a> {
    Dataset::default()
        .name(name)
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(color))
        .data(data)
}

/// The ESD as log10 density over log10 lambda, with the fits drawn as lines.
fn draw_esd(frame: &mut Frame, area: Rect, h: &EsdHistogram, step: u64) {
    let total = h.total().max(1) as f64;
    let w = (h.log10_hi - h.log10_lo) / h.counts.len().max(1) as f64;
    let mut esd = Vec::new();
    for (i, &c) in h.counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let (a, b) = h.bin_edges(i);
        let x = h.log10_lo + w * (i as f64 + 0.5);
        esd.push((x, (c as f64 / (total * (b - a))).log10()));
    }
    let xb = [h.log10_lo, h.log10_hi.max(h.log10_lo + 1e-6)];
    let yb = bounds(esd.iter().map(|p| p.1));
    let vline = |x: f64| vec![(x, yb[0]), (x, yb[1])];
    // The power law from xmin, anchored where every view anchors it, falls with slope -alpha in log-log.
    let fit: Vec<(f64, f64)> = match (h.power_law_anchor(), h.alpha, h.xmin) {
        (Some(y0), Some(alpha), Some(xmin)) if y0 > 0.0 => {
            let (lx, ly) = (xmin.log10(), y0.log10());
            let x1 = h.lambda_max.max(xmin).log10();
            vec![(lx, ly), (x1, ly - alpha * (x1 - lx))]
        }
        _ => Vec::new(),
    };
    let xmin_line = h
        .xmin
        .filter(|x| *x > 0.0)
        .map(|x| vline(x.log10()))
        .unwrap_or_default();
    let detx_line = h
        .detx_val
        .filter(|x| *x > 0.0)
        .map(|x| vline(x.log10()))
        .unwrap_or_default();
    let bulk_lo = h
        .bulk_min
        .filter(|x| *x > 0.0)
        .map(|x| vline(x.log10()))
        .unwrap_or_default();
    let bulk_hi = h
        .bulk_max
        .filter(|x| *x > 0.0)
        .map(|x| vline(x.log10()))
        .unwrap_or_default();
    let sets = vec![
        line("ESD".into(), Color::White, &esd),
        line(
            format!("PL alpha {}", num(h.alpha, 2)),
            Color::LightRed,
            &fit,
        ),
        line(
            format!("xmin {}", h.xmin.map_or("-".into(), |x| format!("{x:.2e}"))),
            Color::Yellow,
            &xmin_line,
        ),
        line(
            format!(
                "detX {}",
                h.detx_val.map_or("-".into(), |x| format!("{x:.2e}"))
            ),
            Color::Magenta,
            &detx_line,
        ),
        line("MP bulk edges".into(), Color::Blue, &bulk_lo),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Blue))
            .data(&bulk_hi),
    ];
    // The fits are named in the title as well as the legend: the legend does not fit small terminals.
    let e = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1e}"));
    let title = format!(
        " ESD step {step} · log-log · power law α {} from xmin {} (detX {}) · MP bulk {}..{} · λmax {:.1e}{} ",
        num(h.alpha, 2),
        e(h.xmin),
        e(h.detx_val),
        e(h.bulk_min),
        e(h.bulk_max),
        h.lambda_max,
        if h.zeros > 0 { format!(" · {} zeros", h.zeros) } else { String::new() }
    );
    let chart = Chart::new(sets)
        .block(Block::default().title(Line::styled(title, bold())))
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Ratio(1, 3), Constraint::Ratio(2, 3)))
        .x_axis(
            Axis::default()
                .bounds(xb)
                .labels(labels(xb, 1))
                .style(dim()),
        )
        .y_axis(
            Axis::default()
                .bounds(yb)
                .labels(labels(yb, 1))
                .style(dim()),
        );
    frame.render_widget(chart, area);
}
