//! Issue 9, red team: attacks on the merged fixes of findings 1–13, as a hostile client, a
//! hostile app user and a hostile app author (docs/security.md, "After the fixes: a red-team
//! pass"). Sections R1, R2, R3 and R5
//! reproduce attacks that broke a promise of the issue (each test failed before its fix) and
//! properties generate their class; the sections marked "held" keep attacks that did not break
//! anything as guards; R6 is an open finding (an ignored test that fails today).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;

use bson::{Bson, Document, doc};
use proptest::prelude::*;
use rolegate::{
    EngineKind, LoadOptions, PlannedRead, PreparedRequest, QueryPlan, RequestContext, RuleSet,
    Rules,
};
use serde_json::{Value, json};

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

/// An app from `(path, JSON)` pairs, with one MongoDB data source.
fn app(files: &[(&str, Value)]) -> Rules {
    let mut all: BTreeMap<String, Value> = BTreeMap::new();
    all.insert(
        "data_sources/mongodb-atlas/config.json".to_string(),
        json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}}),
    );
    for (k, v) in files {
        all.insert((*k).to_string(), v.clone());
    }
    Rules::new(RuleSet::from_files(&all, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}")))
}

/// The value `v` of a substitution app (what it holds comes from each test's user).
fn value_v() -> (&'static str, Value) {
    (
        "values/v.json",
        json!({"name": "v", "value": 0, "from_secret": false}),
    )
}

/// The function `f` of a substitution app.
fn function_f() -> (&'static str, Value) {
    (
        "functions/config.json",
        json!([{"name": "f", "private": true}]),
    )
}

/// A user of a substitution app for whom every substituted source gives `v`: custom data `v`,
/// `%%values.v` and `%function f`.
fn substituting_user(rules: &Rules, v: &Bson) -> rolegate::RequestContext {
    let returns = v.clone();
    let host = move |_: &str, _: &[Bson]| -> Result<Bson, String> { Ok(returns.clone()) };
    rules
        .context()
        .user(doc! {"id": "u1", "type": "normal", "data": {}, "custom_data": {"v": v.clone()}})
        .value("v", v.clone())
        .functions(std::sync::Arc::new(host))
        .build()
        .unwrap()
}

fn rules_file(roles: Value) -> (&'static str, Value) {
    (
        "data_sources/mongodb-atlas/hr/staff/rules.json",
        json!({"database": "hr", "collection": "staff", "roles": roles}),
    )
}

fn user(rules: &Rules, custom_data: Document) -> RequestContext {
    rules
        .context()
        .user(doc! {"id": "mallory", "type": "normal", "data": {}, "custom_data": custom_data})
        .build()
        .unwrap()
}

fn shown(r: &PlannedRead) -> Option<&Document> {
    r.outcome
        .document
        .as_ref()
        .filter(|_| r.selected && r.outcome.visible)
}

/// What the client receives for `collection`: the database's part, then `read_for`.
fn received(
    request: &PreparedRequest<'_, '_>,
    plan: &QueryPlan,
    collection: &[Document],
) -> Vec<Document> {
    request
        .find(plan, collection)
        .unwrap()
        .into_iter()
        .filter_map(|r| shown(&r).cloned())
        .collect()
}

/// The answer to a client query, directly on the stored documents through `read_for`, and
/// through the database's part; both must agree. `None` when the plan is refused.
fn answer(
    request: &PreparedRequest<'_, '_>,
    query: &Document,
    collection: &[Document],
) -> Option<Vec<Document>> {
    let plan = request.query_plan(Some(query), None).ok()?;
    let direct: Vec<Document> = collection
        .iter()
        .filter_map(|d| shown(&request.read_for(&plan, d)).cloned())
        .collect();
    assert_eq!(direct, received(request, &plan, collection), "{query:?}");
    Some(direct)
}

// ---------------------------------------------------------------------------------------------
// R1: the keys of a client query are field names, never expansions.

/// A client query key `%%values.apiKey` (or `%%user...`, `%%environment...`) was parsed as an
/// expansion and evaluated with the request's context: a client could binary-search a secret
/// value, or the app's environment, one predicate at a time.
#[test]
fn client_query_keys_cannot_expand_the_request_context() {
    let rules = app(&[
        rules_file(json!([{"name": "all", "apply_when": {}, "read": true}])),
        (
            "values/apiKey.json",
            json!({"name": "apiKey", "value": "unset", "from_secret": false}),
        ),
    ]);
    let context = |key: &str, score: i32| {
        rules
            .context()
            .user(doc! {"id": "mallory", "type": "normal", "data": {},
            "custom_data": {"hiddenScore": score}})
            .value("apiKey", key)
            .build()
            .unwrap()
    };
    let (a, b) = (context("sk-live-7", 42), context("sk-live-1", 1));
    let coll = rules.collection("hr.staff").unwrap();
    let docs = [doc! {"_id": 1, "name": "Ann"}];
    for engine in ENGINES {
        let (ra, rb) = (coll.prepare_with(&a, engine), coll.prepare_with(&b, engine));
        for probe in [
            doc! {"%%values.apiKey": {"$gt": "sk-live-5"}},
            doc! {"%%values.apiKey": "sk-live-7"},
            doc! {"%%user.custom_data.hiddenScore": {"$gte": 40}},
            doc! {"name": "Ann", "%%values.apiKey": {"$exists": true}},
            doc! {"$or": [{"%%user.custom_data.hiddenScore": 42}, {"name": "nobody"}]},
            doc! {"tags": {"$elemMatch": {"%%values.apiKey": "sk-live-7"}}},
        ] {
            assert_eq!(
                answer(&ra, &probe, &docs),
                answer(&rb, &probe, &docs),
                "{engine:?}: the answer to {probe:?} depends on a request value"
            );
        }
    }
}

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/security_redteam.txt"
);

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(REGRESSIONS),
        )),
        ..ProptestConfig::default()
    }
}

