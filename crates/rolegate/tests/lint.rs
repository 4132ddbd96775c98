//! `rolegate check` lints (`rolegate::lint`): one test per code — it fires on the mistake, with
//! its place and hint, and stays quiet on the correct form. The command line's side (every code
//! in `--format json`, `--deny-warnings`) is in `crates/rolegate-cli/tests/lint.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;

use rolegate::{
    Diagnostic, LoadOptions, RuleSet, Severity,
    lint::{LINT_CODES, check_warnings, constant, lint},
};
use serde_json::{Value, json};

const RULES: &str = "data_sources/mongodb-atlas/db/coll/rules.json";

fn rules(roles: Value) -> Value {
    json!({"database": "db", "collection": "coll", "roles": roles})
}

/// The lint warnings of a lone rule file.
fn lints(file: &Value) -> Vec<Diagnostic> {
    let set = RuleSet::from_json(RULES, file, &LoadOptions::default()).unwrap();
    let found = lint(&set).0;
    for d in &found {
        assert_eq!(d.severity, Severity::Warning);
        assert!(LINT_CODES.contains(&d.code), "{d}");
        assert!(d.hint.is_some(), "every lint has a hint: {d}");
        assert_eq!(&*d.place.file, RULES);
        assert!(!d.message.ends_with('.'), "{d}");
    }
    found
}

fn codes(file: &Value) -> Vec<&'static str> {
    lints(file).iter().map(|d| d.code).collect()
}

fn only(file: &Value, code: &str) -> Diagnostic {
    let found = lints(file);
    assert_eq!(found.len(), 1, "exactly one `{code}` expected: {found:#?}");
    assert_eq!(found[0].code, code, "{}", found[0]);
    found[0].clone()
}

#[test]
fn constant_expressions_are_decided_exactly() {
    let parse = |v: Value| {
        let set = RuleSet::from_json(
            RULES,
            &rules(json!([{"name": "r", "apply_when": v, "read": true}])),
            &LoadOptions::default(),
        )
        .unwrap();
        let role = &set.policy(None, "db", "coll").unwrap().roles[0];
        constant(&role.apply_when.expr)
    };
    assert_eq!(parse(json!({})), Some(true));
    assert_eq!(parse(json!(true)), Some(true));
    assert_eq!(parse(json!({"%%true": true})), Some(true));
    assert_eq!(parse(json!({"%%false": false})), Some(true));
    assert_eq!(parse(json!({"%%true": {"$eq": true}})), Some(true));
    assert_eq!(parse(json!({"%or": [{"%%true": false}, {}]})), Some(true));
    assert_eq!(parse(json!(false)), Some(false));
    assert_eq!(parse(json!({"%%true": false})), Some(false));
    assert_eq!(parse(json!({"%not": {}})), Some(false));
    assert_eq!(parse(json!({"%%user.id": "x"})), None);
    assert_eq!(parse(json!({"owner": "x"})), None);
    assert_eq!(parse(json!({"%%true": {"%function": {"name": "f"}}})), None);
}

#[test]
fn unreachable_role_after_a_role_that_always_applies() {
    for always in [
        json!({"name": "all", "apply_when": {}, "read": true}),
        json!({"name": "all", "read": true}),
        json!({"name": "all", "apply_when": true, "read": true}),
        json!({"name": "all", "apply_when": {"%%true": true}, "read": true}),
    ] {
        let file = rules(json!([
            always,
            {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true, "write": true}
        ]));
        let d = only(&file, "unreachable-role");
        assert_eq!(d.place.json_path, "roles[1]");
        assert!(
            d.message.contains("role `all` before it always applies"),
            "{d}"
        );
        assert!(d.hint.unwrap().contains("move it before `all`"));
    }
    // The right order is quiet.
    let file = rules(json!([
        {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true, "write": true},
        {"name": "all", "apply_when": {}, "read": true}
    ]));
    assert!(codes(&file).is_empty());
}

