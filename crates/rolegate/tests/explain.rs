//! Explanations (issue 10, "the command line, as a newcomer met it"): with `with_explain(true)`
//! both engines explain
//! (a) the values compared when a rule (an `apply_when`, a field's `read`) is false;
//! (b) the place (file and JSON path) of the rule that denied, as well as of the rules that
//!     granted;
//! (c) why each filter applied or not (its `apply_when`, the values compared, the query and
//!     projection an applied filter adds);
//! (d) a function mock's arguments when it has no result for them.
//! Quoted values are cut short; with explanations off nothing is recorded and the outcomes are
//! the same; the client-safe view never changes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use bson::{Document, doc};
use rolegate::{
    ClientError, EngineKind, Explanation, LoadOptions, RequestContext, RuleSet, Rules, Step,
};
use serde_json::{Value, json};

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];
const FILE: &str = "data_sources/mongodb-atlas/app/items/rules.json";

/// `app.items` governed by `rules` (the object of its `rules.json`, without the namespace).
fn rules(rules: Value) -> Rules {
    let mut body = rules;
    body["database"] = json!("app");
    body["collection"] = json!("items");
    let files: BTreeMap<String, Value> = [
        (
            "data_sources/mongodb-atlas/config.json".to_string(),
            json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}}),
        ),
        (FILE.to_string(), body),
        (
            "functions/config.json".to_string(),
            json!([{"name": "isMember", "private": true}]),
        ),
    ]
    .into_iter()
    .collect();
    Rules::new(
        RuleSet::from_files(&files, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}")),
    )
}

/// The request context of `user` with the case-format `request` (function mocks included).
fn context(user: Value, request: Value) -> RequestContext {
    let request: rolegate::testing::CaseRequest = serde_json::from_value(request).unwrap();
    rolegate::testing::request_context(Some(&user), Some(&request), false).unwrap()
}

fn user(id: &str, custom: Value) -> Value {
    json!({"id": id, "type": "normal", "custom_data": custom})
}

/// The step whose message contains `text`, or a failure showing the explanation.
fn step<'a>(e: &'a Explanation, text: &str) -> &'a Step {
    e.steps
        .iter()
        .find(|s| s.message.contains(text))
        .unwrap_or_else(|| panic!("no step contains {text:?}:\n{e}"))
}

/// The JSON path of a step's rule, checking that it is in the collection's rule file.
fn path(s: &Step) -> &str {
    let place = s
        .place
        .as_ref()
        .unwrap_or_else(|| panic!("step {:?} has no place", s.message));
    assert_eq!(&*place.file, FILE, "{:?}", s.message);
    &place.json_path
}

fn owner_rules() -> Rules {
    rules(json!({"roles": [
        {"name": "owner", "apply_when": {"owner_id": "%%user.id"}, "read": true, "write": true},
        {"name": "hr", "apply_when": {"%%user.custom_data.dept": "hr"},
         "fields": {"name": {"read": true},
                    "salary": {"read": {"%%user.custom_data.level": {"$gte": 5}}}}}
    ]}))
}

#[test]
fn a_false_apply_when_shows_the_values_compared() {
    let rules = owner_rules();
    let coll = rules.collection("app.items").unwrap();
    let ctx = context(user("u1", json!({"dept": "hr", "level": 3})), json!({}));
    let doc = doc! {"_id": 1, "owner_id": "u2", "name": "n", "salary": 10};
    for engine in ENGINES {
        let read = coll
            .prepare_with(&ctx, engine)
            .with_explain(true)
            .read(&doc);
        assert_eq!(read.role.as_deref(), Some("hr"), "{engine:?}");
        let e = &read.explanation;
        let compared = step(
            e,
            r#"values compared: owner_id: "u2" (document) vs "u1" (%%user.id) => false"#,
        );
        assert_eq!(path(compared), "roles[0].apply_when", "{engine:?}");
        // The same through a write.
        let write = coll
            .prepare_with(&ctx, engine)
            .with_explain(true)
            .delete(&doc);
        step(
            &write.explanation,
            r#"owner_id: "u2" (document) vs "u1" (%%user.id) => false"#,
        );
    }
}

#[test]
fn a_denied_field_shows_the_values_compared_and_the_rule_that_denied() {
    let rules = owner_rules();
    let coll = rules.collection("app.items").unwrap();
    let ctx = context(user("u1", json!({"dept": "hr", "level": 3})), json!({}));
    let doc = doc! {"_id": 1, "owner_id": "u2", "name": "n", "salary": 10};
    for engine in ENGINES {
        let read = coll
            .prepare_with(&ctx, engine)
            .with_explain(true)
            .read(&doc);
        assert_eq!(read.document, Some(doc! {"name": "n"}), "{engine:?}");
        let e = &read.explanation;
        let compared = step(
            e,
            "values compared: %%user.custom_data.level: 3 vs $gte 5 => false",
        );
        assert_eq!(path(compared), "roles[1].fields.salary.read");
        // The denying rule of each removed field: its own `read`, or `additional_fields` (absent)
        // for fields no rule names.
        assert_eq!(
            path(step(e, "field `salary` is not readable")),
            "roles[1].fields.salary.read"
        );
        assert_eq!(
            path(step(e, "field `owner_id` is not readable")),
            "roles[1].additional_fields"
        );
        // Granting rules keep their places.
        assert_eq!(
            path(step(e, "read of field `name` is true")),
            "roles[1].fields.name.read"
        );
        assert_eq!(path(step(e, "role `hr` applies")), "roles[1]");
    }
}

