//! Stage: `call` cases. Input: a case's `documents` (the store before the call), its `call` (an
//! operation body, as an App Services client sends it), the case's rule set and request context,
//! and the engine. Output: the [`Actual`] answer: the operation's `result`, or its `error` (the
//! detailed message) and `error_code`, and the store `after` the call (with the store before,
//! which `expected.after` is judged against).
//!
//! The operation runs as a host runs it: [`Operation::from_body`],
//! [`Rules::operation_collection`], a request prepared for the engine under test,
//! [`execute`](crate::ops::execute) on a [`MemoryStore`] that holds `documents`, in an
//! [`OpEnv::fixed`] environment: the time is 0 (1970-01-01T00:00:00Z; the case format has no
//! time of its own) and new `_id`s are the ObjectIds `000000000000000000000001`,
//! `000000000000000000000002`, ..., drawn in the order the operation asks for them (each inserted
//! document without `_id`, each upsert).

use std::collections::BTreeMap;

use bson::{Bson, DateTime, Document, oid::ObjectId};

use super::compare::{Actual, StoreDocs};
use super::context::{InputError, to_document};
use super::model::Case;
use super::run::CaseError;
use crate::context::RequestContext;
use crate::engine::{EngineKind, Rules};
use crate::mql::{bson_equal, sort_value_cmp};
use crate::ops::{MemoryStore, Namespace, OpEnv, OpError, Operation, execute};
use crate::rules::RuleSet;

/// The time of every call (milliseconds since the epoch).
pub const CALL_TIME_MILLIS: i64 = 0;

/// Answers a `call` case.
pub fn run(
    case: &Case,
    set: RuleSet,
    ctx: &RequestContext,
    engine: EngineKind,
) -> Result<Actual, CaseError> {
    let before = documents(case)?;
    let body = case.call.as_ref().ok_or_else(|| {
        CaseError::Missing("a `call` case needs `call` (the operation body)".into())
    })?;
    let body = to_document(body, "call")?;
    let mut store = MemoryStore::new();
    for (ns, docs) in &before {
        store.insert_unchecked(&namespace(ns, "documents")?, docs.iter().cloned());
    }
    let op = match Operation::from_body(&body) {
        Ok(op) => op,
        Err(e) => return Ok(failed(&e, &store, before, None)),
    };
    let rules = Rules::new(set);
    let result = rules.operation_collection(&op).and_then(|collection| {
        let request = collection.prepare_with(ctx, engine);
        execute(&request, &op, &mut store, &mut fixed_env())
    });
    Ok(match result {
        Ok(decided) => Actual {
            output: Some(decided.result),
            after: Some(store_docs(&store, &before, Some(op.namespace()))),
            before: Some(before),
            ..Default::default()
        },
        Err(e) => failed(&e, &store, before, Some(op.namespace())),
    })
}

/// The answer of a `call` case whose request context cannot be built (a secret-backed value the
/// rules read is missing): refused with the reason, nothing written.
pub fn denied(case: &Case, reason: String) -> Result<Actual, CaseError> {
    let before = documents(case)?;
    Ok(Actual {
        error: Some(reason),
        after: Some(before.clone()),
        before: Some(before),
        ..Default::default()
    })
}

/// Checks the namespaces of `expected.after` (`database.collection`).
pub fn check_after(case: &Case) -> Result<(), CaseError> {
    for ns in case.expected.after.iter().flat_map(BTreeMap::keys) {
        namespace(ns, "expected.after")?;
    }
    Ok(())
}

fn failed(
    error: &OpError,
    store: &MemoryStore,
    before: StoreDocs,
    ns: Option<&Namespace>,
) -> Actual {
    Actual {
        error: Some(error.detail().to_string()),
        error_code: Some(error.code().to_string()),
        after: Some(store_docs(store, &before, ns)),
        before: Some(before),
        ..Default::default()
    }
}

/// The documents of the store: every namespace of `before`, and the operation's when it holds
/// documents.
fn store_docs(store: &MemoryStore, before: &StoreDocs, op: Option<&Namespace>) -> StoreDocs {
    let mut out = StoreDocs::new();
    for ns in before.keys() {
        if let Ok(n) = namespace(ns, "documents") {
            out.insert(ns.clone(), store.documents(&n).to_vec());
        }
    }
    if let Some(n) = op {
        let docs = store.documents(n);
        if !docs.is_empty() {
            out.insert(n.to_string(), docs.to_vec());
        }
    }
    out
}

/// The case's `documents`, decoded.
fn documents(case: &Case) -> Result<StoreDocs, CaseError> {
    let mut out = StoreDocs::new();
    for (ns, docs) in case.documents.iter().flatten() {
        namespace(ns, "documents")?;
        let decoded = docs
            .iter()
            .enumerate()
            .map(|(i, d)| to_document(d, &format!("documents.{ns}[{i}]")))
            .collect::<Result<Vec<_>, InputError>>()?;
        check_ids(ns, &decoded)?;
        out.insert(ns.clone(), decoded);
    }
    Ok(out)
}

