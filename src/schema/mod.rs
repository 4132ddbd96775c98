//! Stage: collection schemas (spec §7). Input: `schema.json` (or a rule file's `schema` key).
//! Output: a [`Schema`] that validates the result of every write (`SchemaValidationFailedWrite`).

/// A parsed App Services schema (JSON Schema with `bsonType` and `validate` expressions).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {}
