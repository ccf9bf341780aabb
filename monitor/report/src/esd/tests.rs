use super::*;
use crate::style::phase_colour;
use htsr_engine::analyze::{analyze_matrix, AnalyzeOptions};
use htsr_engine::synthetic::Ensemble;

fn analyzed(ensemble: Ensemble, n: usize, m: usize, seed: u64) -> (LayerReport, Vec<f64>) {
    let w = ensemble.sample(n, m, seed);
    let a = analyze_matrix("layer", w.view(), &AnalyzeOptions::default());
    (a.report, a.eigenvalues.expect("analyzed"))
}

#[test]
fn the_mp_overlay_lands_on_the_stored_bulk_edges_in_layer_units() {
    // A real fit on a layer far from unit mean (entries scaled by 30): sigma is in unit-mean units and the
    // stored edges in the layer's; the overlay must put the law's support exactly on those edges.
    let m = Ensemble::Gaussian.sample(400, 200, 7) * 30.0;
    let a = analyze_matrix("layer", m.view(), &AnalyzeOptions::default());
    let (report, evals) = (a.report, a.eigenvalues.expect("analyzed"));
    assert!(
        report.mp.as_ref().unwrap().w_scale < 0.1,
        "the layer is far from unit mean"
    );
    let mp = MpOverlay::from_report(&report).expect("an MP fit");
    let stored = report.mp.as_ref().unwrap();
    let (lo, hi) = mp.support();
    assert!(
        (lo / stored.bulk_min - 1.0).abs() < 1e-9,
        "{lo} vs {}",
        stored.bulk_min
    );
    assert!(
        (hi / stored.bulk_max - 1.0).abs() < 1e-9,
        "{hi} vs {}",
        stored.bulk_max
    );
    // In layer units the density integrates to 1 over the bulk (trapezoids on a fine grid).
    let n = 200_000;
    let integral: f64 = (0..n)
        .map(|i| {
            let a = lo + (hi - lo) * i as f64 / n as f64;
            let b = lo + (hi - lo) * (i + 1) as f64 / n as f64;
            0.5 * (mp.density(a) + mp.density(b)) * (b - a)
        })
        .sum();
    assert!((integral - 1.0).abs() < 2e-3, "integral {integral}");
    // And the bulk holds the eigenvalues: most of the scaled spectrum lies inside the support.
    let inside = evals
        .iter()
        .filter(|v| **v >= lo * 0.9 && **v <= hi * 1.1)
        .count();
    assert!(
        inside as f64 > 0.95 * evals.len() as f64,
        "{inside} of {}",
        evals.len()
    );
}

#[test]
fn the_power_law_line_has_slope_minus_alpha_from_xmin() {
    let (report, evals) = analyzed(Ensemble::Pareto { mu_tenths: 15 }, 300, 150, 3);
    let n = evals.len() as f64;
    let pl = report.power_law.clone().unwrap();
    let panel = EsdPanel::from_report("heavy", &report, Some(evals.clone())).unwrap();
    let g = panel.geometry();
    let [(x0, y0), (x1, y1)] = g.power_law.expect("a power-law line");
    assert_eq!(x0, pl.xmin);
    let tail = evals.iter().filter(|v| **v >= pl.xmin).count() as f64;
    // The tail's density at xmin: its share of eigenvalues times the Pareto density's (alpha - 1) / xmin.
    assert!((y0 / (tail / n * (pl.alpha - 1.0) / pl.xmin) - 1.0).abs() < 1e-12);
    let slope = (y1.log10() - y0.log10()) / (x1.log10() - x0.log10());
    assert!(
        (slope + pl.alpha).abs() < 1e-9,
        "slope {slope}, alpha {}",
        pl.alpha
    );
    // The bars are a density: they integrate to the share of non-zero eigenvalues.
    let mass: f64 = g.bars.iter().map(|(a, b, d)| (b - a) * d).sum();
    assert!((mass - (g.total - g.zeros) as f64 / g.total as f64).abs() < 1e-9);
    assert!(g.y.0 > 0.0 && g.y.1 > g.y.0 && g.x.0 < pl.xmin && g.x.1 > x1);
}

