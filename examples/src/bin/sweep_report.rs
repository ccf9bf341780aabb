//! Tables and figures of a batch-size sweep written by `batch_sweep`: for each batch size, the final checkpoints of
//! its seeds are analyzed with htsr-engine, and each layer's eigenvalues are pooled over the seeds before the fits,
//! as Martin & Mahoney (arXiv 1901.08276, section 6) pooled the ESDs of 10 runs per batch size.
//!
//!   sweep_report DIR [--layers fc1,fc2] [--out DIR/report]
//!
//! Writes into the output directory `report.md` (the tables, also printed), `esd-<layer>.svg` and `.png` (one ESD
//! panel per batch size, with the power-law and MP fits and the phase) and `summary.svg` and `.png` (test accuracy,
//! alpha and MP spikes against the batch size). Runs without `result.json` (unfinished) are listed and left out.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use htsr_contracts::{LayerReport, LayerStatus};
use htsr_engine::in_memory::analyze_pooled;
use htsr_engine::spectrum::eigen::PooledSpectrum;
use htsr_engine::spectrum::LayerShape;
use htsr_engine::{analyze_checkpoint, AnalyzeOptions};
use htsr_report::{grid_svg, palette, EsdPanel, LineChart, Panel, Series};
use regex::Regex;

#[derive(Parser, Debug)]
#[command(
    about = "Tables and figures of a batch-size sweep (ESDs pooled over seeds per batch size)"
)]
struct Args {
    /// The sweep directory: runs `bs-<size>-seed-<seed>` written by batch_sweep
    dir: PathBuf,
    /// Layers to report, comma-separated (the names htsr reports: the tensor name without `.weight`)
    #[arg(long, value_delimiter = ',', default_value = "fc1,fc2")]
    layers: Vec<String>,
    /// Output directory (default: DIR/report)
    #[arg(long)]
    out: Option<PathBuf>,
}

/// What `batch_sweep` leaves in a finished run's `result.json` (the fields read here).
#[derive(Debug, serde::Deserialize)]
struct RunResult {
    model: String,
    dataset: String,
    batch_size: u64,
    seed: u64,
    epochs: u64,
    steps: u64,
    train_accuracy: f64,
    test_accuracy: f64,
}

/// One finished run: its result, and each reported layer's final-checkpoint report and eigenvalues.
struct Run {
    result: RunResult,
    layers: BTreeMap<String, (LayerReport, Vec<f64>)>,
}

