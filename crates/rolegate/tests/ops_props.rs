//! Properties of whole operations (`rolegate::ops`) on random rule sets, users, documents and
//! client queries (the generators of `tests/differential/arb.rs`), run on the in-memory store:
//!
//! * **find is the per-document read**: `find` returns exactly the documents that
//!   [`PreparedRequest::read_for`](rolegate::PreparedRequest::read_for) with the same plan makes
//!   visible, redacted alike, in the store's order (and `limit` keeps the first visible ones),
//!   deciding on the documents the store returns for the plan's read and on the whole stored
//!   documents alike (unless a depth limit is set: the guard measures the document it decides
//!   on, and the store's projection may drop the deep part);
//! * **refused many-document writes write nothing**: an `updateMany`, `deleteMany` or
//!   `insertMany` that fails leaves the store byte for byte as it was (and one that succeeds
//!   reports counts that agree with the store and with `find`);
//! * **hidden values do not matter**: changing the value of a field the user cannot see (hidden
//!   by the document's role, projected away by a filter, or in a withheld document), or removing
//!   it (unless the update names it), changes nothing in what `find` (with a sort and a limit),
//!   `count` and an `updateMany` answer — as long as the rules themselves decide the same on the
//!   changed document (they read stored values). The update is random over the vocabulary's
//!   fields, so it often names the hidden field: `$set` to the stored value, `$unset`, `$inc` or
//!   `$push` on a value of the wrong type, `$rename` (decision O17).
//!
//! Plus one example: a store that keeps reporting conflicts makes `execute` give up with
//! `WriteConflict` after `MAX_ATTEMPTS` reads, having written nothing.
//!
//! Failing seeds go to `proptest-regressions/ops_props.txt`; `PROPTEST_CASES=n` sets the case
//! count of each property.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "differential/arb.rs"]
mod arb;
mod ops_support;
use ops_support::{body, env, load, ns, store_of, stored};

use bson::{Bson, DateTime, Document, doc};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use rolegate::ops::{
    MAX_ATTEMPTS, MemoryStore, Operation, Store, StoreError, StoreRead, WriteSet, execute,
};
use rolegate::{PreparedRequest, RequestContext, Rules};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/ops_props.txt"
);

/// Cases per property: `default`, or `PROPTEST_CASES` when set.
fn config(default: u32) -> ProptestConfig {
    ops_support::config(default, REGRESSIONS)
}

fn context(rules: &Rules, request: &arb::ReqG, system: bool) -> RequestContext {
    request.context(rules, false).with_system(system)
}

/// Runs `body` on `store`: the result, or the error code.
fn call(
    request: &PreparedRequest<'_, '_>,
    store: &mut MemoryStore,
    body: &Document,
) -> Result<Bson, String> {
    let op = Operation::from_body(body).map_err(|e| format!("parse: {}", e.detail()))?;
    execute(request, &op, store, &mut env())
        .map(|d| d.result)
        .map_err(|e| e.code().to_string())
}

/// A store the in-memory evaluator cannot query (a filter's query it cannot run) is not this
/// file's concern.
fn reject_store_failures(result: &Result<Bson, String>) -> Result<(), TestCaseError> {
    match result {
        Err(code) if code == "InternalServerError" => Err(TestCaseError::reject(
            "the in-memory store cannot run the query",
        )),
        Err(code) if code.starts_with("parse:") => Err(TestCaseError::fail(code.clone())),
        _ => Ok(()),
    }
}

fn bytes_of(docs: &[Document]) -> Vec<Vec<u8>> {
    docs.iter().map(arb::bytes).collect()
}

