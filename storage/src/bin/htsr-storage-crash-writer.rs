//! Test helper for the crash test (tests/crash.rs): writes checkpoints into a store in a loop, printing
//! `begin <step>` before each `write_checkpoint` and `ack <step>` after it has returned, so that the test knows
//! which checkpoints were acknowledged when it SIGKILLs this process, and whether the kill cut a write short.
//!
//! Usage: `htsr-storage-crash-writer STORE_DIR RUN FIRST_STEP LAYERS [MAX_CHECKPOINTS]`

use std::io::Write;

use htsr_storage::{fixtures, Store};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!(
            "usage: {} STORE_DIR RUN FIRST_STEP LAYERS [MAX_CHECKPOINTS]",
            args[0]
        );
        std::process::exit(2);
    }
    let first: u64 = args[3].parse().expect("FIRST_STEP");
    let layers: usize = args[4].parse().expect("LAYERS");
    let max: u64 = args
        .get(5)
        .map_or(u64::MAX, |s| s.parse().expect("MAX_CHECKPOINTS"));
    let (store, outcome) = Store::open(&args[1]).expect("open store");
    let mut out = std::io::stdout().lock();
    writeln!(out, "open {outcome:?}").expect("stdout");
    out.flush().expect("stdout");
    for step in first..first.saturating_add(max) {
        let (record, reports) = fixtures::checkpoint(&args[2], step, layers);
        let raw: Vec<(String, Vec<f64>)> = reports
            .iter()
            .take(4)
            .map(|r| (r.name.clone(), fixtures::eigenvalues(256, step)))
            .collect();
        writeln!(out, "begin {step}").expect("stdout");
        out.flush().expect("stdout");
        store
            .write_checkpoint(&record, &reports, &raw)
            .expect("write checkpoint");
        writeln!(out, "ack {step}").expect("stdout");
        out.flush().expect("stdout");
    }
}
