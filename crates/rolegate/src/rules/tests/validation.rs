//! Validation of roles (spec §1.6) and filters (§1.7): errors, warnings and hints, through the
//! single-object entry points of `rules::build`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use crate::error::{Diagnostics, Place, Severity};
use crate::expr::{Dialect, Expr, Operand, Site, parse_expr};
use crate::rules::build::{
    BuildOptions, FunctionCheck, RoleContext, RuleSetBuilder, build_collection_rules,
    build_default_rule, build_filter, build_function_config, build_role, build_service_rule,
    build_value,
};
use serde_json::{Value, json};

fn place() -> Place {
    Place::file("rules.json")
}

fn role(json: Value) -> (crate::rules::Role, Diagnostics) {
    let mut diags = Diagnostics::default();
    let role = build_role(&json, RoleContext::default(), &place(), &mut diags).unwrap();
    (role, diags)
}

fn codes(diags: &Diagnostics, severity: Severity) -> Vec<&'static str> {
    diags
        .0
        .iter()
        .filter(|d| d.severity == severity)
        .map(|d| d.code)
        .collect()
}

fn expr(json: Value, site: Site) -> Expr {
    let mut diags = Diagnostics::default();
    let e = parse_expr(&json, Dialect::MongoDb, site, &place(), &mut diags);
    assert!(!diags.has_errors(), "{diags:?}");
    e
}

#[test]
fn a_full_role_keeps_every_part() {
    let (r, diags) = role(json!({
        "name": "owner",
        "apply_when": {"owner_id": "%%user.id"},
        "document_filters": {"read": true, "write": {"owner_id": "%%user.id"}},
        "insert": false,
        "delete": {"%%user.custom_data.admin": true},
        "search": false,
        "fields": {
            "name": {"read": true},
            "address": {"fields": {"zip": {"write": true}}, "additional_fields": {"read": true}}
        },
        "additional_fields": {"read": true, "write": false}
    }));
    assert!(diags.0.is_empty(), "{diags:?}");
    assert_eq!(r.name, "owner");
    assert_eq!(
        r.apply_when.expr,
        expr(json!({"owner_id": "%%user.id"}), Site::RoleApplyWhen)
    );
    assert_eq!(r.apply_when.place.json_path, "apply_when");
    // Undefined stays undefined (not false).
    assert!(r.read.is_none() && r.write.is_none());
    let df = r.document_filters.as_ref().unwrap();
    assert_eq!(df.read.as_ref().unwrap().expr, Expr::Bool(true));
    assert_eq!(
        df.write.as_ref().unwrap().place.json_path,
        "document_filters.write"
    );
    assert_eq!(r.insert.as_ref().unwrap().expr, Expr::Bool(false));
    assert_eq!(r.search, Some(false));
    let address = r.fields.get("address").unwrap();
    assert!(address.permissions.read.is_none());
    let zip = address.nested.get("zip").unwrap();
    assert_eq!(
        zip.permissions.write.as_ref().unwrap().expr,
        Expr::Bool(true)
    );
    assert_eq!(
        zip.permissions.write.as_ref().unwrap().place.json_path,
        "fields.address.fields.zip.write"
    );
    assert!(address.nested.additional.is_some());
    let additional = r.fields.additional.as_ref().unwrap();
    assert_eq!(additional.write.as_ref().unwrap().expr, Expr::Bool(false));
    assert!(r.sync_incompatible.is_none());
}

#[test]
fn unknown_keys_warn_with_a_hint() {
    let (r, diags) = role(json!({
        "name": "admin", "apply_when": {},
        "document_filter": {"read": true, "write": true},
        "read": true
    }));
    assert!(!diags.has_errors());
    let d = diags.0.iter().find(|d| d.code == "unknown-key").unwrap();
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.place.json_path, "document_filter");
    assert_eq!(d.hint.as_deref(), Some("did you mean `document_filters`?"));
    // The misspelled key is ignored.
    assert!(r.document_filters.is_none());
}

