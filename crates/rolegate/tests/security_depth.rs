//! Finding 10 of issue 9 (stack overflows): one depth guard at every door where BSON enters —
//! stored documents (owned and raw), pre- and post-images, the request context (`%%user`,
//! `%%values`, `%%request`, ...), the client query and projection — with a JavaScript
//! code-with-scope's scope counted as a level, in both engines. A value nested deeper than
//! `Limits::max_document_depth` is refused with a reason (fail closed) and never walked
//! recursively.
//!
//! Every decision runs on a thread with a small stack ([`STACK`]): a recursion over a deep value
//! that escaped the guard overflows it (and aborts this test binary) instead of passing by luck
//! on a large stack. Deep values are built and dropped on the test's own thread.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use bson::{Bson, Document, JavaScriptCodeWithScope, RawDocumentBuf, doc};
use proptest::prelude::*;
use rolegate::{
    EngineKind, Limits, LoadOptions, QueryPlan, RequestContext, RuleSet, Rules, Scratch,
};
use serde_json::json;

const RULES: &str = "data_sources/mongodb-atlas/db/c/rules.json";

/// The stack of the threads decisions run on.
const STACK: usize = 256 * 1024;

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

/// Runs `body` on a thread with a [`STACK`]-byte stack.
fn small_stack<T: Send>(body: impl FnOnce() -> T + Send) -> T {
    on_stack(STACK, body)
}

/// Runs a test's own work (building, cloning and dropping deep values with the `bson` crate,
/// which recurses) on a thread with a large stack.
fn big_stack(body: impl FnOnce() + Send) {
    on_stack(256 << 20, body);
}

fn on_stack<T: Send>(size: usize, body: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        match std::thread::Builder::new()
            .stack_size(size)
            .spawn_scoped(s, body)
            .unwrap()
            .join()
        {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Rules that look at the stored document, the user, the values and the request everywhere:
/// role selection, field rules on the deep field (`%%this`), a filter whose `apply_when` and
/// query read the user.
fn rules() -> Rules {
    let file = json!({"database": "db", "collection": "c",
        "roles": [{"name": "r",
            "apply_when": {"%or": [
                {"owner": "%%user.id"},
                {"%%user.custom_data.deep": {"$eq": "%%root.deep"}},
                {"%%values.deep": {"$exists": true}},
                {"%%request.deep": {"$ne": 1}}
            ]},
            "fields": {
                "x": {"read": true, "write": true},
                "deep": {"read": {"%%this": {"$eq": "%%user.custom_data.deep"}},
                         "write": {"%%this": {"$ne": "%%prev"}}}
            },
            "additional_fields": {"read": true, "write": true},
            "insert": true, "delete": true}],
        "filters": [{"name": "f", "apply_when": {"%%user.custom_data.deep": {"$exists": true}},
                     "query": {"owner": "%%user.id"}}]
    });
    Rules::new(RuleSet::from_json(RULES, &file, &LoadOptions::default()).unwrap())
}

/// One level of nesting.
#[derive(Debug, Clone, Copy)]
enum Level {
    Document,
    Array,
    Code,
}

/// A value nested `levels.len()` levels, outermost first, around `1`.
fn nested(levels: &[Level]) -> Bson {
    let mut v = Bson::Int32(1);
    for level in levels.iter().rev() {
        v = match level {
            Level::Document => Bson::Document(doc! {"a": v}),
            Level::Array => Bson::Array(vec![v]),
            Level::Code => Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                code: "function() {}".into(),
                scope: doc! {"s": v},
            }),
        };
    }
    v
}

fn code_with_scope(levels: usize) -> Bson {
    nested(&vec![Level::Code; levels])
}

fn documents(levels: usize) -> Bson {
    nested(&vec![Level::Document; levels])
}

