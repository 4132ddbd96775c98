//! Compile-time folding and per-request partial evaluation keep the reference's error
//! semantics: `%and`/`%or` go left to right and stop early, an error is raised only where the
//! reference would reach it, a failing `apply_when` stops role selection, and host functions are
//! called only when some document's evaluation reaches them (at most once per request).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

#[path = "compiled_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bson::{Bson, doc};
use rolegate::{EngineKind, FunctionHost};
use serde_json::json;
use support::{ctx, ctx_with, rules, same_read, same_writes, user};

/// `{"$in": "%%user.custom_data.notArray"}` fails (not an array) when the user has a string.
fn failing() -> serde_json::Value {
    json!({"%%user.id": {"$in": "%%user.custom_data.notArray"}})
}

fn alice() -> bson::Document {
    user("alice", doc! {"notArray": "x", "group": "g1"})
}

#[test]
fn an_error_after_an_infallible_document_test_is_reached_only_when_the_test_holds() {
    let r = rules(json!([
        {"name": "a", "apply_when": {"%and": [{"owner": "alice"}, failing()]}, "read": true},
        {"name": "b", "apply_when": {}, "read": true}
    ]));
    let c = ctx(alice());
    let hit = same_read(&r, &c, &doc! {"owner": "alice"});
    assert!(hit.error.is_some() && hit.role.is_none(), "{hit:?}");
    let miss = same_read(&r, &c, &doc! {"owner": "bob"});
    assert_eq!(miss.role.as_deref(), Some("b"));
}

#[test]
fn a_leading_error_fails_role_selection_for_every_document() {
    let r = rules(json!([
        {"name": "a", "apply_when": {"%and": [failing(), {"owner": "alice"}]}, "read": true},
        {"name": "b", "apply_when": {}, "read": true}
    ]));
    let c = ctx(alice());
    for d in [doc! {"owner": "alice"}, doc! {"owner": "bob"}, doc! {}] {
        let o = same_read(&r, &c, &d);
        assert!(o.error.is_some() && o.role.is_none(), "{o:?}");
    }
}

#[test]
fn a_constant_false_after_a_fallible_clause_keeps_the_clause() {
    // `%or: [fallible doc test, false]`: the error must still surface when reached.
    let r = rules(json!([
        {"name": "a", "apply_when": {"%or": [{"tags": {"$in": "%%root.list"}}, false]}, "read": true},
        {"name": "b", "apply_when": {}, "read": true}
    ]));
    let c = ctx(alice());
    let err = same_read(&r, &c, &doc! {"tags": 1, "list": "not an array"});
    assert!(err.error.is_some(), "{err:?}");
    let ok = same_read(&r, &c, &doc! {"tags": 1, "list": [1]});
    assert_eq!(ok.role.as_deref(), Some("a"));
    let no = same_read(&r, &c, &doc! {"tags": 1, "list": [2]});
    assert_eq!(no.role.as_deref(), Some("b"));
}

#[test]
fn statically_false_roles_are_skipped_and_a_statically_true_role_ends_selection() {
    let r = rules(json!([
        {"name": "admin", "apply_when": {"%%user.custom_data.group": "admins"}, "read": true},
        {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true},
        {"name": "member", "apply_when": {"%%user.custom_data.group": "g1"}, "fields": {"title": {"read": true}}},
        {"name": "never", "apply_when": failing(), "read": true}
    ]));
    let c = ctx(alice());
    let own = same_read(&r, &c, &doc! {"owner": "alice", "title": "t", "x": 1});
    assert_eq!(own.role.as_deref(), Some("owner"));
    let other = same_read(&r, &c, &doc! {"owner": "bob", "title": "t", "x": 1});
    assert_eq!(other.role.as_deref(), Some("member"));
    assert_eq!(other.document, Some(doc! {"title": "t"}));
}

#[test]
fn a_statically_failing_role_stops_selection_before_later_roles() {
    let r = rules(json!([
        {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true},
        {"name": "broken", "apply_when": failing(), "read": true},
        {"name": "everyone", "apply_when": {}, "read": true}
    ]));
    let c = ctx(alice());
    assert_eq!(
        same_read(&r, &c, &doc! {"owner": "alice"}).role.as_deref(),
        Some("owner")
    );
    let o = same_read(&r, &c, &doc! {"owner": "bob"});
    assert!(o.role.is_none() && o.error.is_some(), "{o:?}");
}

#[test]
fn nor_and_not_keep_errors() {
    let r = rules(json!([
        {"name": "a", "apply_when": {"%nor": [{"owner": "x"}, failing()]}, "read": true},
        {"name": "b", "apply_when": {"%not": {"owner": "y"}}, "read": true}
    ]));
    let c = ctx(alice());
    for d in [
        doc! {"owner": "x"},
        doc! {"owner": "y"},
        doc! {"owner": "z"},
    ] {
        same_read(&r, &c, &d);
    }
}