/// Every stored document has an `_id`, unique in its collection (MongoDB equality: `1` and
/// `1.0` are one `_id`), as MongoDB's unique `_id` index guarantees: a store that breaks it is
/// not a store MongoDB could hold. Sorted first, so a large store is checked in `n log n`.
fn check_ids(ns: &str, docs: &[Document]) -> Result<(), CaseError> {
    let mut ids = Vec::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        match d.get("_id") {
            Some(id) => ids.push(id),
            None => {
                return Err(CaseError::Input(InputError::new(
                    format!("documents.{ns}[{i}]"),
                    "a stored document has an `_id`",
                )));
            }
        }
    }
    ids.sort_by(|a, b| sort_value_cmp(a, b));
    for pair in ids.windows(2) {
        if let [a, b] = pair
            && bson_equal(a, b)
        {
            return Err(CaseError::Input(InputError::new(
                format!("documents.{ns}"),
                format!(
                    "two documents have the `_id` {a} (MongoDB's unique `_id` index forbids it)"
                ),
            )));
        }
    }
    Ok(())
}

/// `database.collection` (the database name has no `.`; neither name is empty).
fn namespace(key: &str, at: &str) -> Result<Namespace, CaseError> {
    match key.split_once('.') {
        Some((db, coll)) if !db.is_empty() && !coll.is_empty() => Ok(Namespace::new(db, coll)),
        _ => Err(CaseError::Input(InputError::new(
            format!("{at}.{key}"),
            "a namespace is written `database.collection`",
        ))),
    }
}

/// Time 0 and ObjectIds 1, 2, 3, ...
fn fixed_env() -> OpEnv {
    let mut n: u64 = 0;
    OpEnv::fixed(DateTime::from_millis(CALL_TIME_MILLIS), move || {
        n += 1;
        Bson::ObjectId(generated_id(n))
    })
}

/// The `n`-th generated `_id`: `n` in the ObjectId's last eight bytes.
pub fn generated_id(n: u64) -> ObjectId {
    let mut bytes = [0u8; 12];
    for (slot, b) in bytes.iter_mut().skip(4).zip(n.to_be_bytes()) {
        *slot = b;
    }
    ObjectId::from_bytes(bytes)
}

