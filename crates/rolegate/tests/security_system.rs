//! Finding 6 of the security review: the system user is whoever says so. A `%%user` document
//! with `"type": "system"` used to bypass every rule, filter and schema check; user documents
//! are often built from token claims or an identity provider. Now the bypass is an explicit API
//! ([`RequestContext::with_system`], [`RequestContext::system`], `ContextBuilder::system`) and
//! `%%user.type` is plain data: these tests check that no user document (`"type": "system"`,
//! its variants, nested claims, random documents) gets the bypass, in both engines, in reads,
//! raw reads, writes, schema validation and query plans, while the explicit API still does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use bson::{Bson, Document, RawDocumentBuf, doc};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rolegate::{EngineKind, LoadOptions, RequestContext, RuleSet, Rules, Scratch};
use serde_json::json;

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

/// `app.items`: owners read and write their own documents, a filter keeps others' documents
/// out of the query, and a schema makes `n` an int.
fn rules() -> Rules {
    let files: BTreeMap<String, serde_json::Value> = [
        (
            "data_sources/mongodb-atlas/config.json",
            json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}}),
        ),
        (
            "data_sources/mongodb-atlas/app/items/rules.json",
            json!({"database": "app", "collection": "items",
                "roles": [{"name": "owner", "apply_when": {"owner": "%%user.id"},
                    "read": true, "write": true, "insert": true, "delete": true}],
                "filters": [{"name": "own", "apply_when": {}, "query": {"owner": "%%user.id"}}]}),
        ),
        (
            "data_sources/mongodb-atlas/app/items/schema.json",
            json!({"bsonType": "object", "properties": {"n": {"bsonType": "int"}}}),
        ),
        (
            "data_sources/mongodb-atlas/app/items/relationships.json",
            json!({}),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Rules::new(
        RuleSet::from_files(&files, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}")),
    )
}

/// A document nobody in these tests owns.
fn stored() -> Document {
    doc! {"_id": 1, "owner": "somebody-else", "n": 1, "salary": 100_000}
}

/// What one request is granted: the observations the system bypass changes.
#[derive(Debug, PartialEq)]
struct Granted {
    read_visible: bool,
    raw_visible: bool,
    /// Insert of a document owned by the user that breaks the schema (`n` a string).
    insert_bad_schema: bool,
    /// Insert of someone else's document.
    insert_other: bool,
    update_other: bool,
    delete_other: bool,
    /// The filters the query plan applies (`None`: planning failed, the request fails).
    filters_applied: Option<Vec<String>>,
}

impl Granted {
    /// What the system user gets on these rules.
    fn bypass() -> Granted {
        Granted {
            read_visible: true,
            raw_visible: true,
            insert_bad_schema: true,
            insert_other: true,
            update_other: true,
            delete_other: true,
            filters_applied: Some(Vec::new()),
        }
    }

    /// True when any part of the bypass is granted on a document the user does not own or to a
    /// write the schema refuses, or when the filter is skipped.
    fn any_bypass(&self) -> bool {
        self.read_visible
            || self.raw_visible
            || self.insert_bad_schema
            || self.insert_other
            || self.update_other
            || self.delete_other
            || self.filters_applied.as_ref().is_some_and(Vec::is_empty)
    }
}

fn granted(rules: &Rules, ctx: &RequestContext, engine: EngineKind, user_id: &Bson) -> Granted {
    let coll = rules.collection("app.items").unwrap();
    let req = coll.prepare_with(ctx, engine);
    let other = stored();
    let raw = RawDocumentBuf::from_document(&other).unwrap();
    let mut changed = other.clone();
    changed.insert("salary", 1);
    let bad_schema = doc! {"_id": 2, "owner": user_id.clone(), "n": "not an int"};
    let plan = req.query_plan(Some(&doc! {}), None).ok();
    Granted {
        read_visible: req.read(&other).visible,
        raw_visible: req.read_raw(&raw, &mut Scratch::new()).visible,
        insert_bad_schema: req.insert(&bad_schema).allowed,
        insert_other: req.insert(&other).allowed,
        update_other: req.update(&other, &changed).allowed,
        delete_other: req.delete(&other).allowed,
        filters_applied: plan.map(|p| p.applied),
    }
}

/// The user documents of the issue and their variants.
fn claimed_system_users() -> Vec<Document> {
    vec![
        doc! {"id": "mallory", "type": "system"},
        doc! {"id": "mallory", "type": "System"},
        doc! {"id": "mallory", "type": "SYSTEM"},
        doc! {"id": "mallory", "type": " system"},
        doc! {"id": "mallory", "type": ["system"]},
        doc! {"id": "mallory", "type": {"$eq": "system"}},
        doc! {"id": "mallory", "type": "normal", "data": {"type": "system"}},
        doc! {"id": "mallory", "type": "normal", "custom_data": {"type": "system", "role": "system"}},
        doc! {"id": "mallory", "type": "server", "identities": [{"type": "system"}]},
        doc! {"type": "system"},
        doc! {"id": "somebody-else-not", "type": "system", "data": {}, "custom_data": {}},
    ]
}

