//! Sync configuration: Flexible Sync compatibility checks (spec §3.6), pre-2023 Flexible Sync
//! permissions (§1.4, D5), Partition-Based Sync (§3.7).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;

use crate::config::{LoadOptions, load_files};
use crate::error::{LoadError, Place, Severity};
use crate::expr::Expr;
use crate::rules::build::{BuildOptions, FunctionCheck, RuleSetBuilder};
use crate::rules::{RuleSet, SyncConfig};
use serde_json::{Value, json};

fn sync(fields: &[&str]) -> SyncConfig {
    SyncConfig {
        queryable_fields: fields.iter().map(|s| s.to_string()).collect(),
        ..SyncConfig::default()
    }
}

/// A case-style rule set: Sync on `mongodb-atlas` with `sync`, and these collection rules.
fn build(sync: SyncConfig, collection_rules: Value) -> Result<RuleSet, LoadError> {
    let mut b = RuleSetBuilder::new("case", BuildOptions::default());
    b.set_sync("mongodb-atlas", sync);
    b.add_collection_rules(
        "mongodb-atlas",
        None,
        &collection_rules,
        Place::file("rules.json"),
    );
    b.finish()
}

fn items(roles: Value) -> Value {
    json!({"database": "app", "collection": "items", "roles": roles})
}

fn reasons(e: &LoadError) -> Vec<String> {
    e.diagnostics.errors().map(|d| d.message.clone()).collect()
}

fn files(entries: &[(&str, Value)]) -> BTreeMap<String, Value> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn compatible_roles_load() {
    let set = build(
        sync(&["owner_id"]),
        items(json!([{"name": "owner", "apply_when": {},
            "document_filters": {"read": {"owner_id": "%%user.id"}, "write": {"owner_id": "%%user.id"}},
            "read": true, "write": true, "insert": {"owner_id": "%%user.id"}, "delete": true}])),
    )
    .unwrap();
    let role = &set.policy(None, "app", "items").unwrap().roles[0];
    assert!(role.sync_incompatible.is_none());
    assert!(set.warnings.0.is_empty(), "{:?}", set.warnings);
}

#[test]
fn apply_when_cannot_read_the_document() {
    // Conformance `sync_role_with_root_in_apply_when_incompatible`.
    let e = build(
        sync(&["owner_id", "collaborators", "team"]),
        items(
            json!([{"name": "bad", "apply_when": {"%%root.owner_id": "%%user.id"},
            "document_filters": {"read": true, "write": true}, "read": true, "write": true}]),
        ),
    )
    .unwrap_err();
    let d = e.diagnostics.errors().next().unwrap();
    assert!(d.place.json_path.starts_with("roles[0].apply_when"));
    // Bare field names read the document, too.
    let e = build(
        sync(&["owner_id"]),
        items(
            json!([{"name": "bad", "apply_when": {"owner_id": "%%user.id"},
            "document_filters": {"read": true, "write": true}, "read": true, "write": true}]),
        ),
    )
    .unwrap_err();
    assert!(e.diagnostics.has_errors());
    // ... while %function and %%user are fine (conformance `sync_function_allowed_in_apply_when`).
    let mut b = RuleSetBuilder::new(
        "case",
        BuildOptions {
            function_check: FunctionCheck::Off,
        },
    );
    b.set_sync("mongodb-atlas", sync(&["owner_id"]));
    b.add_collection_rules(
        "mongodb-atlas",
        None,
        &items(json!([{"name": "fnRole",
            "apply_when": {"%%true": {"%function": {"name": "isOwner", "arguments": ["%%user.id"]}}},
            "document_filters": {"read": true, "write": true}, "read": true, "write": true}])),
        Place::file("rules.json"),
    );
    assert!(b.finish().is_ok());
}

