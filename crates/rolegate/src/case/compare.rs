//! Stage: judging. Input: a case's [`Expected`] answer and the engine's [`Actual`] answer. Output:
//! one [`Mismatch`] per expected key that the actual answer does not meet (empty: the case
//! passes).
//!
//! Only the keys that `expected` gives are compared (`case-format.md`):
//!
//! * booleans (`result`, `visible`, `allowed`, `valid`, `readable`, `writable`,
//!   `client_reset_on_next_session`, `read`, `write`) and `role` exactly;
//! * `fields` as sets of dotted paths;
//! * `error` and `reason` by kind, not by words: the actual answer must report an error (for
//!   `reason`: the configuration must be invalid);
//! * `error_code` exactly;
//! * `applied` exactly, in order;
//! * `query` exactly: same BSON types, same key order, same array order;
//! * `projection` ignoring key order, values compared as MongoDB values (`1` equals `1.0`);
//! * `results` in order, each document ignoring key order (BSON types exact);
//! * `result` of a `call` and `after` exactly: the same keys in the same order, the same BSON
//!   types and values (their canonical Extended JSON is equal); a namespace `after` leaves out
//!   must hold what the case's `documents` gave it, and so must every namespace of a call
//!   expected to fail (`error` or `error_code`) whose case gives no `after`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bson::{Bson, Document};
use serde_json::{Map, Value, json};

use super::model::Expected;
use crate::value::compare::MAX_DEPTH;
use crate::value::ejson::{bson_from_json, document_from_json, document_to_json};

/// The documents of an in-memory store: `"db.coll"` → documents in natural order.
pub type StoreDocs = BTreeMap<String, Vec<Document>>;

/// The engine's answer to a case, with every key the action produces (a superset of what
/// `expected` gives).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Actual {
    pub result: Option<bool>,
    /// The result of a `call` (rendered as `result`).
    pub output: Option<Bson>,
    /// The store after a `call`.
    pub after: Option<StoreDocs>,
    /// The store before a `call` (never rendered: what `after` is checked against where a case
    /// leaves a namespace out).
    pub before: Option<StoreDocs>,
    /// `Some(None)`: no role applies.
    pub role: Option<Option<String>>,
    pub visible: Option<bool>,
    pub fields: Option<Vec<String>>,
    /// The redacted document of a read (output only, never compared).
    pub document: Option<Document>,
    pub allowed: Option<bool>,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub applied: Option<Vec<String>>,
    pub query: Option<Document>,
    pub projection: Option<Document>,
    pub results: Option<Vec<Document>>,
    pub valid: Option<bool>,
    pub reason: Option<String>,
    pub readable: Option<bool>,
    pub writable: Option<bool>,
    pub client_reset_on_next_session: Option<bool>,
    pub read: Option<bool>,
    pub write: Option<bool>,
    /// Why the session's role is not Sync-compatible (output only).
    pub incompatible: Option<String>,
}

impl Actual {
    /// The answer as JSON (relaxed Extended JSON for BSON values), keys in the order of
    /// [`Expected`], absent ones left out.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put(
            "result",
            match &self.output {
                Some(out) => Some(case_json(out)),
                None => self.result.map(Value::Bool),
            },
        );
        put(
            "role",
            self.role
                .clone()
                .map(|r| r.map_or(Value::Null, Value::String)),
        );
        put("visible", self.visible.map(Value::Bool));
        put("fields", self.fields.as_ref().map(|f| json!(f)));
        put("document", self.document.as_ref().map(document_to_json));
        put("allowed", self.allowed.map(Value::Bool));
        put("error", self.error.clone().map(Value::String));
        put("error_code", self.error_code.clone().map(Value::String));
        put("applied", self.applied.as_ref().map(|a| json!(a)));
        put("query", self.query.as_ref().map(document_to_json));
        put("projection", self.projection.as_ref().map(document_to_json));
        put(
            "results",
            self.results
                .as_ref()
                .map(|r| Value::Array(r.iter().map(document_to_json).collect())),
        );
        put("valid", self.valid.map(Value::Bool));
        put("reason", self.reason.clone().map(Value::String));
        put("readable", self.readable.map(Value::Bool));
        put("writable", self.writable.map(Value::Bool));
        put(
            "client_reset_on_next_session",
            self.client_reset_on_next_session.map(Value::Bool),
        );
        put("read", self.read.map(Value::Bool));
        put("write", self.write.map(Value::Bool));
        put("incompatible", self.incompatible.clone().map(Value::String));
        put("after", self.after.as_ref().map(store_json));
        Value::Object(m)
    }
}

