//! MongoDB's documented expectations for `find`'s sort, skip, limit and projection, run through
//! [`rolegate::mql::find`]: every case of `tests/mql/find/*.json` (format: `docs/mql-cases.md`,
//! section `find/`) gives MongoDB's answer, or names the decision of `docs/semantics.md` by which
//! rolegate departs from it and gives rolegate's answer instead. Prints, per file, how many cases
//! passed.
//!
//! Documents are compared with MongoDB's equality and their keys' order
//! ([`rolegate::mql::bson_equal`] compares documents key by key, in order).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    reason = "test code: a failed unwrap is a failed test; the runner prints its counts"
)]

use std::path::{Path, PathBuf};

use bson::{Bson, Document};
use rolegate::mql::{FindRequest, bson_equal, bson_from_json, document_from_json, find};
use serde_json::Value;

/// Cases whose answer depends on the query matcher's `$elemMatch` and DBRef field names, which
/// the query part of issue 11 changes (decisions M4 and M7 on main): they may fail until that
/// matcher is merged into this branch, and are reported apart.
const PENDING_ON_THE_MATCHER: &[(&str, &str)] = &[
    ("elemmatch_projection.json", "empty predicate first array"),
    ("elemmatch_projection.json", "empty predicate array"),
    ("elemmatch_projection.json", "or of empty predicates array"),
    ("elemmatch_projection.json", "DBRef by $id"),
    ("elemmatch_projection.json", "DBRef by $ref"),
    ("elemmatch_projection.json", "DBRef by $db"),
];

fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mql/find")
}

fn documents(v: &Value) -> Vec<Document> {
    v.as_array()
        .expect("documents must be an array")
        .iter()
        .map(|d| document_from_json(d).expect("a document in Extended JSON"))
        .collect()
}

fn number(v: Option<&Value>) -> i64 {
    match v {
        None => 0,
        Some(v) => match bson_from_json(v).expect("a number") {
            Bson::Int32(i) => i64::from(i),
            Bson::Int64(i) => i,
            Bson::Double(d) => d as i64,
            other => panic!("skip and limit are numbers, not {other}"),
        },
    }
}

/// What a case expects, read from its keys.
enum Expected {
    Documents {
        docs: Vec<Document>,
        unordered: bool,
    },
    Ids(Vec<Bson>),
    Error(String),
}

