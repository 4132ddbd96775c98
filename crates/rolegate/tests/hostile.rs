//! Hostile documents: 100,000 levels deep, through the front door (`Rules` → `PreparedRequest`)
//! and the reference evaluator, for reads, inserts, updates and deletes. Each decision must deny
//! with a reason or be decided — never overflow the stack.
//!
//! A stack overflow aborts the whole test process, so every case runs in a child process (this
//! test binary re-run on that one test); the parent reports a crash as a failed test with the
//! child's stderr. Documents are built and torn down iteratively, so that only the library is
//! under test. Cases run on the test harness's default thread stack (2 MiB), like a server's
//! worker threads.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::Command;

use bson::{Bson, Document, doc};
use rolegate::{EngineKind, Limits, LoadOptions, RequestContext, RuleSet, Rules};
use serde_json::{Value, json};

const DEEP: usize = 100_000;
const CHILD: &str = "ROLEGATE_HOSTILE_CHILD";

/// Runs `body` in a child process when this is the parent; in the child, runs it.
fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        body();
        return;
    }
    if let Some(failure) = run_child(name, name) {
        panic!("{failure}");
    }
}

/// Runs test `test` in a child process with `CHILD=case`; the failure, if any.
fn run_child(test: &str, case: &str) -> Option<String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env(CHILD, case)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ok = out.status.success() && stdout.contains("1 passed");
    (!ok).then(|| {
        let why = if stderr.contains("overflowed its stack") {
            "stack overflow".to_string()
        } else {
            format!("{}: {stderr}{stdout}", out.status)
        };
        format!("`{case}` crashed or failed in its child process: {why}")
    })
}

/// Runs every case of `cases` (by name) in its own child process: the parent collects the
/// failures, a child (`CHILD=<test>/<case>`) runs only its case.
fn isolated_cases(test: &str, cases: &[(&str, &dyn Fn())]) {
    if let Ok(case) = std::env::var(CHILD) {
        for (name, body) in cases {
            if case == format!("{test}/{name}") {
                body();
            }
        }
        return;
    }
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, _)| run_child(test, &format!("{test}/{name}")))
        .collect();
    println!("{} cases, {} failed", cases.len(), failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `{"a": {"a": ... {"x": 1} ...}}`, `levels` documents deep (the outer one included).
fn deep_document(levels: usize) -> Document {
    let mut doc = doc! {"x": 1};
    for _ in 1..levels {
        doc = doc! {"a": doc};
    }
    doc
}

/// `{"a": [[[ ... [1] ... ]]]}`: arrays `levels` deep.
fn deep_array_document(levels: usize) -> Document {
    let mut value = Bson::Array(vec![Bson::Int32(1)]);
    for _ in 1..levels {
        value = Bson::Array(vec![value]);
    }
    doc! {"_id": 1, "a": value}
}

/// Drops a document of any depth without recursion.
fn drop_deep(doc: Document) {
    let mut stack: Vec<Bson> = vec![Bson::Document(doc)];
    while let Some(v) = stack.pop() {
        match v {
            Bson::Document(d) => stack.extend(d.into_iter().map(|(_, v)| v)),
            Bson::Array(items) => stack.extend(items),
            _ => {}
        }
    }
}

fn rules(roles: Value) -> Rules {
    let json = json!({"database": "db", "collection": "c", "roles": roles});
    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/db/c/rules.json",
        &json,
        &LoadOptions::default(),
    )
    .unwrap();
    Rules::new(set)
}

fn user() -> RequestContext {
    RequestContext::for_user(doc! {"id": "u1", "type": "normal", "data": {}, "custom_data": {}})
}

/// Which decision a case asks for.
#[derive(Debug, Clone, Copy)]
enum Decision {
    Read,
    Insert,
    Update,
    Delete,
}

/// One decision under `roles` on a document `make` builds `DEEP` levels deep: it must be
/// decided (a deep document denied with a reason, or allowed by a rule that does not look
/// inside it), and the outcome torn down safely.
fn decide(roles: &Value, engine: EngineKind, decision: Decision, make: fn(usize) -> Document) {
    let rules = rules(roles.clone());
    let coll = rules.collection("db.c").unwrap();
    let ctx = user();
    let request = coll.prepare_with(&ctx, engine);
    let deep = make(DEEP);
    match decision {
        Decision::Read => {
            let read = request.read(&deep);
            println!("read: visible {} ({:?})", read.visible, read.error);
            if let Some(d) = read.document {
                drop_deep(d);
            }
        }
        Decision::Insert => {
            let insert = request.insert(&deep);
            println!("insert: {} ({:?})", insert.allowed, insert.error);
        }
        Decision::Update => {
            let mut other = make(DEEP);
            other.insert("changed", true);
            let update = request.update(&deep, &other);
            println!("update: {} ({:?})", update.allowed, update.error);
            drop_deep(other);
        }
        Decision::Delete => {
            let delete = request.delete(&deep);
            println!("delete: {} ({:?})", delete.allowed, delete.error);
        }
    }
    drop_deep(deep);
}

