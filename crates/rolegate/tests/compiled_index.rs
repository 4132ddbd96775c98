//! Indexed runs of roles (`{"%%user.custom_data.group": "gK", "team": "tK"}`, `{"team": "tK"}`):
//! the hash lookups must keep the reference's first-match order exactly — several roles hit by
//! one lookup, arrays on either side, symbols, missing paths, non-string values, and runs mixed
//! with roles that are not indexed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

#[path = "compiled_support/mod.rs"]
mod support;

use std::time::Instant;

use bson::{Bson, Document, doc};
use rolegate::EngineKind;
use serde_json::{Value, json};
use support::{ctx, rules, same_read, same_writes, user};

fn group_team(n: usize) -> Vec<Value> {
    (0..n)
        .map(|k| {
            json!({"name": format!("r{k}"),
                   "apply_when": {"%%user.custom_data.group": format!("g{}", k % 3), "team": format!("t{}", k % 5)},
                   "read": true})
        })
        .collect()
}

fn teams() -> Vec<Document> {
    vec![
        doc! {"team": "t1"},
        doc! {"team": "t4", "x": 1},
        doc! {"team": ["t9", "t3", "t0"]},
        doc! {"team": Bson::Symbol("t2".into())},
        doc! {"team": [Bson::Symbol("t2".into()), 1]},
        doc! {"team": 1},
        doc! {"team": null},
        doc! {"team": {"t1": 1}},
        doc! {"team": [["t1"]]},
        doc! {"x": "t1"},
        doc! {},
        doc! {"team": "T1"},
    ]
}

fn users() -> Vec<Document> {
    vec![
        user("u", doc! {"group": "g1"}),
        user("u", doc! {"group": ["g2", "g0"]}),
        user("u", doc! {"group": Bson::Symbol("g0".into())}),
        user("u", doc! {"group": 1}),
        user("u", doc! {}),
        user("u", doc! {"group": ["gx"]}),
        user("u", doc! {"group": [["g1"]]}),
    ]
}

#[test]
fn group_and_team_runs_keep_first_match() {
    let r = rules(Value::Array(group_team(40)));
    for u in users() {
        let c = ctx(u);
        for d in teams() {
            same_read(&r, &c, &d);
            same_writes(&r, &c, &d, &doc! {"team": "t2"});
        }
    }
}

#[test]
fn team_only_runs_keep_first_match() {
    let roles: Vec<Value> = (0..30)
        .map(|k| {
            json!({"name": format!("r{k}"), "apply_when": {"team": format!("t{}", k % 4)},
                        "fields": {"team": {"read": true}, "x": {"read": k % 2 == 0}}})
        })
        .collect();
    let r = rules(Value::Array(roles));
    let c = ctx(user("u", doc! {}));
    for d in teams() {
        same_read(&r, &c, &d);
    }
}

#[test]
fn request_only_runs_pick_the_first_live_role() {
    let roles: Vec<Value> = (0..12)
        .map(|k| {
            json!({"name": format!("r{k}"),
                        "apply_when": {"%%user.custom_data.group": format!("g{}", k % 4)},
                        "fields": {"team": {"read": k < 6}}})
        })
        .collect();
    let r = rules(Value::Array(roles));
    for u in users() {
        let c = ctx(u);
        for d in teams() {
            same_read(&r, &c, &d);
        }
    }
}

#[test]
fn runs_interleave_with_other_roles() {
    let mut roles = group_team(8);
    roles.insert(
        3,
        json!({"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true}),
    );
    roles
        .push(json!({"name": "fallback", "apply_when": {"team": {"$exists": true}}, "read": true}));
    roles.extend((0..6).map(
        |k| json!({"name": format!("s{k}"), "apply_when": {"team": format!("t{k}")}, "read": true}),
    ));
    // Two tests on the same path in one role, and `$eq`.
    roles.extend((0..5).map(|k| json!({"name": format!("d{k}"),
        "apply_when": {"%and": [{"team": format!("t{k}")}, {"team": {"$eq": format!("t{}", k + 1)}}]}, "read": true})));
    let r = rules(Value::Array(roles));
    for u in users() {
        let c = ctx(u);
        for mut d in teams() {
            same_read(&r, &c, &d);
            d.insert("owner", "u");
            same_read(&r, &c, &d);
            d.insert("team", vec!["t1", "t2"]);
            same_read(&r, &c, &d);
        }
    }
}

#[test]
fn ten_thousand_roles_compile_and_prepare_quickly() {
    let r = rules(Value::Array(
        (0..10_000)
            .map(|k| json!({"name": format!("r{k}"),
                "apply_when": {"%%user.custom_data.group": format!("g{k}"), "team": format!("t{k}")},
                "read": true}))
            .collect(),
    ));
    // Generous bounds (debug builds, loaded machines); the benches measure the real figures.
    assert!(
        r.compile_time().as_millis() < 2_000,
        "{:?}",
        r.compile_time()
    );
    let c = ctx(user("u", doc! {"group": "g9876"}));
    let coll = r.collection("app.items").unwrap();
    let start = Instant::now();
    for _ in 0..100 {
        std::hint::black_box(coll.prepare(&c));
    }
    assert!(
        start.elapsed().as_millis() < 500,
        "{:?}",
        start.elapsed() / 100
    );
    let p = coll.prepare_with(&c, EngineKind::Compiled);
    assert_eq!(
        p.read(&doc! {"team": "t9876"}).role.as_deref(),
        Some("r9876")
    );
    assert_eq!(p.read(&doc! {"team": "t9875"}).role, None);
}
