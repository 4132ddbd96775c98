//! Stage: conformance of writes. Input: an empty store. Output: a pass, or a panic with the
//! write that went wrong: unique `_id`s, pre-image checks, all-or-nothing sets.

use std::str::FromStr;

use bson::oid::ObjectId;
use bson::{Bson, Decimal128, Document, doc};
use rolegate::ops::{Change, Namespace, Store};

use super::support::{
    all, assert_conflict, assert_docs, assert_duplicate, by_id, insert_each, must_write, write,
};

fn ns() -> Namespace {
    Namespace::new("conformance", "writes")
}

fn decimal(text: &str) -> Bson {
    match Decimal128::from_str(text) {
        Ok(d) => Bson::Decimal128(d),
        Err(e) => panic!("bad decimal {text}: {e}"),
    }
}

fn insert(
    store: &mut dyn Store,
    ns: &Namespace,
    doc: Document,
) -> Result<(), rolegate::ops::StoreError> {
    write(store, ns, vec![Change::Insert(doc)])
}

/// `_id`s are unique by MongoDB's equality: numbers across types are one `_id`; a string, an
/// ObjectId's hex string and a reordered document are others. A refused insert writes nothing.
pub fn duplicate_ids_are_refused(store: &mut dyn Store) {
    let ns = ns();
    insert_each(
        store,
        &ns,
        &[
            doc! { "_id": 1, "v": "int32" },
            doc! { "_id": 0, "v": "zero" },
        ],
    );
    let before = all(store, &ns);
    for id in [
        Bson::Double(1.0),
        Bson::Int64(1),
        decimal("1.00"),
        Bson::Int32(1),
    ] {
        let what = format!("inserting the _id {id:?} after the int32 1");
        assert_duplicate(
            insert(store, &ns, doc! { "_id": id.clone(), "v": "dup" }),
            &id,
            &what,
        );
    }
    for id in [Bson::Double(-0.0), decimal("0E+3")] {
        let what = format!("inserting the _id {id:?} after the int32 0");
        assert_duplicate(insert(store, &ns, doc! { "_id": id.clone() }), &id, &what);
    }
    assert_docs(&all(store, &ns), &before, "refused inserts wrote nothing");

    // Not duplicates.
    let oid = ObjectId::from_bytes([3; 12]);
    let distinct = [
        doc! { "_id": "1" },
        doc! { "_id": oid },
        doc! { "_id": oid.to_hex() },
        doc! { "_id": { "a": 1, "b": 2 } },
        doc! { "_id": { "b": 2, "a": 1 } },
        doc! { "_id": 1.5 },
        doc! { "_id": true },
        doc! { "_id": Bson::Null },
    ];
    insert_each(store, &ns, &distinct);
    assert_eq!(
        all(store, &ns).len(),
        before.len() + distinct.len(),
        "distinct _ids all stored"
    );
    // Embedded documents are compared by value, numbers across types.
    let id = Bson::Document(doc! { "a": 1.0, "b": 2_i64 });
    assert_duplicate(
        insert(store, &ns, doc! { "_id": id.clone() }),
        &id,
        "inserting {a: 1.0, b: NumberLong(2)} after {a: 1, b: 2}",
    );

    // Within one set: the second insert of an _id fails the set, so the first is not written.
    let result = write(
        store,
        &ns,
        vec![
            Change::Insert(doc! { "_id": 10, "v": "first" }),
            Change::Insert(doc! { "_id": 10_i64, "v": "second" }),
        ],
    );
    assert_duplicate(result, &Bson::Int64(10), "two inserts of _id 10 in one set");
    let ten = super::support::find(store, &ns, doc! { "_id": 10 }, None);
    assert_docs(
        &ten,
        &[],
        "the set with two inserts of _id 10 wrote nothing",
    );
}

