//! `rolegate prop` and `rolegate diff` as a user runs them: the example app's property file
//! passes; a seeded leak fails with a shrunk counterexample whose saved case fails under
//! `rolegate test` and whose eval command line runs; a vacuous property is a warning and exit 1;
//! a bad property file is exit 3 with its JSON path; `diff` exits 0 on the same rules and 1 with
//! exactly the seeded difference otherwise; both give JSON lines with `--format json`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

mod support;
use support::{code, json_lines, rolegate, stderr, stdout, write_json};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tasks-app")
}

fn properties() -> String {
    example().join("properties.json").display().to_string()
}

/// A small app: owners see everything, a `viewer` role (same team) sees the title, and, when
/// `leak` is true, the secret too.
fn app(dir: &Path, name: &str, leak: bool) -> String {
    let mut viewer = json!({"title": {"read": true}});
    if leak {
        viewer["secret"] = json!({"read": true});
    }
    write_json(
        dir,
        &format!("{name}/data_sources/mongodb-atlas/config.json"),
        &json!({"name": "mongodb-atlas", "type": "mongodb-atlas"}),
    );
    write_json(
        dir,
        &format!("{name}/data_sources/mongodb-atlas/shop/orders/rules.json"),
        &json!({
            "database": "shop", "collection": "orders",
            "roles": [
                {"name": "owner", "apply_when": {"owner_id": "%%user.id"}, "read": true, "write": true},
                {"name": "viewer", "apply_when": {"team": "%%user.custom_data.team"}, "fields": viewer,
                 "insert": false, "delete": false}
            ]
        }),
    );
    name.to_string()
}

fn props(dir: &Path) -> String {
    write_json(
        dir,
        "props.json",
        &json!({"collection": "shop.orders", "properties": [
            {"name": "only owners read the secret", "action": "read", "fields": "secret",
             "only_roles": "owner"},
            {"name": "viewers never delete", "action": "delete", "role": "viewer",
             "expect": "denied"}
        ]}),
    );
    "props.json".to_string()
}

#[test]
fn the_example_apps_properties_pass() {
    let dir = tempfile::tempdir().unwrap();
    let app = example().display().to_string();
    let o = rolegate(&["prop", &app, &properties(), "--cases", "500"], dir.path());
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}\n{}", stderr(&o));
    assert_eq!(
        out.lines().filter(|l| l.starts_with("PASS ")).count(),
        12,
        "{out}"
    );
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("12 properties: 12 passed, 0 failed, 0 vacuous; 6000 cases in"),
        "{last}"
    );
    assert!(last.ends_with("seed 0"), "{last}");
    assert!(out.contains("roles: admin "), "{out}");
}

#[test]
fn a_leak_fails_with_a_shrunk_case_that_reproduces_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "leaky", true);
    let props = props(dir.path());
    let o = rolegate(&["prop", &app, &props, "--out", "cx"], dir.path());
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.starts_with("FAIL only owners read the secret (shop.orders, read): the read is granted by role `viewer`"),
        "{out}"
    );
    assert!(
        out.contains(r#"  document: {"team":"team-1","secret":"secret-1"}"#),
        "shrunk to the team and the secret: {out}"
    );
    assert!(out.contains("PASS viewers never delete"), "{out}");
    // The saved case fails under `rolegate test` (until the rules are fixed).
    let case = dir
        .path()
        .join("cx/01-only-owners-read-the-secret/case.json");
    let o = rolegate(&["test", case.to_str().unwrap()], dir.path());
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("`visible`: expected false, got true"),
        "{}",
        stdout(&o)
    );
    // The eval command line runs and shows the leak.
    let eval = out
        .lines()
        .find_map(|l| l.strip_prefix("  eval: rolegate "))
        .unwrap();
    let args: Vec<&str> = eval.split(' ').collect();
    let o = rolegate(&args, dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(r#"role `viewer`: visible"#),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(r#"  {"secret":"secret-1"}"#),
        "{}",
        stdout(&o)
    );
    // The same with --format json.
    let o = rolegate(&["prop", &app, &props, "--format", "json"], dir.path());
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["outcome"], "failed");
    assert_eq!(lines[0]["counterexample"]["decision"]["role"], "viewer");
    assert_eq!(
        lines[0]["counterexample"]["case"]["expected"],
        json!({"visible": false})
    );
    assert_eq!(lines[1]["outcome"], "passed");
}

#[test]
fn the_fixed_rules_pass_and_the_seed_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "fixed", false);
    let props = props(dir.path());
    let o = rolegate(
        &["prop", &app, &props, "--cases", "300", "--seed", "42"],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).lines().last().unwrap().ends_with("seed 42"));
    let again = rolegate(
        &["prop", &app, &props, "--cases", "300", "--seed", "42"],
        dir.path(),
    );
    let counts = |s: String| s.lines().take(2).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        counts(stdout(&o)),
        counts(stdout(&again)),
        "deterministic with a seed"
    );
}

