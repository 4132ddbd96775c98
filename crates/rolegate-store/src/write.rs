//! Stage: writes. Input: a [`WriteSet`] and the open database. Output: the changes committed
//! together in one write transaction, or none of them and the first error.
//!
//! In order, within the transaction (so a change sees the ones before it in the set):
//!
//! * **insert**: the document's `_id` ([`crate::documents::stored_id`]) must not be in the
//!   collection's `_id` index, else [`StoreError::DuplicateKey`]; the document takes the next
//!   slot (after every stored one: natural order is insertion order);
//! * **replace** / **delete**: the stored document with the `_id` of `expected` must still have
//!   exactly `expected`'s raw BSON bytes (same keys in the same order, same types, same values),
//!   else [`StoreError::Conflict`] (also when it is gone); a replacement keeps the slot, and
//!   must keep the `_id` (MongoDB's equality: its index key).
//!
//! Any error aborts the transaction; redb commits durably (the file is synced before the commit
//! returns) and a commit is atomic: after a crash the file holds every committed set, and no
//! part of any other.

use redb::{Database, ReadableTable, Table, WriteTransaction};
use rolegate::ops::{Change, StoreError, WriteSet};

use crate::documents::{encode, expected_id, stored_id};
use crate::failure::{during, failed};
use crate::names::{documents_table, ids_table};
use crate::tables::{DocumentsTable, IdsTable};

/// Applies `set` all or nothing.
pub fn write(db: &Database, set: &WriteSet) -> Result<(), StoreError> {
    if set.changes.is_empty() {
        return Ok(());
    }
    let txn = db
        .begin_write()
        .map_err(during("cannot begin a write transaction"))?;
    match apply(&txn, set) {
        Ok(()) => txn.commit().map_err(during("cannot commit")),
        Err(e) => {
            // The error that stopped the set is the one to report; an abort that fails too
            // leaves nothing committed all the same.
            let _ = txn.abort();
            Err(e)
        }
    }
}

/// The open tables of the collection written.
struct Collection<'t> {
    documents: Table<'t, u64, &'static [u8]>,
    ids: Table<'t, &'static [u8], u64>,
    /// The slot of the next insert.
    next: u64,
}

fn apply(txn: &WriteTransaction, set: &WriteSet) -> Result<(), StoreError> {
    let documents_name = documents_table(&set.namespace);
    let ids_name = ids_table(&set.namespace);
    let documents = txn
        .open_table(DocumentsTable::new(&documents_name))
        .map_err(during("cannot open a collection"))?;
    let ids = txn
        .open_table(IdsTable::new(&ids_name))
        .map_err(during("cannot open an _id index"))?;
    let last = documents
        .last()
        .map_err(during("cannot read a collection"))?
        .map(|(slot, _)| slot.value());
    let next = match last {
        None => 0,
        Some(slot) => slot
            .checked_add(1)
            .ok_or_else(|| failed("cannot insert", "the collection has no slot left"))?,
    };
    let mut collection = Collection {
        documents,
        ids,
        next,
    };
    for change in &set.changes {
        match change {
            Change::Insert(doc) => collection.insert(doc)?,
            Change::Replace { expected, document } => collection.replace(expected, document)?,
            Change::Delete { expected } => collection.delete(expected)?,
        }
    }
    Ok(())
}

impl Collection<'_> {
    fn insert(&mut self, doc: &bson::Document) -> Result<(), StoreError> {
        let (id, key) = stored_id(doc)?;
        let bytes = encode(doc, "the inserted document")?;
        let taken = self
            .ids
            .get(key.as_slice())
            .map_err(during("cannot read an _id index"))?
            .is_some();
        if taken {
            return Err(StoreError::DuplicateKey { id: id.clone() });
        }
        let slot = self.next;
        self.next = slot
            .checked_add(1)
            .ok_or_else(|| failed("cannot insert", "the collection has no slot left"))?;
        self.documents
            .insert(slot, bytes.as_slice())
            .map_err(during("cannot write a document"))?;
        self.ids
            .insert(key.as_slice(), slot)
            .map_err(during("cannot write an _id index"))?;
        Ok(())
    }

    fn replace(
        &mut self,
        expected: &bson::Document,
        document: &bson::Document,
    ) -> Result<(), StoreError> {
        let (_, key) = expected_id(expected)?;
        let (_, new_key) = stored_id(document)?;
        if new_key != key {
            return Err(failed(
                "refused a replace",
                "the replacement has another _id than the document it replaces",
            ));
        }
        let bytes = encode(document, "the replacement document")?;
        let slot = self.current(expected, &key)?;
        self.documents
            .insert(slot, bytes.as_slice())
            .map_err(during("cannot write a document"))?;
        Ok(())
    }

    fn delete(&mut self, expected: &bson::Document) -> Result<(), StoreError> {
        let (_, key) = expected_id(expected)?;
        let slot = self.current(expected, &key)?;
        self.documents
            .remove(slot)
            .map_err(during("cannot delete a document"))?;
        self.ids
            .remove(key.as_slice())
            .map_err(during("cannot write an _id index"))?;
        Ok(())
    }

    /// The slot of the stored document with `expected`'s `_id` (its index `key`), when that
    /// document still has exactly `expected`'s bytes; else [`StoreError::Conflict`].
    fn current(&self, expected: &bson::Document, key: &[u8]) -> Result<u64, StoreError> {
        let conflict = || StoreError::Conflict {
            id: expected.get("_id").cloned().unwrap_or(bson::Bson::Null),
        };
        let expected_bytes = encode(expected, "the expected document")?;
        let Some(slot) = self
            .ids
            .get(key)
            .map_err(during("cannot read an _id index"))?
            .map(|slot| slot.value())
        else {
            return Err(conflict());
        };
        let stored = self
            .documents
            .get(slot)
            .map_err(during("cannot read a document"))?
            .ok_or_else(|| failed("corrupt _id index", "it names a missing document"))?;
        if stored.value() != expected_bytes.as_slice() {
            return Err(conflict());
        }
        Ok(slot)
    }
}
