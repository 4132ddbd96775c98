//! Property: random write sets (inserts, replaces and deletes, with current and stale
//! pre-images, `_id`s in every numeric type) give the embedded store and a plain in-memory model
//! the same errors and the same contents, set after set; `_id` lookups agree too.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers fail the test by panicking"
)]

use std::str::FromStr;

use bson::{Bson, Decimal128, Document, doc};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rolegate::mql::bson_equal;
use rolegate::ops::{Change, Namespace, Store, StoreError, StoreRead, WriteSet};
use rolegate_store::EmbeddedStore;

/// An `_id`: a small number in one of the numeric types, or a short string.
#[derive(Debug, Clone)]
struct Id {
    value: u8,
    kind: u8,
}

impl Id {
    fn bson(&self) -> Bson {
        let n = i32::from(self.value % 4);
        match self.kind % 6 {
            0 => Bson::Int32(n),
            1 => Bson::Int64(i64::from(n)),
            2 => Bson::Double(f64::from(n)),
            3 => Bson::Decimal128(Decimal128::from_str(&format!("{n}.0")).unwrap()),
            _ => Bson::String(format!("s{n}")),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        id: Id,
        v: i32,
    },
    /// Replace the `target`-th document (modulo how many there are; a missing `_id` when there
    /// are none), keeping its `_id` value but maybe not its type.
    Replace {
        target: usize,
        stale: bool,
        kind: u8,
        v: i32,
    },
    Delete {
        target: usize,
        stale: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let id = (any::<u8>(), any::<u8>()).prop_map(|(value, kind)| Id { value, kind });
    prop_oneof![
        3 => (id, any::<i32>()).prop_map(|(id, v)| Op::Insert { id, v }),
        2 => (any::<usize>(), prop::bool::weighted(0.3), any::<u8>(), any::<i32>())
            .prop_map(|(target, stale, kind, v)| Op::Replace { target, stale, kind, v }),
        1 => (any::<usize>(), prop::bool::weighted(0.3))
            .prop_map(|(target, stale)| Op::Delete { target, stale }),
    ]
}

/// The model: the documents in natural order.
type Model = Vec<Document>;

fn id_of(doc: &Document) -> Bson {
    doc.get("_id").cloned().unwrap_or(Bson::Null)
}

fn position(model: &Model, id: &Bson) -> Option<usize> {
    model.iter().position(|d| bson_equal(&id_of(d), id))
}

/// The same number as `id` in the numeric type `kind` picks (strings stay strings).
fn retyped(id: &Bson, kind: u8) -> Bson {
    let n = match id {
        Bson::Int32(n) => *n,
        Bson::Int64(n) => *n as i32,
        Bson::Double(d) => *d as i32,
        Bson::Decimal128(d) => d.to_string().parse::<f64>().unwrap() as i32,
        other => return other.clone(),
    };
    Id {
        value: n as u8,
        kind: kind % 4,
    }
    .bson()
}

/// The write set `ops` make against `model`, the first error the model expects, and the
/// model after the set.
fn plan(model: &Model, ops: &[Op]) -> (Vec<Change>, Result<(), StoreError>, Model) {
    let mut scratch = model.clone();
    let mut changes = Vec::new();
    let mut outcome = Ok(());
    let missing = doc! { "_id": "missing" };
    for op in ops {
        let (change, result) = match op {
            Op::Insert { id, v } => {
                let doc = doc! { "_id": id.bson(), "v": *v };
                let result = match position(&scratch, &id.bson()) {
                    Some(_) => Err(StoreError::DuplicateKey { id: id.bson() }),
                    None => {
                        if outcome.is_ok() {
                            scratch.push(doc.clone());
                        }
                        Ok(())
                    }
                };
                (Change::Insert(doc), result)
            }
            Op::Replace {
                target,
                stale,
                kind,
                v,
            } => {
                let current = scratch
                    .get(target % scratch.len().max(1))
                    .cloned()
                    .unwrap_or(missing.clone());
                let id = id_of(&current);
                let mut expected = current.clone();
                if *stale {
                    expected.insert("v", "stale");
                }
                let document = doc! { "_id": retyped(&id, *kind), "v": *v };
                let result = match position(&scratch, &id) {
                    Some(at) if !*stale => {
                        if outcome.is_ok() {
                            scratch[at] = document.clone();
                        }
                        Ok(())
                    }
                    _ => Err(StoreError::Conflict { id }),
                };
                (Change::Replace { expected, document }, result)
            }
            Op::Delete { target, stale } => {
                let current = scratch
                    .get(target % scratch.len().max(1))
                    .cloned()
                    .unwrap_or(missing.clone());
                let id = id_of(&current);
                let mut expected = current.clone();
                if *stale {
                    expected.insert("extra", true);
                }
                let result = match position(&scratch, &id) {
                    Some(at) if !*stale => {
                        if outcome.is_ok() {
                            scratch.remove(at);
                        }
                        Ok(())
                    }
                    _ => Err(StoreError::Conflict { id }),
                };
                (Change::Delete { expected }, result)
            }
        };
        if outcome.is_ok() {
            outcome = result;
        }
        changes.push(change);
    }
    let after = if outcome.is_ok() {
        scratch
    } else {
        model.clone()
    };
    (changes, outcome, after)
}

fn bytes(docs: &[Document]) -> Vec<Vec<u8>> {
    docs.iter().map(|d| bson::to_vec(d).unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/model.txt"
        )))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_and_model_agree(
        sets in prop::collection::vec(prop::collection::vec(op(), 1..5), 1..10),
        probes in prop::collection::vec((any::<u8>(), any::<u8>()), 3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = EmbeddedStore::open(dir.path()).unwrap();
        let ns = Namespace::new("model", "docs");
        let mut model: Model = Vec::new();
        for ops in &sets {
            let (changes, expected, after) = plan(&model, ops);
            let got = store.write(&WriteSet { namespace: ns.clone(), changes });
            prop_assert_eq!(&got, &expected, "the write set {:?}", ops);
            model = after;
            prop_assert_eq!(bytes(&store.documents(&ns).unwrap()), bytes(&model));
            for (value, kind) in &probes {
                let id = Id { value: *value, kind: *kind }.bson();
                let found = store
                    .find(&StoreRead { namespace: ns.clone(), query: doc! { "_id": id.clone() }, projection: None })
                    .unwrap();
                let wanted: Vec<Document> =
                    model.iter().filter(|d| bson_equal(&id_of(d), &id)).cloned().collect();
                prop_assert_eq!(bytes(&found), bytes(&wanted), "find _id {:?}", id);
            }
        }
        drop(store);
        let reopened = EmbeddedStore::open(dir.path()).unwrap();
        prop_assert_eq!(bytes(&reopened.documents(&ns).unwrap()), bytes(&model));
    }
}