/// A query key: a field of the documents, or text that reads like an expansion of the request.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name".to_string()),
        Just("n".to_string()),
        Just("%%values.k".to_string()),
        Just("%%user.custom_data.s".to_string()),
        Just("%%user.id".to_string()),
        Just("%%environment.values.e".to_string()),
        Just("%%request.remoteIPAddress".to_string()),
        Just("%%root.n".to_string()),
        Just("%%values".to_string()),
        Just("%%user".to_string()),
    ]
}

fn arb_scalar() -> impl Strategy<Value = Bson> {
    prop_oneof![
        (0i32..4).prop_map(Bson::Int32),
        prop::sample::select(vec!["a", "b", "Ann", "u1"]).prop_map(|s| Bson::String(s.into())),
        Just(Bson::Null),
    ]
}

fn arb_predicate() -> impl Strategy<Value = Bson> {
    prop_oneof![
        arb_scalar(),
        arb_scalar().prop_map(|v| Bson::Document(doc! {"$gt": v})),
        arb_scalar().prop_map(|v| Bson::Document(doc! {"$lte": v})),
        arb_scalar().prop_map(|v| Bson::Document(doc! {"$ne": v})),
        any::<bool>().prop_map(|b| Bson::Document(doc! {"$exists": b})),
        prop::collection::vec(arb_scalar(), 0..3).prop_map(|v| Bson::Document(doc! {"$in": v})),
        arb_scalar().prop_map(|v| Bson::Document(doc! {"$not": {"$gte": v}})),
    ]
}

/// Client queries whose keys, at any query position, may read like expansions.
fn arb_query() -> impl Strategy<Value = Document> {
    let clause = (arb_key(), arb_predicate()).prop_map(|(k, p)| doc! {k: p});
    clause.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| doc! {"$or": v}),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| doc! {"$nor": v}),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| doc! {"$and": v}),
            inner.clone().prop_map(|q| doc! {"tags": {"$elemMatch": q}}),
            (inner.clone(), inner).prop_map(|(mut a, b)| {
                a.extend(b);
                a
            }),
        ]
    })
}