#[test]
fn field_level_permissions_on_id_are_errors() {
    // Conformance `sync_field_level_on_id_incompatible`.
    let e = build(
        sync(&["owner_id", "collaborators", "team"]),
        items(json!([{"name": "bad", "apply_when": {},
            "document_filters": {"read": true, "write": true},
            "fields": {"_id": {"read": true, "write": false}},
            "additional_fields": {"read": true, "write": true}}])),
    )
    .unwrap_err();
    assert_eq!(
        reasons(&e),
        vec!["field-level permissions on _id are not Sync compatible"]
    );
    assert_eq!(
        e.diagnostics.errors().next().unwrap().place.json_path,
        "roles[0].fields._id"
    );
}

#[test]
fn document_filters_may_only_use_queryable_fields() {
    // Conformance `sync_document_filter_non_queryable_field_incompatible`.
    let e = build(
        sync(&["owner_id", "collaborators", "team"]),
        items(json!([{"name": "bad", "apply_when": {},
            "document_filters": {"read": {"secretFlag": true}, "write": false},
            "read": true, "write": true}])),
    )
    .unwrap_err();
    assert_eq!(
        reasons(&e),
        vec!["document filter references non-queryable field 'secretFlag'"]
    );
    // insert / delete, nested logical operators, dotted paths.
    let e = build(
        sync(&["owner_id"]),
        items(json!([{"name": "bad", "apply_when": {},
            "document_filters": {"read": {"$or": [{"owner_id": "%%user.id"}, {"team.name": "x"}]}, "write": false},
            "insert": {"kind": "a"}, "delete": {"%%user.id": "x"},
            "read": true, "write": true}])),
    )
    .unwrap_err();
    assert_eq!(
        reasons(&e),
        vec![
            "document filter references non-queryable field 'team.name'",
            "`insert` expression references non-queryable field 'kind'",
        ]
    );
}

#[test]
fn queryable_fields_include_collection_lists_and_id() {
    let mut s = sync(&["owner_id"]);
    s.collection_queryable_fields
        .insert("items".into(), vec!["team".into()]);
    s.collection_queryable_fields
        .insert("other".into(), vec!["color".into()]);
    let role = json!({"name": "r", "apply_when": {},
        "document_filters": {"read": {"team": "%%user.custom_data.team"}, "write": {"_id": "%%user.id"}},
        "read": true, "write": true});
    assert!(build(s.clone(), items(json!([role.clone()]))).is_ok());
    // `team` is queryable in `items` only.
    let e = build(
        s.clone(),
        json!({"database": "app", "collection": "other", "roles": [role]}),
    )
    .unwrap_err();
    assert_eq!(
        reasons(&e),
        vec!["document filter references non-queryable field 'team'"]
    );
    // Default roles: any collection's list counts.
    let mut b = RuleSetBuilder::new("case", BuildOptions::default());
    b.set_sync("mongodb-atlas", s);
    b.add_default_rule(
        "mongodb-atlas",
        &json!({"roles": [{"name": "d", "apply_when": {},
            "document_filters": {"read": {"color": "red"}, "write": false}, "read": true, "write": true}]}),
        Place::file("default_rule.json"),
    );
    assert!(b.finish().is_ok());
}

#[test]
fn incompatible_roles_load_but_are_marked() {
    let cases = [
        (
            json!({"name": "r", "apply_when": {}, "read": true, "write": true}),
            "`document_filters` is not defined",
        ),
        (
            json!({"name": "r", "apply_when": {}, "document_filters": {"read": true}, "read": true}),
            "`document_filters.write` is not defined",
        ),
        (
            json!({"name": "r", "apply_when": {}, "document_filters": {"read": true, "write": true},
                   "read": {"%%user.custom_data.ok": true}}),
            "top-level `read` is not a boolean",
        ),
        (
            json!({"name": "r", "apply_when": {}, "document_filters": {"read": true, "write": true},
                   "fields": {"a": {"fields": {"b": {"write": {"%%user.id": "x"}}}}}}),
            "field-level permission `fields.a.fields.b.write` is not a boolean",
        ),
        (
            json!({"name": "r", "apply_when": {}, "document_filters": {"read": true, "write": true},
                   "additional_fields": {"read": {"%%user.id": "x"}}}),
            "field-level permission `additional_fields.read` is not a boolean",
        ),
    ];
    for (role, reason) in cases {
        let set = build(sync(&["owner_id"]), items(json!([role]))).unwrap();
        let role = &set.policy(None, "app", "items").unwrap().roles[0];
        assert_eq!(role.sync_incompatible.as_deref(), Some(reason));
        let w = &set.warnings.0[0];
        assert_eq!(w.code, "sync-incompatible-role");
        assert_eq!(w.severity, Severity::Warning);
    }
}

