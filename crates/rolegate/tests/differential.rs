//! Differential property tests (issue 3, proof): random rule sets, users, requests, documents and
//! actions, run through the compiled engine and the reference evaluator, which must agree on
//! every outcome — role, visible or withheld, redacted document (bytes, so field order and types
//! count), write decisions and error codes, merged query and projection, the raw BSON paths
//! (`read_raw`, `redact_raw`, with fresh, reused and cross-request scratch space, raw validation
//! off and on) and, on demand, explanations. Raw bytes that break MongoDB's guarantees (repeated
//! keys, strings that are not UTF-8) are compared with raw validation on, the mode in which the
//! compiled engine promises the reference's answer on any bytes.
//!
//! Generated rule sets are app files loaded through the real validator; the few it rejects are
//! not counted (and must stay under 10%). Failing seeds go to
//! `proptest-regressions/differential.txt`. `PROPTEST_CASES=n` overrides the case count of each
//! property; `DIFF_SELF=1` compares the reference with itself (generator debugging).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "differential/arb.rs"]
mod arb;
#[path = "differential/check.rs"]
mod check;

use check::{REGRESSIONS, differential, run_property};

/// 1–6 random roles (random `apply_when`, permissions, `document_filters`, `search`, nested
/// fields), 0–3 filters, 1–4 documents; every action.
#[test]
fn compiled_matches_reference_on_random_rule_sets() {
    run_property(
        "compiled_matches_reference_on_random_rule_sets",
        REGRESSIONS,
        3_000,
        arb::case(),
        |case| differential(case, false),
    );
}

/// Roles decided by field rules: nested `fields` (depth 2), `additional_fields` at every level,
/// `%%this`/`%%prev`, arrays of sub-documents — redaction and written-field checks.
#[test]
fn compiled_matches_reference_on_field_rules() {
    run_property(
        "compiled_matches_reference_on_field_rules",
        REGRESSIONS,
        2_500,
        arb::field_case(),
        |case| differential(case, false),
    );
}

/// 30–60 roles of the indexable forms (`{"%%user.custom_data.group": gK, "team": tK}`,
/// `{"team": tK}`, ...) with colliding constants of mixed types (1, 1.0, 1L, 1.0m, null, ...),
/// and a few random roles among them: the role index must keep first-match order.
#[test]
fn compiled_matches_reference_with_many_indexable_roles() {
    run_property(
        "compiled_matches_reference_with_many_indexable_roles",
        REGRESSIONS,
        2_000,
        arb::many_roles_case(),
        |case| differential(case, false),
    );
}

/// Roles built from atoms that decide early or fail (`%function` errors, `$in` of a non-array,
/// bad conversions) behind short-circuits, in later roles, and in rules of fields the document
/// may lack: errors must surface exactly when the reference's evaluation order reaches them.
#[test]
fn compiled_matches_reference_on_evaluation_order() {
    run_property(
        "compiled_matches_reference_on_evaluation_order",
        REGRESSIONS,
        1_500,
        arb::ordered_case(),
        |case| differential(case, false),
    );
}

/// One compiled rule set serving several requests (other users, values, environments) in turn:
/// nothing computed for one request may leak into another.
#[test]
fn compiled_matches_reference_across_requests() {
    use proptest::prelude::*;
    run_property(
        "compiled_matches_reference_across_requests",
        REGRESSIONS,
        500,
        (arb::case(), proptest::collection::vec(arb::request(), 1..4)).boxed(),
        |(case, requests)| check::differential_requests(case, requests),
    );
}

/// Wide roles and documents: 20–100 field rules over 130 names, documents with up to 140
/// fields (field masks wider than a machine word).
#[test]
fn compiled_matches_reference_on_wide_documents() {
    run_property(
        "compiled_matches_reference_on_wide_documents",
        REGRESSIONS,
        500,
        arb::wide_case(),
        |case| differential(case, false),
    );
}

/// Long keys and values sharing prefixes (lengths 1–1,000, equal modulo 256, differing only in
/// their last byte) in field rules, `apply_when` keys, indexed constants and documents (issue 9,
/// finding 2): no key or value may be taken for another.
#[test]
fn compiled_matches_reference_on_long_keys() {
    run_property(
        "compiled_matches_reference_on_long_keys",
        REGRESSIONS,
        500,
        arb::long_case(),
        |case| differential(case, false),
    );
}

