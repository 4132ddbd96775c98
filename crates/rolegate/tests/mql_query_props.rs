//! Property tests of query matching (issue 11): random queries over random documents built
//! from a few keys (`a`, `b`, and the numeric `0`, `1`), arrays of arrays, mixed numeric types,
//! `null` and missing values. A query run as a rule gives the same answer through the compiled
//! engine (decoded and raw documents) and the reference evaluator; and where the rule
//! semantics cannot differ from a client query's (no plain match against an array operand,
//! U20), the rule gives the in-memory matcher's answer. Failing seeds go to
//! `proptest-regressions/mql_query_props.txt`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test; indexes come from ranges of the key table"
)]

use bson::{Bson, Document, doc};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rolegate::{EngineKind, LoadOptions, RequestContext, RuleSet, Rules, Scratch, mql};
use serde_json::{Value, json};

const KEYS: [&str; 4] = ["a", "b", "0", "1"];

fn scalar() -> impl Strategy<Value = Bson> {
    prop_oneof![
        Just(Bson::Int32(1)),
        Just(Bson::Int32(2)),
        Just(Bson::Int64(2)),
        Just(Bson::Double(1.0)),
        Just(Bson::Double(2.5)),
        Just(Bson::Double(f64::NAN)),
        Just(Bson::String("x".into())),
        Just(Bson::String("y".into())),
        Just(Bson::Null),
        Just(Bson::Boolean(true)),
    ]
}

fn value() -> impl Strategy<Value = Bson> {
    scalar().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Bson::Array),
            prop::collection::vec((0..KEYS.len(), inner), 0..3).prop_map(|members| {
                let mut d = Document::new();
                for (k, v) in members {
                    d.insert(KEYS[k], v);
                }
                Bson::Document(d)
            }),
        ]
    })
}

fn document() -> impl Strategy<Value = Document> {
    prop::collection::vec((0..KEYS.len(), value()), 0..3).prop_map(|members| {
        let mut d = doc! {"_id": 0};
        for (k, v) in members {
            d.insert(KEYS[k], v);
        }
        d
    })
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(0..KEYS.len(), 1..4).prop_map(|segments| {
        segments
            .into_iter()
            .map(|i| KEYS[i])
            .collect::<Vec<_>>()
            .join(".")
    })
}

fn json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(1)),
        Just(json!(2)),
        Just(json!({"$numberLong": "2"})),
        Just(json!(2.5)),
        Just(json!("x")),
        Just(json!(null)),
        Just(json!(true)),
        Just(json!({"$minKey": 1})),
    ]
}

/// An operand: a scalar, or (rarely) an array of scalars.
fn operand() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => json_scalar(),
        1 => prop::collection::vec(json_scalar(), 0..3).prop_map(Value::Array),
    ]
}

/// One operator document (or a plain operand) testing a path's value.
fn predicate() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        operand(),
        (
            prop::sample::select(vec!["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
            operand()
        )
            .prop_map(|(op, v)| json!({ op: v })),
        (
            prop::sample::select(vec!["$in", "$nin", "$all"]),
            prop::collection::vec(json_scalar(), 1..3)
        )
            .prop_map(|(op, v)| json!({ op: v })),
        any::<bool>().prop_map(|b| json!({"$exists": b})),
        (0..3i32).prop_map(|n| json!({"$size": n})),
        prop::sample::select(vec!["number", "array", "null", "string", "object"])
            .prop_map(|t| json!({"$type": t})),
        (1..4i32).prop_map(|d| json!({"$mod": [d, 0]})),
        (0..4i32).prop_map(|m| json!({"$bitsAnySet": m})),
    ];
    leaf.prop_recursive(2, 8, 2, |inner| {
        prop_oneof![
            inner.clone().prop_filter_map("an operator document", |p| {
                p.as_object()
                    .filter(|o| o.keys().all(|k| k.starts_with('$')) && !o.is_empty())
                    .map(|_| json!({"$not": p}))
            }),
            (
                prop::sample::select(vec!["$gt", "$lt", "$eq", "$ne"]),
                json_scalar()
            )
                .prop_map(|(op, v)| json!({"$elemMatch": { op: v }})),
            (path(), inner).prop_map(|(p, v)| json!({"$elemMatch": { p: v }})),
        ]
    })
}

fn query() -> impl Strategy<Value = Value> {
    let test = (path(), predicate()).prop_map(|(p, v)| json!({ p: v }));
    test.prop_recursive(2, 6, 2, |inner| {
        (
            prop::sample::select(vec!["$and", "$or", "$nor"]),
            prop::collection::vec(inner, 1..3),
        )
            .prop_map(|(op, v)| json!({ op: v }))
    })
}

/// True when the query holds a plain match against an array operand anywhere (U20 makes
/// rules and client queries differ there). `key_is_field`: the object's keys that do not start
/// with `$` are field paths (true for the query itself, the members of `$and`/`$or`/`$nor` and
/// an `$elemMatch` query).
fn has_plain_array_match(v: &Value, key_is_field: bool) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, v)| {
            let field = !k.starts_with('$');
            (field && key_is_field && v.is_array())
                || match v {
                    Value::Array(items) => items.iter().any(|i| has_plain_array_match(i, true)),
                    _ => has_plain_array_match(v, field || k == "$elemMatch"),
                }
        }),
        _ => false,
    }
}

/// The answer as a rule through one engine: `Some(visible)`, or `None` when the rule failed.
fn as_rule(rules: &Rules, doc: &Document, engine: EngineKind, raw: bool) -> Option<bool> {
    let coll = rules.collection("db.c").unwrap();
    let ctx = RequestContext::for_user(doc! {"id": "u1", "type": "normal", "data": {}});
    let request = coll.prepare_with(&ctx, engine);
    if raw {
        let bytes = bson::RawDocumentBuf::from_document(doc).unwrap();
        let d = request.read_raw(&bytes, &mut Scratch::new());
        (!d.error).then_some(d.visible)
    } else {
        let o = request.read(doc);
        o.error.is_none().then_some(o.visible)
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/mql_query_props.txt"
        )))),
        ..ProptestConfig::default()
    })]

    /// The compiled engine (decoded and raw) equals the reference on random queries used as
    /// rules; without U20 shapes, both equal the in-memory matcher.
    #[test]
    fn compiled_rules_equal_the_reference_and_queries(
        q in query(),
        docs in prop::collection::vec(document(), 1..4),
    ) {
        let file = json!({
            "database": "db", "collection": "c",
            "roles": [{"name": "selected", "apply_when": q, "read": true}],
        });
        let loaded = RuleSet::from_json("rules.json", &file, &LoadOptions::default());
        let client = mql::compile_query(&mql::document_from_json(&q).unwrap());
        // Both readers refuse the same queries.
        prop_assert_eq!(loaded.is_ok(), client.is_ok(), "{}", q);
        let (Ok(set), Ok(client)) = (loaded, client) else { return Ok(()) };
        let rules = Rules::new(set);
        for d in &docs {
            let reference = as_rule(&rules, d, EngineKind::Reference, false);
            prop_assert_eq!(as_rule(&rules, d, EngineKind::Compiled, false), reference, "{} on {}", q, d);
            prop_assert_eq!(as_rule(&rules, d, EngineKind::Compiled, true), reference, "raw: {} on {}", q, d);
            if !has_plain_array_match(&q, true) {
                let matched = mql::matches(&client, d).ok();
                prop_assert_eq!(reference, matched, "as a query: {} on {}", q, d);
            }
        }
    }
}
