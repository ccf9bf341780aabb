//! Which Marchenko-Pastur fit recovers planted spikes on square layers (Q = 1)? WeightWatcher's (the
//! quarter-circle law with its support fixed at [0, 2]) or htsr's (the support scaled with sigma). Prints the table
//! of docs/ALGORITHMS.md section 5.6.
//!
//! `cargo run --release -p htsr-engine --features test-support --example square_mp_study -- [SEEDS]`
//!
//! Each matrix is N x N Gaussian noise N(0, 1/N) plus k rank-one terms whose strengths are spread over [1.5, 4]
//! (all above the BBP threshold 1 for Q = 1, the weakest close to it). After WeightWatcher's unit-mean rescaling
//! the noise's true sigma is sqrt(N / ||W||_F^2), and the number of spikes is k.

use htsr_engine::analyze::{analyze_matrix, AnalyzeOptions};
use htsr_engine::spectrum::mp::fit_mp;
use htsr_engine::spectrum::SquareMp;
use htsr_engine::synthetic::planted_spikes;

fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "| N | planted k | fit | exact k | mean abs(k error) | mean spikes found | mean sigma error | worst sigma error |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|---:|");
    for n in [200usize, 400, 800] {
        for k in [0usize, 1, 4, 10] {
            let strengths: Vec<f64> = if k <= 1 {
                vec![3.0; k]
            } else {
                (0..k)
                    .map(|i| 1.5 + 2.5 * i as f64 / (k - 1) as f64)
                    .collect()
            };
            let mut rows = Vec::new();
            for mode in [SquareMp::Ww, SquareMp::Htsr] {
                let (mut exact, mut k_err, mut found, mut s_err, mut s_worst) =
                    (0, 0.0, 0.0, 0.0, 0.0f64);
                for seed in 0..seeds {
                    let w = planted_spikes(n, n, &strengths, 5000 + seed);
                    let layer = analyze_matrix("w", w.view(), &AnalyzeOptions::default());
                    let evals = layer.eigenvalues.expect("eigenvalues");
                    let truth = (n as f64 / evals.iter().sum::<f64>()).sqrt();
                    let fit = fit_mp(&evals, 1.0, n, mode).expect("an MP fit");
                    exact += usize::from(fit.num_spikes == k);
                    k_err += (fit.num_spikes as f64 - k as f64).abs();
                    found += fit.num_spikes as f64;
                    let e = (fit.sigma - truth).abs() / truth;
                    s_err += e;
                    s_worst = s_worst.max(e);
                }
                let s = seeds as f64;
                rows.push(format!(
                    "| {n} | {k} | {} | {exact}/{seeds} | {:.2} | {:.2} | {:.2}% | {:.2}% |",
                    match mode {
                        SquareMp::Ww => "WeightWatcher (fixed support)",
                        SquareMp::Htsr => "htsr (sigma in the support)",
                    },
                    k_err / s,
                    found / s,
                    100.0 * s_err / s,
                    100.0 * s_worst
                ));
            }
            for r in rows {
                println!("{r}");
            }
        }
    }
}