fn show(result: &Result<Bson, String>) -> String {
    match result {
        Ok(b) => b.clone().into_relaxed_extjson().to_string(),
        Err(e) => format!("error {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// find is the per-document read

fn find_matches_read_for(case: &arb::Case, limit: i64, system: bool) -> Result<(), TestCaseError> {
    let rules = load(&case.rules)?;
    let ctx = context(&rules, &case.request, system);
    let coll = rules.collection(arb::NAMESPACE).unwrap();
    let request = coll.prepare(&ctx);
    let docs = stored(&case.docs);
    let query = case.client_query_bson();
    let projection = case.client_projection_bson();
    let mut args = doc! {"query": query.clone().unwrap_or_default()};
    if let Some(p) = &projection {
        args.insert("project", p.clone());
    }
    if limit != 0 {
        args.insert("limit", limit);
    }
    let actual = call(&request, &mut store_of(&docs), &body("find", args));
    reject_store_failures(&actual)?;
    let n = usize::try_from(limit.unsigned_abs()).unwrap();
    let visible = |reads: Vec<rolegate::PlannedRead>| {
        let docs = reads
            .into_iter()
            .filter(|r| r.selected && r.outcome.visible)
            .filter_map(|r| r.outcome.document);
        if n == 0 {
            docs.collect::<Vec<_>>()
        } else {
            docs.take(n).collect()
        }
    };
    let plan = request.query_plan(query.as_ref(), projection.as_ref());
    // read_for on each document the store returns for the plan's read (its query and
    // projection: `PreparedRequest::find`) ...
    let returned = match &plan {
        Err(e) => Err(e.to_string()),
        Ok(plan) => match request.find(plan, &docs) {
            Ok(reads) => Ok(visible(reads)),
            Err(_) => {
                return Err(TestCaseError::reject(
                    "the in-memory store cannot run the query",
                ));
            }
        },
    };
    // ... and on each whole stored document: the same, except where a depth limit is set (the
    // guard measures the document it decides on, and a store projection may drop the deep part).
    let whole = match &plan {
        Err(e) => Err(e.to_string()),
        Ok(plan) => Ok(visible(
            docs.iter().map(|d| request.read_for(plan, d)).collect(),
        )),
    };
    let agree = |expected: &Result<Vec<Document>, String>| match (&actual, expected) {
        (Ok(Bson::Array(got)), Ok(want)) => {
            let got: Vec<Document> = got
                .iter()
                .map(|b| b.as_document().cloned().unwrap())
                .collect();
            bytes_of(&got) == bytes_of(want)
        }
        (Err(_), Err(_)) => true,
        _ => false,
    };
    let report = |what: &str, expected: &Result<Vec<Document>, String>| {
        format!(
            "find disagrees with read_for on {what}\nrules: {}\n{}\ndocuments: {:?}\nquery: {:?} projection: {:?} limit {limit} system {system}\nfind: {}\nread_for: {:?}",
            case.rules.rules_report(),
            case.request.report(),
            docs,
            query,
            projection,
            show(&actual),
            expected
        )
    };
    prop_assert!(
        agree(&returned),
        "{}",
        report("the returned documents", &returned)
    );
    if case.rules.max_document_depth.is_none() {
        prop_assert!(agree(&whole), "{}", report("the stored documents", &whole));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn find_returns_what_read_for_makes_visible(
        case in arb::case(),
        limit in prop_oneof![4 => Just(0i64), 1 => -2i64..3],
        system in proptest::bool::weighted(0.1),
    ) {
        find_matches_read_for(&case, limit, system)?;
    }

    #[test]
    fn find_returns_what_read_for_makes_visible_under_field_rules(
        case in arb::field_case(),
        limit in prop_oneof![4 => Just(0i64), 1 => 1i64..3],
    ) {
        find_matches_read_for(&case, limit, false)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Refused many-document writes write nothing

/// Updates over the vocabulary's fields (some change nothing, some fail on some types).
fn update_doc() -> impl Strategy<Value = Document> {
    prop_oneof![
        arb::scalar().prop_map(|v| doc! {"$set": {"a": v.bson()}}),
        Just(doc! {"$inc": {"b": 1}}),
        Just(doc! {"$unset": {"c": ""}}),
        (0..arb::TEAMS).prop_map(|t| doc! {"$set": {"team": arb::team_const(t).bson()}}),
        Just(doc! {"$push": {"tags": "x"}}),
        arb::scalar().prop_map(|v| doc! {"$set": {"zz": v.bson()}}),
        Just(doc! {"$set": {"owner_id": "u1"}, "$unset": {"sub": ""}}),
    ]
}

#[derive(Clone, Debug)]
enum ManyWrite {
    Update(Option<arb::QueryG>, Document),
    Delete(Option<arb::QueryG>),
    Insert(Vec<(bool, arb::Doc)>),
}

fn many_write() -> impl Strategy<Value = ManyWrite> {
    let query = || option::weighted(0.6, arb::client_query());
    prop_oneof![
        3 => (query(), update_doc()).prop_map(|(q, u)| ManyWrite::Update(q, u)),
        2 => query().prop_map(ManyWrite::Delete),
        2 => vec((any::<bool>(), arb::document()), 1..4).prop_map(ManyWrite::Insert),
    ]
}

fn many_write_body(write: &ManyWrite) -> Document {
    let query = |q: &Option<arb::QueryG>| {
        q.as_ref()
            .map(|q| arb::literal_query(&q.json()))
            .unwrap_or_default()
    };
    match write {
        ManyWrite::Update(q, u) => {
            body("updateMany", doc! {"query": query(q), "update": u.clone()})
        }
        ManyWrite::Delete(q) => body("deleteMany", doc! {"query": query(q)}),
        ManyWrite::Insert(docs) => {
            let docs: Vec<Bson> = docs
                .iter()
                .enumerate()
                .map(|(i, (with_id, d))| {
                    let mut out = Document::new();
                    if *with_id {
                        out.insert("_id", 100 + i32::try_from(i).unwrap());
                    }
                    for (k, v) in d.bson() {
                        if k != "_id" {
                            out.insert(k, v);
                        }
                    }
                    Bson::Document(out)
                })
                .collect();
            body("insertMany", doc! {"documents": docs})
        }
    }
}

fn int(result: &Bson, key: &str) -> i64 {
    match result.as_document().and_then(|d| d.get(key)) {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        other => panic!("`{key}` is {other:?} in {result}"),
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn a_refused_many_document_write_changes_nothing(
        rules in arb::rule_set(),
        request in arb::request(),
        docs in vec(arb::document(), 1..=4),
        write in many_write(),
    ) {
        let rules_g = rules;
        let rules = load(&rules_g)?;
        let ctx = context(&rules, &request, false);
        let coll = rules.collection(arb::NAMESPACE).unwrap();
        let prepared = coll.prepare(&ctx);
        let before = stored(&docs);
        let mut store = store_of(&before);
        let body = many_write_body(&write);
        let result = call(&prepared, &mut store, &body);
        reject_store_failures(&result)?;
        let after = store.documents(&ns()).to_vec();
        let report = || format!(
            "rules: {}\n{}\nbefore: {before:?}\nbody: {body}\nresult: {}\nafter: {after:?}",
            rules_g.rules_report(), request.report(), show(&result)
        );
        match &result {
            Err(_) => prop_assert_eq!(bytes_of(&after), bytes_of(&before), "{}", report()),
            Ok(r) => match &write {
                ManyWrite::Update(..) => {
                    let matched = int(r, "matchedCount");
                    let modified = int(r, "modifiedCount");
                    prop_assert!(modified <= matched, "{}", report());
                    let changed = before.iter().zip(&after).filter(|(b, a)| arb::bytes(b) != arb::bytes(a)).count();
                    prop_assert_eq!(i64::try_from(changed).unwrap(), modified, "{}", report());
                    // matchedCount is what `count` (and `find`) select with the same query.
                    let query = body.get_array("arguments").unwrap()[0].as_document().unwrap().get_document("query").unwrap().clone();
                    let counted = call(&prepared, &mut store_of(&before), &self::body("count", doc! {"query": query}));
                    prop_assert_eq!(counted, Ok(Bson::Int64(matched)), "{}", report());
                }
                ManyWrite::Delete(_) => {
                    let deleted = int(r, "deletedCount");
                    prop_assert_eq!(i64::try_from(before.len() - after.len()).unwrap(), deleted, "{}", report());
                }
                ManyWrite::Insert(docs) => {
                    let ids = r.as_document().unwrap().get_array("insertedIds").unwrap();
                    prop_assert_eq!(ids.len(), docs.len(), "{}", report());
                    prop_assert_eq!(after.len(), before.len() + docs.len(), "{}", report());
                    prop_assert_eq!(bytes_of(&after[..before.len()]), bytes_of(&before), "{}", report());
                }
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hidden values do not matter

/// The fields of `stored` the user cannot see through `plan`: every field of a withheld
/// document, else the top-level fields the redacted, filter-projected view lacks.
fn hidden_fields(
    request: &PreparedRequest<'_, '_>,
    plan: &rolegate::QueryPlan,
    stored: &Document,
) -> Vec<String> {
    let read = request.read_for(plan, stored);
    let view = read
        .outcome
        .document
        .filter(|_| read.selected && read.outcome.visible);
    stored
        .keys()
        .filter(|k| *k != "_id")
        .filter(|k| view.as_ref().is_none_or(|v| !v.contains_key(k.as_str())))
        .cloned()
        .collect()
}

/// What the rules decide on `stored`: the read (selected, visible, role, the view's bytes) and,
/// unless `update` names a field in `hidden` (which O17 refuses whatever is stored), its write
/// decision (allowed, code). A changed document is kept only when they agree.
fn decisions(
    request: &PreparedRequest<'_, '_>,
    plan: &rolegate::QueryPlan,
    stored: &Document,
    update: &rolegate::mql::Update,
    hidden: &[String],
) -> String {
    let read = request.read_for(plan, stored);
    let names_hidden = hidden.iter().any(|field| names(update, field));
    let ctx = rolegate::mql::UpdateContext::new(DateTime::from_millis(0), Bson::Null);
    let write = match update.apply(stored, &ctx) {
        // O17: refused whatever is stored, except that whether a named hidden field exists,
        // and whether a path goes on through it (a document or an array, not another value),
        // can show.
        _ if names_hidden => {
            let shapes: Vec<&str> = hidden
                .iter()
                .filter(|field| names(update, field))
                .map(|field| match stored.get(field) {
                    None => "absent",
                    Some(Bson::Document(_)) => "document",
                    Some(Bson::Array(_)) => "array",
                    Some(_) => "value",
                })
                .collect();
            format!("names a hidden field {shapes:?}")
        }
        Ok(u) => {
            let w = request.update(stored, &u.document);
            format!("{} {:?}", w.allowed, w.error.map(|e| e.code))
        }
        Err(e) => format!("update error {}", e.code_name()),
    };
    format!(
        "{} {} {:?} {:?} {write}",
        read.selected,
        read.outcome.visible,
        read.outcome.role,
        read.outcome.document.as_ref().map(arb::bytes)
    )
}

/// Whether one of `update`'s paths starts at the top-level `field`.
fn names(update: &rolegate::mql::Update, field: &str) -> bool {
    update
        .targets()
        .iter()
        .any(|path| matches!(path.first(), Some(rolegate::mql::TargetPart::Name(n)) if n == field))
}

/// An update over the vocabulary's fields: it may name a hidden field, with a value that may be
/// the stored one, or an operator that fails on the stored type.
fn naming_update() -> impl Strategy<Value = Document> {
    let field = || select(&arb::FIELDS[..]);
    prop_oneof![
        (field(), arb::scalar()).prop_map(|(f, v)| doc! {"$set": {f: v.bson()}}),
        field().prop_map(|f| doc! {"$unset": {f: ""}}),
        field().prop_map(|f| doc! {"$inc": {f: 1}}),
        field().prop_map(|f| doc! {"$push": {f: "x"}}),
        (field(), field())
            .prop_filter("distinct", |(a, b)| a != b)
            .prop_map(|(a, b)| doc! {"$rename": {a: b}}),
        arb::scalar().prop_map(|v| doc! {"$set": {"sub.x": v.bson()}}),
        arb::scalar().prop_map(|v| doc! {"$set": {"arr.$[].k": v.bson()}}),
        Just(doc! {"$set": {"zz": 1}}),
    ]
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn results_do_not_depend_on_hidden_values(
        case in prop_oneof![arb::case(), arb::field_case()],
        sort_field in prop_oneof![
            // `None`: sort on the first field whose hidden value changed.
            2 => Just(None),
            1 => select(&["a", "b", "c", "owner_id", "team", "tags", "sub", "arr", "sub.x"][..]).prop_map(Some),
        ],
        descending in any::<bool>(),
        limit in prop_oneof![2 => Just(0i64), 1 => 1i64..3],
        which in vec(any::<prop::sample::Index>(), 4),
        values in vec(option::weighted(0.8, arb::scalar()), 4),
        update_doc in naming_update(),
    ) {
        let rules = load(&case.rules)?;
        let ctx = context(&rules, &case.request, false);
        let coll = rules.collection(arb::NAMESPACE).unwrap();
        let request = coll.prepare(&ctx);
        let Ok(plan) = request.query_plan(None, None) else {
            return Err(TestCaseError::reject("the plan fails"));
        };
        let update = rolegate::mql::Update::parse(&update_doc, &[]).unwrap();
        let before = stored(&case.docs);
        let mut after = before.clone();
        let mut changed = Vec::new();
        for (i, doc) in after.iter_mut().enumerate() {
            let hidden = hidden_fields(&request, &plan, doc);
            if hidden.is_empty() {
                continue;
            }
            let field = which[i].get(&hidden).clone();
            let mut candidate = doc.clone();
            match &values[i] {
                Some(value) => candidate.insert(field.clone(), value.bson()),
                // Whether a hidden field exists may show in a write that names it (O17: a
                // write that would remove or overwrite what the user cannot write is refused).
                None if names(&update, &field) => continue,
                None => candidate.remove(&field),
            };
            if arb::bytes(&candidate) != arb::bytes(doc)
                && decisions(&request, &plan, doc, &update, &hidden)
                    == decisions(&request, &plan, &candidate, &update, &hidden)
            {
                *doc = candidate;
                changed.push(field);
            }
        }
        prop_assume!(!changed.is_empty(), "no hidden value could change");
        let sort_field = sort_field.map_or_else(|| changed[0].clone(), str::to_string);
        let query = case.client_query_bson().unwrap_or_default();
        let bodies = [
            body("find", doc! {"query": query.clone(), "sort": {sort_field: if descending { -1 } else { 1 }}, "limit": limit}),
            body("count", doc! {"query": query.clone()}),
            body("updateMany", doc! {"query": query.clone(), "update": update_doc.clone()}),
        ];
        for b in &bodies {
            let one = call(&request, &mut store_of(&before), b);
            let two = call(&request, &mut store_of(&after), b);
            reject_store_failures(&one)?;
            reject_store_failures(&two)?;
            prop_assert_eq!(
                show(&one),
                show(&two),
                "a hidden value changed the answer\nrules: {}\n{}\nbefore: {:?}\nafter: {:?}\nbody: {}",
                case.rules.rules_report(),
                case.request.report(),
                before,
                after,
                b
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conflicts

/// A store whose documents always change between the read and the write.
struct Restless {
    inner: MemoryStore,
    reads: usize,
}

impl Store for Restless {
    fn find(&mut self, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
        self.reads += 1;
        self.inner.find(read)
    }

    fn write(&mut self, writes: &WriteSet) -> Result<(), StoreError> {
        Err(StoreError::Conflict {
            id: writes
                .changes
                .first()
                .map_or(Bson::Null, |c| c.id().clone()),
        })
    }
}

#[test]
fn a_store_that_keeps_conflicting_gives_write_conflict() {
    let set = rolegate::RuleSet::from_json(
        "data_sources/mongodb-atlas/app/items/rules.json",
        &serde_json::json!({"database": "app", "collection": "items",
            "roles": [{"name": "all", "apply_when": {}, "read": true, "write": true}]}),
        &rolegate::LoadOptions::default(),
    )
    .unwrap();
    let rules = Rules::new(set);
    let ctx = rules.context().user(doc! {"id": "u1"}).build().unwrap();
    let coll = rules.collection(arb::NAMESPACE).unwrap();
    let request = coll.prepare(&ctx);
    let docs = vec![doc! {"_id": 1, "n": 1}, doc! {"_id": 2, "n": 2}];
    let mut store = Restless {
        inner: store_of(&docs),
        reads: 0,
    };
    let op = Operation::from_body(&body(
        "updateMany",
        doc! {"query": {}, "update": {"$inc": {"n": 1}}},
    ))
    .unwrap();
    let err = execute(&request, &op, &mut store, &mut env()).unwrap_err();
    assert_eq!(err.code(), "WriteConflict");
    assert_eq!(store.reads, MAX_ATTEMPTS);
    assert_eq!(store.inner.documents(&ns()), docs.as_slice());
}
