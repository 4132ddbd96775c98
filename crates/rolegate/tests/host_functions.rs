//! Misbehaving `%function` hosts fail closed in both engines: a host that panics, or whose call
//! takes longer than `Limits::max_function_time`, denies with a reason naming the function; the
//! panic never reaches the caller. `Deadline` answers in time for a host that blocks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::{Bson, Document, RawDocumentBuf, doc};
use rolegate::{
    Deadline, EngineKind, FunctionHost, Limits, LoadOptions, RequestContext, RuleSet, Rules,
    Scratch,
};
use serde_json::json;

/// The budget the test rule set is loaded with: small, but far above what an immediate answer
/// takes even on a loaded machine.
const BUDGET: Duration = Duration::from_millis(500);

/// The budget of the tests whose host sleeps longer than it (short, to keep them quick).
const SHORT: Duration = Duration::from_millis(30);

/// `app.gated`: a role chosen by a request-only call (`gate(%%user.id)`; the compiled engine
/// makes it a per-request slot). `app.owned`: read and insert decided by a document-dependent
/// call (`ownerOf(%%root.owner)`; the compiled engine keeps it for the reference evaluator).
fn rules_with(limits: Limits) -> Rules {
    let files: BTreeMap<String, serde_json::Value> = [
        (
            "data_sources/mongodb-atlas/app/gated/rules.json",
            json!({"database": "app", "collection": "gated", "roles": [
                {"name": "checked",
                 "apply_when": {"%%true": {"%function": {"name": "gate", "arguments": ["%%user.id"]}}},
                 "read": true, "write": true, "insert": true}
            ]}),
        ),
        (
            "data_sources/mongodb-atlas/app/owned/rules.json",
            json!({"database": "app", "collection": "owned", "roles": [
                {"name": "owner", "apply_when": {},
                 "read": {"%%true": {"%function": {"name": "ownerOf", "arguments": ["%%root.owner"]}}},
                 "write": {"%%true": {"%function": {"name": "ownerOf", "arguments": ["%%root.owner"]}}},
                 "insert": true}
            ]}),
        ),
        (
            "functions/config.json",
            json!([{"name": "gate", "private": true}, {"name": "ownerOf", "private": true}]),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let options = LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    Rules::new(RuleSet::from_files(&files, &options).unwrap_or_else(|e| panic!("{e}")))
}

fn rules() -> Rules {
    rules_with_budget(BUDGET)
}

fn rules_with_budget(budget: Duration) -> Rules {
    let mut limits = Limits::default();
    limits.max_function_time = budget;
    rules_with(limits)
}

fn context(rules: &Rules, host: Arc<dyn FunctionHost>) -> RequestContext {
    rules
        .context()
        .user(doc! {"id": "alice", "type": "normal"})
        .functions(host)
        .build()
        .unwrap()
}

const DOC: fn() -> Document = || doc! {"_id": 1, "owner": "alice"};

/// One decision of one entry point: (label, granted, reason).
type Decision = (String, bool, Option<String>);

/// Every entry point of both engines on `doc` in collection `app.<coll>`: read (with and
/// without explanations), read_raw, insert.
fn decisions(rules: &Rules, coll: &str, ctx: &RequestContext, doc: &Document) -> Vec<Decision> {
    let collection = rules.collection(&format!("app.{coll}")).unwrap();
    let raw = RawDocumentBuf::from_document(doc).unwrap();
    let mut out = Vec::new();
    for engine in [EngineKind::Compiled, EngineKind::Reference] {
        let request = collection.prepare_with(ctx, engine);
        for explain in [false, true] {
            let read = request.with_explain(explain).read(doc);
            let label = format!("{coll} {engine:?} read explain={explain}");
            if explain && let Some(error) = &read.error {
                // The explanation records the failure too (the error then ends with its place).
                let text = read.explanation.to_string();
                let message = error.split(" [").next().unwrap();
                assert!(text.contains(message), "{label}: {error}\n{text}");
            }
            out.push((label, read.visible, read.error));
            let insert = request.with_explain(explain).insert(doc);
            out.push((
                format!("{coll} {engine:?} insert explain={explain}"),
                insert.allowed,
                insert.error.map(|e| e.message),
            ));
        }
        let mut scratch = Scratch::default();
        let decision = request.read_raw(&raw, &mut scratch);
        out.push((
            format!("{coll} {engine:?} read_raw"),
            decision.visible,
            decision
                .error
                .then(|| "(raw decisions carry no message)".to_string()),
        ));
    }
    out
}

/// Every decision of both collections denies, with a reason that names the function and
/// contains `expected` (raw decisions only flag the error).
fn assert_all_deny(rules: &Rules, ctx: &RequestContext, expected: &str) {
    for (coll, function) in [("gated", "gate"), ("owned", "ownerOf")] {
        for (label, granted, reason) in decisions(rules, coll, ctx, &DOC()) {
            assert!(!granted, "{label}: granted");
            let reason = reason.unwrap_or_else(|| panic!("{label}: no reason"));
            if label.ends_with("read_raw") {
                continue;
            }
            assert!(
                reason.contains(&format!("function `{function}` failed")),
                "{label}: {reason}"
            );
            assert!(reason.contains(expected), "{label}: {reason}");
        }
    }
}

fn assert_all_grant(rules: &Rules, ctx: &RequestContext) {
    for coll in ["gated", "owned"] {
        for (label, granted, reason) in decisions(rules, coll, ctx, &DOC()) {
            assert!(granted, "{label}: denied: {reason:?}");
            assert_eq!(reason, None, "{label}");
        }
    }
}

fn host(
    f: impl Fn(&str, &[Bson]) -> Result<Bson, String> + Send + Sync + 'static,
) -> Arc<dyn FunctionHost> {
    Arc::new(f)
}

#[test]
fn a_panicking_host_denies_with_the_panic_message() {
    let rules = rules();
    // `panic!` with a literal (a `&str` payload) and with a formatted message (a `String`).
    let literal = host(|_, _| panic!("host exploded"));
    assert_all_deny(&rules, &context(&rules, literal), "panicked: host exploded");
    let formatted = host(|name, args| panic!("{name} got {} arguments", args.len()));
    let ctx = context(&rules, formatted);
    assert_all_deny(&rules, &ctx, "panicked: ");
    let (_, _, reason) = &decisions(&rules, "gated", &ctx, &DOC())[0];
    assert!(
        reason
            .as_deref()
            .unwrap()
            .starts_with("function `gate` failed: panicked: gate got 1 arguments"),
        "{reason:?}"
    );
    // A payload that is not a string still denies.
    let odd = host(|_, _| std::panic::panic_any(42_u64));
    assert_all_deny(&rules, &context(&rules, odd), "panicked: (a panic payload");
}

#[test]
fn a_host_that_panics_only_for_some_documents_denies_only_those() {
    let rules = rules();
    let picky = host(|_, args| match args {
        [Bson::String(owner)] if owner == "mallory" => panic!("no mallory"),
        _ => Ok(Bson::Boolean(true)),
    });
    let ctx = context(&rules, picky);
    for (label, granted, reason) in decisions(&rules, "owned", &ctx, &DOC()) {
        assert!(granted, "{label}: {reason:?}");
    }
    let mallory = doc! {"_id": 2, "owner": "mallory"};
    for (label, granted, reason) in decisions(&rules, "owned", &ctx, &mallory) {
        assert!(!granted, "{label}");
        assert!(label.ends_with("read_raw") || reason.unwrap().contains("panicked: no mallory"));
    }
}

#[test]
fn a_host_slower_than_the_budget_denies() {
    let rules = rules_with_budget(SHORT);
    let ctx = context(
        &rules,
        host(|_, _| {
            std::thread::sleep(Duration::from_millis(75));
            Ok(Bson::Boolean(true))
        }),
    );
    // The budget reached the request from the rule set's limits.
    assert_eq!(ctx.max_function_time, SHORT);
    assert_all_deny(&rules, &ctx, "budget 30 ms");
    let (_, _, reason) = &decisions(&rules, "gated", &ctx, &DOC())[0];
    let reason = reason.as_deref().unwrap();
    assert!(
        reason.starts_with("function `gate` failed: took "),
        "{reason}"
    );
    assert!(reason.contains(" ms, budget 30 ms"), "{reason}");
}

#[test]
fn a_fast_host_is_allowed() {
    let rules = rules();
    let ctx = context(&rules, host(|_, _| Ok(Bson::Boolean(true))));
    assert_all_grant(&rules, &ctx);
}

#[test]
fn the_budget_is_per_request_and_can_be_lifted() {
    let rules = rules_with_budget(SHORT);
    let slow = host(|_, _| {
        std::thread::sleep(SHORT * 2);
        Ok(Bson::Boolean(true))
    });
    let ctx = rules
        .context()
        .user(doc! {"id": "alice", "type": "normal"})
        .functions(slow)
        .max_function_time(Duration::MAX)
        .build()
        .unwrap();
    assert_all_grant(&rules, &ctx);
    // A context built by hand starts with the default budget.
    assert_eq!(
        RequestContext::default().max_function_time,
        Limits::default().max_function_time
    );
    assert_eq!(Limits::default().max_function_time, Duration::from_secs(1));
}

/// A host that blocks until the test releases it (so no thread outlives the test by much).
struct Blocking {
    release: Mutex<mpsc::Receiver<()>>,
}

impl FunctionHost for Blocking {
    fn call(&self, _name: &str, _arguments: &[Bson]) -> Result<Bson, String> {
        let release = self.release.lock().map_err(|e| e.to_string())?;
        let _ = release.recv_timeout(Duration::from_secs(30));
        Ok(Bson::Boolean(true))
    }
}

#[test]
fn deadline_answers_in_time_for_a_host_that_blocks() {
    // The rule set's budget is the default (1 s): only the deadline can answer early.
    let rules = rules_with(Limits::default());
    let (release, wait) = mpsc::channel();
    let blocking = Arc::new(Blocking {
        release: Mutex::new(wait),
    });
    let timeout = Duration::from_millis(50);
    let ctx = context(&rules, Arc::new(Deadline::new(blocking, timeout)));
    let started = Instant::now();
    let collection = rules.collection("app.gated").unwrap();
    for engine in [EngineKind::Compiled, EngineKind::Reference] {
        let read = collection.prepare_with(&ctx, engine).read(&DOC());
        assert!(!read.visible, "{engine:?}");
        let reason = read.error.unwrap();
        assert!(
            reason.starts_with("function `gate` failed: no answer within 50 ms"),
            "{engine:?}: {reason}"
        );
    }
    // Two calls of 50 ms each, far from the host's 30 s block (and within the 1 s budget).
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    drop(release);

    // In time, the host's answer passes through; a panic on the worker is caught there.
    let fast = Deadline::new(
        Arc::new(|_: &str, _: &[Bson]| Ok(Bson::Boolean(true))),
        timeout,
    );
    assert_eq!(fast.call("gate", &[]), Ok(Bson::Boolean(true)));
    let ctx = context(&rules, Arc::new(fast));
    assert_all_grant(&rules, &ctx);
    let panicking = Deadline::new(
        Arc::new(|_: &str, _: &[Bson]| -> Result<Bson, String> { panic!("worker exploded") }),
        Duration::from_secs(5),
    );
    assert_eq!(
        panicking.call("gate", &[]),
        Err("panicked: worker exploded".to_string())
    );
    // Over a trait object too.
    let dynamic: Arc<dyn FunctionHost> = host(|_, _| Ok(Bson::Int32(7)));
    assert_eq!(
        Deadline::new(dynamic, timeout).call("f", &[]),
        Ok(Bson::Int32(7))
    );
}

#[test]
fn call_function_is_the_guarded_call() {
    let mut ctx = {
        let mut ctx = RequestContext::default();
        ctx.functions = host(|name, _| match name {
            "ok" => Ok(Bson::Boolean(true)),
            "err" => Err("said no".into()),
            _ => panic!("unknown {name}"),
        });
        ctx
    };
    assert_eq!(ctx.call_function("ok", &[]), Ok(Bson::Boolean(true)));
    assert_eq!(ctx.call_function("err", &[]), Err("said no".to_string()));
    assert_eq!(
        ctx.call_function("other", &[]),
        Err("panicked: unknown other".to_string())
    );
    // A zero budget: every call overruns it and its result is discarded.
    ctx.max_function_time = Duration::ZERO;
    let err = ctx.call_function("ok", &[]).unwrap_err();
    assert!(
        err.starts_with("took ") && err.ends_with(" ms, budget 0 ms"),
        "{err}"
    );
    // A failure that overran the budget too is reported as itself.
    assert_eq!(ctx.call_function("err", &[]), Err("said no".to_string()));
    assert_eq!(
        ctx.call_function("other", &[]),
        Err("panicked: unknown other".to_string())
    );
}
