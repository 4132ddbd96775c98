//! The request context an operation needs, from the app: custom user data looked up in the
//! store as `auth/custom_user_data.json` says, and the app's environment from its root
//! configuration.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::fs;
use std::path::Path;

use bson::{doc, oid::ObjectId};
use rolegate::ops::{MemoryStore, Namespace, custom_user_data_read, load_custom_user_data};
use rolegate::{LoadOptions, RuleSet, Rules};

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn app(custom_user_data: &str) -> (tempfile::TempDir, RuleSet) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "realm_config.json",
        r#"{"app_id": "x", "environment": "staging"}"#,
    );
    write(
        d,
        "environments/staging.json",
        r#"{"values": {"level": 2}}"#,
    );
    write(
        d,
        "environments/production.json",
        r#"{"values": {"level": 3}}"#,
    );
    write(d, "auth/custom_user_data.json", custom_user_data);
    write(
        d,
        "data_sources/mongodb-atlas/app/items/rules.json",
        r#"{"database": "app", "collection": "items", "roles": [{"name": "r", "apply_when": {"%%environment.values.level": 2}, "read": true}]}"#,
    );
    let set = RuleSet::load(d, &LoadOptions::default()).unwrap();
    (dir, set)
}

const ENABLED: &str = r#"{"enabled": true, "mongo_service_name": "mongodb-atlas", "database_name": "app", "collection_name": "users", "user_id_field": "uid"}"#;

#[test]
fn custom_user_data_prefers_the_string_id_then_the_first_inserted() {
    let (_dir, set) = app(ENABLED);
    let oid = ObjectId::parse_str("5f0c4b9e8a1b2c3d4e5f6a7b").unwrap();
    let users = Namespace::new("app", "users");
    let mut store = MemoryStore::new();
    store.insert_unchecked(
        &users,
        [
            doc! {"_id": 1, "uid": oid, "team": "oid"},
            doc! {"_id": 2, "uid": "someone-else", "team": "x"},
            doc! {"_id": 3, "uid": "5f0c4b9e8a1b2c3d4e5f6a7b", "team": "string-first"},
            doc! {"_id": 4, "uid": "5f0c4b9e8a1b2c3d4e5f6a7b", "team": "string-second"},
        ],
    );
    let found = load_custom_user_data(&set, &mut store, "5f0c4b9e8a1b2c3d4e5f6a7b").unwrap();
    assert_eq!(found.unwrap().get_str("team").unwrap(), "string-first");
    // Without a string match, the ObjectId one.
    let mut store = MemoryStore::new();
    store.insert_unchecked(&users, [doc! {"_id": 1, "uid": oid, "team": "oid"}]);
    let found = load_custom_user_data(&set, &mut store, "5f0c4b9e8a1b2c3d4e5f6a7b").unwrap();
    assert_eq!(found.unwrap().get_str("team").unwrap(), "oid");
    // An id that is not an ObjectId is looked up as a string only, and a miss is None.
    let read = custom_user_data_read(&set, "alice").unwrap();
    assert_eq!(read.query, doc! {"uid": {"$eq": "alice"}});
    assert_eq!(
        load_custom_user_data(&set, &mut store, "alice").unwrap(),
        None
    );
}

#[test]
fn disabled_or_malformed_custom_user_data() {
    let (_dir, set) = app(r#"{"enabled": false}"#);
    assert!(set.custom_user_data.is_none());
    assert!(custom_user_data_read(&set, "alice").is_none());
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "realm_config.json", "{}");
    write(
        dir.path(),
        "auth/custom_user_data.json",
        r#"{"enabled": true, "database_name": 3, "collection_name": "u"}"#,
    );
    let e = RuleSet::load(dir.path(), &LoadOptions::default()).unwrap_err();
    // Every problem is reported.
    let places: Vec<String> = e.diagnostics.0.iter().map(|d| d.to_string()).collect();
    for key in ["mongo_service_name", "database_name", "user_id_field"] {
        assert!(places.iter().any(|p| p.contains(key)), "{key}: {places:?}");
    }
}

#[test]
fn the_app_environment_is_the_default_environment() {
    let (_dir, set) = app(ENABLED);
    assert_eq!(set.environment.as_deref(), Some("staging"));
    let rules = Rules::new(set);
    let coll = rules.collection("app.items").unwrap();
    let ctx = rules.context().user(doc! {"id": "u"}).build().unwrap();
    assert!(coll.prepare(&ctx).read(&doc! {"_id": 1}).visible);
    // A request may select another environment.
    let ctx = rules
        .context()
        .user(doc! {"id": "u"})
        .environment("production")
        .build()
        .unwrap();
    let out = coll.prepare(&ctx).read(&doc! {"_id": 1});
    assert!(!out.visible);
    assert_eq!(out.document, None::<bson::Document>);
}

