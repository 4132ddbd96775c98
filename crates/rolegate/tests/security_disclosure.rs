//! Finding 8 of the security review: reasons and explanations disclose data. A `%stringToOid`
//! failure quoted the hidden field's text, and explanations name every hidden field. Now every
//! decision has two views (see `rolegate::outcome`): the detailed one (`error`, `detail()`,
//! `explanation`, `Display` of plan and evaluation errors) for operators, and the client-safe
//! `client_error()` — a code and a fixed message, static text only. These tests check that the
//! client-safe view never carries a document value, a user value or rule text, in both engines,
//! for reads, writes, schema failures and query plans.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::{Bson, Document, doc};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rolegate::{ClientError, EngineKind, FunctionHost, LoadOptions, RuleSet, Rules};
use serde_json::json;

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

/// The rule text that must not reach a client: names of roles, filters, functions, fields, files.
const RULE_TEXT: [&str; 7] = [
    "roleQuartz",
    "filterOnyx",
    "hostCheck",
    "secretRef",
    "rules.json",
    "stringToOid",
    "apply_when",
];

/// `app.items` governed by one of a few rule shapes that fail with a detailed reason quoting a
/// document or user value: `%stringToOid` of a hidden field, a host function that quotes its
/// argument, a schema violation; plus a filter whose `apply_when` fails the same way.
fn rules(shape: usize) -> Rules {
    let role = match shape {
        0 => json!({"name": "roleQuartz",
            "apply_when": {"owner_id": {"%stringToOid": "%%root.secretRef"}},
            "fields": {"name": {"read": true, "write": true}}, "insert": true, "delete": true}),
        1 => json!({"name": "roleQuartz",
            "apply_when": {"%%true": {"%function": {"name": "hostCheck", "arguments": ["%%root.secretRef"]}}},
            "read": true, "write": true, "insert": true, "delete": true}),
        _ => json!({"name": "roleQuartz", "apply_when": {}, "read": true, "write": true,
            "insert": true, "delete": true}),
    };
    let files: BTreeMap<String, serde_json::Value> = [
        (
            "data_sources/mongodb-atlas/config.json",
            json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}}),
        ),
        (
            "data_sources/mongodb-atlas/app/items/rules.json",
            json!({"database": "app", "collection": "items", "roles": [role],
                "filters": [{"name": "filterOnyx",
                    "apply_when": {"%%true": {"%stringToOid": "%%user.custom_data.secretRef"}},
                    "query": {"name": {"$exists": true}}}]}),
        ),
        (
            "data_sources/mongodb-atlas/app/items/schema.json",
            json!({"bsonType": "object", "properties": {"secretRef": {"bsonType": "int"}}}),
        ),
        (
            "data_sources/mongodb-atlas/app/items/relationships.json",
            json!({}),
        ),
        (
            "functions/config.json",
            json!([{"name": "hostCheck", "private": true}]),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Rules::new(
        RuleSet::from_files(&files, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}")),
    )
}

/// A host whose error quotes its arguments (as real hosts' errors often do).
fn host() -> Arc<dyn FunctionHost> {
    Arc::new(|name: &str, args: &[Bson]| -> Result<Bson, String> {
        Err(format!("{name} refused {args:?}"))
    })
}

/// Every string inside `value` (keys included), with the text of numbers.
fn strings_of(value: &Bson, out: &mut Vec<String>) {
    match value {
        Bson::String(s) => out.push(s.clone()),
        Bson::Document(d) => {
            for (k, v) in d {
                out.push(k.clone());
                strings_of(v, out);
            }
        }
        Bson::Array(a) => a.iter().for_each(|v| strings_of(v, out)),
        Bson::Int32(i) => out.push(i.to_string()),
        Bson::Int64(i) => out.push(i.to_string()),
        other => out.push(other.to_string()),
    }
}

/// The first secret (a substring of length ≥ 4 of a value, or rule text) found in `text`.
fn leak(text: &str, secrets: &[String]) -> Option<String> {
    for s in secrets {
        let chars: Vec<char> = s.chars().collect();
        for window in chars.windows(4) {
            let w: String = window.iter().collect();
            if text.contains(&w) {
                return Some(w);
            }
        }
    }
    RULE_TEXT
        .iter()
        .find(|t| text.contains(*t))
        .map(|t| t.to_string())
}

/// The text a client would see of a client error (its `Display`, code and message).
fn shown(e: &ClientError) -> String {
    format!("{e} {} {}", e.code, e.message)
}

