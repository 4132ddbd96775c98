//! Rough timings of the compiled engine on the bench workloads (`cargo test --release --test
//! compiled_timing -- --ignored --nocapture`); the measured figures of record come from
//! `cargo bench`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::path::Path;
use std::time::Instant;

use bson::{Document, RawDocumentBuf};
use rolegate::{EngineKind, LoadOptions, RequestContext, RuleSet, Rules, Scratch};

fn load(
    dir: &str,
    rules: &str,
    user: &str,
    docs: &str,
) -> (Rules, RequestContext, Vec<RawDocumentBuf>, Vec<Document>) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/data")
        .join(dir);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join(rules)).unwrap()).unwrap();
    let set = RuleSet::from_json(rules, &json, &LoadOptions::default()).unwrap();
    let rules = Rules::new(set);
    let user: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join(user)).unwrap()).unwrap();
    let user = rolegate::mql::document_from_json(&user).unwrap();
    let ctx = RequestContext::for_user(user);
    let text = std::fs::read_to_string(base.join(docs)).unwrap();
    let owned: Vec<Document> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| rolegate::mql::document_from_json(&serde_json::from_str(l).unwrap()).unwrap())
        .collect();
    let raw = owned
        .iter()
        .map(|d| RawDocumentBuf::from_document(d).unwrap())
        .collect();
    (rules, ctx, raw, owned)
}

fn time(label: &str, n: usize, mut f: impl FnMut() -> usize) {
    let _ = f();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut reps = 0;
        while start.elapsed().as_millis() < 200 {
            std::hint::black_box(f());
            reps += 1;
        }
        let per = start.elapsed().as_nanos() as f64 / (reps * n) as f64;
        best = best.min(per);
    }
    println!("{label:50} {best:9.1} ns/doc");
}

fn run(dir: &str, rules: &str, user: &str, docs: &str, ns: &str) {
    let (rules_c, ctx, raw, owned) = load(dir, rules, user, docs);
    println!("{dir}/{rules}: compile {:?}", rules_c.compile_time());
    let coll = rules_c.collection(ns).unwrap();
    let start = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(coll.prepare(&ctx));
    }
    println!("prepare: {:?}", start.elapsed() / 1000);
    for engine in [EngineKind::Compiled, EngineKind::Reference] {
        let p = coll.prepare_with(&ctx, engine);
        let mut scratch = Scratch::new();
        let mut out = Vec::with_capacity(1 << 16);
        let n = if engine == EngineKind::Reference {
            raw.len().min(300)
        } else {
            raw.len()
        };
        time(&format!("{dir} {engine:?} read_raw"), n, || {
            raw[..n]
                .iter()
                .filter(|d| p.read_raw(d, &mut scratch).visible)
                .count()
        });
        time(&format!("{dir} {engine:?} redact_raw"), n, || {
            let mut v = 0;
            for d in &raw[..n] {
                out.clear();
                v += usize::from(p.redact_raw(d, &mut scratch, &mut out).visible);
            }
            v
        });
        if engine == EngineKind::Compiled {
            let pv = coll.prepare_with(&ctx, engine).with_raw_validation(true);
            time(&format!("{dir} {engine:?} read_raw validated"), n, || {
                raw[..n]
                    .iter()
                    .filter(|d| pv.read_raw(d, &mut scratch).visible)
                    .count()
            });
            time(&format!("{dir} {engine:?} redact_raw validated"), n, || {
                let mut v = 0;
                for d in &raw[..n] {
                    out.clear();
                    v += usize::from(pv.redact_raw(d, &mut scratch, &mut out).visible);
                }
                v
            });
        }
        time(&format!("{dir} {engine:?} read(&Document)"), n, || {
            owned[..n].iter().filter(|d| p.read(d).visible).count()
        });
    }
}

#[test]
#[ignore = "timing, run by hand"]
fn timings() {
    run(
        "w1",
        "rules.json",
        "user.json",
        "documents.jsonl",
        "bench.w1",
    );
    run(
        "w2",
        "rules.json",
        "user.json",
        "documents-20.jsonl",
        "bench.w2",
    );
    run(
        "w2",
        "rules.json",
        "user.json",
        "documents-100.jsonl",
        "bench.w2",
    );
    for n in [10, 100, 1000, 10000] {
        run(
            "w3",
            &format!("rules-group-team-{n}.json"),
            &format!("user-{n}.json"),
            &format!("documents-{n}.jsonl"),
            "bench.w3",
        );
        run(
            "w3",
            &format!("rules-team-{n}.json"),
            &format!("user-{n}.json"),
            &format!("documents-{n}.jsonl"),
            "bench.w3",
        );
    }
}

#[test]
#[ignore = "profiling loop, run by hand"]
fn profile_loop() {
    let which = std::env::var("PROFILE_WORKLOAD").unwrap_or_else(|_| "w1".into());
    let (dir, rules, user, docs, ns) = match which.as_str() {
        "w2" => (
            "w2",
            "rules.json",
            "user.json",
            "documents-20.jsonl",
            "bench.w2",
        ),
        "w3" => (
            "w3",
            "rules-team-10000.json",
            "user-10000.json",
            "documents-10000.jsonl",
            "bench.w3",
        ),
        "w3g" => (
            "w3",
            "rules-group-team-10000.json",
            "user-10000.json",
            "documents-10000.jsonl",
            "bench.w3",
        ),
        _ => (
            "w1",
            "rules.json",
            "user.json",
            "documents.jsonl",
            "bench.w1",
        ),
    };
    let redact = std::env::var("PROFILE_REDACT").is_ok();
    let validate = std::env::var("PROFILE_VALIDATE").is_ok();
    let (rules, ctx, raw, _) = load(dir, rules, user, docs);
    eprintln!("compile {:?}", rules.compile_time());
    let coll = rules.collection(ns).unwrap();
    let p = coll.prepare(&ctx).with_raw_validation(validate);
    let mut scratch = Scratch::new();
    let mut out = Vec::with_capacity(1 << 16);
    let iters: usize = std::env::var("PROFILE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let start = Instant::now();
    let mut v = 0;
    let mut i = 0;
    while (iters == 0 && start.elapsed().as_secs() < 4) || i < iters {
        i += 1;
        for d in &raw {
            out.clear();
            if redact {
                v += usize::from(p.redact_raw(d, &mut scratch, &mut out).visible);
            } else {
                v += usize::from(p.read_raw(d, &mut scratch).visible);
            }
        }
    }
    println!("{v} docs {}", raw.len() * i);
}
