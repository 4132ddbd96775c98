//! Stage: the conditions of a conditional write. Input: the pre-image an operation decided on
//! (`expected` of a replace or delete). Output: the MongoDB filter that selects the stored
//! document only while it still equals that pre-image, the collation every command of the store
//! runs with, and the byte-for-byte check that closes what the filter cannot see.
//!
//! **Why a filter and a byte check.** The filter is
//! `{_id: {$eq: <id>}, $expr: {$eq: ["$$ROOT", {$literal: <expected>}]}}`: the `_id` part lets
//! the server find the document by its index, the `$expr` part compares the whole stored
//! document with the pre-image on the server, atomically with the write (`$literal` keeps a
//! `$`-prefixed key or string of the pre-image from being read as an expression). The MongoDB
//! manual's pages on aggregation `$eq` and on the BSON comparison order say how far that
//! comparison goes: documents are compared key-value pair by pair **in the order the pairs
//! appear**, field names and values alike, so a reordered, added, removed or renamed field, or a
//! changed value, fails it; values of different type brackets never compare equal (the manual's
//! own example: `250` and `"250"` differ). It is **not** byte-exact, though: "numeric types
//! undergo conversion before comparison", so `1`, `NumberLong(1)`, `1.0` and
//! `NumberDecimal("1.00")` compare equal (the manual's example shows `NumberDecimal("250")`
//! equal to `NumberDecimal("250.00")`), symbols and strings share one place in the comparison
//! order, and strings follow the collation in force (a collection's default collation could make `"a"` equal `"A"`). So:
//!
//! * every command runs with the `simple` collation ([`simple_collation`]), MongoDB's binary
//!   string comparison, whatever the collection's default;
//! * the store writes with `findOneAndReplace` / `findOneAndDelete`, which return the document
//!   they replaced or deleted, and compares that pre-image with `expected` byte for byte
//!   ([`identical`], as the in-memory store does); a difference (a number that changed type,
//!   say) is a conflict, and the transaction is aborted, so the write never lands.

use bson::{Bson, Document, doc};
use mongodb::options::Collation;

/// The filter that selects the stored document with `expected`'s `_id` only while it equals
/// `expected` (as aggregation `$eq` compares documents: see the module doc).
pub fn conditional_filter(expected: &Document) -> Document {
    let id = expected.get("_id").cloned().unwrap_or(Bson::Null);
    doc! {
        "_id": { "$eq": id },
        "$expr": { "$eq": ["$$ROOT", { "$literal": expected.clone() }] },
    }
}

/// MongoDB's binary string comparison, which the rules' queries assume: every find and
/// conditional write of the store names it, so a collection's default collation never applies.
pub fn simple_collation() -> Collation {
    Collation::builder().locale("simple").build()
}

/// Whether two documents are the same bytes (same keys in the same order, same types, same
/// values: `1` and `1.0` differ, `-0.0` and `0.0` differ).
pub fn identical(a: &Document, b: &Document) -> bool {
    let mut x = Vec::new();
    let mut y = Vec::new();
    a.to_writer(&mut x).is_ok() && b.to_writer(&mut y).is_ok() && x == y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_pins_the_id_and_the_whole_document() {
        let expected = doc! { "_id": 7, "owner": "ann", "n": 1.5 };
        let filter = conditional_filter(&expected);
        assert_eq!(filter.get_document("_id").unwrap(), &doc! { "$eq": 7 });
        let eq = filter
            .get_document("$expr")
            .unwrap()
            .get_array("$eq")
            .unwrap();
        assert_eq!(eq.len(), 2);
        assert_eq!(eq[0], Bson::String("$$ROOT".into()));
        let literal = eq[1]
            .as_document()
            .unwrap()
            .get_document("$literal")
            .unwrap();
        assert!(identical(literal, &expected));
        // Exactly two conditions, `_id` first (the index), then the comparison.
        let keys: Vec<&str> = filter.keys().map(String::as_str).collect();
        assert_eq!(keys, ["_id", "$expr"]);
    }

    #[test]
    fn the_filter_keeps_dollar_keys_and_strings_literal() {
        let expected = doc! { "_id": { "k": "$x" }, "$odd": "$$ROOT", "a": { "$gt": 1 } };
        let filter = conditional_filter(&expected);
        let literal = filter
            .get_document("$expr")
            .unwrap()
            .get_array("$eq")
            .unwrap()[1]
            .as_document()
            .unwrap()
            .get_document("$literal")
            .unwrap()
            .clone();
        assert!(identical(&literal, &expected));
        // A document `_id` is compared with `$eq`, never read as operators.
        assert_eq!(
            filter.get_document("_id").unwrap(),
            &doc! { "$eq": { "k": "$x" } }
        );
    }

    #[test]
    fn a_pre_image_without_id_selects_nothing_real() {
        let filter = conditional_filter(&doc! { "a": 1 });
        assert_eq!(
            filter.get_document("_id").unwrap(),
            &doc! { "$eq": Bson::Null }
        );
    }

    #[test]
    fn identical_sees_types_order_and_signed_zero() {
        let a = doc! { "_id": 1, "x": 1, "y": "s" };
        assert!(identical(&a, &a.clone()));
        assert!(!identical(&a, &doc! { "_id": 1, "x": 1.0, "y": "s" }));
        assert!(!identical(&a, &doc! { "_id": 1, "x": 1_i64, "y": "s" }));
        assert!(!identical(&a, &doc! { "_id": 1, "y": "s", "x": 1 }));
        assert!(!identical(&a, &doc! { "_id": 1, "x": 1, "y": "S" }));
        assert!(!identical(&doc! { "z": 0.0 }, &doc! { "z": -0.0 }));
    }

    #[test]
    fn the_collation_is_binary() {
        let c = simple_collation();
        assert_eq!(c.locale, "simple");
        assert!(c.strength.is_none());
    }
}