/// A replace applies only when the stored document is identical to `expected` (same bytes); it
/// is a conflict, writing nothing, when the document changed, was reordered, changed a type, or
/// is gone.
pub fn replace_needs_the_current_document(store: &mut dyn Store) {
    let ns = ns();
    insert_each(
        store,
        &ns,
        &[
            doc! { "_id": 1, "n": 1, "tags": ["a"] },
            doc! { "_id": 2, "n": 1 },
            doc! { "_id": 3, "n": 1 },
        ],
    );
    let pre = by_id(store, &ns, Bson::Int32(1));
    let post = doc! { "_id": 1, "n": 2 };
    must_write(
        store,
        &ns,
        vec![Change::Replace {
            expected: pre.clone(),
            document: post.clone(),
        }],
        "a replace with the current pre-image",
    );
    assert_docs(
        &[by_id(store, &ns, Bson::Int32(1))],
        std::slice::from_ref(&post),
        "the replaced document",
    );

    let stale = [
        (pre, "the pre-image before the last replace"),
        (
            doc! { "n": 2, "_id": 1 },
            "the current document with its keys reordered",
        ),
        (
            doc! { "_id": 1, "n": 2.0 },
            "the current document with a double for an int32",
        ),
        (
            doc! { "_id": 1_i64, "n": 2 },
            "the current document with an int64 _id",
        ),
        (
            doc! { "_id": 1, "n": 2, "x": 1 },
            "the current document with one more field",
        ),
    ];
    for (expected, what) in stale {
        let result = write(
            store,
            &ns,
            vec![Change::Replace {
                expected,
                document: doc! { "_id": 1, "n": 99 },
            }],
        );
        assert_conflict(
            result,
            &Bson::Int32(1),
            &format!("a replace expecting {what}"),
        );
    }
    let gone = write(
        store,
        &ns,
        vec![Change::Replace {
            expected: doc! { "_id": 42 },
            document: doc! { "_id": 42, "n": 1 },
        }],
    );
    assert_conflict(gone, &Bson::Int32(42), "a replace of a missing document");
    assert_docs(
        &all(store, &ns),
        &[post, doc! { "_id": 2, "n": 1 }, doc! { "_id": 3, "n": 1 }],
        "after refused replaces, nothing changed (and nothing was inserted)",
    );
}

/// A delete applies only when the stored document is identical to `expected`; a stale or
/// missing one is a conflict that deletes nothing.
pub fn delete_needs_the_current_document(store: &mut dyn Store) {
    let ns = ns();
    let docs = [
        doc! { "_id": 1, "n": 1 },
        doc! { "_id": 2, "n": 1 },
        doc! { "_id": 3, "n": 1 },
    ];
    insert_each(store, &ns, &docs);
    must_write(
        store,
        &ns,
        vec![Change::Delete {
            expected: docs[1].clone(),
        }],
        "a delete with the current pre-image",
    );
    assert_docs(
        &all(store, &ns),
        &[docs[0].clone(), docs[2].clone()],
        "after the delete",
    );

    let result = write(
        store,
        &ns,
        vec![Change::Delete {
            expected: docs[1].clone(),
        }],
    );
    assert_conflict(result, &Bson::Int32(2), "deleting a deleted document");
    let result = write(
        store,
        &ns,
        vec![Change::Delete {
            expected: doc! { "_id": 1, "n": 2 },
        }],
    );
    assert_conflict(
        result,
        &Bson::Int32(1),
        "a delete expecting a stale document",
    );
    let result = write(
        store,
        &ns,
        vec![Change::Delete {
            expected: doc! { "_id": 1.0, "n": 1 },
        }],
    );
    assert_conflict(
        result,
        &Bson::Int32(1),
        "a delete expecting a double _id for an int32",
    );
    assert_docs(
        &all(store, &ns),
        &[docs[0].clone(), docs[2].clone()],
        "refused deletes",
    );
}

