//! The fast read-decision path (`src/eval/fast.rs`): role selection by top-level equality
//! tests and request-settled read levels, decided on raw BSON without the node evaluator. Every
//! case goes through `same_read`, which compares `read_raw` (where the fast path runs) with the
//! reference's read, for documents that exercise each way out of the fast path: each role, no
//! role, a withheld document, the first field kept or dropped, `additional_fields`, and the
//! shapes it hands to the general path (a nested level, a document-dependent field rule).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

#[path = "compiled_support/mod.rs"]
mod support;

use bson::{Bson, Document, doc};
use serde_json::json;
use support::{ctx, rules, same_read, user};

/// Owner / shared / public / flagged / hidden, in the shapes the fast path takes.
fn roles() -> serde_json::Value {
    json!([
        {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true},
        {"name": "team", "apply_when": {"team": "%%user.custom_data.team"},
         "fields": {"name": {"read": true}, "secret": {"read": false}}},
        {"name": "missing", "apply_when": {"x": "%%user.custom_data.absent"}, "read": true},
        {"name": "public", "apply_when": {"public": true},
         "fields": {"_id": {"read": true}, "name": {"read": true}}},
        {"name": "open", "apply_when": {"open": {"$eq": "yes"}},
         "fields": {"hidden": {"read": false}}, "additional_fields": {"read": true}},
        {"name": "nested", "apply_when": {"n": "yes"},
         "fields": {"meta": {"fields": {"a": {"read": true}}}, "name": {"read": true}}},
        {"name": "by_doc", "apply_when": {"b": "yes"},
         "fields": {"name": {"read": {"level": 3}}, "other": {"read": true}}},
        {"name": "withheld", "apply_when": {"w": "yes"}, "read": false},
        {"name": "gated", "apply_when": {"g": "yes"},
         "read": {"%%user.custom_data.team": "red"}}
    ])
}

fn alice(team: &str) -> Document {
    user("alice", doc! {"team": team})
}

fn documents() -> Vec<Document> {
    vec![
        doc! {"_id": 1, "owner": "alice", "name": "mine"},
        doc! {"_id": 2, "owner": "bob", "team": "red", "secret": 1, "name": "team"},
        doc! {"_id": 3, "owner": "bob", "team": ["blue", "red"], "secret": 1},
        doc! {"_id": 4, "owner": "bob", "team": "blue", "secret": 1},
        doc! {"_id": 5, "owner": "bob", "x": Bson::Null, "public": true, "name": "pub"},
        doc! {"owner": "bob", "public": true, "secret": 1},
        doc! {"_id": 7, "public": false, "open": "yes", "hidden": 1},
        doc! {"_id": 8, "open": "yes", "hidden": 1, "other": 2},
        doc! {"open": "yes", "hidden": 1},
        doc! {"meta": {"a": 1, "b": 2}, "n": "yes", "name": "n"},
        doc! {"meta": {"a": 1}, "n": "yes"},
        doc! {"meta": {"b": 2}, "n": "yes"},
        doc! {"name": "n", "b": "yes", "level": 3},
        doc! {"name": "n", "b": "yes", "level": 1},
        doc! {"name": "n", "b": "yes", "level": 1, "other": 1},
        doc! {"_id": 13, "w": "yes"},
        doc! {"_id": 14, "g": "yes"},
        doc! {"_id": 15, "owner": Bson::Symbol("alice".into())},
        doc! {"_id": 16, "owner": ["carol", "alice"]},
        doc! {"_id": 17, "owner": 1, "team": true, "public": "true"},
        doc! {},
    ]
}

#[test]
fn every_way_through_the_fast_path_agrees_with_the_reference() {
    let r = rules(roles());
    for team in ["red", "blue"] {
        let c = ctx(alice(team));
        for d in documents() {
            same_read(&r, &c, &d);
        }
    }
}

#[test]
fn the_fast_path_decides_what_it_should() {
    let r = rules(roles());
    let c = ctx(alice("red"));
    let role = |d: Document| same_read(&r, &c, &d).role;
    let visible = |d: Document| same_read(&r, &c, &d).visible;
    assert_eq!(role(doc! {"owner": "alice"}).as_deref(), Some("owner"));
    assert_eq!(role(doc! {"team": ["x", "red"]}).as_deref(), Some("team"));
    assert!(
        !visible(doc! {"team": "red", "secret": 1}),
        "only a hidden field"
    );
    assert_eq!(role(doc! {"x": Bson::Null}), None, "a missing operand");
    let o = same_read(&r, &c, &doc! {"open": "yes", "hidden": 1, "z": 1});
    assert!(o.visible, "additional field kept: {o:?}");
    let o = same_read(&r, &c, &doc! {"hidden": 1, "open": "yes"});
    assert_eq!(
        o.document,
        Some(doc! {"open": "yes"}),
        "the role's own field is additional"
    );
    assert!(!visible(doc! {"w": "yes", "_id": 1}));
    assert!(visible(doc! {"g": "yes"}), "read settled by the request");
    let blue = ctx(alice("blue"));
    assert!(!same_read(&r, &blue, &doc! {"g": "yes"}).visible);
    assert!(
        visible(doc! {"meta": {"a": 1}, "n": "yes"}),
        "decided by a nested level"
    );
    assert!(
        visible(doc! {"name": "n", "b": "yes", "level": 3}),
        "by a document rule"
    );
}

