//! `rolegate diff` and `rolegate prop --generic` over every file of the real-rules corpus (410
//! rule files of public apps; where it is found: [`corpus_support`]): each file loads on its own
//! (the 7 refused ones aside, see `tests/corpus.rs`), and for every collection it governs (and
//! its data source's default rule),
//!
//! * the semantic diff of the file against itself finds no difference;
//! * the generic property — a role without read never reveals a field — holds.
//!
//! Small numbers of cases per collection keep the whole run to seconds; the counts of what ran
//! are printed with `--nocapture`. Without the corpus the test prints `SKIPPED:` and passes,
//! except under `CI=true`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::time::Instant;

use rolegate::testing::{
    ContextTemplate, DiffInputs, PropertyOutcome, RunOptions, check_property, diff_collection,
    generic_properties, namespaces,
};
use rolegate::{LoadOptions, RuleSet, Rules};

mod corpus_support;
use corpus_support::{Row, check_skip_is_visible, corpus_or_skip, manifest};

/// Cases per collection for the diff, and per generic property.
const DIFF_CASES: u32 = 500;
const PROP_CASES: u32 = 500;

#[test]
fn corpus_self_diff_is_empty_and_the_generic_property_holds() {
    let Some(dir) = corpus_or_skip("corpus_self_diff_is_empty_and_the_generic_property_holds")
    else {
        return;
    };
    let started = Instant::now();
    let rows = manifest(&dir);
    assert!(rows.len() >= 400, "manifest has {} rows", rows.len());
    let (mut files, mut collections, mut cases, mut props, mut passed, mut vacuous) =
        (0, 0, 0u64, 0, 0, 0);
    let mut failures = Vec::new();
    for Row {
        saved_name: saved,
        path,
    } in &rows
    {
        let text = std::fs::read_to_string(dir.join(saved)).unwrap();
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let Ok(set) = RuleSet::from_json(path, &json, &LoadOptions::default()) else {
            continue;
        };
        files += 1;
        let rules = Rules::new(set);
        let Ok(template) = ContextTemplate::new(&rules) else {
            failures.push(format!("{saved}: no request context"));
            continue;
        };
        for ns in namespaces(rules.rule_set(), rules.rule_set()) {
            collections += 1;
            let options = RunOptions {
                cases: DIFF_CASES,
                seed: 1,
                ..RunOptions::default()
            };
            let diff = diff_collection(&rules, &rules, &ns, &DiffInputs::default(), &options);
            cases += diff.cases;
            if let Some(d) = diff.differences.first() {
                failures.push(format!(
                    "{saved} {ns}: the file differs from itself: {}",
                    d.class
                ));
            }
            let Ok(coll) = rules.collection(&ns) else {
                continue;
            };
            let options = RunOptions {
                cases: PROP_CASES,
                seed: 1,
                ..RunOptions::default()
            };
            for p in generic_properties(&ns, coll.policy().roles) {
                props += 1;
                let report = check_property(&rules, &template, &p, &options);
                cases += report.cases;
                match report.outcome {
                    PropertyOutcome::Passed => passed += 1,
                    PropertyOutcome::Vacuous(_) => vacuous += 1,
                    PropertyOutcome::Failed(cx) => failures.push(format!(
                        "{saved} {ns}: {}: {} (user {}, document {})",
                        p.name, cx.reason, cx.case.user, cx.case.document
                    )),
                    PropertyOutcome::Aborted(why) => {
                        failures.push(format!("{saved} {ns}: {}: {why}", p.name))
                    }
                }
            }
        }
    }
    println!(
        "{files} files, {collections} collections, {props} generic properties ({passed} passed, \
         {vacuous} vacuous), {cases} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(files >= 400, "{files} files loaded");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn skips_are_visible_and_fail_under_ci() {
    check_skip_is_visible(&["corpus_self_diff_is_empty_and_the_generic_property_holds"]);
}
