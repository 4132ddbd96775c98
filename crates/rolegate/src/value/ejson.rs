//! Stage: value conversion at the edges. Input: JSON from rule files, conformance cases and the
//! CLI (MongoDB Extended JSON v2, canonical or relaxed). Output: BSON values for evaluation; and
//! back: relaxed Extended JSON for output.
//!
//! Numbers follow the case format: a plain JSON integer is an int32 when it fits, else an int64
//! (an integer beyond the int64 range becomes a double); a number written with a fraction or an
//! exponent is a double. `{"$numberInt"}`, `{"$numberLong"}`, `{"$numberDouble"}`,
//! `{"$numberDecimal"}`, `{"$oid"}`, `{"$date"}`, `{"$binary"}`, `{"$uuid"}`, `{"$timestamp"}`,
//! `{"$regularExpression"}`, ... are the typed values; an object with one of those keys and any
//! other key is an error. Objects with other `$` keys (query operators such as `{"$in": [..]}`)
//! stay documents.
//!
//! Values nested deeper than [`crate::value::compare::MAX_DEPTH`] levels are rejected (checked
//! iteratively before conversion, so hostile input cannot exhaust the stack).

use bson::{Bson, Document};

use crate::error::json_kind;
use crate::value::compare::MAX_DEPTH;

/// Converts (canonical or relaxed) Extended JSON to BSON.
pub fn bson_from_json(v: &serde_json::Value) -> Result<Bson, String> {
    check_depth(v)?;
    Bson::try_from(v.clone()).map_err(|e| format!("invalid extended JSON: {e}"))
}

/// Converts an Extended JSON object to a BSON document; anything else (including typed values
/// such as `{"$oid": ..}`) is an error.
pub fn document_from_json(v: &serde_json::Value) -> Result<Document, String> {
    if !v.is_object() {
        return Err(format!("expected an object, got {}", json_kind(v)));
    }
    match bson_from_json(v)? {
        Bson::Document(d) => Ok(d),
        other => Err(format!(
            "expected a document, got an extended JSON {} value",
            type_name(&other)
        )),
    }
}

/// Converts BSON to relaxed Extended JSON (int32/int64/finite doubles as plain numbers, dates as
/// ISO strings when in range, other types in their `$` forms).
/// A value nested deeper than 200 levels (a code-with-scope's scope counting as a level) is not
/// converted (the `bson` crate's copy and conversion recurse): it becomes the string
/// `"(a value nested deeper than 200 levels)"`. Values that passed rolegate's depth guard
/// ([`Limits::max_document_depth`](crate::Limits::max_document_depth)) never are.
pub fn bson_to_json(b: &Bson) -> serde_json::Value {
    if crate::limits::value_too_deep(b, MAX_DEPTH).is_some() {
        return too_deep_json();
    }
    b.clone().into_relaxed_extjson()
}

/// Converts a document to relaxed Extended JSON (a document too deep as [`bson_to_json`] says).
pub fn document_to_json(d: &Document) -> serde_json::Value {
    if crate::limits::document_too_deep(d, MAX_DEPTH).is_some() {
        return too_deep_json();
    }
    Bson::Document(d.clone()).into_relaxed_extjson()
}

/// Converts BSON to **canonical** Extended JSON (`{"$numberInt": "5"}`, `{"$date":
/// {"$numberLong": ".."}}`): every BSON type survives the round trip. A value nested deeper
/// than 200 levels is refused (checked without recursion) rather than converted, since
/// the conversion recurses.
pub fn bson_to_canonical_json(b: &Bson) -> Result<serde_json::Value, String> {
    if crate::limits::value_too_deep(b, MAX_DEPTH).is_some() {
        return Err(format!("a value nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(b.clone().into_canonical_extjson())
}

fn too_deep_json() -> serde_json::Value {
    serde_json::Value::String(format!("(a value nested deeper than {MAX_DEPTH} levels)"))
}

/// The MongoDB `$type` name of a value (`"string"`, `"int"`, `"objectId"`, ...), for messages.
pub fn type_name(v: &Bson) -> &'static str {
    match v {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}

fn check_depth(v: &serde_json::Value) -> Result<(), String> {
    let mut stack = vec![(v, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(format!("value nested deeper than {MAX_DEPTH} levels"));
        }
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    Ok(())
}
