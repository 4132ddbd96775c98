//! Sort, skip/limit and projection of the in-memory `find` (`rolegate::mql`), in documents per
//! second (`Throughput::Elements` = documents per iteration):
//!
//! - `sort/one_key`, `sort/two_keys`: 10,000 documents sorted by `{score: -1}` and by
//!   `{team: 1, score: -1}` (a third of the `score`s are arrays), in full and with `limit: 20`
//!   (the selection path); `/order` computes the order over borrowed documents
//!   (`sort_order`), `/owned` sorts owned documents (`sort_skip_limit`, which also drops the
//!   documents a limit leaves out);
//! - `project/inclusion`, `project/exclusion`, `project/slice_elem_match`: one compiled
//!   projection applied to 10,000 documents.
//!
//! `/owned` consumes its documents: each iteration's copy is made outside the timing
//! (`iter_batched`); `sort/clone_only` measures that copy alone, for reference.
//!
//! `cargo bench --bench sort`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "bench code: bad bench data is a bug to stop at"
)]

use std::hint::black_box;
use std::time::Duration;

use bson::{Bson, Document, doc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rolegate::mql::{Projection, SortSpec, Window, sort_order, sort_skip_limit};

const N: usize = 10_000;

fn config() -> Criterion {
    Criterion::default()
        .nresamples(5_000)
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(2000))
        .sample_size(10)
}

/// Deterministic documents: `_id`, a team, a score (an array for every third document), a
/// name, a nested address and an array of sub-documents.
fn documents() -> Vec<Document> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..N)
        .map(|i| {
            let score = if i % 3 == 0 {
                Bson::Array(vec![
                    Bson::Int64((next() % 1000) as i64),
                    Bson::Int64((next() % 1000) as i64),
                ])
            } else {
                Bson::Double((next() % 100_000) as f64 / 100.0)
            };
            doc! {
                "_id": i as i64,
                "team": format!("team-{}", next() % 50),
                "score": score,
                "name": format!("user {i}"),
                "address": {"city": format!("city {}", next() % 100), "zip": (next() % 99_999) as i32},
                "items": (0..5).map(|k| Bson::Document(doc! {"sku": k, "qty": (next() % 10) as i32})).collect::<Vec<_>>(),
            }
        })
        .collect()
}

fn sort(c: &mut Criterion) {
    let docs = documents();
    let mut group = c.benchmark_group("sort");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("clone_only", |b| b.iter(|| black_box(docs.clone())));
    for (name, spec) in [
        ("one_key", doc! {"score": -1}),
        ("two_keys", doc! {"team": 1, "score": -1}),
    ] {
        let spec = SortSpec::parse(&spec).unwrap();
        for (suffix, limit) in [("", 0), ("_limit_20", 20)] {
            let window = Window::new(0, limit).unwrap();
            group.bench_function(format!("{name}{suffix}/order"), |b| {
                b.iter(|| black_box(sort_order(&docs, &spec, window).unwrap()))
            });
            group.bench_function(format!("{name}{suffix}/owned"), |b| {
                b.iter_batched(
                    || docs.clone(),
                    |docs| black_box(sort_skip_limit(docs, &spec, 0, limit).unwrap()),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

fn project(c: &mut Criterion) {
    let docs = documents();
    let mut group = c.benchmark_group("project");
    group.throughput(Throughput::Elements(N as u64));
    for (name, spec) in [
        (
            "inclusion",
            doc! {"name": 1, "address.city": 1, "items.qty": 1},
        ),
        ("exclusion", doc! {"address": 0, "items.sku": 0}),
        (
            "slice_elem_match",
            doc! {"items": {"$slice": 2}, "score": {"$elemMatch": {"$gt": 500}}},
        ),
    ] {
        let projection = Projection::compile(&spec).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                for d in &docs {
                    black_box(projection.apply(d).unwrap());
                }
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = sort, project
}
criterion_main!(benches);
