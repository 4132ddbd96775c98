//! Per-document cost, both engines side by side in each criterion group (so the ratios come
//! from one run), `Throughput::Elements` = documents per iteration:
//!
//! - `decision`: `read_raw` on raw BSON — role, visibility, field mask; no output;
//! - `redact_raw`: `redact_raw` writing the redacted document as raw BSON into a reused `Vec`;
//! - `read_document`: `read(&bson::Document)`, the reference's native API (and the compiled
//!   engine's `Document` entry point), outcome with the redacted `Document`.
//!
//! Workloads: W1 (10,000 documents, a third owned / shared / public), W2 on 20- and 100-field
//! documents (2,000 each), W3 at 10 / 100 / 1,000 / 10,000 roles, both variants (1,000
//! documents; the reference takes the first 500 at 1,000 roles and 50 at 10,000 to keep the run
//! short — the teams are spread uniformly, so any prefix is representative). Before timing, both
//! engines' decisions are compared on the measured documents and any disagreement is printed.
//!
//! `cargo bench --bench evaluate` (filter: `cargo bench --bench evaluate -- w1/`).
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

use bson::{Document, RawDocumentBuf};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use rolegate::{EngineKind, PreparedRequest, Scratch};
use workloads::{W2_DOCS, W2_SIZES, W3_DOCS, W3_SIZES, W3Kind, Workload};

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

/// Short runs: medians are what the report uses, so 5,000 bootstrap resamples (instead of
/// 100,000) are plenty and keep the whole `cargo bench` within minutes.
fn config() -> Criterion {
    Criterion::default()
        .nresamples(5_000)
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(10)
}

/// What is timed per document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Decision,
    RedactRaw,
    ReadDocument,
}

impl Metric {
    const ALL: [Metric; 3] = [Metric::Decision, Metric::RedactRaw, Metric::ReadDocument];

    fn name(self) -> &'static str {
        match self {
            Metric::Decision => "decision",
            Metric::RedactRaw => "redact_raw",
            Metric::ReadDocument => "read_document",
        }
    }
}

/// The documents of a workload, as `Document` and as raw BSON (converted once).
struct Docs {
    docs: Vec<Document>,
    raw: Vec<RawDocumentBuf>,
}

impl Docs {
    fn new(docs: Vec<Document>) -> Self {
        let raw = workloads::raw(&docs);
        Docs { docs, raw }
    }
}

/// One pass over the first `n` documents; returns how many are visible.
fn pass(
    p: &PreparedRequest<'_, '_>,
    metric: Metric,
    docs: &Docs,
    n: usize,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> usize {
    let mut visible = 0;
    match metric {
        Metric::Decision => {
            for d in &docs.raw[..n] {
                visible += usize::from(p.read_raw(black_box(d), scratch).visible);
            }
        }
        Metric::RedactRaw => {
            for d in &docs.raw[..n] {
                out.clear();
                visible += usize::from(p.redact_raw(black_box(d), scratch, out).visible);
                black_box(out.as_slice());
            }
        }
        Metric::ReadDocument => {
            for d in &docs.docs[..n] {
                visible += usize::from(black_box(p.read(black_box(d))).visible);
            }
        }
    }
    visible
}

/// Prints the documents (among the first `n`) on which the engines' raw decisions differ.
fn check_agreement(
    label: &str,
    compiled: &PreparedRequest<'_, '_>,
    reference: &PreparedRequest<'_, '_>,
    docs: &Docs,
    n: usize,
) {
    let (mut a, mut b) = (Scratch::new(), Scratch::new());
    let differ = docs.raw[..n]
        .iter()
        .filter(|d| compiled.read_raw(d, &mut a) != reference.read_raw(d, &mut b))
        .count();
    if differ > 0 {
        eprintln!("warning: {label}: the engines disagree on {differ} of {n} documents");
    }
}

/// Benchmarks `metric` for both engines in group `g`; `roles` is the W3 parameter.
fn engines(
    g: &mut BenchmarkGroup<'_, WallTime>,
    w: &Workload,
    metric: Metric,
    docs: &Docs,
    roles: Option<usize>,
) {
    let rules = workloads::rules(w);
    let ctx = workloads::context(&rules, w);
    let coll = rules.collection(&w.namespace).unwrap();
    let compiled = coll.prepare_with(&ctx, EngineKind::Compiled);
    let reference = coll.prepare_with(&ctx, EngineKind::Reference);
    let all = docs.raw.len();
    // The reference walks the roles in order: from 1,000 roles on it takes a prefix of the
    // documents (500 at 1,000 roles, 50 at 10,000) to keep the run short.
    let reference_docs = all.min(500_000 / roles.unwrap_or(1).max(1)).max(1);
    if metric == Metric::Decision {
        check_agreement(&w.id, &compiled, &reference, docs, reference_docs);
    }
    for engine in ENGINES {
        let (p, n) = match engine {
            EngineKind::Compiled => (&compiled, all),
            EngineKind::Reference => (&reference, reference_docs),
        };
        let id = match roles {
            Some(r) => BenchmarkId::new(engine.as_str(), r),
            None => BenchmarkId::from_parameter(engine.as_str()),
        };
        g.throughput(Throughput::Elements(n as u64));
        let mut scratch = Scratch::new();
        let mut out = Vec::with_capacity(1 << 16);
        g.bench_function(id, |b| {
            b.iter(|| pass(p, metric, docs, n, &mut scratch, &mut out));
        });
    }
}

fn group<'c>(c: &'c mut Criterion, name: String) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat);
    g
}

fn w1(c: &mut Criterion) {
    let w = workloads::w1();
    let docs = Docs::new(workloads::w1_documents(workloads::W1_DOCS));
    for metric in Metric::ALL {
        let mut g = group(c, format!("evaluate/w1/{}", metric.name()));
        engines(&mut g, &w, metric, &docs, None);
        g.finish();
    }
}

fn w2(c: &mut Criterion) {
    let w = workloads::w2();
    for fields in W2_SIZES {
        let docs = Docs::new(workloads::w2_documents(fields, W2_DOCS));
        for metric in Metric::ALL {
            let mut g = group(c, format!("evaluate/w2-{fields}/{}", metric.name()));
            engines(&mut g, &w, metric, &docs, None);
            g.finish();
        }
    }
}

fn w3(c: &mut Criterion) {
    for kind in W3Kind::ALL {
        for metric in [Metric::Decision, Metric::RedactRaw] {
            let mut g = group(c, format!("evaluate/w3-{}/{}", kind.name(), metric.name()));
            for n in W3_SIZES {
                let docs = Docs::new(workloads::w3_documents(n, W3_DOCS));
                engines(&mut g, &workloads::w3(kind, n), metric, &docs, Some(n));
            }
            g.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = w1, w2, w3
}
criterion_main!(benches);
