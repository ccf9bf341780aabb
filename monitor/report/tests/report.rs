//! Reports of a real store: layers analyzed by htsr-engine (its synthetic phase ensembles), written with
//! `Store::write_checkpoint` as the daemon writes them, read back into a report; the HTML is checked for what a
//! self-contained page may not hold, and every chart in it is parsed as SVG.

use htsr_contracts::{LayerReport, LayerStatus};
use htsr_engine::analyze::{analyze_matrix, AnalyzeOptions};
use htsr_engine::synthetic::Ensemble;
use htsr_report::{Error, Report, ReportOptions};
use htsr_storage::Store;

const STEPS: [u64; 4] = [0, 50, 100, 150];
const FC1: [Ensemble; 4] = [
    Ensemble::Gaussian,
    Ensemble::NearThresholdSpikes,
    Ensemble::StrongSpikes,
    Ensemble::GradedLowRank,
];

/// Two runs (batch sizes 16 and 256) of three tensors: fc1 through the phases, fc2 random, a skipped bias. Raw
/// eigenvalues are handed to the store at every checkpoint; it keeps them for the latest only.
fn store(dir: &std::path::Path) -> Store {
    let (store, _) = Store::open(dir.join(".htsr")).unwrap();
    for (r, (run, batch)) in [("bs-16", 16), ("bs-256", 256)].into_iter().enumerate() {
        for (k, step) in STEPS.into_iter().enumerate() {
            let seed = r as u64 * 100 + k as u64;
            let mut reports = Vec::new();
            let mut raw = Vec::new();
            for (name, m) in [
                ("fc1", FC1[k].sample(160, 80, seed)),
                ("fc2", Ensemble::Gaussian.sample(120, 60, seed + 1)),
            ] {
                let a = analyze_matrix(name, m.view(), &AnalyzeOptions::default());
                assert_eq!(a.report.status, LayerStatus::Success);
                raw.push((name.to_string(), a.eigenvalues.unwrap()));
                reports.push(a.report);
            }
            let mut bias = LayerReport::unanalyzed("fc1.bias", "fc1.bias", &[80], "F32");
            bias.reason = Some("1-D tensor".into());
            reports.push(bias);
            // Built from JSON so that fields added later with defaults need no change here.
            let record = serde_json::from_value(serde_json::json!({
                "run": run, "step": step,
                "identity": {"path": format!("{run}/{step}"), "size": 1, "mtime_ns": 0, "header_hash": "0"},
                "metadata": {"htsr.batch_size": batch.to_string(), "htsr.loss": format!("{}", 2.0 / (k + 1) as f64)},
                "analyzed_at": 0.0, "analysis_seconds": 0.0, "status": "complete", "errors": [],
                "layer_count": reports.len(), "phase_counts": [0, 0, 0, 0, 0, 0, 0]
            }))
            .unwrap();
            store.write_checkpoint(&record, &reports, &raw).unwrap();
        }
    }
    store
}

/// Every `<svg>...</svg>` element of a page, made a standalone document again.
fn inline_svgs(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("an unclosed <svg>") + start + "</svg>".len();
        out.push(rest[start..end].replacen(
            "<svg",
            r#"<svg xmlns="http://www.w3.org/2000/svg""#,
            1,
        ));
        rest = &rest[end..];
    }
    out
}

#[test]
fn the_alpha_charts_draw_the_training_loss_with_its_range() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let report = Report::from_history(&store, &ReportOptions::default()).unwrap();
    let html = report.to_html().unwrap();
    // Losses 2.0, 1.0, 0.667, 0.5 at the four checkpoints of each run.
    assert_eq!(
        html.matches("loss 0.500..2.000").count(),
        2 * 2,
        "one per analyzed layer of each run"
    );
    assert!(
        html.to_lowercase().contains("#8050a8"),
        "the loss line is drawn"
    );
}

#[test]
fn the_default_report_has_every_run_layer_and_comparison_and_is_self_contained() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let report = Report::from_history(&store, &ReportOptions::default()).unwrap();
    assert_eq!(report.runs.len(), 2);
    for r in &report.runs {
        assert_eq!(r.phase_grid.layers, ["fc1", "fc2"]);
        assert_eq!(r.phase_grid.steps, STEPS);
        assert_eq!(r.hidden_layers, ["fc1.bias"]);
        assert_eq!(r.alpha.len(), 2);
        // First and last checkpoint; the store kept raw eigenvalues for the last one only.
        let steps: Vec<u64> = r.esd.iter().map(|s| s.step).collect();
        assert_eq!(steps, [0, 150]);
        assert_eq!((r.esd[0].raw, r.esd[0].panels.len()), (0, 2));
        assert_eq!((r.esd[1].raw, r.esd[1].panels.len()), (2, 2));
        assert!(r.batch_size.is_some());
    }
    // fc1 moves through the phases, so its row of the map is not one colour.
    let fc1 = &report.runs[0].phase_grid.cells[0];
    assert!(fc1.iter().any(|c| c != &fc1[0]), "{fc1:?}");
    assert_eq!(report.overlays.len(), 2);
    assert_eq!(report.overlays[0].series.len(), 2, "one line per run");
    let sweep = report
        .sweep
        .as_ref()
        .expect("two batch sizes: a sweep chart");
    assert_eq!(sweep.x_scale, htsr_report::Scale::Log);

    let html = report.to_html().unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "a script in the report");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "a network reference in the report"
    );
    assert!(
        !html.contains("@import") && !html.contains("url("),
        "CSS that loads something"
    );
    assert!(html.contains("@media print") && html.contains("break-inside: avoid"));
    let svgs = inline_svgs(&html);
    // Per run: phase map, 2 alpha charts, 2 ESDs at 2 steps; across: 2 overlays and the sweep.
    assert_eq!(svgs.len(), 2 * (1 + 2 + 4) + 2 + 1);
    for svg in &svgs {
        let (w, h) = htsr_report::svg_size(svg).unwrap_or_else(|e| panic!("{e}: {}", &svg[..200]));
        assert!(w >= 300.0 && h >= 100.0, "{w}x{h}");
    }

    let figures = report.figures().unwrap();
    let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "bs-16-phase-map",
            "bs-16-alpha",
            "bs-16-esd-step-0",
            "bs-16-esd-step-150",
            "bs-256-phase-map",
            "bs-256-alpha",
            "bs-256-esd-step-0",
            "bs-256-esd-step-150",
            "runs-alpha-overlay",
            "runs-alpha-vs-batch-size",
        ]
    );
    for f in &figures {
        htsr_report::svg_size(&f.svg).unwrap();
    }
}