fn expected_of(case: &Value, key_docs: &str, key_ids: &str, key_error: &str) -> Option<Expected> {
    if let Some(e) = case.get(key_error) {
        return Some(Expected::Error(
            e.as_str().expect("an error code name").to_string(),
        ));
    }
    if let Some(ids) = case.get(key_ids) {
        return Some(Expected::Ids(
            ids.as_array()
                .expect("expectedIds is an array")
                .iter()
                .map(|i| bson_from_json(i).expect("an _id"))
                .collect(),
        ));
    }
    case.get(key_docs).map(|docs| Expected::Documents {
        docs: documents(docs),
        unordered: case
            .get("unordered")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The expectation rolegate must meet: MongoDB's, or with `decision`, rolegate's (`rolegate`:
/// documents, or `{"error": code}`).
fn expectation(case: &Value) -> Expected {
    if case.get("decision").is_some() {
        let r = case
            .get("rolegate")
            .expect("a case with `decision` gives rolegate's result in `rolegate`");
        if let Some(e) = r.get("error") {
            return Expected::Error(e.as_str().expect("an error code name").to_string());
        }
        return Expected::Documents {
            docs: documents(r),
            unordered: case
                .get("unordered")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
    }
    expected_of(case, "expected", "expectedIds", "error")
        .expect("a case has `expected`, `expectedIds` or `error`")
}

fn same_docs(got: &[Document], want: &[Document], unordered: bool) -> bool {
    if got.len() != want.len() {
        return false;
    }
    let eq = |a: &Document, b: &Document| {
        bson_equal(&Bson::Document(a.clone()), &Bson::Document(b.clone()))
    };
    if !unordered {
        return got.iter().zip(want).all(|(a, b)| eq(a, b));
    }
    let mut left: Vec<&Document> = want.iter().collect();
    for g in got {
        match left.iter().position(|w| eq(g, w)) {
            Some(i) => {
                left.swap_remove(i);
            }
            None => return false,
        }
    }
    true
}

/// Runs one case; `Err` says what differs.
fn run_case(file_docs: Option<&Value>, case: &Value) -> Result<(), String> {
    let docs = case
        .get("documents")
        .or(file_docs)
        .map(documents)
        .unwrap_or_default();
    let doc_of = |key: &str| -> Document {
        case.get(key)
            .map(|v| document_from_json(v).expect("a document"))
            .unwrap_or_default()
    };
    let request = FindRequest {
        filter: doc_of("filter"),
        sort: doc_of("sort"),
        skip: number(case.get("skip")),
        limit: number(case.get("limit")),
        projection: doc_of("projection"),
    };
    let got = find(&docs, &request);
    match (expectation(case), got) {
        (Expected::Error(code), Err(e)) if e.code == code => Ok(()),
        (Expected::Error(code), Err(e)) => Err(format!("expected error {code}, got {e}")),
        (Expected::Error(code), Ok(out)) => Err(format!(
            "expected error {code}, got {} documents: {out:?}",
            out.len()
        )),
        (_, Err(e)) => Err(format!("unexpected error {e}")),
        (Expected::Ids(ids), Ok(out)) => {
            let got: Vec<Bson> = out
                .iter()
                .map(|d| d.get("_id").cloned().unwrap_or(Bson::Null))
                .collect();
            let same =
                got.len() == ids.len() && got.iter().zip(&ids).all(|(a, b)| bson_equal(a, b));
            if same {
                Ok(())
            } else {
                Err(format!(
                    "expected _ids {}, got {}",
                    Bson::Array(ids),
                    Bson::Array(got)
                ))
            }
        }
        (Expected::Documents { docs, unordered }, Ok(out)) => {
            if same_docs(&out, &docs, unordered) {
                Ok(())
            } else {
                Err(format!(
                    "expected {}, got {}",
                    Bson::Array(docs.into_iter().map(Bson::Document).collect()),
                    Bson::Array(out.into_iter().map(Bson::Document).collect())
                ))
            }
        }
    }
}

#[test]
fn every_find_case_gives_mongodbs_answer_or_names_a_decision() {
    let semantics = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/semantics.md"),
    )
    .expect("docs/semantics.md");
    let mut files: Vec<PathBuf> = std::fs::read_dir(case_dir())
        .expect("tests/mql/find")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in tests/mql/find");
    let (mut total, mut passed, mut pending_failures) = (0, 0, 0);
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            file.get("source").is_some(),
            "{name}: every file names its source"
        );
        let cases = file["cases"].as_array().expect("cases");
        let mut ok = 0;
        let mut decisions = 0;
        for case in cases {
            let case_name = case["name"].as_str().expect("a case name");
            if let Some(d) = case.get("decision").and_then(Value::as_str) {
                decisions += 1;
                assert!(
                    semantics.contains(&format!("**{d} "))
                        || semantics.contains(&format!("| {d} |")),
                    "{name} `{case_name}`: decision {d} is not in docs/semantics.md"
                );
            }
            let pending = PENDING_ON_THE_MATCHER.contains(&(name.as_str(), case_name));
            match run_case(file.get("documents"), case) {
                Ok(()) => ok += 1,
                Err(why) if pending => {
                    println!("  pending on the query matcher: {name} `{case_name}`: {why}");
                    pending_failures += 1;
                }
                Err(why) => failures.push(format!("{name} `{case_name}`: {why}")),
            }
        }
        println!(
            "{name}: {ok}/{} passed{}",
            cases.len(),
            if decisions > 0 {
                format!(" ({decisions} by a decision)")
            } else {
                String::new()
            }
        );
        total += cases.len();
        passed += ok;
    }
    println!(
        "find cases: {passed}/{total} passed, {pending_failures} pending on the query matcher"
    );
    assert!(
        failures.is_empty(),
        "{} of {total} find cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
