//! Tests of decision-point coverage: the points of a hand-written rule set, the agreement of
//! the recording with the enumeration on every case file of the repository, and the union
//! property.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::case::{Case, EngineChoice, load_case_file, run_case};

fn case(name: &str, user: &str, document: Value, action: &str, expected: Value) -> Case {
    serde_json::from_value(json!({
        "name": name, "source": "unit test", "notes": "[example] coverage",
        "rules": {"mode": "mongodb", "collection_rules": {
            "database": "shop", "collection": "orders",
            "roles": [
                {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true,
                 "write": true, "delete": {"paid": false}},
                {"name": "clerk", "apply_when": {"%%user.custom_data.clerk": true},
                 "fields": {"total": {"read": true},
                            "note": {"read": {"%%user.custom_data.senior": true}},
                            "address": {"fields": {"city": {"read": true}}}},
                 "additional_fields": {"read": false}}
            ],
            "filters": [{"name": "unpaid", "apply_when": {"%%user.custom_data.clerk": true},
                         "query": {"paid": false}, "projection": {}}]
        }},
        "user": {"id": user, "custom_data": {"clerk": user.starts_with("clerk"),
                                             "senior": user == "clerk-senior"}},
        "document": document, "action": action, "expected": expected
    }))
    .unwrap()
}

fn order() -> Value {
    json!({"_id": 1, "owner": "alice", "total": 3, "note": "n", "paid": false,
           "address": {"city": "Oslo", "zip": "0150"}})
}

/// Alice reads and deletes her order; a junior clerk reads it.
fn cases() -> Vec<Case> {
    vec![
        case(
            "owner reads",
            "alice",
            order(),
            "read",
            json!({"role": "owner"}),
        ),
        case(
            "owner deletes",
            "alice",
            order(),
            "delete",
            json!({"allowed": true}),
        ),
        case(
            "clerk reads",
            "clerk-junior",
            order(),
            "read",
            json!({"role": "clerk"}),
        ),
    ]
}

fn point<'a>(c: &'a Coverage, path: &str, outcome: bool) -> &'a DecisionPoint {
    c.files()
        .flat_map(|f| &f.points)
        .find(|p| p.path == path && p.outcome == outcome)
        .unwrap_or_else(|| panic!("no point {path} {outcome}"))
}

fn uncovered(c: &Coverage) -> BTreeSet<(String, bool)> {
    c.files()
        .flat_map(|f| &f.points)
        .filter(|p| !p.covered())
        .map(|p| (p.path.clone(), p.outcome))
        .collect()
}

#[test]
fn every_decision_point_is_listed_and_the_missed_ones_are_uncovered() {
    let mut c = Coverage::new();
    for case in cases() {
        let result = c.run_case(&case);
        assert!(result.passed, "{}: {}", result.name, result.message);
    }
    assert_eq!(c.unmatched().count(), 0);
    let files: Vec<&CoveredFile> = c.files().collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].label(), "collection_rules (shop.orders)");
    assert_eq!(files[0].cases, 3);
    let all: Vec<(String, bool)> = files[0]
        .points
        .iter()
        .map(|p| (p.path.clone(), p.outcome))
        .collect();
    let expected: Vec<(String, bool)> = [
        ("roles[0].apply_when", true),
        ("roles[0].apply_when", false),
        ("roles[0].read", true),
        ("roles[0].write", true),
        ("roles[0].delete", true),
        ("roles[0].delete", false),
        ("roles[1].apply_when", true),
        ("roles[1].apply_when", false),
        ("roles[1].fields.total.read", true),
        ("roles[1].fields.note.read", true),
        ("roles[1].fields.note.read", false),
        ("roles[1].fields.address.fields.city.read", true),
        ("roles[1].additional_fields.read", false),
        ("filters[0].apply_when", true),
        ("filters[0].apply_when", false),
    ]
    .iter()
    .map(|(p, o)| (p.to_string(), *o))
    .collect();
    assert_eq!(all, expected);
    // Never reached: the clerk role passed over (nobody is neither owner nor clerk), a senior
    // clerk's note, a paid order's delete, and the filter (no `filters` case).
    let missed: BTreeSet<(String, bool)> = [
        ("roles[1].apply_when", false),
        ("roles[1].fields.note.read", true),
        ("roles[0].delete", false),
        ("filters[0].apply_when", true),
        ("filters[0].apply_when", false),
    ]
    .iter()
    .map(|(p, o)| (p.to_string(), *o))
    .collect();
    assert_eq!(uncovered(&c), missed);
    assert_eq!(point(&c, "roles[0].apply_when", true).hits, 2);
    assert_eq!(point(&c, "roles[1].additional_fields.read", false).hits, 1);
    assert_eq!(point(&c, "roles[0].apply_when", false).label(), "false");
    assert_eq!(point(&c, "roles[0].delete", false).label(), "denied");
    assert_eq!(
        point(&c, "filters[0].apply_when", false).label(),
        "not applied"
    );
    assert_eq!(c.covered(), 10);
    assert_eq!(c.total(), 15);
    let report = c.to_json();
    assert_eq!(report["covered"], json!(10));
    assert_eq!(report["files"][0]["points"][0]["kind"], json!("apply_when"));
    assert_eq!(report["files"][0]["points"][0]["name"], json!("owner"));
}

