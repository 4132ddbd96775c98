//! Operations on the embedded store, with and without the rules (issue 12): `find` of 10,000
//! W1 documents (the owner/shared/public workload of `crates/rolegate/benches/data/w1`, copied
//! ten times with new `_id`s) and `updateMany` of 1,000 documents the user owns
//! (`{$inc: {count: 1}}`). The "store only" runs do the same work without rules: the store's
//! read, and for the update the read, the update language and the all-or-nothing write. The
//! ratio of the two is the cost of the rules (and of the operations' bookkeeping).
//!
//! `cargo bench -p rolegate-store --bench ops`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "bench code: a failure is a broken bench"
)]

mod common;

use bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use common::{body, context, data, json, namespace, store_with, w1_documents};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rolegate::mql::{Update, UpdateContext};
use rolegate::ops::{Change, OpEnv, Operation, Store, StoreRead, WriteSet, execute};
use rolegate::{LoadOptions, RequestContext, RuleSet, Rules};

fn rules() -> Rules {
    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/bench/w1/rules.json",
        &json(&data().join("rules.json")),
        &LoadOptions::default(),
    )
    .unwrap();
    Rules::new(set)
}

/// `docs` with new `_id`s (and, with `owner`, every document owned by it).
fn copies(docs: &[Document], times: usize, owner: Option<&str>) -> Vec<Document> {
    let mut out = Vec::with_capacity(docs.len() * times);
    for _ in 0..times {
        for d in docs {
            let mut d = d.clone();
            d.insert("_id", ObjectId::new());
            if let Some(o) = owner {
                d.insert("owner_id", o);
            }
            out.push(d);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    let ctx = context(&rules);
    let system = RequestContext::system();
    let coll = rules.collection("bench.w1").unwrap();
    let w1 = w1_documents();

    let mut group = c.benchmark_group("ops/find");
    let (_dir, mut store) = store_with(copies(&w1, 10, None));
    group.throughput(Throughput::Elements(10_000));
    group.sample_size(10);
    let find = Operation::from_body(&body("find", doc! {"query": {}})).unwrap();
    group.bench_function(BenchmarkId::new("store_only", 10_000), |b| {
        let read = StoreRead {
            namespace: namespace(),
            query: Document::new(),
            projection: None,
        };
        b.iter(|| store.find(&read).unwrap().len());
    });
    for (name, ctx) in [("rules_user", &ctx), ("rules_system_user", &system)] {
        let request = coll.prepare(ctx);
        group.bench_function(BenchmarkId::new(name, 10_000), |b| {
            b.iter(|| {
                let mut env = OpEnv::fixed(DateTime::from_millis(0), || Bson::Null);
                execute(&request, &find, &mut store, &mut env)
                    .unwrap()
                    .result
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("ops/update_many");
    group.throughput(Throughput::Elements(1_000));
    group.sample_size(10);
    let (_dir, mut store) = store_with(copies(&w1, 1, Some("u0")));
    let inc = doc! {"$inc": {"count": 1}};
    let update_many = Operation::from_body(&body(
        "updateMany",
        doc! {"query": {}, "update": inc.clone()},
    ))
    .unwrap();
    let update = Update::parse(&inc, &[]).unwrap();
    group.bench_function(BenchmarkId::new("store_only", 1_000), |b| {
        b.iter(|| {
            let read = StoreRead {
                namespace: namespace(),
                query: Document::new(),
                projection: None,
            };
            let ctx = UpdateContext::default();
            let changes: Vec<Change> = store
                .find(&read)
                .unwrap()
                .into_iter()
                .map(|pre| {
                    let document = update.apply(&pre, &ctx).unwrap().document;
                    Change::Replace {
                        expected: pre,
                        document,
                    }
                })
                .collect();
            store
                .write(&WriteSet {
                    namespace: namespace(),
                    changes,
                })
                .unwrap();
        });
    });
    let request = coll.prepare(&ctx);
    group.bench_function(BenchmarkId::new("rules_user", 1_000), |b| {
        b.iter(|| {
            let mut env = OpEnv::fixed(DateTime::from_millis(0), || Bson::Null);
            let done = execute(&request, &update_many, &mut store, &mut env).unwrap();
            assert_eq!(
                done.result,
                Bson::Document(doc! {"matchedCount": 1000, "modifiedCount": 1000})
            );
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
