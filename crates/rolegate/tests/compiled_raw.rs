//! Raw-BSON evaluation against the reference: every operator over values of every BSON type
//! (numbers across int32/int64/double/decimal, NaN, -0, strings and symbols, null, undefined,
//! documents in and out of key order, arrays, regexes, binaries, ...), as literal and as request
//! operands, on `%%root` paths (top level, dotted, through arrays) and on `%%this` in field rules;
//! and `redact_raw`'s bytes against the reference's redacted document serialized by `bson`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

#[path = "compiled_support/mod.rs"]
mod support;

use bson::{Document, doc};
use serde_json::{Value, json};
use support::{ctx, rules, same_read, user, val};

fn values() -> Vec<Value> {
    vec![
        json!(1),
        json!({"$numberDouble": "1.0"}),
        json!({"$numberLong": "1"}),
        json!({"$numberDecimal": "1.0"}),
        json!({"$numberDecimal": "0.1"}),
        json!(0.1),
        json!(2.5),
        json!({"$numberDouble": "NaN"}),
        json!({"$numberDecimal": "NaN"}),
        json!({"$numberDouble": "-0.0"}),
        json!({"$numberDouble": "-Infinity"}),
        json!({"$numberLong": "9007199254740993"}),
        json!({"$numberDouble": "9007199254740992.0"}),
        json!("a"),
        json!("b"),
        json!(""),
        json!({"$symbol": "a"}),
        json!(null),
        json!(true),
        json!(false),
        json!({"$oid": "65a000000000000000000001"}),
        json!({"$date": {"$numberLong": "5"}}),
        json!({"$timestamp": {"t": 1, "i": 2}}),
        json!({"$regularExpression": {"pattern": "^a", "options": "i"}}),
        json!({"$binary": {"base64": "AQI=", "subType": "00"}}),
        json!({"a": 1}),
        json!({"a": 1, "b": "x"}),
        json!({"b": "x", "a": 1}),
        json!([1, 2]),
        json!(["a", "b"]),
        json!([[1], "a"]),
        json!([]),
        json!([{"a": 1}, {"a": "a"}, 3]),
        json!([null]),
        json!({"$minKey": 1}),
        json!({"$maxKey": 1}),
    ]
}

/// The documents each rule set is checked on: `v` holding each value, nested, and missing.
fn documents() -> Vec<Document> {
    let mut docs: Vec<Document> = values()
        .into_iter()
        .map(|v| support::doc(json!({"_id": 1, "v": v.clone(), "w": {"a": v.clone()}, "arr": [{"a": v}, {"b": 1}, 5]})))
        .collect();
    docs.push(doc! {"_id": 2});
    docs.push(doc! {"_id": 3, "v": {"a": [1, "a"]}, "w": [{"a": [2]}, {"a": null}]});
    docs
}

/// Operators and operand builders: `(operator, operand)` → predicate JSON.
fn predicates(operand: &Value) -> Vec<Value> {
    let mut out = vec![operand.clone()];
    for op in ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"] {
        out.push(json!({op: operand}));
    }
    out
}

fn list_predicates(operand: &Value) -> Vec<Value> {
    vec![
        json!({"$in": [operand, "zz"]}),
        json!({"$nin": [operand]}),
        json!({"$all": [operand]}),
        json!({"$elemMatch": {"$eq": operand}}),
        json!({"$not": {"$in": [operand]}}),
    ]
}

/// Checks one subject/predicate in `apply_when`, in a field rule on `%%this`, and with the
/// operand coming from the request (`%%user.custom_data.x`).
fn check(subject: &str, predicate: Value, operand: Option<&Value>, docs: &[Document]) -> usize {
    let roles = json!([
        {"name": "test", "apply_when": {subject: predicate.clone()}, "read": true},
        {"name": "field", "apply_when": {},
         "fields": {"v": {"read": {"%%this": predicate.clone()}}, "_id": {"read": true},
                    "w": {"fields": {"a": {"read": {"%%this": predicate}}}}}}
    ]);
    let loaded = std::panic::catch_unwind(|| rules(roles));
    let Ok(r) = loaded else { return 0 };
    let custom = match operand {
        Some(v) => doc! {"x": val(v.clone())},
        None => doc! {},
    };
    let c = ctx(user("u", custom));
    for d in docs {
        same_read(&r, &c, d);
    }
    1
}

