//! Benchmark of the watch daemon (monitor/cli/BENCHMARKS-watch.md):
//!
//! 1. latency: a checkpoint renamed into a watched directory -> its record readable in the store; median over
//!    50 arrivals, 0.2 s apart (the daemon runs in this process so that the store can be read while it holds it);
//! 2. backlog throughput: `--once` over 50 checkpoints already there, in checkpoints per second;
//! 3. beside them, one-shot analysis of one of those checkpoints (what `htsr-watch analyze` computes), and, when
//!    the release binary exists, the wall time of `htsr-watch analyze FILE` and `htsr-watch DIR --once`.
//!
//! The model: an MLP 784-300-100-10 (three dense layers, f32), random weights.
//!
//! Run: `cargo run --release -p htsr-watch --example watch_bench [-- ARRIVALS]`

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use htsr_daemon::{Progress, Shutdown, WatchConfig};
use htsr_engine::analyze::{analyze_checkpoint, AnalyzeOptions};
use htsr_storage::Store;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

const LAYERS: [(&str, usize, usize); 3] = [
    ("fc1.weight", 300, 784),
    ("fc2.weight", 100, 300),
    ("fc3.weight", 10, 100),
];

fn checkpoint(seed: u64, step: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32
    };
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = LAYERS
        .iter()
        .map(|(n, r, c)| {
            let scale = 1.0 / (*c as f32).sqrt();
            let bytes = (0..r * c)
                .flat_map(|_| (next() * scale).to_le_bytes())
                .collect();
            (n.to_string(), vec![*r, *c], bytes)
        })
        .collect();
    let views: Vec<_> = data
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let meta = HashMap::from([("htsr.step".to_string(), step.to_string())]);
    safetensors::tensor::serialize(views, Some(meta)).unwrap()
}

/// Writes under a temporary name in the same directory; returns the temporary path (rename it to publish).
fn stage(path: &Path, bytes: &[u8]) -> PathBuf {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    tmp
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let arrivals: u64 = std::env::args().nth(1).map_or(50, |a| a.parse().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    println!(
        "model: MLP 784-300-100-10 (3 dense layers, f32, {} KiB per checkpoint); {} CPUs",
        checkpoint(0, 0).len() / 1024,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 1. Latency.
    let dir = tmp.path().join("live");
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let (store, _) = Store::open(dir.join(".htsr")).unwrap();
    let shutdown = Shutdown::new();
    let daemon = {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        let cfg = WatchConfig::new(dir.clone(), dir.join(".htsr"));
        let progress = Progress::new(Vec::new(), &dir);
        std::thread::spawn(move || htsr_daemon::run(cfg, store, progress, shutdown))
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut latencies = Vec::new();
    let mut analysis = Vec::new();
    for step in 1..=arrivals {
        let path = dir.join("run").join(format!("step-{step:06}.safetensors"));
        let tmp_path = stage(&path, &checkpoint(step, step));
        let t0 = Instant::now();
        std::fs::rename(&tmp_path, &path).unwrap();
        let record = loop {
            if let Some(r) = store.checkpoint("run", step).unwrap() {
                break r;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "step {step} never stored"
            );
            std::thread::sleep(Duration::from_micros(500));
        };
        latencies.push(t0.elapsed().as_secs_f64() * 1e3);
        analysis.push(record.analysis_seconds * 1e3);
        std::thread::sleep(Duration::from_millis(200));
    }
    shutdown.trigger();
    daemon.join().unwrap().unwrap();
    drop(store);
    latencies.sort_by(f64::total_cmp);
    analysis.sort_by(f64::total_cmp);
    println!(
        "latency rename -> stored, {arrivals} arrivals: median {:.1} ms, p90 {:.1} ms, max {:.1} ms \
         (of which analysis + frozen check, median {:.1} ms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        latencies.last().unwrap(),
        percentile(&analysis, 0.5),
    );

    // 2. Backlog throughput, in process.
    let dir = tmp.path().join("backlog");
    std::fs::create_dir_all(dir.join("run")).unwrap();
    for step in 1..=arrivals {
        let path = dir.join("run").join(format!("step-{step:06}.safetensors"));
        std::fs::rename(stage(&path, &checkpoint(1000 + step, step)), &path).unwrap();
    }
    let (store, _) = Store::open(dir.join(".htsr")).unwrap();
    let mut cfg = WatchConfig::new(dir.clone(), dir.join(".htsr"));
    cfg.once = true;
    let t0 = Instant::now();
    let summary =
        htsr_daemon::run(cfg, store, Progress::new(Vec::new(), &dir), Shutdown::new()).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(summary.stored, arrivals);
    println!(
        "backlog of {arrivals}, --once in process: {secs:.2} s, {:.1} checkpoints/s",
        arrivals as f64 / secs
    );

    // 3. One checkpoint analyzed once, in process.
    let one = dir.join("run").join("step-000001.safetensors");
    let opts = AnalyzeOptions::default();
    let _ = analyze_checkpoint(&one, &opts).unwrap();
    let mut times: Vec<f64> = (0..10)
        .map(|_| {
            let t = Instant::now();
            analyze_checkpoint(&one, &opts).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "analyze_checkpoint on one (in process), median of 10: {:.1} ms",
        percentile(&times, 0.5)
    );

    // The release binary, when built: process start-up included.
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/htsr-watch");
    if bin.exists() {
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let ok = Command::new(&bin)
                    .args(["analyze", "--format", "json"])
                    .arg(&one)
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
                    .success();
                assert!(ok);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "`htsr-watch analyze FILE`, median of 5: {:.1} ms",
            percentile(&times, 0.5)
        );
        std::fs::remove_dir_all(dir.join(".htsr")).unwrap();
        let t = Instant::now();
        let status = Command::new(&bin)
            .arg(&dir)
            .args(["--once", "--headless"])
            .env("HTSR_LOG", "warn")
            .status()
            .unwrap();
        assert!(status.success());
        let secs = t.elapsed().as_secs_f64();
        println!(
            "`htsr-watch DIR --once` over the {arrivals}-checkpoint backlog: {secs:.2} s, {:.1} checkpoints/s",
            arrivals as f64 / secs
        );
    } else {
        println!("({} not built: binary timings skipped)", bin.display());
    }
}