/// One expected key that the actual answer does not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The key of the case's `expected` object that differs (`role`, `visible`, `allowed`, ...).
    pub key: &'static str,
    /// The expected value (JSON text).
    pub expected: String,
    /// The actual value (JSON text), or `not reported`.
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: expected {}, got {}",
            self.key, self.expected, self.actual
        )
    }
}

/// Every expected key that `actual` does not meet.
pub fn compare(expected: &Expected, actual: &Actual) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut check = |key: &'static str, ok: bool, exp: Value, act: Option<Value>| {
        if !ok {
            out.push(Mismatch {
                key,
                expected: exp.to_string(),
                actual: act.map_or_else(|| "not reported".to_string(), |v| v.to_string()),
            });
        }
    };
    if let Some(exp) = &expected.result {
        let (ok, act) = match (&actual.output, exp) {
            (Some(got), _) => (
                bson_from_json(exp).is_ok_and(|want| same_value(&want, got)),
                Some(case_json(got)),
            ),
            (None, Value::Bool(b)) => (actual.result == Some(*b), actual.result.map(Value::Bool)),
            (None, _) => (false, actual.result.map(Value::Bool)),
        };
        check("result", ok, exp.clone(), act);
    }
    let bools = [
        ("visible", expected.visible, actual.visible),
        ("allowed", expected.allowed, actual.allowed),
        ("valid", expected.valid, actual.valid),
        ("readable", expected.readable, actual.readable),
        ("writable", expected.writable, actual.writable),
        (
            "client_reset_on_next_session",
            expected.client_reset_on_next_session,
            actual.client_reset_on_next_session,
        ),
        ("read", expected.read, actual.read),
        ("write", expected.write, actual.write),
    ];
    for (key, exp, act) in bools {
        if let Some(exp) = exp {
            check(
                key,
                act == Some(exp),
                Value::Bool(exp),
                act.map(Value::Bool),
            );
        }
    }
    if let Some(exp) = &expected.role {
        let to_json = |r: &Option<String>| r.clone().map_or(Value::Null, Value::String);
        check(
            "role",
            actual.role.as_ref() == Some(exp),
            to_json(exp),
            actual.role.as_ref().map(to_json),
        );
    }
    if let Some(exp) = &expected.fields {
        let want: BTreeSet<&str> = exp.iter().map(String::as_str).collect();
        let got: Option<BTreeSet<&str>> = actual
            .fields
            .as_ref()
            .map(|f| f.iter().map(String::as_str).collect());
        check(
            "fields",
            got.as_ref() == Some(&want),
            json!(exp),
            actual.fields.as_ref().map(|f| json!(f)),
        );
    }
    if let Some(exp) = &expected.error {
        let act = actual.error.clone().or_else(|| actual.error_code.clone());
        check(
            "error",
            act.is_some(),
            Value::String(format!("an error about: {exp}")),
            act.map(Value::String),
        );
    }
    if let Some(exp) = &expected.error_code {
        check(
            "error_code",
            actual.error_code.as_ref() == Some(exp),
            json!(exp),
            actual.error_code.clone().map(Value::String),
        );
    }
    if let Some(exp) = &expected.reason {
        let invalid = actual.valid == Some(false) && actual.reason.is_some();
        let act = actual
            .reason
            .clone()
            .map(Value::String)
            .or_else(|| actual.valid.map(|v| json!({ "valid": v })));
        check(
            "reason",
            invalid,
            Value::String(format!("invalid configuration, about: {exp}")),
            act,
        );
    }
    if let Some(exp) = &expected.applied {
        check(
            "applied",
            actual.applied.as_ref() == Some(exp),
            json!(exp),
            actual.applied.as_ref().map(|a| json!(a)),
        );
    }
    if let Some(exp) = &expected.query {
        let ok = match (document_from_json(exp), &actual.query) {
            (Ok(want), Some(got)) => identical_doc(&want, got),
            _ => false,
        };
        check(
            "query",
            ok,
            exp.clone(),
            actual.query.as_ref().map(document_to_json),
        );
    }
    if let Some(exp) = &expected.projection {
        let ok = match (document_from_json(exp), &actual.projection) {
            (Ok(want), Some(got)) => same_projection(&want, got),
            _ => false,
        };
        check(
            "projection",
            ok,
            exp.clone(),
            actual.projection.as_ref().map(document_to_json),
        );
    }
    if let Some(exp) = &expected.results {
        let want: Result<Vec<Document>, String> = exp.iter().map(document_from_json).collect();
        let ok = match (want, &actual.results) {
            (Ok(want), Some(got)) => want == *got,
            _ => false,
        };
        let act = actual
            .results
            .as_ref()
            .map(|r| Value::Array(r.iter().map(document_to_json).collect()));
        check("results", ok, Value::Array(exp.clone()), act);
    }
    if let (Some(after), Some(before)) = (&actual.after, &actual.before) {
        match &expected.after {
            Some(exp) => {
                let ok = exp.iter().all(|(ns, docs)| {
                    let want: Result<Vec<Bson>, String> = docs
                        .iter()
                        .map(|d| document_from_json(d).map(Bson::Document))
                        .collect();
                    want.is_ok_and(|want| same_docs(&want, after.get(ns)))
                }) && after.iter().all(|(ns, docs)| {
                    exp.contains_key(ns) || same_stored(before.get(ns), Some(docs))
                });
                let mut shown: Map<String, Value> = exp
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::Array(v.clone())))
                    .collect();
                shown.insert("(every other namespace)".to_string(), json!("unchanged"));
                check("after", ok, Value::Object(shown), Some(store_json(after)));
            }
            None if expected.error.is_some() || expected.error_code.is_some() => {
                let ok = after
                    .iter()
                    .all(|(ns, docs)| same_stored(before.get(ns), Some(docs)))
                    && before
                        .iter()
                        .all(|(ns, docs)| same_stored(Some(docs), after.get(ns)));
                check(
                    "after",
                    ok,
                    json!("the store unchanged (a failed call writes nothing)"),
                    Some(store_json(after)),
                );
            }
            None => {}
        }
    } else if let Some(exp) = &expected.after {
        check("after", false, json!(exp), None);
    }
    out
}

