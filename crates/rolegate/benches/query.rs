//! The in-memory query matcher (`rolegate::mql`), documents per second: a query compiled once
//! (`mql::compile_query`) and matched against 1,000 W1 documents (`mql::matches`), for three
//! query shapes: equality and range on top-level fields, array membership, and a dotted path
//! with `$or`. Beside it, the update (`benches/update.rs`) and sort (`benches/sort.rs`) benches.
//!
//! `cargo bench --bench query`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "bench code: bad bench data is a bug to stop at"
)]

mod workloads;

use std::hint::black_box;
use std::time::Duration;

use bson::doc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rolegate::mql;

/// Short runs: the report uses medians.
fn config() -> Criterion {
    Criterion::default()
        .nresamples(5_000)
        .without_plots()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

fn queries(c: &mut Criterion) {
    let docs = workloads::w1_documents(workloads::W1_SAMPLE);
    let shapes = [
        (
            "equality_and_range",
            doc! {"status": "open", "priority": {"$gte": 2}},
        ),
        (
            "array_membership",
            doc! {"shared_with": "u0", "tags": {"$in": ["alpha", "delta", "omega"]}},
        ),
        (
            "dotted_path_and_or",
            doc! {"location.lat": {"$gt": 0.0}, "$or": [{"public": true}, {"owner_id": "u0"}]},
        ),
    ];
    let mut group = c.benchmark_group("query/match");
    group.throughput(Throughput::Elements(docs.len() as u64));
    for (name, query) in shapes {
        let compiled = mql::compile_query(&query).unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(name), &docs, |b, docs| {
            b.iter(|| {
                docs.iter()
                    .filter(|d| mql::matches(&compiled, black_box(d)).unwrap())
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = queries
}
criterion_main!(benches);