#[test]
fn apply_when_spelled_apply_when_in_camel_case_is_used_with_a_warning() {
    let (r, diags) = role(json!({
        "name": "admin",
        "applyWhen": {"%%user.custom_data.isAdmin": true},
        "read": true
    }));
    let d = diags.0.iter().find(|d| d.code == "legacy-key").unwrap();
    assert_eq!(d.severity, Severity::Warning);
    assert!(d.hint.as_deref().unwrap().contains("apply_when"));
    // Not ignored: ignoring it would give the role to everyone.
    assert_eq!(
        r.apply_when.expr,
        expr(
            json!({"%%user.custom_data.isAdmin": true}),
            Site::RoleApplyWhen
        )
    );
}

#[test]
fn missing_apply_when_applies_always_with_a_warning() {
    let (r, diags) = role(json!({"name": "owner", "insert": true}));
    assert_eq!(codes(&diags, Severity::Warning), vec!["missing-apply-when"]);
    assert_eq!(r.apply_when.expr, Expr::always());
}

#[test]
fn role_names_are_required_short_and_unique() {
    let mut diags = Diagnostics::default();
    let rules = json!({"database": "app", "collection": "items", "roles": [
        {"name": "r".repeat(101), "apply_when": {}},
        {"name": "same", "apply_when": {}},
        {"name": "same", "apply_when": {}},
        {"apply_when": {}},
        {"name": 5, "apply_when": {}},
        {"name": "", "apply_when": {}},
        "not a role"
    ]});
    build_collection_rules(&rules, "mongodb-atlas", None, &place(), None, &mut diags).unwrap();
    let messages: Vec<String> = diags.errors().map(|d| d.to_string()).collect();
    let find = |code: &str, path: &str| {
        diags
            .errors()
            .any(|d| d.code == code && d.place.json_path == path)
    };
    assert!(
        diags
            .errors()
            .any(|d| d.message == "role name limited to 100 characters"),
        "{messages:?}"
    );
    assert!(find("name-too-long", "roles[0].name"), "{messages:?}");
    assert!(find("duplicate-role", "roles[2].name"), "{messages:?}");
    assert!(find("missing-key", "roles[3]"), "{messages:?}");
    assert!(find("invalid-type", "roles[4].name"), "{messages:?}");
    assert!(find("invalid-name", "roles[5].name"), "{messages:?}");
    assert!(find("invalid-type", "roles[6]"), "{messages:?}");
    assert_eq!(diags.errors().count(), 6, "{messages:?}");
}

#[test]
fn search_must_be_a_boolean() {
    let (_, diags) = role(json!({"name": "s", "apply_when": {}, "search": {"%%true": true}}));
    let d = diags.errors().next().unwrap();
    assert_eq!(d.code, "invalid-type");
    assert_eq!(d.place.json_path, "search");
}

#[test]
fn dotted_field_names_are_rejected() {
    let (r, diags) = role(json!({"name": "d", "apply_when": {},
        "fields": {"address.zip": {"read": true}, "ok": {"fields": {"a.b": {"read": true}}}}}));
    let paths: Vec<&str> = diags
        .errors()
        .filter(|d| d.code == "dotted-field-name")
        .map(|d| d.place.json_path.as_str())
        .collect();
    assert_eq!(
        paths,
        vec!["fields[\"address.zip\"]", "fields.ok.fields[\"a.b\"]"]
    );
    assert!(r.fields.get("address.zip").is_none());
}

#[test]
fn role_expressions_use_the_role_sites() {
    // %%partition is for Partition-Based Sync only (conformance `config_partition_expansion_outside_pbs`).
    let (_, diags) = role(json!({"name": "p", "apply_when": {"%%partition": "x"}, "read": true}));
    assert!(diags.errors().any(|d| {
        d.message
            .contains("do not know how to expand '%%partition'")
    }));
    // %%this is for field-level rules.
    let (_, diags) = role(json!({"name": "t", "apply_when": {}, "read": {"%%this": 1}}));
    assert!(diags.has_errors());
    let (_, diags) = role(
        json!({"name": "t", "apply_when": {}, "fields": {"f": {"write": {"%%prev": {"$exists": false}}}}}),
    );
    assert!(!diags.has_errors(), "{diags:?}");
}

