//! Stage: conformance of reads. Input: an empty store. Output: a pass, or a panic with the
//! read that went wrong: round trips, natural order, query selection, projection.

use std::str::FromStr;

use bson::oid::ObjectId;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Decimal128, Document, Regex, Timestamp, doc};
use rolegate::ops::{Change, Namespace, Store, StoreRead};

use super::support::{all, assert_docs, assert_ids, find, insert_each, must_write};

fn decimal(text: &str) -> Bson {
    match Decimal128::from_str(text) {
        Ok(d) => Bson::Decimal128(d),
        Err(e) => panic!("bad decimal {text}: {e}"),
    }
}

fn ns() -> Namespace {
    Namespace::new("conformance", "reads")
}

/// A document of every common type, with keys out of alphabetical order.
fn every_type() -> Document {
    doc! {
        "_id": ObjectId::from_bytes([0x65, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        "z": 1_i32,
        "a": 2_i64,
        "m": 2.5_f64,
        "negative_zero": -0.0_f64,
        "big": i64::MAX,
        "dec": decimal("1.50"),
        "date": DateTime::from_millis(1_700_000_000_123),
        "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2, 255] },
        "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: (0..16).collect() },
        "nested": { "y": { "x": [1_i32, { "w": Bson::Null }] }, "b": true },
        "arr": [1_i32, 2_i64, 3.0_f64, "four", { "five": 5_i32 }, [6_i32], decimal("7")],
        "text": "héllo ✓ 🦀",
        "ts": Timestamp { time: 1_700_000_000, increment: 7 },
        "re": Regex { pattern: "^a.b$".into(), options: "i".into() },
        "empty_doc": {},
        "empty_arr": [],
    }
}

/// What is written is read back byte for byte: every type, key order, `-0.0`.
pub fn round_trip_keeps_types_and_key_order(store: &mut dyn Store) {
    let ns = ns();
    let doc = every_type();
    insert_each(store, &ns, std::slice::from_ref(&doc));
    let got = all(store, &ns);
    assert_docs(
        &got,
        std::slice::from_ref(&doc),
        "a document of every type read back",
    );
    let keys: Vec<&str> = got[0].keys().map(String::as_str).collect();
    let written: Vec<&str> = doc.keys().map(String::as_str).collect();
    assert_eq!(keys, written, "key order changed");
    assert!(
        matches!(got[0].get("z"), Some(Bson::Int32(1)))
            && matches!(got[0].get("a"), Some(Bson::Int64(2)))
            && matches!(got[0].get("m"), Some(Bson::Double(_))),
        "numeric types changed: {:?}",
        got[0]
    );
}

/// Documents come back in insertion order, whatever their `_id`s; a replacement keeps its
/// place; a document deleted and inserted again goes last.
pub fn natural_order_is_insertion_order(store: &mut dyn Store) {
    let ns = ns();
    let oid = ObjectId::from_bytes([1; 12]);
    let docs = [
        doc! { "_id": 5, "n": 0 },
        doc! { "_id": "b", "n": 1 },
        doc! { "_id": 1, "n": 2 },
        doc! { "_id": oid, "n": 3 },
        doc! { "_id": -3.5, "n": 4 },
    ];
    // Two sets of several inserts and one of one.
    must_write(
        store,
        &ns,
        docs[..2].iter().cloned().map(Change::Insert).collect(),
        "the first inserts",
    );
    must_write(
        store,
        &ns,
        docs[2..4].iter().cloned().map(Change::Insert).collect(),
        "the next inserts",
    );
    insert_each(store, &ns, &docs[4..]);
    assert_docs(&all(store, &ns), &docs, "insertion order");

    must_write(
        store,
        &ns,
        vec![Change::Replace {
            expected: docs[1].clone(),
            document: doc! { "_id": "b", "n": 10, "grown": "x".repeat(1000) },
        }],
        "replacing the second document with a larger one",
    );
    let ids = [
        Bson::Int32(5),
        "b".into(),
        Bson::Int32(1),
        oid.into(),
        Bson::Double(-3.5),
    ];
    assert_ids(&all(store, &ns), &ids, "a replacement keeps its place");

    must_write(
        store,
        &ns,
        vec![
            Change::Delete {
                expected: docs[0].clone(),
            },
            Change::Insert(doc! { "_id": 5, "n": 20 }),
        ],
        "deleting the first document and inserting it again",
    );
    let ids = [
        "b".into(),
        Bson::Int32(1),
        oid.into(),
        Bson::Double(-3.5),
        Bson::Int32(5),
    ];
    assert_ids(&all(store, &ns), &ids, "a re-inserted document goes last");
}

/// Queries select what MongoDB selects: dotted paths, arrays, numbers across types, `_id`
/// lookups, `$or`, `$in`, `$exists`, `$size`, in natural order.
pub fn queries_select_as_mongodb(store: &mut dyn Store) {
    let ns = ns();
    let oid = ObjectId::from_bytes([2; 12]);
    insert_each(
        store,
        &ns,
        &[
            doc! { "_id": 1, "n": 1_i32, "a": { "b": 2 }, "tags": ["x", "y"],
            "items": [{ "qty": 1 }, { "qty": 7 }] },
            doc! { "_id": 2, "n": 2.0, "a": { "b": 3 }, "tags": ["y"], "items": [{ "qty": 3 }],
            "extra": Bson::Null },
            doc! { "_id": 3, "n": 1_i64, "a": { "b": [2, 5] }, "tags": [], "items": [] },
            doc! { "_id": "four", "n": "1", "a": 2, "tags": "x" },
            doc! { "_id": oid, "n": decimal("2.0"), "a": { "c": 1 }, "items": [{ "qty": 5 }] },
        ],
    );
    let four = Bson::from("four");
    let oid = Bson::ObjectId(oid);
    let cases: Vec<(Document, Vec<Bson>)> = vec![
        (doc! { "n": 1 }, vec![1.into(), 3.into()]),
        (doc! { "n": 2 }, vec![2.into(), oid.clone()]),
        (doc! { "n": "1" }, vec![four.clone()]),
        (doc! { "a.b": 2 }, vec![1.into(), 3.into()]),
        (doc! { "a": { "b": 3 } }, vec![2.into()]),
        (doc! { "tags": "x" }, vec![1.into(), four.clone()]),
        (doc! { "tags": [] }, vec![3.into()]),
        (
            doc! { "items.qty": { "$gte": 5 } },
            vec![1.into(), oid.clone()],
        ),
        (doc! { "n": { "$gt": 1 } }, vec![2.into(), oid.clone()]),
        (doc! { "extra": { "$exists": true } }, vec![2.into()]),
        (doc! { "a.b": { "$size": 2 } }, vec![3.into()]),
        (
            doc! { "$or": [{ "_id": "four" }, { "a.c": 1 }] },
            vec![four.clone(), oid.clone()],
        ),
        (
            doc! { "_id": { "$in": [3, "four"] } },
            vec![3.into(), four.clone()],
        ),
        (doc! { "_id": 2.0 }, vec![2.into()]),
        (doc! { "_id": 1_i64 }, vec![1.into()]),
        (doc! { "_id": decimal("3.00") }, vec![3.into()]),
        (doc! { "_id": "four" }, vec![four.clone()]),
        (doc! { "_id": oid.clone() }, vec![oid.clone()]),
        (doc! { "_id": 42 }, vec![]),
        (doc! { "_id": "1" }, vec![]),
        (doc! { "_id": 1, "n": 2 }, vec![]),
    ];
    for (query, ids) in cases {
        let what = format!("the query {query}");
        assert_ids(&find(store, &ns, query, None), &ids, &what);
    }
}

/// Inclusion and exclusion projections, dotted, with and without `_id`, after the query.
pub fn projections_apply(store: &mut dyn Store) {
    let ns = ns();
    insert_each(
        store,
        &ns,
        &[
            doc! { "_id": 1, "a": { "b": 2, "c": 3 }, "n": 5, "s": "x" },
            doc! { "_id": 2, "a": { "b": 4 }, "n": 6, "s": "y" },
        ],
    );
    let one = doc! { "_id": 1 };
    let cases: Vec<(Document, Document, Vec<Document>)> = vec![
        (
            one.clone(),
            doc! { "n": 1 },
            vec![doc! { "_id": 1, "n": 5 }],
        ),
        (
            one.clone(),
            doc! { "n": 0 },
            vec![doc! { "_id": 1, "a": { "b": 2, "c": 3 }, "s": "x" }],
        ),
        (
            one.clone(),
            doc! { "a.b": 1, "_id": 0 },
            vec![doc! { "a": { "b": 2 } }],
        ),
        (
            one.clone(),
            doc! { "_id": 0 },
            vec![doc! { "a": { "b": 2, "c": 3 }, "n": 5, "s": "x" }],
        ),
        (
            one.clone(),
            doc! { "a.c": 0, "s": 0 },
            vec![doc! { "_id": 1, "a": { "b": 2 }, "n": 5 }],
        ),
        (
            doc! { "n": { "$gte": 5 } },
            doc! { "s": 1 },
            vec![doc! { "_id": 1, "s": "x" }, doc! { "_id": 2, "s": "y" }],
        ),
        (
            doc! { "n": 6 },
            doc! {},
            vec![doc! { "_id": 2, "a": { "b": 4 }, "n": 6, "s": "y" }],
        ),
    ];
    for (query, projection, expected) in cases {
        let what = format!("the query {query} with the projection {projection}");
        let got = find(store, &ns, query, Some(projection));
        assert_docs(&got, &expected, &what);
    }
}

/// `{}` selects every document, whole; a collection never written reads as empty.
pub fn empty_query_selects_all(store: &mut dyn Store) {
    let ns = ns();
    assert_docs(&all(store, &ns), &[], "a collection never written");
    let docs: Vec<Document> = (0..25).map(|i| doc! { "_id": i, "sq": i * i }).collect();
    must_write(
        store,
        &ns,
        docs.iter().cloned().map(Change::Insert).collect(),
        "25 inserts in one set",
    );
    assert_docs(&all(store, &ns), &docs, "the empty query");
    assert_docs(
        &all(store, &Namespace::new("conformance", "other")),
        &[],
        "another collection of the same database",
    );
}

/// A query the store cannot evaluate is an error, not an empty answer.
pub fn invalid_query_is_an_error(store: &mut dyn Store) {
    let ns = ns();
    insert_each(store, &ns, &[doc! { "_id": 1, "n": 1 }]);
    for query in [doc! { "$bogus": 1 }, doc! { "n": { "$notAnOperator": 1 } }] {
        let read = StoreRead {
            namespace: ns.clone(),
            query: query.clone(),
            projection: None,
        };
        let answer = store.find(&read);
        assert!(
            answer.is_err(),
            "the query {query} must fail, got {answer:?}"
        );
    }
}