/// Drops a value of any depth without recursion (the `bson` crate's drop recurses).
fn drop_deep(value: Bson) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Bson::Document(d) => stack.extend(d.into_iter().map(|(_, v)| v)),
            Bson::Array(items) => stack.extend(items),
            Bson::JavaScriptCodeWithScope(c) => stack.extend(c.scope.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

fn user(custom: Bson) -> RequestContext {
    RequestContext::for_user(doc! {"id": "u", "type": "normal", "custom_data": {"deep": custom}})
}

fn stored(deep: Bson) -> Document {
    doc! {"_id": 1, "owner": "u", "x": 1, "deep": deep}
}

fn too_deep(reason: Option<&str>) -> bool {
    reason.is_some_and(|r| r.contains("nested deeper than"))
}

/// Where a deep value enters.
#[derive(Debug, Clone, Copy)]
enum Door {
    Document,
    RawDocument,
    RawValidated,
    PreImage,
    PostImage,
    Inserted,
    Deleted,
    User,
    Values,
    Request,
    ClientQuery,
    ClientProjection,
}

const DOORS: [Door; 12] = [
    Door::Document,
    Door::RawDocument,
    Door::RawValidated,
    Door::PreImage,
    Door::PostImage,
    Door::Inserted,
    Door::Deleted,
    Door::User,
    Door::Values,
    Door::Request,
    Door::ClientQuery,
    Door::ClientProjection,
];

/// What one decision at a door answered: whether it refused the input for its depth (with a
/// reason) and whether it granted anything.
#[derive(Debug)]
struct Answer {
    refused_deep: bool,
    granted: bool,
    reason: Option<String>,
}

/// The decision at `door` with `value` (a clone of which is placed there), in `engine`.
fn decide(rules: &Rules, door: Door, engine: EngineKind, value: &Bson) -> Answer {
    let coll = rules.collection("db.c").unwrap();
    let plain = stored(Bson::Int32(1));
    let deep_doc = || stored(value.clone());
    let mut ctx = user(Bson::Int32(1));
    match door {
        Door::User => ctx = user(value.clone()),
        Door::Values => ctx.values = Bson::Document(doc! {"deep": value.clone()}),
        Door::Request => ctx.request = Bson::Document(doc! {"deep": value.clone()}),
        _ => {}
    }
    let docs = match door {
        Door::Document | Door::RawDocument | Door::RawValidated | Door::Deleted => Some(deep_doc()),
        Door::PreImage | Door::PostImage | Door::Inserted => Some(deep_doc()),
        _ => None,
    };
    let raw = match door {
        Door::RawDocument | Door::RawValidated => docs
            .as_ref()
            .map(|d| RawDocumentBuf::from_document(d).unwrap()),
        _ => None,
    };
    let query = doc! {"deep": value.clone()};
    let projection = doc! {"x": 1, "deep": value.clone()};
    let answer = small_stack(|| {
        let request = coll.prepare_with(&ctx, engine);
        let doc = docs.as_ref().unwrap_or(&plain);
        let read = |reason: Option<String>, granted: bool| Answer {
            refused_deep: too_deep(reason.as_deref()),
            granted,
            reason,
        };
        match door {
            Door::Document | Door::User | Door::Values | Door::Request => {
                let r = request.read(doc);
                let plan = request.query_plan(None, None);
                let plan_refused = plan
                    .as_ref()
                    .err()
                    .is_some_and(|e| too_deep(Some(&e.to_string())));
                let out = read(r.error, r.visible);
                if matches!(door, Door::User | Door::Values | Door::Request) {
                    assert!(
                        plan_refused == out.refused_deep,
                        "the query plan and the read disagree on the request: {plan:?} / {out:?}"
                    );
                }
                out
            }
            Door::RawDocument | Door::RawValidated => {
                let request = request.with_raw_validation(matches!(door, Door::RawValidated));
                let raw = raw.as_ref().unwrap();
                let mut scratch = Scratch::new();
                let mut out = Vec::new();
                let a = request.read_raw(raw, &mut scratch);
                let b = request.redact_raw(raw, &mut scratch, &mut out);
                assert_eq!(a, b, "read_raw and redact_raw disagree");
                Answer {
                    refused_deep: a.error,
                    granted: a.visible || !out.is_empty(),
                    reason: a
                        .error
                        .then(|| "raw document withheld with an error".into()),
                }
            }
            Door::PreImage => {
                let w = request.update(doc, &plain);
                read(w.error.map(|e| e.message), w.allowed)
            }
            Door::PostImage => {
                let w = request.update(&plain, doc);
                read(w.error.map(|e| e.message), w.allowed)
            }
            Door::Inserted => {
                let w = request.insert(doc);
                read(w.error.map(|e| e.message), w.allowed)
            }
            Door::Deleted => {
                let w = request.delete(doc);
                read(w.error.map(|e| e.message), w.allowed)
            }
            Door::ClientQuery | Door::ClientProjection => {
                let plan = match door {
                    Door::ClientQuery => request.query_plan(Some(&query), None),
                    _ => request.query_plan(None, Some(&projection)),
                };
                let reason = plan.as_ref().err().map(|e| e.to_string());
                read(reason, plan.is_ok())
            }
        }
    });
    drop_deep(Bson::Document(query));
    drop_deep(Bson::Document(projection));
    drop_deep(ctx.values);
    drop_deep(ctx.request);
    if let Some(u) = ctx.user {
        drop_deep(u);
    }
    if let Some(d) = docs {
        drop_deep(Bson::Document(d));
    }
    answer
}

fn assert_refused(rules: &Rules, door: Door, value: &Bson) {
    for engine in ENGINES {
        let answer = decide(rules, door, engine, value);
        assert!(
            answer.refused_deep && !answer.granted && answer.reason.is_some(),
            "{door:?} in {engine:?}: a value nested too deep must be refused with a reason, got {answer:?}"
        );
    }
}

/// The issue's first example: code-with-scope nested 2,000 levels (24 KB and more) in a stored
/// document, through the raw path (`read_raw`, `redact_raw`) and `read`, in both engines.
#[test]
fn code_with_scope_nested_2000_levels_is_refused() {
    big_stack(|| {
        let rules = rules();
        let deep = code_with_scope(2000);
        for door in [
            Door::RawDocument,
            Door::RawValidated,
            Door::Document,
            Door::Inserted,
            Door::PreImage,
            Door::PostImage,
            Door::Deleted,
        ] {
            assert_refused(&rules, door, &deep);
        }
        drop_deep(deep);
    });
}

/// The issue's second example: a `%%user` value nested 3,000 levels, in both engines and in
/// `query_plan`; the same for the other request values.
#[test]
fn a_user_nested_3000_levels_fails_every_decision_of_the_request() {
    big_stack(|| {
        let rules = rules();
        let deep = documents(3000);
        for door in [Door::User, Door::Values, Door::Request] {
            assert_refused(&rules, door, &deep);
        }
        let deep_code = code_with_scope(3000);
        assert_refused(&rules, Door::User, &deep_code);
        drop_deep(deep);
        drop_deep(deep_code);
    });
}

/// Client queries and projections nested 3,000 levels are refused by `query_plan`.
#[test]
fn deep_client_queries_and_projections_are_refused() {
    big_stack(|| {
        let rules = rules();
        for deep in [documents(3000), code_with_scope(3000)] {
            assert_refused(&rules, Door::ClientQuery, &deep);
            assert_refused(&rules, Door::ClientProjection, &deep);
            drop_deep(deep);
        }
    });
}

/// A code-with-scope's scope is a level of nesting: 100 documents with a scope at the bottom is
/// 101 levels.
#[test]
fn a_scope_counts_as_a_level() {
    let limits = Limits::default();
    let mut levels = vec![Level::Document; 99];
    levels.push(Level::Code);
    let value = nested(&levels);
    let doc = doc! {"v": value.clone()};
    let depth = |max_document_depth| {
        let mut limits = Limits::default();
        limits.max_document_depth = max_document_depth;
        limits
    };
    assert!(depth(100).check_value("value", &value).is_ok());
    assert!(depth(99).check_value("value", &value).is_err());
    assert!(limits.check_document(&doc).is_err());
    levels.pop();
    assert!(limits.check_document(&doc! {"v": nested(&levels)}).is_ok());
}

/// `max_document_depth` cannot be configured above the ceiling that keeps recursion safe.
#[test]
fn the_configured_depth_is_capped() {
    big_stack(|| {
        let mut limits = Limits::default();
        limits.max_document_depth = usize::MAX;
        assert_eq!(
            limits.effective_document_depth(),
            Limits::DOCUMENT_DEPTH_CEILING
        );
        let deep = documents(3000);
        let Bson::Document(d) = &deep else { panic!() };
        assert!(limits.check_document(d).is_err());
        drop_deep(deep);
    });
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![Just(Level::Document), Just(Level::Array), Just(Level::Code)]
}

fn door() -> impl Strategy<Value = Door> {
    (0..DOORS.len()).prop_map(|i| DOORS[i])
}

/// Deep values (documents, arrays, code-with-scope, mixed) at every door, in both engines:
/// never a crash; refused with a reason when deeper than the limit, and never refused for
/// depth when within it.
#[test]
fn deep_values_at_every_door_fail_closed() {
    big_stack(|| {
        let config = ProptestConfig {
            cases: 48,
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::Direct(
                    "proptest-regressions/security_depth.txt",
                ),
            )),
            ..ProptestConfig::default()
        };
        let rules = rules();
        proptest!(config, |(door in door(), levels in prop::collection::vec(level(), 1..2500))| {
            let value = nested(&levels);
            // The value sits one level below the door's document (two below `%%user`).
            let extra = if matches!(door, Door::User) { 2 } else { 1 };
            let over = levels.len() + extra > Limits::default().max_document_depth;
            for engine in ENGINES {
                let answer = decide(&rules, door, engine, &value);
                if over {
                    prop_assert!(answer.refused_deep && !answer.granted,
                        "{door:?} {engine:?} depth {}: {answer:?}", levels.len());
                } else {
                    prop_assert!(!answer.refused_deep,
                        "{door:?} {engine:?} depth {}: refused within the limit: {answer:?}",
                        levels.len());
                }
            }
            drop_deep(value);
        });
    });
}

