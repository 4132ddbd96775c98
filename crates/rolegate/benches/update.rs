//! Update application, documents/s (`Throughput::Elements` = documents per iteration): a typical
//! update — `$set` of two fields, `$inc` of one, `$push` of one tag — compiled once
//! ([`Update::parse`]) and applied to the 1,000 W1 documents of `benches/data/w1` (20 fields of
//! many BSON types). Each application copies the document (the output) and changes the copy;
//! `w1/copy_only` times the copies alone, the floor of any update that returns a new document.
//!
//! `cargo bench --bench update`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "bench code: bad bench data is a bug to stop at"
)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use bson::{DateTime, Document, doc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rolegate::mql::{Update, UpdateContext, document_from_json};

fn documents() -> Vec<Document> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data/w1/documents.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| document_from_json(&serde_json::from_str(l).unwrap()).unwrap())
        .collect()
}

fn bench(c: &mut Criterion) {
    let docs = documents();
    let update = Update::parse(
        &doc! {
            "$set": {"status": "closed", "location.lat": 1.5},
            "$inc": {"views": 1},
            "$push": {"tags": "updated"},
        },
        &[],
    )
    .unwrap();
    let ctx = UpdateContext::new(DateTime::from_millis(0), bson::Bson::Null);
    // Sanity: every document is updated.
    for d in &docs {
        assert!(update.apply(d, &ctx).unwrap().modified);
    }
    let mut group = c.benchmark_group("update");
    group.throughput(Throughput::Elements(docs.len() as u64));
    group.bench_function("w1/set2_inc1_push1", |b| {
        b.iter(|| {
            for d in &docs {
                black_box(update.apply(black_box(d), &ctx).unwrap());
            }
        });
    });
    // The floor: copying the documents (the output every update has to build).
    group.bench_function("w1/copy_only", |b| {
        b.iter(|| {
            for d in &docs {
                black_box(black_box(d).clone());
            }
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .nresamples(5_000)
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
