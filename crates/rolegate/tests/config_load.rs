//! Loading apps: both directory layouts, in-memory apps, single files, and the refusals of
//! layout-level and legacy inputs (spec §1).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::path::Path;

use rolegate::{
    LoadError, LoadOptions, RuleSet, Severity,
    rules::{Expr, RoleSource, ValueDef},
};
use serde_json::{Value, json};

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn write_json(root: &Path, rel: &str, value: Value) {
    write(root, rel, &serde_json::to_string_pretty(&value).unwrap());
}

fn files(entries: &[(&str, Value)]) -> BTreeMap<String, Value> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn errors(e: &LoadError) -> Vec<String> {
    e.diagnostics.errors().map(|d| d.to_string()).collect()
}

fn has_error(e: &LoadError, code: &str, fragment: &str) -> bool {
    e.diagnostics
        .errors()
        .any(|d| d.code == code && d.message.contains(fragment))
}

fn has_warning(set: &RuleSet, code: &str) -> bool {
    set.warnings.0.iter().any(|d| d.code == code)
}

fn owner_role() -> Value {
    json!({
        "name": "owner",
        "apply_when": {"owner_id": "%%user.id"},
        "read": true,
        "write": true
    })
}

#[test]
fn loads_a_current_layout_app_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_json(
        root,
        "data_sources/mongodb-atlas/config.json",
        json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {"clusterName": "C0"}}),
    );
    write_json(
        root,
        "data_sources/mongodb-atlas/default_rule.json",
        json!({"roles": [{"name": "readAll", "apply_when": {}, "read": true}]}),
    );
    write_json(
        root,
        "data_sources/mongodb-atlas/app/items/rules.json",
        json!({
            "database": "app", "collection": "items",
            "roles": [
                {"name": "fn", "apply_when": {"%%true": {"%function": {"name": "isAdmin", "arguments": ["%%user.id"]}}},
                 "read": true, "write": true},
                owner_role()
            ],
            "filters": [{"name": "own", "apply_when": {"%%true": true}, "query": {"owner_id": "%%user.id"}, "projection": {"secret": 0}}]
        }),
    );
    write_json(
        root,
        "data_sources/mongodb-atlas/app/items/schema.json",
        json!({"bsonType": "object", "properties": {"owner_id": {"bsonType": "string"}}}),
    );
    write_json(
        root,
        "data_sources/mongodb-atlas/app/items/relationships.json",
        json!({}),
    );
    // Schema + relationships only: a rule object without roles (realm-cli).
    write_json(
        root,
        "data_sources/mongodb-atlas/app/logs/schema.json",
        json!({"bsonType": "object", "properties": {}}),
    );
    write_json(
        root,
        "data_sources/mongodb-atlas/app/logs/relationships.json",
        json!({}),
    );
    write_json(
        root,
        "values/adminIds.json",
        json!({"name": "adminIds", "value": ["a", "b"], "from_secret": false}),
    );
    write_json(
        root,
        "values/apiKey.json",
        json!({"name": "apiKey", "value": "apiKeySecret", "from_secret": true}),
    );
    write_json(
        root,
        "values/when.json",
        json!({"name": "when", "value": {"$date": {"$numberLong": "0"}}}),
    );
    write_json(
        root,
        "environments/production.json",
        json!({"values": {"tier": "prod"}}),
    );
    write_json(
        root,
        "functions/config.json",
        json!([{"name": "isAdmin", "private": true, "can_evaluate": {"%%user.data.email": {"%in": ["a@example.com"]}}}]),
    );
    write(root, "functions/isAdmin.js", "exports = () => true;");
    write(root, "functions/helper/source.js", "exports = () => 1;");
    write_json(root, "auth/providers.json", json!({"anon-user": {}}));
    write(root, ".git/HEAD", "ref: refs/heads/main");

    let set = RuleSet::load(root, &LoadOptions::default()).unwrap();
    let ds = &set.data_sources["mongodb-atlas"];
    assert_eq!(ds.default_rule.as_ref().unwrap().roles.len(), 1);
    let items = &ds.collections[&("app".to_string(), "items".to_string())];
    assert_eq!(items.roles.len(), 2);
    assert_eq!(items.filters.len(), 1);
    assert!(items.schema.is_some());
    assert_eq!(
        &*items.place.file,
        "data_sources/mongodb-atlas/app/items/rules.json"
    );
    let logs = &ds.collections[&("app".to_string(), "logs".to_string())];
    assert!(logs.roles.is_empty());
    assert!(logs.schema.is_some());

    // No collection roles → the default roles govern (U2).
    let policy = set.policy(None, "app", "logs").unwrap();
    assert_eq!(policy.role_source, RoleSource::Default);
    assert_eq!(policy.roles[0].name, "readAll");

    assert_eq!(
        set.values["apiKey"],
        ValueDef::Secret {
            secret_name: "apiKeySecret".into()
        }
    );
    assert!(
        matches!(&set.values["adminIds"], ValueDef::Plain(bson::Bson::Array(a)) if a.len() == 2)
    );
    assert!(matches!(
        &set.values["when"],
        ValueDef::Plain(bson::Bson::DateTime(_))
    ));
    assert_eq!(
        set.environments["production"].get_str("tier").unwrap(),
        "prod"
    );
    let f = &set.functions["isAdmin"];
    assert!(f.private);
    assert!(f.can_evaluate.is_some());
    assert!(set.functions.contains_key("helper"));
    assert!(set.warnings.errors().next().is_none());
}

