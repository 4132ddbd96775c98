//! The per-document workload of the instruction counts (issue 16): loads a bench workload's
//! committed rule file, user and document sample (`benches/data/`, prepared exactly as
//! `benches/evaluate.rs` prepares them), then runs the compiled engine over every document `K`
//! times and prints how many documents were visible.
//!
//! ```text
//! cargo run --profile bench --example count-instructions -- <workload> <metric> <K>
//!   workload: w1 | w2-20 | w2-100
//!   metric:   decision (`read_raw`) | redact (`redact_raw` into a reused Vec)
//! ```
//!
//! Run under `valgrind --tool=callgrind` at two values of `K`, the difference of the two
//! instruction totals divided by documents × the extra passes is the cost per document, with the
//! loading and preparing (the same in both runs) cancelled out: `benches/callgrind.sh` does this.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a measuring tool: bad arguments or bad bench data stop it"
)]

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use std::hint::black_box;

use bson::RawDocumentBuf;
use rolegate::{EngineKind, Scratch, mql::document_from_json};

/// The committed document sample of a workload, as raw BSON.
fn documents(file: &str) -> Vec<RawDocumentBuf> {
    let path = workloads::data_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let docs: Vec<bson::Document> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let json: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            document_from_json(&json).expect("an Extended JSON document")
        })
        .collect();
    workloads::raw(&docs)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [workload, metric, k] = args.as_slice() else {
        panic!("usage: count-instructions <w1|w2-20|w2-100> <decision|redact> <K>");
    };
    let passes: usize = k.parse().expect("K: a number of passes");
    let (w, file) = match workload.as_str() {
        "w1" => (workloads::w1(), "w1/documents.jsonl"),
        "w2-20" => (workloads::w2(), "w2/documents-20.jsonl"),
        "w2-100" => (workloads::w2(), "w2/documents-100.jsonl"),
        other => panic!("unknown workload {other}"),
    };
    let docs = documents(file);
    let rules = workloads::rules(&w);
    let ctx = workloads::context(&rules, &w);
    let coll = rules
        .collection(&w.namespace)
        .expect("the workload's collection");
    let p = coll.prepare_with(&ctx, EngineKind::Compiled);
    let mut scratch = Scratch::new();
    let mut out = Vec::with_capacity(1 << 16);
    let mut visible = 0usize;
    for _ in 0..passes {
        match metric.as_str() {
            "decision" => {
                for d in &docs {
                    visible += usize::from(p.read_raw(black_box(d), &mut scratch).visible);
                }
            }
            "redact" => {
                for d in &docs {
                    out.clear();
                    visible +=
                        usize::from(p.redact_raw(black_box(d), &mut scratch, &mut out).visible);
                    black_box(out.as_slice());
                }
            }
            other => panic!("unknown metric {other}"),
        }
    }
    println!("documents={} passes={passes} visible={visible}", docs.len());
}