#[test]
fn roles_without_sync_are_not_checked() {
    let mut b = RuleSetBuilder::new("case", BuildOptions::default());
    b.add_collection_rules(
        "mongodb-atlas",
        None,
        &items(
            json!([{"name": "r", "apply_when": {"owner_id": "%%user.id"},
            "fields": {"_id": {"read": true}}, "read": true}]),
        ),
        Place::file("rules.json"),
    );
    let set = b.finish().unwrap();
    assert!(
        set.policy(None, "app", "items").unwrap().roles[0]
            .sync_incompatible
            .is_none()
    );
}

#[test]
fn sync_config_in_an_app_selects_its_data_source() {
    let rules = items(json!([{"name": "r", "apply_when": {}, "read": true, "write": true}]));
    let sync_config = json!({"type": "flexible", "state": "enabled", "service_name": "mongodb-atlas",
        "database_name": "app", "queryable_fields_names": ["owner_id"],
        "permissions": {"rules": {}, "defaultRoles": []}});
    let set = load_files(
        &files(&[
            ("sync/config.json", sync_config.clone()),
            (
                "data_sources/mongodb-atlas/app/items/rules.json",
                rules.clone(),
            ),
            ("data_sources/other/app/items/rules.json", rules.clone()),
        ]),
        &LoadOptions::default(),
    )
    .unwrap();
    let synced = set.policy(Some("mongodb-atlas"), "app", "items").unwrap();
    assert_eq!(
        synced.sync.unwrap().queryable_fields,
        vec!["owner_id".to_string()]
    );
    assert!(synced.roles[0].sync_incompatible.is_some());
    let other = set.policy(Some("other"), "app", "items").unwrap();
    assert!(other.sync.is_none());
    assert!(other.roles[0].sync_incompatible.is_none());

    // A disabled sync has no effect.
    let mut disabled = sync_config;
    disabled["state"] = json!("disabled");
    let set = load_files(
        &files(&[
            ("sync/config.json", disabled),
            ("data_sources/mongodb-atlas/app/items/rules.json", rules),
        ]),
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(set.data_sources["mongodb-atlas"].sync.is_none());
}

#[test]
fn pre_2023_flexible_sync_permissions_are_mapped() {
    let config = json!({
        "type": "flexible", "state": "enabled", "service_name": "mongodb-atlas", "database_name": "todo",
        "permissions": {
            "rules": {"Item": [{"name": "write-own-items", "applyWhen": {}, "read": true,
                                 "write": {"owner_id": "%%user.id"}}]},
            "defaultRoles": [
                {"name": "admin", "applyWhen": {"%%user.custom_data.isTeamAdmin": true},
                 "read": {"team": "%%user.custom_data.team"}},
                {"name": "user", "applyWhen": {}, "read": {"team": "%%user.custom_data.team"},
                 "write": {"owner_id": "%%user.id"}}
            ]
        },
        "queryable_fields_names": ["owner_id", "team"]
    });
    let set = load_files(
        &files(&[
            ("sync/config.json", config.clone()),
            (
                "data_sources/mongodb-atlas/todo/Item/rules.json",
                json!({"database": "todo", "collection": "Item", "roles": [
                    {"name": "old", "apply_when": {}, "document_filters": {"read": true, "write": true}, "read": true}]}),
            ),
        ]),
        &LoadOptions::default(),
    )
    .unwrap();
    // Type rules replace the collection's roles (no fallback to default roles, D5).
    let item = set.policy(None, "todo", "Item").unwrap();
    assert_eq!(item.roles.len(), 1);
    let r = &item.roles[0];
    assert_eq!(r.name, "write-own-items");
    let df = r.document_filters.as_ref().unwrap();
    assert_eq!(df.read.as_ref().unwrap().expr, Expr::Bool(true));
    assert!(matches!(
        df.write.as_ref().unwrap().expr,
        Expr::Test { .. } | Expr::All(_)
    ));
    for p in [&r.read, &r.write, &r.insert, &r.delete] {
        assert_eq!(p.as_ref().unwrap().expr, Expr::Bool(true));
    }
    assert_eq!(r.search, Some(true));
    assert!(r.sync_incompatible.is_none());
    assert!(
        set.warnings
            .0
            .iter()
            .any(|d| d.code == "legacy-sync-permissions")
    );

    // Default roles; a missing `write` maps to false (D5).
    let other = set.policy(None, "todo", "Other").unwrap();
    assert_eq!(other.roles.len(), 2);
    let admin = &other.roles[0];
    assert_eq!(
        admin
            .document_filters
            .as_ref()
            .unwrap()
            .write
            .as_ref()
            .unwrap()
            .expr,
        Expr::Bool(false)
    );
    assert_ne!(admin.apply_when.expr, Expr::always());
    assert_eq!(
        admin.apply_when.place.json_path,
        "permissions.defaultRoles[0].applyWhen"
    );

    // Sync checks apply to the mapped roles.
    let mut bad = config;
    bad["permissions"]["defaultRoles"][1]["read"] = json!({"secret": true});
    let e = load_files(
        &files(&[("sync/config.json", bad)]),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        reasons(&e),
        vec!["document filter references non-queryable field 'secret'"]
    );
}

#[test]
fn pre_2023_type_rules_need_a_database() {
    let e = load_files(
        &files(&[(
            "sync/config.json",
            json!({"type": "flexible", "service_name": "mongodb-atlas",
                "permissions": {"rules": {"Item": [{"name": "r", "applyWhen": {}, "read": true, "write": true}]}}}),
        )]),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(reasons(&e)[0].contains("database_name"));
}

#[test]
fn partition_based_sync_permissions() {
    let set = load_files(
        &files(&[(
            "sync/config.json",
            json!({"state": "enabled", "database_name": "todo", "service_name": "mongodb-atlas",
                "partition": {"key": "_partition", "type": "string", "permissions": {
                    "read": {"%%user.custom_data.readPartitions": "%%partition"},
                    "write": {"%%user.id": "%%partition"}}}}),
        )]),
        &LoadOptions::default(),
    )
    .unwrap();
    let pbs = set.data_sources["mongodb-atlas"]
        .partition_sync
        .as_ref()
        .unwrap();
    assert_eq!(pbs.read.place.json_path, "partition.permissions.read");

    // Conformance `pbs_root_expansion_invalid`.
    let mut b = RuleSetBuilder::new("case", BuildOptions::default());
    b.set_partition_permissions(
        "mongodb-atlas",
        &json!({"read": {"%%root.status": "new"}, "write": false}),
        Place::file("partition_permissions"),
    );
    let e = b.finish().unwrap_err();
    assert!(
        reasons(&e)
            .iter()
            .any(|r| r.contains("do not know how to expand '%%root'")),
        "{:?}",
        reasons(&e)
    );

    // Service config.json with embedded sync (legacy layout) and %function permissions.
    let set = load_files(
        &files(&[
            (
                "services/mongodb-atlas/config.json",
                json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {"sync": {
                    "state": "enabled", "database_name": "tracker", "partition": {"key": "_partition",
                    "type": "string", "permissions": {
                        "read": {"%%true": {"%function": {"name": "canReadPartition", "arguments": ["%%partition"]}}},
                        "write": {"%%true": {"%function": {"name": "canWritePartition", "arguments": ["%%partition"]}}}}}}}}),
            ),
            ("functions/canReadPartition/source.js", Value::Null),
        ]),
        &LoadOptions::default(),
    );
    let e = set.unwrap_err();
    assert!(
        reasons(&e)[0].contains("`canWritePartition`"),
        "{:?}",
        reasons(&e)
    );
}
