//! Prepare time per request, both engines side by side: what a server does once per request
//! before the first document — look up the collection, `prepare_with` (the compiled engine
//! evaluates every request-only part here, drops dead roles, builds its lookups), and
//! `query_plan` (the filters merged into the query and projection sent to MongoDB). W1, and W3 at
//! 10 / 100 / 1,000 / 10,000 roles (both variants). Building the `RequestContext` (the same for
//! both engines) is measured on its own (`prepare/w1/context`).
//!
//! `cargo bench --bench prepare` (filter: `cargo bench --bench prepare -- w3`).
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

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use rolegate::{EngineKind, RequestContext, Rules, mql::document_from_json};
use workloads::{W3_SIZES, W3Kind};

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

/// Short runs: medians are what the report uses, so 5,000 bootstrap resamples (instead of
/// 100,000) are plenty and keep the whole `cargo bench` within minutes.
fn config() -> Criterion {
    Criterion::default()
        .nresamples(5_000)
        .without_plots()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

/// One request: collection lookup, prepare, query plan.
fn request(rules: &Rules, namespace: &str, ctx: &RequestContext, engine: EngineKind) -> bool {
    let coll = rules.collection(namespace).unwrap();
    let prepared = coll.prepare_with(black_box(ctx), engine);
    prepared.query_plan(None, None).is_ok()
}

fn bench_engines(
    g: &mut BenchmarkGroup<'_, WallTime>,
    roles: Option<usize>,
    rules: &Rules,
    namespace: &str,
    ctx: &RequestContext,
) {
    for engine in ENGINES {
        let id = match roles {
            Some(n) => BenchmarkId::new(engine.as_str(), n),
            None => BenchmarkId::from_parameter(engine.as_str()),
        };
        g.bench_function(id, |b| b.iter(|| request(rules, namespace, ctx, engine)));
    }
}

fn w1(c: &mut Criterion) {
    let w = workloads::w1();
    let rules = workloads::rules(&w);
    let ctx = workloads::context(&rules, &w);
    let mut g = c.benchmark_group("prepare/w1");
    bench_engines(&mut g, None, &rules, &w.namespace, &ctx);
    let user = document_from_json(&workloads::read_json(&w.user_file)).unwrap();
    g.bench_function("context", |b| {
        b.iter(|| {
            rules
                .context()
                .user(black_box(&user).clone())
                .build()
                .unwrap()
        });
    });
    g.finish();
}

fn w3(c: &mut Criterion) {
    for kind in W3Kind::ALL {
        let mut g = c.benchmark_group(format!("prepare/w3-{}", kind.name()));
        for n in W3_SIZES {
            let w = workloads::w3(kind, n);
            let rules = workloads::rules(&w);
            let ctx = workloads::context(&rules, &w);
            bench_engines(&mut g, Some(n), &rules, &w.namespace, &ctx);
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = w1, w3
}
criterion_main!(benches);
