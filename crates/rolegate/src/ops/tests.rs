//! Unit tests of whole operations: the body's shape per action, the store read a plan asks
//! for, and the decisions the conformance cases (`tests/conformance/operations-cases.json`)
//! state end to end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bson::{Bson, DateTime, Document, doc};
use serde_json::json;

use super::{MemoryStore, Namespace, OpEnv, Operation, execute};
use crate::{LoadOptions, RuleSet, Rules};

fn body(name: &str, extra: Document) -> Document {
    let mut args = doc! {"database": "app", "collection": "tasks"};
    args.extend(extra);
    doc! {"name": name, "arguments": [args]}
}

fn parse_err(name: &str, extra: Document) -> String {
    match Operation::from_body(&body(name, extra)) {
        Ok(op) => panic!("{name} parsed: {op:?}"),
        Err(e) => {
            assert_eq!(e.code(), "InvalidParameter");
            e.detail().to_string()
        }
    }
}

#[test]
fn replace_actions_refuse_update_operators() {
    for name in ["replaceOne", "findOneAndReplace"] {
        let detail = parse_err(name, doc! {"query": {}, "update": {"$set": {"a": 1}}});
        assert!(detail.contains("replacement document"), "{name}: {detail}");
    }
}

/// `replaces` tells replacements (whatever the action's name) from operator updates.
#[test]
fn replaces_tells_replacements_from_operator_updates() {
    let cases = [
        ("replaceOne", doc! {"query": {}, "update": {"a": 1}}, true),
        (
            "findOneAndReplace",
            doc! {"query": {}, "replacement": {"a": 1}},
            true,
        ),
        ("updateOne", doc! {"query": {}, "update": {"a": 1}}, true),
        (
            "updateMany",
            doc! {"query": {}, "update": {"$set": {"a": 1}}},
            false,
        ),
        (
            "findOneAndUpdate",
            doc! {"query": {}, "update": {"$inc": {"a": 1}}},
            false,
        ),
        ("insertOne", doc! {"document": {"a": 1}}, false),
        ("deleteOne", doc! {"query": {}}, false),
        ("find", doc! {"query": {}}, false),
    ];
    for (name, extra, replaces) in cases {
        let op = Operation::from_body(&body(name, extra)).unwrap();
        assert_eq!(op.replaces(), replaces, "{name}");
    }
}

#[test]
fn replace_one_takes_no_array_filters() {
    let detail = parse_err(
        "replaceOne",
        doc! {"query": {}, "update": {"a": 1}, "arrayFilters": [{"x": 1}]},
    );
    assert!(
        detail.contains("unknown argument `arrayFilters`"),
        "{detail}"
    );
}

/// The update actions accept a replacement document (as the App Services server did); the
/// replace actions refuse update operators.
#[test]
fn update_actions_accept_replacements_and_replace_actions_refuse_operators() {
    for name in ["updateOne", "updateMany", "findOneAndUpdate"] {
        let op = Operation::from_body(&body(name, doc! {"query": {}, "update": {"a": 1}}));
        assert!(op.is_ok(), "{name}: {op:?}");
    }
    for name in ["replaceOne", "findOneAndReplace"] {
        let op = Operation::from_body(&body(name, doc! {"query": {}, "update": {"a": 1}}));
        assert!(op.is_ok(), "{name}: {op:?}");
        let detail = parse_err(name, doc! {"query": {}, "update": {"$set": {"a": 1}}});
        assert!(detail.contains("replacement document"), "{name}: {detail}");
    }
}

fn rules(roles: serde_json::Value, filters: serde_json::Value) -> Rules {
    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/app/tasks/rules.json",
        &json!({"database": "app", "collection": "tasks", "roles": roles, "filters": filters}),
        &LoadOptions::default(),
    )
    .unwrap();
    Rules::new(set)
}

fn run(rules: &Rules, system: bool, store: &mut MemoryStore, op: Document) -> Result<Bson, String> {
    let op = Operation::from_body(&op).map_err(|e| e.detail().to_string())?;
    let coll = rules
        .operation_collection(&op)
        .map_err(|e| e.code().to_string())?;
    let ctx = rules
        .context()
        .user(doc! {"id": "alice"})
        .system(system)
        .build()
        .unwrap();
    let request = coll.prepare(&ctx);
    let mut env = OpEnv::fixed(DateTime::from_millis(0), || Bson::Null);
    execute(&request, &op, store, &mut env)
        .map(|d| d.result)
        .map_err(|e| e.code().to_string())
}

fn tasks(docs: Vec<Document>) -> MemoryStore {
    let mut s = MemoryStore::new();
    s.insert_unchecked(&Namespace::new("app", "tasks"), docs);
    s
}

#[test]
fn a_collection_without_roles_fails_every_app_user_request() {
    let r = rules(json!([]), json!([]));
    for (name, extra) in [
        ("find", doc! {"query": {}}),
        ("count", doc! {"query": {}}),
        ("aggregate", doc! {"pipeline": []}),
        ("deleteMany", doc! {"query": {}}),
        ("insertOne", doc! {"document": {"_id": 9}}),
    ] {
        let mut s = tasks(vec![doc! {"_id": 1}]);
        assert_eq!(
            run(&r, false, &mut s, body(name, extra.clone())),
            Err("NoMatchingRuleFound".to_string()),
            "{name}"
        );
        // The system user needs no rules.
        assert!(run(&r, true, &mut s, body(name, extra)).is_ok(), "{name}");
    }
}

