//! Issue 9, finding 4: a value that an expansion substitutes is a literal value — never an
//! operator document, never a pattern — in rule expressions (both engines) and in the filter
//! queries rolegate sends to the database.
//!
//! The regression tests reproduce the examples (a `%%user.custom_data.team` of
//! `{"$ne": "x"}` in a filter query, a regex in `%%user.data` in a rule); the property tests draw
//! operator-shaped documents and regexes in every expansion root and check that the rule engines
//! never match more than the literal comparison would, and that the planned filter query, run
//! by the in-memory query runner, selects exactly the documents whose field equals the literal
//! value (or that planning fails with a clear error where no literal encoding exists).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod compiled_support;

use bson::{Bson, Document, Regex, doc};
use proptest::prelude::*;
use rolegate::{
    EngineKind, LoadOptions, PlanError, RequestContext, RuleSet, Rules, mql, mql::bson_equal,
};
use serde_json::{Value, json};

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

fn rules_with(roles: Value, filters: Value) -> Rules {
    let file =
        json!({"database": "app", "collection": "items", "roles": roles, "filters": filters});
    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/app/items/rules.json",
        &file,
        &LoadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("rules do not load: {e}"));
    Rules::new(set)
}

fn re(pattern: &str) -> Bson {
    Bson::RegularExpression(Regex {
        pattern: pattern.into(),
        options: String::new(),
    })
}

/// Documents with every kind of `team`.
fn corpus() -> Vec<Document> {
    let teams: Vec<Option<Bson>> = vec![
        None,
        Some(Bson::Null),
        Some("x".into()),
        Some("y".into()),
        Some("".into()),
        Some(Bson::Int32(1)),
        Some(Bson::Int32(5)),
        Some(re(".*")),
        Some(re("^x")),
        Some(Bson::Document(doc! {"$ne": "x"})),
        Some(Bson::Document(doc! {"$gt": ""})),
        Some(Bson::Document(doc! {"$exists": true})),
        Some(Bson::Document(doc! {"a": 1})),
        Some(Bson::Array(vec!["x".into(), "z".into()])),
        Some(Bson::Array(vec![Bson::Document(doc! {"$ne": "x"})])),
    ];
    teams
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let mut d = doc! {"_id": i as i32};
            if let Some(t) = t {
                d.insert("team", t);
            }
            d
        })
        .collect()
}

/// Equality with a substituted value: the field equals the value, or an array field holds an
/// element equal to it; a missing field equals nothing (a substituted `null` included, issue 9
/// finding 7).
fn literally_equal(doc: &Document, value: &Bson) -> bool {
    match doc.get("team") {
        None => false,
        Some(t) => {
            bson_equal(t, value)
                || matches!(t, Bson::Array(items) if items.iter().any(|i| bson_equal(i, value)))
        }
    }
}

fn plan_for(filter_query: Value, ctx: &RequestContext) -> Result<Document, PlanError> {
    let rules = rules_with(
        json!([{"name": "all", "apply_when": {}, "read": true}]),
        json!([{"name": "f", "apply_when": {}, "query": filter_query}]),
    );
    let coll = rules.collection("app.items").unwrap();
    coll.prepare(ctx)
        .query_plan(None, None)
        .map(|p| p.store_query)
}