#[test]
fn unreachable_role_with_the_same_or_a_false_apply_when() {
    let file = rules(json!([
        {"name": "a", "apply_when": {"owner": "%%user.id"}, "read": true},
        {"name": "b", "apply_when": {"owner": "%%user.id"}, "write": true}
    ]));
    let d = only(&file, "unreachable-role");
    assert_eq!(d.place.json_path, "roles[1]");
    assert!(d.message.contains("the same `apply_when`"), "{d}");

    let file = rules(json!([{"name": "never", "apply_when": {"%%true": false}, "read": true}]));
    let d = only(&file, "unreachable-role");
    assert_eq!(d.place.json_path, "roles[0].apply_when");
    assert!(d.message.contains("always false"), "{d}");
}

#[test]
fn role_grants_nothing() {
    for role in [
        json!({"name": "none", "apply_when": {}}),
        json!({"name": "none", "apply_when": {}, "read": false, "write": false}),
        json!({"name": "none", "apply_when": {}, "insert": true, "delete": true}),
        json!({"name": "none", "apply_when": {}, "fields": {"a": {"read": false}},
               "additional_fields": {"write": false}}),
        json!({"name": "none", "apply_when": {}, "read": true, "write": true,
               "document_filters": {"read": false, "write": false}}),
        json!({"name": "none", "apply_when": {}, "read": {"%%true": false}}),
        // `read: false` overrides field reads; `write: false` makes field writes imply nothing.
        json!({"name": "none", "apply_when": {}, "read": false, "write": false,
               "fields": {"a": {"read": true}}}),
    ] {
        let found = lints(&rules(json!([role])));
        let d = found
            .iter()
            .find(|d| d.code == "role-grants-nothing")
            .unwrap();
        assert_eq!(d.place.json_path, "roles[0]");
        assert!(
            d.hint.as_deref().unwrap().contains("remove the role"),
            "{d}"
        );
    }
    // A deny role before others says why it may be intended.
    let file = rules(json!([
        {"name": "banned", "apply_when": {"%%user.custom_data.banned": true}, "read": false, "write": false},
        {"name": "all", "apply_when": {}, "read": true}
    ]));
    let d = only(&file, "role-grants-nothing");
    assert!(d.hint.unwrap().contains("later roles are not tried"));
    // Roles that can grant something are quiet.
    for role in [
        json!({"name": "r", "apply_when": {}, "read": true}),
        json!({"name": "r", "apply_when": {}, "write": {"owner": "%%user.id"}}),
        json!({"name": "r", "apply_when": {}, "fields": {"a": {"fields": {"b": {"read": true}}}}}),
        json!({"name": "r", "apply_when": {}, "additional_fields": {"write": {"%%user.id": "x"}}}),
        json!({"name": "r", "apply_when": {}, "read": false, "write": true}),
        json!({"name": "r", "apply_when": {}, "read": true, "document_filters": {"read": false, "write": {"owner": "%%user.id"}}}),
        // Insert-only: writes are possible (for inserts), reads are not.
        json!({"name": "r", "apply_when": {}, "write": {"%%prevRoot": {"%exists": false}}}),
    ] {
        assert!(codes(&rules(json!([role.clone()]))).is_empty(), "{role}");
    }
}

#[test]
fn write_false_beside_field_level_writes() {
    // Spec U11: the fields are not writable, whatever the field rules say.
    let file = rules(
        json!([{"name": "r", "apply_when": {}, "read": true, "write": false,
        "fields": {"status": {"write": true}, "notes": {"write": {"owner": "%%user.id"}}, "x": {"write": false}}}]),
    );
    let found = lints(&file);
    let d = found
        .iter()
        .find(|d| d.code == "write-false-overrides-fields")
        .unwrap();
    assert_eq!(d.place.json_path, "roles[0].write");
    assert!(d.message.contains("`fields.status`, `fields.notes`"), "{d}");
    assert!(!d.message.contains("fields.x"), "{d}");
    assert!(d.message.contains("U11"), "{d}");
    assert_eq!(
        d.hint.as_deref(),
        Some("remove `write: false` to let the field-level rules decide")
    );
    // Undefined `write` lets the field rules decide: quiet.
    let file = rules(json!([{"name": "r", "apply_when": {}, "read": true,
        "fields": {"status": {"write": true}}}]));
    assert!(codes(&file).is_empty());
}