#[test]
fn a_stored_histogram_draws_with_its_markers_and_the_svg_parses() {
    let (report, _) = analyzed(Ensemble::StrongSpikes, 256, 128, 11);
    let panel = EsdPanel::from_report("fc1 · step 100", &report, None).unwrap();
    assert!(matches!(panel.spectrum, Spectrum::Histogram(_)));
    let svg = panel.to_svg(380, 300).unwrap();
    assert_eq!(crate::svg_size(&svg).unwrap(), (380.0, 300.0));
    for needle in [
        "fc1 · step 100",
        "stored ESD histogram, 128 eigenvalues",
        "power law α",
        "MP bulk edges",
        "MP σ",
    ] {
        assert!(svg.contains(needle), "{needle} missing");
    }
    // The phase colour is used for the subtitle.
    let phase = report.phase().unwrap();
    assert!(
        svg.contains(&format!(
            "fill=\"{}\"",
            phase_colour(phase).hex().to_uppercase()
        )) || svg.contains(&phase_colour(phase).hex())
    );
}

#[test]
fn eigenvalues_alone_draw_without_fits_and_nothing_draws_a_message() {
    let svg = EsdPanel::from_eigenvalues("plain", vec![0.5, 1.0, 1.5, 2.0, 3.0, 0.0])
        .to_svg(300, 240)
        .unwrap();
    assert!(svg.contains("ESD, 6 eigenvalues (1 zero)"));
    assert!(!svg.contains("power law"));
    let empty = EsdPanel::from_eigenvalues("empty", vec![])
        .to_svg(300, 240)
        .unwrap();
    assert!(empty.contains("no positive eigenvalues"));
    crate::svg_size(&empty).unwrap();
    // alpha <= 1 is no density: the fit is dropped rather than drawn upside down.
    assert!(EsdPanel::from_eigenvalues("x", vec![1.0])
        .with_power_law(0.9, 1.0)
        .power_law
        .is_none());
}

#[test]
fn a_sparse_stored_histogram_is_drawn_with_merged_bins_and_the_same_mass() {
    // 40 eigenvalues (a 512 x 40 layer) in the store's 96 bins: about 2 sqrt(40) = 13 wanted, so groups of 7
    // stored bins, 14 drawn (the last one partial, widened).
    let (report, evals) = analyzed(Ensemble::Gaussian, 512, 40, 5);
    let stored = report.esd.clone().unwrap();
    assert_eq!((stored.counts.len(), evals.len()), (96, 40));
    let panel = EsdPanel::from_histogram("sparse", stored.clone());
    let drawn = panel.histogram();
    assert_eq!(drawn.counts.len(), 14);
    assert_eq!(drawn.total(), stored.total());
    assert_eq!(drawn.log10_lo, stored.log10_lo);
    let w = (stored.log10_hi - stored.log10_lo) / 96.0;
    assert!((drawn.log10_hi - (stored.log10_lo + 98.0 * w)).abs() < 1e-12);
    let g = panel.geometry();
    let mass: f64 = g.bars.iter().map(|(a, b, d)| (b - a) * d).sum();
    assert!((mass - 1.0).abs() < 1e-9, "{mass}");
    // Every eigenvalue lies in the merged bin that the bars say holds it.
    for v in &evals {
        let i = ((v.log10() - drawn.log10_lo) / (drawn.log10_hi - drawn.log10_lo) * 14.0) as usize;
        assert!(drawn.counts[i.min(13)] > 0, "{v} fell in an empty bar");
    }
    // A well-filled histogram is drawn as stored.
    let (full, _) = analyzed(Ensemble::Gaussian, 4000, 2000, 5);
    let h = full.esd.unwrap();
    assert_eq!(EsdPanel::from_histogram("full", h.clone()).histogram(), h);
}
