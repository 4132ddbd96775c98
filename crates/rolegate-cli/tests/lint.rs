//! `rolegate check` and the lints: every lint code appears in `--format json` with its place and
//! hint, and `--deny-warnings` turns them into a failure. The lints themselves are tested one code
//! at a time in `crates/rolegate/tests/lint.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::process::Command;

use rolegate::lint::LINT_CODES;
use serde_json::{Value, json};

/// One app that trips every lint code, for the command line.
fn lint_app(dir: &Path) {
    let write = |rel: &str, v: Value| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    };
    write(
        "data_sources/mongodb-atlas/config.json",
        json!({"name": "mongodb-atlas", "type": "mongodb-atlas"}),
    );
    write(
        "data_sources/mongodb-atlas/db/coll/rules.json",
        json!({"database": "db", "collection": "coll",
        "roles": [
            {"name": "nothing", "apply_when": {"%%user.custom_data.banned": true}},
            {"name": "wf", "apply_when": {"%%user.custom_data.a": true}, "read": true, "write": false,
             "fields": {"status": {"write": true}}},
            {"name": "rf", "apply_when": {"%%user.custom_data.b": true}, "read": false,
             "write": {"owner": "%%user.id"}, "fields": {"title": {"read": true}}},
            {"name": "rt", "apply_when": {"%%user.custom_data.c": true}, "read": true,
             "fields": {"secret": {"read": false}}},
            {"name": "typo", "apply_when": {"%%user.custom_data.d": true}, "fields": {"titel": {"read": true}}},
            {"name": "all", "apply_when": {}, "read": true},
            {"name": "late", "apply_when": {"owner": "%%user.id"}, "write": true}
        ],
        "filters": [
            {"name": "inc", "apply_when": {}, "projection": {"title": 1}},
            {"name": "exc", "apply_when": {}, "projection": {"secret": 0}}
        ]}),
    );
    write(
        "data_sources/mongodb-atlas/db/coll/schema.json",
        json!({"properties": {"_id": {}, "title": {}, "status": {}, "secret": {}, "owner": {}}}),
    );
}

#[test]
fn check_reports_every_lint_code_in_json_and_denies_warnings() {
    let dir = tempfile::tempdir().unwrap();
    lint_app(dir.path());
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rolegate"))
            .arg("check")
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "warnings alone are valid");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let codes: Vec<&str> = lines.iter().filter_map(|l| l["code"].as_str()).collect();
    for code in LINT_CODES {
        assert!(codes.contains(code), "`{code}` missing from {codes:?}");
    }
    for l in lines.iter().filter(|l| l.get("code").is_some()) {
        assert_eq!(l["severity"], "warning");
        assert_eq!(l["file"], "data_sources/mongodb-atlas/db/coll/rules.json");
        assert!(
            l["path"].as_str().unwrap().starts_with("roles[")
                || l["path"].as_str().unwrap().starts_with("filters[")
        );
        assert!(l["hint"].is_string(), "{l}");
    }
    let summary = lines.last().unwrap();
    assert_eq!(summary["valid"], true);
    assert_eq!(summary["warnings"].as_u64().unwrap() as usize, codes.len());

    let out = run(&["--deny-warnings"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "warning[unreachable-role]: data_sources/mongodb-atlas/db/coll/rules.json: roles[6]"
        ),
        "{text}"
    );
}
