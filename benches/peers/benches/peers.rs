//! rolegate, Cedar and regorus side by side, same inputs, same process. Each group first runs
//! the equality check (`rolegate_peers::agree`) on every generated input of the group and
//! panics if the engines disagree; then it times:
//!
//! - `peers/w1-decision`: the document-level decision, per document (W1, 1,000 documents per
//!   iteration: a third owned, shared, public);
//! - `peers/w1-fields`: the readable-field set of the same 20-field documents (Cedar: one
//!   authorization per leaf field; regorus: one query for the set; rolegate: the redacted
//!   document);
//! - `peers/w3-group-team`, `peers/w3-team`: the decision per document at 10, 100, 1,000 and
//!   10,000 roles / policies / rules;
//! - `peers/compile-w1`, `peers/compile-w3` (`group-team`): loading and compiling each engine's
//!   policies from their text.
//!
//! Function ids: `rolegate`, `cedar`, `regorus` (the interpreter, `Engine::eval_rule`),
//! `regorus-rvm` (regorus's bytecode VM). Parameters in W1: `raw` (rolegate's `read_raw` /
//! `redact_raw` on `&bson::RawDocument`), `document` (rolegate's `read(&bson::Document)`, the
//! document already decoded), `prebuilt` (the peer's input — Cedar entities, Rego input value —
//! built before timing: the evaluation alone), `from-bson` (the peer's input built from the raw
//! BSON inside the timed loop, as a server must). In W3 the peers' inputs are prebuilt.
//! Throughput is in documents; `peers-report` divides the medians by it.
//!
//! `cargo bench -p rolegate-peers`, then `cargo run -p rolegate-peers --release --bin
//! peers-report`.

use std::hint::black_box;
use std::time::Duration;

use bson::{Document, RawDocumentBuf};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use rolegate::Scratch;
use rolegate_peers::cedar::DocInput;
use rolegate_peers::setup::{self, PolicyTexts};
use rolegate_peers::workloads::{self, W3_SIZES, W3Kind, Workload};
use rolegate_peers::{agree, cedar, data, native, rego};

/// Medians are what the report uses: short runs, 5,000 bootstrap resamples.
fn config() -> Criterion {
    Criterion::default()
        .nresamples(5_000)
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
}

fn group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat);
    g
}

fn decoded(docs: &[RawDocumentBuf]) -> Vec<Document> {
    docs.iter()
        .map(|d| Document::try_from(d.as_ref()).expect("document"))
        .collect()
}

/// Times `pass` (one pass over `n` documents, returning a count of visible documents or
/// readable fields), after checking that the count is `expected` (from rolegate's answers,
/// which the equality check has compared with the peers'): the timed code computes what was
/// checked.
fn bench<F: FnMut() -> usize>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    (engine, parameter): (&str, String),
    n: usize,
    expected: usize,
    mut pass: F,
) {
    let got = pass();
    assert_eq!(
        got, expected,
        "{engine}/{parameter}: the timed pass counts {got}, expected {expected}"
    );
    let id = BenchmarkId::new(engine, parameter);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(id, |b| b.iter(&mut pass));
}