#[test]
fn denying_rules_are_placed() {
    let rules = rules(json!({"roles": [
        {"name": "reader", "apply_when": {"kind": "open"}, "read": false, "write": false,
         "document_filters": {"read": {"team": "%%user.custom_data.team"}, "write": false}},
        {"name": "fields", "apply_when": {"kind": "fields"},
         "fields": {"title": {"write": false}}, "additional_fields": {"write": {"%%true": false}}}
    ]}));
    let coll = rules.collection("app.items").unwrap();
    let ctx = context(user("u1", json!({"team": "a"})), json!({}));
    for engine in ENGINES {
        let req = coll.prepare_with(&ctx, engine).with_explain(true);
        // Document filters exclude the document: the filters' place.
        let read = req.read(&doc! {"_id": 1, "kind": "open", "team": "b"});
        assert!(!read.visible);
        let e = &read.explanation;
        assert_eq!(
            path(step(e, "document filters exclude this document")),
            "roles[0].document_filters"
        );
        step(
            e,
            r#"team: "b" (document) vs "a" (%%user.custom_data.team) => false"#,
        );
        // `read: false` withholds: the role's `read`.
        let read = req.read(&doc! {"_id": 1, "kind": "open", "team": "a"});
        assert_eq!(
            path(step(&read.explanation, "read is false")),
            "roles[0].read"
        );
        // A field that is not writable: its own `write`, or `additional_fields.write`.
        let pre = doc! {"_id": 1, "kind": "fields", "title": "t", "note": "x"};
        let w = req.update(
            &pre,
            &doc! {"_id": 1, "kind": "fields", "title": "u", "note": "x"},
        );
        assert!(!w.allowed);
        assert_eq!(
            path(step(&w.explanation, "field `title` is not writable")),
            "roles[1].fields.title.write"
        );
        let w = req.update(
            &pre,
            &doc! {"_id": 1, "kind": "fields", "title": "t", "note": "y"},
        );
        assert_eq!(
            path(step(&w.explanation, "field `note` is not writable")),
            "roles[1].additional_fields.write"
        );
        // No role applies: the role list.
        let read = req.read(&doc! {"_id": 1, "kind": "other"});
        assert_eq!(path(step(&read.explanation, "no role applies")), "roles");
    }
}

