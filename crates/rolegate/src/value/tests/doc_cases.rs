//! The spec's `expression` conformance cases (doc-cases.json), run straight through the parser
//! and the reference evaluator: a check of the evaluator's semantics, independent of the case
//! runner in src/case/.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use crate::context::{MockFunctions, RequestContext};
use crate::error::{Diagnostics, Place};
use crate::expr::{Dialect, Site, parse_expr, parse_operand};
use crate::query::memory::{project, run};
use crate::query::plan::PlanInput;
use crate::query::{RuleFields, plan};
use crate::rules::{Filter, Rule};
use crate::value::ejson::{bson_from_json, document_from_json};
use crate::value::eval::{Bindings, eval_expr};
use serde_json::Value;

/// The committed doc cases (`tests/conformance/doc-cases.json`): part of the repository, so a
/// missing or unreadable file fails the test.
fn cases() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/doc-cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn context(case: &Value) -> RequestContext {
    let req = &case["request"];
    let b = |v: &Value| bson_from_json(v).unwrap();
    let mut ctx = RequestContext::default();
    if !case["user"].is_null() {
        ctx.user = Some(b(&case["user"]));
    }
    if req["values"].is_object() {
        ctx.values = b(&req["values"]);
    }
    if req["environment"].is_object() {
        ctx.environment = b(&req["environment"]);
    }
    if req["http"].is_object() {
        ctx.request = b(&req["http"]);
    }
    if !req["args"].is_null() {
        ctx.args = Some(b(&req["args"]));
    }
    if !req["partition"].is_null() {
        ctx.partition = Some(b(&req["partition"]));
    }
    if let Some(fs) = req["functions"].as_object() {
        let mut mocks = MockFunctions::default();
        for (name, spec) in fs {
            let args = spec["args"]
                .as_array()
                .map(|a| a.iter().map(b).collect())
                .unwrap_or_default();
            mocks.add(name.clone(), args, b(&spec["returns"]));
        }
        ctx.functions = Arc::new(mocks);
    }
    ctx
}

#[test]
fn expression_cases_evaluate_as_the_spec_says() {
    let cases = cases();
    let mut ran = 0;
    let mut failures = Vec::new();
    for case in cases.iter().filter(|c| c["action"] == "expression") {
        let name = case["name"].as_str().unwrap_or("?");
        let dialect = if case["rules"]["mode"] == "service" {
            Dialect::Service
        } else {
            Dialect::MongoDb
        };
        let mut diags = Diagnostics::default();
        let expr = parse_expr(
            &case["rules"]["expression"],
            dialect,
            Site::Any,
            &Place::default(),
            &mut diags,
        );
        if diags.has_errors() {
            failures.push(format!(
                "{name}: does not parse: {:?}",
                diags.errors().next()
            ));
            continue;
        }
        let ctx = context(case);
        let doc = case
            .get("document")
            .filter(|d| d.is_object())
            .map(|d| document_from_json(d).unwrap());
        let prev = case
            .get("prevDocument")
            .filter(|d| d.is_object())
            .map(|d| document_from_json(d).unwrap());
        let inserting = case["request"]["operation"]["kind"] == "insert";
        let prev_root = if inserting {
            None
        } else {
            prev.as_ref().or(doc.as_ref())
        };
        let bindings = Bindings {
            root: doc.as_ref(),
            prev_root,
            ..Bindings::request_only(&ctx)
        };
        let got = eval_expr(&expr, &bindings);
        let want = case["expected"]["result"].as_bool();
        ran += 1;
        match (got, want) {
            (Ok(g), Some(w)) if g == w => {}
            (got, want) => failures.push(format!("{name}: got {got:?}, want {want:?}")),
        }
    }
    assert!(ran >= 30, "only {ran} expression cases ran");
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        ran,
        failures.join("\n")
    );
}

#[test]
fn filters_cases_plan_and_run_as_the_spec_says() {
    let cases = cases();
    let mut ran = 0;
    for case in cases.iter().filter(|c| c["action"] == "filters") {
        let name = case["name"].as_str().unwrap_or("?");
        let rules = &case["rules"]["collection_rules"];
        let mut diags = Diagnostics::default();
        let filters: Vec<Filter> = rules["filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| Filter {
                name: f["name"].as_str().unwrap().to_string(),
                apply_when: Rule {
                    expr: parse_expr(
                        &f["apply_when"],
                        Dialect::MongoDb,
                        Site::FilterApplyWhen,
                        &Place::default(),
                        &mut diags,
                    ),
                    place: Place::default(),
                },
                query: parse_operand(
                    &f["query"],
                    Dialect::MongoDb,
                    Site::FilterQuery,
                    &Place::default(),
                    &mut diags,
                ),
                projection: document_from_json(&f["projection"]).unwrap(),
                place: Place::default(),
            })
            .collect();
        assert!(!diags.has_errors(), "{name}: {:?}", diags.errors().next());
        let op = &case["request"]["operation"];
        let client_query = op.get("query").map(|q| document_from_json(q).unwrap());
        let client_projection = case["request"]
            .get("client_projection")
            .map(|q| document_from_json(q).unwrap());
        let input = PlanInput {
            filters: &filters,
            fields: &RuleFields::default(),
            max_depth: 100,
        };
        let got = plan(
            input,
            client_query.as_ref(),
            client_projection.as_ref(),
            &context(case),
        )
        .unwrap();
        let want = &case["expected"];
        let applied: Vec<String> = want["applied"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(got.applied, applied, "{name}");
        assert_eq!(
            got.merged_query(),
            &document_from_json(&want["query"]).unwrap(),
            "{name}"
        );
        let wp = document_from_json(&want["projection"]).unwrap();
        assert!(
            got.output_projection().len() == wp.len()
                && wp
                    .iter()
                    .all(|(k, v)| got.output_projection().get(k) == Some(v)),
            "{name}: {:?}",
            got.output_projection()
        );
        if let Some(results) = want["results"].as_array() {
            let docs: Vec<_> = case["request"]["collection_documents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| document_from_json(d).unwrap())
                .collect();
            // These cases have no client query and read-all roles: the database's part, then
            // the output projection.
            let out: Vec<_> = run(&got, &docs)
                .unwrap()
                .iter()
                .map(|d| project(got.output_projection(), d))
                .collect();
            let want_docs: Vec<_> = results
                .iter()
                .map(|d| document_from_json(d).unwrap())
                .collect();
            assert_eq!(out, want_docs, "{name}");
        }
        ran += 1;
    }
    assert!(ran >= 3, "only {ran} filters cases ran");
}
