//! Helpers of the operation property tests (`tests/ops_props.rs`, `tests/residual_props.rs`):
//! their proptest configuration, the namespace of the generated cases, stored documents from
//! generated ones, an in-memory store, a deterministic environment, operation bodies, and
//! loading a generated rule set.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code; not every test uses every helper"
)]

use bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, TestCaseError};
use rolegate::Rules;
use rolegate::ops::{MemoryStore, Namespace, OpEnv};

use super::arb;

/// Cases per property: `default`, or `PROPTEST_CASES` when set.
pub fn config(default: u32, regressions: &'static str) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        max_global_rejects: cases.max(100) * 4,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..ProptestConfig::default()
    }
}

pub fn ns() -> Namespace {
    Namespace::new("app", "items")
}

/// The documents with `_id` 0, 1, 2, ... first (stored documents have unique `_id`s).
pub fn stored(docs: &[arb::Doc]) -> Vec<Document> {
    docs.iter()
        .enumerate()
        .map(|(i, d)| {
            let mut out = doc! {"_id": i32::try_from(i).unwrap()};
            for (k, v) in d.bson() {
                if k != "_id" {
                    out.insert(k, v);
                }
            }
            out
        })
        .collect()
}

pub fn store_of(docs: &[Document]) -> MemoryStore {
    let mut s = MemoryStore::new();
    s.insert_unchecked(&ns(), docs.iter().cloned());
    s
}

pub fn env() -> OpEnv {
    let mut n = 0u64;
    OpEnv::fixed(DateTime::from_millis(0), move || {
        n += 1;
        let mut bytes = [0u8; 12];
        bytes[4..].copy_from_slice(&n.to_be_bytes());
        Bson::ObjectId(ObjectId::from_bytes(bytes))
    })
}

pub fn body(name: &str, args: Document) -> Document {
    let mut a = doc! {"database": "app", "collection": "items"};
    a.extend(args);
    doc! {"name": name, "arguments": [a]}
}

/// The rules, or a rejection when the validator refuses the generated rule set.
pub fn load(rules: &arb::RuleSetG) -> Result<Rules, TestCaseError> {
    rules
        .load()
        .map_err(|_| TestCaseError::reject("the validator refused the rules"))
}