/// The `_id`s the planned query selects over [`corpus`].
fn selected(query: &Document) -> Vec<i32> {
    let expr = mql::compile_query(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    corpus()
        .iter()
        .filter(|d| mql::matches(&expr, d).unwrap())
        .map(|d| d.get_i32("_id").unwrap())
        .collect()
}

fn expected(value: &Bson) -> Vec<i32> {
    corpus()
        .iter()
        .filter(|d| literally_equal(d, value))
        .map(|d| d.get_i32("_id").unwrap())
        .collect()
}

fn user_with(custom: Document, data: Document) -> RequestContext {
    RequestContext::for_user(
        doc! {"id": "u1", "type": "normal", "data": data, "custom_data": custom},
    )
}

#[test]
fn an_operator_document_in_custom_data_is_a_literal_in_a_filter_query() {
    let ctx = user_with(doc! {"team": {"$ne": "x"}}, doc! {});
    let query = plan_for(json!({"team": "%%user.custom_data.team"}), &ctx).unwrap();
    let value = Bson::Document(doc! {"$ne": "x"});
    assert_eq!(selected(&query), expected(&value), "query {query}");
    assert_eq!(query, doc! {"team": {"$eq": {"$ne": "x"}}});
}

#[test]
fn a_regex_in_user_data_is_a_literal_in_a_filter_query() {
    let ctx = user_with(doc! {}, doc! {"team": re(".*")});
    let query = plan_for(json!({"team": "%%user.data.team"}), &ctx).unwrap();
    assert_eq!(selected(&query), expected(&re(".*")), "query {query}");
}

#[test]
fn plain_scalar_substitutions_keep_their_canonical_form() {
    let ctx = user_with(doc! {"team": "red", "n": 3}, doc! {});
    let query = plan_for(
        json!({"team": "%%user.custom_data.team", "n": {"$gt": "%%user.custom_data.n"}}),
        &ctx,
    )
    .unwrap();
    assert_eq!(query, doc! {"team": "red", "n": {"$gt": 3}});
}

#[test]
fn a_substituted_null_matches_only_a_present_null_in_a_filter_query() {
    // Issue 9, finding 7 in the database query: a user whose orgId is null does not select the
    // documents that lack orgId.
    let ctx = user_with(doc! {"team": Bson::Null, "teams": [Bson::Null]}, doc! {});
    let query = plan_for(json!({"team": "%%user.custom_data.team"}), &ctx).unwrap();
    assert_eq!(selected(&query), vec![1], "query {query}");
    for q in [
        json!({"team": {"$eq": "%%user.custom_data.team"}}),
        json!({"team": {"$gte": "%%user.custom_data.team"}}),
        json!({"team": {"$in": ["%%user.custom_data.team"]}}),
        json!({"team": {"$in": "%%user.custom_data.teams"}}),
    ] {
        let err = plan_for(q.clone(), &ctx).expect_err(&q.to_string());
        assert!(
            err.to_string().contains("literal"),
            "{q}: unclear error {err}"
        );
    }
    // `$ne`/`$nin` of null already exclude missing fields.
    let query = plan_for(json!({"team": {"$ne": "%%user.custom_data.team"}}), &ctx).unwrap();
    assert!(!selected(&query).contains(&0), "query {query}");
}

#[test]
fn a_substituted_regex_inside_in_fails_the_plan() {
    let ctx = user_with(doc! {"teams": [re(".*")], "team": re(".*")}, doc! {});
    for q in [
        json!({"team": {"$in": "%%user.custom_data.teams"}}),
        json!({"team": {"$in": ["%%user.custom_data.team"]}}),
        json!({"team": {"$nin": ["%%user.custom_data.team"]}}),
        json!({"team": {"$all": "%%user.custom_data.teams"}}),
        json!({"team": {"$not": "%%user.custom_data.team"}}),
    ] {
        let err = plan_for(q.clone(), &ctx).expect_err(&q.to_string());
        assert!(
            err.to_string().contains("literal"),
            "{q}: unclear error {err}"
        );
    }
}

#[test]
fn substituted_queries_fail_the_plan() {
    let ctx = user_with(
        doc! {"q": {"team": {"$ne": "x"}}, "qs": [{"team": {"$ne": "x"}}]},
        doc! {},
    );
    for q in [
        json!({"$or": "%%user.custom_data.qs"}),
        json!({"$and": ["%%user.custom_data.q"]}),
        json!({"tags": {"$elemMatch": "%%user.custom_data.q"}}),
    ] {
        assert!(plan_for(q.clone(), &ctx).is_err(), "{q} planned");
    }
}

#[test]
fn a_regex_in_user_data_is_a_value_in_rule_expressions() {
    let ctx = user_with(doc! {"teams": [re(".*")]}, doc! {"team": re(".*")});
    for rule in [
        json!({"team": "%%user.data.team"}),
        json!({"team": {"$in": "%%user.custom_data.teams"}}),
        json!({"team": {"$in": ["%%user.data.team"]}}),
        json!({"team": {"$all": "%%user.custom_data.teams"}}),
        json!({"team": {"$all": ["%%user.data.team"]}}),
    ] {
        let rules = rules_with(
            json!([
                {"name": "yes", "apply_when": rule.clone(), "read": true},
                {"name": "no", "apply_when": {}, "read": false}
            ]),
            json!([]),
        );
        let coll = rules.collection("app.items").unwrap();
        for engine in ENGINES {
            let p = coll.prepare_with(&ctx, engine);
            let d = doc! {"_id": 1, "team": "anything"};
            assert_eq!(p.read(&d).role.as_deref(), Some("no"), "{rule} {engine:?}");
            // ... but it equals the same stored regex.
            let d = doc! {"_id": 2, "team": re(".*")};
            assert_eq!(p.read(&d).role.as_deref(), Some("yes"), "{rule} {engine:?}");
        }
    }
}

#[test]
fn a_literal_regex_is_still_a_pattern() {
    let ctx = user_with(doc! {}, doc! {});
    for rule in [
        json!({"team": {"$regex": "^a"}}),
        json!({"team": {"$in": [{"$regularExpression": {"pattern": "^a", "options": ""}}]}}),
        json!({"team": {"$in": [{"$regularExpression": {"pattern": "^a", "options": ""}}, "%%user.id"]}}),
    ] {
        let rules = rules_with(
            json!([
                {"name": "yes", "apply_when": rule.clone(), "read": true},
                {"name": "no", "apply_when": {}, "read": false}
            ]),
            json!([]),
        );
        let coll = rules.collection("app.items").unwrap();
        for engine in ENGINES {
            let p = coll.prepare_with(&ctx, engine);
            assert_eq!(
                p.read(&doc! {"_id": 1, "team": "abc"}).role.as_deref(),
                Some("yes"),
                "{rule} {engine:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Hostile values: operator-shaped documents (nested too), regexes, and plain values.
fn hostile() -> impl Strategy<Value = Bson> {
    let leaf = prop_oneof![
        prop::sample::select(vec!["x", "y", "", ".*", "^x"]).prop_map(|s| Bson::String(s.into())),
        prop::sample::select(vec![1, 5]).prop_map(Bson::Int32),
        prop::sample::select(vec![".*", "^x", "", "x"]).prop_map(re),
        Just(Bson::Boolean(true)),
        Just(Bson::Null),
    ];
    let op = prop::sample::select(vec![
        "$ne",
        "$gt",
        "$gte",
        "$lt",
        "$exists",
        "$where",
        "$regex",
        "$in",
        "$nin",
        "$not",
        "$elemMatch",
        "$expr",
        "$eq",
        "a",
    ]);
    leaf.prop_recursive(3, 12, 3, move |inner| {
        prop_oneof![
            prop::collection::vec((op.clone(), inner.clone()), 1..3).prop_map(|members| {
                let mut d = Document::new();
                for (k, v) in members {
                    d.insert(k, v);
                }
                Bson::Document(d)
            }),
            prop::collection::vec(inner, 0..3).prop_map(Bson::Array),
        ]
    })
}

/// Every expansion root that can carry a value, and how to put the value there.
#[derive(Clone, Copy, Debug)]
enum Root {
    CustomData,
    UserData,
    Values,
    Environment,
    RequestHeader,
}

impl Root {
    fn expansion(self) -> &'static str {
        match self {
            Root::CustomData => "%%user.custom_data.v",
            Root::UserData => "%%user.data.v",
            Root::Values => "%%values.v",
            Root::Environment => "%%environment.values.v",
            Root::RequestHeader => "%%request.v",
        }
    }

    fn context(self, v: &Bson) -> RequestContext {
        let mut custom = doc! {};
        let mut data = doc! {};
        match self {
            Root::CustomData => {
                custom.insert("v", v.clone());
            }
            Root::UserData => {
                data.insert("v", v.clone());
            }
            _ => {}
        }
        let mut ctx = user_with(custom, data);
        match self {
            Root::Values => ctx.values = Bson::Document(doc! {"v": v.clone()}),
            Root::Environment => {
                ctx.environment = Bson::Document(doc! {"tag": "", "values": {"v": v.clone()}});
            }
            Root::RequestHeader => ctx.request = Bson::Document(doc! {"v": v.clone()}),
            _ => {}
        }
        ctx
    }
}

fn root() -> impl Strategy<Value = Root> {
    prop::sample::select(vec![
        Root::CustomData,
        Root::UserData,
        Root::Values,
        Root::Environment,
        Root::RequestHeader,
    ])
}

/// Filter query shapes with one substituted value position.
const SHAPES: &[&str] = &["match", "$eq", "$in1", "$inAll", "$ne", "$nin1"];

fn filter_shape(shape: &str, e: &str) -> Value {
    match shape {
        "match" => json!({"team": e}),
        "$eq" => json!({"team": {"$eq": e}}),
        "$in1" => json!({"team": {"$in": [e]}}),
        "$inAll" => json!({"team": {"$in": e}}),
        "$ne" => json!({"team": {"$ne": e}}),
        _ => json!({"team": {"$nin": [e]}}),
    }
}

/// The `_id`s a literal reading of the shape selects (`None`: no literal encoding exists, the
/// plan must fail).
fn literal_selection(shape: &str, v: &Bson) -> Option<Vec<i32>> {
    let is_re = |b: &Bson| matches!(b, Bson::RegularExpression(_));
    let all: Vec<i32> = corpus().iter().map(|d| d.get_i32("_id").unwrap()).collect();
    let not = |sel: Vec<i32>| all.iter().copied().filter(|i| !sel.contains(i)).collect();
    // MongoDB's `$ne`/`$nin` of null exclude missing fields too.
    let present: Vec<i32> = corpus()
        .iter()
        .filter(|d| d.contains_key("team"))
        .map(|d| d.get_i32("_id").unwrap())
        .collect();
    let negated = |v: &Bson| {
        let sel: Vec<i32> = not(expected(v));
        match v {
            Bson::Null => sel.into_iter().filter(|i| present.contains(i)).collect(),
            _ => sel,
        }
    };
    let is_null = |b: &Bson| matches!(b, Bson::Null);
    // MongoDB refuses an operator object inside `$in`/`$nin` (`[{"$ne": "x"}]`): no literal
    // encoding exists there.
    let is_op_doc = |b: &Bson| matches!(b, Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$') && !["$ref", "$id", "$db"].contains(&k.as_str())));
    match shape {
        "match" => Some(expected(v)),
        "$eq" if is_null(v) => None,
        "$eq" => Some(expected(v)),
        // MongoDB refuses a regex operand of `$ne` (M6): no literal encoding exists.
        "$ne" if is_re(v) => None,
        "$ne" => Some(negated(v)),
        "$in1" if is_re(v) || is_null(v) || is_op_doc(v) => None,
        "$in1" => Some(expected(v)),
        "$nin1" if is_re(v) || is_op_doc(v) => None,
        "$nin1" => Some(negated(v)),
        _ => match v {
            Bson::Array(items) if items.iter().any(|i| is_re(i) || is_null(i) || is_op_doc(i)) => {
                None
            }
            Bson::Array(items) => {
                let mut sel: Vec<i32> = items.iter().flat_map(expected).collect();
                sel.sort_unstable();
                sel.dedup();
                Some(sel)
            }
            // `$in` of a non-array: MongoDB refuses the query; the plan may send it or fail.
            _ => None,
        },
    }
}

proptest! {
    #![proptest_config(compiled_support::persisted(
        800,
        "proptest-regressions/security_injection.txt"
    ))]

    /// The planned filter query selects exactly what the literal comparison selects, or the
    /// plan fails where no literal encoding exists; it never selects more.
    #[test]
    fn substituted_values_are_literals_in_filter_queries(
        v in hostile(), r in root(), shape in 0..SHAPES.len()
    ) {
        let ctx = r.context(&v);
        let shape = SHAPES[shape];
        let q = filter_shape(shape, r.expansion());
        let planned = plan_for(q.clone(), &ctx);
        match (literal_selection(shape, &v), planned) {
            (Some(want), Ok(query)) => {
                let got = selected(&query);
                prop_assert_eq!(got, want, "{} with {} planned as {}", q, v, query);
            }
            (Some(_), Err(e)) => prop_assert!(false, "{} with {}: unexpected {}", q, v, e),
            (None, Ok(query)) => {
                // Only a `$in` of a non-array may be sent (MongoDB refuses it).
                prop_assert!(
                    shape == "$inAll" && !matches!(v, Bson::Array(_)),
                    "{} with {} planned as {}", q, v, query
                );
            }
            (None, Err(_)) => {}
        }
    }

    /// In rule expressions (both engines), a substituted value never matches more than the
    /// literal comparison (equality, an element of an array, and U20 for a match).
    #[test]
    fn substituted_values_are_literals_in_rules(
        v in hostile(), r in root(), shape in 0..4usize
    ) {
        let e = r.expansion();
        let rule = match shape {
            0 => json!({"team": e}),
            1 => json!({"team": {"$eq": e}}),
            2 => json!({"team": {"$in": [e]}}),
            _ => json!({"team": {"$all": [e]}}),
        };
        let rules = rules_with(
            json!([
                {"name": "yes", "apply_when": rule.clone(), "read": true},
                {"name": "no", "apply_when": {}, "read": false}
            ]),
            json!([]),
        );
        let ctx = r.context(&v);
        let coll = rules.collection("app.items").unwrap();
        for d in corpus() {
            let c = coll.prepare_with(&ctx, EngineKind::Compiled).read(&d).role;
            let f = coll.prepare_with(&ctx, EngineKind::Reference).read(&d).role;
            prop_assert_eq!(&c, &f, "engines differ on {} with {} over {}", rule, v, d);
            if c.as_deref() == Some("yes") {
                let u20 = shape == 0
                    && matches!((&v, d.get("team")), (Bson::Array(items), Some(t))
                        if !matches!(t, Bson::Array(_)) && items.iter().any(|i| bson_equal(i, t)));
                prop_assert!(
                    literally_equal(&d, &v) && d.get("team").is_some() || u20,
                    "{} with {} matched {}", rule, v, d
                );
            }
        }
    }
}