/// Cases that would overflow the stack (recursive `Clone`/`PartialEq` of `bson` documents) if a
/// document reached the evaluators unchecked. `PreparedRequest` now checks every document against
/// `Limits::max_document_depth` first (both engines), so the list is empty; a case added here
/// runs in `known_overflows` (`cargo test --test hostile -- --ignored`) until it is fixed.
const KNOWN_OVERFLOWS: &[&str] = &[];

/// The role sets the deep documents are decided under, by name.
fn role_sets() -> Vec<(&'static str, Value)> {
    vec![
        (
            "all",
            json!([{"name": "all", "apply_when": {}, "read": true, "write": true}]),
        ),
        (
            "fields",
            json!([{"name": "fields", "apply_when": {},
                "fields": {"a": {"read": true, "write": true}, "x": {"read": true}},
                "additional_fields": {"read": true, "write": true}}]),
        ),
        (
            "nested",
            json!([{"name": "nested", "apply_when": {},
                "fields": {"a": {"fields": {"a": {"fields": {"a": {"read": true, "write": true}}}}}}}]),
        ),
        (
            "expressions",
            json!([
                {"name": "eq", "apply_when": {"a": {"$eq": {"a": {"a": 1}}}}, "read": true},
                {"name": "deep path", "apply_when": {"a.a.a.a.a.a.a.a": {"$exists": true}},
                 "read": true, "write": {"%%root": {"$exists": true}}},
                {"name": "in", "apply_when": {"a": {"$in": [1, {"a": 1}]}}, "read": true},
                {"name": "elemMatch", "apply_when": {"a": {"$elemMatch": {"a": 1}}}, "read": true},
                {"name": "this", "apply_when": {}, "fields": {"a": {"read": {"%%this": {"$type": "object"}},
                 "write": {"%%this": {"$eq": "%%prev"}}}}}
            ]),
        ),
    ]
}

/// A deep document shape: its name and how to build it.
type Shape = (&'static str, fn(usize) -> Document);

/// Every decision on both deep shapes under every role set, through both engines:
/// `(engine/set/decision deep shape, body)`.
fn all_cases() -> Vec<(String, Box<dyn Fn()>)> {
    let decisions = [
        ("read", Decision::Read),
        ("insert", Decision::Insert),
        ("update", Decision::Update),
        ("delete", Decision::Delete),
    ];
    let shapes: [Shape; 2] = [
        ("documents", deep_document),
        ("arrays", deep_array_document),
    ];
    let mut cases: Vec<(String, Box<dyn Fn()>)> = Vec::new();
    for engine in [EngineKind::Reference, EngineKind::Compiled] {
        for (set, roles) in role_sets() {
            for (dname, decision) in decisions {
                for (sname, make) in shapes {
                    let roles = roles.clone();
                    cases.push((
                        format!("{}/{set}/{dname} deep {sname}", engine.as_str()),
                        Box::new(move || decide(&roles, engine, decision, make)),
                    ));
                }
            }
        }
    }
    cases
}

fn run_cases(test: &str, known: bool) {
    let cases: Vec<(String, Box<dyn Fn()>)> = all_cases()
        .into_iter()
        .filter(|(name, _)| KNOWN_OVERFLOWS.contains(&name.as_str()) == known)
        .collect();
    let borrowed: Vec<(&str, &dyn Fn())> = cases
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_ref()))
        .collect();
    isolated_cases(test, &borrowed);
}

#[test]
fn the_helpers_do_not_recurse() {
    isolated("the_helpers_do_not_recurse", || {
        let deep = deep_document(DEEP);
        let err = Limits::default().check_document(&deep).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("document nested deeper than 100 levels (at `a.a.")
        );
        drop_deep(deep);
        let arrays = deep_array_document(DEEP);
        assert!(Limits::default().check_document(&arrays).is_err());
        drop_deep(arrays);
    });
}

/// Every read, insert, update and delete of a 100,000-deep document (nested documents, nested
/// arrays) under four role sets, through the reference and the compiled engine, except the
/// known overflows.
#[test]
fn deep_documents_are_decided_without_overflow() {
    run_cases("deep_documents_are_decided_without_overflow", false);
}

/// The cases of [`KNOWN_OVERFLOWS`].
#[test]
#[ignore = "stack overflows in the evaluators until the front door checks the document depth"]
fn known_overflows() {
    run_cases("known_overflows", true);
}
