//! The header's alerts, in words, like tokio-console's warnings: each is a rule over the loaded view models.

use htsr_api::PhaseGrid;
use htsr_contracts::{LayerStatus, Phase};

use super::layers::LayerRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warn,
    Info,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub level: Level,
    pub text: String,
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// All alerts for the newest checkpoint (`rows`) and the run's phase history (`grid`), most serious first.
pub fn alerts(rows: &[LayerRow], grid: &PhaseGrid) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut warn = |text: String| {
        out.push(Alert {
            level: Level::Warn,
            text,
        })
    };
    let ok = |r: &&LayerRow| r.status == LayerStatus::Success;
    let over = rows
        .iter()
        .filter(ok)
        .filter(|r| r.alpha.is_some_and(|a| a < 2.0))
        .count();
    if over > 0 {
        warn(format!(
            "{} over-trained (alpha < 2)",
            plural(over, "layer")
        ));
    }
    let collapse = rows
        .iter()
        .filter(|r| r.phase == Some(Phase::RankCollapse))
        .count();
    if collapse > 0 {
        warn(format!("{} in rank collapse", plural(collapse, "layer")));
    }
    let failed = rows
        .iter()
        .filter(|r| r.status == LayerStatus::Failed)
        .count();
    if failed > 0 {
        warn(format!("{} failed", plural(failed, "layer")));
    }
    out.extend(left_heavy_tailed(grid));
    let under = rows
        .iter()
        .filter(ok)
        .filter(|r| r.alpha.is_some_and(|a| a > 6.0))
        .count();
    let skipped = rows
        .iter()
        .filter(|r| r.status == LayerStatus::Skipped)
        .count();
    let mut info = |text: String| {
        out.push(Alert {
            level: Level::Info,
            text,
        })
    };
    if under > 0 {
        info(format!(
            "{} under-trained (alpha > 6)",
            plural(under, "layer")
        ));
    }
    if skipped > 0 {
        info(format!("{} skipped", plural(skipped, "layer")));
    }
    out
}

/// "<layer> left heavy_tailed at step N" for each layer that was heavy_tailed and no longer is at the newest
/// column. On a downsampled grid the exact step is unknown, so it says "by step N".
fn left_heavy_tailed(grid: &PhaseGrid) -> Vec<Alert> {
    let exact = grid.total_checkpoints <= grid.steps.len();
    let mut out = Vec::new();
    for (name, cells) in grid.layers.iter().zip(&grid.cells) {
        let Some(last) = cells.last() else { continue };
        if *last == Some(Phase::HeavyTailed) || last.is_none() {
            continue;
        }
        if let Some(c) = cells.iter().rposition(|p| *p == Some(Phase::HeavyTailed)) {
            let step = grid.steps[c + 1];
            let when = if exact { "at" } else { "by" };
            out.push(Alert {
                level: Level::Warn,
                text: format!("{name} left heavy_tailed {when} step {step}"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use htsr_storage::fixtures;

    #[test]
    fn counts_and_transitions_are_said_in_words() {
        let mut a = fixtures::layer_report("fc1", 1);
        a.power_law.as_mut().unwrap().alpha = 1.5;
        a.phase.as_mut().unwrap().phase = Phase::BulkDecay;
        let mut b = fixtures::layer_report("fc2", 2);
        b.power_law.as_mut().unwrap().alpha = 3.0;
        b.phase.as_mut().unwrap().phase = Phase::RankCollapse;
        let rows = super::super::layers::rows(&[a, b, fixtures::skipped_report("bias")], &[]);
        let grid = PhaseGrid {
            layers: vec!["fc1".into(), "fc2".into()],
            steps: vec![10, 20, 30],
            cells: vec![
                vec![
                    Some(Phase::HeavyTailed),
                    Some(Phase::HeavyTailed),
                    Some(Phase::BulkDecay),
                ],
                vec![Some(Phase::BulkDecay); 3],
            ],
            total_checkpoints: 3,
        };
        let texts: Vec<String> = alerts(&rows, &grid).into_iter().map(|a| a.text).collect();
        assert_eq!(
            texts,
            vec![
                "1 layer over-trained (alpha < 2)",
                "1 layer in rank collapse",
                "fc1 left heavy_tailed at step 30",
                "1 layer skipped"
            ]
        );
    }
}
