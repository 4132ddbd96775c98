//! Shared bench data (`mod common;` in `benches/ops.rs` and `benches/pushdown.rs`). Input: the
//! committed W1 workload of `crates/rolegate/benches/data/w1` (its documents and user).
//! Output: the documents, the user's request context, an embedded store holding documents in
//! a temporary folder, and operation bodies on the bench collection (`bench.w1`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "bench support code: a failure is a broken bench"
)]

use std::path::{Path, PathBuf};

use bson::{Bson, Document, doc};
use rolegate::ops::Namespace;
use rolegate::{RequestContext, Rules};
use rolegate_store::EmbeddedStore;

/// The W1 folder: `rules.json`, `user.json`, `documents.jsonl` (1,000 documents).
pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rolegate/benches/data/w1")
}

/// A JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The 1,000 committed W1 documents.
pub fn w1_documents() -> Vec<Document> {
    std::fs::read_to_string(data().join("documents.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            match Bson::try_from(v).unwrap() {
                Bson::Document(d) => d,
                other => panic!("not a document: {other}"),
            }
        })
        .collect()
}

/// The request context of the W1 user (`u0`).
pub fn context(rules: &Rules) -> RequestContext {
    let user = Bson::try_from(json(&data().join("user.json"))).unwrap();
    let Bson::Document(user) = user else { panic!() };
    rules.context().user(user).build().unwrap()
}

/// An embedded store in a new temporary folder, holding `docs` in [`namespace`] (keep the
/// folder as long as the store).
pub fn store_with(docs: Vec<Document>) -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = EmbeddedStore::open(dir.path()).unwrap();
    store.insert_many(&namespace(), docs).unwrap();
    (dir, store)
}

/// The bench collection, `bench.w1`.
pub fn namespace() -> Namespace {
    Namespace::new("bench", "w1")
}

/// The body of the operation `name` on [`namespace`] with `args`.
pub fn body(name: &str, args: Document) -> Document {
    let mut a = doc! {"database": "bench", "collection": "w1"};
    a.extend(args);
    doc! {"name": name, "arguments": [a]}
}
