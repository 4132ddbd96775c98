//! Load-time limits (`crate::limits`): every limit is a clean `limit-exceeded` error naming
//! the file and JSON path — never a stack overflow, never unbounded work. Values 100,000 levels
//! deep are built and torn down iteratively here, so that only the library is under test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::field_reassign_with_default,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::source::parse_json;
use crate::config::{LoadOptions, load_files, load_path, load_single};
use crate::error::{Diagnostic, LoadError, Place};
use crate::limits::{LIMIT_EXCEEDED, Limits};
use crate::rules::build::{BuildOptions, RuleSetBuilder};
use serde_json::{Value, json};

const DEEP: usize = 100_000;
const RULES: &str = "data_sources/mongodb-atlas/db/coll/rules.json";

/// `wrap` applied `levels` times around `leaf`, without recursion.
fn nest(levels: usize, leaf: Value, wrap: impl Fn(Value) -> Value) -> Value {
    (0..levels).fold(leaf, |v, _| wrap(v))
}

/// Drops a value of any depth without recursion.
fn drop_deep(v: Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// An object of `members`, built without `json!` (which serializes interpolated values, and so
/// recurses on them).
fn obj(members: Vec<(&str, Value)>) -> Value {
    Value::Object(
        members
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn rules_with_role(role: Value) -> Value {
    obj(vec![
        ("database", json!("db")),
        ("collection", json!("coll")),
        ("roles", Value::Array(vec![role])),
    ])
}

fn limit_errors(e: &LoadError) -> Vec<&Diagnostic> {
    e.diagnostics
        .errors()
        .filter(|d| d.code == LIMIT_EXCEEDED)
        .collect()
}

fn the_limit_error(result: Result<crate::rules::RuleSet, LoadError>) -> Diagnostic {
    let e = result.expect_err("the limit must refuse the rules");
    let found = limit_errors(&e);
    assert_eq!(found.len(), 1, "one limit error expected: {e:?}");
    let d = found[0].clone();
    assert!(d.hint.is_some(), "limit errors are hinted: {d}");
    d
}

/// A role whose `fields` nest `DEEP` levels.
fn deep_fields_role() -> Value {
    let fields = nest(DEEP, json!({"read": true}), |v| {
        obj(vec![("fields", obj(vec![("a", v)]))])
    });
    obj(vec![
        ("name", json!("deep")),
        ("apply_when", json!({})),
        ("fields", obj(vec![("a", fields)])),
    ])
}

#[test]
fn deep_field_rules_in_memory_are_refused_with_the_json_path() {
    let rules = rules_with_role(deep_fields_role());
    let d = the_limit_error(load_single(RULES, &rules, &LoadOptions::default()));
    assert_eq!(&*d.place.file, RULES);
    assert!(
        d.place.json_path.starts_with("roles[0].fields.a.fields.a"),
        "{}",
        d.place.json_path
    );
    assert!(d.message.contains("128 levels"), "{}", d.message);
    drop_deep(rules);
}

#[test]
fn deep_expressions_in_an_app_are_refused_with_the_file() {
    let apply_when = nest(DEEP, json!({"%%user.id": "x"}), |v| {
        obj(vec![("%or", Value::Array(vec![v]))])
    });
    let role = obj(vec![
        ("name", json!("deep")),
        ("apply_when", apply_when),
        ("read", json!(true)),
    ]);
    let mut files = BTreeMap::new();
    files.insert(RULES.to_string(), rules_with_role(role));
    files.insert(
        "values/v.json".to_string(),
        json!({"name": "v", "value": 1}),
    );
    let d = the_limit_error(load_files(&files, &LoadOptions::default()));
    assert_eq!(&*d.place.file, RULES);
    assert!(
        d.place
            .json_path
            .starts_with("roles[0].apply_when[\"%or\"][0]")
    );
    for (_, v) in files {
        drop_deep(v);
    }
}

#[test]
fn every_kind_of_file_is_depth_checked() {
    let deep = || nest(DEEP, json!(1), |v| Value::Array(vec![v]));
    let cases: Vec<(&str, Value)> = vec![
        (
            "values/v.json",
            obj(vec![("name", json!("v")), ("value", deep())]),
        ),
        (
            "environments/production.json",
            obj(vec![("values", obj(vec![("x", deep())]))]),
        ),
        (
            "data_sources/mongodb-atlas/db/coll/schema.json",
            obj(vec![("properties", obj(vec![("a", deep())]))]),
        ),
        (
            "data_sources/mongodb-atlas/default_rule.json",
            obj(vec![(
                "roles",
                Value::Array(vec![obj(vec![
                    ("name", json!("r")),
                    ("apply_when", deep()),
                ])]),
            )]),
        ),
        (
            "sync/config.json",
            obj(vec![("type", json!("flexible")), ("x", deep())]),
        ),
        (
            "functions/config.json",
            Value::Array(vec![obj(vec![("name", json!("f")), ("x", deep())])]),
        ),
    ];
    for (path, json) in cases {
        let mut files = BTreeMap::new();
        files.insert(path.to_string(), json);
        let d = the_limit_error(load_files(&files, &LoadOptions::default()));
        assert_eq!(&*d.place.file, path);
        let d = the_limit_error(load_single(path, &files[path], &LoadOptions::default()));
        assert_eq!(&*d.place.file, path);
        for (_, v) in files {
            drop_deep(v);
        }
    }
}

#[test]
fn the_builder_refuses_deep_input_before_building_it() {
    let rules = rules_with_role(deep_fields_role());
    let mut b = RuleSetBuilder::new("builder", BuildOptions::default());
    b.add_collection_rules("mongodb-atlas", None, &rules, Place::file("mine.json"));
    b.add_default_rule("mongodb-atlas", &rules, Place::file("default.json"));
    let e = b.finish().unwrap_err();
    let found = limit_errors(&e);
    assert_eq!(found.len(), 2, "{e:?}");
    assert_eq!(&*found[0].place.file, "mine.json");
    assert_eq!(&*found[1].place.file, "default.json");
    drop_deep(rules);
}

#[test]
fn deep_json_text_is_a_clean_diagnostic_with_the_file() {
    let text = format!(
        "{{\"database\": \"db\", \"collection\": \"c\", \"roles\": [{{\"name\": \"r\", \"apply_when\": {}{}}}]}}",
        "{\"%not\": ".repeat(DEEP),
        "}".repeat(DEEP)
    );
    let d = parse_json(&text, "rules.json").unwrap_err();
    assert_eq!(d.code, LIMIT_EXCEEDED);
    assert_eq!(&*d.place.file, "rules.json");
    assert!(d.message.contains("line 1 column"), "{}", d.message);

    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("data_sources/mongodb-atlas/db/c");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("rules.json"), &text).unwrap();
    // As a lone file and as part of an app directory.
    let d = the_limit_error(load_path(&app.join("rules.json"), &LoadOptions::default()));
    assert!(d.place.file.ends_with("rules.json"), "{}", d.place);
    let d = the_limit_error(load_path(dir.path(), &LoadOptions::default()));
    assert_eq!(&*d.place.file, "data_sources/mongodb-atlas/db/c/rules.json");
}

#[test]
fn a_lower_file_depth_applies_to_text_and_values() {
    let mut limits = Limits::default();
    limits.max_file_depth = 4;
    let options = LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    // roles(2) [0](3) apply_when(4) `{"a": ...}`(5): one level too deep.
    let rules = rules_with_role(json!({"name": "r", "apply_when": {"a": {"$in": [1]}}}));
    let d = the_limit_error(load_single(RULES, &rules, &options));
    assert_eq!(d.place.json_path, "roles[0].apply_when.a");
    let ok = rules_with_role(json!({"name": "r", "apply_when": {}}));
    assert!(load_single(RULES, &ok, &options).is_ok());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.json");
    std::fs::write(&file, rules.to_string()).unwrap();
    let d = the_limit_error(load_path(&file, &options));
    assert_eq!(d.place.json_path, "roles[0].apply_when.a");
}

#[test]
fn expression_depth_is_limited_below_the_parser_cap() {
    // 40 nested `%or`s: within the parser's cap and the default limit (64 levels)...
    let deep = nest(30, json!({"%%user.id": "x"}), |v| json!({"%or": [v]}));
    let rules = rules_with_role(json!({"name": "r", "apply_when": deep, "read": true}));
    let set = load_single(RULES, &rules, &LoadOptions::default()).unwrap();
    assert_eq!(set.limits, Limits::default());
    // ... but not within a limit of 16.
    let mut limits = Limits::default();
    limits.max_expression_depth = 16;
    let options = LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    let d = the_limit_error(load_single(RULES, &rules, &options));
    assert_eq!(d.place.json_path, "roles[0].apply_when");
    assert!(d.message.contains("16 levels"), "{}", d.message);
}

#[test]
fn the_parser_cap_still_stops_what_the_file_depth_allows() {
    let mut limits = Limits::default();
    limits.max_file_depth = 100_000; // treated as the ceiling (512)
    limits.max_expression_depth = 100_000; // treated as the ceiling (200)
    let options = LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    let deep = nest(300, json!(true), |v| json!({"%not": v}));
    let rules = rules_with_role(json!({"name": "r", "apply_when": deep}));
    let e = load_single(RULES, &rules, &options).unwrap_err();
    assert!(
        e.diagnostics
            .errors()
            .any(|d| d.code == "expression-too-deep"),
        "{e:?}"
    );
    let deeper = rules_with_role(deep_fields_role());
    let d = the_limit_error(load_single(RULES, &deeper, &options));
    assert!(d.message.contains("512 levels"), "{}", d.message);
    drop_deep(deeper);
}

#[test]
fn huge_in_arrays_are_refused() {
    let big: Vec<Value> = (0..100_000).map(|i| json!(i)).collect();
    for op in ["$in", "%nin", "$all"] {
        let role = json!({"name": "r", "apply_when": {"%%user.custom_data.n": {op: big.clone()}}});
        let d = the_limit_error(load_single(
            RULES,
            &rules_with_role(role),
            &LoadOptions::default(),
        ));
        assert_eq!(d.place.json_path, "roles[0].apply_when");
        assert!(d.message.contains("100000 elements"), "{}", d.message);
    }
    // An array with expansions inside is an operand array: counted the same way.
    let mut mixed: Vec<Value> = (0..20_000).map(|i| json!(i)).collect();
    mixed.push(json!("%%user.id"));
    let role = json!({"name": "r", "apply_when": {"owner": {"$in": mixed}}});
    the_limit_error(load_single(
        RULES,
        &rules_with_role(role),
        &LoadOptions::default(),
    ));
    // At the limit: accepted.
    let ok: Vec<Value> = (0..10_000).map(|i| json!(i)).collect();
    let role = json!({"name": "r", "apply_when": {"owner": {"$in": ok}}});
    assert!(load_single(RULES, &rules_with_role(role), &LoadOptions::default()).is_ok());
}

#[test]
fn a_hundred_thousand_roles_are_refused_quickly() {
    let roles: Vec<Value> = (0..100_000)
        .map(|i| json!({"name": format!("r{i}"), "apply_when": {"%%user.id": format!("u{i}")}, "read": true}))
        .collect();
    let rules = json!({"database": "db", "collection": "coll", "roles": roles});
    let start = Instant::now();
    let d = the_limit_error(load_single(RULES, &rules, &LoadOptions::default()));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(d.place.json_path, "roles[50000]");
    assert!(d.message.contains("100000 roles"), "{}", d.message);

    // The same for default roles and filters.
    let filters: Vec<Value> = (0..1001)
        .map(|i| json!({"name": format!("f{i}"), "apply_when": {}, "query": {}}))
        .collect();
    let rules = json!({"database": "db", "collection": "coll", "roles": [], "filters": filters});
    let d = the_limit_error(load_single(RULES, &rules, &LoadOptions::default()));
    assert_eq!(d.place.json_path, "filters[1000]");
    let mut limits = Limits::default();
    limits.max_roles = 10;
    let options = LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    let many: Vec<Value> = (0..11)
        .map(|i| json!({"name": format!("r{i}"), "apply_when": {}}))
        .collect();
    let d = the_limit_error(load_single(
        "data_sources/mongodb-atlas/default_rule.json",
        &json!({"roles": many}),
        &options,
    ));
    assert_eq!(d.place.json_path, "roles[10]");
}

#[test]
fn long_expansion_strings_and_paths_are_refused() {
    let long = format!("%%user.custom_data.{}", "a".repeat(1_000_000));
    let segments = format!("%%user.{}", "a.".repeat(500_000) + "a");
    let bare = "b.".repeat(2_000) + "b";
    for (what, apply_when) in [
        ("long segment", json!({&long: "x"})),
        ("many segments", json!({"x": &segments})),
        ("bare path", json!({&bare: 1})),
        ("inside $in", json!({"x": {"$in": [1, &long]}})),
        (
            "function argument",
            json!({"%%true": {"%function": {"name": "f", "arguments": [&long]}}}),
        ),
    ] {
        let role = json!({"name": "r", "apply_when": apply_when});
        let start = Instant::now();
        let d = the_limit_error(load_single(
            RULES,
            &rules_with_role(role),
            &LoadOptions::default(),
        ));
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: {:?}",
            start.elapsed()
        );
        assert_eq!(d.place.json_path, "roles[0].apply_when", "{what}");
        assert!(d.message.contains("at most 1024"), "{what}: {}", d.message);
    }
    // A field rule path, and a filter query and projection.
    let name = "f".repeat(2_000);
    let role = json!({"name": "r", "apply_when": {}, "fields": {&name: {"read": true}}});
    let d = the_limit_error(load_single(
        RULES,
        &rules_with_role(role),
        &LoadOptions::default(),
    ));
    assert!(
        d.place.json_path.starts_with("roles[0].fields"),
        "{}",
        d.place
    );
    let filter = json!({"name": "f", "apply_when": {}, "query": {"owner": &long}});
    let rules = json!({"database": "db", "collection": "coll", "filters": [filter]});
    let d = the_limit_error(load_single(RULES, &rules, &LoadOptions::default()));
    assert_eq!(d.place.json_path, "filters[0].query");
    let filter = json!({"name": "f", "apply_when": {}, "projection": {&name: 1}});
    let rules = json!({"database": "db", "collection": "coll", "filters": [filter]});
    let d = the_limit_error(load_single(RULES, &rules, &LoadOptions::default()));
    assert_eq!(d.place.json_path, "filters[0].projection");
}

#[test]
fn expression_nodes_are_counted_over_the_whole_rule_set() {
    let mut limits = Limits::default();
    limits.max_expression_nodes = 50;
    let options = LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    let roles: Vec<Value> = (0..20)
        .map(|i| json!({"name": format!("r{i}"), "apply_when": {"%%user.id": "x"}}))
        .collect();
    let rules = json!({"database": "db", "collection": "coll", "roles": roles});
    let d = the_limit_error(load_single(RULES, &rules, &options));
    assert!(
        d.message.contains("more than 50 expression nodes"),
        "{}",
        d.message
    );
    assert!(load_single(RULES, &rules, &LoadOptions::default()).is_ok());
}

#[test]
fn limits_cover_services_functions_and_partition_sync() {
    let long = format!("%%args.{}", "a".repeat(2_000));
    let mut files = BTreeMap::new();
    files.insert(
        "services/http/rules/r.json".to_string(),
        json!({"name": "r", "actions": ["get"], "when": {&long: 1}}),
    );
    files.insert(
        "services/http/config.json".to_string(),
        json!({"name": "http", "type": "http"}),
    );
    let d = the_limit_error(load_files(&files, &LoadOptions::default()));
    assert_eq!(&*d.place.file, "services/http/rules/r.json");

    let mut files = BTreeMap::new();
    files.insert(
        "functions/f/config.json".to_string(),
        json!({"name": "f", "can_evaluate": {&long: 1}}),
    );
    let d = the_limit_error(load_files(&files, &LoadOptions::default()));
    assert_eq!(&*d.place.file, "functions/f/config.json");

    let big: Vec<Value> = (0..10_001).map(|i| json!(i)).collect();
    let mut files = BTreeMap::new();
    files.insert(
        "sync/config.json".to_string(),
        json!({"type": "partition", "service_name": "mongodb-atlas", "state": "enabled",
               "partition": {"key": "p", "permissions": {"read": {"%%partition": {"$in": big}}, "write": false}}}),
    );
    let d = the_limit_error(load_files(&files, &LoadOptions::default()));
    assert_eq!(&*d.place.file, "sync/config.json");
}

#[test]
fn evaluation_limits_are_carried_by_the_rule_set() {
    let mut limits = Limits::default();
    limits.max_document_depth = 7;
    limits.max_eval_steps = 99;
    let options = LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    let rules = rules_with_role(json!({"name": "r", "apply_when": {}, "read": true}));
    let set = load_single(RULES, &rules, &options).unwrap();
    assert_eq!(set.limits.max_document_depth, 7);
    assert_eq!(set.limits.max_eval_steps, 99);
}

#[test]
fn the_text_parser_accepts_what_the_default_file_depth_accepts() {
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let deepest_text = (1..200)
        .take_while(|&n| parse_json(&nested(n), "f.json").is_ok())
        .last()
        .unwrap();
    assert_eq!(deepest_text, crate::config::source::TEXT_DEPTH);
    assert!(deepest_text <= Limits::default().max_file_depth);
    let d = parse_json(&nested(deepest_text + 1), "f.json").unwrap_err();
    assert_eq!(d.code, LIMIT_EXCEEDED);
    assert!(d.message.contains("more than 127 levels"), "{}", d.message);
}

/// `document_depth` measures a 100,000-level document (nested documents, or arrays) without
/// recursion: on a test thread's stack, recursion would overflow.
#[test]
fn document_depth_does_not_recurse() {
    use bson::{Bson, Document, doc};
    fn drop_deep(value: Bson) {
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Bson::Document(d) => stack.extend(d.into_iter().map(|(_, v)| v)),
                Bson::Array(items) => stack.extend(items),
                _ => {}
            }
        }
    }
    let mut nested = doc! {"x": 1};
    for _ in 1..DEEP {
        nested = doc! {"a": nested};
    }
    assert_eq!(crate::limits::document_depth(&nested), DEEP);
    drop_deep(Bson::Document(nested));
    let mut array = Bson::Array(vec![Bson::Int32(1)]);
    for _ in 1..DEEP {
        array = Bson::Array(vec![array]);
    }
    let arrays: Document = doc! {"_id": 1, "a": array};
    assert_eq!(crate::limits::document_depth(&arrays), DEEP + 1);
    drop_deep(Bson::Document(arrays));
}