#[test]
fn malformed_expansions_are_load_errors() {
    // D8, as in the realm-js rn-connection-and-error Users rules.
    let (_, diags) = role(json!({"name": "ThisUser", "apply_when": {"user_id": "%%user.id%%"}}));
    let d = diags.errors().next().unwrap();
    assert_eq!(d.place.json_path, "apply_when.user_id");
}

#[test]
fn filters_are_validated() {
    let mut diags = Diagnostics::default();
    let f = build_filter(
        &json!({"name": "own", "apply_when": {"%%true": true},
                "query": {"owner_id": "%%user.id"}, "projection": {"_id": 0, "age": 1, "vote": true}}),
        &place(),
        &mut diags,
    )
    .unwrap();
    assert!(diags.0.is_empty(), "{diags:?}");
    assert_eq!(f.projection.len(), 3);
    assert!(matches!(
        f.query,
        Operand::Document(_) | Operand::Literal(_)
    ));

    // Document expansions in a filter's apply_when (conformance `filters_apply_when_with_root_invalid`).
    let mut diags = Diagnostics::default();
    build_filter(
        &json!({"name": "bad", "apply_when": {"%%root.owner_id": "%%user.id"}, "query": {}, "projection": {}}),
        &place(),
        &mut diags,
    );
    assert!(diags.has_errors());

    // Mixed projection, non-document query, expansion key, long name: all reported.
    let mut diags = Diagnostics::default();
    build_filter(
        &json!({"name": "f".repeat(101), "apply_when": {}, "query": [1], "projection": {"a": 1, "b": 0}}),
        &place(),
        &mut diags,
    );
    let got = codes(&diags, Severity::Error);
    assert_eq!(
        got,
        vec!["name-too-long", "invalid-type", "projection-conflict"]
    );
    let mut diags = Diagnostics::default();
    build_filter(
        &json!({"name": "k", "apply_when": {}, "query": {"$or": [{"%%user.id": "x"}]}, "projection": {"a": "yes"}}),
        &place(),
        &mut diags,
    );
    assert_eq!(
        codes(&diags, Severity::Error),
        vec!["expansion-key", "invalid-projection"]
    );
}

#[test]
fn filter_project_key_is_read_as_projection_with_a_hint() {
    let mut diags = Diagnostics::default();
    let f = build_filter(
        &json!({"name": "AnonymizeVotes", "apply_when": true, "query": {}, "project": {"_id": 0, "age": 1}}),
        &place(),
        &mut diags,
    )
    .unwrap();
    let d = diags.0.iter().find(|d| d.code == "unknown-key").unwrap();
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.hint.as_deref(), Some("did you mean `projection`?"));
    assert_eq!(f.projection.len(), 2);
}

#[test]
fn filter_project_key_is_ignored_beside_projection() {
    let mut diags = Diagnostics::default();
    let f = build_filter(
        &json!({"name": "f", "apply_when": {}, "projection": {"age": 1}, "project": {"_id": 0}}),
        &place(),
        &mut diags,
    )
    .unwrap();
    let d = diags.0.iter().find(|d| d.code == "unknown-key").unwrap();
    assert_eq!(d.message, "unknown key `project` in a filter is ignored");
    assert_eq!(d.place.json_path, "project");
    assert_eq!(d.hint.as_deref(), Some("did you mean `projection`?"));
    assert_eq!(f.projection.len(), 1);

    let mut diags = Diagnostics::default();
    build_filter(
        &json!({"name": "f", "apply_when": {}, "project": {"age": 1}}),
        &place(),
        &mut diags,
    )
    .unwrap();
    let d = diags.0.iter().find(|d| d.code == "unknown-key").unwrap();
    assert_eq!(
        d.message,
        "unknown key `project` in a filter is read as `projection`"
    );
    assert_eq!(d.place.json_path, "project");
}

