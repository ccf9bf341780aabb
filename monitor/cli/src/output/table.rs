use std::io::{self, Write};

use htsr_contracts::palette::RESET;
use htsr_contracts::text::{clip_front, pad_end, terminal_safe, width};
use htsr_contracts::{LayerReport, LayerStatus};

use htsr_engine::CheckpointAnalysis;

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

/// The widest layer-name column; longer names are clipped at the front (layer names differ at their ends).
const MAX_NAME_COLUMNS: usize = 48;

/// Writes the human table: one row per tensor, skipped and failed ones with their reason. Names and reasons come
/// from the file, which anyone may have written: they are shown terminal-safe (control characters escaped) and
/// measured in display columns, so wide characters keep the columns aligned.
pub fn write_table(
    out: &mut dyn Write,
    analysis: &CheckpointAnalysis,
    colour: bool,
) -> io::Result<()> {
    let names: Vec<String> = analysis
        .layers
        .iter()
        .map(|l| terminal_safe(&l.report.name).into_owned())
        .collect();
    let name_width = names
        .iter()
        .map(|n| width(n))
        .max()
        .unwrap_or(5)
        .clamp(5, MAX_NAME_COLUMNS);
    writeln!(
        out,
        "{}",
        terminal_safe(&analysis.path.display().to_string())
    )?;
    writeln!(
        out,
        "{}  {:<16} {:>7} {:>6} {:>5} {:>6} {:>7}  {:<22} note",
        pad_end("layer", name_width),
        "shape",
        "alpha",
        "D",
        "tail",
        "spikes",
        "softrk",
        "phase"
    )?;
    for (layer, name) in analysis.layers.iter().zip(&names) {
        let r = &layer.report;
        let shape = r.shape_text();
        let name = pad_end(&clip_front(name, name_width), name_width);
        let pl = r.power_law.as_ref();
        let reason = terminal_safe(r.reason.as_deref().unwrap_or(""));
        let note = match r.status {
            LayerStatus::Success => r.warning.as_str().to_string(),
            LayerStatus::Failed => format!("FAILED: {reason}"),
            LayerStatus::Skipped => format!("skipped: {reason}"),
            LayerStatus::Missing => format!("MISSING: {reason}"),
        };
        let label = phase_label(r);
        let phase = match (colour, r.phase()) {
            (true, Some(p)) => format!("{}{label:<22}{RESET}", p.style().term.sgr()),
            _ => format!("{label:<22}"),
        };
        writeln!(
            out,
            "{name}  {shape:<16} {:>7} {:>6} {:>5} {:>6} {:>7}  {phase} {note}",
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
