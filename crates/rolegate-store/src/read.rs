//! Stage: reads. Input: a [`StoreRead`] and the open database. Output: the stored documents its
//! query selects, in natural (insertion) order, projected — from one read transaction, each
//! document decoded once.
//!
//! The query is evaluated by rolegate's own matcher ([`compile_query`], [`matches()`]), the
//! projection by [`project`]. A query that is exactly `{_id: <value>}` with a scalar value looks
//! the `_id` up in the index instead of scanning (the document found is still matched, so the
//! index only ever narrows what the scan would select). An invalid query, a query that fails on
//! a stored document, or an unreadable document fails the whole read: nothing is returned.

use bson::{Bson, Document};
use redb::{Database, ReadableTable, TableError};
use rolegate::Limits;
use rolegate::mql::{compile_query, matches, project};
use rolegate::ops::{StoreError, StoreRead};

use crate::documents::decode;
use crate::failure::{during, failed};
use crate::id_key::id_key;
use crate::names::{documents_table, ids_table};
use crate::tables::{DocumentsTable, IdsTable};

/// The documents `read` asks for.
pub fn find(db: &Database, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
    Limits::DEFAULT
        .check_document_as("the query", &read.query)
        .map_err(|e| failed("refused a read", e))?;
    if let Some(projection) = &read.projection {
        Limits::DEFAULT
            .check_document_as("the projection", projection)
            .map_err(|e| failed("refused a read", e))?;
    }
    let query = compile_query(&read.query).map_err(|e| failed("invalid query", e))?;
    let txn = db
        .begin_read()
        .map_err(during("cannot begin a read transaction"))?;
    let documents_name = documents_table(&read.namespace);
    let documents = match txn.open_table(DocumentsTable::new(&documents_name)) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(failed("cannot open a collection", e)),
    };
    let mut out = Vec::new();
    let mut keep = |doc: Document| -> Result<(), StoreError> {
        let selected = matches(&query, &doc)
            .map_err(|e| failed("the query failed on a stored document", e))?;
        if selected {
            out.push(match &read.projection {
                Some(projection) => project(projection, &doc),
                None => doc,
            });
        }
        Ok(())
    };
    if let Some(id) = id_lookup(&read.query) {
        let key = id_key(id).map_err(|e| failed("invalid query", e))?;
        let ids_name = ids_table(&read.namespace);
        let ids = txn
            .open_table(IdsTable::new(&ids_name))
            .map_err(during("cannot open an _id index"))?;
        let slot = ids
            .get(key.as_slice())
            .map_err(during("cannot read an _id index"))?
            .map(|slot| slot.value());
        if let Some(slot) = slot {
            let stored = documents
                .get(slot)
                .map_err(during("cannot read a document"))?
                .ok_or_else(|| failed("corrupt _id index", "it names a missing document"))?;
            keep(decode(stored.value())?)?;
        }
    } else {
        for entry in documents
            .iter()
            .map_err(during("cannot scan a collection"))?
        {
            let (_, stored) = entry.map_err(during("cannot scan a collection"))?;
            keep(decode(stored.value())?)?;
        }
    }
    Ok(out)
}

/// The `_id` of a query that is exactly `{_id: <value>}` with a value whose query meaning is
/// plain equality (not a document of operators, an array, a regex or null, which also match
/// other values or missing fields).
fn id_lookup(query: &Document) -> Option<&Bson> {
    if query.len() != 1 {
        return None;
    }
    let id = query.get("_id")?;
    match id {
        Bson::Int32(_)
        | Bson::Int64(_)
        | Bson::Double(_)
        | Bson::Decimal128(_)
        | Bson::String(_)
        | Bson::ObjectId(_)
        | Bson::Binary(_)
        | Bson::DateTime(_)
        | Bson::Boolean(_)
        | Bson::Timestamp(_) => Some(id),
        _ => None,
    }
}