#[test]
fn a_filters_case_covers_the_filter() {
    let mut c = Coverage::new();
    let mut v = serde_json::to_value(&cases()[2]).unwrap();
    v["action"] = json!("filters");
    v["expected"] = json!({"applied": ["unpaid"]});
    let result = c.run_case(&serde_json::from_value(v).unwrap());
    assert!(result.passed, "{}", result.message);
    assert!(point(&c, "filters[0].apply_when", true).covered());
    assert!(!point(&c, "filters[0].apply_when", false).covered());
}

#[test]
fn the_same_name_with_other_rules_is_another_variant() {
    let mut c = Coverage::new();
    let first = cases().remove(0);
    let mut v = serde_json::to_value(&first).unwrap();
    v["rules"]["collection_rules"]["roles"][0]["read"] = json!({"paid": true});
    let second: Case = serde_json::from_value(v).unwrap();
    c.run_case(&first);
    c.run_case(&first);
    c.run_case(&second);
    let files: Vec<&CoveredFile> = c.files().collect();
    assert_eq!(files.len(), 2);
    assert_eq!((files[0].variant, files[0].cases), (1, 2));
    assert_eq!((files[1].variant, files[1].cases), (2, 1));
    assert_eq!(files[1].label(), "collection_rules (shop.orders) #2");
    assert!(
        files[1]
            .points
            .iter()
            .any(|p| p.path == "roles[0].read" && !p.outcome)
    );
}

#[test]
fn constants_have_one_outcome() {
    use crate::expr::Expr;
    assert_eq!(points::constant(&Expr::always()), Some(true));
    assert_eq!(points::constant(&Expr::Bool(false)), Some(false));
    let nor = Expr::None(vec![Expr::Bool(false), Expr::All(vec![])]);
    assert_eq!(points::constant(&nor), Some(false));
    let not = Expr::Not(Box::new(Expr::Any(vec![Expr::Bool(false)])));
    assert_eq!(points::constant(&not), Some(true));
}

fn repository_case_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("tests/conformance"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files.push(root.join("../../examples/tasks-app/expected-cases.json"));
    files
}

/// Every rule the evaluators decide with is a listed decision point (the walk misses no kind of
/// rule), and coverage runs give the answers of the reference engine.
#[test]
fn every_evaluation_of_the_repository_cases_is_a_decision_point() {
    let mut c = Coverage::new();
    let mut runs = 0;
    for file in repository_case_files() {
        for case in load_case_file(&file).unwrap() {
            let covered = c.run_case(&case);
            let plain = run_case(&case, EngineChoice::Reference);
            assert_eq!(covered, plain, "{}", case.name);
            runs += 1;
        }
    }
    assert!(runs > 250, "{runs}");
    let unmatched: Vec<_> = c.unmatched().collect();
    assert!(unmatched.is_empty(), "{unmatched:?}");
    assert!(c.files().all(|f| !f.source.is_null()));
    assert!(c.covered() > 0 && c.covered() < c.total());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Coverage of a set of cases is the union of the coverage of its parts, whatever the order.
    #[test]
    fn coverage_of_a_union_is_the_union_of_coverages(
        picks in proptest::collection::vec((0usize..3, any::<bool>()), 0..6),
    ) {
        let all = cases();
        let (mut left, mut right, mut both) = (Coverage::new(), Coverage::new(), Coverage::new());
        for &(i, side) in &picks {
            if side { left.run_case(&all[i]); } else { right.run_case(&all[i]); }
        }
        for &(i, _) in picks.iter().rev() {
            both.run_case(&all[i]);
        }
        let hit = |c: &Coverage| -> BTreeSet<(String, bool)> {
            c.files().flat_map(|f| &f.points).filter(|p| p.covered())
                .map(|p| (p.path.clone(), p.outcome)).collect()
        };
        let union: BTreeSet<_> = hit(&left).union(&hit(&right)).cloned().collect();
        prop_assert_eq!(hit(&both), union);
        prop_assert_eq!(both.cases(), picks.len());
        prop_assert!(both.covered() <= both.total());
    }
}
