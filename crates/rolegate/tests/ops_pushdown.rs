//! Pushdown in the operations, on the in-memory store: the residual joins the store query, the
//! store returns only what some role could show (and nothing is read when nothing can be),
//! `limit` counts visible documents — or, with App Services' order
//! (`with_window_before_rules`), the documents the filters select — and fields no role can
//! read are not fetched.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use bson::{Bson, Document, doc};
use rolegate::ops::{
    Decided, MemoryStore, Namespace, OpEnv, Operation, Store, StoreError, StoreRead, WriteSet,
    execute,
};
use rolegate::{LoadOptions, RuleSet, Rules};
use serde_json::json;

fn rules(roles: serde_json::Value) -> Rules {
    Rules::new(
        RuleSet::from_json(
            "data_sources/mongodb-atlas/app/notes/rules.json",
            &json!({"database": "app", "collection": "notes", "roles": roles}),
            &LoadOptions::default(),
        )
        .unwrap(),
    )
}

fn owner_or_public() -> serde_json::Value {
    json!([
        {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true, "write": true},
        {"name": "public", "apply_when": {"public": true},
         "fields": {"_id": {"read": true}, "title": {"read": true}, "owner": {"read": true}}}
    ])
}

/// Ten notes, in this order: bob's private ones first, then alice's and a public one.
fn notes() -> Vec<Document> {
    let mut docs = Vec::new();
    for i in 0..6 {
        docs.push(doc! {"_id": i, "owner": "bob", "title": format!("b{i}"), "secret": i});
    }
    docs.push(doc! {"_id": 6, "owner": "alice", "title": "a6", "secret": 6});
    docs.push(doc! {"_id": 7, "owner": "bob", "title": "p7", "public": true, "secret": 7});
    docs.push(doc! {"_id": 8, "owner": "alice", "title": "a8", "secret": 8});
    docs.push(doc! {"_id": 9, "owner": "bob", "title": "b9", "secret": 9});
    docs
}

/// A store that counts reads and what each returned.
struct Counting {
    inner: MemoryStore,
    reads: Vec<(StoreRead, usize)>,
}

impl Store for Counting {
    fn find(&mut self, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
        let found = self.inner.find(read)?;
        self.reads.push((read.clone(), found.len()));
        Ok(found)
    }

    fn write(&mut self, writes: &WriteSet) -> Result<(), StoreError> {
        self.inner.write(writes)
    }
}

fn counting() -> Counting {
    let mut inner = MemoryStore::new();
    inner.insert_unchecked(&Namespace::new("app", "notes"), notes());
    Counting {
        inner,
        reads: Vec::new(),
    }
}

/// How the request reads.
#[derive(Clone, Copy)]
enum Mode {
    Pushdown,
    NoPushdown,
    AppServicesLimit,
}

fn run(rules: &Rules, user: &str, body: Document, mode: Mode, store: &mut Counting) -> Decided {
    let op = Operation::from_body(&body).unwrap();
    let coll = rules.operation_collection(&op).unwrap();
    let ctx = rules.context().user(doc! {"id": user}).build().unwrap();
    let prepared = coll.prepare(&ctx);
    let request = match mode {
        Mode::Pushdown => prepared,
        Mode::NoPushdown => prepared.with_pushdown(false),
        Mode::AppServicesLimit => prepared.with_window_before_rules(true),
    };
    execute(&request, &op, store, &mut OpEnv::new()).unwrap()
}

fn find(args: Document) -> Document {
    let mut a = doc! {"database": "app", "collection": "notes"};
    a.extend(args);
    doc! {"name": "find", "arguments": [a]}
}

fn ids(result: &Bson) -> Vec<i32> {
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_document().unwrap().get_i32("_id").unwrap())
        .collect()
}

#[test]
fn the_store_returns_only_what_some_role_could_show() {
    let rules = rules(owner_or_public());
    let mut pushed = counting();
    let on = run(&rules, "alice", find(doc! {}), Mode::Pushdown, &mut pushed);
    let mut plain = counting();
    let off = run(&rules, "alice", find(doc! {}), Mode::NoPushdown, &mut plain);
    assert_eq!(on.result, off.result);
    assert_eq!(ids(&on.result), [6, 7, 8]);
    assert_eq!(pushed.reads.len(), 1);
    assert_eq!(pushed.reads[0].1, 3, "{:?}", pushed.reads[0].0);
    assert_eq!(plain.reads[0].1, 10);
}

#[test]
fn limit_counts_visible_documents_unless_asked_for_app_services_order() {
    let rules = rules(owner_or_public());
    let body = find(doc! {"limit": 2});
    let mut store = counting();
    let visible = run(&rules, "alice", body.clone(), Mode::Pushdown, &mut store);
    assert_eq!(ids(&visible.result), [6, 7]);
    let mut store = counting();
    let unpushed = run(&rules, "alice", body.clone(), Mode::NoPushdown, &mut store);
    assert_eq!(unpushed.result, visible.result);
    // App Services: the first two documents are bob's private ones, withheld: an empty page.
    let mut store = counting();
    let before = run(&rules, "alice", body, Mode::AppServicesLimit, &mut store);
    assert_eq!(ids(&before.result), Vec::<i32>::new());
    assert_eq!(
        store.reads[0].1, 10,
        "App Services' order reads without pushdown"
    );
    let mut store = counting();
    let before = run(
        &rules,
        "alice",
        find(doc! {"limit": 8}),
        Mode::AppServicesLimit,
        &mut store,
    );
    assert_eq!(ids(&before.result), [6, 7]);
}

#[test]
fn nothing_visible_reads_nothing() {
    let rules = rules(json!([
        {"name": "admin", "apply_when": {"%%user.custom_data.admin": true}, "read": true}
    ]));
    let mut store = counting();
    let done = run(&rules, "alice", find(doc! {}), Mode::Pushdown, &mut store);
    assert_eq!(done.result, Bson::Array(vec![]));
    assert!(store.reads.is_empty(), "{:?}", store.reads);
    let count = doc! {"name": "count", "arguments": [{"database": "app", "collection": "notes"}]};
    let done = run(&rules, "alice", count, Mode::Pushdown, &mut store);
    assert_eq!(done.result, Bson::Int64(0));
    assert!(store.reads.is_empty());
}

#[test]
fn fields_no_role_can_read_are_not_fetched() {
    // Only title and owner are ever readable (owner is also read by apply_when).
    let rules = rules(json!([
        {"name": "reader", "apply_when": {}, "fields": {"title": {"read": true}, "owner": {"read": true}}}
    ]));
    let mut store = counting();
    let done = run(&rules, "alice", find(doc! {}), Mode::Pushdown, &mut store);
    let projection = store.reads[0].0.projection.clone().unwrap();
    assert!(!projection.contains_key("secret"), "{projection}");
    assert!(projection.contains_key("title"), "{projection}");
    assert_eq!(
        done.result.as_array().unwrap()[0],
        Bson::Document(doc! {"owner": "bob", "title": "b0"})
    );
    // Without pushdown everything is fetched (and the answer is the same).
    let mut plain = counting();
    let same = run(&rules, "alice", find(doc! {}), Mode::NoPushdown, &mut plain);
    assert_eq!(same.result, done.result);
    assert!(plain.reads[0].0.projection.is_none());
}
