//! `rolegate test --coverage`: the decision points of the rules the cases reach, in text, JSON
//! and HTML; `--min-coverage` and its exit codes; the example app's own cases; the report of
//! `docs/coverage.md` is the one the command writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

mod support;
use support::{code, json_lines, rolegate, stderr, stdout, write_json};

/// The orders rules: an owner reads and writes everything; a clerk reads `total`, and `note`
/// when senior.
fn rules() -> Value {
    json!({
        "database": "shop", "collection": "orders",
        "roles": [
            {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true, "write": true},
            {"name": "clerk", "apply_when": {"%%user.custom_data.clerk": true},
             "fields": {"total": {"read": true},
                        "note": {"read": {"%%user.custom_data.senior": true}}}}
        ]
    })
}

fn case(name: &str, user: Value, action: &str, expected: Value) -> Value {
    let mut c = json!({
        "name": name, "source": "tests/coverage.rs", "notes": "[example] coverage",
        "rules": {"mode": "mongodb", "collection_rules": rules()},
        "user": user,
        "document": {"_id": 1, "owner": "alice", "total": 30, "note": "gift"},
        "action": action, "expected": expected
    });
    if action == "update" {
        c["prevDocument"] = json!({"_id": 1, "owner": "alice", "total": 20, "note": "gift"});
    }
    c
}

fn clerk(id: &str, senior: bool) -> Value {
    json!({"id": id, "custom_data": {"clerk": true, "senior": senior}})
}

/// The owner reads and updates; a senior clerk reads. Never reached: the clerk role passed over
/// (no user is neither owner nor clerk) and `note` denied (no junior clerk).
fn cases() -> Value {
    json!([
        case(
            "owner reads",
            json!({"id": "alice"}),
            "read",
            json!({"role": "owner"})
        ),
        case(
            "owner updates",
            json!({"id": "alice"}),
            "update",
            json!({"allowed": true})
        ),
        case(
            "senior clerk reads",
            clerk("carol", true),
            "read",
            json!({"role": "clerk", "fields": ["total", "note"]})
        ),
    ])
}

/// The cases that reach the two missing outcomes.
fn missing_cases() -> Value {
    json!([
        case(
            "junior clerk reads",
            clerk("dave", false),
            "read",
            json!({"role": "clerk", "fields": ["total"]})
        ),
        case(
            "a stranger sees nothing",
            json!({"id": "eve"}),
            "read",
            json!({"role": null, "visible": false})
        ),
    ])
}

fn setup() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_json(dir.path(), "cases.json", &cases());
    write_json(dir.path(), "more.json", &missing_cases());
    dir
}

fn coverage_line(out: &str) -> Value {
    let lines = json_lines(out);
    let last = lines.last().unwrap();
    last["coverage"].clone()
}

fn uncovered(report: &Value) -> BTreeSet<(String, String, bool)> {
    let mut out = BTreeSet::new();
    for file in report["files"].as_array().unwrap() {
        for p in file["points"].as_array().unwrap() {
            if p["covered"] == json!(false) {
                out.insert((
                    file["file"].as_str().unwrap().to_string(),
                    p["path"].as_str().unwrap().to_string(),
                    p["outcome"].as_bool().unwrap(),
                ));
            }
        }
    }
    out
}

