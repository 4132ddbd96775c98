//! How the W1 decision's time per document depends on how many documents a pass reads (issue
//! 16): generates the first N documents of W1 (as `benches/evaluate.rs` does, 10,000 there),
//! prepares the request (compiled engine) and times `read_raw` over all of them, 200 passes in
//! one process, printing the fastest pass and the median pass in ns per document.
//!
//! ```text
//! cargo run --profile bench --example time-w1-decision -- 1000    # 0.4 MB of documents
//! cargo run --profile bench --example time-w1-decision -- 10000   # 4.3 MB, as the bench
//! ```
//!
//! A pass over fewer documents than the processor's caches hold measures the decision's own
//! work; the difference to the bench's 10,000 is the cost of fetching the documents' bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a measuring tool: bad arguments stop it"
)]

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use std::hint::black_box;
use std::time::Instant;

use rolegate::{EngineKind, Scratch};

/// Timed passes over the documents.
const PASSES: usize = 200;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .unwrap_or_else(|| panic!("usage: time-w1-decision <documents>"))
        .parse()
        .expect("a number of documents");
    let w = workloads::w1();
    let docs = workloads::raw(&workloads::w1_documents(n));
    let rules = workloads::rules(&w);
    let ctx = workloads::context(&rules, &w);
    let coll = rules
        .collection(&w.namespace)
        .expect("the workload's collection");
    let p = coll.prepare_with(&ctx, EngineKind::Compiled);
    let mut scratch = Scratch::new();
    let mut per_doc: Vec<f64> = (0..PASSES)
        .map(|_| {
            let start = Instant::now();
            let mut visible = 0usize;
            for d in &docs {
                visible += usize::from(p.read_raw(black_box(d), &mut scratch).visible);
            }
            black_box(visible);
            start.elapsed().as_nanos() as f64 / docs.len() as f64
        })
        .collect();
    per_doc.sort_by(f64::total_cmp);
    println!(
        "documents={n} passes={PASSES} fastest={:.1} median={:.1} ns per document",
        per_doc[0],
        per_doc[PASSES / 2]
    );
}