#[test]
fn loads_a_legacy_layout_app_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_json(
        root,
        "services/mongodb-atlas/config.json",
        json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {"sync": {
            "state": "enabled", "database_name": "tracker",
            "partition": {"key": "_partition", "type": "string", "permissions": {
                "read": {"%%partition": "PUBLIC"}, "write": {"%%user.id": "%%partition"}}}}}}),
    );
    write_json(
        root,
        "services/mongodb-atlas/rules/app.items.json",
        json!({"database": "app", "collection": "items", "roles": [owner_role()], "schema": {"bsonType": "object", "properties": {}}}),
    );
    write_json(
        root,
        "services/mongodb-atlas/rules/app.with.dots.json",
        json!({"roles": [owner_role()]}),
    );
    write_json(
        root,
        "services/mongodb-atlas/default_rule.json",
        json!({"roles": [{"name": "none", "apply_when": {}, "read": false}]}),
    );
    write_json(
        root,
        "services/http/config.json",
        json!({"name": "http", "type": "http", "config": {}}),
    );
    write_json(
        root,
        "services/http/rules/access.json",
        json!({"name": "access", "actions": ["get", "post"], "when": {"%%args.url.host": {"%in": ["example.com"]}}}),
    );
    write_json(
        root,
        "services/twilio/rules/incoming.json",
        json!({"id": "5c44a26526ec81be5af7dc78", "name": "incoming"}),
    );

    let set = RuleSet::load(root, &LoadOptions::default()).unwrap();
    let ds = &set.data_sources["mongodb-atlas"];
    assert!(ds.partition_sync.is_some());
    assert!(ds.sync.is_none());
    assert!(ds.collections.contains_key(&("app".into(), "items".into())));
    // Namespace from the file name when the file has none: `<db>.<coll>` splits at the first dot.
    assert!(
        ds.collections
            .contains_key(&("app".into(), "with.dots".into()))
    );
    assert_eq!(ds.default_rule.as_ref().unwrap().roles[0].name, "none");
    let http = &set.services["http"];
    assert_eq!(http[0].actions, vec!["get", "post"]);
    // Exports omit empty arrays: no `actions` allows nothing, with a warning.
    assert!(set.services["twilio"][0].actions.is_empty());
    assert!(has_warning(&set, "missing-key"));
}

#[test]
fn legacy_default_role_file_is_the_default_rule() {
    let set = RuleSet::from_files(
        &files(&[(
            "services/mongodb/rules/defaultRole.json",
            json!({"roles": [{"name": "defaultRole", "apply_when": {}, "read": true, "write": true}]}),
        )]),
        &LoadOptions::default(),
    )
    .unwrap();
    let ds = &set.data_sources["mongodb"];
    assert_eq!(
        ds.default_rule.as_ref().unwrap().roles[0].name,
        "defaultRole"
    );
    assert!(has_warning(&set, "legacy-default-role-file"));
}