/// The Device Sync entry points (`sync_session`, `sync_write`: per-request work answered by the
/// reference evaluator) deny deep request contexts and documents too.
#[test]
fn sync_sessions_and_writes_refuse_deep_values() {
    big_stack(|| {
        let rules = rules();
        let coll = rules.collection("db.c").unwrap();
        let deep = documents(3000);
        let deep_ctx = user(deep.clone());
        let plain = stored(Bson::Int32(1));
        let deep_doc = stored(code_with_scope(3000));
        let (session, write, deep_write) = small_stack(|| {
            (
                coll.prepare(&deep_ctx).sync_session(Some(&plain), None),
                coll.prepare(&deep_ctx).sync_write(None, Some(&plain)),
                coll.prepare(&user(Bson::Int32(1)))
                    .sync_write(None, Some(&deep_doc)),
            )
        });
        assert!(!session.readable && !session.writable);
        assert!(too_deep(session.incompatible.as_deref()), "{session:?}");
        for w in [write, deep_write] {
            assert!(!w.allowed);
            assert!(
                too_deep(w.error.as_ref().map(|e| e.message.as_str())),
                "{w:?}"
            );
        }
        drop_deep(Bson::Document(deep_doc));
        drop_deep(deep_ctx.user.unwrap());
        drop_deep(deep);
    });
}