#[test]
fn a_property_that_never_reaches_its_role_is_a_warning_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "fixed", false);
    write_json(
        dir.path(),
        "vacuous.json",
        &json!({"collection": "shop.orders", "properties": [
            {"name": "viewers never read the secret of an order without a team", "action": "read",
             "fields": "secret", "role": "viewer", "where": {"document.team": {"$exists": false}},
             "expect": "denied"}
        ]}),
    );
    let o = rolegate(
        &["prop", &app, "vacuous.json", "--cases", "300"],
        dir.path(),
    );
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.starts_with("WARN viewers never read the secret of an order without a team"),
        "{out}"
    );
    assert!(out.contains("vacuous,"), "{out}");
    assert!(out.contains("0 passed, 0 failed, 1 vacuous"), "{out}");
}

#[test]
fn a_bad_property_file_is_exit_3_with_its_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "fixed", false);
    write_json(
        dir.path(),
        "bad.json",
        &json!({"collection": "shop.orders", "properties": [
            {"name": "x", "action": "read", "only_roles": ["ownr"]}
        ]}),
    );
    let o = rolegate(&["prop", &app, "bad.json"], dir.path());
    assert_eq!(code(&o), 3);
    assert_eq!(
        stderr(&o).trim(),
        "error[invalid-property]: bad.json: properties[0].only_roles[0]: no role `ownr` governs \
         `shop.orders` (hint: did you mean `owner`?)"
    );
    write_json(
        dir.path(),
        "typo.json",
        &json!({"properties": [{"name": "x", "acton": "read"}]}),
    );
    let o = rolegate(&["prop", &app, "typo.json"], dir.path());
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("unknown field `acton`"),
        "{}",
        stderr(&o)
    );
    let o = rolegate(&["prop", &app], dir.path());
    assert_eq!(code(&o), 2, "a property file or --generic is required");
    let o = rolegate(&["prop", "missing", "bad.json"], dir.path());
    assert_eq!(code(&o), 4);
}

#[test]
fn the_generic_property_needs_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let app = example().display().to_string();
    let o = rolegate(&["prop", &app, "--generic", "--cases", "500"], dir.path());
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stdout(&o).contains(
            "PASS role `teamViewer` grants no read of `details.internalNotes`: it never returns it"
        ),
        "{}",
        stdout(&o)
    );
}

#[test]
fn diff_is_quiet_on_the_same_rules_and_finds_the_leak() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = app(dir.path(), "fixed", false);
    let leaky = app(dir.path(), "leaky", true);
    let o = rolegate(&["diff", &fixed, &fixed, "--cases", "500"], dir.path());
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert_eq!(
        stdout(&o).lines().next().unwrap(),
        "mongodb-atlas/shop.orders: 0 differences in 500 cases"
    );
    let o = rolegate(
        &["diff", &fixed, &leaky, "--collection", "shop.orders"],
        dir.path(),
    );
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    // Exactly the leak: the secret is shown by the viewer role of NEW, and so a document with a
    // secret and no title is returned by NEW only.
    let mut diffs: Vec<&str> = out.lines().filter(|l| l.starts_with("DIFF ")).collect();
    diffs.sort_unstable();
    assert_eq!(
        diffs,
        [
            "DIFF shop.orders: read: field `secret` is shown only by NEW",
            "DIFF shop.orders: read: the document is returned only by NEW"
        ],
        "{out}"
    );
    let o = rolegate(&["diff", &fixed, &leaky, "--format", "json"], dir.path());
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["old"]["role"], "viewer");
        assert_eq!(line["new"]["role"], "viewer");
        assert_eq!(
            line["new"]["returned"]["secret"], line["document"]["secret"],
            "{line}"
        );
        assert!(line["old"]["returned"].get("secret").is_none(), "{line}");
    }
}

#[test]
fn diff_tries_the_documents_and_users_given() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = app(dir.path(), "fixed", false);
    let leaky = app(dir.path(), "leaky", true);
    std::fs::write(
        dir.path().join("docs.jsonl"),
        "{\"_id\": 1, \"team\": \"red\", \"secret\": \"s\", \"title\": \"t\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("users.jsonl"),
        "{\"id\": \"u\", \"custom_data\": {\"team\": \"red\"}}\n",
    )
    .unwrap();
    let o = rolegate(
        &[
            "diff",
            &fixed,
            &leaky,
            "--documents",
            "docs.jsonl",
            "--users",
            "users.jsonl",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 1);
    let lines: Vec<Value> = json_lines(&stdout(&o));
    assert!(!lines.is_empty());
    // The given user and document are tried (the generators learn their values too).
    assert!(
        lines
            .iter()
            .any(|l| l["user"]["id"] == "u" || l["document"]["team"] == "red"),
        "{lines:?}"
    );
    let o = rolegate(
        &["diff", &fixed, &leaky, "--documents", "nope.jsonl"],
        dir.path(),
    );
    assert_eq!(code(&o), 3);
}
