//! Field rules that read the document but not the field are shared by every equal copy and
//! evaluated once per document (`RuleRef::memo`). These tests pin what must not leak through
//! the memo: one document's answer to the next document, the post-image's answer to the
//! pre-image, and a failure (reported at each rule's own place, never memoized as an answer).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

#[path = "compiled_support/mod.rs"]
mod support;

use bson::{RawDocumentBuf, doc};
use rolegate::{EngineKind, Scratch};
use serde_json::json;
use support::{ctx, rules, same_read, same_writes, user};

/// Three fields readable (and writable) only by the document's owner, one always readable.
fn owner_fields() -> serde_json::Value {
    let owner = json!({"%%root.owner": "%%user.id"});
    json!([{
        "name": "all",
        "apply_when": {},
        "insert": true,
        "fields": {
            "owner": {"read": true, "write": owner},
            "a": {"read": owner, "write": owner},
            "b": {"read": owner, "write": owner},
            "c": {"read": owner, "write": owner},
            "open": {"read": true}
        }
    }])
}

#[test]
fn a_shared_document_rule_is_answered_again_for_each_document() {
    let r = rules(owner_fields());
    let c = ctx(user("alice", doc! {}));
    let mine = doc! {"owner": "alice", "a": 1, "b": 2, "c": 3, "open": 4};
    let theirs = doc! {"owner": "bob", "a": 1, "b": 2, "c": 3, "open": 4};
    assert_eq!(same_read(&r, &c, &mine).document, Some(mine.clone()));
    assert_eq!(
        same_read(&r, &c, &theirs).document,
        Some(doc! {"owner": "bob", "open": 4})
    );

    // The raw path reuses one scratch space for every document: alternate owners through it.
    let coll = r.collection("app.items").unwrap();
    let prepared = coll.prepare_with(&c, EngineKind::Compiled);
    let mut scratch = Scratch::new();
    for round in 0..4 {
        for (d, keys) in [(&mine, 5), (&theirs, 2)] {
            let raw = RawDocumentBuf::from_document(d).unwrap();
            let mut out = Vec::new();
            let decision = prepared.redact_raw(&raw, &mut scratch, &mut out);
            assert!(decision.visible && !decision.error, "round {round}");
            let redacted = bson::RawDocument::from_bytes(&out).unwrap();
            assert_eq!(redacted.iter().count(), keys, "round {round}: {d}");
        }
    }
}

#[test]
fn writes_answer_the_shared_rule_for_each_image() {
    // Field writes read the post-image, then the pre-image (`%%root` is rebound between them):
    // handing the document to someone else and taking it over must both follow the reference.
    let r = rules(owner_fields());
    let c = ctx(user("alice", doc! {}));
    let pre_mine = doc! {"owner": "alice", "a": 1, "b": 2, "c": 3};
    let post_theirs = doc! {"owner": "bob", "a": 9, "b": 2, "c": 3};
    same_writes(&r, &c, &pre_mine, &post_theirs);
    same_writes(&r, &c, &post_theirs, &pre_mine);
    same_writes(
        &r,
        &c,
        &pre_mine,
        &doc! {"owner": "alice", "a": 9, "b": 8, "c": 7},
    );
}

#[test]
fn a_failing_shared_rule_fails_at_the_place_of_the_field_that_reached_it() {
    // `$in` on a string fails; both copies share one node, the failure keeps its own place.
    let failing = json!({"%%root.owner": {"$in": "%%root.notArray"}});
    let r = rules(json!([{
        "name": "all",
        "apply_when": {},
        "fields": {
            "x": {"read": failing},
            "y": {"read": failing}
        }
    }]));
    let c = ctx(user("alice", doc! {}));
    let o = same_read(&r, &c, &doc! {"owner": "alice", "notArray": "s", "y": 1});
    let error = o.error.expect("the rule fails");
    assert!(error.contains("fields.y"), "{error}");
    let o = same_read(&r, &c, &doc! {"owner": "alice", "notArray": "s", "x": 1});
    let error = o.error.expect("the rule fails");
    assert!(error.contains("fields.x"), "{error}");
}
