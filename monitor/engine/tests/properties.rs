//! Properties the spectrum must have whatever the matrix: alpha does not change when W is scaled, its rows or
//! columns permuted, or transposed.

use htsr_engine::analyze::{analyze_matrix, AnalyzeOptions};
use htsr_engine::synthetic::Ensemble;
use ndarray::Array2;
use proptest::prelude::*;

fn alpha_and_xmin(w: &Array2<f64>) -> (f64, f64, usize) {
    let r = analyze_matrix("w", w.view(), &AnalyzeOptions::default()).report;
    let pl = r.power_law.expect("fit");
    (pl.alpha, pl.xmin, pl.num_pl_spikes)
}

fn permuted(w: &Array2<f64>, rows: &[usize], cols: &[usize]) -> Array2<f64> {
    Array2::from_shape_fn(w.dim(), |(i, j)| w[[rows[i], cols[j]]])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn alpha_is_invariant_to_scale_permutation_and_transpose(
        seed in 0u64..1000,
        which in 0usize..4,
        log_scale in -1.0f64..2.0,
        rows in Just((0..120).collect::<Vec<usize>>()).prop_shuffle(),
        cols in Just((0..60).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let ensemble = [Ensemble::Gaussian, Ensemble::StrongSpikes, Ensemble::GradedLowRank,
            Ensemble::Pareto { mu_tenths: 25 }][which];
        let w = ensemble.sample(120, 60, seed);
        let (alpha, xmin, tail) = alpha_and_xmin(&w);
        let scale = 10f64.powf(log_scale);
        // Scaling W by c scales every eigenvalue by c^2: alpha stays, xmin scales. (Scales are kept where no
        // eigenvalue crosses WW's absolute 1e-5 cut, which is not scale-invariant.)
        let (a2, x2, t2) = alpha_and_xmin(&(&w * scale));
        prop_assert!((a2 - alpha).abs() <= 1e-6 * alpha, "scaled: {} vs {}", a2, alpha);
        prop_assert!((x2 / (xmin * scale * scale) - 1.0).abs() < 1e-6);
        prop_assert_eq!(t2, tail);
        let (a3, _, t3) = alpha_and_xmin(&permuted(&w, &rows, &cols));
        prop_assert!((a3 - alpha).abs() <= 1e-6 * alpha, "permuted: {} vs {}", a3, alpha);
        prop_assert_eq!(t3, tail);
        let (a4, _, t4) = alpha_and_xmin(&w.t().to_owned());
        prop_assert!((a4 - alpha).abs() <= 1e-6 * alpha, "transposed: {} vs {}", a4, alpha);
        prop_assert_eq!(t4, tail);
    }
}
