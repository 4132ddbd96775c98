//! Stage: the embedded store's front door. Input: a data folder. Output: an [`EmbeddedStore`]
//! that implements rolegate's [`Store`] (reads in [`crate::read`], writes in [`crate::write`])
//! and the whole-collection helpers an import or export needs.

use std::path::{Path, PathBuf};

use bson::{Document, doc};
use redb::{Database, TableError, TableHandle};
use rolegate::ops::{Change, Namespace, Store, StoreError, StoreRead, WriteSet};

use crate::failure::{during, failed, guarded};
use crate::names::{documents_table, ids_table, namespace_of};
use crate::tables::{DocumentsTable, FORMAT_KEY, FORMAT_VERSION, IdsTable, META};

/// The name of the database file in the data folder.
pub const FILE_NAME: &str = "rolegate.redb";

/// BSON documents of any number of databases and collections, kept in one redb file in a data
/// folder (`<dir>/rolegate.redb`). One process opens a folder at a time (a second open fails
/// while the first is alive). See the [crate documentation](crate) for the guarantees.
pub struct EmbeddedStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating the folder and the file when they do not exist. A
    /// file left by a killed process is recovered to its last commit. Fails (never panics) when
    /// the folder cannot be created, the file is not a store of this format, is corrupt, or is
    /// open in another `EmbeddedStore`.
    pub fn open(dir: impl AsRef<Path>) -> Result<EmbeddedStore, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(&format!("cannot create {}", dir.display()), e))?;
        let path = dir.join(FILE_NAME);
        let doing = format!("cannot open {}", path.display());
        guarded(&doing, || {
            let db = Database::create(&path).map_err(|e| failed(&doing, e))?;
            let store = EmbeddedStore { db, path };
            store.check_format()?;
            Ok(store)
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every collection that holds or held documents (a collection stays listed, empty, when
    /// its last document is deleted, until [`drop_collection`](Self::drop_collection)), sorted
    /// by database, then collection.
    pub fn collections(&self) -> Result<Vec<Namespace>, StoreError> {
        guarded("cannot list collections", || self.list_collections())
    }

    fn list_collections(&self) -> Result<Vec<Namespace>, StoreError> {
        let txn = self
            .db
            .begin_read()
            .map_err(during("cannot begin a read transaction"))?;
        let tables = txn.list_tables().map_err(during("cannot list tables"))?;
        let mut out: Vec<Namespace> = tables.filter_map(|t| namespace_of(t.name())).collect();
        out.sort_by(|a, b| {
            (a.database.as_bytes(), a.collection.as_bytes())
                .cmp(&(b.database.as_bytes(), b.collection.as_bytes()))
        });
        Ok(out)
    }

    /// Every document of `ns`, whole, in natural order (an export).
    pub fn documents(&self, ns: &Namespace) -> Result<Vec<Document>, StoreError> {
        let read = StoreRead {
            namespace: ns.clone(),
            query: doc! {},
            projection: None,
        };
        guarded("cannot read", || crate::read::find(&self.db, &read))
    }

    /// Inserts `docs` into `ns` in one transaction (an import): all of them, or none and the
    /// first error (a duplicate `_id`, among them or with a stored document, is
    /// [`StoreError::DuplicateKey`]). No rules: this is the store's own door. Returns how many
    /// were inserted.
    pub fn insert_many(
        &mut self,
        ns: &Namespace,
        docs: impl IntoIterator<Item = Document>,
    ) -> Result<usize, StoreError> {
        let changes: Vec<Change> = docs.into_iter().map(Change::Insert).collect();
        let count = changes.len();
        let set = WriteSet {
            namespace: ns.clone(),
            changes,
        };
        guarded("cannot write", || crate::write::write(&self.db, &set))?;
        Ok(count)
    }

    /// Removes the collection `ns` and its documents; `false` when there was none.
    pub fn drop_collection(&mut self, ns: &Namespace) -> Result<bool, StoreError> {
        guarded("cannot drop a collection", || self.drop_tables(ns))
    }

    fn drop_tables(&self, ns: &Namespace) -> Result<bool, StoreError> {
        let txn = self
            .db
            .begin_write()
            .map_err(during("cannot begin a write transaction"))?;
        let documents_name = documents_table(ns);
        let ids_name = ids_table(ns);
        let dropped = txn
            .delete_table(DocumentsTable::new(&documents_name))
            .map_err(during("cannot drop a collection"))?;
        txn.delete_table(IdsTable::new(&ids_name))
            .map_err(during("cannot drop an _id index"))?;
        txn.commit().map_err(during("cannot commit"))?;
        Ok(dropped)
    }

    /// Writes the format version into a new file; refuses a file of another version.
    fn check_format(&self) -> Result<(), StoreError> {
        let txn = self
            .db
            .begin_read()
            .map_err(during("cannot begin a read transaction"))?;
        let version = match txn.open_table(META) {
            Ok(meta) => meta
                .get(FORMAT_KEY)
                .map_err(during("cannot read the format version"))?
                .map(|v| v.value()),
            Err(TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(failed("cannot read the format version", e)),
        };
        match version {
            Some(FORMAT_VERSION) => Ok(()),
            Some(other) => Err(failed(
                "cannot open",
                format!("the file has format version {other}; this build reads {FORMAT_VERSION}"),
            )),
            None => {
                let txn = self
                    .db
                    .begin_write()
                    .map_err(during("cannot begin a write transaction"))?;
                {
                    let mut meta = txn
                        .open_table(META)
                        .map_err(during("cannot write the format version"))?;
                    meta.insert(FORMAT_KEY, FORMAT_VERSION)
                        .map_err(during("cannot write the format version"))?;
                }
                txn.commit().map_err(during("cannot commit"))
            }
        }
    }
}

impl Store for EmbeddedStore {
    fn find(&mut self, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
        guarded("cannot read", || crate::read::find(&self.db, read))
    }

    fn write(&mut self, writes: &WriteSet) -> Result<(), StoreError> {
        guarded("cannot write", || crate::write::write(&self.db, writes))
    }
}

/// A shared store: redb runs each read and each write set in its own transaction (writes one
/// at a time), so several threads — and a `%function` host reading while an operation runs —
/// can use one `EmbeddedStore` through `&EmbeddedStore`, without a lock of their own.
impl Store for &EmbeddedStore {
    fn find(&mut self, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
        guarded("cannot read", || crate::read::find(&self.db, read))
    }

    fn write(&mut self, writes: &WriteSet) -> Result<(), StoreError> {
        guarded("cannot write", || crate::write::write(&self.db, writes))
    }
}
