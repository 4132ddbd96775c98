//! Stage: the file's tables. Input: table names ([`crate::names`]). Output: their redb
//! definitions: per collection the documents by slot (`u64`, allocated in insertion order, kept
//! by a replace) and the `_id` index (canonical `_id` key → slot); one metadata table holding
//! the file format's version.

use redb::TableDefinition;

/// A collection's documents: slot → raw BSON bytes.
pub type DocumentsTable<'a> = TableDefinition<'a, u64, &'static [u8]>;

/// A collection's `_id` index: canonical `_id` key ([`crate::id_key`]) → slot.
pub type IdsTable<'a> = TableDefinition<'a, &'static [u8], u64>;

/// The metadata table: name → number.
pub const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("meta");

/// The key of the format version in [`META`].
pub const FORMAT_KEY: &str = "format";

/// The version of the layout this crate writes and reads.
pub const FORMAT_VERSION: u64 = 1;