/// A batch size's seeds, and per layer the analysis of their pooled eigenvalues.
struct BatchSize {
    size: u64,
    runs: Vec<Run>,
    pooled: BTreeMap<String, (LayerReport, Vec<f64>)>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let out = args.out.clone().unwrap_or_else(|| args.dir.join("report"));
    let (finished, unfinished) = find_runs(&args.dir)?;
    if finished.is_empty() {
        bail!(
            "{}: no finished run (bs-<size>-seed-<seed>/result.json)",
            args.dir.display()
        );
    }
    let filter = format!(
        "^({})$",
        args.layers
            .iter()
            .map(|l| regex::escape(l))
            .collect::<Vec<_>>()
            .join("|")
    );
    let opts = AnalyzeOptions {
        layer_filter: Some(Regex::new(&filter)?),
        ..AnalyzeOptions::default()
    };
    let mut by_size: BTreeMap<u64, Vec<Run>> = BTreeMap::new();
    for dir in &finished {
        let run = analyze_run(dir, &opts)?;
        eprintln!(
            "sweep_report: analyzed {} ({} layers)",
            dir.display(),
            run.layers.len()
        );
        by_size.entry(run.result.batch_size).or_default().push(run);
    }
    let sizes: Vec<BatchSize> = by_size
        .into_iter()
        .map(|(size, mut runs)| {
            runs.sort_by_key(|r| r.result.seed);
            let pooled = args
                .layers
                .iter()
                .filter_map(|layer| pool(layer, &runs, &opts).map(|p| (layer.clone(), p)))
                .collect();
            BatchSize { size, runs, pooled }
        })
        .collect();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let markdown = tables(&args, &sizes, &unfinished);
    print!("{markdown}");
    write(&out.join("report.md"), markdown.as_bytes())?;
    for layer in &args.layers {
        let panels: Vec<EsdPanel> = sizes
            .iter()
            .filter_map(|b| {
                let (report, evals) = b.pooled.get(layer)?;
                let seeds = match b.runs.len() {
                    1 => "1 seed".to_string(),
                    n => format!("{n} seeds"),
                };
                let title = format!("{layer}, batch size {} ({seeds})", b.size);
                EsdPanel::from_report(title, report, Some(evals.clone()))
            })
            .collect();
        if panels.is_empty() {
            continue;
        }
        let cells: Vec<Panel<'_>> = panels.iter().map(Panel::from).collect();
        let title = format!(
            "{}: ESD of {layer} at the end of training, pooled over seeds, by batch size",
            sweep_name(&sizes)
        );
        save_figure(
            &out,
            &format!("esd-{layer}"),
            &grid_svg(Some(&title), &cells, 4, (380, 300))?,
        )?;
    }
    let charts = summary_charts(&args.layers, &sizes);
    let cells: Vec<Panel<'_>> = charts.iter().map(Panel::from).collect();
    let title = format!("{}: against the batch size", sweep_name(&sizes));
    save_figure(
        &out,
        "summary",
        &grid_svg(Some(&title), &cells, 3, (420, 320))?,
    )?;
    eprintln!("sweep_report: wrote {}", out.display());
    Ok(())
}

/// Run directories with and without `result.json`, in name order.
fn find_runs(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let pattern = Regex::new(r"^bs-\d+-seed-\d+$")?;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| pattern.is_match(n))
        })
        .collect();
    dirs.sort();
    Ok(dirs
        .into_iter()
        .partition(|d| d.join("result.json").is_file()))
}

/// The run's last checkpoint (the largest `step-*.safetensors`), analyzed.
fn analyze_run(dir: &Path, opts: &AnalyzeOptions) -> Result<Run> {
    let result_path = dir.join("result.json");
    let result: RunResult = serde_json::from_slice(
        &std::fs::read(&result_path)
            .with_context(|| format!("reading {}", result_path.display()))?,
    )
    .with_context(|| format!("parsing {}", result_path.display()))?;
    let last = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("step-") && n.ends_with(".safetensors"))
        })
        .max()
        .with_context(|| format!("{}: no step-*.safetensors checkpoint", dir.display()))?;
    let analysis =
        analyze_checkpoint(&last, opts).with_context(|| format!("analyzing {}", last.display()))?;
    let layers = analysis
        .layers
        .into_iter()
        .filter(|l| l.report.status == LayerStatus::Success)
        .filter_map(|l| Some((l.report.name.clone(), (l.report, l.eigenvalues?))))
        .collect();
    Ok(Run { result, layers })
}

/// One layer's eigenvalues of every seed as one spectrum: the seeds stand in for WeightWatcher's slices (the MP fit
/// keeps each matrix's Q and M; the paper's pooled ESDs, section 6).
fn pool(layer: &str, runs: &[Run], opts: &AnalyzeOptions) -> Option<(LayerReport, Vec<f64>)> {
    let parts: Vec<&(LayerReport, Vec<f64>)> =
        runs.iter().filter_map(|r| r.layers.get(layer)).collect();
    let (first, _) = parts.first()?;
    let metrics = first.metrics.as_ref()?;
    let mut evals: Vec<f64> = parts.iter().flat_map(|(_, e)| e.iter().copied()).collect();
    evals.sort_by(f64::total_cmp);
    let pooled = PooledSpectrum {
        evals: evals.clone(),
        sv_min: parts
            .iter()
            .filter_map(|(r, _)| r.metrics.as_ref().map(|m| m.sv_min))
            .fold(0.0, f64::max),
        rank_loss: parts
            .iter()
            .filter_map(|(r, _)| r.metrics.as_ref().map(|m| m.rank_loss))
            .sum(),
    };
    let shape = LayerShape {
        n: metrics.N,
        m: metrics.M,
        rf: metrics.rf * parts.len(),
    };
    let analysis = analyze_pooled(
        &first.tensor,
        &first.shape,
        &first.dtype,
        first.layer_type,
        pooled,
        shape,
        opts,
    );
    Some((analysis.report, evals))
}