/// A set whose last change fails writes none of its changes, whatever the failure.
pub fn write_sets_are_all_or_nothing(store: &mut dyn Store) {
    let ns = ns();
    let other = Namespace::new("conformance", "untouched");
    insert_each(store, &other, &[doc! { "_id": 1 }]);
    let docs = [
        doc! { "_id": 1, "n": 0 },
        doc! { "_id": 2, "n": 0 },
        doc! { "_id": 3, "n": 0 },
    ];
    insert_each(store, &ns, &docs);
    let before = all(store, &ns);

    let stale_last = vec![
        Change::Insert(doc! { "_id": 4 }),
        Change::Replace {
            expected: docs[0].clone(),
            document: doc! { "_id": 1, "n": 1 },
        },
        Change::Delete {
            expected: docs[1].clone(),
        },
        Change::Replace {
            expected: doc! { "_id": 3, "n": -1 },
            document: doc! { "_id": 3, "n": 1 },
        },
    ];
    assert_conflict(
        write(store, &ns, stale_last),
        &Bson::Int32(3),
        "a set whose last replace is stale",
    );
    assert_docs(
        &all(store, &ns),
        &before,
        "after a set whose last replace was stale",
    );

    let duplicate_last = vec![
        Change::Insert(doc! { "_id": 5 }),
        Change::Delete {
            expected: docs[2].clone(),
        },
        Change::Insert(doc! { "_id": 1.0 }),
    ];
    assert_duplicate(
        write(store, &ns, duplicate_last),
        &Bson::Double(1.0),
        "a set whose last insert is a duplicate",
    );
    assert_docs(
        &all(store, &ns),
        &before,
        "after a set whose last insert was a duplicate",
    );

    let gone_last = vec![
        Change::Insert(doc! { "_id": 6 }),
        Change::Delete {
            expected: doc! { "_id": 7 },
        },
    ];
    assert_conflict(
        write(store, &ns, gone_last),
        &Bson::Int32(7),
        "a set whose last delete finds nothing",
    );
    assert_docs(
        &all(store, &ns),
        &before,
        "after a set whose last delete found nothing",
    );
    assert_docs(
        &all(store, &other),
        &[doc! { "_id": 1 }],
        "another collection",
    );

    must_write(store, &ns, Vec::new(), "an empty set");
    assert_docs(&all(store, &ns), &before, "after an empty set");
}

/// The changes of a set apply in order, each seeing the ones before it.
pub fn changes_see_earlier_changes(store: &mut dyn Store) {
    let ns = ns();
    insert_each(store, &ns, &[doc! { "_id": 0 }]);
    must_write(
        store,
        &ns,
        vec![
            Change::Insert(doc! { "_id": 8, "v": 1 }),
            Change::Replace {
                expected: doc! { "_id": 8, "v": 1 },
                document: doc! { "_id": 8, "v": 2 },
            },
            Change::Insert(doc! { "_id": 9 }),
            Change::Delete {
                expected: doc! { "_id": 9 },
            },
        ],
        "insert, replace the inserted document, insert and delete another",
    );
    assert_docs(
        &all(store, &ns),
        &[doc! { "_id": 0 }, doc! { "_id": 8, "v": 2 }],
        "after the set",
    );
    must_write(
        store,
        &ns,
        vec![
            Change::Delete {
                expected: doc! { "_id": 8, "v": 2 },
            },
            Change::Insert(doc! { "_id": 8, "v": 3 }),
            Change::Delete {
                expected: doc! { "_id": 0 },
            },
        ],
        "delete and insert the same _id",
    );
    assert_docs(
        &all(store, &ns),
        &[doc! { "_id": 8, "v": 3 }],
        "after the second set",
    );
    let result = write(
        store,
        &ns,
        vec![
            Change::Replace {
                expected: doc! { "_id": 8, "v": 3 },
                document: doc! { "_id": 8, "v": 4 },
            },
            Change::Replace {
                expected: doc! { "_id": 8, "v": 3 },
                document: doc! { "_id": 8, "v": 5 },
            },
        ],
    );
    assert_conflict(
        result,
        &Bson::Int32(8),
        "a second replace expecting the first one's pre-image",
    );
    assert_docs(
        &all(store, &ns),
        &[doc! { "_id": 8, "v": 3 }],
        "after the refused set",
    );
}
