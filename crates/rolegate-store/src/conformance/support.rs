//! Stage: the conformance checks' vocabulary. Input: a store and what a check does with it.
//! Output: the store's answers, or a panic that says what was being done and what came back.

use bson::{Bson, Document};
use rolegate::mql::bson_equal;
use rolegate::ops::{Change, Namespace, Store, StoreError, StoreRead, WriteSet};

/// Applies `changes` to `ns` as one set.
pub fn write(
    store: &mut dyn Store,
    ns: &Namespace,
    changes: Vec<Change>,
) -> Result<(), StoreError> {
    store.write(&WriteSet {
        namespace: ns.clone(),
        changes,
    })
}

/// Applies `changes` to `ns` as one set, which must succeed.
pub fn must_write(store: &mut dyn Store, ns: &Namespace, changes: Vec<Change>, what: &str) {
    if let Err(e) = write(store, ns, changes) {
        panic!("{what}: the write set failed: {e:?}");
    }
}

/// Inserts `docs` into `ns`, one set per document.
pub fn insert_each(store: &mut dyn Store, ns: &Namespace, docs: &[Document]) {
    for doc in docs {
        must_write(
            store,
            ns,
            vec![Change::Insert(doc.clone())],
            &format!("inserting {doc:?}"),
        );
    }
}

/// The documents of `ns` that `query` selects, projected by `projection`.
pub fn find(
    store: &mut dyn Store,
    ns: &Namespace,
    query: Document,
    projection: Option<Document>,
) -> Vec<Document> {
    let read = StoreRead {
        namespace: ns.clone(),
        query,
        projection,
    };
    store
        .find(&read)
        .unwrap_or_else(|e| panic!("find {read:?} failed: {e:?}"))
}

/// Every document of `ns`, whole.
pub fn all(store: &mut dyn Store, ns: &Namespace) -> Vec<Document> {
    find(store, ns, Document::new(), None)
}

/// The stored document of `ns` with `_id` `id`, whole.
pub fn by_id(store: &mut dyn Store, ns: &Namespace, id: Bson) -> Document {
    let mut query = Document::new();
    query.insert("_id", id.clone());
    let mut found = find(store, ns, query, None);
    if found.len() != 1 {
        panic!("expected one document with _id {id:?} in {ns}, found {found:?}");
    }
    found.remove(0)
}

/// The raw BSON bytes of `doc`.
pub fn bytes(doc: &Document) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = doc.to_writer(&mut out) {
        panic!("cannot encode {doc:?}: {e}");
    }
    out
}

/// `actual` holds exactly `expected`, in order, each document byte for byte (same keys in the
/// same order, same types).
pub fn assert_docs(actual: &[Document], expected: &[Document], what: &str) {
    let same = actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|(a, e)| bytes(a) == bytes(e));
    if !same {
        panic!("{what}:\n  expected {expected:?}\n  got      {actual:?}");
    }
}

/// The `_id`s of `docs`, in order, are `expected` (by MongoDB equality).
pub fn assert_ids(docs: &[Document], expected: &[Bson], what: &str) {
    let ids: Vec<Bson> = docs
        .iter()
        .map(|d| d.get("_id").cloned().unwrap_or(Bson::Null))
        .collect();
    let same =
        ids.len() == expected.len() && ids.iter().zip(expected).all(|(a, e)| bson_equal(a, e));
    if !same {
        panic!("{what}: expected the _ids {expected:?}, got {ids:?}");
    }
}

/// `result` is a [`StoreError::Conflict`] on `id`.
pub fn assert_conflict(result: Result<(), StoreError>, id: &Bson, what: &str) {
    match result {
        Err(StoreError::Conflict { id: got }) if bson_equal(&got, id) => {}
        other => panic!("{what}: expected a conflict on _id {id:?}, got {other:?}"),
    }
}

/// `result` is a [`StoreError::DuplicateKey`] on `id` (by MongoDB equality).
pub fn assert_duplicate(result: Result<(), StoreError>, id: &Bson, what: &str) {
    match result {
        Err(StoreError::DuplicateKey { id: got }) if bson_equal(&got, id) => {}
        other => panic!("{what}: expected a duplicate key on _id {id:?}, got {other:?}"),
    }
}
