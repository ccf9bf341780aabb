//! A report of a store: what it shows is gathered once from the history into charts ([`Report::from_history`]), then
//! written as one HTML page ([`Report::to_html`]) or as figure files ([`Report::figures`]).

use htsr_api::{Cut, History, PhaseGrid, RunSummary, TrajectoryPoint};
use htsr_contracts::naming::keys;
use htsr_contracts::Phase;
use regex::Regex;

use crate::esd::EsdPanel;
use crate::grid::{esd_grid_svg, grid_svg, Panel};
use crate::line::{LineChart, Series};
use crate::phase_map::phase_map_svg;
use crate::style::{palette, phase_colour, Rgb};
use crate::Error;

/// What a report covers. The default reports every run, the ESDs at each run's first and last checkpoint, and
/// every layer.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Runs to report, in this order (default: every run in the store, by name with numbers in numeric order:
    /// bs-16 before bs-256).
    pub runs: Vec<String>,
    /// Checkpoints whose ESDs are drawn (default: each run's first and last). A step must exist in at least one
    /// of the runs; runs without it say so.
    pub steps: Vec<u64>,
    /// Only layers whose name matches.
    pub layers: Option<Regex>,
    /// Most checkpoint columns of a phase map (evenly spaced, newest kept; default 240).
    pub max_columns: Option<usize>,
    /// The page title (default: "htsr report").
    pub title: Option<String>,
    /// Where the data came from, shown under the title (e.g. the store's path).
    pub source: Option<String>,
}

/// The ESDs of one run at one checkpoint.
#[derive(Debug, Clone)]
pub struct EsdSet {
    /// The checkpoint.
    pub step: u64,
    /// One panel per layer with a spectrum at that step, in layer order.
    pub panels: Vec<EsdPanel>,
    /// How many panels drew raw eigenvalues (the rest: the stored histogram).
    pub raw: usize,
    /// Layers with no spectrum at this step (skipped, failed), with the reason.
    pub without_spectrum: Vec<(String, String)>,
}

/// Everything the report shows about one run.
#[derive(Debug, Clone)]
pub struct RunSection {
    /// The run's name, checkpoints, last step, mean alpha and phase counts.
    pub summary: RunSummary,
    /// `htsr.batch_size` of the run's last checkpoint, when the writer recorded it.
    pub batch_size: Option<f64>,
    /// Layers x checkpoints, only the layers shown.
    pub phase_grid: PhaseGrid,
    /// One small chart per layer: alpha over steps, points coloured by phase.
    pub alpha: Vec<LineChart>,
    /// The ESD panels at each chosen step.
    pub esd: Vec<EsdSet>,
    /// Layers that matched but never had a fit or phase (biases, skipped tensors): listed, not drawn.
    pub hidden_layers: Vec<String>,
    /// Requested steps this run does not have.
    pub missing_steps: Vec<u64>,
}

/// A report: its runs and the comparisons across them.
#[derive(Debug, Clone)]
pub struct Report {
    /// The page title.
    pub title: String,
    /// Where the data came from, under the title.
    pub source: Option<String>,
    /// The runs reported, in the order asked for (default: by name, numbers in numeric order).
    pub runs: Vec<RunSection>,
    /// One chart per layer present in two or more runs: its alpha over steps, one line per run.
    pub overlays: Vec<LineChart>,
    /// The last checkpoint's alpha against batch size, when two or more batch sizes were recorded.
    pub sweep: Option<LineChart>,
}

/// A named SVG figure, the unit of `--format svg|png`.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// A file stem: letters, digits, `.`, `_` and `-` only.
    pub name: String,
    /// The SVG document.
    pub svg: String,
}

/// Default columns of a phase map.
pub const DEFAULT_MAX_COLUMNS: usize = 240;
/// Cell sizes (pixels) of the small multiples and panels, in the page and in the figure files.
pub(crate) const ALPHA_CELL: (u32, u32) = (300, 210);
pub(crate) const ESD_CELL: (u32, u32) = (380, 300);
pub(crate) const OVERLAY_CELL: (u32, u32) = (380, 280);
pub(crate) const SWEEP_SIZE: (u32, u32) = (620, 380);
const LINE: Rgb = Rgb(0xb0, 0xb0, 0xb0);
/// The training loss drawn beside alpha (no phase's colour).
const LOSS: Rgb = Rgb(0x80, 0x50, 0xa8);

/// A layer's name and its (step, alpha) points.
type LayerSeries = (String, Vec<(f64, f64)>);

