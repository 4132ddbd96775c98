//! The command line as a newcomer meets it (issue 10): a collection that no rule file names, a
//! folder that is not an app, `bench` deciding as `eval` does, input errors with their place
//! (JSON Lines line, request key, UTF-8 byte), `-` for stdin, duplicate and misspelt keys, a user
//! without `id`, one exit-code table for every command, and `--format json` for errors and
//! warnings too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use tempfile::TempDir;

mod support;
use support::{code, json_lines, rolegate, rolegate_stdin, stderr, stdout, write, write_json};

/// An app with `app.items` (owners read everything) and, with `default_rule`, a default rule
/// that lets everyone read; a user, documents and a request.
fn setup(default_rule: bool) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_json(
        d,
        "app/data_sources/mongodb-atlas/config.json",
        &json!({"name": "mongodb-atlas", "type": "mongodb-atlas"}),
    );
    write_json(
        d,
        "app/data_sources/mongodb-atlas/app/items/rules.json",
        &json!({"database": "app", "collection": "items", "roles": [
            {"name": "owner", "apply_when": {"owner_id": "%%user.id"}, "read": true, "write": true, "insert": true, "delete": true}
        ]}),
    );
    if default_rule {
        write_json(
            d,
            "app/data_sources/mongodb-atlas/default_rule.json",
            &json!({"roles": [{"name": "everyone", "apply_when": {}, "read": true}]}),
        );
    }
    write_json(
        d,
        "alice.json",
        &json!({"id": "alice", "type": "normal", "data": {}, "custom_data": {}, "identities": []}),
    );
    write(
        d,
        "docs.jsonl",
        "{\"_id\": 1, \"owner_id\": \"alice\"}\n{\"_id\": 2, \"owner_id\": \"bob\"}\n",
    );
    write_json(d, "mine.json", &json!({"_id": 1, "owner_id": "alice"}));
    write_json(d, "theirs.json", &json!({"_id": 2, "owner_id": "bob"}));
    dir
}

fn eval(dir: &Path, coll: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "eval",
        "app",
        "--collection",
        coll,
        "--user",
        "alice.json",
        "--action",
        "read",
        "--documents",
        "docs.jsonl",
    ];
    args.extend_from_slice(extra);
    rolegate(&args, dir)
}

// ---------------------------------------------------------------------------------------------
// 1. a collection that no rule file names; a folder that is not an app

