//! MongoDB's documented update expectations (`tests/mql/update/*.json`, format in
//! `docs/mql-cases.md`, section `update/`) run through `rolegate::mql::Update`: every case gives
//! MongoDB's document (keys in MongoDB's order, values of MongoDB's types), its `nModified`, or
//! its error code name, or names the decision by which rolegate departs from MongoDB on purpose
//! (the `decision` key of a case, or [`DECISIONS`] below, each in `docs/semantics.md`).
//! Prints per file how many cases passed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "test code"
)]

use std::path::Path;

use bson::{Bson, DateTime, Document};
use rolegate::mql::{Update, UpdateContext, UpdateError, bson_from_json, document_from_json};
use serde_json::Value;

/// Cases where rolegate departs from MongoDB on purpose: (file, case name, decision id in
/// `docs/semantics.md`, what rolegate answers instead: an error code name).
const DECISIONS: &[(&str, &str, &str, &str)] = &[];

/// Same value, same types, same key order (what "the document MongoDB stores" means).
fn same(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => same_doc(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Bson::Double(x), Bson::Double(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}

fn same_doc(a: &Document, b: &Document) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
}

fn doc_of(v: Option<&Value>) -> Option<Document> {
    v.map(|v| document_from_json(v).unwrap())
}

/// What rolegate answers for a case: the document and `modified`, or the error.
fn run_case(case: &Value) -> Result<(Document, bool), UpdateError> {
    let update = bson_from_json(&case["update"]).unwrap();
    let filters: Vec<Document> = case
        .get("arrayFilters")
        .map(|f| f.as_array().unwrap().iter().map(|d| document_from_json(d).unwrap()).collect())
        .unwrap_or_default();
    let now = match case.get("now").map(|n| bson_from_json(n).unwrap()) {
        Some(Bson::DateTime(d)) => d,
        Some(other) => panic!("`now` must be a date, got {other}"),
        None => DateTime::from_millis(0),
    };
    let generated = case
        .get("generatedId")
        .map(|g| bson_from_json(g).unwrap())
        .unwrap_or_else(|| UpdateContext::default_generated_id());
    let mut ctx = UpdateContext::new(now, generated);
    let query = doc_of(case.get("query"));
    let parsed = Update::parse_value(&update, &filters)?;
    if let Some(q) = &query {
        ctx = ctx.with_query(q)?;
    }
    if case.get("upsert").and_then(Value::as_bool) == Some(true) {
        let inserted = parsed.upsert(&query.unwrap_or_default(), &ctx)?;
        return Ok((inserted, true));
    }
    let document = doc_of(case.get("document")).expect("a case without upsert has a document");
    let updated = parsed.apply(&document, &ctx)?;
    Ok((updated.document, updated.modified))
}

/// Checks one case; `Err` says how rolegate differs.
fn check(case: &Value) -> Result<(), String> {
    let got = std::panic::catch_unwind(|| run_case(case))
        .map_err(|_| "panicked".to_string())?;
    if let Some(code) = case.get("error").and_then(Value::as_str) {
        return match got {
            Err(e) if e.code_name() == code => Ok(()),
            Err(e) => Err(format!("expected error {code}, got {}: {}", e.code_name(), e.message())),
            Ok((d, _)) => Err(format!("expected error {code}, got {d}")),
        };
    }
    let expected = doc_of(case.get("expected")).ok_or("case has neither expected nor error")?;
    let (document, modified) = got.map_err(|e| format!("unexpected error {}: {}", e.code_name(), e.message()))?;
    if !same_doc(&document, &expected) {
        return Err(format!("expected {expected}\n        got {document}"));
    }
    if case.get("upsert").and_then(Value::as_bool) != Some(true) {
        let want = match case.get("modified").and_then(Value::as_bool) {
            Some(m) => m,
            None => !same_doc(&doc_of(case.get("document")).unwrap_or_default(), &expected),
        };
        if modified != want {
            return Err(format!("expected modified = {want}, got {modified}"));
        }
    }
    Ok(())
}

#[test]
fn mongodb_update_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mql/update");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in {}", dir.display());
    let mut failures = Vec::new();
    let (mut total, mut passed, mut decided) = (0, 0, 0);
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(file).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(json.get("source").is_some_and(Value::is_string), "{name}: no source");
        let cases = json["cases"].as_array().unwrap();
        let (mut file_passed, mut file_decided) = (0, 0);
        for case in cases {
            let case_name = case["name"].as_str().unwrap();
            let decision = case
                .get("decision")
                .and_then(Value::as_str)
                .map(|d| (d, case.get("rolegate").and_then(|r| r.get("error")).and_then(Value::as_str).unwrap_or("")))
                .or_else(|| {
                    DECISIONS
                        .iter()
                        .find(|(f, c, _, _)| *f == name && *c == case_name)
                        .map(|(_, _, d, r)| (*d, *r))
                });
            total += 1;
            match (check(case), decision) {
                (Ok(()), None) => file_passed += 1,
                (Ok(()), Some((d, _))) => {
                    failures.push(format!("{name}: {case_name}: passes but names decision {d}"));
                }
                (Err(why), None) => failures.push(format!("{name}: {case_name}: {why}")),
                (Err(_), Some((d, want))) => match run_case(case) {
                    Err(e) if e.code_name() == want => file_decided += 1,
                    other => failures.push(format!(
                        "{name}: {case_name}: decision {d} says rolegate answers {want}, got {other:?}"
                    )),
                },
            }
        }
        println!(
            "{name}: {file_passed}/{} passed{}",
            cases.len(),
            if file_decided > 0 { format!(", {file_decided} by a decision") } else { String::new() }
        );
        passed += file_passed;
        decided += file_decided;
    }
    println!("total: {passed}/{total} passed, {decided} by a decision, {} failing", failures.len());
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{} cases fail", failures.len());
}