fn has_data(t: &[TrajectoryPoint]) -> bool {
    t.iter().any(|p| p.alpha.is_some() || p.phase.is_some())
}

/// Alpha over steps for one layer: a grey line through every fitted checkpoint, each point in its phase's colour,
/// dashed lines at WeightWatcher's alpha = 2 and 6 when they fall in range, and the run's training `losses`
/// (step, loss) mapped onto alpha's range, their own range in the legend, when the checkpoints recorded them.
pub fn alpha_chart(
    layer: &str,
    trajectory: &[TrajectoryPoint],
    losses: &[(f64, f64)],
) -> LineChart {
    let pts: Vec<(f64, f64)> = trajectory
        .iter()
        .filter_map(|p| Some((p.step as f64, p.alpha?)))
        .collect();
    let last = trajectory
        .iter()
        .rev()
        .find(|p| p.alpha.is_some() || p.phase.is_some());
    let subtitle = match last {
        Some(p) => format!(
            "last: α {} · {}",
            p.alpha.map_or("-".into(), |a| format!("{a:.2}")),
            p.phase.map_or("no phase", Phase::as_str)
        ),
        None => "no fit".into(),
    };
    let (lo, hi) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let (loss, loss_range) = if lo.is_finite() {
        htsr_api::rescale(losses, lo, hi)
    } else {
        (Vec::new(), None)
    };
    let subtitle = match loss_range {
        Some((min, max)) => format!("{subtitle} · loss {min:.3}..{max:.3} (purple)"),
        None => subtitle,
    };
    let mut chart = LineChart::new(layer)
        .labels("step", "α")
        .subtitle(subtitle, last.and_then(|p| p.phase).map(phase_colour))
        .series(Series::line("α", pts).colour(LINE).without_legend())
        .reference_line(2.0, "α = 2")
        .reference_line(6.0, "α = 6")
        .without_legend();
    if loss_range.is_some() {
        chart = chart.series(Series::line("loss", loss).colour(LOSS).without_legend());
    }
    for phase in Phase::ALL {
        let of_phase: Vec<(f64, f64)> = trajectory
            .iter()
            .filter(|p| p.phase == Some(phase))
            .filter_map(|p| Some((p.step as f64, p.alpha?)))
            .collect();
        if !of_phase.is_empty() {
            chart =
                chart.series(Series::points(phase.as_str(), of_phase).colour(phase_colour(phase)));
        }
    }
    chart
}