/// The case keys only a `call` case reads, given to another action; and the keys a `call` case
/// does not read. Either is an error: no key of a case is silently ignored.
pub fn misplaced_keys(case: &Case) -> Option<String> {
    let call = case.action == super::model::Action::Call;
    let call_only = [
        ("call", case.call.is_some()),
        ("documents", case.documents.is_some()),
        ("expected.after", case.expected.after.is_some()),
    ];
    let request = case.request.as_ref();
    let not_for_call = [
        (
            "document",
            case.document.as_ref().is_some_and(|v| !v.is_null()),
        ),
        (
            "prevDocument",
            case.prev_document.as_ref().is_some_and(|v| !v.is_null()),
        ),
        (
            "request.operation",
            request.is_some_and(|r| r.operation.is_some()),
        ),
        (
            "request.client_projection",
            request.is_some_and(|r| r.client_projection.is_some()),
        ),
        (
            "request.collection_documents",
            request.is_some_and(|r| r.collection_documents.is_some()),
        ),
    ];
    if call {
        not_for_call.iter().find(|(_, given)| *given).map(|(key, _)| {
            format!("a `call` case does not read `{key}` (the operation is `call`, the store `documents`)")
        })
    } else {
        call_only.iter().find(|(_, given)| *given).map(|(key, _)| {
            format!(
                "`{key}` is read only by `call` cases, not by a `{}` case",
                case.action
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::compare::compare;
    use crate::case::{EngineChoice, run_case};
    use serde_json::{Value, json};

    fn case(call: Value, expected: Value) -> Value {
        json!({
            "name": "t", "source": "unit test", "notes": "[decision] unit test",
            "rules": {"mode": "mongodb", "collection_rules": {"database": "app", "collection": "items",
                      "roles": [{"name": "rw", "apply_when": {}, "read": true, "write": true}]}},
            "user": {"id": "u1"},
            "documents": {"app.items": [{"_id": 1, "a": 1}, {"_id": 2, "a": 2}]},
            "call": call,
            "action": "call",
            "expected": expected
        })
    }

    fn run(v: Value) -> crate::case::CaseResult {
        let case: Case = serde_json::from_value(v).unwrap();
        run_case(&case, EngineChoice::Reference)
    }

    fn find(query: Value) -> Value {
        json!({"name": "count", "arguments": [{"database": "app", "collection": "items", "query": query}]})
    }

    #[test]
    fn generated_ids_count_from_one() {
        assert_eq!(generated_id(1).to_hex(), "000000000000000000000001");
        assert_eq!(generated_id(258).to_hex(), "000000000000000000000102");
    }

    #[test]
    fn results_compare_type_exactly() {
        let r = run(case(
            find(json!({})),
            json!({"result": {"$numberLong": "2"}}),
        ));
        assert!(r.passed, "{}", r.message);
        let r = run(case(find(json!({})), json!({"result": 2})));
        assert!(!r.passed);
        assert!(r.message.starts_with("`result`"), "{}", r.message);
        assert_eq!(r.actual["result"], json!({"$numberLong": "2"}));
    }

    #[test]
    fn a_failed_call_must_leave_the_store_unchanged() {
        let v = case(
            json!({"name": "deleteMany", "arguments": [{"database": "app", "collection": "items", "query": {}}]}),
            json!({"error_code": "InvalidParameter"}),
        );
        // The call succeeds (deletes both): the code and the untouched store are both wrong.
        let r = run(v);
        assert!(!r.passed);
        assert!(r.message.contains("`error_code`"), "{}", r.message);
        assert!(r.message.contains("`after`"), "{}", r.message);
        // A namespace `after` leaves out must keep its documents.
        let mut actual = Actual {
            output: Some(Bson::Null),
            before: Some(StoreDocs::from([(
                "app.items".to_string(),
                vec![bson::doc! {"_id": 1}],
            )])),
            after: Some(StoreDocs::from([
                ("app.items".to_string(), vec![]),
                ("app.other".to_string(), vec![bson::doc! {"_id": 1}]),
            ])),
            ..Default::default()
        };
        let expected: crate::case::Expected =
            serde_json::from_value(json!({"after": {"app.other": [{"_id": 1}]}})).unwrap();
        assert_eq!(compare(&expected, &actual).len(), 1);
        actual.after = Some(StoreDocs::from([
            ("app.items".to_string(), vec![bson::doc! {"_id": 1}]),
            ("app.other".to_string(), vec![bson::doc! {"_id": 1}]),
        ]));
        assert!(compare(&expected, &actual).is_empty());
    }

    #[test]
    fn error_details_carry_hints() {
        let r = run(case(
            json!({"name": "fnd", "arguments": [{"database": "app", "collection": "items"}]}),
            json!({"error_code": "InvalidParameter"}),
        ));
        assert!(r.passed, "{}", r.message);
        let error = r.actual["error"].as_str().unwrap();
        assert!(error.contains("did you mean `find`?"), "{error}");
    }

    #[test]
    fn stores_hold_unique_ids() {
        let mut v = case(find(json!({})), json!({"result": {"$numberLong": "2"}}));
        v["documents"]["app.items"] = json!([{"_id": 1}, {"_id": 1.0}]);
        let r = run(v.clone());
        assert!(r.message.starts_with("cannot run:"), "{}", r.message);
        assert!(
            r.message.contains("two documents have the `_id`"),
            "{}",
            r.message
        );
        v["documents"]["app.items"] = json!([{"_id": 1}, {"a": 1}]);
        let r = run(v.clone());
        assert!(r.message.contains("has an `_id`"), "{}", r.message);
        v["documents"] = json!({"items": []});
        let r = run(v);
        assert!(r.message.contains("database.collection"), "{}", r.message);
    }

    #[test]
    fn a_missing_secret_refuses_the_call_and_writes_nothing() {
        let mut v = case(
            json!({"name": "deleteMany", "arguments": [{"database": "app", "collection": "items", "query": {}}]}),
            json!({"error": "the secret is missing"}),
        );
        v["rules"] = json!({"mode": "mongodb", "files": {
            "data_sources/mongodb-atlas/config.json": {"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}},
            "data_sources/mongodb-atlas/app/items/rules.json": {"database": "app", "collection": "items",
                "roles": [{"name": "key", "apply_when": {"%%values.key": "k"}, "read": true, "write": true}]},
            "values/key.json": {"name": "key", "from_secret": true, "value": "keySecret"}
        }});
        let r = run(v);
        assert!(r.passed, "{} {}", r.message, r.actual);
        assert_eq!(r.actual["after"]["app.items"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn keys_are_read_by_their_action_only() {
        let mut v = case(find(json!({})), json!({}));
        v["document"] = json!({"_id": 1});
        let r = run(v);
        assert!(
            r.message.contains("does not read `document`"),
            "{}",
            r.message
        );
        let mut v = case(find(json!({})), json!({}));
        v["action"] = json!("read");
        v["document"] = json!({"_id": 1});
        let r = run(v);
        assert!(
            r.message.contains("`call` is read only by `call` cases"),
            "{}",
            r.message
        );
    }
}
