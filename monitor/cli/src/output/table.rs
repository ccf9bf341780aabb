use std::io::{self, Write};

use htsr_contracts::{LayerReport, LayerStatus, Phase};

use htsr_engine::CheckpointAnalysis;

/// ANSI colour of a phase, from random (blue) through learning (green) to heavy tails (red) and collapse (magenta).
pub fn phase_colour(phase: Phase) -> &'static str {
    match phase {
        Phase::RandomLike => "\x1b[34m",
        Phase::BleedingOut => "\x1b[36m",
        Phase::BulkPlusSpikes => "\x1b[32m",
        Phase::BulkDecay => "\x1b[33m",
        Phase::HeavyTailed => "\x1b[31m",
        Phase::RankCollapse => "\x1b[35m",
        Phase::Insufficient => "\x1b[90m",
    }
}

fn fmt_num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "-".to_string(),
    }
}

fn phase_label(r: &LayerReport) -> String {
    match &r.phase {
        Some(v) if v.very_heavy_tailed => format!("{} (very)", v.phase),
        Some(v) => v.phase.to_string(),
        None => "-".to_string(),
    }
}

/// Writes the human table: one row per tensor, skipped and failed ones with their reason.
pub fn write_table(
    out: &mut dyn Write,
    analysis: &CheckpointAnalysis,
    colour: bool,
) -> io::Result<()> {
    let name_width = analysis
        .layers
        .iter()
        .map(|l| l.report.name.len())
        .max()
        .unwrap_or(5)
        .clamp(5, 48);
    writeln!(out, "{}", analysis.path.display())?;
    writeln!(
        out,
        "{:<name_width$}  {:<16} {:>7} {:>6} {:>5} {:>6} {:>7}  {:<22} note",
        "layer", "shape", "alpha", "D", "tail", "spikes", "softrk", "phase"
    )?;
    for layer in &analysis.layers {
        let r = &layer.report;
        let shape = r
            .shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x");
        let mut name = r.name.clone();
        if name.len() > name_width {
            name = format!("…{}", &name[name.len() - (name_width - 1)..]);
        }
        let pl = r.power_law.as_ref();
        let note = match r.status {
            LayerStatus::Success => r.warning.as_str().to_string(),
            LayerStatus::Failed => format!("FAILED: {}", r.reason.as_deref().unwrap_or("")),
            LayerStatus::Skipped => format!("skipped: {}", r.reason.as_deref().unwrap_or("")),
            LayerStatus::Missing => format!("MISSING: {}", r.reason.as_deref().unwrap_or("")),
        };
        let label = phase_label(r);
        let phase = match (colour, r.phase()) {
            (true, Some(p)) => format!("{}{label:<22}\x1b[0m", phase_colour(p)),
            _ => format!("{label:<22}"),
        };
        writeln!(
            out,
            "{name:<name_width$}  {shape:<16} {:>7} {:>6} {:>5} {:>6} {:>7}  {phase} {note}",
            fmt_num(pl.map(|p| p.alpha), 3),
            fmt_num(pl.map(|p| p.d), 3),
            pl.map_or("-".to_string(), |p| p.num_pl_spikes.to_string()),
            r.mp.as_ref()
                .map_or("-".to_string(), |m| m.num_spikes.to_string()),
            fmt_num(r.mp.as_ref().map(|m| m.mp_softrank), 3),
        )?;
    }
    let analyzed = analysis
        .layers
        .iter()
        .filter(|l| l.report.status == LayerStatus::Success)
        .count();
    let failed = analysis
        .layers
        .iter()
        .filter(|l| l.report.status == LayerStatus::Failed)
        .count();
    let skipped = analysis.layers.len() - analyzed - failed;
    writeln!(
        out,
        "{analyzed} analyzed, {failed} failed, {skipped} skipped in {:.2} s",
        analysis.seconds
    )?;
    Ok(())
}
