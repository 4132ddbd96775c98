//! Stage: a store in memory. Input: the reads and write sets of operations. Output: documents
//! held in a map of namespaces, with the same contract as every store (natural order,
//! conditional replaces and deletes, all-or-nothing write sets). For tests, examples and the
//! model the persistent stores are checked against; nothing is kept when it is dropped.

use std::collections::HashMap;

use bson::{Bson, Document};

use crate::mql::{bson_equal, compile_query, matches, project};

use super::store::{Change, Namespace, Store, StoreError, StoreRead, WriteSet};

/// Collections of documents in memory, in insertion order.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    collections: HashMap<Namespace, Vec<Document>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Adds documents to `namespace` as they are (the system user's import: no rules).
    pub fn insert_unchecked(
        &mut self,
        namespace: &Namespace,
        docs: impl IntoIterator<Item = Document>,
    ) {
        self.collections
            .entry(namespace.clone())
            .or_default()
            .extend(docs);
    }

    /// The documents of `namespace`, in natural order.
    pub fn documents(&self, namespace: &Namespace) -> &[Document] {
        self.collections.get(namespace).map_or(&[], Vec::as_slice)
    }
}

/// Whether two stored documents have equal `_id`s (MongoDB equality: `1` and `1.0` are one).
fn same_id(a: &Document, id: &Bson) -> bool {
    a.get("_id").is_some_and(|x| bson_equal(x, id))
}

impl Store for MemoryStore {
    fn find(&mut self, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
        let query = compile_query(&read.query).map_err(|e| StoreError::Failed(e.to_string()))?;
        let mut out = Vec::new();
        for d in self.documents(&read.namespace) {
            if matches(&query, d).map_err(|e| StoreError::Failed(e.to_string()))? {
                out.push(match &read.projection {
                    Some(p) => project(p, d),
                    None => d.clone(),
                });
            }
        }
        Ok(out)
    }

    fn write(&mut self, writes: &WriteSet) -> Result<(), StoreError> {
        // Apply to a copy; keep it only if every change succeeds.
        let mut docs = self.documents(&writes.namespace).to_vec();
        for change in &writes.changes {
            let id = change.id().clone();
            match change {
                Change::Insert(d) => {
                    if docs.iter().any(|x| same_id(x, &id)) {
                        return Err(StoreError::DuplicateKey { id });
                    }
                    docs.push(d.clone());
                }
                Change::Replace { expected, document } => {
                    let slot = docs
                        .iter_mut()
                        .find(|x| same_id(x, &id))
                        .filter(|x| identical(x, expected))
                        .ok_or(StoreError::Conflict { id })?;
                    *slot = document.clone();
                }
                Change::Delete { expected } => {
                    let at = docs
                        .iter()
                        .position(|x| same_id(x, &id) && identical(x, expected))
                        .ok_or(StoreError::Conflict { id })?;
                    docs.remove(at);
                }
            }
        }
        self.collections.insert(writes.namespace.clone(), docs);
        Ok(())
    }
}

/// Byte-for-byte identity (types, key order).
fn identical(a: &Document, b: &Document) -> bool {
    let mut x = Vec::new();
    let mut y = Vec::new();
    a.to_writer(&mut x).is_ok() && b.to_writer(&mut y).is_ok() && x == y
}
