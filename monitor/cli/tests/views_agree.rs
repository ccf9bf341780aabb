//! One layer, three views, one signal: the command line's table (`htsr-watch analyze --color always`), the
//! dashboard (drawn from the store the real daemon filled) and the report say the same phase in the same colour
//! and the same alpha for every layer of one checkpoint. The layers are the engine's synthetic ensembles, chosen
//! to land in different phases so that a view that swapped two colours fails.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Stdio};

use common::*;
use htsr_contracts::{LayerReport, Phase};
use htsr_engine::synthetic::Ensemble;
use htsr_report::{phase_colour, Report, ReportOptions};
use htsr_tui::{render_buffer, App, DashboardOptions, Mode};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

/// (tensor, ensemble, rows, columns): random-like noise, strong spikes, a power-law tail, a collapsed rank.
const LAYERS: [(&str, Ensemble, usize, usize); 4] = [
    ("noise.weight", Ensemble::Gaussian, 240, 120),
    ("spiked.weight", Ensemble::StrongSpikes, 240, 120),
    ("heavy.weight", Ensemble::Pareto { mu_tenths: 15 }, 240, 120),
    ("collapsed.weight", Ensemble::LowRankPlusTinyNoise, 240, 120),
];

fn checkpoint_bytes() -> Vec<u8> {
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = LAYERS
        .iter()
        .enumerate()
        .map(|(i, (name, ensemble, n, m))| {
            let bytes = ensemble
                .sample(*n, *m, 11 + i as u64)
                .iter()
                .flat_map(|v| (*v as f32).to_le_bytes())
                .collect();
            (name.to_string(), vec![*n, *m], bytes)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, shape, bytes)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap();
            (n.clone(), view)
        })
        .collect();
    safetensors::tensor::serialize(views, None).unwrap()
}

/// What the table says of each layer: (alpha as printed, phase name, the SGR sequence before the phase).
fn table_rows(file: &std::path::Path) -> HashMap<String, (String, String, String)> {
    let out = Command::new(BIN)
        .args(["analyze", "--color", "always"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rows = HashMap::new();
    for line in text.lines() {
        let Some(name) = LAYERS
            .iter()
            .map(|l| l.0.trim_end_matches(".weight"))
            .find(|n| line.starts_with(&format!("{n} ")))
        else {
            continue;
        };
        let sgr_at = line
            .find("\x1b[")
            .unwrap_or_else(|| panic!("no colour: {line:?}"));
        let sgr_end = sgr_at + line[sgr_at..].find('m').unwrap() + 1;
        let before: Vec<&str> = line[..sgr_at].split_whitespace().collect();
        let alpha = before[2].to_string();
        let phase = line[sgr_end..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        rows.insert(
            name.to_string(),
            (alpha, phase, line[sgr_at..sgr_end].to_string()),
        );
    }
    rows
}

#[test]
fn the_table_the_dashboard_and_the_report_agree_on_each_layers_phase_colour_and_alpha() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("run").join(step_name(100));
    write_atomic(&file, &checkpoint_bytes());
    let out = watch_once(tmp.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = htsr_storage::Store::open_existing(tmp.path().join(".htsr")).unwrap();
    let stored: Vec<LayerReport> = store.layers_at("run", 100).unwrap();
    let phase_of = |layer: &str| -> Phase {
        stored
            .iter()
            .find(|r| r.name == layer)
            .and_then(LayerReport::phase)
            .unwrap_or_else(|| panic!("{layer} has no phase"))
    };
    let alpha_of = |layer: &str| -> f64 {
        let r = stored.iter().find(|r| r.name == layer).unwrap();
        r.power_law.as_ref().expect("a power-law fit").alpha
    };
    let phases: BTreeSet<Phase> = stored.iter().filter_map(LayerReport::phase).collect();
    assert!(
        phases.len() >= 3,
        "the layers should span several phases for the colours to mean anything: {phases:?}"
    );

    // The table: the phase's name in the phase's terminal colour, alpha to three decimals.
    let table = table_rows(&file);
    assert_eq!(table.len(), LAYERS.len(), "{table:?}");
    for (layer, (alpha, phase, sgr)) in &table {
        let p = phase_of(layer);
        assert_eq!(phase, p.as_str(), "{layer}: table phase");
        assert_eq!(sgr, p.style().term.sgr(), "{layer}: table colour");
        assert_eq!(
            alpha,
            &format!("{:.3}", alpha_of(layer)),
            "{layer}: table alpha"
        );
    }

    // The dashboard: the row's phase cell in the same terminal colour, alpha to two decimals.
    let mut app = App::new(DashboardOptions {
        title: "views".into(),
        initial_run: Some("run".into()),
        mode: Mode::Browse,
    });
    let buf = render_buffer(&mut app, &store, 140, 24);
    let width = buf.area.width;
    let row_text = |y: u16| -> String { (0..width).map(|x| buf[(x, y)].symbol()).collect() };
    for layer in LAYERS.iter().map(|l| l.0.trim_end_matches(".weight")) {
        let p = phase_of(layer);
        let y = (0..buf.area.height)
            .find(|&y| {
                row_text(y)
                    .trim_start_matches(['›', ' '])
                    .starts_with(&format!("{layer} "))
            })
            .unwrap_or_else(|| {
                panic!(
                    "no dashboard row for {layer}:\n{}",
                    (0..buf.area.height)
                        .map(row_text)
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            });
        let text = row_text(y);
        let at = text
            .find(p.as_str())
            .unwrap_or_else(|| panic!("{layer}: the dashboard row does not say {p}: {text:?}"));
        let column = text[..at].chars().count() as u16;
        assert_eq!(
            buf[(column, y)].fg,
            htsr_tui::view::style::term_color(p.style().term),
            "{layer}: dashboard colour"
        );
        assert!(
            text.contains(&format!("{:.2}", alpha_of(layer))),
            "{layer}: the dashboard row lacks alpha {:.2}: {text:?}",
            alpha_of(layer)
        );
    }

    // The report: the alpha chart's subtitle in the phase's colour with its alpha, and the phase map's cell.
    let report = Report::from_history(&store, &ReportOptions::default()).unwrap();
    let run = &report.runs[0];
    let map = htsr_report::phase_map_svg(&run.phase_grid, "map");
    for layer in LAYERS.iter().map(|l| l.0.trim_end_matches(".weight")) {
        let p = phase_of(layer);
        let chart = run.alpha.iter().find(|c| c.title == layer).unwrap();
        assert_eq!(
            chart.subtitle_colour,
            Some(phase_colour(p)),
            "{layer}: report colour"
        );
        let subtitle = chart.subtitle.as_deref().unwrap();
        assert!(
            subtitle.starts_with(&format!("last: α {:.2} · {}", alpha_of(layer), p.as_str())),
            "{layer}: {subtitle}"
        );
        let cell = format!(
            r#"fill="{}"><title>{layer}: {}, step 100</title>"#,
            phase_colour(p).hex(),
            p.as_str()
        );
        assert!(map.contains(&cell), "{layer}: the phase map lacks {cell}");
        // The same hue in every view: the report's sRGB is the palette's, whose terminal colour the others use.
        let (r, g, b) = p.style().rgb;
        assert_eq!(phase_colour(p), htsr_report::Rgb(r, g, b));
    }
}