/// Every client-safe view of reads, writes and the query plan of `doc` for a user whose custom
/// data is `custom`, with and without explanations, in both engines; also returns the detailed
/// views so that tests can check they still say what happened.
fn views(rules: &Rules, doc: &Document, custom: &Bson) -> (Vec<ClientError>, Vec<String>) {
    let coll = rules.collection("app.items").unwrap();
    let ctx = rules
        .context()
        .user(doc! {"id": "u1", "type": "normal", "custom_data": custom.clone()})
        .functions(host())
        .build()
        .unwrap();
    let mut client = Vec::new();
    let mut detail = Vec::new();
    let mut changed = doc.clone();
    changed.insert("name", "changed");
    for engine in ENGINES {
        for explain in [false, true] {
            let req = coll.prepare_with(&ctx, engine).with_explain(explain);
            let read = req.read(doc);
            client.extend(read.client_error());
            detail.extend(read.detail().map(str::to_string));
            detail.push(read.explanation.to_string());
            for write in [req.insert(doc), req.update(doc, &changed), req.delete(doc)] {
                client.extend(write.client_error());
                detail.extend(write.detail().map(str::to_string));
                detail.push(write.explanation.to_string());
            }
            if let Err(e) = req.query_plan(Some(&doc! {}), None) {
                client.push(e.client_error());
                detail.push(e.to_string());
            }
        }
    }
    (client, detail)
}

#[test]
fn a_string_to_oid_failure_is_detailed_for_operators_and_generic_for_clients() {
    let secret = "TOP-SECRET-CODE-4242";
    let doc = doc! {"_id": 1, "name": "public", "secretRef": secret, "owner_id": 7};
    let custom = Bson::Document(doc! {"secretRef": "PIN-9876-ZZZZ"});
    let rules = rules(0);
    let (client, detail) = views(&rules, &doc, &custom);
    // The detailed view says what failed, with the value (for operators).
    assert!(
        detail.iter().any(|d| d.contains(secret)),
        "the detailed view should quote the failing value: {detail:?}"
    );
    assert!(
        detail.iter().any(|d| d.contains("PIN-9876-ZZZZ")),
        "{detail:?}"
    );
    // The client view is generic.
    assert!(!client.is_empty());
    for e in &client {
        assert_eq!(
            leak(&shown(e), &[secret.into(), "PIN-9876-ZZZZ".into()]),
            None,
            "{e}"
        );
        assert!(
            [
                ClientError::RULE_EVALUATION_FAILED,
                ClientError::INVALID_PROJECTION
            ]
            .contains(e)
                || e.code.ends_with("NotPermitted"),
            "{e}"
        );
    }
    assert!(client.contains(&ClientError::RULE_EVALUATION_FAILED));
}

#[test]
fn a_schema_violation_is_generic_for_clients() {
    let doc = doc! {"_id": 1, "name": "n", "secretRef": "SCHEMA-LEAK-777"};
    let rules = rules(2);
    let coll = rules.collection("app.items").unwrap();
    let ctx = rules.context().user(doc! {"id": "u1"}).build().unwrap();
    for engine in ENGINES {
        let out = coll.prepare_with(&ctx, engine).insert(&doc);
        assert!(!out.allowed);
        let client = out.client_error().unwrap();
        assert_eq!(client.code, "SchemaValidationFailedWrite");
        assert_eq!(leak(&shown(&client), &["SCHEMA-LEAK-777".into()]), None);
    }
}

// ---------------------------------------------------------------------------------------------
// The class: random documents with random hidden values (strings that fail `%stringToOid`,
// hex-like strings, numbers, nested values) and random user custom data.

/// Values that are not substrings of the fixed client messages by accident: upper-case
/// letters, digits and punctuation (the messages have no 4 such characters in a row).
fn secret_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z0-9#@!%-]{4,24}",
        // Almost ObjectIds: 24 characters, not all hex.
        "[0-9A-F]{20}[G-Z]{4}",
        // 12 characters: `%stringToOid` takes them as bytes.
        "[A-Z0-9]{12}",
    ]
}

fn secret_value() -> impl Strategy<Value = Bson> {
    let leaf = prop_oneof![
        4 => secret_string().prop_map(Bson::String),
        1 => (100_000i64..i64::MAX).prop_map(Bson::Int64),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(Bson::Array),
            ("[A-Z]{4,8}", inner).prop_map(|(k, v)| Bson::Document(doc! {k: v})),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/security_disclosure.txt"
        )))),
        ..ProptestConfig::default()
    })]

    /// The client-safe view of any decision never contains a substring (length ≥ 4) of a
    /// document value or user value, nor rule text.
    #[test]
    fn the_client_view_never_discloses(
        shape in 0..3usize,
        hidden in secret_value(),
        other in prop::option::of(("[A-Z]{4,8}", secret_value())),
        owner in prop_oneof![secret_value(), Just(Bson::Int32(7))],
        custom in secret_value(),
    ) {
        let mut doc = doc! {"_id": 1, "name": "n", "secretRef": hidden, "owner_id": owner};
        if let Some((k, v)) = other {
            doc.insert(k, v);
        }
        let custom = Bson::Document(doc! {"secretRef": custom});
        let mut secrets = Vec::new();
        for (k, v) in &doc {
            if k != "name" && k != "_id" {
                strings_of(v, &mut secrets);
            }
        }
        strings_of(&custom, &mut secrets);
        let rules = rules(shape);
        let (client, _) = views(&rules, &doc, &custom);
        for e in &client {
            let text = shown(e);
            prop_assert!(leak(&text, &secrets).is_none(), "{} leaks {:?}", text, leak(&text, &secrets));
        }
    }
}
