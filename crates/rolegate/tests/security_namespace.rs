//! Issue 9, finding 3: an ambiguous namespace is an error naming the candidates. With several
//! data sources, `db.coll` resolves only when exactly one data source's rule files name it, or
//! when there is only one data source; otherwise `Rules::collection` (and `RuleSet::policy`)
//! fail with every candidate as `data_source/db.coll` — never the first data source's default
//! rule. Regression tests (library and CLI) and a property over random app layouts.
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

use std::collections::BTreeMap;

use check::{Verdict, run_property};
use proptest::prelude::*;
use rolegate::{LoadOptions, NamespaceError, RuleSet, Rules};
use serde_json::{Value, json};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/security_namespace.txt"
);

/// One data source: its name, whether it has a default rule, and the collections of `app` its
/// rule files name. Every role is named after its file, so the test can see which one governs.
#[derive(Debug, Clone)]
struct Source {
    name: String,
    default_rule: bool,
    collections: Vec<String>,
}

fn files(sources: &[Source]) -> BTreeMap<String, Value> {
    let mut files = BTreeMap::new();
    for s in sources {
        let ds = &s.name;
        files.insert(
            format!("data_sources/{ds}/config.json"),
            json!({"name": ds, "type": "mongodb-atlas", "config": {}}),
        );
        if s.default_rule {
            files.insert(
                format!("data_sources/{ds}/default_rule.json"),
                json!({"roles": [{"name": format!("{ds}-default"), "apply_when": {}, "read": true}],
                       "filters": []}),
            );
        }
        for c in &s.collections {
            files.insert(
                format!("data_sources/{ds}/app/{c}/rules.json"),
                json!({"database": "app", "collection": c,
                       "roles": [{"name": format!("{ds}-{c}"), "apply_when": {}, "read": true}]}),
            );
        }
    }
    files
}

fn load(sources: &[Source]) -> Rules {
    Rules::new(
        RuleSet::from_files(&files(sources), &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn source(name: &str, default_rule: bool, collections: &[&str]) -> Source {
    Source {
        name: name.into(),
        default_rule,
        collections: collections.iter().map(|c| c.to_string()).collect(),
    }
}

fn role_of(rules: &Rules, ns: &str) -> Result<Option<String>, String> {
    rules
        .collection(ns)
        .map(|c| c.policy().roles.first().map(|r| r.name.clone()))
        .map_err(|e| e.to_string())
}

#[test]
fn an_unnamed_namespace_with_two_data_sources_is_ambiguous() {
    let rules = load(&[source("atlas-a", true, &[]), source("atlas-b", true, &[])]);
    let err = role_of(&rules, "app.items").unwrap_err();
    for candidate in ["atlas-a/app.items", "atlas-b/app.items"] {
        assert!(err.contains(candidate), "{err}");
    }
    // Naming the data source resolves it.
    assert_eq!(
        role_of(&rules, "atlas-b/app.items").unwrap().as_deref(),
        Some("atlas-b-default")
    );
    let set = rules.rule_set();
    assert_eq!(
        set.policy(None, "app", "items").unwrap_err(),
        NamespaceError::Ambiguous {
            candidates: vec!["atlas-a/app.items".into(), "atlas-b/app.items".into()]
        }
    );
}

#[test]
fn a_namespace_named_by_exactly_one_data_source_resolves() {
    let rules = load(&[
        source("atlas-a", true, &["orders"]),
        source("atlas-b", true, &["items", "orders"]),
    ]);
    assert_eq!(
        role_of(&rules, "app.items").unwrap().as_deref(),
        Some("atlas-b-items")
    );
    let err = role_of(&rules, "app.orders").unwrap_err();
    assert!(
        err.contains("atlas-a/app.orders") && err.contains("atlas-b/app.orders"),
        "{err}"
    );
    let err = role_of(&rules, "app.other").unwrap_err();
    assert!(err.contains("atlas-a/app.other"), "{err}");
    // One data source: its default rule governs every unnamed namespace.
    let rules = load(&[source("atlas", true, &["items"])]);
    assert_eq!(
        role_of(&rules, "app.other").unwrap().as_deref(),
        Some("atlas-default")
    );
    assert!(
        role_of(&rules, "nope/app.items")
            .unwrap_err()
            .contains("nope")
    );
}

fn sources() -> impl Strategy<Value = Vec<Source>> {
    let one = (any::<bool>(), proptest::collection::vec(any::<bool>(), 3));
    proptest::collection::vec(one, 1..=3).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (default_rule, named))| Source {
                name: format!("ds{i}"),
                default_rule,
                collections: named
                    .iter()
                    .enumerate()
                    .filter(|(_, on)| **on)
                    .map(|(j, _)| format!("c{j}"))
                    .collect(),
            })
            .collect()
    })
}

/// For random layouts (1–3 data sources, default rules or not, each naming some of `app.c0`
/// to `app.c2`) and every namespace: `db.coll` resolves exactly when one data source names it,
/// or none does and there is one data source; the error names exactly the candidates; and
/// `data_source/db.coll` always resolves to that data source.
#[test]
fn namespaces_resolve_only_when_unambiguous() {
    run_property(
        "namespaces_resolve_only_when_unambiguous",
        REGRESSIONS,
        300,
        sources().boxed(),
        |sources| {
            let rules = load(sources);
            for c in ["c0", "c1", "c2", "c3"] {
                let ns = format!("app.{c}");
                let naming: Vec<&Source> = sources
                    .iter()
                    .filter(|s| s.collections.iter().any(|x| x == c))
                    .collect();
                let candidates: Vec<&Source> = if naming.is_empty() {
                    sources.iter().collect()
                } else {
                    naming.clone()
                };
                let expected_role = |s: &Source| {
                    if s.collections.iter().any(|x| x == c) {
                        Some(format!("{}-{c}", s.name))
                    } else if s.default_rule {
                        Some(format!("{}-default", s.name))
                    } else {
                        None
                    }
                };
                match (candidates.as_slice(), role_of(&rules, &ns)) {
                    ([one], Ok(role)) if role == expected_role(one) => {}
                    (many, Err(e)) if many.len() > 1 => {
                        for s in &sources[..] {
                            let name = format!("{}/{ns}", s.name);
                            let listed = e.contains(&name);
                            let candidate = many.iter().any(|m| m.name == s.name);
                            if listed != candidate {
                                return Err(format!("{ns}: error {e:?} for {sources:?}"));
                            }
                        }
                    }
                    (_, got) => return Err(format!("{ns}: {got:?} for {sources:?}")),
                }
                for s in sources {
                    let explicit = role_of(&rules, &format!("{}/{ns}", s.name));
                    if explicit != Ok(expected_role(s)) {
                        return Err(format!("{}/{ns}: {explicit:?} for {sources:?}", s.name));
                    }
                }
            }
            Ok(Verdict::Checked)
        },
    );
}