#[test]
fn a_user_document_of_type_system_gets_no_bypass() {
    let rules = rules();
    for user in claimed_system_users() {
        let user_id = user.get("id").cloned().unwrap_or(Bson::Null);
        for engine in ENGINES {
            // Both ways a host builds a context from a user document.
            let built = rules.context().user(user.clone()).build().unwrap();
            let direct = RequestContext::for_user(user.clone());
            for ctx in [built, direct] {
                assert!(!ctx.is_system(), "{user} is not the system user");
                let g = granted(&rules, &ctx, engine, &user_id);
                assert!(
                    !g.any_bypass(),
                    "{user} ({engine:?}) got part of the system bypass: {g:?}"
                );
                // Applied, or the plan fails (a user without `id`): never skipped.
                assert!(
                    g.filters_applied
                        .as_ref()
                        .is_none_or(|f| f == &["own".to_string()]),
                    "{g:?}"
                );
            }
        }
    }
}

#[test]
fn the_explicit_system_api_bypasses_everything() {
    let rules = rules();
    let contexts = [
        RequestContext::system(),
        RequestContext::for_user(doc! {"id": "fn", "type": "normal"}).with_system(true),
        rules.context().system(true).build().unwrap(),
    ];
    for ctx in contexts {
        assert!(ctx.is_system());
        for engine in ENGINES {
            assert_eq!(
                granted(&rules, &ctx, engine, &Bson::from("fn")),
                Granted::bypass(),
                "{engine:?}"
            );
        }
    }
    // And it can be switched off again.
    let off = RequestContext::system().with_system(false);
    assert!(!off.is_system());
    assert!(!granted(&rules, &off, EngineKind::Compiled, &Bson::Null).any_bypass());
}

// ---------------------------------------------------------------------------------------------
// The class: random user documents.

/// A BSON value of a claim: strings around "system", numbers, nested documents and arrays.
fn claim() -> impl Strategy<Value = Bson> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "system", "System", "SYSTEM", "system ", "normal", "server", "admin", "root", ""
        ])
        .prop_map(Bson::from),
        "[a-zA-Z]{0,8}".prop_map(Bson::from),
        any::<i32>().prop_map(Bson::Int32),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["type", "role", "system", "id", "x"]),
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Bson::Document(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

/// A random user document: its `type` is `"system"` half of the time, and any claim may nest
/// more `type: system` pairs. Its `id` never owns the stored document.
fn user_document() -> impl Strategy<Value = Document> {
    (
        prop_oneof![Just(Bson::from("system")), claim()],
        prop::option::of(prop_oneof![Just(Bson::from("mallory")), claim()]),
        prop::option::of(claim()),
        prop::option::of(claim()),
        prop::collection::vec(
            (prop::sample::select(vec!["type", "provider_type"]), claim()),
            0..3,
        ),
    )
        .prop_map(|(kind, id, data, custom_data, identity)| {
            let mut user = Document::new();
            if let Some(id) = id {
                // Never the owner of the stored document.
                if id != Bson::from("somebody-else") {
                    user.insert("id", id);
                }
            }
            user.insert("type", kind);
            if let Some(d) = data {
                user.insert("data", d);
            }
            if let Some(c) = custom_data {
                user.insert("custom_data", c);
            }
            let identity: Document = identity
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            user.insert("identities", vec![Bson::Document(identity)]);
            user
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/security_system.txt"
        )))),
        ..ProptestConfig::default()
    })]

    /// No user document ever yields the bypass: the stored document (owned by somebody else)
    /// stays hidden, every write of it is refused, a write that breaks the schema is refused,
    /// and the query plan applies the filter, in both engines.
    #[test]
    fn no_user_document_yields_the_bypass(user in user_document()) {
        let rules = rules();
        let user_id = user.get("id").cloned().unwrap_or(Bson::Null);
        let ctx = rules.context().user(user.clone()).build().unwrap();
        prop_assert!(!ctx.is_system());
        for engine in ENGINES {
            let g = granted(&rules, &ctx, engine, &user_id);
            prop_assert!(!g.read_visible && !g.raw_visible, "{:?}: read {:?}", engine, g);
            prop_assert!(!g.insert_bad_schema, "{:?}: schema skipped {:?}", engine, g);
            prop_assert!(!g.insert_other && !g.update_other && !g.delete_other, "{:?}: {:?}", engine, g);
            prop_assert!(g.filters_applied.as_ref().is_none_or(|f| f == &["own".to_string()]), "{:?}: {:?}", engine, g);
        }
    }
}