#[test]
fn the_missed_branches_are_reported_by_file_and_path() {
    let dir = setup();
    let o = rolegate(&["test", "cases.json", "--coverage"], dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "3 passed, 0 failed",
            "coverage: 7 of 9 decision points reached (77.7%) by 3 cases",
            "collection_rules (shop.orders): 7 of 9 (77.7%), 3 cases",
            "  not reached: roles[1].apply_when false (role `clerk`)",
            "  not reached: roles[1].fields.note.read denied (role `clerk`)",
        ]
    );

    let o = rolegate(
        &["test", "cases.json", "--coverage", "--format", "json"],
        dir.path(),
    );
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4, "three cases and the report");
    assert!(lines[..3].iter().all(|l| l["passed"] == json!(true)));
    let report = coverage_line(&out);
    assert_eq!(
        (report["covered"].clone(), report["total"].clone()),
        (json!(7), json!(9))
    );
    let expected: BTreeSet<(String, String, bool)> = [
        ("collection_rules", "roles[1].apply_when", false),
        ("collection_rules", "roles[1].fields.note.read", false),
    ]
    .iter()
    .map(|(f, p, o)| (f.to_string(), p.to_string(), *o))
    .collect();
    assert_eq!(uncovered(&report), expected);
    let file = &report["files"][0];
    assert_eq!(file["label"], json!("collection_rules (shop.orders)"));
    let note = file["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == json!("roles[1].fields.note.read") && p["outcome"] == json!(false))
        .unwrap();
    assert_eq!(note["kind"], json!("field_read"));
    assert_eq!(note["label"], json!("denied"));
    assert_eq!(note["name"], json!("clerk"));
    assert_eq!(note["hits"], json!(0));
    assert_eq!(report["min_coverage"], Value::Null);
    assert_eq!(report["meets_minimum"], json!(true));

    // With the cases that reach them, nothing is missed.
    let o = rolegate(
        &[
            "test",
            "cases.json",
            "more.json",
            "--coverage",
            "--min-coverage",
            "100",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("coverage: 9 of 9 decision points reached (100.0%) by 5 cases"));
    assert!(!stdout(&o).contains("not reached"));
}

#[test]
fn min_coverage_exits_1_below_the_threshold() {
    let dir = setup();
    let run = |extra: &[&str]| {
        let mut args = vec!["test", "cases.json"];
        args.extend_from_slice(extra);
        rolegate(&args, dir.path())
    };
    // 7 of 9 is 77.77...%.
    let o = run(&["--coverage", "--min-coverage", "77.7"]);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains("coverage 77.7% meets --min-coverage 77.7"),
        "{}",
        stdout(&o)
    );
    let o = run(&["--coverage", "--min-coverage", "77.78"]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).ends_with("FAIL coverage 77.7% is below --min-coverage 77.78\n"));
    let o = run(&["--coverage", "--min-coverage", "80", "--format", "json"]);
    assert_eq!(code(&o), 1);
    let report = coverage_line(&stdout(&o));
    assert_eq!(report["min_coverage"], json!(80.0));
    assert_eq!(report["meets_minimum"], json!(false));
    let o = run(&["--coverage", "--min-coverage", "0"]);
    assert_eq!(code(&o), 0);

    // A failed case is a no even when the coverage is met.
    let mut bad = cases();
    bad[0]["expected"] = json!({"role": "clerk"});
    write_json(dir.path(), "bad.json", &bad);
    let o = rolegate(
        &["test", "bad.json", "--coverage", "--min-coverage", "10"],
        dir.path(),
    );
    assert_eq!(code(&o), 1);

    // Usage errors: a threshold out of range or without --coverage, html without --coverage.
    for args in [
        &["--coverage", "--min-coverage", "101"][..],
        &["--coverage", "--min-coverage", "x"],
        &["--min-coverage", "50"],
        &["--output", "x.html"],
        &["--format", "html"],
    ] {
        let o = run(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
}

#[test]
fn the_html_page_marks_every_rule_of_every_file() {
    let dir = setup();
    // The junior clerk under the same rules; the stranger under other orders rules (a second
    // variant of `collection_rules`, `note` readable by every clerk) with a default rule that
    // nothing reaches (the collection has roles of its own).
    let mut two = missing_cases();
    two[1]["rules"]["collection_rules"]["roles"][1]["fields"]["note"]["read"] = json!(true);
    two[1]["rules"]["default_rule"] =
        json!({"roles": [{"name": "root", "apply_when": {"%%user.id": "root"}, "read": true}]});
    write_json(dir.path(), "two.json", &two);
    let o = rolegate(
        &[
            "test",
            "cases.json",
            "two.json",
            "--coverage",
            "--format",
            "html",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let page = stdout(&o);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<script"));
    assert!(page.contains("id=\"legend\""));
    assert!(
        page.contains("10 of 20 decision points reached (50.0%) by 5 cases; 5 passed, 0 failed."),
        "{page}"
    );

    // Each file: a section with its label, its totals and its JSON.
    let sections: Vec<&str> = page.split("<section class=\"file\"").skip(1).collect();
    let heading = |s: &str| {
        s.split("<h2>")
            .nth(1)
            .unwrap()
            .split("</h2>")
            .next()
            .unwrap()
            .to_string()
    };
    let headings: Vec<String> = sections.iter().map(|s| heading(s)).collect();
    assert_eq!(
        headings,
        [
            "collection_rules (shop.orders)",
            "collection_rules (shop.orders) #2",
            "default_rule"
        ]
    );
    let status = |s: &str, path: &str| {
        let at = s
            .find(&format!("data-path=\"{path}\""))
            .unwrap_or_else(|| panic!("{path}"));
        s[at..]
            .split("data-status=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    let first = sections[0];
    assert!(
        first.contains("8 of 9 decision points reached (88.8%), 4 cases."),
        "{first}"
    );
    assert!(
        first.contains("&quot;database&quot;"),
        "the file's JSON is shown"
    );
    // Every decision point's rule is marked, with its status and a badge per outcome.
    assert_eq!(status(first, "roles[0].apply_when"), "full");
    assert_eq!(status(first, "roles[0].read"), "full");
    assert_eq!(status(first, "roles[1].apply_when"), "partial");
    assert_eq!(status(first, "roles[1].fields.note.read"), "full");
    assert_eq!(first.matches("data-path=").count(), 6);
    assert_eq!(first.matches("class=\"badge hit\"").count(), 8);
    assert_eq!(first.matches("class=\"badge miss\"").count(), 1);
    assert!(first.contains("<li><code>roles[1].apply_when false (role `clerk`)</code></li>"));
    let second = sections[1];
    assert!(
        second.contains("2 of 8 decision points reached (25.0%), 1 case."),
        "{second}"
    );
    assert_eq!(status(second, "roles[1].fields.note.read"), "none");
    let third = sections[2];
    assert!(
        third.contains("0 of 3 decision points reached (0.0%), 1 case."),
        "{third}"
    );
    assert_eq!(status(third, "roles[0].apply_when"), "none");
    assert_eq!(status(third, "roles[0].read"), "none");

    // --output: the page in the file, the results on stdout.
    let o = rolegate(
        &[
            "test",
            "cases.json",
            "--coverage",
            "--format",
            "html",
            "--output",
            "cov.html",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0);
    assert_eq!(stdout(&o), "3 passed, 0 failed\n");
    let written = std::fs::read_to_string(dir.path().join("cov.html")).unwrap();
    assert!(written.contains("data-path=\"roles[1].fields.note.read\" data-status=\"partial\""));
    // An output that cannot be written: exit 3.
    let o = rolegate(
        &[
            "test",
            "cases.json",
            "--coverage",
            "--output",
            "no/such/dir/cov.txt",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_example_apps_cases_cover_its_rules_plausibly() {
    let dir = tempfile::tempdir().unwrap();
    let cases = repo().join("examples/tasks-app/expected-cases.json");
    let o = rolegate(
        &[
            "test",
            cases.to_str().unwrap(),
            "--coverage",
            "--format",
            "json",
            "--output",
            "r.json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let results = json_lines(&stdout(&o));
    assert!(results.iter().all(|r| r["passed"] == json!(true)));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    let (covered, total) = (
        report["covered"].as_u64().unwrap(),
        report["total"].as_u64().unwrap(),
    );
    assert!(total >= 100, "{total}");
    assert!(
        covered * 2 > total && covered < total,
        "{covered} of {total}"
    );
    let labels: BTreeSet<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    for coll in [
        "tasks",
        "projects",
        "employees",
        "activity",
        "announcements",
    ] {
        assert!(
            labels.contains(format!("collection_rules (taskboard.{coll})").as_str()),
            "{labels:?}"
        );
    }
    assert!(labels.contains("default_rule"));
    // The totals add up, every point is well formed, and every role's apply_when was reached.
    let files = report["files"].as_array().unwrap();
    let sum = |k: &str| files.iter().map(|f| f[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("covered"), sum("total")), (covered, total));
    for f in files {
        for p in f["points"].as_array().unwrap() {
            assert_eq!(p["covered"], json!(p["hits"].as_u64().unwrap() > 0));
            if p["kind"] == json!("apply_when") && p["outcome"] == json!(true) {
                assert_eq!(p["covered"], json!(true), "{} {}", f["label"], p["path"]);
            }
        }
    }
}

/// The JSON report shown in `docs/coverage.md` is the one the command writes for the example's
/// case file.
#[test]
fn the_documented_report_is_the_commands() {
    let doc = std::fs::read_to_string(repo().join("docs/coverage.md")).unwrap();
    let block = |tag: &str| {
        let start = doc.find(tag).unwrap_or_else(|| panic!("{tag}"));
        let body = &doc[start..];
        let body = &body[body.find('\n').unwrap() + 1..];
        body[..body.find("```").unwrap()].to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orders-cases.json"),
        block("file=orders-cases.json"),
    )
    .unwrap();
    let documented: Value = serde_json::from_str(&block("file=report.json")).unwrap();
    let o = rolegate(
        &[
            "test",
            "orders-cases.json",
            "--coverage",
            "--format",
            "json",
            "--output",
            "r.json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(written, documented);
}
