//! `rolegate eval --explain` on the example app (`examples/tasks-app`), in text and JSON: the
//! values compared when an `apply_when` or a field rule is false, the place (file and JSON
//! path) of denying rules as well as granting ones, why each filter applied or not, why a
//! document the plan does not select is left out, and a function mock's arguments when it has
//! no result for them. Without `--explain` the decisions are the same and nothing is explained;
//! the client-safe error never quotes a value.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const TASKS: &str = "data_sources/mongodb-atlas/taskboard/tasks/rules.json";
const PROJECTS: &str = "data_sources/mongodb-atlas/taskboard/projects/rules.json";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `rolegate eval examples/tasks-app --collection taskboard.COLL --user USER --action read
/// --documents DOCS --request REQ` plus `extra`, run from the repository root.
fn eval(coll: &str, user: &str, docs: &str, request: &str, extra: &[&str]) -> Output {
    let sample = "examples/tasks-app/sample";
    let mut args = vec![
        "eval".to_string(),
        "examples/tasks-app".to_string(),
        "--collection".to_string(),
        format!("taskboard.{coll}"),
        "--user".to_string(),
        format!("{sample}/users/{user}.json"),
        "--action".to_string(),
        "read".to_string(),
        "--documents".to_string(),
        format!("{sample}/{docs}"),
        "--request".to_string(),
        format!("{sample}/{request}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(&args)
        .current_dir(root())
        .output()
        .expect("run rolegate");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn text(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json_lines(o: &Output) -> Vec<Value> {
    text(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn assert_has(out: &str, line: &str) {
    assert!(out.contains(line), "missing:\n{line}\nin:\n{out}");
}

#[test]
fn text_explains_values_compared_denying_places_and_filters() {
    let o = eval(
        "tasks",
        "alice",
        "tasks.jsonl",
        "request.json",
        &["--explain"],
    );
    let out = text(&o);
    // (c) The filter applies: its apply_when, and the query and projection it adds.
    assert_has(
        &out,
        &format!(
            "- filter `hideArchivedFromNonAdmins` applies: its apply_when is true [{TASKS}: filters[0].apply_when]"
        ),
    );
    assert_has(
        &out,
        &format!(
            r#"- filter `hideArchivedFromNonAdmins` adds the query {{"archived":{{"$ne":true}}}} [{TASKS}: filters[0].query]"#
        ),
    );
    assert_has(
        &out,
        &format!(
            "- filter `hideArchivedFromNonAdmins` adds no projection [{TASKS}: filters[0].projection]"
        ),
    );
    // (a) The values compared by false apply_whens.
    assert_has(
        &out,
        &format!(
            r#"- values compared: owner_id: "66ca4010000000000000000c" (document) vs "66a11ce0000000000000000a" (%%user.id) => false [{TASKS}: roles[1].apply_when]"#
        ),
    );
    assert_has(
        &out,
        &format!(
            r#"- values compared: team: "design" (document) vs "platform" (%%user.custom_data.team) => false [{TASKS}: roles[3].apply_when]"#
        ),
    );
    // (b) The rules that denied: a field's own `read`, `additional_fields`, the role list.
    assert_has(
        &out,
        &format!(
            "- field `details.internalNotes` is not readable; removed [{TASKS}: roles[3].fields.details.fields.internalNotes.read]"
        ),
    );
    assert_has(
        &out,
        &format!(
            "- field `owner_id` is not readable; removed [{TASKS}: roles[3].additional_fields]"
        ),
    );
    assert_has(
        &out,
        &format!("- no role applies to this document [{TASKS}: roles]"),
    );
    // The archived document: the store query (the filter's) does not select it.
    assert_has(
        &out,
        r#"- the store query {"archived":{"$ne":true}} does not select this document"#,
    );
    assert_has(
        &out,
        "- it holds the queries of the applied filters: hideArchivedFromNonAdmins",
    );
}

#[test]
fn text_explains_a_filter_that_does_not_apply() {
    let o = eval(
        "tasks",
        "admin",
        "tasks.jsonl",
        "request-admin.json",
        &["--explain"],
    );
    let out = text(&o);
    assert_has(
        &out,
        &format!(
            "- filter `hideArchivedFromNonAdmins` does not apply: its apply_when is false [{TASKS}: filters[0].apply_when]"
        ),
    );
    assert_has(
        &out,
        &format!(
            "- values compared: %%user.custom_data.isAdmin: true vs $ne true => false [{TASKS}: filters[0].apply_when]"
        ),
    );
}

#[test]
fn a_function_mock_without_a_result_shows_the_arguments() {
    // Alice's request with Bob's mock: `isTeamMember` has a result for Bob's id only.
    for format in ["human", "json"] {
        let o = eval(
            "projects",
            "alice",
            "projects.jsonl",
            "request-bob.json",
            &["--explain", "--format", format],
        );
        let want = r#"function `isTeamMember` failed: the mock of `isTeamMember` has no result for the arguments ["66a11ce0000000000000000a"]; it has results for ["66b0b000000000000000000b"]"#;
        if format == "human" {
            assert_has(&text(&o), want);
            assert_has(
                &text(&o),
                &format!("{want}; denied [{PROJECTS}: roles[1].apply_when]"),
            );
        } else {
            let docs: Vec<Value> = json_lines(&o).into_iter().skip(1).collect();
            let failed = docs
                .iter()
                .find(|d| d["error"].as_str().is_some_and(|e| e.contains(want)))
                .unwrap_or_else(|| panic!("{docs:?}"));
            // The client's view: a code and a fixed message, no argument.
            assert_eq!(
                failed["client_error"],
                json!({"code": "RuleEvaluationFailed", "message": "the request was denied by the rules"})
            );
            let step = failed["explanation"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["message"].as_str().unwrap().contains("isTeamMember"))
                .unwrap();
            assert_eq!(step["file"], json!(PROJECTS));
            assert_eq!(step["path"], json!("roles[1].apply_when"));
        }
    }
}

#[test]
fn json_explains_with_file_and_path() {
    let o = eval(
        "tasks",
        "alice",
        "tasks.jsonl",
        "request.json",
        &["--explain", "--format", "json"],
    );
    let lines = json_lines(&o);
    let plan = &lines[0]["plan"]["explanation"];
    assert!(
        plan.as_array().unwrap().iter().any(|s| s
            == &json!({
                "message": "filter `hideArchivedFromNonAdmins` applies: its apply_when is true",
                "file": TASKS,
                "path": "filters[0].apply_when",
            })),
        "{plan}"
    );
    // Document 5: no role; every apply_when's values, and the role list that denied.
    let doc5 = lines.iter().find(|l| l["document"] == json!(5)).unwrap();
    let steps = doc5["explanation"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s
            == &json!({
                "message": r#"values compared: team: "design" (document) vs "platform" (%%user.custom_data.team) => false"#,
                "file": TASKS,
                "path": "roles[3].apply_when",
            })),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(
            |s| s["message"] == json!("no role applies to this document")
                && s["path"] == json!("roles")
        ),
        "{steps:?}"
    );
    // The unselected document says why.
    let doc6 = lines.iter().find(|l| l["document"] == json!(6)).unwrap();
    assert_eq!(doc6["selected"], json!(false));
    assert!(
        doc6["explanation"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does not select this document"),
        "{doc6}"
    );
}

/// Without `--explain` the decisions are the same, and nothing is explained.
#[test]
fn without_explain_the_decisions_are_the_same() {
    for (coll, user, docs, request) in [
        ("tasks", "alice", "tasks.jsonl", "request.json"),
        ("tasks", "admin", "tasks.jsonl", "request-admin.json"),
        ("projects", "alice", "projects.jsonl", "request-bob.json"),
    ] {
        let plain = eval(coll, user, docs, request, &["--format", "json"]);
        let explained = eval(
            coll,
            user,
            docs,
            request,
            &["--explain", "--format", "json"],
        );
        let plain = json_lines(&plain);
        let mut explained = json_lines(&explained);
        for line in &plain {
            assert!(line.get("explanation").is_none(), "{line}");
            assert!(line["plan"].get("explanation").is_none(), "{line}");
        }
        for line in &mut explained {
            let m = line.as_object_mut().unwrap();
            m.remove("explanation");
            if let Some(plan) = m.get_mut("plan").and_then(Value::as_object_mut) {
                plan.remove("explanation");
            }
        }
        assert_eq!(plain, explained, "{coll} {user}");
        let human = text(&eval(coll, user, docs, request, &[]));
        assert!(!human.contains("explanation:"), "{human}");
        assert!(!human.contains("values compared"), "{human}");
    }
}
