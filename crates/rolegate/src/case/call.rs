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

use bson::{Bson, DateTime, oid::ObjectId};

use super::compare::{Actual, StoreDocs};
use super::context::{InputError, to_document};
use super::model::Case;
use super::run::CaseError;
use crate::context::RequestContext;
use crate::engine::{EngineKind, Rules};
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
        out.insert(ns.clone(), decoded);
    }
    Ok(out)
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
