//! Stage: the boundary between an operation and its store. Input: what an operation needs
//! ([`StoreRead`]) and what it decided to write ([`WriteSet`]). Output: the stored documents and
//! the outcome of the write, from whatever store the host drives ([`Store`]). No I/O here: the
//! library says what to read and write; stores live in their own crates.

use std::fmt;

use bson::{Bson, Document};

/// A database and collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    /// The database name.
    pub database: String,
    /// The collection name.
    pub collection: String,
}

impl Namespace {
    /// A namespace from its two names.
    pub fn new(database: impl Into<String>, collection: impl Into<String>) -> Namespace {
        Namespace {
            database: database.into(),
            collection: collection.into(),
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.database, self.collection)
    }
}

/// A read an operation needs: the stored documents of `namespace` that match `query` (a
/// MongoDB query; `{}` selects every document), in the store's natural order (insertion order
/// for the embedded store), each narrowed by `projection` when one is given (a MongoDB
/// inclusion or exclusion projection that keeps every field the rules read; `None` for writes,
/// which need whole pre-images).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreRead {
    /// The collection read.
    pub namespace: Namespace,
    /// The query the store evaluates (the filters' queries and the client clauses that are safe
    /// to push down).
    pub query: Document,
    /// The projection the store applies, if any.
    pub projection: Option<Document>,
}

impl StoreRead {
    /// A read of the whole documents of `namespace` that match `query`.
    pub fn new(namespace: Namespace, query: Document) -> StoreRead {
        StoreRead {
            namespace,
            query,
            projection: None,
        }
    }
}

/// One change of a [`WriteSet`].
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Insert `document` (it has an `_id`); a document with an equal `_id` already stored is a
    /// [`StoreError::DuplicateKey`].
    Insert(Document),
    /// Replace the stored document whose `_id` is `expected`'s with `document` (same `_id`),
    /// only if the stored document is still identical to `expected` (the pre-image the
    /// decision was made on), else [`StoreError::Conflict`].
    Replace {
        /// The pre-image, as the store returned it.
        expected: Document,
        /// The post-image.
        document: Document,
    },
    /// Delete the stored document whose `_id` is `expected`'s, only if it is still identical
    /// to `expected`, else [`StoreError::Conflict`].
    Delete {
        /// The pre-image, as the store returned it.
        expected: Document,
    },
}

impl Change {
    /// The `_id` of the document the change touches (`Null` if it has none).
    pub fn id(&self) -> &Bson {
        let doc = match self {
            Change::Insert(d) => d,
            Change::Replace { expected, .. } | Change::Delete { expected } => expected,
        };
        doc.get("_id").unwrap_or(&Bson::Null)
    }
}

/// The writes of one operation, applied **all or nothing**: if any change fails, the store
/// writes none of them.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSet {
    /// The collection written.
    pub namespace: Namespace,
    /// The changes, in order.
    pub changes: Vec<Change>,
}

/// Why a store could not do what was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// A document changed (or disappeared) between the read and the write: nothing was
    /// written; the operation may be retried from its read.
    Conflict {
        /// The `_id` of the document that changed.
        id: Bson,
    },
    /// An insert met a stored document with an equal `_id`: nothing was written.
    DuplicateKey {
        /// The duplicated `_id`.
        id: Bson,
    },
    /// The store failed (I/O, a corrupt file, a lost connection). **Detailed view**: for logs.
    Failed(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Conflict { id } => {
                write!(f, "the document with _id {id} changed since it was read")
            }
            StoreError::DuplicateKey { id } => write!(f, "duplicate key: _id {id}"),
            StoreError::Failed(m) => write!(f, "store failure: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A synchronous store the operations run on. An asynchronous host drives the same two steps
/// (plan the read, decide the writes) itself, awaiting its store in between.
pub trait Store {
    /// The documents `read` asks for.
    fn find(&mut self, read: &StoreRead) -> Result<Vec<Document>, StoreError>;

    /// Applies `writes` atomically (all or nothing), each replace and delete only if the
    /// stored document is still identical to its `expected` pre-image.
    fn write(&mut self, writes: &WriteSet) -> Result<(), StoreError>;
}
