//! The MongoDB store behind rolegate's operations: [`MongoStore`] implements
//! [`rolegate::ops::Store`] on a MongoDB replica set or sharded cluster (Atlas included),
//! through the official driver's blocking API. Stage: I/O, below the library. Input: the reads
//! and write sets the operations decide. Output: stored documents, and write sets applied all or
//! nothing.
//!
//! ```no_run
//! use rolegate::ops::{Namespace, Store, StoreRead};
//! use rolegate_store_mongodb::MongoStore;
//!
//! let mut store = MongoStore::connect("mongodb://localhost:27017/?replicaSet=rs0")?;
//! let read = StoreRead {
//!     namespace: Namespace::new("shop", "orders"),
//!     query: bson::doc! { "status": "open" },
//!     projection: None,
//! };
//! let open = store.find(&read)?;
//! # Ok::<(), rolegate::ops::StoreError>(())
//! ```
//!
//! What it does, in short:
//!
//! * **reads** are `find`s with the read's query and projection, in natural order (no sort);
//! * **write sets** are one multi-document transaction each (module `write`): inserts
//!   are `insertOne`s; replaces and deletes are `findOneAndReplace` / `findOneAndDelete` whose
//!   filter holds the pre-image the rules decided on, the pre-image they return compared byte
//!   for byte, since MongoDB's own document comparison takes `1` and `1.0` as equal
//!   (module `filter` says why, from the manual);
//! * **errors**: a stale pre-image, a write conflict or a transient transaction error is a
//!   [`StoreError::Conflict`](rolegate::ops::StoreError::Conflict) (the operation re-reads and
//!   decides again), a duplicate key a
//!   [`StoreError::DuplicateKey`](rolegate::ops::StoreError::DuplicateKey), anything else a
//!   [`StoreError::Failed`](rolegate::ops::StoreError::Failed) with the driver's message
//!   (module `classify`).
//!
//! Every command names the `simple` collation, MongoDB's binary string comparison, which the
//! rules' queries assume: a collection's default collation never applies.
//!
//! It needs MongoDB 4.4 or newer (the first to create a collection inside a transaction, as a
//! first insert does) on a replica set or a sharded cluster; [`MongoStore::connect`] refuses a
//! standalone server.
//!
//! **How it is tested.** No MongoDB server could be installed on the development machines. The
//! MongoDB store is compiled and linted in CI (`cargo clippy -p rolegate-store-mongodb`), and its
//! unit tests (filters, error classification, the pre-image check) need no server; its
//! store-conformance suite (`tests/conformance.rs`) runs only where `ROLEGATE_TEST_MONGODB_URI`
//! points at a replica set (transactions need one; a single-node replica set will do):
//!
//! ```text
//! ROLEGATE_TEST_MONGODB_URI='mongodb://localhost:27017/?replicaSet=rs0' \
//!     cargo test --release -p rolegate-store-mongodb
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod classify;
mod filter;
mod store;
mod topology;
mod write;

pub use store::MongoStore;
