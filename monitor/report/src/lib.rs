//! htsr-report: a report to share. One self-contained HTML file (inline SVG and CSS; no script, no network, no
//! font files) with a store's phase maps, alpha over steps, ESDs with their fits and the runs compared; or the same
//! charts as SVG or PNG files for a paper. `htsr-watch report` is its command line.
//!
//! # The report
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use htsr_report::{Report, ReportOptions};
//! // Any htsr_api::History: a store opened directly, or a running daemon through htsr-client.
//! let store = htsr_storage::Store::open_existing("runs/.htsr")?;
//! let report = Report::from_history(&store, &ReportOptions::default())?;
//! std::fs::write("report.html", report.to_html()?)?;
//! for figure in report.figures()? {
//!     std::fs::write(format!("{}.png", figure.name), htsr_report::svg_to_png(&figure.svg, 2.0)?)?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Charts for other figures
//!
//! Three building blocks, each drawn to an SVG string (`to_svg(width, height)`) and to PNG with [`svg_to_png`]:
//!
//! - [`EsdPanel`]: one layer's ESD on log-log axes, from raw eigenvalues ([`EsdPanel::from_eigenvalues`]) or a
//!   stored histogram, with the power-law fit ([`EsdPanel::with_power_law`]: a line of slope -alpha from xmin)
//!   and the Marchenko-Pastur fit ([`EsdPanel::with_mp`] with an [`MpOverlay`]: the density and the bulk edges, in
//!   htsr's unit-mean convention: sigma in unit-mean units, the edges in the layer's units, `w_scale` between
//!   them). [`EsdPanel::from_report`] takes all of it from a [`htsr_contracts::LayerReport`].
//! - [`esd_grid_svg`] / [`grid_svg`]: several panels (ESDs or line charts) in one figure.
//! - [`LineChart`]: lines and scatters on linear or log axes, e.g. test accuracy against batch size:
//!
//! ```
//! use htsr_report::{LineChart, Series};
//! let chart = LineChart::new("test accuracy against batch size")
//!     .labels("batch size", "accuracy (%)")
//!     .log_x()
//!     .series(Series::line_and_points("seed 0", vec![(4.0, 98.2), (64.0, 93.8), (1024.0, 34.2)]));
//! let svg = chart.to_svg(480, 320)?;
//! let png = htsr_report::svg_to_png(&svg, 2.0)?; // 960 x 640 pixels
//! # Ok::<(), htsr_report::Error>(())
//! ```
//!
//! Text is laid out and rasterized with DejaVu Sans, compiled into the library (Bitstream Vera licence, in
//! `fonts/`), so PNGs are the same on every machine and need no installed font.

#![warn(missing_docs)]

mod chart;
mod esd;
mod font;
mod grid;
mod html;
mod legend;
mod line;
mod phase_map;
mod render;
mod report;
mod style;

pub use esd::{EsdPanel, MpOverlay, PowerLawOverlay, Spectrum};
pub use grid::{esd_grid_svg, grid_svg, Panel};
pub use line::{LineChart, Mark, Scale, Series};
pub use phase_map::phase_map_svg;
pub use render::{escape as html_escape, svg_size, svg_to_png};
pub use report::{
    alpha_chart, EsdSet, Figure, Report, ReportOptions, RunSection, DEFAULT_MAX_COLUMNS,
};
pub use style::{palette, phase_colour, Rgb, NO_PHASE, PALETTE};

/// What can go wrong making a report or a chart.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request names something the store does not have (a run, a step), or an impossible setting.
    #[error("{0}")]
    Usage(String),
    /// The history could not be read.
    #[error("reading the history: {0}")]
    History(#[from] htsr_api::Error),
    /// plotters failed to draw (a font or backend error).
    #[error("drawing a chart: {0}")]
    Draw(String),
    /// An SVG document did not parse, or its PNG could not be made.
    #[error("SVG: {0}")]
    Svg(String),
}