fn sweep_name(sizes: &[BatchSize]) -> String {
    sizes
        .first()
        .and_then(|b| b.runs.first())
        .map(|r| format!("{} on {}", r.result.model, r.result.dataset))
        .unwrap_or_default()
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn phase_name(report: &LayerReport) -> String {
    match &report.phase {
        Some(v) if v.very_heavy_tailed => format!("{} (very heavy)", v.phase.as_str()),
        Some(v) => v.phase.as_str().to_string(),
        None => "-".to_string(),
    }
}

fn tables(args: &Args, sizes: &[BatchSize], unfinished: &[PathBuf]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}: batch-size sweep\n", sweep_name(sizes));
    let _ = writeln!(
        md,
        "From `{}`: the final checkpoint of each run; pooled = the eigenvalues of every seed of a batch size \
         analyzed as one spectrum.\n",
        args.dir.display()
    );
    let _ = writeln!(
        md,
        "| batch size | seeds | epochs (mean) | steps (mean) | train accuracy | test accuracy (mean ± sd) |"
    );
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|");
    for b in sizes {
        let n = b.runs.len() as f64;
        let epochs = b.runs.iter().map(|r| r.result.epochs as f64).sum::<f64>() / n;
        let steps = b.runs.iter().map(|r| r.result.steps as f64).sum::<f64>() / n;
        let train: Vec<f64> = b.runs.iter().map(|r| r.result.train_accuracy).collect();
        let test: Vec<f64> = b.runs.iter().map(|r| r.result.test_accuracy).collect();
        let (tm, _) = mean_sd(&train);
        let (m, sd) = mean_sd(&test);
        let _ = writeln!(
            md,
            "| {} | {} | {epochs:.1} | {steps:.0} | {:.2}% | {:.2}% ± {:.2} |",
            b.size,
            b.runs.len(),
            100.0 * tm,
            100.0 * m,
            100.0 * sd
        );
    }
    for layer in &args.layers {
        let Some(shape) = sizes
            .iter()
            .find_map(|b| b.pooled.get(layer))
            .and_then(|(r, _)| r.metrics.as_ref())
        else {
            continue;
        };
        let _ = writeln!(
            md,
            "\n## {layer} (N x M = {} x {}, Q = {:.2})\n",
            shape.N, shape.M, shape.Q
        );
        let _ = writeln!(
            md,
            "| batch size | pooled eigenvalues | alpha | D | MP spikes | MP soft rank | stable rank | pooled phase | \
             phase per seed | alpha per seed |"
        );
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---|---|---|");
        for b in sizes {
            let Some((r, evals)) = b.pooled.get(layer) else {
                continue;
            };
            let (alpha, d) = r.power_law.as_ref().map_or(("-".into(), "-".into()), |p| {
                (format!("{:.2}", p.alpha), format!("{:.3}", p.d))
            });
            let (spikes, softrank) = r.mp.as_ref().map_or(("-".into(), "-".into()), |m| {
                (
                    format!(
                        "{} ({:.1}%)",
                        m.num_spikes,
                        100.0 * m.num_spikes as f64 / evals.len() as f64
                    ),
                    format!("{:.3}", m.mp_softrank),
                )
            });
            let stable = r.metrics.as_ref().map_or("-".into(), |m| {
                format!("{:.1}", m.stable_rank / b.runs.len() as f64)
            });
            let per_seed = |f: &dyn Fn(&LayerReport) -> String| {
                b.runs
                    .iter()
                    .map(|run| run.layers.get(layer).map_or("-".into(), |(r, _)| f(r)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                md,
                "| {} | {} | {alpha} | {d} | {spikes} | {softrank} | {stable} | {} | {} | {} |",
                b.size,
                evals.len(),
                phase_name(r),
                per_seed(&phase_name),
                per_seed(&|r| r.alpha().map_or("-".into(), |a| format!("{a:.2}"))),
            );
        }
    }
    let _ = writeln!(
        md,
        "\nStable rank: sum(lambda) / lambda_max of the pooled spectrum divided by the number of seeds (one \
         matrix's worth). Phases: htsr's classifier (docs/PHASES.md)."
    );
    if !unfinished.is_empty() {
        let names: Vec<String> = unfinished
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        let _ = writeln!(md, "\nUnfinished runs, left out: {}.", names.join(", "));
    }
    md
}

fn summary_charts(layers: &[String], sizes: &[BatchSize]) -> Vec<LineChart> {
    let accuracy_seeds: Vec<(f64, f64)> = sizes
        .iter()
        .flat_map(|b| {
            b.runs
                .iter()
                .map(move |r| (b.size as f64, 100.0 * r.result.test_accuracy))
        })
        .collect();
    let accuracy_mean: Vec<(f64, f64)> = sizes
        .iter()
        .map(|b| {
            let v: Vec<f64> = b.runs.iter().map(|r| r.result.test_accuracy).collect();
            (b.size as f64, 100.0 * mean_sd(&v).0)
        })
        .collect();
    let accuracy = LineChart::new("Test accuracy")
        .labels("batch size", "test accuracy (%)")
        .log_x()
        .series(Series::line("mean over seeds", accuracy_mean).colour(palette(0)))
        .series(Series::points("one seed", accuracy_seeds).colour(palette(1)));
    let mut alpha = LineChart::new("Power-law alpha (pooled; dots: one seed)")
        .labels("batch size", "alpha")
        .log_x()
        .reference_line(2.0, "alpha 2")
        .reference_line(4.0, "alpha 4");
    let mut spikes = LineChart::new("MP spikes, % of eigenvalues (pooled)")
        .labels("batch size", "spikes (%)")
        .log_x();
    for (i, layer) in layers.iter().enumerate() {
        let colour = palette(i);
        let pooled_alpha: Vec<(f64, f64)> = sizes
            .iter()
            .filter_map(|b| Some((b.size as f64, b.pooled.get(layer)?.0.alpha()?)))
            .collect();
        let seed_alpha: Vec<(f64, f64)> = sizes
            .iter()
            .flat_map(|b| {
                b.runs
                    .iter()
                    .filter_map(move |r| Some((b.size as f64, r.layers.get(layer)?.0.alpha()?)))
            })
            .collect();
        let spike_share: Vec<(f64, f64)> = sizes
            .iter()
            .filter_map(|b| {
                let (r, evals) = b.pooled.get(layer)?;
                let mp = r.mp.as_ref()?;
                Some((
                    b.size as f64,
                    100.0 * mp.num_spikes as f64 / evals.len() as f64,
                ))
            })
            .collect();
        alpha = alpha
            .series(Series::line_and_points(layer.clone(), pooled_alpha).colour(colour))
            .series(
                Series::points(format!("{layer}, one seed"), seed_alpha)
                    .colour(colour)
                    .without_legend(),
            );
        spikes = spikes.series(Series::line_and_points(layer.clone(), spike_share).colour(colour));
    }
    vec![accuracy, alpha, spikes]
}

fn save_figure(out: &Path, stem: &str, svg: &str) -> Result<()> {
    write(&out.join(format!("{stem}.svg")), svg.as_bytes())?;
    let png = htsr_report::svg_to_png(svg, 1.0)?;
    write(&out.join(format!("{stem}.png")), &png)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
