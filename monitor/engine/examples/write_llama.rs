//! Writes Llama-shaped bf16 checkpoints with random (Gaussian, 1/sqrt(fan-in)) weights, for the large-model
//! benchmarks (`scripts/bench-large-models`):
//!
//! - `block OUT.safetensors`: one Llama-7B transformer block (q, k, v, o 4096x4096; gate, up 11008x4096; down
//!   4096x11008) and its two norm vectors;
//! - `tinyllama OUT_DIR`: a Hugging Face sharded checkpoint of TinyLlama-1.1B's shapes (22 blocks of hidden 2048,
//!   intermediate 5632, 4 key-value heads of 64; vocabulary 32000; tied nothing), in shards of at most 1 GB with
//!   `model.safetensors.index.json`.
//!
//! `cargo run --release -p htsr-engine --features test-support --example write_llama -- block /tmp/block.safetensors`

use std::collections::BTreeMap;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

/// (tensor name, shape) of one transformer block of a Llama model.
fn block(i: usize, hidden: usize, inter: usize, kv: usize) -> Vec<(String, Vec<usize>)> {
    let p = format!("model.layers.{i}");
    vec![
        (format!("{p}.self_attn.q_proj.weight"), vec![hidden, hidden]),
        (format!("{p}.self_attn.k_proj.weight"), vec![kv, hidden]),
        (format!("{p}.self_attn.v_proj.weight"), vec![kv, hidden]),
        (format!("{p}.self_attn.o_proj.weight"), vec![hidden, hidden]),
        (format!("{p}.mlp.gate_proj.weight"), vec![inter, hidden]),
        (format!("{p}.mlp.up_proj.weight"), vec![inter, hidden]),
        (format!("{p}.mlp.down_proj.weight"), vec![hidden, inter]),
        (format!("{p}.input_layernorm.weight"), vec![hidden]),
        (format!("{p}.post_attention_layernorm.weight"), vec![hidden]),
    ]
}

/// bf16 bytes of a Gaussian tensor with standard deviation 1/sqrt(last dimension).
fn tensor(shape: &[usize], seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let scale = 1.0 / (*shape.last().unwrap() as f32).sqrt();
    let mut out = Vec::with_capacity(n * 2);
    for _ in 0..n {
        let z: f32 = StandardNormal.sample(&mut rng);
        let v = if shape.len() == 1 { 1.0 } else { z * scale };
        out.extend(half::bf16::from_f32(v).to_le_bytes());
    }
    out
}

fn write(path: &Path, tensors: &[(String, Vec<usize>)], seed: u64) {
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .enumerate()
        .map(|(i, (_, shape))| tensor(shape, seed + i as u64))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&data)
        .map(|((name, shape), bytes)| {
            (
                name.clone(),
                TensorView::new(Dtype::BF16, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    safetensors::tensor::serialize_to_file(views, None, path).expect("writing the checkpoint");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("block") if args.len() == 2 => {
            write(Path::new(&args[1]), &block(0, 4096, 11008, 4096), 7);
        }
        Some("tinyllama") if args.len() == 2 => {
            let dir = Path::new(&args[1]);
            std::fs::create_dir_all(dir).unwrap();
            let (hidden, inter, kv, vocab) = (2048, 5632, 256, 32000);
            let mut all = vec![("model.embed_tokens.weight".to_string(), vec![vocab, hidden])];
            for i in 0..22 {
                all.extend(block(i, hidden, inter, kv));
            }
            all.push(("model.norm.weight".to_string(), vec![hidden]));
            all.push(("lm_head.weight".to_string(), vec![vocab, hidden]));
            // Shards of at most 1 GB, in order.
            let mut shards: Vec<Vec<(String, Vec<usize>)>> = vec![Vec::new()];
            let mut size = 0usize;
            for t in all {
                let bytes = t.1.iter().product::<usize>() * 2;
                if size + bytes > 1 << 30 && !shards.last().unwrap().is_empty() {
                    shards.push(Vec::new());
                    size = 0;
                }
                size += bytes;
                shards.last_mut().unwrap().push(t);
            }
            let count = shards.len();
            let mut weight_map = BTreeMap::new();
            for (k, shard) in shards.iter().enumerate() {
                let file = format!("model-{:05}-of-{count:05}.safetensors", k + 1);
                write(&dir.join(&file), shard, 100 + 1000 * k as u64);
                for (name, _) in shard {
                    weight_map.insert(name.clone(), file.clone());
                }
            }
            let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
            std::fs::write(
                dir.join("model.safetensors.index.json"),
                serde_json::to_vec_pretty(&index).unwrap(),
            )
            .unwrap();
        }
        _ => {
            eprintln!("usage: write_llama block OUT.safetensors | write_llama tinyllama OUT_DIR");
            std::process::exit(2);
        }
    }
}