#[test]
fn service_function_and_value_names_come_from_the_file_or_its_name() {
    let messages = |diags: &Diagnostics| -> Vec<(Severity, &'static str, String, String)> {
        diags
            .0
            .iter()
            .map(|d| {
                (
                    d.severity,
                    d.code,
                    d.place.json_path.clone(),
                    d.message.clone(),
                )
            })
            .collect()
    };
    let missing = |what: &str| {
        vec![(
            Severity::Error,
            "missing-key",
            String::new(),
            format!("{what} has no `name`"),
        )]
    };

    // Service rules: the file name, else an error (the rule is kept, nameless).
    let mut diags = Diagnostics::default();
    let r = build_service_rule(
        &json!({"actions": ["get"]}),
        Some("http"),
        &place(),
        &mut diags,
    );
    assert_eq!(r.unwrap().name, "http");
    assert!(diags.0.is_empty(), "{diags:?}");
    let mut diags = Diagnostics::default();
    let r = build_service_rule(&json!({"actions": ["get"]}), None, &place(), &mut diags);
    assert_eq!(r.unwrap().name, "");
    assert_eq!(messages(&diags), missing("service rule"));

    // Functions: the file's `name` wins over the directory name, with a warning.
    let mut diags = Diagnostics::default();
    let f = build_function_config(&json!({"name": "a"}), Some("b"), &place(), &mut diags);
    assert_eq!(f.unwrap().name, "a");
    assert_eq!(
        messages(&diags),
        vec![(
            Severity::Warning,
            "name-mismatch",
            "name".to_string(),
            "function `a` is configured in the directory of `b`; `a` is used".to_string()
        )]
    );
    let mut diags = Diagnostics::default();
    let f = build_function_config(&json!({}), Some("b"), &place(), &mut diags);
    assert_eq!(f.unwrap().name, "b");
    assert!(diags.0.is_empty(), "{diags:?}");
    let mut diags = Diagnostics::default();
    assert!(build_function_config(&json!({}), None, &place(), &mut diags).is_none());
    assert_eq!(messages(&diags), missing("function configuration"));

    // Values: a `name` that is not a string is an error, and the file name is used.
    let mut diags = Diagnostics::default();
    let v = build_value(
        &json!({"name": 5, "value": 1}),
        Some("v"),
        &place(),
        &mut diags,
    );
    assert_eq!(v.unwrap().0, "v");
    assert_eq!(
        messages(&diags),
        vec![(
            Severity::Error,
            "invalid-type",
            "name".to_string(),
            "`name` must be a string, not a number".to_string()
        )]
    );
    let mut diags = Diagnostics::default();
    assert!(build_value(&json!({"value": 1}), None, &place(), &mut diags).is_none());
    assert_eq!(messages(&diags), missing("value"));
}

#[test]
fn rule_files_check_their_keys_and_shapes() {
    let mut diags = Diagnostics::default();
    let rules = build_collection_rules(
        &json!({"database": "app", "collection": "items", "id": "x", "role": [], "roles": null, "filters": null}),
        "ds",
        None,
        &place(),
        None,
        &mut diags,
    )
    .unwrap();
    assert!(rules.roles.is_empty());
    let d = diags.0.iter().find(|d| d.code == "unknown-key").unwrap();
    assert_eq!(d.hint.as_deref(), Some("did you mean `roles`?"));

    let mut diags = Diagnostics::default();
    assert!(build_collection_rules(&json!({}), "ds", None, &place(), None, &mut diags).is_none());
    assert_eq!(
        diags.errors().next().unwrap().message,
        "rules file cannot be empty"
    );

    let mut diags = Diagnostics::default();
    build_collection_rules(
        &json!({"roles": []}),
        "ds",
        None,
        &place(),
        None,
        &mut diags,
    );
    assert_eq!(codes(&diags, Severity::Error), vec!["missing-key"]);

    let mut diags = Diagnostics::default();
    let d = build_default_rule(
        &json!({"roles": [{"name": "a", "apply_when": {}}], "filters": []}),
        &place(),
        None,
        &mut diags,
    )
    .unwrap();
    assert_eq!(d.roles.len(), 1);
    assert!(diags.0.is_empty());
}