/// A `%function` answered outside the decision (as an async host answers it): deciding with a
/// [`CallMemo`] until nothing is pending gives what a synchronous host gives, and nothing is
/// written while a call is pending.
#[test]
fn function_calls_answered_outside_the_decision() {
    use bson::{Bson, DateTime};
    use rolegate::ops::{CallMemo, Operation, execute};
    use std::sync::Arc;

    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/app/items/rules.json",
        &serde_json::json!({
            "database": "app", "collection": "items",
            "roles": [{
                "name": "member",
                "apply_when": {"%and": [
                    {"%%true": {"%function": {"name": "isMember", "arguments": ["%%user.id"]}}},
                    {"%%true": {"%function": {"name": "teamOpen", "arguments": ["%%root.team"]}}}
                ]},
                "read": true, "write": true
            }]
        }),
        &LoadOptions::default(),
    )
    .unwrap();
    let rules = Rules::new(set);
    let coll = rules.collection("app.items").unwrap();
    let answer = |name: &str, args: &[Bson]| -> Result<Bson, String> {
        match (name, args) {
            ("isMember", [Bson::String(u)]) => Ok(Bson::Boolean(u == "alice")),
            ("teamOpen", [Bson::String(t)]) => Ok(Bson::Boolean(t != "closed")),
            _ => Err(format!("unexpected call {name}")),
        }
    };
    let ns = Namespace::new("app", "items");
    let seed = [
        doc! {"_id": 1, "team": "red", "n": 0},
        doc! {"_id": 2, "team": "closed", "n": 0},
        doc! {"_id": 3, "team": "blue", "n": 0},
    ];
    let body = doc! {"name": "updateMany", "arguments": [{"database": "app", "collection": "items", "query": {"team": {"$ne": "closed"}}, "update": {"$inc": {"n": 1}}}]};
    let op = Operation::from_body(&body).unwrap();
    let user = doc! {"id": "alice"};

    // A synchronous host.
    let mut sync_store = MemoryStore::new();
    sync_store.insert_unchecked(&ns, seed.clone());
    let ctx = rules
        .context()
        .user(user.clone())
        .functions(Arc::new(answer))
        .build()
        .unwrap();
    let mut env = rolegate::ops::OpEnv::fixed(DateTime::from_millis(0), || Bson::Null);
    let sync_result = execute(&coll.prepare(&ctx), &op, &mut sync_store, &mut env)
        .unwrap()
        .result;

    // The memo: decide, answer what is pending, decide again.
    let mut store = MemoryStore::new();
    store.insert_unchecked(&ns, seed.clone());
    let memo = Arc::new(CallMemo::new());
    let mut rounds = 0;
    let result = loop {
        rounds += 1;
        assert!(rounds <= 4, "too many rounds");
        let ctx = rules
            .context()
            .user(user.clone())
            .functions(memo.clone())
            .build()
            .unwrap();
        let request = coll.prepare(&ctx);
        let plan = request.plan_operation(&op).unwrap();
        let stored = rolegate::ops::Store::find(&mut store, plan.read().unwrap()).unwrap();
        let decided = request.decide_operation(&op, &plan, stored, &mut env);
        let pending = memo.take_pending();
        if pending.is_empty() {
            let decided = decided.unwrap();
            if let Some(w) = &decided.writes {
                rolegate::ops::Store::write(&mut store, w).unwrap();
            }
            break decided.result;
        }
        // Nothing was written while calls were pending.
        assert_eq!(store.documents(&ns), seed.as_slice());
        for (name, args) in pending {
            memo.answer(&name, &args, answer(&name, &args));
        }
    };
    assert_eq!(result, sync_result);
    assert_eq!(
        result,
        Bson::Document(doc! {"matchedCount": 2, "modifiedCount": 2})
    );
    assert_eq!(store.documents(&ns), sync_store.documents(&ns));
    assert!(rounds >= 2, "{rounds}");
}

/// `%%request` built with `RequestInfo`: IP gating and a header, as the App Services docs show.
#[test]
fn request_info_builds_what_rules_read() {
    use rolegate::RequestInfo;
    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/app/items/rules.json",
        &serde_json::json!({
            "database": "app", "collection": "items",
            "roles": [{"name": "office", "apply_when": {
                "%%request.remoteIPAddress": {"$in": ["203.0.113.10"]},
                "%%request.requestHeaders.X-Api-Version": "2",
                "%%request.action": "find"
            }, "read": true}]
        }),
        &LoadOptions::default(),
    )
    .unwrap();
    let rules = Rules::new(set);
    let coll = rules.collection("app.items").unwrap();
    let info = |ip: &str| {
        RequestInfo::new()
            .http_method("POST")
            .remote_ip_address(ip)
            .header("x-api-version", "1")
            .header("x-api-version", "2")
            .action("find")
            .into_document()
    };
    assert_eq!(
        info("203.0.113.10").get_document("requestHeaders").unwrap(),
        &doc! {"x-api-version": ["1", "2"]}
    );
    for (ip, visible) in [("203.0.113.10", true), ("198.51.100.1", false)] {
        let ctx = rules
            .context()
            .user(doc! {"id": "u"})
            .request(info(ip))
            .build()
            .unwrap();
        assert_eq!(
            coll.prepare(&ctx).read(&doc! {"_id": 1}).visible,
            visible,
            "{ip}"
        );
    }
}
