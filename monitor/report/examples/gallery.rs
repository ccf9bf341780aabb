//! The chart API at work, on layers the engine analyzes: an ESD panel per synthetic phase ensemble (raw
//! eigenvalues with both fits), the same panels in one grid, and a line chart with a log x axis; each as SVG and
//! PNG.
//!
//!     cargo run -p htsr-report --example gallery -- /tmp/htsr-gallery

use htsr_engine::analyze::{analyze_matrix, AnalyzeOptions};
use htsr_engine::synthetic::Ensemble;
use htsr_report::{esd_grid_svg, svg_to_png, EsdPanel, LineChart, Series};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "htsr-gallery".into()),
    );
    std::fs::create_dir_all(&out)?;
    let write = |name: &str, svg: &str| -> Result<(), Box<dyn std::error::Error>> {
        std::fs::write(out.join(format!("{name}.svg")), svg)?;
        std::fs::write(out.join(format!("{name}.png")), svg_to_png(svg, 2.0)?)?;
        Ok(())
    };
    let mut panels = Vec::new();
    for (i, e) in Ensemble::ALL.iter().enumerate() {
        let w = e.sample(400, 200, i as u64);
        let a = analyze_matrix(&e.label(), w.view(), &AnalyzeOptions::default());
        // From a report: the raw eigenvalues with the report's power-law and MP fits, titled with the ensemble.
        if let Some(p) = EsdPanel::from_report(e.label(), &a.report, a.eigenvalues) {
            panels.push(p);
        }
    }
    write("esd-single", &panels[0].to_svg(380, 300)?)?;
    write(
        "esd-grid",
        &esd_grid_svg(
            Some("the phase ensembles, 400 x 200"),
            &panels,
            3,
            (380, 300),
        )?,
    )?;
    let chart = LineChart::new("test accuracy against batch size")
        .labels("batch size", "test accuracy (%)")
        .log_x()
        .series(Series::line_and_points(
            "protocol A",
            vec![
                (4.0, 98.22),
                (16.0, 98.20),
                (64.0, 93.79),
                (256.0, 63.68),
                (1024.0, 34.20),
            ],
        ))
        .series(Series::line_and_points(
            "protocol C",
            vec![(4.0, 97.89), (16.0, 98.75), (64.0, 98.78)],
        ));
    write("accuracy", &chart.to_svg(520, 340)?)?;
    println!("{}", out.display());
    Ok(())
}
