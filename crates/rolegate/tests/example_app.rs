//! The example app shipped in `examples/tasks-app`: it loads cleanly, its hand-worked cases
//! (`expected-cases.json`) pass, and the rules those cases carry inline are exactly the app's own
//! rule files (so the cases test the app, not a drifted copy).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use rolegate::{
    Rules,
    testing::{EngineChoice, load_case_file, run_case},
};
use serde_json::Value;

fn app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tasks-app")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_example_app_loads_without_warnings() {
    let rules = Rules::load(app()).unwrap_or_else(|e| panic!("{e}"));
    let warnings: Vec<String> = rules
        .rule_set()
        .warnings
        .0
        .iter()
        .map(|w| w.to_string())
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    for ns in [
        "taskboard.tasks",
        "taskboard.projects",
        "taskboard.employees",
        "taskboard.activity",
    ] {
        let collection = rules.collection(ns).unwrap();
        assert!(!collection.policy().roles.is_empty(), "{ns} has no roles");
    }
}

#[test]
fn the_example_cases_pass() {
    let cases = load_case_file(app().join("expected-cases.json")).unwrap_or_else(|e| panic!("{e}"));
    assert!(cases.len() >= 25);
    let failures: Vec<String> = EngineChoice::ALL
        .iter()
        .flat_map(|engine| cases.iter().map(move |case| run_case(case, *engine)))
        .filter(|r| !r.passed)
        .map(|r| {
            format!(
                "{}: {}\n  expected {}\n  actual   {}",
                r.name, r.message, r.expected, r.actual
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_example_cases_carry_the_apps_own_rules() {
    let cases: Value = read_json(&app().join("expected-cases.json"));
    let ds = app().join("data_sources/mongodb-atlas");
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let rules = &case["rules"];
        if let Some(coll) = rules["collection_rules"].as_object() {
            let dir = ds
                .join(coll["database"].as_str().unwrap())
                .join(coll["collection"].as_str().unwrap());
            assert_eq!(
                &rules["collection_rules"],
                &read_json(&dir.join("rules.json")),
                "{name}: collection_rules"
            );
            if !rules["schema"].is_null() {
                assert_eq!(
                    &rules["schema"],
                    &read_json(&dir.join("schema.json")),
                    "{name}: schema"
                );
            }
        }
        if !rules["default_rule"].is_null() {
            assert_eq!(
                &rules["default_rule"],
                &read_json(&ds.join("default_rule.json")),
                "{name}: default_rule"
            );
        }
    }
}
