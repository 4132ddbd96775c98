//! The committed benchmark data (`benches/data/`) is exactly what the workload generator
//! (`benches/workloads/mod.rs`) produces, every rule file loads, and every generated document
//! round-trips through the relaxed Extended JSON of the `.jsonl` samples. Regenerate with
//! `cargo run --release --example gen-bench-data`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use rolegate::mql::{document_from_json, document_to_json};

#[test]
fn committed_data_matches_the_generator() {
    let dir = workloads::data_dir();
    let mut stale = Vec::new();
    for (rel, content) in workloads::files() {
        match std::fs::read_to_string(dir.join(&rel)) {
            Ok(text) if text == content => {}
            Ok(_) => stale.push(format!("{rel}: differs")),
            Err(e) => stale.push(format!("{rel}: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "benches/data is stale; run `cargo run --release --example gen-bench-data`:\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_rule_file_loads_without_warnings() {
    for w in workloads::workloads() {
        let set = workloads::load(&w.rules_file, &workloads::read_json(&w.rules_file));
        assert!(set.warnings.0.is_empty(), "{}: {:?}", w.id, set.warnings);
        let rules = rolegate::Rules::new(set);
        rules.collection(&w.namespace).unwrap();
        workloads::context(&rules, &w);
    }
}

#[test]
fn generated_documents_round_trip_through_relaxed_extended_json() {
    let mut docs = workloads::w1_documents(300);
    docs.extend(workloads::w2_documents(20, 100));
    docs.extend(workloads::w2_documents(100, 100));
    docs.extend(workloads::w3_documents(100, 100));
    for d in docs {
        let back = document_from_json(&document_to_json(&d)).unwrap();
        assert_eq!(back, d);
    }
}

#[test]
fn w1_documents_are_a_third_of_each_kind() {
    let w = workloads::w1();
    let rules = workloads::rules(&w);
    let ctx = workloads::context(&rules, &w);
    let coll = rules.collection(&w.namespace).unwrap();
    let prepared = coll.prepare_with(&ctx, rolegate::EngineKind::Reference);
    let mut roles = std::collections::BTreeMap::<String, usize>::new();
    for d in workloads::w1_documents(300) {
        let o = prepared.read(&d);
        assert!(o.visible);
        *roles.entry(o.role.unwrap_or_default()).or_default() += 1;
    }
    let expected: std::collections::BTreeMap<String, usize> =
        [("owner", 100), ("public", 100), ("shared", 100)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    assert_eq!(roles, expected);
}