#[test]
fn collection_dir_with_only_a_schema_is_rejected() {
    // Conformance case `config_collection_dir_schema_only_rejected`.
    let e = RuleSet::from_files(
        &files(&[(
            "data_sources/mongodb-atlas/app/items/schema.json",
            json!({"bsonType": "object", "properties": {}}),
        )]),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(
        has_error(
            &e,
            "incomplete-collection-dir",
            "collection dir should contain a rules.json file and/or both schema.json and relationships.json files"
        ),
        "{e}"
    );
    // A lone schema file is fine: it is not a directory.
    assert!(
        RuleSet::from_json(
            "data_sources/mongodb-atlas/app/items/schema.json",
            &json!({"bsonType": "object", "properties": {}}),
            &LoadOptions::default()
        )
        .is_ok()
    );
}

#[test]
fn empty_rules_file_is_rejected() {
    let e = RuleSet::from_files(
        &files(&[("data_sources/mongodb-atlas/app/items/rules.json", json!({}))]),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(has_error(&e, "empty-rules", "rules file cannot be empty"));
}

#[test]
fn invalid_json_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "data_sources/mongodb-atlas/app/items/rules.json",
        "{\n  \"database\": \"app\",\n  \"collection\": \"items\"\n  \"roles\": []\n}\n",
    );
    let e = RuleSet::load(dir.path(), &LoadOptions::default()).unwrap_err();
    let d = e.diagnostics.errors().next().unwrap();
    assert_eq!(d.code, "invalid-json");
    assert_eq!(
        &*d.place.file,
        "data_sources/mongodb-atlas/app/items/rules.json"
    );
    assert!(d.message.contains("line 4 column 3"), "{}", d.message);
}