/// Raw documents with repeated keys (valid BSON bytes that a `Document` cannot hold): the
/// compiled raw path must decide and redact them as the reference's raw path does.
#[test]
fn compiled_raw_path_matches_reference_on_repeated_keys() {
    use proptest::prelude::*;
    let strategy = (
        arb::case(),
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                any::<prop::sample::Index>(),
                arb::val(),
            ),
            1..3,
        ),
    )
        .prop_map(|(case, dups)| {
            // Repeat some keys of each document with other values, at other positions.
            let raws: Vec<Vec<(&'static str, arb::Val)>> = case
                .docs
                .iter()
                .map(|d| {
                    let mut members = d.0.clone();
                    for (which, at, v) in &dups {
                        if members.is_empty() {
                            break;
                        }
                        let key = members[which.index(members.len())].0;
                        let pos = at.index(members.len() + 1);
                        members.insert(pos, (key, v.clone()));
                    }
                    members
                })
                .collect();
            (case, raws)
        })
        .boxed();
    run_property(
        "compiled_raw_path_matches_reference_on_repeated_keys",
        REGRESSIONS,
        500,
        strategy,
        |(case, raws)| {
            let raws: Vec<_> = raws.iter().map(|m| check::raw_with_duplicates(m)).collect();
            check::differential_raw(case, &raws, "repeated keys")
        },
    );
}

/// Raw documents with one malformed element (a string value, or a key, that is not UTF-8): the
/// reference's raw path cannot convert them and withholds them with an error (fail closed); the
/// compiled raw path must decide the same.
#[test]
fn compiled_raw_path_matches_reference_on_malformed_documents() {
    use proptest::prelude::*;
    let strategy = (
        arb::case(),
        any::<prop::sample::Index>(),
        prop::sample::select(&["a", "b", "owner_id", "zz"][..]),
        any::<bool>(),
    )
        .prop_map(|(case, at, key, bad_key)| {
            let docs: Vec<Vec<u8>> = case
                .docs
                .iter()
                .map(|d| check::raw_with_bad_string(&d.0, at.index(d.0.len() + 1), key, bad_key))
                .collect();
            (case, docs)
        })
        .boxed();
    run_property(
        "compiled_raw_path_matches_reference_on_malformed_documents",
        REGRESSIONS,
        500,
        strategy,
        |(case, docs)| check::differential_raw_bytes(case, docs),
    );
}

/// With explanations on, both engines give the same explanation for every outcome.
#[test]
fn compiled_explanations_match_reference() {
    run_property(
        "compiled_explanations_match_reference",
        REGRESSIONS,
        2_500,
        arb::case(),
        |case| differential(case, true),
    );
}

/// Not a property: prints how often each outcome occurs over generated cases, to check that the
/// generators reach every branch (`cargo test --test differential -- --ignored --nocapture`).
#[test]
#[ignore = "diagnostics for the generators"]
fn generator_coverage() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    for (name, strategy) in [
        ("random", arb::case()),
        ("fields", arb::field_case()),
        ("many roles", arb::many_roles_case()),
        ("evaluation order", arb::ordered_case()),
    ] {
        let mut runner = TestRunner::new_with_rng(
            proptest::test_runner::Config::default(),
            proptest::test_runner::TestRng::deterministic_rng(
                proptest::test_runner::RngAlgorithm::XorShift,
            ),
        );
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        let mut bump = |k: String| *counts.entry(k).or_default() += 1;
        let (mut t_gen, mut t_load, mut t_eval) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for _ in 0..300 {
            let t = Instant::now();
            let case = strategy.new_tree(&mut runner).unwrap().current();
            t_gen += t.elapsed();
            let t = Instant::now();
            let rules = match case.rules.load() {
                Ok(r) => r,
                Err(e) => {
                    bump("rejected".into());
                    eprintln!("rejected: {e}");
                    continue;
                }
            };
            t_load += t.elapsed();
            let t = Instant::now();
            let coll = rules.collection(arb::NAMESPACE).unwrap();
            let ctx = case.request.context(&rules, false);
            let p = coll.prepare_with(&ctx, rolegate::EngineKind::Reference);
            match p.query_plan(
                case.client_query_bson().as_ref(),
                case.client_projection_bson().as_ref(),
            ) {
                Ok(plan) => bump(format!("plan ok, {} filters applied", plan.applied.len())),
                Err(e) => bump(format!(
                    "plan error {}",
                    format!("{e:?}").split(['{', '(']).next().unwrap()
                )),
            }
            for (pre, post) in case.updates() {
                let r = p.read(&pre);
                bump(format!(
                    "read: role {} visible {} error {} partial {}",
                    r.role.is_some(),
                    r.visible,
                    r.error.is_some(),
                    r.document.as_ref().is_some_and(|d| d.len() < pre.len())
                ));
                for (what, w) in [
                    ("insert", p.insert(&pre)),
                    ("update", p.update(&pre, &post)),
                    ("delete", p.delete(&pre)),
                ] {
                    bump(format!(
                        "{what}: allowed {} code {:?}",
                        w.allowed,
                        w.error.map(|e| e.code)
                    ));
                }
            }
            t_eval += t.elapsed();
        }
        eprintln!("== {name}: generate {t_gen:.2?}, load {t_load:.2?}, evaluate {t_eval:.2?}");
        for (k, v) in counts {
            eprintln!("  {v:5}  {k}");
        }
    }
}
