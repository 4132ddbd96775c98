//! The embedded rolegate store: BSON documents of any number of databases and collections in a
//! data folder, behind rolegate's store boundary ([`rolegate::ops::Store`]). Stage: storage.
//! Input: the reads ([`StoreRead`](rolegate::ops::StoreRead)) and write sets
//! ([`WriteSet`](rolegate::ops::WriteSet)) of rolegate's operations. Output: the stored documents,
//! and writes applied all or nothing.
//!
//! ```
//! use bson::doc;
//! use rolegate::ops::{Change, Namespace, Store, StoreRead, WriteSet};
//! use rolegate_store::EmbeddedStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let mut store = EmbeddedStore::open(dir.path().join("data"))?;
//! let tasks = Namespace::new("taskboard", "tasks");
//! store.write(&WriteSet {
//!     namespace: tasks.clone(),
//!     changes: vec![Change::Insert(doc! { "_id": 1, "title": "Tune alerts", "status": "todo" })],
//! })?;
//! let todo = store.find(&StoreRead {
//!     namespace: tasks,
//!     query: doc! { "status": "todo" },
//!     projection: Some(doc! { "title": 1 }),
//! })?;
//! assert_eq!(todo, [doc! { "_id": 1, "title": "Tune alerts" }]);
//! # Ok(())
//! # }
//! ```
//!
//! # Why redb
//!
//! The store is one redb file, `<dir>/rolegate.redb`. redb is a pure-Rust embedded
//! key-value store with ACID transactions: its B-trees are copy-on-write, and a commit becomes
//! visible by one durable switch of the file's root once the new pages are synced, so a process
//! killed in the middle of a write loses nothing it had committed and never shows half a
//! transaction (the crash test, `tests/crash.rs`, kills a writer with SIGKILL and checks
//! exactly that). It needs no C toolchain (unlike RocksDB or SQLite bindings), compiles quickly,
//! and one write transaction at a time is all rolegate's operations need. redb 2.6 is the newest
//! line that builds with the workspace's minimum Rust.
//!
//! # Layout
//!
//! Per collection two tables, named by the percent-encoded database and collection names, so
//! any name is safe (`x.a` + `b` and `x` + `a.b` are two collections):
//!
//! * the **documents**, keyed by a slot number (`u64`) allocated in insertion order: **natural
//!   order is insertion order**, a replacement keeps its document's slot and a document deleted
//!   and inserted again goes last (as a MongoDB collection on WiredTiger keeps a document's
//!   record id across updates); each value is the document's raw BSON;
//! * the **`_id` index**, from a canonical key of the `_id` to the slot. Two `_id`s get the same
//!   key exactly when MongoDB's equality ([`rolegate::mql::bson_equal`]) says they are equal:
//!   `1`, `NumberLong(1)`, `1.0` and `NumberDecimal("1.00")` are one `_id` (a second insert of
//!   any of them is a duplicate key), `"1"` is another, an ObjectId is not its hex string, and
//!   `{a: 1, b: 2}` is not `{b: 2, a: 1}`.
//!
//! A metadata table holds the format version (1); a file of another version is refused.
//!
//! # Reads
//!
//! A read runs in one read transaction (a consistent snapshot): every document of the
//! collection is decoded once and matched with rolegate's own query matcher, then projected
//! with rolegate's projection ([`rolegate::mql`]), in natural order. A query that is exactly
//! `{_id: <value>}` looks the value up in the index instead.
//!
//! # Writes
//!
//! A [`WriteSet`](rolegate::ops::WriteSet) is one write transaction: every change or none.
//! A replace or delete compares the stored document with its `expected` pre-image **byte for
//! byte** (raw BSON: same keys in the same order, same types) and is a
//! [`Conflict`](rolegate::ops::StoreError::Conflict) if it differs or is gone; an insert of an
//! `_id` already stored (or inserted earlier in the same set) is a
//! [`DuplicateKey`](rolegate::ops::StoreError::DuplicateKey). The store refuses what MongoDB
//! refuses to store: a document without `_id`, an `_id` that is an array, a regex or undefined,
//! a document nested deeper than 100 levels or larger than 16 MiB, and a replacement that
//! changes the `_id` ([`Failed`](rolegate::ops::StoreError::Failed), nothing written).
//!
//! # Errors
//!
//! Nothing panics: I/O errors, a corrupt or foreign file, an unreadable document, an invalid
//! query or a query that fails on a document are
//! [`StoreError::Failed`](rolegate::ops::StoreError::Failed) with the reason (a detailed view, for
//! logs).
//!
//! # Conformance
//!
//! [`conformance`] is the suite every store runs (this one in `tests/conformance.rs`; a
//! MongoDB-backed store later): the same checks, the same answers.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conformance;
mod documents;
mod embedded;
mod failure;
mod id_key;
mod names;
mod read;
mod tables;
mod write;

pub use embedded::{EmbeddedStore, FILE_NAME};
