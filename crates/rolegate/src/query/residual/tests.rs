//! Residuals of small rule sets (the properties over generated ones are in
//! `tests/residual_props.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bson::{Document, doc};
use serde_json::json;

use super::Residual;
use crate::{LoadOptions, RuleSet, Rules};

fn residual(roles: serde_json::Value, user: Document) -> Residual {
    let rules = Rules::new(
        RuleSet::from_json(
            "data_sources/mongodb-atlas/app/items/rules.json",
            &json!({"database": "app", "collection": "items", "roles": roles}),
            &LoadOptions::default(),
        )
        .unwrap(),
    );
    let ctx = rules.context().user(user).build().unwrap();
    let coll = rules.collection("app.items").unwrap();
    let request = coll.prepare(&ctx);
    Residual::of(request.policy.roles, request.context)
}

fn query(q: Document, exact: bool) -> Residual {
    Residual::Query { query: q, exact }
}

#[test]
fn an_owner_role_is_an_exact_equality() {
    let r = residual(
        json!([{"name": "owner", "apply_when": {"owner_id": "%%user.id"}, "read": true}]),
        doc! {"id": "u1"},
    );
    assert_eq!(r, query(doc! {"owner_id": {"$eq": "u1"}}, true));
    assert_eq!(r.describe(), r#"{"owner_id":{"$eq":"u1"}} exact"#);
}

#[test]
fn request_only_rules_fold() {
    let roles = json!([
        {"name": "admin", "apply_when": {"%%user.custom_data.admin": true}, "read": true},
        {"name": "none", "apply_when": {}, "read": false}
    ]);
    let admin = residual(
        roles.clone(),
        doc! {"id": "a", "custom_data": {"admin": true}},
    );
    assert_eq!(admin, Residual::Everything { exact: true });
    assert_eq!(residual(roles, doc! {"id": "b"}), Residual::Nothing);
}

#[test]
fn first_match_excludes_what_earlier_roles_take() {
    // Owners read; everyone else reads public documents.
    let r = residual(
        json!([
            {"name": "owner", "apply_when": {"owner_id": "%%user.id"}, "read": true},
            {"name": "public", "apply_when": {"public": true}, "read": true}
        ]),
        doc! {"id": "u1"},
    );
    // (The owner role shows all it gets, so `owner or (not owner and public)` is
    // `owner or public`.)
    assert_eq!(
        r,
        query(
            doc! {"$or": [{"owner_id": {"$eq": "u1"}}, {"public": true}]},
            true
        )
    );
    // A first role that shows only some of what it gets keeps its negation.
    let r = residual(
        json!([
            {"name": "owner", "apply_when": {"owner_id": "%%user.id"},
             "fields": {"title": {"read": true}}},
            {"name": "public", "apply_when": {"public": true}, "read": true}
        ]),
        doc! {"id": "u1"},
    );
    assert_eq!(
        r,
        query(
            doc! {"$or": [
                {"$and": [{"owner_id": {"$eq": "u1"}}, {"title": {"$exists": true}}]},
                {"$and": [{"$nor": [{"owner_id": {"$eq": "u1"}}]}, {"public": true}]}
            ]},
            true
        )
    );
    // A first role that withholds hides what a later one would show.
    let r = residual(
        json!([
            {"name": "banned", "apply_when": {"banned": true}, "read": false},
            {"name": "all", "apply_when": {}, "read": true}
        ]),
        doc! {"id": "u1"},
    );
    assert_eq!(r, query(doc! {"$nor": [{"banned": true}]}, true));
}

#[test]
fn document_filters_and_field_rules() {
    let r = residual(
        json!([{"name": "r", "apply_when": {},
            "document_filters": {"read": {"team": "%%user.custom_data.team"}},
            "read": true}]),
        doc! {"id": "u1", "custom_data": {"team": "red"}},
    );
    assert_eq!(r, query(doc! {"team": {"$eq": "red"}}, true));
    // `_id` readable: every document the role reaches is shown.
    let r = residual(
        json!([{"name": "r", "apply_when": {}, "fields": {"_id": {"read": true}}}]),
        doc! {"id": "u1"},
    );
    assert_eq!(r, Residual::Everything { exact: true });
    // Only `title` readable: the documents that have a title.
    let r = residual(
        json!([{"name": "r", "apply_when": {}, "fields": {"title": {"read": true}}}]),
        doc! {"id": "u1"},
    );
    assert_eq!(r, query(doc! {"title": {"$exists": true}}, true));
    // Nothing readable at all.
    let r = residual(
        json!([{"name": "r", "apply_when": {}, "fields": {"title": {}}}]),
        doc! {"id": "u1"},
    );
    assert_eq!(r, Residual::Nothing);
}

#[test]
fn what_cannot_be_expressed_widens() {
    // A field rule that depends on the value: the document may be shown wherever it has the
    // field, but not surely.
    let r = residual(
        json!([{"name": "r", "apply_when": {},
            "fields": {"title": {"read": {"%%this": {"$exists": true}}}}}]),
        doc! {"id": "u1"},
    );
    assert_eq!(r, query(doc! {"title": {"$exists": true}}, false));
    // U20: a scalar field matches an array operand holding it.
    let r = residual(
        json!([{"name": "r", "apply_when": {"team": ["a", "b"]}, "read": true}]),
        doc! {"id": "u1"},
    );
    assert_eq!(
        r,
        query(
            doc! {"$or": [{"team": {"$eq": ["a", "b"]}}, {"team": {"$in": ["a", "b"]}}]},
            false
        )
    );
    // A substituted operand under $ne is false where the field is missing.
    let r = residual(
        json!([{"name": "r", "apply_when": {"owner_id": {"$ne": "%%user.id"}}, "read": true}]),
        doc! {"id": "u1"},
    );
    assert_eq!(
        r,
        query(
            doc! {"$and": [{"owner_id": {"$exists": true}}, {"owner_id": {"$ne": "u1"}}]},
            true
        )
    );
}

#[test]
fn the_system_user_reads_everything() {
    let rules = Rules::new(
        RuleSet::from_json(
            "data_sources/mongodb-atlas/app/items/rules.json",
            &json!({"database": "app", "collection": "items", "roles": []}),
            &LoadOptions::default(),
        )
        .unwrap(),
    );
    let ctx = rules.context().system(true).build().unwrap();
    let coll = rules.collection("app.items").unwrap();
    let request = coll.prepare(&ctx);
    assert_eq!(
        Residual::of(request.policy.roles, request.context),
        Residual::Everything { exact: true }
    );
}

#[test]
fn a_rule_that_may_fail_is_never_exact() {
    // `$size` of a substituted operand fails on a non-number: where `read` fails the document
    // is withheld, although `write` is true (found by tests/residual_props.rs).
    let r = residual(
        json!([{"name": "r", "apply_when": {},
            "read": {"%or": [{"arr": {"$size": "%%user.custom_data.n"}}]}, "write": true}]),
        doc! {"id": "u1", "custom_data": {"n": [1]}},
    );
    assert_eq!(r, Residual::Everything { exact: false });
    // A field rule that fails (a `%function`) withholds every document that has the field,
    // although `additional_fields` shows every other field.
    let r = residual(
        json!([{"name": "r", "apply_when": {},
            "fields": {"a": {"read": {"%%true": {"%function": {"name": "f", "arguments": []}}}}},
            "additional_fields": {"read": true}}]),
        doc! {"id": "u1"},
    );
    assert_eq!(r, Residual::Everything { exact: false });
    // An `apply_when` that may fail although its bounds are exact: the request-only part
    // makes the `%or` true, but the `$size` before it is evaluated first and fails, and no
    // later role is tried.
    let roles = json!([
        {"name": "r", "apply_when": {"%or": [
            {"arr": {"$size": "%%user.custom_data.n"}}, {"%%user.id": "u1"}]}, "read": true},
        {"name": "all", "apply_when": {}, "read": true}
    ]);
    let user = doc! {"id": "u1", "custom_data": {"n": "x"}};
    assert_eq!(
        residual(roles.clone(), user.clone()),
        Residual::Everything { exact: false }
    );
    let rules = Rules::new(
        RuleSet::from_json(
            "data_sources/mongodb-atlas/app/items/rules.json",
            &json!({"database": "app", "collection": "items", "roles": roles}),
            &LoadOptions::default(),
        )
        .unwrap(),
    );
    let ctx = rules.context().user(user).build().unwrap();
    let coll = rules.collection("app.items").unwrap();
    assert!(
        !coll
            .prepare(&ctx)
            .read(&doc! {"_id": 1, "arr": [1]})
            .visible
    );
}

#[test]
fn element_queries_are_paths_in_the_element() {
    let r = residual(
        json!([{"name": "r", "apply_when": {"items": {"$elemMatch": {"k": 1, "n": {"$gt": 2}}}}, "read": true}]),
        doc! {"id": "u1"},
    );
    assert_eq!(
        r,
        query(
            doc! {"items": {"$elemMatch": {"$and": [{"k": 1}, {"n": {"$gt": 2}}]}}},
            true
        )
    );
}

#[test]
fn many_roles_keep_the_residual_linear() {
    // Each role shows only what has a title, so each later role excludes the earlier ones:
    // spelled out, the residual grows with the square of the number of roles. (Few enough
    // roles that the residual stays under `MAX_QUERY_BYTES`.)
    let n = 40;
    let roles: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({"name": format!("r{i}"), "apply_when": {"team": format!("t{i}")},
                   "fields": {"title": {"read": true}}})
        })
        .collect();
    let r = residual(serde_json::Value::Array(roles), doc! {"id": "u1"});
    let Residual::Query { query, exact } = r else {
        panic!("{r:?}");
    };
    // Exclusions were dropped: a superset.
    assert!(!exact);
    let terms = query.get_array("$or").unwrap();
    assert_eq!(terms.len(), n);
    for (i, term) in terms.iter().enumerate() {
        let parts = term.as_document().unwrap().get_array("$and").unwrap();
        let excluded = parts
            .iter()
            .filter(|p| p.as_document().unwrap().contains_key("$nor"))
            .count();
        assert_eq!(excluded, i.min(super::roles::MAX_EXCLUDED), "term {i}");
        // The role's own `apply_when` and field test are always there.
        assert!(parts.contains(&bson::Bson::Document(doc! {"team": format!("t{i}")})));
    }
    // With at most MAX_EXCLUDED roles, every exclusion is kept: exact.
    let roles: Vec<serde_json::Value> = (0..=super::roles::MAX_EXCLUDED)
        .map(|i| {
            json!({"name": format!("r{i}"), "apply_when": {"team": format!("t{i}")},
                   "fields": {"title": {"read": true}}})
        })
        .collect();
    assert!(residual(serde_json::Value::Array(roles), doc! {"id": "u1"}).is_exact());
}