/// A BSON value as a case file writes it: relaxed Extended JSON, except that an int64 keeps its
/// type (`{"$numberLong": "2"}`; relaxed JSON would print `2`, which a case reads as an int32),
/// so what is shown can be pasted into `expected`.
pub fn case_json(value: &Bson) -> Value {
    if crate::limits::value_too_deep(value, MAX_DEPTH).is_some() {
        return Value::String(format!("(a value nested deeper than {MAX_DEPTH} levels)"));
    }
    typed_json(value)
}

fn typed_json(value: &Bson) -> Value {
    match value {
        Bson::Int64(n) => json!({"$numberLong": n.to_string()}),
        Bson::Array(items) => Value::Array(items.iter().map(typed_json).collect()),
        Bson::Document(d) => {
            Value::Object(d.iter().map(|(k, v)| (k.clone(), typed_json(v))).collect())
        }
        other => other.clone().into_relaxed_extjson(),
    }
}

/// The store as a case file writes it (`"db.coll"` → documents).
fn store_json(store: &StoreDocs) -> Value {
    Value::Object(
        store
            .iter()
            .map(|(ns, docs)| {
                let docs = docs
                    .iter()
                    .map(|d| case_json(&Bson::Document(d.clone())))
                    .collect();
                (ns.clone(), Value::Array(docs))
            })
            .collect(),
    )
}

/// Type-exact equality: equal canonical Extended JSON (same keys in the same order, same BSON
/// types, `NaN` equal to itself, `-0.0` different from `0.0`).
/// (The JSON text is compared, not the JSON values: `serde_json` maps compare ignoring key
/// order.)
pub fn same_value(a: &Bson, b: &Bson) -> bool {
    canonical_text(a) == canonical_text(b)
}

fn canonical_text(value: &Bson) -> String {
    value.clone().into_canonical_extjson().to_string()
}

/// [`same_value`] over a namespace's documents (a missing namespace holds none).
fn same_docs(want: &[Bson], got: Option<&Vec<Document>>) -> bool {
    let got = got.map_or(&[][..], Vec::as_slice);
    want.len() == got.len()
        && want
            .iter()
            .zip(got)
            .all(|(w, g)| same_value(w, &Bson::Document(g.clone())))
}

/// Two states of one namespace hold the same documents (a missing namespace holds none).
fn same_stored(a: Option<&Vec<Document>>, b: Option<&Vec<Document>>) -> bool {
    let a: Vec<Bson> = a
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .cloned()
        .map(Bson::Document)
        .collect();
    same_docs(&a, b)
}