#[test]
fn comparisons_on_raw_values_match_the_reference() {
    let docs = documents();
    let mut checked = 0;
    let mut tried = 0;
    for operand in values() {
        for p in predicates(&operand)
            .into_iter()
            .chain(list_predicates(&operand))
        {
            for subject in ["v", "w.a", "arr.a", "v.0", "%%root.v"] {
                tried += 1;
                checked += check(subject, p.clone(), None, &docs);
            }
        }
        // The operand from the request.
        for p in predicates(&json!("%%user.custom_data.x")) {
            tried += 1;
            checked += check("v", p, Some(&operand), &docs);
        }
        for p in [
            json!({"$in": "%%user.custom_data.x"}),
            json!({"$nin": "%%user.custom_data.x"}),
            json!({"$all": "%%user.custom_data.x"}),
            json!({"$exists": "%%user.custom_data.x"}),
            json!({"$size": "%%user.custom_data.x"}),
        ] {
            tried += 1;
            checked += check("v", p, Some(&operand), &docs);
        }
    }
    assert!(
        checked * 10 > tried * 8,
        "only {checked} of {tried} rule sets loaded"
    );
}

#[test]
fn other_operators_on_raw_values_match_the_reference() {
    let docs = documents();
    let preds = [
        json!({"$exists": true}),
        json!({"$exists": false}),
        json!({"$type": "string"}),
        json!({"$type": ["number", "object"]}),
        json!({"$type": "array"}),
        json!({"$size": 2}),
        json!({"$size": 0}),
        json!({"$mod": [2, 1]}),
        json!({"$regex": "^a", "$options": "i"}),
        json!({"$elemMatch": {"$gt": 1}}),
        json!({"$elemMatch": {"a": 1}}),
        json!({"$not": {"$gt": 1}}),
        json!({"%or": [{"$lt": 1}, {"$gt": 2}]}),
        json!({"$gte": null}),
        json!({"$lte": null}),
        json!({"$in": [null, {"$regularExpression": {"pattern": "b", "options": ""}}]}),
    ];
    for p in preds {
        for subject in ["v", "w.a", "arr.a", "arr.1.b", "%%root"] {
            check(subject, p.clone(), None, &docs);
        }
    }
    // Operands read from the document.
    for p in [
        json!("%%root.w.a"),
        json!({"$in": "%%root.v"}),
        json!({"$gt": "%%root.arr.a"}),
    ] {
        check("v", p, None, &docs);
    }
    // The request as the subject, the document as the operand.
    for p in [
        json!("%%root.v"),
        json!({"$in": "%%root.v"}),
        json!({"$in": ["%%root.v", 1]}),
    ] {
        for x in values() {
            check("%%user.custom_data.x", p.clone(), Some(&x), &docs);
        }
    }
}

#[test]
fn redaction_writes_the_reference_bytes() {
    let r = rules(json!([
        {"name": "nested", "apply_when": {"kind": "nested"},
         "fields": {"_id": {"read": true}, "kind": {"read": true},
                    "a": {"fields": {"x": {"read": true}, "y": {"read": {"%%this": {"$gt": 1}}}},
                          "additional_fields": {"read": false}},
                    "b": {"read": false, "fields": {"x": {"read": true}}},
                    "c": {"write": true},
                    "list": {"fields": {"x": {"read": true}}}},
         "additional_fields": {"read": {"%%this": {"$type": "string"}}}},
        {"name": "gated", "apply_when": {"kind": "gated"}, "document_filters": {"read": {"ok": true}, "write": {"w": true}},
         "read": true},
        {"name": "writer", "apply_when": {"kind": "writer"}, "write": {"owner": "%%user.id"},
         "fields": {"kind": {"read": true}}}
    ]));
    let c = ctx(user("u", doc! {}));
    let docs = [
        doc! {"_id": 1, "kind": "nested", "a": {"x": 1, "y": 2, "z": 3}, "b": {"x": 1}, "c": 5, "s": "str", "n": 1,
        "list": [{"x": 1, "y": 2}, {"y": 3}, 7, [1], {"x": [1, {"x": 2}]}]},
        doc! {"_id": 2, "kind": "nested", "a": {"y": 0}, "list": [{"y": 1}], "s": 5},
        doc! {"_id": 3, "kind": "nested", "a": [{"x": 1}, {"z": 1}, "x"], "list": {"x": 1, "q": 2}},
        doc! {"_id": 4, "kind": "nested", "a": 5, "list": []},
        doc! {"kind": "nested"},
        doc! {"_id": 5, "kind": "gated", "ok": true},
        doc! {"_id": 6, "kind": "gated", "ok": false, "w": true},
        doc! {"_id": 7, "kind": "gated", "ok": false},
        doc! {"_id": 8, "kind": "writer", "owner": "u", "x": 1},
        doc! {"_id": 9, "kind": "writer", "owner": "v", "x": 1},
        doc! {"_id": 10, "kind": "other"},
    ];
    for d in &docs {
        same_read(&r, &c, d);
    }
    // Atlas Search and the system user.
    let mut search = ctx(user("u", doc! {}));
    search.search = true;
    let system = ctx(doc! {"id": "s", "type": "system", "data": {}}).with_system(true);
    for d in &docs {
        same_read(&r, &search, d);
        same_read(&r, &system, d);
    }
}
