//! Writes a float32 safetensors file of synthetic layers, for benchmarks and demos.
//!
//! `cargo run --release -p htsr-engine --features test-support --example write_matrix -- OUT.safetensors ROWS COLS [ENSEMBLE] [SEED]`
//! where ENSEMBLE is gaussian (default), spikes or heavy.

use std::collections::HashMap;

use htsr_engine::synthetic::Ensemble;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: write_matrix OUT.safetensors ROWS COLS [gaussian|spikes|heavy] [SEED]");
        std::process::exit(2);
    }
    let rows: usize = args[1].parse().expect("ROWS");
    let cols: usize = args[2].parse().expect("COLS");
    let ensemble = match args.get(3).map(String::as_str).unwrap_or("gaussian") {
        "spikes" => Ensemble::StrongSpikes,
        "heavy" => Ensemble::GradedLowRank,
        _ => Ensemble::Gaussian,
    };
    let seed = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1);
    let (n, m) = (rows.max(cols), rows.min(cols));
    let w = ensemble.sample(n, m, seed);
    let bytes: Vec<u8> = if rows >= cols {
        w.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect()
    } else {
        w.t()
            .iter()
            .flat_map(|v| (*v as f32).to_le_bytes())
            .collect()
    };
    let view = TensorView::new(Dtype::F32, vec![rows, cols], &bytes).expect("view");
    let meta: HashMap<String, String> = HashMap::from([("htsr.step".into(), "0".into())]);
    let out = safetensors::serialize([("layer.weight".to_string(), view)], Some(meta))
        .expect("serialize");
    std::fs::write(&args[0], out).expect("write");
}
