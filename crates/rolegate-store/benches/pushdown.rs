//! Pushdown on the embedded store: `find` over 100,000 documents of which 1% are visible to
//! the user, with the read residual in the store query (pushdown, the default) and without
//! (`PreparedRequest::with_pushdown(false)`), with no client query and with `{status: "open"}`.
//!
//! The workload is owner/shared/public (roles `owner`: whole document, `shared`: whole
//! document, `public`: four fields; no filters), on the W1 documents copied 100 times with new
//! `_id`s and new `owner_id`, `shared_with` and `public` values: per 1,000 documents, 4 owned
//! by the user, 3 shared with them, 3 public, the rest owned by other users, shared with
//! others, not public. Before the timings the bench prints, per query, the residual (which
//! must be exact), the documents the store returns, the documents the user receives and their
//! ratio, with and without pushdown, and checks that both answers are the same.
//!
//! `{status: "open"}` is on a field every role shows whole, so it goes to the store with or
//! without pushdown: without, the store returns the open documents (about a third), not all.
//!
//! The embedded store scans and decodes every document and runs rolegate's matcher on it
//! either way: what pushdown saves here is the per-document work of the operation (the rule
//! decision) on the documents the user cannot see. "store only" is the store's read with the
//! pushed-down query, without rules: the floor. On MongoDB with an index on the residual's
//! fields the store's work shrinks too.
//!
//! `cargo bench -p rolegate-store --bench pushdown`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "bench code: a failure is a broken bench"
)]

mod common;

use std::time::Duration;

use bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use common::{body, context, store_with, w1_documents};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rolegate::ops::{OpEnv, Operation, Store, execute};
use rolegate::{LoadOptions, PreparedRequest, RuleSet, Rules};
use rolegate_store::EmbeddedStore;

/// Documents in the collection.
const DOCUMENTS: usize = 100_000;
/// Per 1,000 documents: owned by the user, shared with them, public (1% visible in all).
const OWNED: usize = 4;
const SHARED: usize = 3;
const PUBLIC: usize = 3;

/// Short runs: one iteration without pushdown scans and decides 100,000 documents.
fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10)
}

fn rules() -> Rules {
    let rules = serde_json::json!({
        "database": "bench",
        "collection": "w1",
        "roles": [
            {"name": "owner", "apply_when": {"owner_id": "%%user.id"},
             "read": true, "write": true, "insert": true, "delete": true, "search": true},
            {"name": "shared", "apply_when": {"shared_with": "%%user.id"},
             "read": true, "insert": false, "delete": false, "search": true},
            {"name": "public", "apply_when": {"public": true},
             "insert": false, "delete": false, "search": true,
             "fields": {"_id": {"read": true}, "title": {"read": true},
                        "status": {"read": true}, "public": {"read": true}},
             "additional_fields": {}}
        ]
    });
    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/bench/w1/rules.json",
        &rules,
        &LoadOptions::default(),
    )
    .unwrap();
    Rules::new(set)
}

/// `DOCUMENTS` W1 documents with new `_id`s; 1% visible to `u0` (see the module doc).
fn documents() -> Vec<Document> {
    let w1 = w1_documents();
    let other = |i: usize| format!("u{}", 1 + i % 49);
    (0..DOCUMENTS)
        .map(|i| {
            let mut d = w1[i % w1.len()].clone();
            let slot = i % 1_000;
            d.insert("_id", ObjectId::new());
            d.insert("owner_id", other(i));
            d.insert("shared_with", vec![other(i * 7 + 3), other(i * 13 + 5)]);
            d.insert("public", false);
            if slot < OWNED {
                d.insert("owner_id", "u0");
            } else if slot < OWNED + SHARED {
                d.insert("shared_with", vec![other(i * 7 + 3), "u0".to_string()]);
            } else if slot < OWNED + SHARED + PUBLIC {
                d.insert("public", true);
            }
            d
        })
        .collect()
}

fn find(query: Document) -> Operation {
    Operation::from_body(&body("find", doc! {"query": query})).unwrap()
}

fn run(request: &PreparedRequest<'_, '_>, op: &Operation, store: &mut EmbeddedStore) -> Bson {
    let mut env = OpEnv::fixed(DateTime::from_millis(0), || Bson::Null);
    execute(request, op, store, &mut env).unwrap().result
}

/// Prints the residual and, with and without pushdown, the documents the store returns per
/// document the user receives; checks that both answers are the same.
fn report(
    name: &str,
    request: &PreparedRequest<'_, '_>,
    query: &Document,
    store: &mut EmbeddedStore,
) {
    let op = find(query.clone());
    let plan = request.query_plan(Some(query), None).unwrap();
    let residual = plan.residual().unwrap();
    eprintln!(
        "pushdown/{name}: residual {}; Residual::is_exact: {}",
        residual.describe(),
        residual.is_exact()
    );
    let mut answers = Vec::new();
    for pushdown in [true, false] {
        let request = request.with_pushdown(pushdown);
        let read = request.plan_operation(&op).unwrap();
        let returned = store.find(read.read().unwrap()).unwrap().len();
        let answer = run(&request, &op, store);
        let received = answer.as_array().unwrap().len();
        eprintln!(
            "pushdown/{name}: pushdown {}: store returned {returned}, user received {received}: \
             {:.2} returned per received",
            if pushdown { "on" } else { "off" },
            returned as f64 / received as f64
        );
        answers.push(answer);
    }
    assert_eq!(
        answers[0], answers[1],
        "{name}: pushdown changed the answer"
    );
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    let ctx = context(&rules);
    let coll = rules.collection("bench.w1").unwrap();
    let request = coll.prepare(&ctx);
    let (_dir, mut store) = store_with(documents());
    for (name, query) in [
        ("find_all", doc! {}),
        ("find_status", doc! {"status": "open"}),
    ] {
        report(name, &request, &query, &mut store);
        let op = find(query.clone());
        let mut group = c.benchmark_group(format!("pushdown/{name}"));
        group.throughput(Throughput::Elements(DOCUMENTS as u64));
        let pushed = request.plan_operation(&op).unwrap().read().unwrap().clone();
        group.bench_function(BenchmarkId::new("store_only", DOCUMENTS), |b| {
            b.iter(|| store.find(&pushed).unwrap().len());
        });
        for pushdown in [true, false] {
            let request = request.with_pushdown(pushdown);
            let id = if pushdown {
                "pushdown_on"
            } else {
                "pushdown_off"
            };
            group.bench_function(BenchmarkId::new(id, DOCUMENTS), |b| {
                b.iter(|| run(&request, &op, &mut store));
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
