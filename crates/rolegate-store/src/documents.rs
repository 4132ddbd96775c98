//! Stage: the documents as stored. Input: a document to write, or the bytes of a stored one.
//! Output: its raw BSON bytes once MongoDB's limits are checked (an `_id` of a type MongoDB
//! accepts, at most 100 levels of nesting, at most 16 MiB), or the decoded document.

use bson::{Bson, Document};
use rolegate::Limits;
use rolegate::ops::StoreError;

use crate::failure::failed;
use crate::id_key::id_key;

/// MongoDB's largest document (16 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// The raw BSON bytes of `doc`, refused when it nests deeper than MongoDB's 100 levels
/// ([`Limits::max_document_depth`]) or is larger than 16 MiB. `what` names it in the reason.
pub fn encode(doc: &Document, what: &str) -> Result<Vec<u8>, StoreError> {
    // Iterative, so it runs before the recursive serializer can meet a hostile depth.
    Limits::DEFAULT
        .check_document_as(what, doc)
        .map_err(|e| failed("refused a document", e))?;
    let mut bytes = Vec::new();
    doc.to_writer(&mut bytes)
        .map_err(|e| failed(&format!("cannot encode {what}"), e))?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(failed(
            "refused a document",
            format!(
                "{what} is {} bytes, more than MongoDB's {MAX_DOCUMENT_BYTES}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// The document stored as `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Document, StoreError> {
    bson::from_slice(bytes).map_err(|e| failed("a stored document is unreadable", e))
}

/// The `_id` of a document to store and its index key. MongoDB refuses a document without one
/// (the operations add it before the store sees the document) and an `_id` that is an array, a
/// regular expression or undefined.
pub fn stored_id(doc: &Document) -> Result<(&Bson, Vec<u8>), StoreError> {
    let id = doc
        .get("_id")
        .ok_or_else(|| failed("refused a document", "it has no _id"))?;
    let refused = match id {
        Bson::Array(_) => Some("an array"),
        Bson::RegularExpression(_) => Some("a regular expression"),
        Bson::Undefined => Some("undefined"),
        _ => None,
    };
    if let Some(kind) = refused {
        return Err(failed(
            "refused a document",
            format!("its _id is {kind}, which MongoDB does not allow"),
        ));
    }
    let key = id_key(id).map_err(|e| failed("refused a document", e))?;
    Ok((id, key))
}

/// The `_id` of a pre-image and its index key (any `_id` of a stored document has one).
pub fn expected_id(doc: &Document) -> Result<(&Bson, Vec<u8>), StoreError> {
    let id = doc
        .get("_id")
        .ok_or_else(|| failed("refused a change", "its expected document has no _id"))?;
    let key = id_key(id).map_err(|e| failed("refused a change", e))?;
    Ok((id, key))
}
