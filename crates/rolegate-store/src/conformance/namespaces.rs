//! Stage: conformance of namespaces. Input: an empty store. Output: a pass, or a panic naming
//! the collection that saw another's documents.

use bson::{Bson, doc};
use rolegate::ops::{Change, Namespace, Store};

use super::support::{all, assert_conflict, assert_docs, by_id, find, must_write, write};

/// Names MongoDB accepts that a naive store could confuse: dots in collection names (so
/// `a` + `b.c` must not meet `a.b` + `c`), Unicode, spaces, a `%` that looks encoded, long
/// names. (MongoDB refuses `$`, `/`, `.` and spaces in database names, and `$`, NUL, an empty
/// name or a leading `.` in collection names: those are not conformance cases.)
fn odd_names() -> Vec<Namespace> {
    vec![
        Namespace::new("conformance", "with.dots.in.it"),
        Namespace::new("conformance", "with"),
        Namespace::new("conformance", "with.dots"),
        Namespace::new("conformance_with", "dots.in.it"),
        Namespace::new("données", "集合"),
        Namespace::new("données", "σ émoji 🦀"),
        Namespace::new("conformance", "a b"),
        Namespace::new("conformance", "%2E"),
        Namespace::new("conformance", "x."),
        Namespace::new("d".repeat(60), "c".repeat(150)),
    ]
}

/// The same `_id` in collections of one database and in databases with one collection name
/// are different documents; a write to one leaves the others alone.
pub fn namespaces_are_isolated(store: &mut dyn Store) {
    let spaces = [
        Namespace::new("conformance_a", "c"),
        Namespace::new("conformance_b", "c"),
        Namespace::new("conformance_a", "d"),
    ];
    for ns in &spaces {
        must_write(
            store,
            ns,
            vec![Change::Insert(doc! { "_id": 1, "in": ns.to_string() })],
            &format!("inserting _id 1 into {ns}"),
        );
    }
    for ns in &spaces {
        assert_docs(
            &all(store, ns),
            &[doc! { "_id": 1, "in": ns.to_string() }],
            &format!("{ns}"),
        );
    }
    // A pre-image from another collection is not this collection's document.
    let foreign = by_id(store, &spaces[1], Bson::Int32(1));
    let result = write(
        store,
        &spaces[0],
        vec![Change::Delete { expected: foreign }],
    );
    assert_conflict(
        result,
        &Bson::Int32(1),
        "a delete in one collection with another's pre-image",
    );
    must_write(
        store,
        &spaces[0],
        vec![Change::Delete {
            expected: doc! { "_id": 1, "in": spaces[0].to_string() },
        }],
        "deleting from the first collection",
    );
    assert_docs(&all(store, &spaces[0]), &[], "the collection deleted from");
    for ns in &spaces[1..] {
        assert_docs(
            &all(store, ns),
            &[doc! { "_id": 1, "in": ns.to_string() }],
            &format!("{ns} after a delete elsewhere"),
        );
    }
    let never = Namespace::new("conformance_c", "c");
    assert_docs(&all(store, &never), &[], "a database never written");
}

/// Collections with odd names hold their own documents.
pub fn odd_names_work(store: &mut dyn Store) {
    let names = odd_names();
    for (i, ns) in names.iter().enumerate() {
        must_write(
            store,
            ns,
            vec![
                Change::Insert(doc! { "_id": 0, "i": i as i64 }),
                Change::Insert(doc! { "_id": 1 }),
            ],
            &format!("inserting into {ns:?}"),
        );
    }
    for (i, ns) in names.iter().enumerate() {
        let what = format!("the collection {ns:?}");
        assert_docs(
            &all(store, ns),
            &[doc! { "_id": 0, "i": i as i64 }, doc! { "_id": 1 }],
            &what,
        );
        assert_docs(
            &find(store, ns, doc! { "i": i as i64 }, Some(doc! { "_id": 0 })),
            &[doc! { "i": i as i64 }],
            &what,
        );
    }
}
