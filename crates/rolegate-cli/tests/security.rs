//! The command line's side of the security findings (docs/security.md): what `eval` shows and
//! decides, run as a user runs it. The library's side of each finding is in
//! `crates/rolegate/tests/security_*.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::process::Command;

use rolegate::ClientError;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Finding: disclosure. The JSON output labels the client's view and the explanation's.

#[test]
fn the_cli_json_labels_both_views() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, value: serde_json::Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path.display().to_string()
    };
    let rules = write(
        "rules.json",
        json!({"database": "app", "collection": "items", "roles": [{"name": "roleQuartz",
            "apply_when": {"owner_id": {"%stringToOid": "%%root.secretRef"}}, "read": true}]}),
    );
    let user = write("user.json", json!({"id": "u1"}));
    let document = write(
        "doc.json",
        json!({"secretRef": "CLI-SECRET-1234", "owner_id": 1}),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args([
            "eval",
            &rules,
            "--collection",
            "app.items",
            "--user",
            &user,
            "--action",
            "read",
            "--document",
            &document,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v.get("document").is_some())
        .unwrap_or_else(|| panic!("no decision in {stdout}"));
    assert!(
        line["error"].as_str().unwrap().contains("CLI-SECRET-1234"),
        "{line}"
    );
    assert_eq!(
        line["client_error"],
        json!({"code": "RuleEvaluationFailed", "message": ClientError::RULE_EVALUATION_FAILED.message})
    );
}

// ---------------------------------------------------------------------------------------------
// Finding: namespace. An ambiguous namespace is refused with both candidates.

/// Two data sources, each with a default rule and no collection of its own.
fn two_sources_with_default_rules() -> Vec<(String, Value)> {
    ["atlas-a", "atlas-b"]
        .iter()
        .flat_map(|ds| {
            [
                (
                    format!("data_sources/{ds}/config.json"),
                    json!({"name": ds, "type": "mongodb-atlas", "config": {}}),
                ),
                (
                    format!("data_sources/{ds}/default_rule.json"),
                    json!({"roles": [{"name": format!("{ds}-default"), "apply_when": {}, "read": true}],
                           "filters": []}),
                ),
            ]
        })
        .collect()
}

#[test]
fn cli_eval_refuses_an_ambiguous_namespace() {
    let dir = tempfile::tempdir().unwrap();
    for (path, value) in two_sources_with_default_rules() {
        let p = dir.path().join("app").join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, value.to_string()).unwrap();
    }
    std::fs::write(
        dir.path().join("user.json"),
        json!({"id": "u", "type": "normal", "data": {}, "custom_data": {}}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("doc.json"), json!({"_id": 1}).to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args([
            "eval",
            "app",
            "--collection",
            "app.items",
            "--user",
            "user.json",
            "--action",
            "read",
            "--document",
            "doc.json",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("atlas-a/app.items") && stderr.contains("atlas-b/app.items"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Finding: probing. `eval` used to select documents with the merged query on the stored document.

fn cli(args: &[&str], dir: &std::path::Path) -> Vec<Value> {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn cli_eval_cannot_probe_a_hidden_salary() {
    let dir = tempfile::tempdir().unwrap();
    let write =
        |name: &str, v: &Value| std::fs::write(dir.path().join(name), v.to_string()).unwrap();
    write(
        "rules.json",
        &json!({"database": "hr", "collection": "staff", "roles": [
            {"name": "self", "apply_when": {"user_id": "%%user.id"}, "read": true},
            {"name": "colleague", "apply_when": {},
             "fields": {"name": {"read": true}, "team": {"read": true}}}]}),
    );
    write(
        "user.json",
        &json!({"id": "mallory", "type": "normal", "data": {}, "custom_data": {}}),
    );
    std::fs::write(
        dir.path().join("staff.jsonl"),
        "{\"_id\": 1, \"user_id\": \"ann\", \"name\": \"Ann\", \"team\": \"x\", \"salary\": 150000}\n\
         {\"_id\": 2, \"user_id\": \"bob\", \"name\": \"Bob\", \"team\": \"x\", \"salary\": 50000}\n",
    )
    .unwrap();
    for engine in ["compiled", "reference"] {
        let run = |query: Value| {
            write(
                "req.json",
                &json!({"operation": {"kind": "find", "query": query}}),
            );
            cli(
                &[
                    "eval",
                    "rules.json",
                    "--collection",
                    "hr.staff",
                    "--user",
                    "user.json",
                    "--action",
                    "read",
                    "--documents",
                    "staff.jsonl",
                    "--request",
                    "req.json",
                    "--engine",
                    engine,
                    "--format",
                    "json",
                ],
                dir.path(),
            )
        };
        let lines = run(json!({"salary": {"$gt": 100_000}}));
        let plan = &lines[0]["plan"];
        assert!(
            !plan["store_query"].to_string().contains("salary"),
            "{plan}"
        );
        for line in &lines[1..] {
            assert_eq!(line["visible"], json!(false), "{engine}: {line}");
        }
        let lines = run(json!({"salary": {"$lte": 100_000}}));
        for line in &lines[1..] {
            assert_eq!(line["visible"], json!(false), "{engine}: {line}");
        }
        let lines = run(json!({"$where": "this.salary > 100000"}));
        assert_eq!(
            lines[0]["plan"]["code"],
            json!("operator-not-allowed"),
            "{lines:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Finding: projection. `eval` used to project first and decide on the projected document.

#[test]
fn cli_eval_decides_on_the_stored_document() {
    let out = cli_read(
        confidential_rules(),
        json!({"client_projection": {"confidential": 0}}),
        &[json!({"_id": 1, "name": "Ann", "salary": 150_000, "confidential": true})],
    );
    for line in &out {
        assert_eq!(line["role"], json!("confidential"), "{line}");
        assert_eq!(line["redacted"], json!({"name": "Ann"}), "{line}");
    }
    let out = cli_read(
        deleted_rules(),
        json!({"client_projection": {"deleted": 0}}),
        &[json!({"_id": 1, "name": "Ann", "deleted": true})],
    );
    for line in &out {
        assert_eq!(line["visible"], json!(false), "{line}");
    }
}

/// A document with `confidential: true` is read through a role that sees only `name`.
fn confidential_rules() -> Value {
    json!({"database": "hr", "collection": "staff", "roles": [
        {"name": "confidential", "apply_when": {"confidential": true},
         "fields": {"name": {"read": true}}},
        {"name": "everyone", "apply_when": {}, "read": true}
    ]})
}

/// Deleted documents are hidden by a document filter.
fn deleted_rules() -> Value {
    json!({"database": "hr", "collection": "staff", "roles": [
        {"name": "reader", "apply_when": {},
         "document_filters": {"read": {"deleted": {"$ne": true}}}, "read": true}
    ]})
}

fn write(dir: &Path, rel: &str, value: &Value) -> String {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_string(value).unwrap()).unwrap();
    path.display().to_string()
}

fn cli_read(rules: Value, request: Value, docs: &[Value]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let rules_path = write(dir.path(), "rules.json", &rules);
    let user = write(
        dir.path(),
        "user.json",
        &json!({"id": "alice", "type": "normal", "data": {}, "custom_data": {}}),
    );
    let request = write(dir.path(), "request.json", &request);
    let lines: Vec<String> = docs.iter().map(Value::to_string).collect();
    let docs_path = dir.path().join("docs.jsonl");
    std::fs::write(&docs_path, lines.join("\n")).unwrap();
    let mut out = Vec::new();
    for engine in ["compiled", "reference"] {
        let o = Command::new(env!("CARGO_BIN_EXE_rolegate"))
            .args([
                "eval",
                &rules_path,
                "--collection",
                "hr.staff",
                "--user",
                &user,
                "--action",
                "read",
                "--documents",
                &docs_path.display().to_string(),
                "--request",
                &request,
                "--engine",
                engine,
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out.extend(
            String::from_utf8(o.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|v| v.get("document").is_some()),
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Finding: system. `--system`, never the user file.

#[test]
fn the_cli_bypasses_only_with_the_system_flag() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, value: serde_json::Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path.display().to_string()
    };
    let rules = write(
        "rules.json",
        json!({"database": "app", "collection": "items",
            "roles": [{"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true}]}),
    );
    let user = write("user.json", json!({"id": "mallory", "type": "system"}));
    let document = write("doc.json", json!({"owner": "somebody-else", "salary": 1}));
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            rules.as_str(),
            "--collection",
            "app.items",
            "--user",
            user.as_str(),
            "--action",
            "read",
            "--document",
            document.as_str(),
            "--fail-on-deny",
        ];
        args.extend_from_slice(extra);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rolegate"))
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, stdout) = eval(&[]);
    assert_eq!(
        code,
        Some(1),
        "a user file of type system is withheld:\n{stdout}"
    );
    assert!(!stdout.contains("salary"), "{stdout}");
    let (code, stdout) = eval(&["--system"]);
    assert_eq!(code, Some(0), "--system bypasses the rules:\n{stdout}");
    assert!(stdout.contains("salary"), "{stdout}");
}