#[test]
fn read_false_beside_field_level_reads() {
    let file = rules(json!([{"name": "r", "apply_when": {}, "read": false,
        "fields": {"title": {"read": true}, "a": {"fields": {"b": {"read": true}}}},
        "additional_fields": {"write": {"owner": "%%user.id"}}}]));
    let d = only(&file, "read-false-overrides-fields");
    assert_eq!(d.place.json_path, "roles[0].read");
    assert!(
        d.message.contains("`fields.title`, `fields.a.fields.b`"),
        "{d}"
    );
}

#[test]
fn read_or_write_true_beside_restricting_field_rules() {
    let file = rules(json!([{"name": "r", "apply_when": {}, "read": true,
        "fields": {"secret": {"read": false}, "shown": {"read": true}}}]));
    let d = only(&file, "field-rules-overridden");
    assert_eq!(d.place.json_path, "roles[0].read");
    assert!(d.message.contains("`fields.secret`"), "{d}");
    assert!(!d.message.contains("shown"), "{d}");
    let file = rules(json!([{"name": "r", "apply_when": {}, "write": true,
        "fields": {"locked": {"write": false}}}]));
    let d = only(&file, "field-rules-overridden");
    assert_eq!(d.place.json_path, "roles[0].write");
    assert!(d.message.contains("readable and writable"), "{d}");
}

#[test]
fn filters_with_conflicting_projections() {
    let file = json!({"database": "db", "collection": "coll",
    "roles": [{"name": "r", "apply_when": {}, "read": true}],
    "filters": [
        {"name": "inc", "apply_when": {}, "query": {}, "projection": {"_id": 0, "a": 1}},
        {"name": "none", "apply_when": {}, "query": {"x": 1}},
        {"name": "exc", "apply_when": {"%%user.id": "x"}, "query": {}, "projection": {"b": 0}},
        {"name": "never", "apply_when": false, "query": {}, "projection": {"c": 0}},
        {"name": "inc2", "apply_when": {}, "query": {}, "projection": {"d": true}}
    ]});
    let d = only(&file, "filter-projection-conflict");
    assert_eq!(d.place.json_path, "filters[2].projection");
    assert!(
        d.message.contains(
            "filter `exc` has an exclusive projection but filter `inc` has an inclusive one"
        ),
        "{d}"
    );
}

#[test]
fn fields_absent_from_the_schema() {
    let file = json!({"database": "db", "collection": "coll",
        "roles": [{"name": "r", "apply_when": {}, "fields": {
            "_id": {"read": true},
            "title": {"read": true},
            "titles": {"read": true},
            "address": {"fields": {"zip": {"read": true}, "street": {"read": true}}},
            "tags": {"fields": {"label": {"read": true}, "color": {"read": true}}},
            "x-custom": {"read": true}
        }}],
        "schema": {"properties": {
            "_id": {"bsonType": "objectId"},
            "title": {"bsonType": "string"},
            "address": {"bsonType": "object", "properties": {"zip": {"bsonType": "string"}}},
            "tags": {"bsonType": "array", "items": {"bsonType": "object", "properties": {"label": {"bsonType": "string"}}}}
        }, "patternProperties": {"^x-": {}}}});
    let found = lints(&file);
    let got: Vec<(&str, &str, Option<&str>)> = found
        .iter()
        .map(|d| (d.code, d.place.json_path.as_str(), d.hint.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "field-not-in-schema",
                "roles[0].fields.titles",
                Some("did you mean `title`?")
            ),
            (
                "field-not-in-schema",
                "roles[0].fields.address.fields.street",
                Some("add it to the schema's `properties`, or fix the field name")
            ),
            (
                "field-not-in-schema",
                "roles[0].fields.tags.fields.color",
                Some("add it to the schema's `properties`, or fix the field name")
            ),
        ]
    );
    assert!(found[1].message.contains("`address.street`"));
    // No schema, or a schema without properties: nothing to compare with.
    let file = json!({"database": "db", "collection": "coll",
        "roles": [{"name": "r", "apply_when": {}, "fields": {"anything": {"read": true}}}],
        "schema": {"title": "Coll"}});
    assert!(codes(&file).is_empty());
}