#[test]
fn options_choose_runs_steps_layers_and_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path());
    let options = ReportOptions {
        runs: vec!["bs-256".into()],
        steps: vec![50, 100],
        layers: Some(regex::Regex::new("^fc1$").unwrap()),
        max_columns: Some(2),
        title: Some("sweep <draft>".into()),
        source: None,
    };
    let report = Report::from_history(&store, &options).unwrap();
    assert_eq!(report.runs.len(), 1);
    let r = &report.runs[0];
    assert_eq!(r.summary.run, "bs-256");
    assert_eq!(r.phase_grid.layers, ["fc1"]);
    assert_eq!(
        r.phase_grid.steps,
        [0, 150],
        "two columns: the first and the newest"
    );
    assert_eq!(r.esd.iter().map(|s| s.step).collect::<Vec<_>>(), [50, 100]);
    assert!(
        r.hidden_layers.is_empty(),
        "the bias does not match the filter"
    );
    assert!(
        report.overlays.is_empty() && report.sweep.is_none(),
        "one run: nothing to compare"
    );
    assert!(report
        .to_html()
        .unwrap()
        .contains("<title>sweep &lt;draft&gt;</title>"));

    let err = |o: ReportOptions| match Report::from_history(&store, &o) {
        Err(Error::Usage(m)) => m,
        other => panic!("expected a usage error, got {other:?}"),
    };
    let m = err(ReportOptions {
        runs: vec!["bs-1".into()],
        ..ReportOptions::default()
    });
    assert!(
        m.contains("no run \"bs-1\"") && m.contains("bs-16, bs-256"),
        "{m}"
    );
    let m = err(ReportOptions {
        steps: vec![100, 77],
        ..ReportOptions::default()
    });
    assert!(
        m.contains("no checkpoint at step 77") && m.contains("0..150"),
        "{m}"
    );
}

#[test]
fn an_empty_store_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(tmp.path().join(".htsr")).unwrap();
    assert!(matches!(
        Report::from_history(&store, &ReportOptions::default()),
        Err(Error::Usage(_))
    ));
}

#[test]
fn sixty_layers_over_many_checkpoints_stay_readable() {
    // A transformer-sized run from the store's fixtures: 60 layers named like `model.layers.11.mlp.up_proj`,
    // 90 checkpoints shown in at most 40 columns.
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(tmp.path().join(".htsr")).unwrap();
    for k in 0..90u64 {
        let (record, layers) = htsr_storage::fixtures::checkpoint("big", k * 100, 60);
        store.write_checkpoint(&record, &layers, &[]).unwrap();
    }
    let options = ReportOptions {
        max_columns: Some(40),
        ..ReportOptions::default()
    };
    let report = Report::from_history(&store, &options).unwrap();
    let r = &report.runs[0];
    assert_eq!(r.phase_grid.layers.len(), 60);
    assert_eq!(r.phase_grid.steps.len(), 40);
    assert_eq!(
        r.phase_grid.steps.last(),
        Some(&8900),
        "the newest checkpoint is always shown"
    );
    assert_eq!(r.alpha.len(), 60);
    let map = htsr_report::phase_map_svg(&r.phase_grid, "big");
    let (w, h) = htsr_report::svg_size(&map).unwrap();
    // Rows of 11 px for a map this tall, labels cut to fit: a page wide, a screen high.
    assert!(w <= 1100.0 && h <= 60.0 * 11.0 + 200.0, "{w}x{h}");
    assert!(
        map.contains("model.layers.11.mlp.down_proj"),
        "full names in the tooltips"
    );
    let html = report.to_html().unwrap();
    // To look at it: HTSR_REPORT_KEEP=/tmp/big.html cargo test -p htsr-report --test report sixty
    if let Some(path) = std::env::var_os("HTSR_REPORT_KEEP") {
        std::fs::write(path, &html).unwrap();
    }
    assert_eq!(inline_svgs(&html).len(), 1 + 60 + 2 * 60);
    assert!(html.len() < 20 << 20, "{} bytes", html.len());
}