fn w1(c: &mut Criterion) {
    let docs = data::w1_documents();
    let mut e = setup::w1();
    // The equality check on every generated document (10,000), before any timing.
    let d = agree::decisions("w1 decision", &mut e, &docs);
    let f = agree::fields("w1 fields", &mut e, &docs);
    eprintln!(
        "w1: rolegate, Cedar and regorus agree on {} documents ({} visible, {} readable fields)",
        d.documents, d.visible, f.fields
    );
    let timed = docs.get(..data::W1_TIMED).expect("documents");
    let n = timed.len();
    let decoded = decoded(timed);
    let coll = e.native.collection();
    let p = coll.prepare(&e.native.context);
    let mut scratch = Scratch::new();
    let visible = timed
        .iter()
        .filter(|d| p.read_raw(d, &mut scratch).visible)
        .count();
    let fields: usize = timed
        .iter()
        .map(|d| native::readable_raw(&p, d, &mut scratch, &mut Vec::new()).map_or(0, |f| f.len()))
        .sum();
    let cedar_docs: Vec<DocInput> = timed.iter().map(|d| e.cedar.input(d, false)).collect();
    let cedar_fields: Vec<DocInput> = timed.iter().map(|d| e.cedar.input(d, true)).collect();
    let rego_docs: Vec<regorus::Value> = timed.iter().map(|d| e.rego.input(d)).collect();
    let (cedar, rego) = (&e.cedar, &mut e.rego);

    let mut g = group(c, "peers/w1-decision");
    let id = |engine, parameter: &str| (engine, parameter.to_string());
    bench(&mut g, id("rolegate", "raw"), n, visible, || {
        timed
            .iter()
            .filter(|d| p.read_raw(black_box(d), &mut scratch).visible)
            .count()
    });
    bench(&mut g, id("rolegate", "document"), n, visible, || {
        decoded
            .iter()
            .filter(|d| p.read(black_box(d)).visible)
            .count()
    });
    bench(&mut g, id("cedar", "prebuilt"), n, visible, || {
        cedar_docs
            .iter()
            .filter(|i| cedar.decide(black_box(i)))
            .count()
    });
    bench(&mut g, id("cedar", "from-bson"), n, visible, || {
        timed
            .iter()
            .filter(|d| cedar.decide(&cedar.input(black_box(d), false)))
            .count()
    });
    bench(&mut g, id("regorus", "prebuilt"), n, visible, || {
        rego_docs
            .iter()
            .filter(|&v| rego.decide(black_box(v).clone()))
            .count()
    });
    bench(&mut g, id("regorus", "from-bson"), n, visible, || {
        timed
            .iter()
            .filter(|d| {
                let input = rego.input(black_box(d));
                rego.decide(input)
            })
            .count()
    });
    bench(&mut g, id("regorus-rvm", "prebuilt"), n, visible, || {
        rego_docs
            .iter()
            .filter(|&v| rego.decide_vm(black_box(v).clone()))
            .count()
    });
    bench(&mut g, id("regorus-rvm", "from-bson"), n, visible, || {
        timed
            .iter()
            .filter(|d| {
                let input = rego.input(black_box(d));
                rego.decide_vm(input)
            })
            .count()
    });
    g.finish();

    let mut out = Vec::with_capacity(1 << 16);
    let mut kept = Vec::with_capacity(64);
    let mut g = group(c, "peers/w1-fields");
    // rolegate's output is the redacted document itself (its fields are checked against the
    // peers' sets by the equality check): the timed passes count the visible documents.
    bench(&mut g, id("rolegate", "raw"), n, visible, || {
        let mut count = 0;
        for d in timed {
            out.clear();
            count += usize::from(p.redact_raw(black_box(d), &mut scratch, &mut out).visible);
            black_box(out.as_slice());
        }
        count
    });
    bench(&mut g, id("rolegate", "document"), n, visible, || {
        decoded
            .iter()
            .filter(|d| black_box(p.read(black_box(d)).document).is_some())
            .count()
    });
    bench(&mut g, id("cedar", "prebuilt"), n, fields, || {
        cedar_fields
            .iter()
            .map(|i| {
                cedar.readable(black_box(i), &mut kept);
                kept.len()
            })
            .sum()
    });
    bench(&mut g, id("cedar", "from-bson"), n, fields, || {
        timed
            .iter()
            .map(|d| {
                cedar.readable(&cedar.input(black_box(d), true), &mut kept);
                kept.len()
            })
            .sum()
    });
    bench(&mut g, id("regorus", "prebuilt"), n, fields, || {
        rego_docs
            .iter()
            .map(|v| rego::set_len(&rego.readable(black_box(v).clone())))
            .sum()
    });
    bench(&mut g, id("regorus", "from-bson"), n, fields, || {
        timed
            .iter()
            .map(|d| {
                let input = rego.input(black_box(d));
                rego::set_len(&rego.readable(input))
            })
            .sum()
    });
    bench(&mut g, id("regorus-rvm", "prebuilt"), n, fields, || {
        rego_docs
            .iter()
            .map(|v| rego::set_len(&rego.readable_vm(black_box(v).clone())))
            .sum()
    });
    bench(&mut g, id("regorus-rvm", "from-bson"), n, fields, || {
        timed
            .iter()
            .map(|d| {
                let input = rego.input(black_box(d));
                rego::set_len(&rego.readable_vm(input))
            })
            .sum()
    });
    g.finish();
}