#[test]
fn the_insert_only_pattern_grants_no_read() {
    // Reads bind `%%prevRoot` to the stored document, so `write` is false and the role shows
    // nothing: exact (it was unknown, so `anyone` seemed to show every document).
    let r = residual(
        json!([
            {"name": "owner", "apply_when": {"owner_id": "%%user.id"}, "read": true},
            {"name": "anyone", "apply_when": {},
             "write": {"%%prevRoot": {"%exists": false}}, "additional_fields": {}}
        ]),
        doc! {"id": "u1"},
    );
    assert_eq!(r, query(doc! {"owner_id": {"$eq": "u1"}}, true));
    let r = residual(
        json!([{"name": "r", "apply_when": {"%%root": {"$exists": true}}, "read": true}]),
        doc! {"id": "u1"},
    );
    assert_eq!(r, Residual::Everything { exact: true });
    // Any other test of the whole document is not translated.
    let r = residual(
        json!([{"name": "r", "apply_when": {"%%root": {"a": 1}}, "read": true}]),
        doc! {"id": "u1"},
    );
    assert_eq!(r, Residual::Everything { exact: false });
}

#[test]
fn a_missing_substituted_operand_matches_nothing() {
    // Without `subscribedTo` in the custom data, `$in` (and `$nin`, and every comparison) is
    // false on every document: the read is nothing, exactly (it was unknown).
    for read in [
        json!({"owner_id": {"$in": "%%user.custom_data.subscribedTo"}}),
        json!({"owner_id": {"$nin": "%%user.custom_data.subscribedTo"}}),
        json!({"owner_id": {"$ne": "%%user.custom_data.subscribedTo"}}),
        json!({"n": {"$gt": "%%user.custom_data.subscribedTo"}}),
    ] {
        let r = residual(
            json!([{"name": "r", "apply_when": {}, "read": read}]),
            doc! {"id": "u1"},
        );
        assert_eq!(r, Residual::Nothing, "{read}");
    }
}

#[test]
fn a_huge_residual_widens_to_everything() {
    let roles: Vec<serde_json::Value> = (0..400)
        .map(|i| {
            json!({"name": format!("r{i}"), "apply_when": {format!("f{i}"): format!("v{i}")},
                   "fields": {format!("g{i}"): {"read": true}}})
        })
        .collect();
    let start = std::time::Instant::now();
    let r = residual(serde_json::Value::Array(roles), doc! {"id": "u1"});
    assert_eq!(r, Residual::Everything { exact: false });
    // Building stops once the query is too large: no quadratic (or worse) growth.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}
