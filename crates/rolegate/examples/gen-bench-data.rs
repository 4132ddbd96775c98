//! Regenerates the committed benchmark data under `benches/data/` from the workload generator
//! (`benches/workloads/mod.rs`, fixed seed): rule files, users and document samples of W1–W3.
//!
//! ```text
//! cargo run --release --example gen-bench-data
//! ```
//!
//! The output is deterministic; `tests/bench_data.rs` fails when the committed files differ from
//! what this writes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a generator: any I/O failure stops it"
)]

#[path = "../benches/workloads/mod.rs"]
mod workloads;

fn main() {
    let dir = workloads::data_dir();
    let mut total = 0usize;
    for (rel, content) in workloads::files() {
        let path = dir.join(&rel);
        std::fs::create_dir_all(path.parent().expect("a parent folder"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        std::fs::write(&path, &content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        total += content.len();
        println!("{:>10} bytes  benches/data/{rel}", content.len());
    }
    println!("{total:>10} bytes in all");
}
