//! MongoDB's documented query expectations (`tests/mql/query/*.json`, format in
//! `docs/mql-cases.md`), each checked three ways: as a client query through the in-memory
//! matcher (`rolegate::mql`), and as a rule (the query as a role's `apply_when`) through the
//! reference engine and the compiled engine (decoded and raw documents). A case passes when
//! every way gives MongoDB's answer, or the answer of the decision the case names.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bson::{Bson, Document};
use rolegate::{EngineKind, LoadOptions, RequestContext, RuleSet, Rules, Scratch, mql};
use serde_json::Value;

/// What one way of running a case gave: the matching `_id`s (as canonical JSON text), or an
/// error.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ids(BTreeSet<String>),
    Error(String),
}

fn id_key(id: &Bson) -> String {
    mql::bson_to_json(id).to_string()
}

fn expected_ids(v: &Value) -> Outcome {
    match v {
        Value::Array(ids) => Outcome::Ids(
            ids.iter()
                .map(|id| id_key(&mql::bson_from_json(id).unwrap()))
                .collect(),
        ),
        Value::Object(o) if o.contains_key("error") => Outcome::Error(o["error"].to_string()),
        other => panic!("an expectation must be an array of _ids or {{\"error\": ..}}: {other}"),
    }
}

fn run_query(query: &Document, docs: &[Document]) -> Outcome {
    let compiled = match mql::compile_query(query) {
        Ok(q) => q,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let mut ids = BTreeSet::new();
    for d in docs {
        match mql::matches(&compiled, d) {
            Ok(true) => {
                ids.insert(id_key(d.get("_id").expect("every document has an _id")));
            }
            Ok(false) => {}
            Err(e) => return Outcome::Error(e.to_string()),
        }
    }
    Outcome::Ids(ids)
}

fn run_rule(query: &Value, docs: &[Document], engine: EngineKind, raw: bool) -> Outcome {
    let file = serde_json::json!({
        "database": "db",
        "collection": "c",
        "roles": [{"name": "selected", "apply_when": query, "read": true}],
    });
    let set = match RuleSet::from_json("rules.json", &file, &LoadOptions::default()) {
        Ok(s) => s,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let rules = Rules::new(set);
    let coll = rules.collection("db.c").unwrap();
    let ctx = RequestContext::for_user(bson::doc! {"id": "u1", "type": "normal", "data": {}});
    let request = coll.prepare_with(&ctx, engine);
    let mut scratch = Scratch::new();
    let mut ids = BTreeSet::new();
    for d in docs {
        let (visible, error) = if raw {
            let bytes = bson::RawDocumentBuf::from_document(d).unwrap();
            let decision = request.read_raw(&bytes, &mut scratch);
            (
                decision.visible,
                decision.error.then(|| "rule failed".to_string()),
            )
        } else {
            let outcome = request.read(d);
            (outcome.visible, outcome.error.map(|e| e.to_string()))
        };
        if let Some(e) = error {
            return Outcome::Error(e);
        }
        if visible {
            ids.insert(id_key(d.get("_id").unwrap()));
        }
    }
    Outcome::Ids(ids)
}

/// Does `got` agree with `want`? Errors agree with errors (MongoDB's code names are not
/// rolegate's messages).
fn agrees(got: &Outcome, want: &Outcome) -> bool {
    match (got, want) {
        (Outcome::Error(_), Outcome::Error(_)) => true,
        _ => got == want,
    }
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mql/query");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn mongodb_query_expectations_hold_as_queries_and_as_rules() {
    let decisions = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/semantics.md"),
    )
    .unwrap();
    let mut failures = Vec::new();
    let mut total = 0usize;
    for path in case_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let file: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let shared = file.get("documents");
        let mut passed = 0usize;
        let cases = file["cases"].as_array().unwrap();
        for case in cases {
            total += 1;
            let case_name = case["name"].as_str().unwrap();
            let docs_json = case.get("documents").or(shared);
            let docs: Vec<Document> = docs_json
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|d| mql::document_from_json(d).unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let mongodb = match (case.get("expected"), case.get("error")) {
                (Some(ids), None) => expected_ids(ids),
                (None, Some(e)) => Outcome::Error(e.to_string()),
                _ => panic!("{name} {case_name}: exactly one of expected and error"),
            };
            if let Some(id) = case.get("decision").and_then(Value::as_str) {
                assert!(
                    decisions.contains(&format!("| {id} |")),
                    "{name} {case_name}: decision {id} is not in docs/semantics.md"
                );
                assert!(
                    case.get("rolegate").is_some(),
                    "{name} {case_name}: a decision needs rolegate's result"
                );
            }
            let as_query = match case.get("rolegate") {
                Some(r) => expected_ids(r),
                None => mongodb.clone(),
            };
            let as_rule = match case.get("rules") {
                Some(r) => expected_ids(r),
                None => as_query.clone(),
            };
            let query_json = &case["query"];
            let mut shown = query_json.to_string();
            if shown.len() > 200 {
                let cut = (0..=200)
                    .rev()
                    .find(|i| shown.is_char_boundary(*i))
                    .unwrap_or(0);
                shown.truncate(cut);
                shown.push_str("...");
            }
            let mut problems = Vec::new();
            match mql::document_from_json(query_json) {
                Ok(query) => {
                    let got = run_query(&query, &docs);
                    if !agrees(&got, &as_query) {
                        problems.push(format!("query: got {got:?}, want {as_query:?}"));
                    }
                }
                Err(e) => {
                    if !matches!(as_query, Outcome::Error(_)) {
                        problems.push(format!("query does not convert: {e}"));
                    }
                }
            }
            for (engine, raw) in [
                (EngineKind::Reference, false),
                (EngineKind::Compiled, false),
                (EngineKind::Compiled, true),
            ] {
                let got = run_rule(query_json, &docs, engine, raw);
                if !agrees(&got, &as_rule) {
                    let how = if raw { " raw" } else { "" };
                    problems.push(format!(
                        "rule {engine:?}{how}: got {got:?}, want {as_rule:?}"
                    ));
                }
            }
            if problems.is_empty() {
                passed += 1;
            } else {
                failures.push(format!(
                    "{name} / {case_name}: query {shown}\n    {}",
                    problems.join("\n    ")
                ));
            }
        }
        println!("{name}: {passed}/{} cases pass", cases.len());
    }
    println!("{total} cases in all");
    assert!(
        failures.is_empty(),
        "{} of {total} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