#[test]
fn unknown_keys_are_warnings_with_a_stable_code_and_hint() {
    let file = rules(json!([{"name": "r", "apply_when": {}, "read": true,
        "document_filter": {"read": true}, "colour": "red"}]));
    let set = RuleSet::from_json(RULES, &file, &LoadOptions::default()).unwrap();
    let warnings = check_warnings(&set).0;
    let hints: Vec<(&str, Option<&str>)> = warnings
        .iter()
        .filter(|d| d.code == "unknown-key")
        .map(|d| (d.place.json_path.as_str(), d.hint.as_deref()))
        .collect();
    assert_eq!(hints.len(), 2);
    assert_eq!(
        hints[0],
        (
            "roles[0].document_filter",
            Some("did you mean `document_filters`?")
        )
    );
    assert_eq!(hints[1].0, "roles[0].colour");
    assert!(
        hints[1]
            .1
            .unwrap()
            .starts_with("known keys: `name`, `apply_when`")
    );
}

#[test]
fn undefined_functions_warn_for_a_lone_file_and_fail_an_app() {
    let file = rules(
        json!([{"name": "r", "apply_when": {"%%true": {"%function": {"name": "isAdmin"}}}, "read": true}]),
    );
    let set = RuleSet::from_json(RULES, &file, &LoadOptions::default()).unwrap();
    let d = check_warnings(&set)
        .0
        .into_iter()
        .find(|d| d.code == "undefined-function")
        .unwrap();
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.place.json_path, "roles[0].apply_when");
    assert_eq!(d.hint.as_deref(), Some("define it under `functions/`"));

    let mut files = BTreeMap::new();
    files.insert(RULES.to_string(), file);
    let e = RuleSet::from_files(&files, &LoadOptions::default()).unwrap_err();
    assert!(
        e.diagnostics
            .errors()
            .any(|d| d.code == "undefined-function")
    );
}

#[test]
fn sync_incompatible_roles_when_sync_is_configured() {
    let mut files = BTreeMap::new();
    files.insert(
        "sync/config.json".to_string(),
        json!({"type": "flexible", "state": "enabled", "development_mode_enabled": false,
               "service_name": "mongodb-atlas", "database_name": "db",
               "queryable_fields_names": ["owner"]}),
    );
    files.insert(
        RULES.to_string(),
        rules(json!([{"name": "r", "apply_when": {}, "read": true, "write": true}])),
    );
    let set = RuleSet::from_files(&files, &LoadOptions::default()).unwrap();
    let d = check_warnings(&set)
        .0
        .into_iter()
        .find(|d| d.code == "sync-incompatible-role")
        .unwrap();
    assert_eq!(d.place.json_path, "roles[0]");
    // Without Sync the same role is fine.
    files.remove("sync/config.json");
    let set = RuleSet::from_files(&files, &LoadOptions::default()).unwrap();
    assert!(check_warnings(&set).0.is_empty());
}

#[test]
fn what_the_spec_makes_invalid_stays_an_error() {
    let file = rules(json!([
        {"name": "a", "apply_when": {}, "read": true},
        {"name": "a", "apply_when": {}, "read": true},
        {"name": "x".repeat(101), "apply_when": {}, "read": true}
    ]));
    let e = RuleSet::from_json(RULES, &file, &LoadOptions::default()).unwrap_err();
    let codes: Vec<&str> = e.diagnostics.errors().map(|d| d.code).collect();
    assert_eq!(codes, ["duplicate-role", "name-too-long"]);
}