fn batch_size(store: &dyn History, run: &str, step: u64) -> Result<Option<f64>, Error> {
    Ok(store
        .checkpoint(run, step)?
        .and_then(|c| {
            c.metadata
                .get(keys::BATCH_SIZE)
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .filter(|b| b.is_finite() && *b > 0.0))
}

/// The runs `options` names (all of them when it names none), in natural order; an error names the runs there are.
fn select_runs(store: &dyn History, options: &ReportOptions) -> Result<Vec<RunSummary>, Error> {
    let mut all = store.runs()?;
    // A sweep's runs in the order of their numbers: bs-16, bs-64, bs-256 (the store orders them as bytes).
    all.sort_by(|a, b| natural_cmp(&a.run, &b.run));
    if all.is_empty() {
        return Err(Error::Usage("the store holds no runs yet".into()));
    }
    if options.runs.is_empty() {
        return Ok(all);
    }
    let names: Vec<&str> = all.iter().map(|r| r.run.as_str()).collect();
    options
        .runs
        .iter()
        .map(|want| {
            all.iter().find(|r| &r.run == want).cloned().ok_or_else(|| {
                Error::Usage(format!(
                    "no run {want:?} in the store; its runs: {}",
                    names.join(", ")
                ))
            })
        })
        .collect()
}

/// One run's section and its layers' alpha series (for the overlays); marks in `found_steps` which of the asked
/// steps this run holds.
fn run_section(
    store: &dyn History,
    summary: RunSummary,
    options: &ReportOptions,
    found_steps: &mut [bool],
) -> Result<(RunSection, Vec<LayerSeries>), Error> {
    let run = summary.run.clone();
    let steps = store.steps(&run)?;
    let losses = htsr_api::loss_series(&store.checkpoints(&run)?);
    let wanted = |layer: &str| options.layers.as_ref().is_none_or(|re| re.is_match(layer));
    let (mut shown, mut hidden, mut alpha, mut series) = (vec![], vec![], vec![], vec![]);
    for layer in store.layer_names(&run)?.into_iter().filter(|l| wanted(l)) {
        let t = store.trajectory(&run, &layer)?;
        if !has_data(&t) {
            hidden.push(layer);
            continue;
        }
        alpha.push(alpha_chart(&layer, &t, &losses));
        let pts = t
            .iter()
            .filter_map(|p| Some((p.step as f64, p.alpha?)))
            .collect();
        series.push((layer.clone(), pts));
        shown.push(layer);
    }
    let max_columns = options.max_columns.unwrap_or(DEFAULT_MAX_COLUMNS).max(2);
    let mut grid = store.phase_grid(&run, Some(max_columns), None)?;
    let keep: Vec<usize> = (0..grid.layers.len())
        .filter(|&i| shown.contains(&grid.layers[i]))
        .collect();
    grid.cells = keep.iter().map(|&i| grid.cells[i].clone()).collect();
    grid.layers = keep.iter().map(|&i| grid.layers[i].clone()).collect();
    let (esd_steps, missing_steps) = esd_steps(&steps, &options.steps, found_steps);
    let esd = esd_steps
        .into_iter()
        .map(|step| esd_set(store, &run, step, &shown))
        .collect::<Result<_, _>>()?;
    let section = RunSection {
        batch_size: batch_size(store, &run, summary.last_step)?,
        summary,
        phase_grid: grid,
        alpha,
        esd,
        hidden_layers: hidden,
        missing_steps,
    };
    Ok((section, series))
}

/// The steps whose ESDs a run shows (the asked ones it has, else its first and last) and the asked ones it lacks.
fn esd_steps(steps: &[u64], asked: &[u64], found: &mut [bool]) -> (Vec<u64>, Vec<u64>) {
    if asked.is_empty() {
        let mut shown: Vec<u64> = steps
            .first()
            .into_iter()
            .chain(steps.last())
            .copied()
            .collect();
        shown.dedup();
        return (shown, Vec::new());
    }
    let (mut shown, mut missing) = (Vec::new(), Vec::new());
    for (i, s) in asked.iter().enumerate() {
        if steps.binary_search(s).is_ok() {
            found[i] = true;
            shown.push(*s);
        } else {
            missing.push(*s);
        }
    }
    (shown, missing)
}

/// The ESD panels of `layers` at one step: raw eigenvalues where the store kept them, else the stored histogram;
/// layers with neither are listed with the reason.
fn esd_set(store: &dyn History, run: &str, step: u64, layers: &[String]) -> Result<EsdSet, Error> {
    let mut set = EsdSet {
        step,
        panels: Vec::new(),
        raw: 0,
        without_spectrum: Vec::new(),
    };
    for layer in layers {
        let Some(report) = store.layer_report(run, step, layer)? else {
            continue;
        };
        let raw = store.raw_eigenvalues(run, step, layer)?;
        let is_raw = raw.is_some();
        match EsdPanel::from_report(layer.as_str(), &report, raw) {
            Some(p) => {
                set.raw += usize::from(is_raw);
                set.panels.push(p);
            }
            None => set.without_spectrum.push((
                layer.clone(),
                report
                    .reason
                    .clone()
                    .unwrap_or_else(|| report.status.as_str().to_string()),
            )),
        }
    }
    Ok(set)
}

/// The error for an asked step that no selected run holds, naming the steps each run has.
fn missing_step(store: &dyn History, runs: &[RunSection], step: u64) -> Error {
    let run_steps: Vec<String> = runs
        .iter()
        .map(|r| {
            let s = store.steps(&r.summary.run).unwrap_or_default();
            format!(
                "{} has steps {}..{} ({} checkpoints)",
                r.summary.run,
                s.first().copied().unwrap_or(0),
                s.last().copied().unwrap_or(0),
                s.len()
            )
        })
        .collect();
    let which = if runs.len() == 1 {
        "the run"
    } else {
        "any of the runs"
    };
    Error::Usage(format!(
        "no checkpoint at step {step} in {which}; {}",
        run_steps.join("; ")
    ))
}

impl Report {
    /// Reads what `options` asks for from `history` and draws every chart. The history is read as it stood when
    /// this began ([`Cut`]): checkpoints a running daemon stores meanwhile are not half in the report. Errors: a run
    /// or step that does not exist ([`Error::Usage`], naming what does), an empty store, or a history that cannot be
    /// read.
    pub fn from_history(history: &dyn History, options: &ReportOptions) -> Result<Report, Error> {
        let cut = Cut::new(history)?;
        let store: &dyn History = &cut;
        let selected = select_runs(store, options)?;
        let mut runs = Vec::new();
        let mut found_steps = vec![false; options.steps.len()];
        // Per run: (layer, alpha series) for the overlays.
        let mut series_by_run: Vec<Vec<LayerSeries>> = Vec::new();
        for summary in selected {
            let (section, series) = run_section(store, summary, options, &mut found_steps)?;
            runs.push(section);
            series_by_run.push(series);
        }
        if let Some(i) = found_steps.iter().position(|f| !f) {
            return Err(missing_step(store, &runs, options.steps[i]));
        }
        let overlays = overlays(&runs, &series_by_run);
        let sweep = sweep_chart(&runs);
        Ok(Report {
            title: options
                .title
                .clone()
                .unwrap_or_else(|| "htsr report".into()),
            source: options.source.clone(),
            runs,
            overlays,
            sweep,
        })
    }

    /// The report's charts as separate figures: per run its phase map, its alpha small multiples and one ESD grid
    /// per chosen step; across runs the overlay grid and the batch-size chart. Names are unique file stems.
    pub fn figures(&self) -> Result<Vec<Figure>, Error> {
        let mut out = Vec::new();
        for r in &self.runs {
            let run = &r.summary.run;
            let stem = file_stem(run);
            out.push(Figure {
                name: format!("{stem}-phase-map"),
                svg: phase_map_svg(&r.phase_grid, &format!("{run}: phase map")),
            });
            if !r.alpha.is_empty() {
                let cells: Vec<Panel<'_>> = r.alpha.iter().map(Panel::from).collect();
                out.push(Figure {
                    name: format!("{stem}-alpha"),
                    svg: grid_svg(
                        Some(&format!("{run}: α over steps (points coloured by phase)")),
                        &cells,
                        4,
                        ALPHA_CELL,
                    )?,
                });
            }
            for set in r.esd.iter().filter(|s| !s.panels.is_empty()) {
                out.push(Figure {
                    name: format!("{stem}-esd-step-{}", set.step),
                    svg: esd_grid_svg(
                        Some(&format!("{run}: ESDs at step {}", set.step)),
                        &set.panels,
                        3,
                        ESD_CELL,
                    )?,
                });
            }
        }
        if !self.overlays.is_empty() {
            let cells: Vec<Panel<'_>> = self.overlays.iter().map(Panel::from).collect();
            out.push(Figure {
                name: "runs-alpha-overlay".into(),
                svg: grid_svg(Some("α over steps across runs"), &cells, 3, OVERLAY_CELL)?,
            });
        }
        if let Some(s) = &self.sweep {
            out.push(Figure {
                name: "runs-alpha-vs-batch-size".into(),
                svg: s.to_svg(SWEEP_SIZE.0, SWEEP_SIZE.1)?,
            });
        }
        // Two runs whose names differ only in characters a file name cannot hold would collide: number them.
        let mut seen = std::collections::HashMap::<String, usize>::new();
        for f in &mut out {
            let n = seen.entry(f.name.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                f.name = format!("{}-{}", f.name, n);
            }
        }
        Ok(out)
    }
}

/// One chart per layer that two or more runs have: its alpha over steps, a line per run (colours by run, the same
/// in every chart).
fn overlays(runs: &[RunSection], series_by_run: &[Vec<LayerSeries>]) -> Vec<LineChart> {
    if runs.len() < 2 {
        return Vec::new();
    }
    let mut layers: Vec<&str> = Vec::new();
    for s in series_by_run {
        for (l, _) in s {
            if !layers.contains(&l.as_str()) {
                layers.push(l);
            }
        }
    }
    let mut out = Vec::new();
    for layer in layers {
        let mut chart = LineChart::new(layer).labels("step", "α");
        let mut n = 0;
        for (i, (run, s)) in runs.iter().zip(series_by_run).enumerate() {
            if let Some((_, pts)) = s.iter().find(|(l, _)| l == layer) {
                if !pts.is_empty() {
                    n += 1;
                    chart = chart.series(
                        Series::line_and_points(run_label(run), pts.clone()).colour(palette(i)),
                    );
                }
            }
        }
        if n >= 2 {
            out.push(chart.subtitle(format!("{n} runs"), None));
        }
    }
    out
}

fn run_label(r: &RunSection) -> String {
    match r.batch_size {
        Some(b) => format!(
            "{} (batch {})",
            r.summary.run,
            crate::render::short_number(b)
        ),
        None => r.summary.run.clone(),
    }
}

/// The last checkpoint's alpha against batch size (log x), when the runs recorded two or more batch sizes: one
/// colour per layer (up to ten; beyond, the mean over layers), every run a point, a line through each batch
/// size's mean.
fn sweep_chart(runs: &[RunSection]) -> Option<LineChart> {
    let with_batch: Vec<&RunSection> = runs.iter().filter(|r| r.batch_size.is_some()).collect();
    let mut sizes: Vec<f64> = with_batch.iter().filter_map(|r| r.batch_size).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    if sizes.len() < 2 {
        return None;
    }
    // (layer, [(batch, alpha)]) from each run's last alpha per layer.
    let mut per_layer: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in &with_batch {
        let b = r.batch_size?;
        for chart in &r.alpha {
            let last = chart
                .series
                .first()
                .and_then(|s| s.points.last())
                .map(|p| p.1);
            if let Some(a) = last {
                match per_layer.iter_mut().find(|(l, _)| *l == chart.title) {
                    Some((_, v)) => v.push((b, a)),
                    None => per_layer.push((chart.title.clone(), vec![(b, a)])),
                }
            }
        }
    }
    if per_layer.len() > 10 {
        let mut all: Vec<(f64, f64)> = Vec::new();
        for r in &with_batch {
            if let (Some(b), Some(a)) = (r.batch_size, r.summary.mean_alpha) {
                all.push((b, a));
            }
        }
        per_layer = vec![("mean α over layers".into(), all)];
    }
    let mut chart = LineChart::new("last checkpoint's α against batch size")
        .labels("batch size", "α")
        .log_x()
        .subtitle(
            format!(
                "{} runs, {} batch sizes; line: mean per batch size",
                with_batch.len(),
                sizes.len()
            ),
            None,
        );
    for (i, (layer, pts)) in per_layer.into_iter().enumerate() {
        let means: Vec<(f64, f64)> = sizes
            .iter()
            .filter_map(|b| {
                let v: Vec<f64> = pts.iter().filter(|p| p.0 == *b).map(|p| p.1).collect();
                (!v.is_empty()).then(|| (*b, v.iter().sum::<f64>() / v.len() as f64))
            })
            .collect();
        chart = chart
            .series(Series::points(layer, pts).colour(palette(i)))
            .series(Series::line("", means).colour(palette(i)).without_legend());
    }
    Some(chart)
}

/// Orders names with their runs of digits compared as numbers: "bs-16" < "bs-64" < "bs-256".
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let ord = match (x, y) {
            ((true, dx), (true, dy)) => {
                let (tx, ty) = (dx.trim_start_matches('0'), dy.trim_start_matches('0'));
                tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
            }
            ((_, sx), (_, sy)) => sx.cmp(sy),
        };
        if ord.is_ne() {
            return ord;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

/// A file name stem (and HTML anchor) for run `name`: the name itself when it is made of letters, digits, `.`, `_`
/// and `-` and is not too long; otherwise its other characters become `_`, it is cut to fit a file name, and a hash
/// of the real name keeps two runs apart (`exp/1` and `exp_1` never share a chart file).
pub(crate) fn file_stem(name: &str) -> String {
    const MAX: usize = 100;
    let keep = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let mut s: String = name
        .chars()
        .map(|c| if keep(c) { c } else { '_' })
        .take(MAX)
        .collect();
    if s != name {
        s = format!(
            "{s}-{:08x}",
            htsr_contracts::naming::stable_hash(name.as_bytes()) as u32
        );
    }
    if s.is_empty() || s.starts_with('.') {
        format!("run{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_sort_by_their_numbers() {
        let mut runs = vec![
            "bs-256",
            "bs-64",
            "bs-16-seed-2",
            "bs-16-seed-10",
            "bs-16",
            "a",
            "bs-016",
        ];
        runs.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            runs,
            [
                "a",
                "bs-016",
                "bs-16",
                "bs-16-seed-2",
                "bs-16-seed-10",
                "bs-64",
                "bs-256"
            ]
        );
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("bs-16"), "bs-16");
        assert!(file_stem("bs-16 seed/1").starts_with("bs-16_seed_1-"));
        assert_ne!(file_stem("exp/1"), file_stem("exp_1"));
        assert_eq!(file_stem("..x"), "run..x");
        assert_eq!(file_stem(""), "run");
        let long = file_stem(&"長".repeat(300));
        assert!(long.len() < 120 && !long.contains('長'), "{long}");
    }
}
