//! The floor under htsr's CPU time on a layer: OpenBLAS's `dsyrk` (the Gram matrix) and `dsyevd` (its eigenvalues)
//! alone, on random f64 matrices of the given shapes, timed per shape. `scripts/bench-large-models` runs it beside
//! `htsr-watch analyze` on the same shapes and the same thread count.
//!
//! `cargo run --release -p htsr-engine --features openblas --example lapack_floor -- THREADS ROWSxCOLS...`

use std::time::Instant;

use faer::Mat;
use htsr_engine::spectrum::lapack::{eigenvalues_lower, syrk_lower};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().and_then(|t| t.parse().ok()).unwrap_or(2);
    htsr_engine::spectrum::set_threads(threads);
    let mut total = 0.0;
    for shape in &args[1..] {
        let (r, c) = shape.split_once('x').expect("ROWSxCOLS");
        let (r, c): (usize, usize) = (r.parse().unwrap(), c.parse().unwrap());
        let (n, m) = (r.max(c), r.min(c));
        // Samples x features, column-major, as the engine's Gram blocks are.
        let mut state = 1u64;
        let a = Mat::<f64>::from_fn(n, m, |_, _| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        });
        let started = Instant::now();
        let mut gram = Mat::<f64>::zeros(m, m);
        syrk_lower(&mut gram, a.as_ref(), false);
        let evals = eigenvalues_lower(gram).expect("dsyevd");
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(evals.len(), m);
        total += seconds;
        println!("{shape}: dsyrk + dsyevd {seconds:.2} s");
    }
    println!("total {total:.2} s on {threads} threads");
}