proptest! {
    #![proptest_config(config(96))]

    /// R1's class: whatever its keys, a client query's answer never depends on the request's
    /// context (`%%values`, `%%user`, `%%environment`, `%%request`), in both engines.
    #[test]
    fn client_queries_never_read_the_request_context(
        query in arb_query(),
        first in (arb_scalar(), arb_scalar(), arb_scalar()),
        second in (arb_scalar(), arb_scalar(), arb_scalar()),
    ) {
        let rules = app(&[
            rules_file(json!([{"name": "all", "apply_when": {}, "read": true}])),
            ("values/k.json", json!({"name": "k", "value": 0, "from_secret": false})),
            ("environments/production.json", json!({"values": {"e": 0}})),
        ]);
        let context = |(k, s, e): &(Bson, Bson, Bson), id: &str| {
            let mut ctx = rules
                .context()
                .user(doc! {"id": id, "type": "normal", "data": {}, "custom_data": {"s": s.clone()}})
                .value("k", k.clone())
                .build()
                .unwrap();
            ctx.environment = Bson::Document(doc! {"tag": "production", "values": {"e": e.clone()}});
            ctx.request = Bson::Document(doc! {"remoteIPAddress": s.clone()});
            ctx
        };
        let (a, b) = (context(&first, "u1"), context(&second, "u2"));
        let coll = rules.collection("hr.staff").unwrap();
        let docs = [
            doc! {"_id": 1, "name": "Ann", "n": 1, "tags": [{"name": "a", "n": 2}]},
            doc! {"_id": 2, "name": "b", "tags": [{"n": 0}, {"name": "Ann"}]},
            doc! {"_id": 3, "%%values": {"k": 1}, "%%user": {"id": "u1"}},
            doc! {"_id": 4},
        ];
        for engine in ENGINES {
            let (ra, rb) = (coll.prepare_with(&a, engine), coll.prepare_with(&b, engine));
            prop_assert_eq!(
                answer(&ra, &query, &docs),
                answer(&rb, &query, &docs),
                "{:?}: {:?}", engine, query
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// R2: substituted values inside an `$elemMatch` query that also uses `$and`/`$or`/`$nor`.

/// The filter's store query for a user whose `custom_data` is `custom`; `Err` when planning
/// refuses it.
fn filter_store_query(
    filter_query: Value,
    custom: Document,
) -> Result<(Document, Vec<Document>), String> {
    let rules = app(&[(
        "data_sources/mongodb-atlas/hr/staff/rules.json",
        json!({"database": "hr", "collection": "staff",
               "roles": [{"name": "all", "apply_when": {}, "read": true}],
               "filters": [{"name": "mine", "apply_when": {}, "query": filter_query}]}),
    )]);
    let ctx = user(&rules, custom);
    let coll = rules.collection("hr.staff").unwrap();
    let request = coll.prepare(&ctx);
    let plan = request.query_plan(None, None).map_err(|e| e.to_string())?;
    let docs = [
        doc! {"_id": 1, "members": [{"team": "red", "role": "lead"}]},
        doc! {"_id": 2, "members": [{"team": "blue", "role": "lead"}]},
        doc! {"_id": 3, "members": [{"team": {"$ne": "zzz"}, "role": "lead"}]},
    ];
    Ok((plan.store_query.clone(), received(&request, &plan, &docs)))
}

/// An `$elemMatch` query mixing element fields with `$or` (or holding only `$and`/`$or`/`$nor`)
/// was taken for an operator document: its members were copied as written, so a team of
/// `{"$ne": "zzz"}` in custom data became an operator and selected every team.
#[test]
fn substituted_values_inside_elem_match_with_logical_operators_are_literals() {
    for filter in [
        json!({"members": {"$elemMatch": {"team": "%%user.custom_data.team",
                                          "$or": [{"role": "lead"}, {"role": "admin"}]}}}),
        json!({"members": {"$elemMatch": {"$or": [{"team": "%%user.custom_data.team"},
                                                  {"role": "admin"}]}}}),
        json!({"members": {"$elemMatch": {"$and": [{"team": "%%user.custom_data.team"}]}}}),
        json!({"members": {"$not": {"$elemMatch": {"$nor": [{"team": "%%user.custom_data.team"}]}}}}),
    ] {
        match filter_store_query(filter.clone(), doc! {"team": {"$ne": "zzz"}}) {
            Err(_) => {}
            Ok((query, docs)) => {
                let ids: Vec<i32> = docs.iter().map(|d| d.get_i32("_id").unwrap()).collect();
                assert!(
                    ids.iter().all(|id| *id == 3),
                    "{filter}: the store query {query} selects {ids:?}: the custom data is an operator"
                );
            }
        }
    }
}

/// Hostile values a user may put in their custom data (or a value, or a function result): none
/// of them is equal to anything stored in [`members_corpus`].
fn arb_hostile() -> impl Strategy<Value = Bson> {
    prop::sample::select(vec![
        Bson::Document(doc! {"$ne": "zzz"}),
        Bson::Document(doc! {"$exists": true}),
        Bson::Document(doc! {"$gt": ""}),
        Bson::Document(doc! {"$in": ["red", "blue"]}),
        Bson::Document(doc! {"$regex": "."}),
        Bson::Document(doc! {"$not": {"$eq": "zzz"}}),
        Bson::Document(doc! {"$elemMatch": {"$exists": true}}),
        Bson::Document(doc! {"$where": "true"}),
        Bson::Document(doc! {"team": {"$ne": "zzz"}}),
        Bson::Document(doc! {"$or": [{"team": {"$ne": "zzz"}}]}),
        Bson::RegularExpression(bson::Regex {
            pattern: ".".into(),
            options: String::new(),
        }),
        Bson::Array(vec![Bson::Document(doc! {"$ne": "zzz"})]),
    ])
}

fn members_corpus() -> Vec<Document> {
    let teams = ["red", "blue"];
    let roles = ["lead", "admin"];
    let mut out = Vec::new();
    let mut id = 0;
    for t in teams {
        for r in roles {
            id += 1;
            out.push(doc! {"_id": id, "team": t, "role": r,
            "members": [{"team": t, "role": r}, {"role": "admin"}],
            "m": {"team": t}});
        }
    }
    out.push(doc! {"_id": 10, "members": [], "m": {}});
    out.push(doc! {"_id": 11});
    out.push(
        doc! {"_id": 12, "members": [{"members": [{"team": "red"}]}], "team": ["red", "blue"]},
    );
    out
}

/// A clause on the value `p` (a substitution) at every kind of query position.
fn arb_filter_clause(p: Value) -> impl Strategy<Value = Value> {
    let leaf = {
        let p = p.clone();
        prop_oneof![
            Just(json!({"team": p.clone()})),
            Just(json!({"team": {"$eq": p.clone()}})),
            Just(json!({"team": {"$ne": p.clone()}})),
            Just(json!({"team": {"$in": [p.clone(), "red"]}})),
            Just(json!({"team": {"$nin": [p.clone()]}})),
            Just(json!({"team": [p.clone()]})),
            Just(json!({"m": {"team": p.clone()}})),
            Just(json!({"members": [{"team": p.clone(), "role": "lead"}]})),
            Just(json!({"members": {"$elemMatch": {"$eq": p.clone()}}})),
            Just(json!({"members.team": p.clone()})),
            Just(json!({"members": {"$all": [{"$elemMatch": {"team": p.clone()}}]}})),
            Just(json!({"members": {"$all": [{"$elemMatch": {"$eq": p.clone()}}]}})),
            Just(json!({"team": {"$not": {"$in": [p.clone()]}}})),
        ]
    };
    leaf.prop_recursive(3, 10, 2, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|c| json!({"$or": [c, {"role": "admin"}]})),
            inner.clone().prop_map(|c| json!({"$and": [c]})),
            inner.clone().prop_map(|c| json!({"$nor": [c]})),
            inner
                .clone()
                .prop_map(|c| json!({"members": {"$elemMatch": c}})),
            inner.clone().prop_map(|c| {
                let mut c = c;
                if let Value::Object(m) = &mut c {
                    m.insert("$or".into(), json!([{"role": "lead"}, {"role": "admin"}]));
                }
                json!({"members": {"$elemMatch": c}})
            }),
            inner
                .clone()
                .prop_map(|c| json!({"members": {"$elemMatch": {"$and": [c]}}})),
            inner.prop_map(|c| json!({"members": {"$not": {"$elemMatch": c}}})),
        ]
    })
}

/// The `_id`s a filter selects for a user whose substituted value is `v`, through the store
/// query and `read_for`; `None` when the plan is refused.
fn filter_selects(filter_query: &Value, v: &Bson) -> Option<Vec<i32>> {
    let rules = app(&[
        (
            "data_sources/mongodb-atlas/hr/staff/rules.json",
            json!({"database": "hr", "collection": "staff",
                   "roles": [{"name": "all", "apply_when": {}, "read": true}],
                   "filters": [{"name": "mine", "apply_when": {}, "query": filter_query}]}),
        ),
        value_v(),
        function_f(),
    ]);
    let ctx = substituting_user(&rules, v);
    let coll = rules.collection("hr.staff").unwrap();
    let request = coll.prepare(&ctx);
    let plan = request.query_plan(None, None).ok()?;
    Some(
        received(&request, &plan, &members_corpus())
            .iter()
            .map(|d| d.get_i32("_id").unwrap())
            .collect(),
    )
}

proptest! {
    #![proptest_config(config(256))]

    /// R2's class: wherever a filter query substitutes a value — field values, value operators,
    /// `$in`/`$nin` elements, arrays and documents the rule wrote, inside `$or`/`$and`/`$nor`,
    /// `$elemMatch` queries with and without logical operators, `$not` — a hostile value that
    /// equals nothing stored selects exactly what an inert value that equals nothing selects
    /// (or the plan is refused).
    #[test]
    fn substituted_values_are_literals_at_every_query_position(
        (filter, hostile) in prop::sample::select(vec![
            json!("%%user.custom_data.v"),
            json!("%%values.v"),
            json!({"%function": {"name": "f", "arguments": []}}),
        ])
        .prop_flat_map(arb_filter_clause)
        .prop_flat_map(|f| (Just(f), arb_hostile())),
    ) {
        let inert = filter_selects(&filter, &Bson::String("inert-value".into()));
        prop_assert!(inert.is_some(), "{} with an inert value is refused", filter);
        if let Some(hostile_ids) = filter_selects(&filter, &hostile) {
            prop_assert_eq!(
                Some(hostile_ids), inert,
                "{} with {:?}: the substituted value is read as query syntax", filter, hostile
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// R3: dotted paths with very many segments.

/// Runs `f` on a thread with a small stack, as a server's worker threads may have: a recursion
/// over client input overflows it instead of passing by luck on a big main stack.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|_| panic!("the decision panicked"))
}

fn many_segments(n: usize) -> String {
    vec!["a"; n].join(".")
}

/// A client projection key of 200,000 one-letter segments (400 KB): the projection tree was
/// built by one recursive call per segment, which overflowed the stack in `read_for`.
#[test]
fn a_projection_path_with_many_segments_does_not_overflow() {
    on_small_stack(|| {
        let rules = app(&[rules_file(
            json!([{"name": "all", "apply_when": {}, "read": true}]),
        )]);
        let ctx = user(&rules, doc! {});
        let coll = rules.collection("hr.staff").unwrap();
        let stored = doc! {"_id": 1, "a": {"a": {"a": 1}}, "b": 2};
        for engine in ENGINES {
            let request = coll.prepare_with(&ctx, engine);
            for value in [1, 0] {
                let projection = doc! {many_segments(200_000): value};
                let started = std::time::Instant::now();
                if let Ok(plan) = request.query_plan(None, Some(&projection)) {
                    let _ = request.read_for(&plan, &stored);
                    let _ = request.find(&plan, std::slice::from_ref(&stored));
                }
                assert!(started.elapsed() < std::time::Duration::from_secs(2));
            }
            let query = doc! {many_segments(200_000): 1};
            let started = std::time::Instant::now();
            if let Ok(plan) = request.query_plan(Some(&query), None) {
                let _ = request.read_for(&plan, &stored);
                let _ = request.find(&plan, std::slice::from_ref(&stored));
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// R4 (held): super-linear work on large client queries is stopped by the step budget.

/// One planned read with a ~1 MB client query over a ~1 MB stored array must be decided (or
/// refused) quickly, whatever the operator.
#[test]
fn large_array_operators_in_client_queries_are_bounded() {
    let rules = app(&[rules_file(
        json!([{"name": "all", "apply_when": {}, "read": true}]),
    )]);
    let ctx = user(&rules, doc! {});
    let coll = rules.collection("hr.staff").unwrap();
    let n = 60_000;
    let stored_items: Vec<Bson> = (0..n).map(|i| Bson::Int32(2 * i)).collect();
    let query_items: Vec<Bson> = (0..n).map(|i| Bson::Int32(2 * i + 1)).collect();
    let strings: Vec<Bson> = (0..n).map(|i| Bson::String(format!("s{i}"))).collect();
    let stored = doc! {"_id": 1, "tags": stored_items, "names": strings.clone()};
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        for query in [
            doc! {"tags": {"$in": query_items.clone()}},
            doc! {"tags": {"$nin": query_items.clone()}},
            doc! {"tags": {"$all": query_items.clone()}},
            doc! {"tags": {"$all": [{"$elemMatch": {"$in": query_items.clone()}}]}},
            doc! {"tags": {"$elemMatch": {"$in": query_items.clone()}}},
            doc! {"tags": {"$not": {"$in": query_items.clone()}}},
            doc! {"names": {"$in": strings.clone()}},
            doc! {"names": {"$all": strings.clone()}},
            doc! {"tags": query_items.clone()},
            doc! {"$or": query_items.iter().take(20_000).map(|i| Bson::Document(doc! {"tags": i.clone()})).collect::<Vec<_>>()},
        ] {
            let started = std::time::Instant::now();
            if let Ok(plan) = request.query_plan(Some(&query), None) {
                let _ = request.read_for(&plan, &stored);
            }
            let took = started.elapsed();
            let shown = format!("{:?}", query.keys().collect::<Vec<_>>());
            let op = format!("{}", query).chars().take(60).collect::<String>();
            assert!(
                took < std::time::Duration::from_millis(2_000),
                "{engine:?} {shown} {op}: {took:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Held: compiled vs reference on the new semantics (missing vs substituted operands).

fn arb_side() -> impl Strategy<Value = Option<Bson>> {
    prop_oneof![
        Just(None),
        Just(Some(Bson::Null)),
        Just(Some(Bson::String("x".into()))),
        Just(Some(Bson::Int32(1))),
        Just(Some(Bson::Array(vec![]))),
        Just(Some(Bson::Array(vec![
            Bson::Null,
            Bson::String("x".into())
        ]))),
        Just(Some(Bson::Array(vec![Bson::String("x".into())]))),
        Just(Some(Bson::Document(doc! {"$ne": "x"}))),
        Just(Some(Bson::Boolean(true))),
    ]
}

/// Rule shapes over a document field `f` and a user value `%%user.custom_data.x`, both sides.
fn arb_rule() -> impl Strategy<Value = Value> {
    let u = "%%user.custom_data.x";
    prop::sample::select(vec![
        json!({"f": u}),
        json!({"f": {"$eq": u}}),
        json!({"f": {"$ne": u}}),
        json!({"f": {"$gt": u}}),
        json!({"f": {"$gte": u}}),
        json!({"f": {"$lte": u}}),
        json!({"f": {"$in": u}}),
        json!({"f": {"$nin": u}}),
        json!({"f": {"$in": [u]}}),
        json!({"f": {"$in": [null, u]}}),
        json!({"f": {"$nin": [null, u]}}),
        json!({"f": {"$all": u}}),
        json!({"f": {"$all": [u, "x"]}}),
        json!({"f": {"$exists": u}}),
        json!({"f": {"$size": u}}),
        json!({"f": {"$not": {"$eq": u}}}),
        json!({"f": {"$elemMatch": {"$eq": u}}}),
        json!({"f": [u]}),
        json!({"f": {"k": u}}),
        json!({u: "%%root.f"}),
        json!({u: {"$eq": "%%root.f"}}),
        json!({u: {"$ne": "%%root.f"}}),
        json!({u: {"$in": ["%%root.f"]}}),
        json!({u: {"$in": "%%root.f"}}),
        json!({u: {"$nin": "%%root.f"}}),
        json!({u: {"$gte": "%%root.f"}}),
        json!({"%%root.f": null}),
        json!({"%%root.f": {"$in": [null]}}),
        json!({"%%root.f": {"$exists": false}}),
        json!({"%not": {"f": u}}),
        json!({"%%true": {"%function": {"name": "same", "arguments": ["%%root.f", u]}}}),
    ])
}

fn decide_all(
    rules: &Rules,
    ctx: &RequestContext,
    engine: EngineKind,
    stored: &Document,
) -> String {
    let coll = rules.collection("hr.staff").unwrap();
    let p = coll.prepare_with(ctx, engine);
    let read = p.read(stored);
    let raw = bson::RawDocumentBuf::from_document(stored).unwrap();
    let mut scratch = rolegate::Scratch::new();
    let mut raws = Vec::new();
    for validate in [false, true] {
        let q = p.with_raw_validation(validate);
        let d = q.read_raw(&raw, &mut scratch);
        let mut out = Vec::new();
        let e = q.redact_raw(&raw, &mut scratch, &mut out);
        raws.push(format!(
            "{:?}/{:?}/{}",
            d.role.and_then(|i| q.role_name(i)),
            e.visible,
            out.len()
        ));
    }
    let mut post = stored.clone();
    post.insert("g", 2);
    let update = p.update(stored, &post);
    let insert = p.insert(stored);
    let delete = p.delete(stored);
    let plan = p.query_plan(Some(&doc! {"n": 1}), None).unwrap();
    let planned = p.read_for(&plan, stored);
    format!(
        "read {:?} {:?} {:?} | raw {raws:?} | update {} insert {} delete {} | planned {} {:?}",
        read.role,
        read.visible,
        read.document,
        update.allowed,
        insert.allowed,
        delete.allowed,
        planned.selected,
        planned.outcome.document
    )
}

proptest! {
    #![proptest_config(config(512))]

    /// Both engines agree on every door (owned read, raw read and redaction with and without
    /// validation, writes, planned reads) when an operand may be missing, null, an array with
    /// null, or operator-shaped, on either side of the rule.
    #[test]
    fn engines_agree_on_missing_and_substituted_operands(
        rule in arb_rule(),
        user_x in arb_side(),
        doc_f in arb_side(),
    ) {
        let rules = app(&[
            rules_file(json!([
                {"name": "yes", "apply_when": rule.clone(), "read": true, "write": true},
                {"name": "partial", "apply_when": {"n": 1},
                 "fields": {"n": {"read": rule.clone()}, "f": {"read": true, "write": rule}}},
            ])),
            ("functions/config.json", json!([{"name": "same", "private": true}])),
        ]);
        let mut custom = Document::new();
        if let Some(x) = &user_x {
            custom.insert("x", x.clone());
        }
        let host = |_: &str, args: &[Bson]| -> Result<Bson, String> {
            Ok(Bson::Boolean(args.len() == 2 && args.first() == args.get(1)))
        };
        let ctx = rules
            .context()
            .user(doc! {"id": "u1", "type": "normal", "data": {}, "custom_data": custom})
            .functions(std::sync::Arc::new(host))
            .build()
            .unwrap();
        let mut stored = doc! {"_id": 1, "n": 1};
        if let Some(f) = &doc_f {
            stored.insert("f", f.clone());
        }
        let compiled = decide_all(&rules, &ctx, EngineKind::Compiled, &stored);
        let reference = decide_all(&rules, &ctx, EngineKind::Reference, &stored);
        prop_assert_eq!(compiled, reference);
    }
}

// ---------------------------------------------------------------------------------------------
// R5: applying a large client projection to each document.

/// An 80,000-key client projection (about 1 MB) merged in linear time (finding 11), but
/// `read_for` then built the projection's path tree with a linear search per key: quadratic,
/// seconds per document.
#[test]
fn large_client_projections_apply_in_linear_time() {
    let rules = app(&[rules_file(
        json!([{"name": "all", "apply_when": {}, "read": true}]),
    )]);
    let ctx = user(&rules, doc! {});
    let coll = rules.collection("hr.staff").unwrap();
    let stored = doc! {"_id": 1, "e5": 1, "k7": {"sub": 2}, "z": 3};
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        for (prefix, value) in [("e", 0), ("k", 1)] {
            let projection: Document = (0..80_000)
                .map(|i| (format!("{prefix}{i}.sub"), Bson::Int32(value)))
                .collect();
            let plan = request.query_plan(None, Some(&projection)).unwrap();
            let started = std::time::Instant::now();
            let read = request.read_for(&plan, &stored);
            let took = started.elapsed();
            assert!(read.selected);
            assert!(
                took < std::time::Duration::from_millis(500),
                "{engine:?} {prefix}: {took:?} for one document"
            );
        }
    }
}

/// A client query of 40,000 clauses (0.87 MB) planned against a filter projection of 1,000
/// fields, each clause checked against the filter projection: linear (held; about 0.12 s here
/// alone, allocation-bound; the bound is generous for a shared machine).
#[test]
fn large_client_queries_plan_in_linear_time() {
    let mut filter_projection = serde_json::Map::new();
    for i in 0..1000 {
        filter_projection.insert(format!("k{i}"), json!(1));
    }
    let rules = app(&[(
        "data_sources/mongodb-atlas/hr/staff/rules.json",
        json!({"database": "hr", "collection": "staff",
               "roles": [{"name": "all", "apply_when": {}, "read": true}],
               "filters": [{"name": "f", "apply_when": {}, "query": {},
                            "projection": filter_projection}]}),
    )]);
    let ctx = user(&rules, doc! {});
    let coll = rules.collection("hr.staff").unwrap();
    let stored = doc! {"_id": 1, "k5": 1, "z": 3};
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        for prefix in ["k", "z"] {
            let query: Document = (0..40_000)
                .map(|i| (format!("{prefix}{i}"), Bson::Document(doc! {"$ne": 1})))
                .collect();
            let started = std::time::Instant::now();
            let plan = request.query_plan(Some(&query), None).unwrap();
            let _ = request.read_for(&plan, &stored);
            let took = started.elapsed();
            assert!(
                took < std::time::Duration::from_millis(2000),
                "{engine:?} {prefix}: {took:?}"
            );
        }
    }
}

/// The role a rule gives a stored document when its substituted value (custom data, a
/// `%%values` entry, or a `%function` result) is `v`; both engines must agree.
fn role_for(rule: &Value, v: &Bson, stored: &Document) -> Option<String> {
    let rules = app(&[
        rules_file(json!([
            {"name": "yes", "apply_when": rule, "read": true},
            {"name": "no", "apply_when": {}, "read": false},
        ])),
        value_v(),
        function_f(),
    ]);
    let ctx = substituting_user(&rules, v);
    let coll = rules.collection("hr.staff").unwrap();
    let roles: Vec<Option<String>> = ENGINES
        .iter()
        .map(|e| coll.prepare_with(&ctx, *e).read(stored).role)
        .collect();
    assert_eq!(
        roles[0], roles[1],
        "{rule} with {v:?}: the engines disagree"
    );
    roles[0].clone()
}

proptest! {
    #![proptest_config(config(256))]

    /// R2's class in rule expressions (held): a hostile substituted value — from custom data,
    /// `%%values` or a `%function` result — chooses the same role as an inert value that equals
    /// nothing stored, at every query position, in both engines.
    #[test]
    fn substituted_values_are_literals_in_rule_expressions(
        (rule, hostile) in prop::sample::select(vec![
            json!("%%user.custom_data.v"),
            json!("%%values.v"),
            json!({"%function": {"name": "f", "arguments": []}}),
        ])
        .prop_flat_map(arb_filter_clause)
        .prop_flat_map(|f| (Just(f), arb_hostile())),
        stored in prop::sample::select(members_corpus()),
    ) {
        let inert = role_for(&rule, &Bson::String("inert-value".into()), &stored);
        let got = role_for(&rule, &hostile, &stored);
        prop_assert_eq!(got, inert, "{} with {:?} on {}", rule, hostile, stored);
    }
}
// ---------------------------------------------------------------------------------------------
// R6 (open): repeated keys in raw documents.

/// `{_id: 1, owner: "mallory", owner: "alice", name: "n", salary: 9}` as raw bytes (a BSON
/// builder can make it, and MongoDB's documentation says inserting it may succeed).
fn repeated_owner() -> bson::RawDocumentBuf {
    let head = bson::rawdoc! {"_id": 1, "owner": "mallory"};
    let tail = bson::rawdoc! {"owner": "alice", "name": "n", "salary": 9};
    let (a, b) = (head.as_bytes(), tail.as_bytes());
    let body: Vec<u8> = a[4..a.len() - 1]
        .iter()
        .chain(b[4..b.len() - 1].iter())
        .copied()
        .collect();
    let mut bytes = ((body.len() + 5) as i32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&body);
    bytes.push(0);
    bson::RawDocumentBuf::from_bytes(bytes).unwrap()
}

/// The compiled raw path without full validation reads the first `owner` (role `self`, the
/// whole document with `salary`); the reference and the validated path read the last one (role
/// `other`, `salary` hidden). Open: `with_raw_validation(false)` is the default and documents
/// this as trusting MongoDB to keep keys unique, which MongoDB does not promise.
#[test]
#[ignore = "open (red team R6): the unvalidated compiled raw path disagrees with the reference on repeated keys"]
fn repeated_keys_get_the_same_decision_on_every_raw_path() {
    let rules = app(&[rules_file(json!([
        {"name": "self", "apply_when": {"owner": "%%user.id"}, "read": true},
        {"name": "other", "apply_when": {}, "fields": {"name": {"read": true}}},
    ]))]);
    let ctx = user(&rules, doc! {});
    let coll = rules.collection("hr.staff").unwrap();
    let raw = repeated_owner();
    let mut answers = Vec::new();
    for engine in ENGINES {
        for validate in [false, true] {
            let p = coll
                .prepare_with(&ctx, engine)
                .with_raw_validation(validate);
            let mut scratch = rolegate::Scratch::new();
            let mut out = Vec::new();
            let d = p.redact_raw(&raw, &mut scratch, &mut out);
            answers.push((d.role.and_then(|i| p.role_name(i)).map(str::to_string), out));
        }
    }
    for a in &answers[1..] {
        assert_eq!(a, &answers[0], "{answers:?}");
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// R3's class: dotted paths of any number of segments (1–100,000), with empty, `$` and
    /// numeric segments, as client projection keys (inclusive or exclusive) and client query
    /// keys, end quickly without overflowing a small stack, in both engines; a projection
    /// path deeper than any admitted document never adds fields.
    #[test]
    fn dotted_paths_of_any_length_are_safe(
        n in prop_oneof![1usize..300, 1usize..100_000],
        segment in prop::sample::select(vec!["a", "0", "", "$", "%%user"]),
        include in any::<bool>(),
    ) {
        let path = vec![segment; n].join(".");
        let shown = on_small_stack(move || {
            let rules = app(&[rules_file(json!([{"name": "all", "apply_when": {}, "read": true}]))]);
            let ctx = user(&rules, doc! {});
            let coll = rules.collection("hr.staff").unwrap();
            let stored = doc! {"_id": 1, "a": {"a": [{"a": 1}, 2]}, "b": 2};
            let mut shown = Vec::new();
            for engine in ENGINES {
                let request = coll.prepare_with(&ctx, engine);
                let started = std::time::Instant::now();
                let projection = doc! {path.clone(): i32::from(include)};
                if let Ok(plan) = request.query_plan(None, Some(&projection)) {
                    let r = request.read_for(&plan, &stored);
                    shown.push(r.outcome.document.filter(|_| r.selected));
                }
                let query = doc! {path.clone(): {"$exists": true}};
                if let Ok(plan) = request.query_plan(Some(&query), None) {
                    let _ = request.find(&plan, std::slice::from_ref(&stored));
                }
                assert!(started.elapsed() < std::time::Duration::from_secs(2));
            }
            shown
        });
        if n > 250 && include {
            // Deeper than any document: at most `_id` and empty containers on the way.
            for doc in shown.iter().flatten() {
                prop_assert!(!doc.contains_key("b"), "{:?}", doc);
            }
        }
    }
}
// ---------------------------------------------------------------------------------------------
// R7: `$elemMatch` elements the rule wrote inside `$all`.

/// `{"members": {"$all": [{"$elemMatch": {"team": "%%user.custom_data.team"}}]}}` with a team
/// of `{"$ne": "zzz"}`: the `$all` element was copied as a literal, so the store query held
/// `{"$elemMatch": {"team": {"$ne": "zzz"}}}`, which MongoDB runs as a query (every team). The
/// in-memory runner does not model `$elemMatch` inside `$all`, so the store query is checked
/// by its shape.
#[test]
fn substituted_values_inside_all_elem_match_are_literals() {
    let hostile = doc! {"$ne": "zzz"};
    for (filter, literal) in [
        (
            json!({"members": {"$all": [{"$elemMatch": {"team": "%%user.custom_data.team"}}]}}),
            doc! {"members": {"$all": [{"$elemMatch": {"team": {"$eq": hostile.clone()}}}]}},
        ),
        (
            json!({"members": {"$all": [{"$elemMatch": {"$eq": "%%user.custom_data.team"}}]}}),
            doc! {"members": {"$all": [{"$elemMatch": {"$eq": hostile.clone()}}]}},
        ),
        (
            json!({"members": {"$all": [{"$elemMatch": {"$or": [{"team": "%%user.custom_data.team"}]}}]}}),
            doc! {"members": {"$all": [{"$elemMatch": {"$or": [{"team": {"$eq": hostile.clone()}}]}}]}},
        ),
    ] {
        if let Ok((query, _)) = filter_store_query(filter.clone(), doc! {"team": hostile.clone()}) {
            assert_eq!(query, literal, "{filter}: the custom data is an operator");
        }
    }
}

/// More positions, whose selections legitimately differ between values (comparisons across
/// types, operators that need an array): checked by the store query's shape only.
fn arb_more_clauses(p: Value) -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!({"team": {"$in": p.clone()}}),
        json!({"team": {"$nin": p.clone()}}),
        json!({"team": {"$all": p.clone()}}),
        json!({"team": {"$all": [p.clone()]}}),
        json!({"team": {"$gt": p.clone()}}),
        json!({"team": {"$lt": p.clone(), "$ne": "x"}}),
        json!({"team": {"$size": p.clone()}}),
        json!({"team": {"$exists": p.clone()}}),
        json!({"members": {"$elemMatch": {"$in": [p.clone()]}}}),
        json!({"members": {"$elemMatch": {"$not": {"$eq": p.clone()}}}}),
        json!({"members": {"$not": {"$elemMatch": {"team": p.clone(), "$nor": [{"role": p.clone()}]}}}}),
        json!({"members": {"$all": [{"$elemMatch": {"team": {"$in": [p.clone()]}}}, "x"]}}),
        json!({"$expr": {"$eq": ["$team", p.clone()]}}),
        json!({"$or": [{"team": p.clone()}, {"members": {"$elemMatch": {"$or": [{"team": p.clone()}]}}}]}),
        json!({"m": {"team": p.clone(), "k": [p.clone()]}}),
        json!({"members": [{"$elemMatch": p.clone()}]}),
    ])
}

/// Whether `hostile` sits somewhere in `query` where MongoDB reads it as query syntax (an
/// operator document, a query, a pattern) rather than as a value. A model of MongoDB's reading
/// of a query, position by position; anything under a value position is a value.
fn interpreted(query: &Document, hostile: &Bson) -> bool {
    #[derive(Clone, Copy)]
    enum At {
        Query,
        FieldValue,
        OperatorDoc,
        ListOfQueries,
        ValueList,
        AllList,
    }
    let mut stack: Vec<(Bson, At)> = vec![(Bson::Document(query.clone()), At::Query)];
    while let Some((node, at)) = stack.pop() {
        if matches!(at, At::Query | At::OperatorDoc | At::ListOfQueries) && &node == hostile {
            return true;
        }
        match (at, node) {
            (At::Query, Bson::Document(d)) => {
                for (k, v) in d {
                    match k.as_str() {
                        "$and" | "$or" | "$nor" => stack.push((v, At::ListOfQueries)),
                        "$comment" | "$expr" | "$where" | "$text" | "$jsonSchema" => {}
                        _ => stack.push((v, At::FieldValue)),
                    }
                }
            }
            (At::ListOfQueries, Bson::Array(items)) => {
                stack.extend(items.into_iter().map(|i| (i, At::Query)));
            }
            (At::FieldValue, Bson::Document(d))
                if d.keys().next().is_some_and(|k| k.starts_with('$')) =>
            {
                if &Bson::Document(d.clone()) == hostile {
                    return true;
                }
                stack.push((Bson::Document(d), At::OperatorDoc));
            }
            (At::FieldValue, v @ Bson::RegularExpression(_)) if &v == hostile => return true,
            (At::OperatorDoc, Bson::Document(d)) => {
                for (k, v) in d {
                    match k.as_str() {
                        "$in" | "$nin" => stack.push((v, At::ValueList)),
                        "$all" => stack.push((v, At::AllList)),
                        "$not" => stack.push((v, At::FieldValue)),
                        "$elemMatch" => match &v {
                            Bson::Document(e)
                                if !e.is_empty()
                                    && e.keys().all(|k| {
                                        k.starts_with('$')
                                            && !matches!(k.as_str(), "$and" | "$or" | "$nor")
                                    }) =>
                            {
                                stack.push((v, At::OperatorDoc));
                            }
                            _ => stack.push((v, At::Query)),
                        },
                        "$and" | "$or" | "$nor" => stack.push((v, At::ListOfQueries)),
                        _ => {}
                    }
                }
            }
            (At::ValueList, Bson::Array(items))
                if items
                    .iter()
                    .any(|i| matches!(i, Bson::RegularExpression(_)) && i == hostile) =>
            {
                return true;
            }
            (At::AllList, Bson::Array(items)) => {
                for i in items {
                    match i {
                        Bson::Document(d)
                            if d.keys().next().is_some_and(|k| k.starts_with('$')) =>
                        {
                            stack.push((Bson::Document(d), At::OperatorDoc));
                        }
                        r @ Bson::RegularExpression(_) if &r == hostile => return true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    false
}

proptest! {
    #![proptest_config(config(256))]

    /// R2 and R7's class, checked on the store query's shape with a model of how MongoDB reads
    /// it (the in-memory runner does not model `$elemMatch` inside `$all`): a hostile
    /// substituted value never sits where MongoDB would read it as query syntax.
    #[test]
    fn store_queries_never_read_substituted_values_as_syntax(
        (filter, hostile) in prop::sample::select(vec![
            json!("%%user.custom_data.v"),
            json!("%%values.v"),
            json!({"%function": {"name": "f", "arguments": []}}),
        ])
        .prop_flat_map(|p| prop_oneof![
            4 => arb_filter_clause(p.clone()),
            1 => arb_more_clauses(p),
        ])
        .prop_flat_map(|f| (Just(f), arb_hostile())),
    ) {
        let rules = app(&[
            (
                "data_sources/mongodb-atlas/hr/staff/rules.json",
                json!({"database": "hr", "collection": "staff",
                       "roles": [{"name": "all", "apply_when": {}, "read": true}],
                       "filters": [{"name": "mine", "apply_when": {}, "query": filter.clone()}]}),
            ),
            value_v(),
            function_f(),
        ]);
        let ctx = substituting_user(&rules, &hostile);
        let coll = rules.collection("hr.staff").unwrap();
        if let Ok(plan) = coll.prepare(&ctx).query_plan(None, None) {
            prop_assert!(
                !interpreted(&plan.store_query, &hostile),
                "{} with {:?}: store query {}", filter, hostile, plan.store_query
            );
        }
    }
}