#[test]
fn a_sort_reads_the_fields_a_projection_drops() {
    let r = rules(
        json!([{"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true}]),
        json!([]),
    );
    let op = Operation::from_body(&body(
        "find",
        doc! {"query": {}, "project": {"title": 1}, "sort": {"n.x": -1, "$natural": 1}},
    ))
    .unwrap();
    let ctx = r.context().user(doc! {"id": "alice"}).build().unwrap();
    let coll = r.collection("app.tasks").unwrap();
    let plan = coll.prepare(&ctx).plan_operation(&op).unwrap();
    let projection = plan.read().unwrap().projection.clone().unwrap();
    assert_eq!(projection, doc! {"owner": 1, "title": 1, "n": 1});
    let mut s = tasks(vec![
        doc! {"_id": 1, "owner": "alice", "title": "a", "n": {"x": 1}},
        doc! {"_id": 2, "owner": "alice", "title": "b", "n": {"x": 2}},
    ]);
    let found = run(
        &r,
        false,
        &mut s,
        body(
            "find",
            doc! {"query": {}, "project": {"title": 1}, "sort": {"n.x": -1}},
        ),
    );
    assert_eq!(
        found,
        Ok(Bson::Array(vec![
            Bson::Document(doc! {"_id": 2, "title": "b"}),
            Bson::Document(doc! {"_id": 1, "title": "a"}),
        ]))
    );
}

#[test]
fn keep_sort_fields_widens_both_kinds_of_projection() {
    let mut inclusive = doc! {"a": 1};
    super::run::keep_sort_fields(&mut inclusive, &doc! {"b.c": 1, "a": -1, "$natural": 1});
    assert_eq!(inclusive, doc! {"a": 1, "b": 1});
    let mut exclusive = doc! {"a.x": 0, "b": 0, "c": 0};
    super::run::keep_sort_fields(&mut exclusive, &doc! {"a.y": 1, "b": 1});
    assert_eq!(exclusive, doc! {"c": 0});
    let mut none = Document::new();
    super::run::keep_sort_fields(&mut none, &doc! {"a": 1});
    assert!(none.is_empty());
}

#[test]
fn filter_projections_hide_fields_from_sorts_and_pipelines() {
    // `owner` is read by a role, so the store returns it; the filter projects it away.
    let r = rules(
        json!([
            {"name": "mine", "apply_when": {"owner": "%%user.id"}, "read": true, "write": true},
            {"name": "all", "apply_when": {}, "read": true}
        ]),
        json!([{"name": "anon", "apply_when": {}, "query": {}, "projection": {"name": 1}}]),
    );
    let docs = || {
        tasks(vec![
            doc! {"_id": 1, "name": "x", "owner": "bob"},
            doc! {"_id": 2, "name": "y", "owner": "alice"},
        ])
    };
    let natural = Bson::Array(vec![
        Bson::Document(doc! {"_id": 1, "name": "x"}),
        Bson::Document(doc! {"_id": 2, "name": "y"}),
    ]);
    let sorted = run(
        &r,
        false,
        &mut docs(),
        body("find", doc! {"query": {}, "sort": {"owner": 1}}),
    );
    assert_eq!(sorted, Ok(natural.clone()));
    let piped = run(
        &r,
        false,
        &mut docs(),
        body("aggregate", doc! {"pipeline": []}),
    );
    assert_eq!(piped, Ok(natural));
    let matched = run(
        &r,
        false,
        &mut docs(),
        body(
            "aggregate",
            doc! {"pipeline": [{"$match": {"owner": "alice"}}]},
        ),
    );
    assert_eq!(matched, Ok(Bson::Array(vec![])));
    // findOneAndUpdate picks the first view in natural order (bob's, read-only), not alice's.
    let picked = run(
        &r,
        false,
        &mut docs(),
        body(
            "findOneAndUpdate",
            doc! {"filter": {}, "sort": {"owner": 1}, "update": {"$set": {"name": "z"}}},
        ),
    );
    assert_eq!(picked, Err("UpdateNotPermitted".to_string()));
}

#[test]
fn limit_counts_documents_the_projection_leaves() {
    let r = rules(
        json!([{"name": "all", "apply_when": {}, "read": true}]),
        json!([]),
    );
    let mut s = tasks(vec![
        doc! {"_id": 1, "a": 1},
        doc! {"_id": 2, "a": 2, "tag": "t"},
        doc! {"_id": 3, "tag": "u"},
    ]);
    // The first document has nothing left after the projection: withheld, not counted.
    let found = run(
        &r,
        false,
        &mut s,
        body(
            "find",
            doc! {"query": {}, "project": {"tag": 1, "_id": 0}, "limit": 1},
        ),
    );
    assert_eq!(
        found,
        Ok(Bson::Array(vec![Bson::Document(doc! {"tag": "t"})]))
    );
    let one = run(
        &r,
        false,
        &mut s,
        body(
            "findOne",
            doc! {"query": {}, "project": {"tag": 1, "_id": 0}},
        ),
    );
    assert_eq!(one, Ok(Bson::Document(doc! {"tag": "t"})));
}
