//! `cargo xtask layers`: every crate of the workspace uses only crates of the layers below its own.
//!
//! The layer table is read from ARCHITECTURE.md (its "Layers" section), so the document and the check cannot
//! drift apart; the edges come from `cargo metadata`. Normal and build dependencies count; dev-dependencies
//! (tests, benchmarks) may reach sideways. A crate missing from the table is an error too: a new crate gets a
//! layer when it is added.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

mod layers;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("layers") => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            match layers::check(&root) {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(problems) => {
                    eprintln!("xtask layers: the crates break the layer table of ARCHITECTURE.md:");
                    for p in problems {
                        eprintln!("  - {p}");
                    }
                    ExitCode::from(1)
                }
            }
        }
        _ => {
            eprintln!("usage: cargo xtask layers");
            ExitCode::from(2)
        }
    }
}

/// Crate name -> its layer, as ARCHITECTURE.md's table gives them.
type Table = BTreeMap<String, u32>;