#[test]
fn service_rules_default_when_to_true_and_read_bare_names_as_args() {
    let mut diags = Diagnostics::default();
    let r = build_service_rule(
        &json!({"name": "allowSend", "actions": ["send"]}),
        None,
        &place(),
        &mut diags,
    )
    .unwrap();
    assert_eq!(r.when.expr, Expr::always());
    let r = build_service_rule(
        &json!({"actions": ["get"], "when": {"url.host": "example.com"}}),
        Some("get"),
        &place(),
        &mut diags,
    )
    .unwrap();
    assert_eq!(r.name, "get");
    assert!(!diags.has_errors(), "{diags:?}");
    let mut roots = Vec::new();
    r.when.expr.visit_expansions(&mut |e| roots.push(e.root));
    assert_eq!(roots, vec![crate::expr::Root::Args]);
}

#[test]
fn builder_collects_a_rule_set_for_conformance_cases() {
    // Roughly what a conformance runner does with `collection_rules` + `default_rule` + `schema`.
    let mut b = RuleSetBuilder::new(
        "case",
        BuildOptions {
            function_check: FunctionCheck::Off,
        },
    );
    b.add_collection_rules(
        "mongodb-atlas",
        None,
        &json!({"database": "app", "collection": "items", "roles": [
            {"name": "fn", "apply_when": {"%%true": {"%function": {"name": "mocked"}}}, "read": true}
        ]}),
        Place::file("collection_rules"),
    );
    b.add_collection_schema(
        "mongodb-atlas",
        "app",
        "items",
        &json!({"bsonType": "object", "properties": {"n": {"bsonType": "int"}}}),
        Place::file("schema"),
    );
    b.add_default_rule(
        "mongodb-atlas",
        &json!({"roles": [{"name": "d", "apply_when": {}, "read": true}]}),
        Place::file("default_rule"),
    );
    b.add_function_config(
        &json!({"name": "fn2", "can_evaluate": {}}),
        None,
        Place::file("can_evaluate"),
    );
    let set = b.finish().unwrap();
    let p = set.policy(None, "app", "items").unwrap();
    assert_eq!(p.roles[0].name, "fn");
    assert!(p.schema.is_some());
    assert_eq!(set.policy(None, "app", "other").unwrap().roles[0].name, "d");
    assert_eq!(
        set.functions["fn2"].can_evaluate.as_ref().unwrap().expr,
        Expr::always()
    );
}

/// The builder collects inputs in any order and builds in `finish`: Sync settings are known
/// before the roles are parsed, so a role with Sync-compatible document filters is compatible.
#[test]
fn the_builder_assembles_sync_before_roles() {
    use crate::error::Place;
    use crate::rules::SyncConfig;
    use crate::rules::build::{BuildOptions, RuleSetBuilder};
    use serde_json::json;

    let mut b = RuleSetBuilder::new("example", BuildOptions::default());
    // Flexible Sync on data source `mongodb-atlas`, with `owner_id` queryable.
    b.set_sync(
        "mongodb-atlas",
        SyncConfig {
            queryable_fields: vec!["owner_id".into()],
            ..SyncConfig::default()
        },
    );
    b.add_collection_rules(
        "mongodb-atlas",
        None,
        &json!({"database": "app", "collection": "items", "roles": [{
            "name": "owner", "apply_when": {},
            "document_filters": {"read": {"owner_id": "%%user.id"}, "write": {"owner_id": "%%user.id"}},
            "read": true, "write": true
        }]}),
        Place::file("rules.json"),
    );
    let rules = b.finish().unwrap();
    let policy = rules.policy(None, "app", "items").unwrap();
    assert_eq!(policy.roles[0].name, "owner");
    assert!(policy.roles[0].sync_incompatible.is_none());
}
