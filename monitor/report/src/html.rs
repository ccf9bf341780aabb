//! The report as one self-contained HTML page: inline SVG and CSS only, no script, no external reference (fonts
//! included: the page asks for the reader's own sans-serif), laid out for the screen and for print.

use htsr_contracts::Phase;

use crate::phase_map::phase_map_svg;
use crate::render::{escape, short_number};
use crate::report::{
    file_stem, EsdSet, Report, RunSection, ALPHA_CELL, ESD_CELL, OVERLAY_CELL, SWEEP_SIZE,
};
use crate::style::{phase_colour, NO_PHASE};
use crate::Error;

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1680px; padding: 18px 28px 40px; background: #fff; color: #1b1b1b;
  font: 14px/1.45 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 30px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #e3e3e3; }
h3 { font-size: 16px; margin: 20px 0 6px; }
p { margin: 4px 0 8px; max-width: 110ch; }
.meta, .note { color: #5a5a5a; }
nav { margin: 10px 0 0; font-size: 13px; }
nav a { margin-right: 14px; color: #1f5fa8; text-decoration: none; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { padding: 3px 9px; border-bottom: 1px solid #e6e6e6; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f5f5; font-weight: 600; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #bbb; vertical-align: -1px; }
.phases { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 2px 18px;
  margin: 6px 0 12px; font-size: 13px; }
.phases div { padding: 2px 0; }
figure { margin: 0; }
figure.wide { overflow-x: auto; }
svg { display: block; max-width: 100%; height: auto; }
.multiples, .panels, .overlays { display: grid; gap: 10px; }
.multiples { grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); }
.panels, .overlays { grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); }
.multiples figure, .panels figure, .overlays figure { border: 1px solid #e6e6e6; border-radius: 4px; overflow: hidden; }
footer { margin-top: 36px; color: #5a5a5a; font-size: 12px; }
@page { size: A4 landscape; margin: 10mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav { display: none; }
  section.run, section.across { break-before: page; }
  h2, h3, p.note, p.meta { break-after: avoid; break-inside: avoid; }
  figure, table, .phases div { break-inside: avoid; }
  .multiples { grid-template-columns: repeat(4, 1fr); }
  .panels, .overlays { grid-template-columns: repeat(3, 1fr); }
  figure.wide { overflow: visible; }
  .multiples figure, .panels figure, .overlays figure { border-color: #ccc; }
}
"#;

/// An SVG document made fit to sit inline in HTML: no XML namespace declaration (the HTML parser knows `<svg>`;
/// a namespace URL would be the page's only `http://` string), and a label for screen readers.
fn inline_svg(svg: &str, label: &str) -> String {
    let body = svg.trim_start().trim_start_matches(|c| c != '<').replacen(
        r#" xmlns="http://www.w3.org/2000/svg""#,
        "",
        1,
    );
    body.replacen(
        "<svg",
        &format!(r#"<svg role="img" aria-label="{}""#, escape(label)),
        1,
    )
}

fn anchor(run: &str) -> String {
    format!("run-{}", file_stem(run))
}

/// UTC "YYYY-MM-DD HH:MM" from Unix seconds (days to civil date: H. Hinnant's algorithm).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn phase_legend() -> String {
    let mut s = String::from(r#"<div class="phases">"#);
    for p in Phase::ALL {
        s.push_str(&format!(
            r#"<div><span class="swatch" style="background:{}"></span> <b>{}</b>: {}</div>"#,
            phase_colour(p).hex(),
            p.as_str(),
            escape(p.meaning())
        ));
    }
    s.push_str(&format!(
        r#"<div><span class="swatch" style="background:{}"></span> <b>no phase</b>: the layer was skipped or failed at that checkpoint, or was not in it</div></div>"#,
        NO_PHASE.hex()
    ));
    s
}

fn runs_table(report: &Report) -> String {
    let mut s = String::from("<table><thead><tr><th>run</th><th>batch size</th><th>checkpoints</th><th>last step</th><th>layers</th><th>mean α (last)</th>");
    for p in Phase::ALL {
        s.push_str(&format!(
            r#"<th title="{}"><span class="swatch" style="background:{}"></span></th>"#,
            p.as_str(),
            phase_colour(p).hex()
        ));
    }
    s.push_str("</tr></thead><tbody>");
    for r in &report.runs {
        let sm = &r.summary;
        s.push_str(&format!(
            r##"<tr><td><a href="#{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"##,
            anchor(&sm.run),
            escape(&sm.run),
            r.batch_size.map_or("-".into(), short_number),
            sm.checkpoints,
            sm.last_step,
            sm.layers,
            sm.mean_alpha.map_or("-".into(), |a| format!("{a:.2}")),
        ));
        for p in Phase::ALL {
            let n = sm.phase_counts[p.index()];
            if n == 0 {
                s.push_str(r#"<td class="note">·</td>"#);
            } else {
                s.push_str(&format!(r#"<td title="{}">{n}</td>"#, p.as_str()));
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn run_section(r: &RunSection) -> Result<String, Error> {
    let run = &r.summary.run;
    let mut s = format!(
        r#"<section class="run" id="{}"><h2>Run {}</h2>"#,
        anchor(run),
        escape(run)
    );
    s.push_str(&format!(
        r#"<p class="meta">{} checkpoints, last step {}, {} layers{}</p>"#,
        r.summary.checkpoints,
        r.summary.last_step,
        r.phase_grid.layers.len(),
        r.batch_size.map_or(String::new(), |b| format!(
            ", batch size {}",
            short_number(b)
        ))
    ));
    if !r.hidden_layers.is_empty() {
        let shown: Vec<String> = r.hidden_layers.iter().take(12).map(|l| escape(l)).collect();
        s.push_str(&format!(
            r#"<p class="note">Not drawn ({} tensors with no fit at any checkpoint: skipped or failed): {}{}</p>"#,
            r.hidden_layers.len(),
            shown.join(", "),
            if r.hidden_layers.len() > 12 { ", …" } else { "" }
        ));
    }
    s.push_str("<h3>Phase map</h3>");
    s.push_str(r#"<p class="note">Each row a layer, each column a checkpoint; hover a cell for its layer, phase and steps.</p>"#);
    s.push_str(&format!(
        r#"<figure class="wide">{}</figure>"#,
        inline_svg(
            &phase_map_svg(&r.phase_grid, &format!("{run}: phase map")),
            &format!("phase map of run {run}")
        )
    ));
    if !r.alpha.is_empty() {
        s.push_str("<h3>α over steps</h3>");
        s.push_str(r#"<p class="note">One chart per layer, each point in the colour of the layer's phase at that checkpoint; dashed lines at α = 2 (below: over-trained, WeightWatcher's warning) and α = 6 (above: under-trained), when in range.</p><div class="multiples">"#);
        for c in &r.alpha {
            s.push_str(&format!(
                "<figure>{}</figure>",
                inline_svg(
                    &c.to_svg(ALPHA_CELL.0, ALPHA_CELL.1)?,
                    &format!("alpha over steps of {}", c.title)
                )
            ));
        }
        s.push_str("</div>");
    }
    for set in &r.esd {
        s.push_str(&esd_section(set)?);
    }
    if !r.missing_steps.is_empty() {
        let m: Vec<String> = r.missing_steps.iter().map(u64::to_string).collect();
        s.push_str(&format!(
            r#"<p class="note">This run has no checkpoint at step {}.</p>"#,
            m.join(", ")
        ));
    }
    s.push_str("</section>");
    Ok(s)
}

/// One step's ESD panels, with a note on what they were drawn from and the layers that have no spectrum.
fn esd_section(set: &EsdSet) -> Result<String, Error> {
    let mut s = String::new();
    s.push_str(&format!("<h3>ESDs at step {}</h3>", set.step));
    let source = if set.raw == set.panels.len() {
        "raw eigenvalues".to_string()
    } else if set.raw == 0 {
        "the stored 96-bin histogram (raw eigenvalues are kept for a run's latest and pinned checkpoints: <code>htsr-watch db pin</code>)".to_string()
    } else {
        format!(
            "raw eigenvalues for {} layers, the stored histogram for the others",
            set.raw
        )
    };
    s.push_str(&format!(
        r#"<p class="note">Density of the eigenvalues on log-log axes from {source}; red: the power-law fit from xmin (dashed orange) with slope −α; blue: the Marchenko-Pastur density and its bulk edges (dashed); purple: detX.</p>"#,
    ));
    if !set.without_spectrum.is_empty() {
        let items: Vec<String> = set
            .without_spectrum
            .iter()
            .map(|(l, why)| format!("{} ({})", escape(l), escape(why)))
            .collect();
        s.push_str(&format!(
            r#"<p class="note">No spectrum: {}</p>"#,
            items.join(", ")
        ));
    }
    s.push_str(r#"<div class="panels">"#);
    for p in &set.panels {
        s.push_str(&format!(
            "<figure>{}</figure>",
            inline_svg(
                &p.to_svg(ESD_CELL.0, ESD_CELL.1)?,
                &format!("ESD of {} at step {}", p.title, set.step)
            )
        ));
    }
    s.push_str("</div>");
    Ok(s)
}

impl Report {
    /// The whole report as one HTML document (UTF-8): no script, no external resource, printable.
    pub fn to_html(&self) -> Result<String, Error> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut s = String::with_capacity(1 << 20);
        s.push_str(&format!(
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{}</title><link rel="icon" href="data:,"><style>{CSS}</style></head><body>"#,
            escape(&self.title)
        ));
        s.push_str(&format!("<header><h1>{}</h1>", escape(&self.title)));
        s.push_str(&format!(
            r#"<p class="meta">{}{} run{} · generated {} by htsr {}</p>"#,
            self.source
                .as_ref()
                .map_or(String::new(), |src| format!("{} · ", escape(src))),
            self.runs.len(),
            if self.runs.len() == 1 { "" } else { "s" },
            utc(now),
            env!("CARGO_PKG_VERSION")
        ));
        s.push_str("<nav>");
        s.push_str(r##"<a href="#runs">Runs</a><a href="#phases">Phases</a>"##);
        for r in &self.runs {
            s.push_str(&format!(
                r##"<a href="#{}">{}</a>"##,
                anchor(&r.summary.run),
                escape(&r.summary.run)
            ));
        }
        if !self.overlays.is_empty() || self.sweep.is_some() {
            s.push_str(r##"<a href="#across">Across runs</a>"##);
        }
        s.push_str("</nav></header>");
        s.push_str(r#"<section id="runs"><h2>Runs</h2>"#);
        s.push_str(&runs_table(self));
        s.push_str("</section>");
        s.push_str(r#"<section id="phases"><h2>Phases</h2><p class="note">Each layer's phase of training, from its eigenvalue spectrum (Martin &amp; Mahoney, arXiv 1901.08276). α is the power-law exponent of the spectrum's tail.</p>"#);
        s.push_str(&phase_legend());
        s.push_str("</section>");
        for r in &self.runs {
            s.push_str(&run_section(r)?);
        }
        if !self.overlays.is_empty() || self.sweep.is_some() {
            s.push_str(r#"<section class="across" id="across"><h2>Across runs</h2>"#);
            if let Some(sweep) = &self.sweep {
                s.push_str(&format!(
                    r#"<figure style="max-width:{}px">{}</figure>"#,
                    SWEEP_SIZE.0,
                    inline_svg(&sweep.to_svg(SWEEP_SIZE.0, SWEEP_SIZE.1)?, &sweep.title)
                ));
            }
            if !self.overlays.is_empty() {
                s.push_str(r#"<h3>α over steps, one line per run</h3><div class="overlays">"#);
                for c in &self.overlays {
                    s.push_str(&format!(
                        "<figure>{}</figure>",
                        inline_svg(
                            &c.to_svg(OVERLAY_CELL.0, OVERLAY_CELL.1)?,
                            &format!("alpha of {} across runs", c.title)
                        )
                    ));
                }
                s.push_str("</div>");
            }
            s.push_str("</section>");
        }
        s.push_str(r#"<footer>Made with <code>htsr-watch report</code>. The eigenvalues are those of W<sup>T</sup>W for each layer's weight matrix W (squared singular values, WeightWatcher's convention); the fits are WeightWatcher 0.7.7's.</footer></body></html>"#);
        s.push('\n');
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_svg_drops_the_namespace_and_gets_a_label() {
        let out = inline_svg(
            r#"<svg width="2" height="2" viewBox="0 0 2 2" xmlns="http://www.w3.org/2000/svg"></svg>"#,
            "a <b>",
        );
        assert_eq!(
            out,
            r#"<svg role="img" aria-label="a &lt;b&gt;" width="2" height="2" viewBox="0 0 2 2"></svg>"#
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_767_225_599), "2025-12-31 23:59 UTC");
    }
}
