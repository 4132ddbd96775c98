//! Stage: the app's data. Input: the store the app's collections live in — the embedded store
//! of the data folder, or one the host supplies through [`crate::ServeConfig::data`] (the
//! command line's `--mongodb URI` passes a MongoDB deployment). Output: [`SharedStore`], a
//! store every request thread shares, and [`Shared`], the [`Store`] one operation runs on.
//!
//! Accounts (users, passwords, devices, sessions) and the signing key stay in the data folder
//! whatever holds the app's data: the app's own collections, and its custom user data, are read
//! and written here.

use bson::Document;
use rolegate::ops::{Store, StoreError, StoreRead, WriteSet};
use rolegate_store::EmbeddedStore;

/// A store that several threads use at once, each read and each write set on its own
/// (a write set stays all or nothing, as [`Store::write`] says).
pub trait SharedStore: Send + Sync {
    /// The documents `read` asks for.
    fn find(&self, read: &StoreRead) -> Result<Vec<Document>, StoreError>;

    /// Applies `writes` all or nothing, each replace and delete only if the stored document is
    /// still its `expected` pre-image.
    fn write(&self, writes: &WriteSet) -> Result<(), StoreError>;

    /// What the store is, for the startup log (`the embedded store`, `a MongoDB deployment`);
    /// never a connection string.
    fn describe(&self) -> String;
}

impl SharedStore for EmbeddedStore {
    fn find(&self, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
        (&mut &*self).find(read)
    }

    fn write(&self, writes: &WriteSet) -> Result<(), StoreError> {
        (&mut &*self).write(writes)
    }

    fn describe(&self) -> String {
        "the embedded store of the data folder".to_string()
    }
}

/// A [`SharedStore`] as the [`Store`] of one operation.
pub struct Shared<'a>(pub &'a dyn SharedStore);

impl Store for Shared<'_> {
    fn find(&mut self, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
        self.0.find(read)
    }

    fn write(&mut self, writes: &WriteSet) -> Result<(), StoreError> {
        self.0.write(writes)
    }
}
