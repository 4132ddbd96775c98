//! The `rolegate` command line: every command, its output formats and exit codes (0 yes, 1 no,
//! 2 usage, 3 unusable input, 4 rules that do not load), and bad input of every kind (never a
//! panic).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use serde_json::{Value, json};
use tempfile::TempDir;

mod support;
use support::{code, json_lines, rolegate, stderr, stdout, write, write_json};

/// An app with one collection `app.items`: owners read and write everything, everyone else reads
/// `title`; a filter limits non-admins to their own documents.
fn app(dir: &Path) {
    write_json(
        dir,
        "app/data_sources/mongodb-atlas/config.json",
        &json!({"name": "mongodb-atlas", "type": "mongodb-atlas"}),
    );
    write_json(
        dir,
        "app/data_sources/mongodb-atlas/app/items/rules.json",
        &json!({
            "database": "app", "collection": "items",
            "roles": [
                {"name": "owner", "apply_when": {"owner_id": "%%user.id"}, "read": true, "write": true, "insert": true},
                {"name": "public", "apply_when": {}, "fields": {"title": {"read": true}}, "insert": false}
            ],
            "filters": [{"name": "ownerOnly", "apply_when": {"%%user.custom_data.admin": {"$ne": true}},
                         "query": {"owner_id": "%%user.id"}, "projection": {}}]
        }),
    );
    write_json(
        dir,
        "alice.json",
        &json!({"id": "alice", "type": "normal", "data": {}, "custom_data": {}, "identities": []}),
    );
    write_json(
        dir,
        "admin.json",
        &json!({"id": "root", "type": "normal", "data": {}, "custom_data": {"admin": true}, "identities": []}),
    );
    write(
        dir,
        "docs.jsonl",
        "{\"_id\": 1, \"owner_id\": \"alice\", \"title\": \"a\", \"secret\": 1}\n\n{\"_id\": 2, \"owner_id\": \"bob\", \"title\": \"b\", \"secret\": 2}\n",
    );
    write_json(
        dir,
        "mine.json",
        &json!({"_id": 1, "owner_id": "alice", "title": "a"}),
    );
    write_json(
        dir,
        "mine-renamed.json",
        &json!({"_id": 1, "owner_id": "alice", "title": "z"}),
    );
    write_json(
        dir,
        "theirs.json",
        &json!({"_id": 2, "owner_id": "bob", "title": "b"}),
    );
}

fn setup() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    app(dir.path());
    dir
}

// ---------------------------------------------------------------------------------------------
// general

#[test]
fn help_lists_commands_and_exit_codes() {
    let dir = setup();
    let o = rolegate(&["--help"], dir.path());
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    for word in ["check", "eval", "test", "Exit codes", "0 ", "1 ", "2 "] {
        assert!(text.contains(word), "help lacks {word:?}:\n{text}");
    }
    let o = rolegate(&["eval", "--help"], dir.path());
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("Exit codes"));
}