#[test]
fn an_unnamed_collection_says_which_default_rule_applies() {
    let dir = setup(true);
    let o = eval(dir.path(), "app.itemz", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning[collection-not-named]")
            && err.contains("no rule file names `app.itemz`")
            && err.contains("the default rule of data source `mongodb-atlas` applies")
            && err.contains("default_rule.json")
            && err.contains("did you mean `app.items`?"),
        "{err}"
    );
    // Both documents are readable under the default rule.
    assert_eq!(stdout(&o).matches("visible").count(), 2, "{}", stdout(&o));

    let o = eval(dir.path(), "app.itemz", &["--format", "json"]);
    assert_eq!(code(&o), 0);
    let warnings = json_lines(&stderr(&o));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert_eq!(w["severity"], "warning");
    assert_eq!(w["code"], "collection-not-named");
    assert!(w["file"].as_str().unwrap().ends_with("default_rule.json"));
    assert_eq!(w["hint"], "did you mean `app.items`?");

    // A named collection says nothing.
    let o = eval(dir.path(), "app.items", &[]);
    assert_eq!(stderr(&o), "");

    // --strict refuses: a usage error (2), in text and JSON.
    let o = eval(dir.path(), "app.itemz", &["--strict"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("error[collection-not-named]"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");
    let o = eval(dir.path(), "app.itemz", &["--strict", "--format", "json"]);
    assert_eq!(code(&o), 2);
    assert_eq!(json_lines(&stderr(&o))[0]["severity"], "error");
    let o = eval(dir.path(), "app.items", &["--strict"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn an_unnamed_collection_without_a_default_rule_says_everything_is_denied() {
    let dir = setup(false);
    let o = eval(dir.path(), "app.other", &["--fail-on-deny"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("data source `mongodb-atlas` has no default rule")
            && err.contains("every read and write is denied"),
        "{err}"
    );
    // bench says it too, and reports which rules govern the collection.
    let o = rolegate(
        &[
            "bench",
            "app",
            "--collection",
            "app.other",
            "--user",
            "alice.json",
            "--documents",
            "docs.jsonl",
            "--iterations",
            "1",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        json_lines(&stderr(&o))[0]["code"],
        "collection-not-named",
        "{}",
        stderr(&o)
    );
    let report = &json_lines(&stdout(&o))[0];
    assert_eq!(report["rules"], "none");
    assert_eq!(report["visible"], 0);
    assert_eq!(report["withheld"], 2);
}

#[test]
fn check_refuses_a_folder_that_is_not_an_app() {
    let dir = setup(true);
    write(dir.path(), "notes/readme.txt", "hello");
    write(dir.path(), "notes/rules.json", "{}");
    let o = rolegate(&["check", "notes"], dir.path());
    assert_eq!(code(&o), 4, "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("error[not-an-app]") && text.contains("not an App Services app"),
        "{text}"
    );
    assert!(text.contains("invalid (1 errors"), "{text}");
    // The app itself passes.
    let o = rolegate(&["check", "app"], dir.path());
    assert_eq!(code(&o), 0, "{}", stdout(&o));
}

// ---------------------------------------------------------------------------------------------
// 2. bench decides as eval does

fn example(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/tasks-app")
        .join(rel)
        .display()
        .to_string()
}

/// eval's decisions counted: (yes, no, not selected), and whether a filter applied.
fn eval_counts(args: &[String]) -> ((u64, u64, u64), Option<bool>) {
    let mut full: Vec<&str> = vec!["eval"];
    full.extend(args.iter().map(String::as_str));
    full.extend(["--format", "json"]);
    let o = rolegate(&full, Path::new("."));
    assert_eq!(code(&o), 0, "{full:?}: {}", stderr(&o));
    let lines = json_lines(&stdout(&o));
    let filtered = lines
        .iter()
        .find_map(|l| l.get("plan"))
        .map(|p| !p["applied"].as_array().unwrap().is_empty());
    let mut counts = (0, 0, 0);
    for l in lines.iter().filter(|l| l.get("document").is_some()) {
        if l["selected"] == false {
            counts.2 += 1;
        } else if l["allowed"] == true {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    (counts, filtered)
}

fn bench_counts(args: &[String], engine: &str) -> (u64, u64, u64) {
    let mut full: Vec<&str> = vec!["bench"];
    full.extend(args.iter().map(String::as_str));
    full.extend(["--iterations", "2", "--format", "json", "--engine", engine]);
    let o = rolegate(&full, Path::new("."));
    assert_eq!(code(&o), 0, "{full:?}: {}", stderr(&o));
    let r = &json_lines(&stdout(&o))[0];
    let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
    if r.get("visible").is_some() {
        (n("visible"), n("withheld"), n("not_selected"))
    } else {
        (n("allowed"), n("refused"), 0)
    }
}

#[test]
fn bench_decides_exactly_as_eval_on_the_example_app() {
    let users = [
        ("alice", "request.json"),
        ("bob", "request-bob.json"),
        ("admin", "request-admin.json"),
        ("anon", "request-anon.json"),
    ];
    let collections = [
        "tasks",
        "projects",
        "employees",
        "activity",
        "announcements",
        "notifications",
    ];
    let (mut filtered, mut plain, mut some_withheld, mut some_visible) = (0, 0, 0, 0);
    for (user, request) in users {
        for coll in collections {
            for system in [false, true] {
                for action in ["read", "search", "insert", "delete"] {
                    let mut args: Vec<String> = vec![
                        example(""),
                        "--collection".into(),
                        format!("taskboard.{coll}"),
                        "--user".into(),
                        example(&format!("sample/users/{user}.json")),
                        "--request".into(),
                        example(&format!("sample/{request}")),
                        "--documents".into(),
                        example(&format!("sample/{coll}.jsonl")),
                        "--action".into(),
                        action.into(),
                    ];
                    if system {
                        args.push("--system".into());
                    }
                    let (expected, applied) = eval_counts(&args);
                    match applied {
                        Some(true) => filtered += 1,
                        Some(false) => plain += 1,
                        None => {}
                    }
                    some_withheld += usize::from(expected.1 + expected.2 > 0);
                    some_visible += usize::from(expected.0 > 0);
                    for engine in ["compiled", "reference"] {
                        assert_eq!(
                            bench_counts(&args, engine),
                            expected,
                            "{user} {coll} {action} system={system} {engine}: bench (yes, no, \
                             not selected) differs from eval"
                        );
                    }
                }
            }
        }
    }
    // Both bench paths were compared: reads with filters, and plain reads (the raw path).
    assert!(
        filtered > 0 && plain > 0,
        "filtered {filtered}, plain {plain}"
    );
    assert!(some_withheld > 0 && some_visible > 0);
}

#[test]
fn bench_decides_updates_as_eval_does() {
    let args: Vec<String> = vec![
        example(""),
        "--collection".into(),
        "taskboard.tasks".into(),
        "--user".into(),
        example("sample/users/bob.json"),
        "--request".into(),
        example("sample/request-bob.json"),
        "--action".into(),
        "update".into(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let read = |f: &str| std::fs::read_to_string(example(&format!("sample/{f}"))).unwrap();
    let one_line = |t: String| serde_json::from_str::<Value>(&t).unwrap().to_string() + "\n";
    let post = write(dir.path(), "post.jsonl", one_line(read("tasks-post.json")));
    let pre = write(dir.path(), "pre.jsonl", one_line(read("tasks-pre.json")));
    let mut full = args.clone();
    full.extend([
        "--documents".into(),
        post.display().to_string(),
        "--prev".into(),
        pre.display().to_string(),
    ]);
    let (expected, _) = eval_counts(&full);
    assert_eq!(expected, (1, 0, 0), "bob may complete the task");
    assert_eq!(bench_counts(&full, "compiled"), expected);
}

/// The long options of `rolegate <command> --help`.
fn help_options(command: &str) -> BTreeSet<String> {
    let o = rolegate(&[command, "--help"], Path::new("."));
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    let options = text
        .split("Options:")
        .nth(1)
        .and_then(|t| t.split("Exit codes").next())
        .unwrap_or_default()
        .to_string();
    options
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .filter(|w| !w.is_empty() && w != "help" && w != "version")
        .map(|w| format!("--{w}"))
        .collect()
}

#[test]
fn help_and_the_readme_list_every_option() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    for command in ["check", "eval", "test", "bench"] {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `rolegate {command} ")))
            .unwrap_or_else(|| panic!("no README row for `rolegate {command}`"));
        let options = help_options(command);
        assert!(options.contains("--format"), "{command}: {options:?}");
        for option in &options {
            assert!(
                row.contains(option.as_str()),
                "README's `rolegate {command}` row lacks {option}: {row}"
            );
        }
    }
    // The commands on a store have no --format (their output is Extended JSON).
    for command in ["call", "import", "export"] {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `rolegate {command} ")))
            .unwrap_or_else(|| panic!("no README row for `rolegate {command}`"));
        let options = help_options(command);
        assert!(options.contains("--store"), "{command}: {options:?}");
        for option in &options {
            assert!(
                row.contains(option.as_str()),
                "README's `rolegate {command}` row lacks {option}: {row}"
            );
        }
    }
    let bench = help_options("bench");
    for option in [
        "--collection",
        "--user",
        "--documents",
        "--action",
        "--engine",
        "--system",
        "--request",
        "--prev",
        "--iterations",
        "--strict",
    ] {
        assert!(bench.contains(option), "bench --help lacks {option}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. input errors with their place; `-` reads stdin

#[test]
fn every_bad_json_lines_line_is_reported_with_its_number() {
    let dir = setup(true);
    write(
        dir.path(),
        "bad.jsonl",
        "{\"_id\": 1}\nnot json\n\n{\"_id\": 3}\n[1, 2]\n{\"_id\": {\"$oid\": \"zz\"}}\n{\"_id\": \n",
    );
    let args = [
        "eval",
        "app",
        "--collection",
        "app.items",
        "--user",
        "alice.json",
        "--action",
        "read",
        "--documents",
        "bad.jsonl",
    ];
    let o = rolegate(&args, dir.path());
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let err = stderr(&o);
    for line in [2, 7] {
        assert!(
            err.contains(&format!("bad.jsonl line {line}: not valid JSON")),
            "line {line}: {err}"
        );
    }
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let o = rolegate(&json_args, dir.path());
    assert_eq!(code(&o), 3);
    let problems = json_lines(&stderr(&o));
    let lines: Vec<u64> = problems
        .iter()
        .map(|p| p["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 7], "JSON syntax errors first: {problems:?}");

    // Lines that are JSON but not documents: every one, after the syntax is fixed.
    write(
        dir.path(),
        "bad.jsonl",
        "{\"_id\": 1}\n[1, 2]\n{\"_id\": {\"$oid\": \"zz\"}}\n7\n",
    );
    let o = rolegate(&json_args, dir.path());
    assert_eq!(code(&o), 3);
    let problems = json_lines(&stderr(&o));
    let lines: Vec<u64> = problems
        .iter()
        .map(|p| p["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3, 4], "{problems:?}");
    assert!(problems.iter().all(|p| p["code"] == "invalid-document"
        && p["file"] == "bad.jsonl"
        && p["severity"] == "error"));
}

#[test]
fn a_bad_request_field_is_named_by_its_key_without_rust_type_names() {
    let dir = setup(true);
    write_json(
        dir.path(),
        "req.json",
        &json!({
            "functions": {"f": [{"args": [1], "returns": true}, "oops", {"args": 1}], "g": 3},
            "valus": {},
            "operation": {"kind": "finde", "query": []},
            "environment": "production"
        }),
    );
    let o = eval(dir.path(), "app.items", &["--request", "req.json"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let err = stderr(&o);
    for fragment in [
        "req.json: request.functions.f[1]: expected a mock",
        "request.functions.f[2].returns: missing key `returns`",
        "request.functions.f[2].args: expected an array",
        "request.functions.g: expected a mock",
        "request.valus: unknown key `valus` (hint: did you mean `values`?)",
        "request.operation.kind: unknown operation kind `finde` (hint: did you mean `find`?)",
        "request.operation.query: expected an object, got an array",
        "request.environment: expected an object",
    ] {
        assert!(err.contains(fragment), "no {fragment:?} in:\n{err}");
    }
    for rust in ["untagged", "enum", "struct", "FunctionMock", "CaseRequest"] {
        assert!(!err.contains(rust), "a Rust type name ({rust}) in:\n{err}");
    }
    // The same in a case file for `rolegate test`.
    write_json(
        dir.path(),
        "cases.json",
        &json!([{"name": "x", "rules": {"mode": "mongodb"}, "action": "read",
                 "request": {"functions": {"f": "oops"}}, "expected": {}}]),
    );
    let o = rolegate(&["test", "cases.json"], dir.path());
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cases.json: [0].request.functions.f: expected a mock"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("untagged"), "{}", stderr(&o));
    // A bad case key is reported with its line.
    let misspelt = write_json(
        dir.path(),
        "misspelt.json",
        &json!([{"name": "x", "source": "t", "notes": "[spec] x", "rules": {"mode": "mongodb"},
                 "action": "read", "expected": {"visble": true}}]),
    );
    let text = std::fs::read_to_string(misspelt).unwrap();
    let line = 1 + text.lines().position(|l| l.contains("visble")).unwrap() as u64;
    let o = rolegate(&["test", "misspelt.json", "--format", "json"], dir.path());
    assert_eq!(code(&o), 3);
    let p = &json_lines(&stderr(&o))[0];
    assert_eq!(p["line"], line, "{p}");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `visble`"),
        "{p}"
    );
}

#[test]
fn invalid_utf8_is_reported_with_its_byte_offset() {
    let dir = setup(true);
    write(dir.path(), "user.json", b"{\"id\": \"al\xffice\"}");
    write(
        dir.path(),
        "docs-utf8.jsonl",
        b"{\"_id\": 1}\n{\"_id\": \"\xc3\"}\n{\"_id\": 3}\n\xfe\n",
    );
    let o = rolegate(
        &[
            "eval",
            "app",
            "--collection",
            "app.items",
            "--user",
            "user.json",
            "--action",
            "read",
            "--document",
            "mine.json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("error[invalid-utf8]: user.json line 1: not valid UTF-8 at byte 10"),
        "{}",
        stderr(&o)
    );
    let o = eval(dir.path(), "app.items", &[]);
    assert_eq!(code(&o), 0);
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
            "docs-utf8.jsonl",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    assert!(
        err.contains("docs-utf8.jsonl line 2: not valid UTF-8 at byte 20")
            && err.contains("docs-utf8.jsonl line 4: not valid UTF-8 at byte 35"),
        "{err}"
    );
    // A rule file: the same kind of failure as a JSON syntax error (4), with the byte.
    write(
        dir.path(),
        "app/data_sources/mongodb-atlas/app/bad/rules.json",
        b"{\"roles\": \xff}",
    );
    let o = rolegate(&["check", "app"], dir.path());
    assert_eq!(code(&o), 4, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("error[invalid-utf8]") && stdout(&o).contains("at byte 10"),
        "{}",
        stdout(&o)
    );
    write(
        dir.path(),
        "app/data_sources/mongodb-atlas/app/bad/rules.json",
        b"{\"roles\": ",
    );
    let o = rolegate(&["check", "app"], dir.path());
    assert_eq!(code(&o), 4, "{}", stdout(&o));
}

#[test]
fn a_dash_reads_stdin_for_one_input() {
    let dir = setup(true);
    let d = dir.path();
    let base = [
        "eval",
        "app",
        "--collection",
        "app.items",
        "--action",
        "read",
    ];
    let run = |extra: &[&str], input: &str| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        args.extend(["--format", "json"]);
        rolegate_stdin(&args, d, input.as_bytes())
    };
    let user = std::fs::read_to_string(d.join("alice.json")).unwrap();
    let docs = std::fs::read_to_string(d.join("docs.jsonl")).unwrap();
    let visible = |o: &Output| {
        json_lines(&stdout(o))
            .iter()
            .filter(|l| l["visible"] == true)
            .count()
    };
    for (extra, input) in [
        (
            &["--user", "-", "--documents", "docs.jsonl"][..],
            user.as_str(),
        ),
        (
            &["--user", "alice.json", "--documents", "-"][..],
            docs.as_str(),
        ),
        (
            &["--user", "alice.json", "--document", "-"][..],
            "{\"_id\": 1, \"owner_id\": \"alice\"}",
        ),
        (
            &[
                "--user",
                "alice.json",
                "--documents",
                "docs.jsonl",
                "--request",
                "-",
            ][..],
            "{\"operation\": {\"kind\": \"find\", \"query\": {\"_id\": 1}}}",
        ),
    ] {
        let o = run(extra, input);
        assert_eq!(code(&o), 0, "{extra:?}: {}", stderr(&o));
        assert_eq!(visible(&o), 1, "{extra:?}: {}", stdout(&o));
    }
    // Stdin is named `<stdin>` in errors.
    let o = run(&["--user", "alice.json", "--documents", "-"], "{\n");
    assert_eq!(code(&o), 3);
    assert_eq!(json_lines(&stderr(&o))[0]["file"], "<stdin>");
    // Two inputs from stdin: a usage error.
    let o = run(&["--user", "-", "--documents", "-"], "");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("stdin"), "{}", stderr(&o));
}

// ---------------------------------------------------------------------------------------------
// 4. duplicate keys, misspelt keys, a user without `id`

#[test]
fn duplicate_keys_in_a_rule_file_are_a_warning_naming_both() {
    let dir = setup(true);
    write(
        dir.path(),
        "app/data_sources/mongodb-atlas/app/items/rules.json",
        "{\"database\": \"app\", \"collection\": \"items\",\n \"roles\": [{\"name\": \"r\", \"apply_when\": {},\n   \"read\": true,\n   \"read\": false}]}\n",
    );
    let o = rolegate(&["check", "app", "--format", "json"], dir.path());
    assert_eq!(code(&o), 0, "a warning: {}", stdout(&o));
    let lines = json_lines(&stdout(&o));
    let w = lines
        .iter()
        .find(|l| l["code"] == "duplicate-key")
        .unwrap_or_else(|| panic!("no duplicate-key warning: {lines:?}"));
    assert_eq!(w["severity"], "warning");
    assert_eq!(w["file"], "data_sources/mongodb-atlas/app/items/rules.json");
    assert_eq!(w["path"], "roles[0].read");
    assert!(
        w["message"]
            .as_str()
            .unwrap()
            .contains("at line 3 and at line 4"),
        "{w}"
    );
    let o = rolegate(&["check", "app", "--deny-warnings"], dir.path());
    assert_eq!(code(&o), 1);
    // eval warns too, on stderr.
    let o = eval(dir.path(), "app.items", &[]);
    assert!(
        stderr(&o).contains("warning[duplicate-key]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_misspelt_key_gets_a_did_you_mean_hint() {
    let dir = setup(true);
    write_json(
        dir.path(),
        "app/data_sources/mongodb-atlas/app/items/rules.json",
        &json!({"database": "app", "collection": "items",
                "roles": [{"name": "r", "apply_when": {}, "raed": true}]}),
    );
    let o = rolegate(&["check", "app", "--format", "json"], dir.path());
    let lines = json_lines(&stdout(&o));
    let w = lines
        .iter()
        .find(|l| l["code"] == "unknown-key")
        .unwrap_or_else(|| panic!("no unknown-key warning: {lines:?}"));
    assert_eq!(w["path"], "roles[0].raed");
    assert_eq!(w["hint"], "did you mean `read`?");
    let o = rolegate(&["check", "app"], dir.path());
    assert!(
        stdout(&o).contains("roles[0].raed: unknown key `raed`")
            && stdout(&o).contains("(hint: did you mean `read`?)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_user_without_id_is_a_warning() {
    let dir = setup(true);
    write_json(
        dir.path(),
        "noid.json",
        &json!({"type": "normal", "custom_data": {}}),
    );
    let args = [
        "eval",
        "app",
        "--collection",
        "app.items",
        "--user",
        "noid.json",
        "--action",
        "read",
        "--document",
        "mine.json",
    ];
    let o = rolegate(&args, dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning[user-without-id]: noid.json: the user has no `id`"),
        "{}",
        stderr(&o)
    );
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let o = rolegate(&json_args, dir.path());
    let w = &json_lines(&stderr(&o))[0];
    assert_eq!(w["code"], "user-without-id");
    assert_eq!(w["file"], "noid.json");
    let o = eval(dir.path(), "app.items", &[]);
    assert_eq!(stderr(&o), "", "alice has an id");
}

// ---------------------------------------------------------------------------------------------
// 5. one exit-code table for every command

#[test]
fn exit_codes_are_the_same_table_for_every_command() {
    let dir = setup(true);
    let d = dir.path();
    write(d, "notjson.json", "{");
    write(d, "broken-rules.json", "{\"database\": ");
    write_json(
        d,
        "where.json",
        &json!({"operation": {"kind": "find", "query": {"$where": "1"}}}),
    );
    write_json(
        d,
        "case.json",
        &json!([{"name": "a", "source": "t", "notes": "[spec] a read", "rules": {"mode": "mongodb", "collection_rules": {"database": "app", "collection": "items",
            "roles": [{"name": "r", "apply_when": {}, "read": true}]}, "default_rule": null}, "user": {"id": "u"},
            "document": {"_id": 1}, "action": "read", "expected": {"visible": true}}]),
    );
    let mut failing: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("case.json")).unwrap()).unwrap();
    failing[0]["expected"]["visible"] = json!(false);
    write_json(d, "failing.json", &failing);
    write_json(
        d,
        "warn/data_sources/mongodb-atlas/app/items/rules.json",
        &json!({"database": "app", "collection": "items", "roles": [{"name": "r", "read": true}]}),
    );
    let e = |extra: &[&str]| {
        let mut v = vec![
            "eval",
            "app",
            "--collection",
            "app.items",
            "--action",
            "read",
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let b = |rules: &str, extra: &[&str]| {
        let mut v = vec![
            "bench",
            rules,
            "--collection",
            "app.items",
            "--iterations",
            "1",
        ];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let cases: Vec<(Vec<String>, i32)> = vec![
        // check
        (s(&["check", "app"]), 0),
        (s(&["check", "warn", "--deny-warnings"]), 1),
        (s(&["check"]), 2),
        (s(&["check", "app", "--frob"]), 2),
        (s(&["check", "broken-rules.json"]), 4),
        (s(&["check", "missing"]), 4),
        // eval
        (e(&["--user", "alice.json", "--documents", "docs.jsonl"]), 0),
        (
            e(&[
                "--user",
                "alice.json",
                "--documents",
                "docs.jsonl",
                "--fail-on-deny",
            ]),
            1,
        ),
        (e(&["--user", "alice.json"]), 2),
        (e(&["--user", "notjson.json", "--document", "mine.json"]), 3),
        (
            e(&["--user", "alice.json", "--document", "missing.json"]),
            3,
        ),
        (
            vec![
                "eval",
                "broken-rules.json",
                "--collection",
                "app.items",
                "--action",
                "read",
                "--user",
                "alice.json",
                "--document",
                "mine.json",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            4,
        ),
        // test
        (s(&["test", "case.json"]), 0),
        (s(&["test", "failing.json"]), 1),
        (s(&["test"]), 2),
        (s(&["test", "notjson.json"]), 3),
        // bench
        (
            b(
                "app",
                &["--user", "alice.json", "--documents", "docs.jsonl"],
            ),
            0,
        ),
        (
            b(
                "app",
                &[
                    "--user",
                    "alice.json",
                    "--documents",
                    "docs.jsonl",
                    "--request",
                    "where.json",
                ],
            ),
            1,
        ),
        (b("app", &["--user", "alice.json"]), 2),
        (
            b(
                "app",
                &["--user", "alice.json", "--documents", "notjson.json"],
            ),
            3,
        ),
        (
            b(
                "broken-rules.json",
                &["--user", "alice.json", "--documents", "docs.jsonl"],
            ),
            4,
        ),
    ];
    for (args, expected) in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = rolegate(&refs, d);
        assert_eq!(code(&o), expected, "{args:?}: {}{}", stdout(&o), stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn the_exit_code_table_is_written_once_in_help_and_readme() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    for command in ["check", "eval", "test", "bench", "call", "import", "export"] {
        let o = rolegate(&[command, "--help"], Path::new("."));
        let help = stdout(&o);
        assert!(
            help.contains("Exit codes (the same for every command)"),
            "{command}"
        );
        for code in ["0  yes", "1  no", "2  usage", "3  input", "4  rules"] {
            assert!(help.contains(code), "{command} --help lacks {code:?}");
        }
    }
    for row in [
        "| 0 | yes |",
        "| 1 | no |",
        "| 2 | usage |",
        "| 3 | input |",
        "| 4 | rules |",
    ] {
        assert!(
            readme.contains(row),
            "README lacks the exit-code row {row:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. --format json: errors and warnings too; one shape for every action

const PROBLEM_KEYS: [&str; 8] = [
    "severity", "code", "message", "file", "line", "path", "span", "hint",
];

#[test]
fn errors_and_warnings_are_json_objects_with_the_same_keys() {
    let dir = setup(true);
    let d = dir.path();
    write(d, "notjson.json", "{");
    write(d, "bad.jsonl", "x\ny\n");
    let runs: Vec<Vec<&str>> = vec![
        vec![
            "eval",
            "app",
            "--collection",
            "app.items",
            "--user",
            "notjson.json",
            "--action",
            "read",
            "--document",
            "mine.json",
            "--format",
            "json",
        ],
        vec![
            "eval",
            "app",
            "--collection",
            "app.items",
            "--user",
            "alice.json",
            "--action",
            "read",
            "--documents",
            "bad.jsonl",
            "--format",
            "json",
        ],
        vec![
            "eval",
            "app",
            "--collection",
            "nodot",
            "--user",
            "alice.json",
            "--action",
            "read",
            "--document",
            "mine.json",
            "--format",
            "json",
        ],
        vec![
            "eval",
            "missing",
            "--collection",
            "app.items",
            "--user",
            "alice.json",
            "--action",
            "read",
            "--document",
            "mine.json",
            "--format",
            "json",
        ],
        vec![
            "eval",
            "app",
            "--collection",
            "app.items",
            "--user",
            "alice.json",
            "--action",
            "reed",
            "--document",
            "mine.json",
            "--format",
            "json",
        ],
        vec![
            "bench",
            "app",
            "--collection",
            "app.items",
            "--user",
            "alice.json",
            "--documents",
            "bad.jsonl",
            "--format",
            "json",
        ],
        vec!["test", "notjson.json", "--format", "json"],
        vec!["check", "missing", "--format", "json"],
    ];
    for args in runs {
        let o = rolegate(&args, d);
        assert_ne!(code(&o), 0, "{args:?}");
        let problems = json_lines(&stderr(&o));
        assert!(!problems.is_empty(), "{args:?}: nothing on stderr");
        for p in &problems {
            let keys: BTreeSet<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, PROBLEM_KEYS.into_iter().collect(), "{args:?}: {p}");
            assert_eq!(p["severity"], "error", "{p}");
        }
    }
}

#[test]
fn every_action_of_eval_prints_the_same_keys() {
    let dir = setup(true);
    let d = dir.path();
    let mut shapes = BTreeSet::new();
    for (action, extra) in [
        ("read", &[][..]),
        ("search", &[][..]),
        ("insert", &[][..]),
        ("delete", &[][..]),
        ("update", &["--prev", "docs.jsonl"][..]),
    ] {
        for explain in [false, true] {
            let mut args = vec![
                "eval",
                "app",
                "--collection",
                "app.items",
                "--user",
                "alice.json",
                "--action",
                action,
                "--documents",
                "docs.jsonl",
                "--format",
                "json",
            ];
            args.extend_from_slice(extra);
            if explain {
                args.push("--explain");
            }
            let o = rolegate(&args, d);
            assert_eq!(code(&o), 0, "{action}: {}", stderr(&o));
            for line in json_lines(&stdout(&o))
                .iter()
                .filter(|l| l.get("document").is_some())
            {
                assert_eq!(line["action"], action);
                let mut keys: Vec<String> = line.as_object().unwrap().keys().cloned().collect();
                keys.sort();
                if explain {
                    for step in line["explanation"].as_array().unwrap() {
                        let k: BTreeSet<&str> = step
                            .as_object()
                            .unwrap()
                            .keys()
                            .map(String::as_str)
                            .collect();
                        assert_eq!(k, ["file", "message", "path"].into_iter().collect());
                    }
                    keys.retain(|k| k != "explanation");
                }
                shapes.insert(keys);
            }
        }
    }
    assert_eq!(shapes.len(), 1, "one shape for every action: {shapes:?}");
}

#[test]
fn a_usage_error_is_json_with_format_json() {
    let dir = setup(true);
    let o = rolegate(&["check", "app", "--frob", "--format", "json"], dir.path());
    assert_eq!(code(&o), 2);
    let p = &json_lines(&stderr(&o))[0];
    assert_eq!(p["code"], "usage");
    assert!(p["message"].as_str().unwrap().contains("--frob"), "{p}");
}