/// Extended JSON output (the CLI's, explanations') never recurses into a value too deep.
#[test]
fn extended_json_output_refuses_deep_values() {
    big_stack(|| {
        for deep in [documents(3000), code_with_scope(3000)] {
            let doc = doc! {"v": deep};
            let (value, document) = small_stack(|| {
                let Some(v) = doc.get("v") else { panic!() };
                (
                    rolegate::mql::bson_to_json(v),
                    rolegate::mql::document_to_json(&doc),
                )
            });
            for out in [value, document] {
                assert!(
                    out.as_str().is_some_and(|s| s.contains("nested deeper")),
                    "{out}"
                );
            }
            drop_deep(Bson::Document(doc));
        }
        let shallow = doc! {"a": {"b": [1]}};
        assert_eq!(
            rolegate::mql::document_to_json(&shallow),
            json!({"a": {"b": [1]}})
        );
    });
}

/// The in-memory query runner refuses deep documents, queries and projections.
#[test]
fn the_in_memory_runner_refuses_deep_values() {
    use rolegate::mql::run;
    big_stack(|| {
        let deep = documents(3000);
        let plain = vec![stored(Bson::Int32(1))];
        let deep_docs = vec![stored(deep.clone())];
        let plans = [
            {
                let mut plan = QueryPlan::default();
                plan.store_query = doc! {"deep": deep.clone()};
                plan
            },
            {
                let mut plan = QueryPlan::default();
                plan.store_projection = doc! {"x": deep.clone()};
                plan
            },
        ];
        let results = small_stack(|| {
            let mut out: Vec<String> = plans
                .iter()
                .map(|p| run(p, &plain).unwrap_err().to_string())
                .collect();
            out.push(
                run(&QueryPlan::default(), &deep_docs)
                    .unwrap_err()
                    .to_string(),
            );
            out
        });
        for r in results {
            assert!(too_deep(Some(&r)), "{r}");
        }
        for p in plans {
            drop_deep(Bson::Document(p.store_query));
            drop_deep(Bson::Document(p.store_projection));
        }
        for d in deep_docs {
            drop_deep(Bson::Document(d));
        }
        drop_deep(deep);
    });
}
