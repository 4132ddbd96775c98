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
use rolegate::mql::{
    Update, UpdateContext, UpdateError, array_filters_from, bson_equal, bson_from_json,
    document_from_json,
};
use serde_json::Value;

/// Cases where rolegate departs from the transcribed expectation on purpose: (file, case name,
/// decision id in `docs/semantics.md`, what rolegate answers instead: `error:<code name>`,
/// `modified:<bool>` with the expected document, or `document:<Extended JSON>`).
const DECISIONS: &[(&str, &str, &str, &str)] = &[
    (
        "manual_setOnInsert.json",
        "upsert inserts with the query's _id, set and setOnInsert fields",
        "M30",
        r#"document:{"_id": 1, "defaultQty": 100, "item": "apple"}"#,
    ),
    (
        "manual_db_collection_update.json",
        "upsert with a dotted _id query and operators fails",
        "M33",
        r#"document:{"_id": {"name": "Robert Frost", "uid": 0}, "categories": ["poet", "playwright"]}"#,
    ),
    (
        "jstests_update_array_offset_positional.json",
        "traversal of the inner array gives the position",
        "M24",
        "error:BadValue",
    ),
    (
        "unittest_push_node.json",
        "slice 0 on an empty array",
        "M34",
        "modified:true",
    ),
    (
        "unittest_push_node.json",
        "slice 2 on a two-element array",
        "M34",
        "modified:true",
    ),
    (
        "unittest_push_node.json",
        r#"sort {"a": 1, "b": 1} and slice -2"#,
        "M34",
        "modified:true",
    ),
];

/// True when rolegate's answer for `case` is the one its decision states (`want`, as in
/// [`DECISIONS`]).
fn answers_as_decided(case: &Value, want: &str) -> bool {
    let got = run_case(case);
    if let Some(code) = want.strip_prefix("error:") {
        return matches!(&got, Err(e) if e.code_name() == code);
    }
    if let Some(m) = want.strip_prefix("modified:") {
        let expected = doc_of(case.get("expected"));
        return matches!(&got, Ok((d, modified)) if Some(d) == expected.as_ref()
            && expected.as_ref().is_some_and(|e| same_doc(d, e))
            && modified.to_string() == m);
    }
    if let Some(json) = want.strip_prefix("document:") {
        let doc = document_from_json(&serde_json::from_str(json).unwrap()).unwrap();
        return matches!(&got, Ok((d, _)) if same_doc(d, &doc));
    }
    panic!("unknown decision answer {want}");
}

/// Same value, same types, same key order (what "the document MongoDB stores" means).
fn same(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => same_doc(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Bson::Double(x), Bson::Double(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        // The transcriptions write a decimal's value, not its exponent (MongoDB's unit tests do
        // not check the representation): decimals are compared by value.
        (Bson::Decimal128(_), Bson::Decimal128(_)) => bson_equal(a, b),
        _ => a == b,
    }
}

fn same_doc(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
}

fn doc_of(v: Option<&Value>) -> Option<Document> {
    v.map(|v| document_from_json(v).unwrap())
}

/// What rolegate answers for a case: the document and `modified`, or the error.
fn run_case(case: &Value) -> Result<(Document, bool), UpdateError> {
    let update = bson_from_json(&case["update"]).unwrap();
    let filters: Vec<Document> = match case.get("arrayFilters") {
        Some(f) => array_filters_from(&bson_from_json(f).unwrap())?,
        None => Vec::new(),
    };
    let now = match case.get("now").map(|n| bson_from_json(n).unwrap()) {
        Some(Bson::DateTime(d)) => d,
        Some(other) => panic!("`now` must be a date, got {other}"),
        None => DateTime::from_millis(0),
    };
    let generated = case
        .get("generatedId")
        .map(|g| bson_from_json(g).unwrap())
        .unwrap_or_else(UpdateContext::default_generated_id);
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
    let got = std::panic::catch_unwind(|| run_case(case)).map_err(|_| "panicked".to_string())?;
    if let Some(code) = case.get("error").and_then(Value::as_str) {
        return match got {
            Err(e) if e.code_name() == code => Ok(()),
            Err(e) => Err(format!(
                "expected error {code}, got {}: {}",
                e.code_name(),
                e.message()
            )),
            Ok((d, _)) => Err(format!("expected error {code}, got {d}")),
        };
    }
    let expected = doc_of(case.get("expected")).ok_or("case has neither expected nor error")?;
    let (document, modified) =
        got.map_err(|e| format!("unexpected error {}: {}", e.code_name(), e.message()))?;
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
        assert!(
            json.get("source").is_some_and(Value::is_string),
            "{name}: no source"
        );
        let cases = json["cases"].as_array().unwrap();
        let (mut file_passed, mut file_decided) = (0, 0);
        for case in cases {
            let case_name = case["name"].as_str().unwrap();
            let from_case = case.get("decision").and_then(Value::as_str).map(|d| {
                let answer = match case.get("rolegate").and_then(|r| r.get("error")) {
                    Some(Value::String(code)) => format!("error:{code}"),
                    _ => format!("document:{}", case.get("rolegate").unwrap_or(&Value::Null)),
                };
                (d.to_string(), answer)
            });
            let decision = from_case.or_else(|| {
                DECISIONS
                    .iter()
                    .find(|(f, c, _, _)| *f == name && *c == case_name)
                    .map(|(_, _, d, r)| ((*d).to_string(), (*r).to_string()))
            });
            total += 1;
            match (check(case), decision) {
                (Ok(()), None) => file_passed += 1,
                (Ok(()), Some((d, _))) => {
                    failures.push(format!(
                        "{name}: {case_name}: passes but names decision {d}"
                    ));
                }
                (Err(why), None) => failures.push(format!("{name}: {case_name}: {why}")),
                (Err(_), Some((d, want))) => {
                    if answers_as_decided(case, &want) {
                        file_decided += 1;
                    } else {
                        failures.push(format!(
                            "{name}: {case_name}: decision {d} says rolegate answers {want}, got {:?}",
                            run_case(case)
                        ));
                    }
                }
            }
        }
        println!(
            "{name}: {file_passed}/{} passed{}",
            cases.len(),
            if file_decided > 0 {
                format!(", {file_decided} by a decision")
            } else {
                String::new()
            }
        );
        passed += file_passed;
        decided += file_decided;
    }
    println!(
        "total: {passed}/{total} passed, {decided} by a decision, {} failing",
        failures.len()
    );
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{} cases fail", failures.len());
}