#[test]
fn single_file_stitch_app_config_is_refused() {
    let app = json!({"services": {"mongodb1": {"rules": {}}}, "authProviders": {}});
    let e = RuleSet::from_files(
        &files(&[("app_config.json", app.clone())]),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(has_error(
        &e,
        "legacy-format",
        "single-file Stitch app_config.json (2017) is not supported"
    ));
    let e = RuleSet::from_json("todo/app_config.json", &app, &LoadOptions::default()).unwrap_err();
    assert!(has_error(&e, "legacy-format", "app_config.json (2017)"));
    // By content, too.
    let e = RuleSet::from_json("export.json", &app, &LoadOptions::default()).unwrap_err();
    assert!(has_error(&e, "legacy-format", "app_config.json (2017)"));
}

#[test]
fn stitch_2017_rules_files_are_refused_by_name() {
    let old = json!({
        "namespace": "todo.items",
        "filters": [{"match_expression": {"owner_id": "%%user.id"}, "when": {"%%true": true}}],
        "fields": {"owner_id": {"valid": "%%user.id"}},
        "other_fields": {},
        "read": {"owner_id": "%%user.id"},
        "write": {"owner_id": "%%user.id"}
    });
    let e = RuleSet::from_json(
        "services/mongodb-atlas/rules/todo.items.json",
        &old,
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(has_error(
        &e,
        "legacy-format",
        "this is a 2017 Stitch rules file (`namespace`"
    ));
    assert!(has_error(&e, "legacy-format", "convert it to roles"));
    // Exactly one error: the file is not also reported key by key.
    assert_eq!(e.diagnostics.0.len(), 1, "{:?}", errors(&e));
}

#[test]
fn datalake_sources_have_no_rules() {
    let set = RuleSet::from_files(
        &files(&[
            (
                "data_sources/adf/config.json",
                json!({"name": "adf", "type": "datalake"}),
            ),
            (
                "data_sources/adf/db/coll/rules.json",
                json!({"database": "db", "collection": "coll", "roles": [owner_role()]}),
            ),
        ]),
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(set.data_sources["adf"].collections.is_empty());
    assert!(has_warning(&set, "datalake-rules-ignored"));
}

#[test]
fn undefined_functions_are_errors_in_apps_and_warnings_for_lone_files() {
    let rules = json!({"database": "app", "collection": "items", "roles": [
        {"name": "f", "apply_when": {"%%true": {"%function": {"name": "missing", "arguments": []}}}, "read": true}
    ]});
    let e = RuleSet::from_files(
        &files(&[(
            "data_sources/mongodb-atlas/app/items/rules.json",
            rules.clone(),
        )]),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(has_error(
        &e,
        "undefined-function",
        "function `missing` is not defined"
    ));
    let d = e.diagnostics.errors().next().unwrap();
    assert_eq!(d.place.json_path, "roles[0].apply_when");

    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/app/items/rules.json",
        &rules,
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(has_warning(&set, "undefined-function"));

    // Defined by a source file only: fine.
    let ok = RuleSet::from_files(
        &files(&[
            ("data_sources/mongodb-atlas/app/items/rules.json", rules),
            ("functions/missing/source.js", Value::Null),
        ]),
        &LoadOptions::default(),
    );
    assert!(ok.is_ok());
}

#[test]
fn functions_in_every_role_slot_are_checked_at_their_place() {
    let call = |name: &str| json!({"%%true": {"%function": {"name": name, "arguments": []}}});
    let rules = json!({"database": "app", "collection": "items", "roles": [{
        "name": "r",
        "apply_when": call("aw"),
        "document_filters": {"read": call("dr"), "write": call("dw")},
        "read": call("r"), "write": call("w"), "insert": call("i"), "delete": call("d"),
        "fields": {"a": {
            "read": call("far"),
            "fields": {"b": {"write": call("fabw")}},
            "additional_fields": {"write": call("faaw")}
        }},
        "additional_fields": {"read": call("ar")}
    }]});
    let e = RuleSet::from_files(
        &files(&[("data_sources/mongodb-atlas/app/items/rules.json", rules)]),
        &LoadOptions::default(),
    )
    .unwrap_err();
    let found: Vec<(String, String)> = e
        .diagnostics
        .errors()
        .filter(|d| d.code == "undefined-function")
        .map(|d| (d.message.clone(), d.place.json_path.clone()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("aw", "roles[0].apply_when"),
        ("dr", "roles[0].document_filters.read"),
        ("dw", "roles[0].document_filters.write"),
        ("r", "roles[0].read"),
        ("w", "roles[0].write"),
        ("i", "roles[0].insert"),
        ("d", "roles[0].delete"),
        ("far", "roles[0].fields.a.read"),
        ("fabw", "roles[0].fields.a.fields.b.write"),
        ("faaw", "roles[0].fields.a.additional_fields.write"),
        ("ar", "roles[0].additional_fields.read"),
    ]
    .iter()
    .map(|(name, path)| {
        (
            format!("function `{name}` is not defined in this app"),
            (*path).to_string(),
        )
    })
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn functions_in_filters_and_service_rules_are_checked() {
    let e = RuleSet::from_files(
        &files(&[
            (
                "services/http/rules/r.json",
                json!({"name": "r", "actions": ["get"], "when": {"%%true": {"%function": {"name": "gate"}}}}),
            ),
            (
                "data_sources/mongodb-atlas/default_rule.json",
                json!({"roles": [], "filters": [{"name": "f", "apply_when": {},
                    "query": {"team": {"%function": {"name": "teamOf", "arguments": ["%%user.id"]}}}}]}),
            ),
        ]),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(has_error(&e, "undefined-function", "`gate`"), "{e}");
    assert!(has_error(&e, "undefined-function", "`teamOf`"), "{e}");
}

#[test]
fn functions_in_elem_match_bodies_are_checked() {
    // Query form, operator form, and a query form under `$not`: each is an undefined-function
    // error at the place of its rule.
    let rules = json!({"database": "app", "collection": "items", "roles": [{
        "name": "r",
        "apply_when": {"tags": {"$elemMatch": {"owner": {"%function": {"name": "inQuery"}}}}},
        "read": {"n": {"$elemMatch": {"$eq": {"%function": {"name": "inOps"}}}}},
        "write": {"n": {"$not": {"$elemMatch": {"a": {"%function": {"name": "underNot"}}}}}}
    }]});
    let e = RuleSet::from_files(
        &files(&[("data_sources/mongodb-atlas/app/items/rules.json", rules)]),
        &LoadOptions::default(),
    )
    .unwrap_err();
    let found: Vec<(String, String)> = e
        .diagnostics
        .errors()
        .filter(|d| d.code == "undefined-function")
        .map(|d| (d.message.clone(), d.place.json_path.clone()))
        .collect();
    for (name, path) in [
        ("inQuery", "roles[0].apply_when"),
        ("inOps", "roles[0].read"),
        ("underNot", "roles[0].write"),
    ] {
        assert!(
            found
                .iter()
                .any(|(m, p)| m.contains(&format!("`{name}`")) && p == path),
            "{name} at {path} not reported: {found:?}"
        );
    }
}

#[test]
fn functions_in_schema_validate_are_checked() {
    let schema = json!({"bsonType": "object", "properties": {
        "owner_id": {"bsonType": "string",
                     "validate": {"%%true": {"%function": {"name": "ownerOk", "arguments": ["%%this"]}}}},
        "tags": {"bsonType": "array", "items": {"bsonType": "object", "properties": {
            "k": {"validate": {"%%this": {"$elemMatch": {"x": {"%function": {"name": "deepOk"}}}}}}
        }}}
    }});
    let rules = json!({"database": "app", "collection": "items", "roles": [
        {"name": "r", "apply_when": {}, "read": true}
    ]});
    let app = |with_functions: bool| {
        let mut entries = vec![
            (
                "data_sources/mongodb-atlas/app/items/rules.json",
                rules.clone(),
            ),
            (
                "data_sources/mongodb-atlas/app/items/schema.json",
                schema.clone(),
            ),
        ];
        if with_functions {
            entries.push(("functions/ownerOk/source.js", Value::Null));
            entries.push(("functions/deepOk/source.js", Value::Null));
        }
        files(&entries)
    };
    let e = RuleSet::from_files(&app(false), &LoadOptions::default()).unwrap_err();
    let found: Vec<(String, String, String)> = e
        .diagnostics
        .errors()
        .filter(|d| d.code == "undefined-function")
        .map(|d| {
            (
                d.message.clone(),
                d.place.file.to_string(),
                d.place.json_path.clone(),
            )
        })
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    let file = "data_sources/mongodb-atlas/app/items/schema.json";
    assert!(
        found.iter().any(|(m, f, p)| m.contains("`ownerOk`")
            && f == file
            && p == "properties.owner_id.validate"),
        "{found:?}"
    );
    assert!(
        found.iter().any(|(m, f, p)| m.contains("`deepOk`")
            && f == file
            && p == "properties.tags.items.properties.k.validate"),
        "{found:?}"
    );
    // Defined by the app: no error.
    assert!(RuleSet::from_files(&app(true), &LoadOptions::default()).is_ok());
    // A lone rule file with an embedded schema: a warning at the same kind of place.
    let lone = json!({"database": "app", "collection": "items", "roles": [
        {"name": "r", "apply_when": {}, "read": true}], "schema": schema});
    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/app/items/rules.json",
        &lone,
        &LoadOptions::default(),
    )
    .unwrap();
    let paths: Vec<&str> = set
        .warnings
        .0
        .iter()
        .filter(|d| d.code == "undefined-function")
        .map(|d| d.place.json_path.as_str())
        .collect();
    assert!(
        paths.contains(&"schema.properties.owner_id.validate"),
        "{paths:?}"
    );
}

#[test]
fn lone_files_are_read_as_their_path_or_content_says() {
    // A longer path holding an app path: data source, database and collection from the path.
    let set = RuleSet::from_json(
        "examples/app/backend/data_sources/atlas/sync/Kiosk/rules.json",
        &json!({"roles": [owner_role()]}),
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(
        set.data_sources["atlas"]
            .collections
            .contains_key(&("sync".into(), "Kiosk".into()))
    );

    // No app path: a roles-only document is a default rule of `mongodb-atlas`.
    let set = RuleSet::from_json(
        "source/includes/quick-start-default-role.json",
        &json!({"roles": [owner_role()]}),
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(set.data_sources["mongodb-atlas"].default_rule.is_some());

    // A value file.
    let set = RuleSet::from_json(
        "values/joeID.json",
        &json!({"name": "joeID", "value": ["x"], "private": false}),
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(set.values.contains_key("joeID"));

    // Unknown content.
    let e = RuleSet::from_json("notes.json", &json!({"hello": 1}), &LoadOptions::default())
        .unwrap_err();
    assert!(has_error(&e, "unknown-file", "cannot tell"));
}

#[test]
fn load_path_reads_a_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let rel = "backend/data_sources/mongodb-atlas/app/items/rules.json";
    write_json(
        dir.path(),
        rel,
        json!({"database": "app", "collection": "items", "roles": [owner_role()]}),
    );
    let set = RuleSet::load(dir.path().join(rel), &LoadOptions::default()).unwrap();
    let ds = &set.data_sources["mongodb-atlas"];
    let rules = &ds.collections[&("app".into(), "items".into())];
    assert!(rules.place.file.ends_with("rules.json"));
    assert!(matches!(
        rules.roles[0].read.as_ref().unwrap().expr,
        Expr::Bool(true)
    ));
}

#[test]
fn namespace_in_the_file_wins_over_its_path() {
    let set = RuleSet::from_files(
        &files(&[(
            "data_sources/mongodb-atlas/todo/Item/rules.json",
            json!({"database": "bikes", "collection": "rideLogs", "roles": [owner_role()]}),
        )]),
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(
        set.data_sources["mongodb-atlas"]
            .collections
            .contains_key(&("bikes".into(), "rideLogs".into()))
    );
    assert!(has_warning(&set, "namespace-mismatch"));
}

#[test]
fn two_rule_files_for_one_collection_conflict() {
    let e = RuleSet::from_files(
        &files(&[
            (
                "services/mongodb-atlas/rules/a.b.json",
                json!({"database": "x", "collection": "y", "roles": [owner_role()]}),
            ),
            (
                "services/mongodb-atlas/rules/x.y.json",
                json!({"database": "x", "collection": "y", "roles": [owner_role()]}),
            ),
        ]),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(has_error(&e, "duplicate-rules", "`x.y`"));
}

#[test]
fn all_errors_of_all_files_are_collected() {
    let e = RuleSet::from_files(
        &files(&[
            (
                "data_sources/mongodb-atlas/app/a/rules.json",
                json!({"database": "app", "collection": "a", "roles": [
                    {"name": "r".repeat(101), "apply_when": {}, "search": "yes"},
                    {"apply_when": {}, "fields": {"a.b": {"read": true}}}
                ]}),
            ),
            ("data_sources/mongodb-atlas/app/b/rules.json", json!({})),
        ]),
        &LoadOptions::default(),
    )
    .unwrap_err();
    let codes: Vec<&str> = e.diagnostics.errors().map(|d| d.code).collect();
    for code in [
        "name-too-long",
        "invalid-type",
        "missing-key",
        "dotted-field-name",
        "empty-rules",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
}

#[test]
fn a_folder_that_is_not_an_app_is_an_error_and_an_empty_app_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let e = RuleSet::load(dir.path(), &LoadOptions::default()).unwrap_err();
    assert_eq!(e.diagnostics.0[0].code, "not-an-app", "{e}");
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/rules.json"), "{}").unwrap();
    let e = RuleSet::load(dir.path(), &LoadOptions::default()).unwrap_err();
    assert_eq!(e.diagnostics.0[0].code, "not-an-app", "{e}");
    // An app without rules (only its root configuration) loads, with a warning.
    std::fs::write(dir.path().join("realm_config.json"), "{}").unwrap();
    let set = RuleSet::load(dir.path(), &LoadOptions::default()).unwrap();
    assert!(set.data_sources.is_empty());
    assert!(
        set.warnings
            .0
            .iter()
            .any(|d| d.code == "empty-app" && d.severity == Severity::Warning)
    );
}

#[test]
fn duplicate_keys_in_rule_files_are_warnings_naming_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join("data_sources/mongodb-atlas/app/items/rules.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        "{\"database\": \"app\", \"collection\": \"items\",\n \"roles\": [{\"name\": \"r\", \"apply_when\": {},\n  \"read\": true,\n  \"read\": false}]}",
    )
    .unwrap();
    for set in [
        RuleSet::load(dir.path(), &LoadOptions::default()).unwrap(),
        RuleSet::load(&file, &LoadOptions::default()).unwrap(),
    ] {
        let d = set
            .warnings
            .0
            .iter()
            .find(|d| d.code == "duplicate-key")
            .unwrap_or_else(|| panic!("no duplicate-key warning: {:?}", set.warnings));
        assert_eq!(d.place.json_path, "roles[0].read");
        assert!(d.place.file.ends_with("rules.json"));
        assert!(d.message.contains("line 3 and at line 4"), "{}", d.message);
    }
}

#[test]
fn a_rule_file_that_is_not_utf8_names_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.json");
    std::fs::write(&file, b"{\"roles\":\n [\"\xff\"]}").unwrap();
    let e = RuleSet::load(&file, &LoadOptions::default()).unwrap_err();
    let d = &e.diagnostics.0[0];
    assert_eq!(d.code, "invalid-utf8");
    assert!(d.message.contains("byte 13 (line 2)"), "{}", d.message);
}

#[test]
fn rule_sets_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RuleSet>();
    assert_send_sync::<LoadError>();
}