fn w3(c: &mut Criterion) {
    for kind in W3Kind::ALL {
        let mut g = group(c, &format!("peers/w3-{}", kind.name()));
        for roles in W3_SIZES {
            let docs = data::w3_documents(roles);
            let mut e = setup::w3(kind, roles);
            let label = format!("w3-{}-{roles}", kind.name());
            // Every document of the set (200), before timing.
            agree::decisions(&label, &mut e, &docs);
            let coll = e.native.collection();
            let p = coll.prepare(&e.native.context);
            let mut scratch = Scratch::new();
            let visible = |docs: &[RawDocumentBuf]| -> usize {
                let mut s = Scratch::new();
                docs.iter()
                    .filter(|d| p.read_raw(d, &mut s).visible)
                    .count()
            };
            let all = docs.len();
            let id = |engine| (engine, roles.to_string());
            bench(&mut g, id("rolegate"), all, visible(&docs), || {
                docs.iter()
                    .filter(|d| p.read_raw(black_box(d), &mut scratch).visible)
                    .count()
            });
            // The peers evaluate every policy: a prefix of the documents past 100 policies.
            let prefix = docs.get(..data::w3_timed(roles)).expect("documents");
            let k = prefix.len();
            let cedar_docs: Vec<DocInput> =
                prefix.iter().map(|d| e.cedar.input(d, false)).collect();
            let rego_docs: Vec<regorus::Value> = prefix.iter().map(|d| e.rego.input(d)).collect();
            let (cedar, rego) = (&e.cedar, &mut e.rego);
            bench(&mut g, id("cedar"), k, visible(prefix), || {
                cedar_docs
                    .iter()
                    .filter(|i| cedar.decide(black_box(i)))
                    .count()
            });
            bench(&mut g, id("regorus"), k, visible(prefix), || {
                rego_docs
                    .iter()
                    .filter(|&v| rego.decide(black_box(v).clone()))
                    .count()
            });
            if rego.has_vm() {
                bench(&mut g, id("regorus-rvm"), k, visible(prefix), || {
                    rego_docs
                        .iter()
                        .filter(|&v| rego.decide_vm(black_box(v).clone()))
                        .count()
                });
            }
        }
        g.finish();
    }
}

fn compile(c: &mut Criterion) {
    let mut g = group(c, "peers/compile-w1");
    compile_engines(&mut g, "w1", &workloads::w1(), &setup::w1_texts());
    g.finish();
    let mut g = group(c, "peers/compile-w3");
    for roles in W3_SIZES {
        let w = workloads::w3(W3Kind::GroupTeam, roles);
        let texts = setup::w3_texts(W3Kind::GroupTeam, roles);
        compile_engines(&mut g, &roles.to_string(), &w, &texts);
    }
    g.finish();
}

/// Load + compile of each engine's policies, from their text.
fn compile_engines(
    g: &mut BenchmarkGroup<'_, WallTime>,
    parameter: &str,
    w: &Workload,
    texts: &PolicyTexts,
) {
    g.bench_function(BenchmarkId::new("rolegate", parameter), |b| {
        b.iter(|| native::load(w, black_box(&texts.rolegate)));
    });
    g.bench_function(BenchmarkId::new("cedar", parameter), |b| {
        b.iter(|| cedar::parse(black_box(&texts.cedar)));
    });
    let file = format!("{}.rego", w.id);
    g.bench_function(BenchmarkId::new("regorus", parameter), |b| {
        b.iter(|| rego::load(&file, black_box(&texts.rego), texts.rego_entry()));
    });
    // The RVM refuses W3 at 10,000 rules (more than 65,535 instructions).
    let entries = texts.rego_entry_refs();
    if rego::load_vm(&file, &texts.rego, &entries).is_ok() {
        g.bench_function(BenchmarkId::new("regorus-rvm", parameter), |b| {
            b.iter(|| rego::load_vm(&file, black_box(&texts.rego), &entries));
        });
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = w1, w3, compile
}
criterion_main!(benches);
