//! `rolegate bench`: the JSON report's keys for both engines and every action, the human
//! report, no progress bar when stderr is not a terminal, and bad input (exit 2, never a panic).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

mod support;
use support::{code, rolegate, stderr};

const KEYS: [&str; 7] = [
    "engine",
    "documents",
    "docs_per_sec",
    "ns_per_doc_median",
    "ns_per_doc_p99",
    "prepare_ns",
    "compile_ms",
];

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rolegate/benches/data")
        .join(rel)
}

/// A temporary folder with the first `n` W1 sample documents in `docs.jsonl`.
fn fixture(n: usize) -> TempDir {
    let dir = TempDir::new().unwrap();
    let text = std::fs::read_to_string(data("w1/documents.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().take(n).collect();
    std::fs::write(dir.path().join("docs.jsonl"), lines.join("\n") + "\n").unwrap();
    dir
}

fn bench(dir: &Path, extra: &[&str]) -> Output {
    let rules = data("w1/rules.json");
    let user = data("w1/user.json");
    let mut args: Vec<&str> = vec![
        "bench",
        rules.to_str().unwrap(),
        "--collection",
        "bench.w1",
        "--user",
        user.to_str().unwrap(),
        "--documents",
        "docs.jsonl",
    ];
    args.extend_from_slice(extra);
    rolegate(&args, dir)
}

fn json(o: &Output) -> Value {
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one JSON object: {text}");
    serde_json::from_str(lines[0]).unwrap()
}

#[test]
fn the_json_report_has_every_key_for_both_engines() {
    let dir = fixture(12);
    for engine in ["compiled", "reference"] {
        let o = bench(
            dir.path(),
            &["--engine", engine, "--format", "json", "--iterations", "3"],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        // stderr is a pipe here: no progress bar.
        assert_eq!(stderr(&o), "");
        let v = json(&o);
        for key in KEYS {
            assert!(v.get(key).is_some(), "{engine}: no `{key}` in {v}");
        }
        assert_eq!(v["engine"], engine);
        assert_eq!(v["action"], "read");
        assert_eq!(v["documents"], 12);
        assert_eq!(v["iterations"], 3);
        assert_eq!(v["visible"], 12, "every W1 sample document is visible");
        for key in [
            "docs_per_sec",
            "ns_per_doc_median",
            "ns_per_doc_p99",
            "prepare_ns",
        ] {
            assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {v}");
        }
        assert!(v["compile_ms"].as_f64().unwrap() >= 0.0);
        assert!(v["ns_per_doc_p99"].as_f64() >= v["ns_per_doc_median"].as_f64());
    }
}

#[test]
fn the_default_is_the_compiled_engine_with_a_calibrated_iteration_count() {
    let dir = fixture(3);
    let o = bench(dir.path(), &["--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["engine"], "compiled");
    assert!(v["iterations"].as_u64().unwrap() >= 1);
}

#[test]
fn the_human_report_names_every_figure() {
    let dir = fixture(6);
    let o = bench(dir.path(), &["--iterations", "2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    for part in [
        "compiled engine, read: 6 documents",
        "compile:",
        "prepare:",
        "per document:",
        "p99",
        "documents/s",
        "visible:       6 of 6",
    ] {
        assert!(text.contains(part), "no {part:?} in:\n{text}");
    }
}

#[test]
fn write_actions_report_allowed_writes() {
    let dir = fixture(9);
    // Only the owner's third of the documents may be inserted or deleted; an update that
    // changes nothing (each document is its own pre-image) writes no field.
    for (action, allowed) in [("insert", 3), ("update", 9), ("delete", 3)] {
        for engine in ["compiled", "reference"] {
            let o = bench(
                dir.path(),
                &[
                    "--action",
                    action,
                    "--engine",
                    engine,
                    "--format",
                    "json",
                    "--iterations",
                    "2",
                ],
            );
            assert_eq!(code(&o), 0, "{action}: {}", stderr(&o));
            let v = json(&o);
            assert_eq!(v["action"], action);
            assert_eq!(v["engine"], engine);
            assert_eq!(v["allowed"], allowed, "{action} {engine}: {v}");
            for key in KEYS {
                assert!(v.get(key).is_some(), "{action}: no `{key}` in {v}");
            }
        }
    }
}

#[test]
fn update_pairs_documents_with_pre_images() {
    let dir = fixture(4);
    std::fs::copy(dir.path().join("docs.jsonl"), dir.path().join("prev.jsonl")).unwrap();
    let o = bench(
        dir.path(),
        &[
            "--action",
            "update",
            "--prev",
            "prev.jsonl",
            "--format",
            "json",
            "--iterations",
            "2",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["documents"], 4);

    std::fs::write(dir.path().join("short.jsonl"), "{\"_id\": 1}\n").unwrap();
    let o = bench(
        dir.path(),
        &[
            "--action",
            "update",
            "--prev",
            "short.jsonl",
            "--iterations",
            "1",
        ],
    );
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("paired line by line"), "{}", stderr(&o));

    let o = bench(dir.path(), &["--prev", "prev.jsonl", "--iterations", "1"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("only for `--action update`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_input_exits_2_3_or_4_with_a_message() {
    let dir = fixture(2);
    let d = dir.path();
    std::fs::write(d.join("bad.jsonl"), "{\"_id\": 1}\nnot json\n").unwrap();
    std::fs::write(d.join("empty.jsonl"), "\n\n").unwrap();
    std::fs::write(d.join("array.jsonl"), "[1, 2]\n").unwrap();
    std::fs::write(d.join("user.json"), "{").unwrap();
    std::fs::write(d.join("broken-rules.json"), "{\"database\": \"bench\"}").unwrap();
    let rules = data("w1/rules.json");
    let rules = rules.to_str().unwrap();
    let user = data("w1/user.json");
    let user = user.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (
            vec![
                "bench",
                "missing-dir",
                "--collection",
                "bench.w1",
                "--user",
                user,
                "--documents",
                "docs.jsonl",
            ],
            "missing-dir",
            4,
        ),
        (
            vec![
                "bench",
                "broken-rules.json",
                "--collection",
                "bench.w1",
                "--user",
                user,
                "--documents",
                "docs.jsonl",
            ],
            "broken-rules.json",
            4,
        ),
        (
            vec![
                "bench",
                rules,
                "--collection",
                "nodot",
                "--user",
                user,
                "--documents",
                "docs.jsonl",
            ],
            "nodot",
            2,
        ),
        (
            vec![
                "bench",
                rules,
                "--collection",
                "bench.w1",
                "--user",
                "user.json",
                "--documents",
                "docs.jsonl",
            ],
            "user.json",
            3,
        ),
        (
            vec![
                "bench",
                rules,
                "--collection",
                "bench.w1",
                "--user",
                user,
                "--documents",
                "bad.jsonl",
            ],
            "line 2",
            3,
        ),
        (
            vec![
                "bench",
                rules,
                "--collection",
                "bench.w1",
                "--user",
                user,
                "--documents",
                "empty.jsonl",
            ],
            "no JSON lines",
            3,
        ),
        (
            vec![
                "bench",
                rules,
                "--collection",
                "bench.w1",
                "--user",
                user,
                "--documents",
                "array.jsonl",
            ],
            "array.jsonl",
            3,
        ),
        (
            vec![
                "bench",
                rules,
                "--collection",
                "bench.w1",
                "--user",
                user,
                "--documents",
                "missing.jsonl",
            ],
            "missing.jsonl",
            3,
        ),
        (
            vec![
                "bench",
                rules,
                "--collection",
                "bench.w1",
                "--user",
                user,
                "--documents",
                "docs.jsonl",
                "--engine",
                "fast",
            ],
            "fast",
            2,
        ),
        (
            vec![
                "bench",
                rules,
                "--collection",
                "bench.w1",
                "--user",
                user,
                "--documents",
                "docs.jsonl",
                "--iterations",
                "0",
            ],
            "iterations",
            2,
        ),
        (
            vec![
                "bench",
                rules,
                "--collection",
                "bench.w1",
                "--user",
                user,
                "--documents",
                "docs.jsonl",
                "--action",
                "frobnicate",
            ],
            "frobnicate",
            2,
        ),
        (
            vec!["bench", rules, "--collection", "bench.w1", "--user", user],
            "--documents",
            2,
        ),
    ];
    for (args, fragment, expected) in cases {
        let o = rolegate(&args, d);
        assert_eq!(code(&o), expected, "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}: nothing on stdout");
        let err = stderr(&o);
        assert!(err.contains(fragment), "{args:?}: no {fragment:?} in {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `--decision-only` times the decision alone on raw BSON (`read_raw`) and counts what the
/// default run (`redact_raw`) counts, on W1's rules without their filters (a filter sends a read
/// through `eval`'s path); it is refused where the timed path is not the raw read.
#[test]
fn decision_only_times_the_raw_decision_alone() {
    let dir = fixture(12);
    let mut rules: Value =
        serde_json::from_str(&std::fs::read_to_string(data("w1/rules.json")).unwrap()).unwrap();
    rules.as_object_mut().unwrap().remove("filters");
    std::fs::write(dir.path().join("rules.json"), rules.to_string()).unwrap();
    let user = data("w1/user.json");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            "rules.json",
            "--collection",
            "bench.w1",
            "--user",
            user.to_str().unwrap(),
            "--documents",
            "docs.jsonl",
            "--iterations",
            "3",
        ];
        args.extend_from_slice(extra);
        rolegate(&args, dir.path())
    };
    let default = json(&run(&["--format", "json"]));
    assert_eq!(default["timed"], "redact_raw", "{default}");
    let o = run(&["--format", "json", "--decision-only"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["timed"], "read_raw", "{v}");
    for key in ["visible", "withheld", "not_selected", "documents"] {
        assert_eq!(v[key], default[key], "{key}: {v} vs {default}");
    }
    assert!(v["ns_per_doc_median"].as_f64().unwrap() > 0.0, "{v}");
    // With the filters, a read is timed through eval's path: refused, as is a write.
    for o in [
        bench(dir.path(), &["--iterations", "1", "--decision-only"]),
        run(&["--action", "insert", "--decision-only"]),
    ] {
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(stderr(&o).contains("--decision-only"), "{}", stderr(&o));
    }
}
