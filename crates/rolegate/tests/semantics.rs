//! Decisions of `docs/semantics.md` that no conformance case isolates, through both engines:
//! U5 (an update's role is chosen on the pre-image) and U24 (`%%user` is used as supplied, with
//! no alias between `providerType` and `provider_type`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use bson::{Document, doc};
use rolegate::{EngineKind, LoadOptions, RuleSet, Rules};
use serde_json::{Value, json};

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

fn rules(roles: Value) -> Rules {
    let file = json!({"database": "app", "collection": "items", "roles": roles});
    Rules::new(RuleSet::from_json("rules.json", &file, &LoadOptions::default()).unwrap())
}

fn user(extra: Document) -> rolegate::RequestContext {
    let mut u = doc! {"id": "u1", "type": "normal", "data": {}, "custom_data": {}};
    u.extend(extra);
    rolegate::RequestContext::for_user(u)
}

/// U5: the owner may hand a document over (the pre-image chooses `owner`, which may write), and
/// nobody may take one over (the pre-image chooses `reader`, which may not) — whatever the
/// post-image says.
#[test]
fn u5_an_update_chooses_its_role_on_the_pre_image() {
    let rules = rules(json!([
        {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true, "write": true},
        {"name": "reader", "apply_when": {}, "read": true}
    ]));
    let coll = rules.collection("app.items").unwrap();
    let ctx = user(doc! {});
    let mine = doc! {"_id": 1, "owner": "u1", "title": "a"};
    let theirs = doc! {"_id": 1, "owner": "u2", "title": "a"};
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        let give_away = request.update(&mine, &theirs);
        assert!(give_away.allowed, "{engine:?}: {give_away:?}");
        assert_eq!(give_away.role.as_deref(), Some("owner"), "{engine:?}");
        let take_over = request.update(&theirs, &mine);
        assert!(!take_over.allowed, "{engine:?}: {take_over:?}");
        assert_eq!(take_over.role.as_deref(), Some("reader"), "{engine:?}");
    }
}

/// U24: a rule written with `providerType` sees a user supplied with `providerType` and not
/// one supplied with `provider_type` (and the other way round): no alias is added.
#[test]
fn u24_user_identities_are_read_as_supplied() {
    let camel = rules(json!([{"name": "google", "read": true,
        "apply_when": {"%%user.identities.providerType": "oauth2-google"}}]));
    let snake = rules(json!([{"name": "google", "read": true,
        "apply_when": {"%%user.identities.provider_type": "oauth2-google"}}]));
    let as_camel = user(doc! {"identities": [{"id": "g1", "providerType": "oauth2-google"}]});
    let as_snake = user(doc! {"identities": [{"id": "g1", "provider_type": "oauth2-google"}]});
    let doc = doc! {"_id": 1};
    for engine in ENGINES {
        let visible = |rules: &Rules, ctx: &rolegate::RequestContext| {
            let coll = rules.collection("app.items").unwrap();
            coll.prepare_with(ctx, engine).read(&doc).visible
        };
        assert!(visible(&camel, &as_camel), "{engine:?}");
        assert!(!visible(&camel, &as_snake), "{engine:?}");
        assert!(visible(&snake, &as_snake), "{engine:?}");
        assert!(!visible(&snake, &as_camel), "{engine:?}");
    }
}
