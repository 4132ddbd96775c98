//! Operations end to end on the in-memory store: a first check of each action's shape.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use bson::{Bson, DateTime, Document, doc};
use rolegate::ops::{MemoryStore, Namespace, OpEnv, Operation, execute};
use rolegate::{LoadOptions, RuleSet, Rules};
use serde_json::json;

fn rules() -> Rules {
    let set = RuleSet::from_json("data_sources/mongodb-atlas/app/tasks/rules.json", &json!({
        "database": "app", "collection": "tasks",
        "roles": [
            {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true, "write": true},
            {"name": "reader", "apply_when": {}, "fields": {"title": {"read": true}, "owner": {"read": true}}}
        ]
    }), &LoadOptions::default())
    .unwrap();
    Rules::new(set)
}

fn store() -> MemoryStore {
    let mut s = MemoryStore::new();
    s.insert_unchecked(
        &Namespace::new("app", "tasks"),
        [
            doc! {"_id": 1, "owner": "alice", "title": "a", "secret": 10},
            doc! {"_id": 2, "owner": "bob", "title": "b", "secret": 20},
            doc! {"_id": 3, "owner": "alice", "title": "c", "secret": 30},
        ],
    );
    s
}

fn call(store: &mut MemoryStore, user: &str, body: Document) -> Result<Bson, String> {
    let rules = rules();
    let op = Operation::from_body(&body).map_err(|e| format!("{}: {}", e.code(), e.detail()))?;
    let coll = rules
        .operation_collection(&op)
        .map_err(|e| e.code().to_string())?;
    let ctx = rules
        .context()
        .user(doc! {"id": user, "type": "normal", "data": {}, "custom_data": {}, "identities": []})
        .build()
        .unwrap();
    let request = coll.prepare(&ctx);
    let mut n = 100;
    let mut env = OpEnv::fixed(DateTime::from_millis(0), move || {
        n += 1;
        Bson::Int32(n)
    });
    execute(&request, &op, store, &mut env)
        .map(|d| d.result)
        .map_err(|e| format!("{}: {}", e.code(), e.detail()))
}

fn args(extra: Document) -> Document {
    let mut a = doc! {"database": "app", "collection": "tasks"};
    a.extend(extra);
    a
}

#[test]
fn find_hides_and_cannot_probe() {
    let mut s = store();
    let r = call(
        &mut s,
        "alice",
        doc! {"name": "find", "arguments": [args(doc!{"query": {}, "sort": {"secret": -1}})]},
    )
    .unwrap();
    assert_eq!(
        r,
        Bson::Array(vec![
            Bson::Document(doc! {"_id": 3, "owner": "alice", "title": "c", "secret": 30}),
            Bson::Document(doc! {"_id": 1, "owner": "alice", "title": "a", "secret": 10}),
            Bson::Document(doc! {"owner": "bob", "title": "b"}),
        ])
    );
    // A predicate on a hidden field sees it missing.
    let r = call(
        &mut s,
        "alice",
        doc! {"name": "count", "arguments": [args(doc!{"query": {"secret": 20}})]},
    )
    .unwrap();
    assert_eq!(r, Bson::Int64(0));
}

#[test]
fn update_many_is_all_or_nothing() {
    let mut s = store();
    let before = s.documents(&Namespace::new("app", "tasks")).to_vec();
    let e = call(&mut s, "alice", doc! {"name": "updateMany", "arguments": [args(doc!{"query": {}, "update": {"$inc": {"secret": 1}}})]}).unwrap_err();
    assert!(e.starts_with("UpdateNotPermitted"), "{e}");
    assert_eq!(
        s.documents(&Namespace::new("app", "tasks")),
        before.as_slice()
    );
    let r = call(&mut s, "alice", doc! {"name": "updateMany", "arguments": [args(doc!{"query": {"owner": "alice"}, "update": {"$inc": {"secret": 1}}})]}).unwrap();
    assert_eq!(
        r,
        Bson::Document(doc! {"matchedCount": 2, "modifiedCount": 2})
    );
    assert_eq!(
        s.documents(&Namespace::new("app", "tasks"))[0]
            .get_i32("secret")
            .unwrap(),
        11
    );
}

#[test]
fn inserts_upserts_and_deletes() {
    let mut s = store();
    let r = call(&mut s, "alice", doc! {"name": "insertOne", "arguments": [args(doc!{"document": {"owner": "alice", "title": "d"}})]}).unwrap();
    assert_eq!(r, Bson::Document(doc! {"insertedId": 101}));
    let r = call(&mut s, "alice", doc! {"name": "updateOne", "arguments": [args(doc!{"query": {"_id": 500, "owner": "alice", "title": "z"}, "update": {"$set": {"n": 1}}, "upsert": true})]}).unwrap();
    assert_eq!(
        r,
        Bson::Document(doc! {"matchedCount": 0, "modifiedCount": 0, "upsertedId": 500})
    );
    let e = call(
        &mut s,
        "alice",
        doc! {"name": "deleteOne", "arguments": [args(doc!{"query": {"owner": "bob"}})]},
    )
    .unwrap_err();
    assert!(e.starts_with("DeleteNotPermitted"), "{e}");
    let r = call(&mut s, "alice", doc! {"name": "findOneAndDelete", "arguments": [args(doc!{"filter": {"title": "c"}, "projection": {"title": 1}})]}).unwrap();
    assert_eq!(r, Bson::Document(doc! {"_id": 3, "title": "c"}));
    let e = call(
        &mut s,
        "alice",
        doc! {"name": "find", "arguments": [args(doc!{"qurey": {}})]},
    )
    .unwrap_err();
    assert!(e.contains("did you mean `query`"), "{e}");
}

/// The positional `$` takes its element from what the user may read: a hidden field that
/// would select an earlier element on the stored document does not choose the element.
#[test]
fn positional_updates_never_choose_by_hidden_fields() {
    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/app/lists/rules.json",
        &json!({
            "database": "app", "collection": "lists",
            "roles": [{
                "name": "r", "apply_when": {},
                "fields": {
                    "_id": {"read": true},
                    "items": {"fields": {
                        "a": {"read": false, "write": false},
                        "b": {"read": true, "write": true}
                    }}
                }
            }]
        }),
        &LoadOptions::default(),
    )
    .unwrap();
    let rules = Rules::new(set);
    let ns = Namespace::new("app", "lists");
    let mut store = MemoryStore::new();
    store.insert_unchecked(
        &ns,
        [doc! {"_id": 1, "items": [{"a": 1, "b": 0}, {"a": 2, "b": 5}]}],
    );
    let body = doc! {"name": "updateOne", "arguments": [{
        "database": "app", "collection": "lists",
        "query": {"items": {"$elemMatch": {"$or": [{"a": 1}, {"b": 5}]}}},
        "update": {"$set": {"items.$.b": 9}}
    }]};
    let op = Operation::from_body(&body).unwrap();
    let coll = rules.operation_collection(&op).unwrap();
    let ctx = rules.context().user(doc! {"id": "u"}).build().unwrap();
    let mut env = OpEnv::fixed(DateTime::from_millis(0), || Bson::Null);
    let done = execute(&coll.prepare(&ctx), &op, &mut store, &mut env).unwrap();
    assert_eq!(
        done.result,
        Bson::Document(doc! {"matchedCount": 1, "modifiedCount": 1})
    );
    // Element 1 (b: 5, visible) is updated, not element 0 (whose hidden a: 1 matches too).
    assert_eq!(
        store.documents(&ns)[0],
        doc! {"_id": 1, "items": [{"a": 1, "b": 0}, {"a": 2, "b": 9}]}
    );
}