#[test]
fn filters_explain_why_they_applied_or_not() {
    let rules = rules(json!({
        "roles": [{"name": "all", "apply_when": {}, "read": true}],
        "filters": [
            {"name": "mine", "apply_when": {"%%user.custom_data.admin": {"$ne": true}},
             "query": {"owner_id": "%%user.id"}, "projection": {"secret": 0}},
            {"name": "adminsOnly", "apply_when": {"%%user.custom_data.admin": true},
             "query": {"archived": true}}
        ]
    }));
    let coll = rules.collection("app.items").unwrap();
    let ctx = context(user("u1", json!({"admin": false})), json!({}));
    for engine in ENGINES {
        let plan = coll
            .prepare_with(&ctx, engine)
            .with_explain(true)
            .query_plan(None, None)
            .unwrap();
        assert_eq!(plan.applied, vec!["mine".to_string()]);
        let e = &plan.explanation;
        assert_eq!(
            path(step(e, "filter `mine` applies: its apply_when is true")),
            "filters[0].apply_when"
        );
        assert_eq!(
            path(step(e, r#"filter `mine` adds the query {"owner_id":"u1"}"#)),
            "filters[0].query"
        );
        assert_eq!(
            path(step(e, r#"filter `mine` adds the projection {"secret":0}"#)),
            "filters[0].projection"
        );
        assert_eq!(
            path(step(
                e,
                "filter `adminsOnly` does not apply: its apply_when is false"
            )),
            "filters[1].apply_when"
        );
        assert_eq!(
            path(step(
                e,
                "values compared: %%user.custom_data.admin: false vs true => false"
            )),
            "filters[1].apply_when"
        );
        // A document the filters' queries do not select says which filters.
        let planned = coll
            .prepare_with(&ctx, engine)
            .with_explain(true)
            .read_for(&plan, &doc! {"_id": 1, "owner_id": "u2"});
        assert!(!planned.selected);
        step(
            &planned.outcome.explanation,
            "the queries of the applied filters (mine) do not select this document",
        );
    }
}

#[test]
fn a_function_mock_without_a_result_shows_the_arguments() {
    let rules = rules(json!({"roles": [
        {"name": "member", "apply_when": {"%%true": {"%function": {
            "name": "isMember", "arguments": ["%%user.id", "%%root.team"]}}}, "read": true}
    ]}));
    let coll = rules.collection("app.items").unwrap();
    let request = json!({"functions": {"isMember": [
        {"args": ["u1", "red"], "returns": true},
        {"args": ["u1", "blue"], "returns": false}
    ]}});
    let ctx = context(user("u1", json!({})), request);
    let doc = doc! {"_id": 1, "team": "green"};
    for engine in ENGINES {
        for explain in [false, true] {
            let read = coll
                .prepare_with(&ctx, engine)
                .with_explain(explain)
                .read(&doc);
            assert!(!read.visible);
            let detail = read
                .detail()
                .unwrap_or_else(|| panic!("no error: {read:?}"));
            for part in [
                "isMember",
                r#"no result for the arguments ["u1","green"]"#,
                r#"it has results for ["u1","red"], ["u1","blue"]"#,
            ] {
                assert!(
                    detail.contains(part),
                    "{engine:?}: {part:?} not in {detail}"
                );
            }
            // The client never sees it.
            assert_eq!(
                read.client_error(),
                Some(ClientError::RULE_EVALUATION_FAILED)
            );
            if explain {
                let s = step(&read.explanation, r#"["u1","green"]"#);
                assert_eq!(path(s), "roles[0].apply_when");
            }
        }
    }
    // An unknown function names the mocked ones.
    let ctx = context(
        user("u1", json!({})),
        json!({"functions": {"other": {"args": [], "returns": true}}}),
    );
    let read = coll.prepare(&ctx).read(&doc);
    let detail = read.detail().unwrap();
    assert!(detail.contains("mocked functions: `other`"), "{detail}");
}

#[test]
fn quoted_values_are_cut_short() {
    let rules = owner_rules();
    let coll = rules.collection("app.items").unwrap();
    let ctx = context(user("u1", json!({"dept": "x"})), json!({}));
    let long = "x".repeat(100_000);
    let mut big = Document::new();
    for i in 0..5_000 {
        big.insert(format!("k{i}"), i);
    }
    let doc = doc! {"_id": 1, "owner_id": long, "name": big};
    for engine in ENGINES {
        let read = coll
            .prepare_with(&ctx, engine)
            .with_explain(true)
            .read(&doc);
        let s = step(&read.explanation, "values compared: owner_id:");
        assert!(s.message.contains("...(truncated)"), "{}", s.message);
        assert!(s.message.len() < 300, "{} chars", s.message.len());
        let total: usize = read.explanation.steps.iter().map(|s| s.message.len()).sum();
        assert!(total < 2_000, "the explanation has {total} chars");
    }
}

/// Many tests in one rule: the list is cut after a few, with a count of the rest.
#[test]
fn the_compared_list_is_bounded() {
    let clauses: Vec<Value> = (0..50).map(|i| json!({format!("f{i}"): i})).collect();
    let rules = rules(json!({"roles": [
        {"name": "r", "apply_when": {"%or": clauses}, "read": true}
    ]}));
    let coll = rules.collection("app.items").unwrap();
    let ctx = context(user("u1", json!({})), json!({}));
    let doc = doc! {"_id": 1};
    for engine in ENGINES {
        let read = coll
            .prepare_with(&ctx, engine)
            .with_explain(true)
            .read(&doc);
        let compared = read
            .explanation
            .steps
            .iter()
            .filter(|s| s.message.starts_with("values compared:"))
            .count();
        assert!(compared <= 9, "{compared} lines:\n{}", read.explanation);
        step(&read.explanation, "... and 42 more tests");
    }
}

/// With explanations off, nothing is recorded, and every outcome (and the client's view) is the
/// one the explained request gives, apart from the explanation.
#[test]
fn explain_off_outcomes_are_unchanged() {
    let rules = owner_rules();
    let coll = rules.collection("app.items").unwrap();
    let docs = [
        doc! {"_id": 1, "owner_id": "u1", "name": "a", "salary": 1},
        doc! {"_id": 2, "owner_id": "u2", "name": "b", "salary": 2},
        doc! {"_id": 3, "owner_id": "u3"},
    ];
    for custom in [
        json!({"dept": "hr", "level": 3}),
        json!({"dept": "hr", "level": 7}),
        json!({}),
    ] {
        let ctx = context(user("u1", custom), json!({}));
        for engine in ENGINES {
            let off = coll.prepare_with(&ctx, engine);
            let on = off.with_explain(true);
            for doc in &docs {
                let (a, mut b) = (off.read(doc), on.read(doc));
                assert!(a.explanation.is_empty());
                assert!(!b.explanation.is_empty());
                assert_eq!(a.client_error(), b.client_error());
                b.explanation = Explanation::default();
                assert_eq!(a, b, "{engine:?}");
                let mut changed = doc.clone();
                changed.insert("name", "z");
                for (a, mut b) in [
                    (off.insert(doc), on.insert(doc)),
                    (off.update(doc, &changed), on.update(doc, &changed)),
                    (off.delete(doc), on.delete(doc)),
                ] {
                    assert!(a.explanation.is_empty());
                    assert_eq!(a.client_error(), b.client_error());
                    b.explanation = Explanation::default();
                    assert_eq!(a, b, "{engine:?}");
                }
            }
            let plan = off.query_plan(None, None).unwrap();
            assert!(plan.explanation.is_empty());
        }
    }
}