#[test]
fn usage_errors_exit_2() {
    let dir = setup();
    for args in [
        &[][..],
        &["frobnicate"],
        &["check"],
        &["eval", "app"],
        &["test"],
        &["check", "app", "--format", "xml"],
    ] {
        let o = rolegate(args, dir.path());
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// check

#[test]
fn check_valid_app_exits_0() {
    let dir = setup();
    let o = rolegate(&["check", "app"], dir.path());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("valid"));
    let o = rolegate(&["check", "app", "--format", "json"], dir.path());
    assert_eq!(code(&o), 0);
    let lines = json_lines(&stdout(&o));
    assert_eq!(
        lines.last().unwrap(),
        &json!({"valid": true, "errors": 0, "warnings": 0})
    );
}

#[test]
fn check_single_rule_file() {
    let dir = setup();
    let o = rolegate(
        &[
            "check",
            "app/data_sources/mongodb-atlas/app/items/rules.json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn check_invalid_rules_exit_4_with_file_and_json_path() {
    let dir = setup();
    let long = "r".repeat(101);
    write_json(
        dir.path(),
        "bad/data_sources/mongodb-atlas/app/items/rules.json",
        &json!({"database": "app", "collection": "items", "roles": [
            {"name": "ok", "apply_when": {}, "read": true},
            {"name": long, "apply_when": {"%%partition": "x"}, "read": true}
        ]}),
    );
    let o = rolegate(&["check", "bad"], dir.path());
    assert_eq!(code(&o), 4, "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("data_sources/mongodb-atlas/app/items/rules.json: roles[1].name"),
        "{text}"
    );
    assert!(
        text.contains("roles[1].apply_when"),
        "every error is printed:\n{text}"
    );
    assert!(text.contains("invalid"));

    let o = rolegate(&["check", "bad", "--format", "json"], dir.path());
    assert_eq!(code(&o), 4);
    let lines = json_lines(&stdout(&o));
    let errors: Vec<&Value> = lines.iter().filter(|l| l["severity"] == "error").collect();
    assert!(errors.len() >= 2, "{lines:?}");
    assert!(
        errors
            .iter()
            .all(|e| e["file"].as_str().unwrap().ends_with("rules.json") && e["path"].is_string())
    );
    assert_eq!(lines.last().unwrap()["valid"], json!(false));
}

#[test]
fn check_warnings_fail_only_with_deny_warnings() {
    let dir = setup();
    // A role without `apply_when` is valid (U12) but warned about.
    write_json(
        dir.path(),
        "warn/data_sources/mongodb-atlas/app/items/rules.json",
        &json!({"database": "app", "collection": "items", "roles": [{"name": "r", "read": true}]}),
    );
    let o = rolegate(&["check", "warn"], dir.path());
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("warning"), "{}", stdout(&o));
    let o = rolegate(&["check", "warn", "--deny-warnings"], dir.path());
    assert_eq!(code(&o), 1);
}

#[test]
fn check_bad_paths_and_files() {
    let dir = setup();
    let o = rolegate(&["check", "no/such/app"], dir.path());
    assert_eq!(code(&o), 4);
    assert!(stderr(&o).contains("no/such/app"));
    write(dir.path(), "broken.json", "{\"roles\": [");
    let o = rolegate(&["check", "broken.json"], dir.path());
    assert_eq!(
        code(&o),
        4,
        "a rule file that is not JSON is invalid rules: {}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("broken.json"));
    write(dir.path(), "empty.json", "");
    let o = rolegate(&["check", "empty.json"], dir.path());
    assert_eq!(code(&o), 4, "{}", stdout(&o));
    assert!(!stderr(&o).contains("panicked"));
}

// ---------------------------------------------------------------------------------------------
// eval

#[test]
fn eval_read_human_prints_plan_roles_and_redacted_documents() {
    let dir = setup();
    let o = rolegate(
        &[
            "eval",
            "app",
            "--collection",
            "app.items",
            "--user",
            "admin.json",
            "--action",
            "read",
            "--documents",
            "docs.jsonl",
        ],
        dir.path(),
    );
    let text = stdout(&o);
    assert_eq!(code(&o), 0, "{text}{}", stderr(&o));
    assert!(text.contains("filters applied: none"), "{text}");
    assert!(text.contains("role `public`"), "{text}");
    assert!(text.contains(r#"{"title":"a"}"#), "{text}");
    assert!(!text.contains("secret"), "{text}");
}

#[test]
fn eval_read_json_one_line_per_document_after_the_plan() {
    let dir = setup();
    let o = rolegate(
        &[
            "eval",
            "app",
            "--collection",
            "app.items",
            "--user",
            "alice.json",
            "--action",
            "read",
            "--documents",
            "docs.jsonl",
            "--format",
            "json",
            "--explain",
            "--fail-on-deny",
        ],
        dir.path(),
    );
    // Bob's document is not selected by the owner filter: withheld, so the answer is no.
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["plan"]["applied"], json!(["ownerOnly"]));
    assert_eq!(lines[0]["plan"]["query"], json!({"owner_id": "alice"}));
    assert_eq!(lines[1]["document"], json!(1));
    assert_eq!(lines[1]["role"], json!("owner"));
    assert_eq!(lines[1]["visible"], json!(true));
    assert_eq!(
        lines[1]["redacted"],
        json!({"_id": 1, "owner_id": "alice", "title": "a", "secret": 1})
    );
    let steps = lines[1]["explanation"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s["path"] == "roles[0].apply_when"
            && s["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("items/rules.json"))),
        "the rule's place is `file` and `path`: {steps:?}"
    );
    assert_eq!(lines[2]["selected"], json!(false));
    assert_eq!(lines[2]["visible"], json!(false));
}

#[test]
fn eval_writes_and_exit_codes() {
    let dir = setup();
    let base = [
        "eval",
        "app",
        "--collection",
        "app.items",
        "--user",
        "alice.json",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        rolegate(&args, dir.path())
    };
    let o = run(&["--action", "insert", "--document", "mine.json"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("allowed"));
    let o = run(&["--action", "insert", "--document", "theirs.json"]);
    assert_eq!(code(&o), 0, "decisions were printed");
    assert!(stdout(&o).contains("InsertNotPermitted"), "{}", stdout(&o));
    let o = run(&[
        "--action",
        "insert",
        "--document",
        "theirs.json",
        "--fail-on-deny",
    ]);
    assert_eq!(code(&o), 1);
    let o = run(&[
        "--action",
        "update",
        "--document",
        "mine-renamed.json",
        "--prev",
        "mine.json",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(json_lines(&stdout(&o))[0]["allowed"], json!(true));
    let o = run(&[
        "--action",
        "delete",
        "--document",
        "theirs.json",
        "--format",
        "json",
        "--fail-on-deny",
    ]);
    assert_eq!(code(&o), 1);
    let line = &json_lines(&stdout(&o))[0];
    assert_eq!(line["allowed"], json!(false));
    assert_eq!(line["error_code"], json!("DeleteNotPermitted"));
}

#[test]
fn eval_update_pairs_jsonl_pre_images() {
    let dir = setup();
    write(
        dir.path(),
        "post.jsonl",
        "{\"_id\": 1, \"owner_id\": \"alice\", \"title\": \"z\"}\n{\"_id\": 2, \"owner_id\": \"bob\", \"title\": \"z\"}\n",
    );
    write(
        dir.path(),
        "pre.jsonl",
        "{\"_id\": 1, \"owner_id\": \"alice\", \"title\": \"a\"}\n{\"_id\": 2, \"owner_id\": \"bob\", \"title\": \"b\"}\n",
    );
    write(
        dir.path(),
        "pre-short.jsonl",
        "{\"_id\": 1, \"owner_id\": \"alice\", \"title\": \"a\"}\n",
    );
    let args = [
        "eval",
        "app",
        "--collection",
        "app.items",
        "--user",
        "alice.json",
        "--action",
        "update",
        "--documents",
        "post.jsonl",
    ];
    let mut with_prev = args.to_vec();
    with_prev.extend(["--prev", "pre.jsonl", "--format", "json", "--fail-on-deny"]);
    let o = rolegate(&with_prev, dir.path());
    assert_eq!(code(&o), 1);
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["allowed"], json!(true));
    assert_eq!(lines[1]["allowed"], json!(false));

    let mut short = args.to_vec();
    short.extend(["--prev", "pre-short.jsonl"]);
    let o = rolegate(&short, dir.path());
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("paired"), "{}", stderr(&o));

    let o = rolegate(&args, dir.path());
    assert_eq!(code(&o), 2, "update without --prev");
    assert!(stderr(&o).contains("--prev"));
}

#[test]
fn eval_request_file_is_a_case_request() {
    let dir = setup();
    write_json(
        dir.path(),
        "fn-app/data_sources/mongodb-atlas/app/items/rules.json",
        &json!({"database": "app", "collection": "items", "roles": [
            {"name": "vip", "apply_when": {"%%true": {"%function": {"name": "isVip", "arguments": ["%%user.id"]}}}, "read": true},
            {"name": "ip", "apply_when": {"%%request.remoteIPAddress": {"$in": "%%values.allowed"}}, "read": true}
        ]}),
    );
    write_json(
        dir.path(),
        "fn-app/functions/config.json",
        &json!([{"name": "isVip", "private": true}]),
    );
    write(
        dir.path(),
        "fn-app/functions/isVip.js",
        "exports = (id) => id === 'alice';",
    );
    write_json(
        dir.path(),
        "vip.json",
        &json!({"functions": {"isVip": {"args": ["alice"], "returns": true}}}),
    );
    write_json(
        dir.path(),
        "ip.json",
        &json!({"http": {"remoteIPAddress": "10.0.0.1"}, "values": {"allowed": ["10.0.0.1"]},
                                               "functions": {"isVip": {"args": ["alice"], "returns": false}}}),
    );
    write_json(dir.path(), "bad-request.json", &json!({"valus": {}}));
    let base = [
        "eval",
        "fn-app",
        "--collection",
        "app.items",
        "--user",
        "alice.json",
        "--action",
        "read",
        "--document",
        "theirs.json",
        "--format",
        "json",
    ];
    let run = |req: &str| {
        let mut args = base.to_vec();
        args.extend(["--request", req]);
        rolegate(&args, dir.path())
    };
    let o = run("vip.json");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(json_lines(&stdout(&o))[1]["role"], json!("vip"));
    let o = run("ip.json");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(json_lines(&stdout(&o))[1]["role"], json!("ip"));
    // Without a request the function call cannot be served: fail closed, withheld.
    let o = rolegate(&base, dir.path());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(json_lines(&stdout(&o))[1]["visible"], json!(false));
    let mut strict = base.to_vec();
    strict.push("--fail-on-deny");
    let o = rolegate(&strict, dir.path());
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(json_lines(&stdout(&o))[1]["visible"], json!(false));
    let o = run("bad-request.json");
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("valus"), "{}", stderr(&o));
}

#[test]
fn eval_bad_inputs_exit_2_3_or_4_without_panicking() {
    let dir = setup();
    write(dir.path(), "empty.json", "");
    write(dir.path(), "notjson.json", "{oops");
    write(dir.path(), "array.json", "[1, 2]");
    write(dir.path(), "bad.jsonl", "{\"_id\": 1}\nnot json\n");
    write(dir.path(), "blank.jsonl", "\n\n");
    write_json(
        dir.path(),
        "bad-ejson.json",
        &json!({"_id": {"$oid": "not hex"}}),
    );
    let base = [
        "eval",
        "app",
        "--collection",
        "app.items",
        "--action",
        "read",
    ];
    // 3: an input file that cannot be used.
    let input: Vec<Vec<&str>> = vec![
        vec!["--user", "missing.json", "--document", "mine.json"],
        vec!["--user", "empty.json", "--document", "mine.json"],
        vec!["--user", "notjson.json", "--document", "mine.json"],
        vec!["--user", "array.json", "--document", "mine.json"],
        vec!["--user", "alice.json", "--document", "empty.json"],
        vec!["--user", "alice.json", "--document", "array.json"],
        vec!["--user", "alice.json", "--document", "bad-ejson.json"],
        vec!["--user", "alice.json", "--documents", "bad.jsonl"],
        vec!["--user", "alice.json", "--documents", "blank.jsonl"],
        vec![
            "--user",
            "alice.json",
            "--document",
            "mine.json",
            "--request",
            "empty.json",
        ],
    ];
    // 2: a wrong command line.
    let usage: Vec<Vec<&str>> = vec![
        vec![
            "--user",
            "alice.json",
            "--document",
            "mine.json",
            "--documents",
            "docs.jsonl",
        ],
        vec!["--user", "alice.json"],
        vec![
            "--user",
            "alice.json",
            "--document",
            "mine.json",
            "--prev",
            "mine.json",
        ],
        vec!["--user", "-", "--document", "-"],
    ];
    for (expected, cases) in [(3, input), (2, usage)] {
        for extra in cases {
            let mut args = base.to_vec();
            args.extend(extra.iter().copied());
            let o = rolegate(&args, dir.path());
            assert_eq!(
                code(&o),
                expected,
                "{extra:?}: {}{}",
                stdout(&o),
                stderr(&o)
            );
            assert!(!stderr(&o).is_empty(), "{extra:?}: a message on stderr");
            assert!(!stderr(&o).contains("panicked"), "{extra:?}");
        }
    }
    for (path, coll, expected) in [
        ("no-app", "app.items", 4),
        ("empty.json", "app.items", 4),
        (".", "app.items", 4),
        ("app", "appitems", 2),
        ("app", "nosuch/app.items", 2),
    ] {
        let o = rolegate(
            &[
                "eval",
                path,
                "--collection",
                coll,
                "--user",
                "alice.json",
                "--action",
                "read",
                "--document",
                "mine.json",
            ],
            dir.path(),
        );
        assert_eq!(
            code(&o),
            expected,
            "{path} {coll}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"));
    }
}

// ---------------------------------------------------------------------------------------------
// test

fn case(name: &str, expected_visible: bool) -> Value {
    json!({
        "name": name, "source": "tests/cli.rs", "notes": "[spec] a read",
        "rules": {"mode": "mongodb", "collection_rules": {"database": "app", "collection": "items",
                  "roles": [{"name": "owner", "apply_when": {"owner_id": "%%user.id"}, "read": true}]}, "default_rule": null},
        "user": {"id": "alice", "type": "normal", "data": {}, "custom_data": {}, "identities": []},
        "document": {"_id": 1, "owner_id": "alice"},
        "action": "read",
        "expected": {"visible": expected_visible}
    })
}

#[test]
fn test_passing_and_failing_cases() {
    let dir = setup();
    write_json(
        dir.path(),
        "pass.json",
        &json!([case("a", true), case("b", true)]),
    );
    write_json(
        dir.path(),
        "fail.json",
        &json!([case("c", true), case("d", false)]),
    );
    let o = rolegate(&["test", "pass.json"], dir.path());
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stdout(&o).trim_end().ends_with("2 passed, 0 failed"),
        "{}",
        stdout(&o)
    );

    let o = rolegate(&["test", "pass.json", "fail.json"], dir.path());
    assert_eq!(code(&o), 1);
    let text = stdout(&o);
    assert!(text.contains("FAIL d"), "{text}");
    assert!(text.contains("expected: {\"visible\":false}"), "{text}");
    assert!(text.contains("actual:"), "{text}");
    assert!(text.trim_end().ends_with("3 passed, 1 failed"), "{text}");

    let o = rolegate(&["test", "fail.json", "--format", "json"], dir.path());
    assert_eq!(code(&o), 1);
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["passed"], json!(true));
    assert_eq!(lines[1]["passed"], json!(false));
    assert_eq!(lines[1]["name"], json!("d"));
    assert_eq!(lines[1]["actual"]["visible"], json!(true));
}

#[test]
fn test_bad_case_files_exit_3() {
    let dir = setup();
    let mut misspelt = case("x", true);
    misspelt["expected"] = json!({"visble": true});
    write_json(dir.path(), "misspelt.json", &json!([misspelt]));
    write_json(
        dir.path(),
        "dup.json",
        &json!([case("x", true), case("x", true)]),
    );
    write(dir.path(), "empty.json", "");
    write(dir.path(), "notjson.json", "[{");
    write_json(dir.path(), "object.json", &json!({"name": "x"}));
    for file in [
        "missing.json",
        "misspelt.json",
        "dup.json",
        "empty.json",
        "notjson.json",
        "object.json",
    ] {
        let o = rolegate(&["test", file], dir.path());
        assert_eq!(code(&o), 3, "{file}: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains(file), "{file}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn test_runs_the_shipped_case_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rolegate");
    let o = rolegate(
        &[
            "test",
            "tests/conformance/doc-cases.json",
            "tests/conformance/rolegate-cases.json",
        ],
        &dir,
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
}
