//! Stage: setup. Input: a workload of the shared generator. Output: its committed rule file
//! (text), its user (JSON), its documents as raw BSON, and the leaf paths of a document.
//!
//! The generator's own `data_dir` is relative to the rolegate crate; this package reads the same
//! folder (`benches/data/`) from its own manifest directory.

use std::path::{Path, PathBuf};

use bson::{RawBsonRef, RawDocument, RawDocumentBuf};
use serde_json::Value;

use crate::workloads::{self, W3Kind, Workload};

/// The committed bench data (`benches/data/`).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/rolegate/benches/data")
}

/// The Cedar and Rego policy files (`benches/peers/policies/`).
pub fn policy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// Reads a file, naming it in the panic when it is missing.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A committed rule file's text, checked against the generator (so the Cedar and Rego
/// policies, written from the generator's description, mirror the file rolegate loads).
pub fn rules_text(w: &Workload) -> String {
    let text = read(&data_dir().join(&w.rules_file));
    let json: Value = serde_json::from_str(&text).expect("rule file JSON");
    assert!(
        json == w.rules,
        "{}: the committed file differs from the generator \
         (cargo run --release --example gen-bench-data)",
        w.rules_file
    );
    text
}

/// A workload's committed user (`%%user`).
pub fn user(w: &Workload) -> Value {
    let text = read(&data_dir().join(&w.user_file));
    serde_json::from_str(&text).expect("user JSON")
}

/// W1 documents benchmarked and checked (the generator's full set).
pub const W1_DOCS: usize = workloads::W1_DOCS;

/// W1 documents timed per iteration (a prefix: kinds rotate owner / shared / public).
pub const W1_TIMED: usize = 1_000;

/// The W1 documents, as raw BSON.
pub fn w1_documents() -> Vec<RawDocumentBuf> {
    workloads::raw(&workloads::w1_documents(W1_DOCS))
}

/// W3 documents per role count in this comparison: the first 200 of the generator's 1,000 (the
/// peers take tens of milliseconds per document at 10,000 policies; the equality check runs
/// every engine on every one of them).
pub const W3_DOCS: usize = 200;

/// The W3 documents for `roles` roles, as raw BSON (the same set for both kinds).
pub fn w3_documents(roles: usize) -> Vec<RawDocumentBuf> {
    let mut docs = workloads::w3_documents(roles, workloads::W3_DOCS);
    docs.truncate(W3_DOCS);
    workloads::raw(&docs)
}

/// W3 documents timed per iteration for a peer, which scans its `policies` policies: all 200
/// up to 100 policies, then a prefix (100 at 1,000, 10 at 10,000) so that one iteration stays
/// short. Teams are spread uniformly: any prefix is representative.
pub fn w3_timed(policies: usize) -> usize {
    W3_DOCS.min(100_000 / policies.max(1)).max(1)
}

/// Every W3 workload: kind and role count.
pub fn w3_all() -> Vec<(W3Kind, usize)> {
    W3Kind::ALL
        .iter()
        .flat_map(|&k| workloads::W3_SIZES.iter().map(move |&n| (k, n)))
        .collect()
}

/// The dotted leaf paths of a raw document, sorted: embedded documents are descended into;
/// arrays, scalars and empty documents are leaves (as `rolegate::outcome::leaf_paths`).
pub fn leaf_paths(doc: &RawDocument) -> Vec<String> {
    let mut out = Vec::new();
    push_leaves(doc, "", &mut out);
    out.sort();
    out
}

fn push_leaves(doc: &RawDocument, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in doc.iter().filter_map(Result::ok) {
        let path = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            RawBsonRef::Document(d) if !d.is_empty() => push_leaves(d, &path, out),
            _ => out.push(path),
        }
    }
}