/// Exact equality: same keys in the same order, same BSON types and values, at every level.
pub fn identical(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => identical_doc(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| identical(p, q))
        }
        _ => a == b,
    }
}

/// [`identical`] for documents.
pub fn identical_doc(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && identical(va, vb))
}

/// Same projection: the same keys in any order, each with the same MongoDB value.
fn same_projection(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k)
                .is_some_and(|w| crate::value::bson_equal(v, w) || v == w)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn expected(v: Value) -> Expected {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fields_compare_as_sets() {
        let e = expected(json!({"visible": true, "fields": ["b", "a"]}));
        let a = Actual {
            visible: Some(true),
            fields: Some(vec!["a".into(), "b".into()]),
            ..Default::default()
        };
        assert!(compare(&e, &a).is_empty());
        let a = Actual {
            visible: Some(true),
            fields: Some(vec!["a".into()]),
            ..Default::default()
        };
        assert_eq!(compare(&e, &a).len(), 1);
    }

    #[test]
    fn errors_compare_by_kind_and_codes_exactly() {
        let e = expected(
            json!({"allowed": false, "error": "insert not permitted", "error_code": "InsertNotPermitted"}),
        );
        let a = Actual {
            allowed: Some(false),
            error: Some("something else entirely".into()),
            error_code: Some("InsertNotPermitted".into()),
            ..Default::default()
        };
        assert!(compare(&e, &a).is_empty());
        let a = Actual {
            allowed: Some(false),
            error_code: Some("UpdateNotPermitted".into()),
            ..Default::default()
        };
        let m = compare(&e, &a);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].key, "error_code");
        let a = Actual {
            allowed: Some(false),
            ..Default::default()
        };
        assert_eq!(compare(&e, &a).len(), 2);
    }

    #[test]
    fn reason_needs_an_invalid_config() {
        let e = expected(json!({"valid": false, "reason": "whatever"}));
        let a = Actual {
            valid: Some(false),
            reason: Some("other words".into()),
            ..Default::default()
        };
        assert!(compare(&e, &a).is_empty());
        let a = Actual {
            valid: Some(true),
            ..Default::default()
        };
        assert_eq!(compare(&e, &a).len(), 2);
    }

    #[test]
    fn role_null_is_compared() {
        let e = expected(json!({"role": null}));
        assert!(
            compare(
                &e,
                &Actual {
                    role: Some(None),
                    ..Default::default()
                }
            )
            .is_empty()
        );
        assert_eq!(
            compare(
                &e,
                &Actual {
                    role: Some(Some("r".into())),
                    ..Default::default()
                }
            )
            .len(),
            1
        );
        assert_eq!(compare(&e, &Actual::default()).len(), 1);
    }

    #[test]
    fn query_is_exact_projection_ignores_order() {
        let e = expected(json!({"query": {"a": 1, "b": 2}, "projection": {"_id": 0, "x": 1}}));
        let a = Actual {
            query: Some(doc! {"a": 1, "b": 2}),
            projection: Some(doc! {"x": 1, "_id": 0}),
            ..Default::default()
        };
        assert!(compare(&e, &a).is_empty());
        let a = Actual {
            query: Some(doc! {"b": 2, "a": 1}),
            projection: Some(doc! {"x": 1, "_id": 0}),
            ..Default::default()
        };
        assert_eq!(compare(&e, &a)[0].key, "query");
        let a = Actual {
            query: Some(doc! {"a": 1_i64, "b": 2}),
            projection: Some(doc! {"x": 1}),
            ..Default::default()
        };
        assert_eq!(compare(&e, &a).len(), 2);
    }

    #[test]
    fn results_keep_order() {
        let e = expected(json!({"results": [{"a": 1}, {"a": 2}]}));
        let a = Actual {
            results: Some(vec![doc! {"a": 1}, doc! {"a": 2}]),
            ..Default::default()
        };
        assert!(compare(&e, &a).is_empty());
        let a = Actual {
            results: Some(vec![doc! {"a": 2}, doc! {"a": 1}]),
            ..Default::default()
        };
        assert_eq!(compare(&e, &a).len(), 1);
    }

    #[test]
    fn actual_renders_as_json() {
        let a = Actual {
            role: Some(None),
            visible: Some(false),
            query: Some(doc! {"n": 1_i64}),
            ..Default::default()
        };
        assert_eq!(
            a.to_json(),
            json!({"role": null, "visible": false, "query": {"n": 1}})
        );
    }
}
