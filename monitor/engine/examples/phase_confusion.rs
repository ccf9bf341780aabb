//! Prints the phase classifier's confusion table on the synthetic ensembles (docs/PHASES.md shows its output).
//!
//! `cargo run --release -p htsr-engine --features test-support --example phase_confusion -- [SEEDS]`

use htsr_contracts::Phase;
use htsr_engine::analyze::{analyze_matrix, AnalyzeOptions};
use htsr_engine::synthetic::Ensemble;

fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let opts = AnalyzeOptions::default();
    let sizes = [(800usize, 200usize), (1600, 400)];
    print!("| ensemble | size | expected |");
    for p in Phase::ALL {
        print!(" {} |", p.as_str());
    }
    println!(" median alpha | median D | median spikes | median softrank |");
    print!("|---|---|---|");
    for _ in Phase::ALL {
        print!("---|");
    }
    println!("---|---|---|---|");
    for ensemble in Ensemble::ALL {
        for (n, m) in sizes {
            let mut counts = [0u32; htsr_contracts::Phase::COUNT];
            let (mut alphas, mut ds, mut spikes, mut softranks) = (vec![], vec![], vec![], vec![]);
            for seed in 0..seeds {
                let w = ensemble.sample(n, m, 1000 + seed);
                let r = analyze_matrix("w", w.view(), &opts).report;
                let v = r.phase.as_ref().expect("phase");
                counts[v.phase.index()] += 1;
                alphas.push(v.evidence.alpha);
                ds.push(v.evidence.d);
                spikes.push(v.evidence.spikes as f64);
                softranks.push(v.evidence.mp_softrank);
            }
            let expected = ensemble
                .expected()
                .map_or("(none)".to_string(), |p| p.to_string());
            print!("| {} | {n}x{m} | {expected} |", ensemble.label());
            for c in counts {
                print!(" {} |", if c == 0 { String::new() } else { c.to_string() });
            }
            println!(
                " {:.2} | {:.3} | {:.0} | {:.3} |",
                median(&mut alphas),
                median(&mut ds),
                median(&mut spikes),
                median(&mut softranks)
            );
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