#[test]
fn constant_subexpressions_fold_and_permissions_stay_three_valued() {
    let r = rules(json!([
        {"name": "a", "apply_when": {"%and": [{"%%true": true}, {"owner": "%%user.id"}]},
         "read": {"%or": [false, {"%%false": true}]}, "write": {"%%user.custom_data.group": "g1"},
         "fields": {"f": {"read": true}}},
        {"name": "b", "apply_when": {"%or": [{"%%true": false}, true]},
         "fields": {"f": {"read": {"%%this": {"$gt": 1}}}, "g": {"write": {"%%prev": {"$exists": true}}}}}
    ]));
    let c = ctx(alice());
    for d in [
        doc! {"owner": "alice", "f": 1, "g": 2},
        doc! {"owner": "bob", "f": 2, "g": 2},
        doc! {"owner": "bob", "f": 0},
    ] {
        same_read(&r, &c, &d);
        same_writes(&r, &c, &d, &doc! {"owner": "bob", "f": 3, "g": 4});
    }
}

/// Counts calls and answers `true` for `allow`, fails for anything else.
struct Counting(AtomicUsize);

impl FunctionHost for Counting {
    fn call(&self, name: &str, _arguments: &[Bson]) -> Result<Bson, String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        match name {
            "allow" => Ok(Bson::Boolean(true)),
            _ => Err(format!("no function `{name}`")),
        }
    }
}

#[test]
fn host_functions_are_called_lazily_and_at_most_once_per_request() {
    let r = rules(json!([
        {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true},
        {"name": "checked",
         "apply_when": {"%%true": {"%function": {"name": "allow", "arguments": ["%%user.id"]}}},
         "read": true}
    ]));
    let host = Arc::new(Counting(AtomicUsize::new(0)));
    let c = ctx_with(alice(), host.clone());
    let coll = r.collection("app.items").unwrap();
    let p = coll.prepare_with(&c, EngineKind::Compiled);
    assert_eq!(
        host.0.load(Ordering::SeqCst),
        0,
        "prepare must not call host functions"
    );
    for _ in 0..5 {
        assert_eq!(
            p.read(&doc! {"owner": "alice"}).role.as_deref(),
            Some("owner")
        );
    }
    assert_eq!(host.0.load(Ordering::SeqCst), 0, "not reached: not called");
    for _ in 0..5 {
        assert_eq!(
            p.read(&doc! {"owner": "bob"}).role.as_deref(),
            Some("checked")
        );
    }
    assert_eq!(host.0.load(Ordering::SeqCst), 1, "called once per request");
}

#[test]
fn a_failing_host_function_denies_where_it_is_reached() {
    let r = rules(json!([
        {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true},
        {"name": "checked",
         "apply_when": {"%%true": {"%function": {"name": "missing", "arguments": []}}},
         "read": true}
    ]));
    let host: Arc<dyn FunctionHost> = Arc::new(Counting(AtomicUsize::new(0)));
    let c = ctx_with(alice(), host);
    assert_eq!(
        same_read(&r, &c, &doc! {"owner": "alice"}).role.as_deref(),
        Some("owner")
    );
    let o = same_read(&r, &c, &doc! {"owner": "bob"});
    assert!(o.error.is_some() && o.role.is_none(), "{o:?}");
}

#[test]
fn expressions_beyond_the_depth_limit_keep_the_reference_limit_error() {
    use rolegate::LoadOptions;
    use rolegate::RuleSet;
    use rolegate::rules::Expr;
    // The parser stops at 100 JSON levels; rule sets built in code can nest deeper. Wrap a
    // document test in 300 `%not`s (evaluation depth > 256): the reference fails with a limit
    // error; the compiled engine must too (and an even count must not be folded away).
    for wraps in [300, 301, 40] {
        let file = json!({"database": "app", "collection": "items", "roles": [
            {"name": "deep", "apply_when": {"owner": "alice"}, "read": true},
            {"name": "rest", "apply_when": {}, "read": true}
        ]});
        let mut set = RuleSet::from_json(
            "data_sources/mongodb-atlas/app/items/rules.json",
            &file,
            &LoadOptions::default(),
        )
        .unwrap();
        for ds in set.data_sources.values_mut() {
            for coll in ds.collections.values_mut() {
                let role = &mut coll.roles[0];
                let mut e = role.apply_when.expr.clone();
                for _ in 0..wraps {
                    e = Expr::Not(Box::new(e));
                }
                role.apply_when.expr = e;
            }
        }
        let r = rolegate::Rules::new(set);
        let c = ctx(alice());
        for d in [doc! {"owner": "alice"}, doc! {"owner": "bob"}] {
            let o = same_read(&r, &c, &d);
            assert_eq!(o.error.is_some(), wraps > 256, "{wraps}: {o:?}");
        }
    }
}

#[test]
fn prepared_requests_and_scratch_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<rolegate::PreparedRequest<'static, 'static>>();
    send_sync::<rolegate::Collection>();
    send::<rolegate::Scratch>();
}