#[test]
fn a_role_that_applies_always_ends_the_fast_plan() {
    let r = rules(json!([
        {"name": "mine", "apply_when": {"owner": "%%user.id"}, "read": true},
        {"name": "rest", "apply_when": {}, "fields": {"name": {"read": true}}},
        {"name": "never", "apply_when": {"owner": "bob"}, "read": true}
    ]));
    let c = ctx(alice("red"));
    for d in [
        doc! {"owner": "alice"},
        doc! {"owner": "bob", "name": "x"},
        doc! {"owner": "bob"},
    ] {
        let o = same_read(&r, &c, &d);
        assert!(o.role.as_deref() != Some("never"), "{o:?}");
    }
}

/// Four roles tested on `kind` (and on `%%user.custom_data.region` with `region`, or on a
/// second document field `sub` with `sub`), from `k{first}`: an indexed run (four roles with
/// the same tested paths).
fn run_of(first: usize, region: bool, sub: bool) -> Vec<serde_json::Value> {
    (first..first + 4)
        .map(|i| {
            let mut aw = json!({"kind": format!("k{i}")});
            if region {
                aw["%%user.custom_data.region"] = (if i % 2 == 0 { "eu" } else { "us" }).into();
            }
            if sub {
                aw["sub"] = "x".into();
            }
            let fields = match i % 3 {
                0 => json!({"a": {"read": true}}),
                1 => json!({"a": {"read": {"%%root.owner": "%%user.id"}}}),
                _ => json!({"m": {"fields": {"a": {"read": true}}}}),
            };
            json!({"name": format!("t{i}"), "apply_when": aw, "fields": fields})
        })
        .collect()
}

/// Role selection shapes the fast plan takes beyond single equality tests: a conjunction whose
/// request clauses hold, and indexed runs (with and without request tests); with `general`,
/// also roles that make the plan hand everything to the general path (a run with two document
/// tests, a nested path).
fn tiers(general: bool) -> serde_json::Value {
    let mut roles = vec![json!(
        {"name": "t0", "apply_when": {"kind": "k0", "%%user.custom_data.clearance": {"$gte": 1}},
         "fields": {"a": {"read": true}, "o": {"read": {"%%root.owner": "%%user.id"}}},
         "additional_fields": {}}
    )];
    roles.extend(run_of(1, false, false));
    roles.extend(run_of(5, true, false));
    if general {
        roles.extend(run_of(9, false, true));
        roles.push(json!({"name": "nested", "apply_when": {"m.a": "k6"}, "read": true}));
    }
    roles.push(
        json!({"name": "last", "apply_when": {"%%user.custom_data.region": "eu"},
                      "fields": {"a": {"read": true}}}),
    );
    serde_json::Value::Array(roles)
}

fn tier_documents() -> Vec<Document> {
    let mut docs = Vec::new();
    let mut kinds: Vec<Bson> = (0..14).map(|i| Bson::from(format!("k{i}"))).collect();
    kinds.extend([
        Bson::Symbol("k2".into()),
        Bson::Array(vec!["k99".into(), "k6".into()]),
        Bson::Int32(0),
    ]);
    for (i, kind) in kinds.into_iter().enumerate() {
        let owner = if i % 2 == 0 { "alice" } else { "bob" };
        docs.push(doc! {"_id": i as i32, "kind": kind.clone(), "owner": owner, "a": 1, "o": 2});
        docs.push(doc! {"kind": kind.clone(), "sub": "x", "m": {"a": "k6", "b": 1}});
        docs.push(doc! {"m": {"a": "k6"}, "kind": kind});
    }
    // The per-document `%%root.owner` rules, settled from the probe: arrays, symbols, other
    // types, no owner.
    docs.push(doc! {"owner": "alice"});
    for owner in [
        Bson::Array(vec!["carol".into(), "alice".into()]),
        Bson::Symbol("alice".into()),
        Bson::Int32(1),
        Bson::Null,
    ] {
        for kind in ["k0", "k1", "k4"] {
            docs.push(doc! {"kind": kind, "a": 1, "o": 2, "owner": owner.clone()});
        }
    }
    docs.push(doc! {"kind": "k1", "a": 1});
    docs
}

#[test]
fn conjunctions_and_indexed_runs_select_as_the_reference_does() {
    for general in [false, true] {
        let r = rules(tiers(general));
        for (clearance, region) in [(2, "eu"), (0, "eu"), (2, "us"), (0, "us")] {
            let c = ctx(user(
                "alice",
                doc! {"clearance": clearance, "region": region},
            ));
            for d in tier_documents() {
                same_read(&r, &c, &d);
            }
        }
    }
}

#[test]
fn a_run_longer_than_the_fast_plan_takes_still_selects_as_the_reference_does() {
    let roles: Vec<serde_json::Value> = (0..20)
        .map(|i| {
            json!({"name": format!("t{i}"), "apply_when": {"kind": format!("k{i}")},
                        "fields": {"a": {"read": i % 2 == 0}}})
        })
        .collect();
    let r = rules(serde_json::Value::Array(roles));
    let c = ctx(alice("red"));
    for i in [0, 1, 15, 16, 17, 19, 20] {
        same_read(&r, &c, &doc! {"_id": i, "kind": format!("k{i}"), "a": 1});
    }
}
