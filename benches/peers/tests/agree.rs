//! The equality check on the full input sets: rolegate, Cedar and regorus give the same
//! decision on every generated W1 and W3 document (10,000; 200 per W3 role count and kind), and
//! the same readable fields on every W1 document. `cargo test -p rolegate-peers --release`;
//! the bench runs the same check before timing.

use bson::{RawDocumentBuf, doc, oid::ObjectId};
use rolegate_peers::{agree, data, setup};

#[test]
fn w1_decisions_and_fields_agree() {
    let docs = data::w1_documents();
    let mut e = setup::w1();
    let d = agree::decisions("w1 decision", &mut e, &docs);
    assert_eq!(d.documents, data::W1_DOCS);
    assert_eq!(
        d.visible,
        data::W1_DOCS,
        "every W1 document is visible to u0"
    );
    let f = agree::fields("w1 fields", &mut e, &docs);
    assert_eq!(f.visible, data::W1_DOCS);
    assert!(f.fields > 9 * data::W1_DOCS, "{f:?}");
}

#[test]
fn w3_decisions_agree() {
    for (kind, roles) in data::w3_all() {
        let docs = data::w3_documents(roles);
        let mut e = setup::w3(kind, roles);
        let label = format!("w3-{}-{roles}", kind.name());
        let s = agree::decisions(&label, &mut e, &docs);
        assert_eq!(s.documents, docs.len());
        assert!(s.visible > 0, "{label}: {s:?}");
    }
}

/// Documents the generator never makes, where role order and missing or mistyped fields
/// matter: the Cedar `unless` clauses and the Rego `else` chain must give rolegate's first-match
/// answer.
#[test]
fn w1_first_match_and_edge_documents_agree() {
    let oid = |i: u8| ObjectId::from_bytes([i; 12]);
    let docs = [
        // Shared with u0 and public: the shared role applies, so `public` is not readable.
        doc! {"_id": oid(1), "owner_id": "u7", "shared_with": ["u0"], "public": true,
        "title": "t", "status": "open", "body": "b"},
        // Owned, shared and public: the owner reads everything.
        doc! {"_id": oid(2), "owner_id": "u0", "shared_with": ["u0"], "public": true,
        "title": "t", "secret": 1},
        // No role applies: withheld.
        doc! {"_id": oid(3), "owner_id": "u7", "shared_with": ["u8"], "public": false,
        "title": "t"},
        // Fields missing: public alone.
        doc! {"_id": oid(4), "public": true, "title": "t", "priority": 3},
        // `public` of another type: no role.
        doc! {"_id": oid(5), "public": "yes", "title": "t"},
        // Shared, with an extra embedded field the shared role does not list.
        doc! {"_id": oid(6), "owner_id": "u7", "shared_with": ["u9", "u0"],
        "location": {"lat": 1.5, "lng": 2.5, "alt": 3.5}, "tags": ["a"]},
        // Owned, with an embedded document W1 never has: kept whole by the owner role.
        doc! {"_id": oid(7), "owner_id": "u0", "meta": {"a": 1, "b": "x"}},
    ];
    let docs: Vec<RawDocumentBuf> = docs
        .iter()
        .map(|d| RawDocumentBuf::from_document(d).expect("raw"))
        .collect();
    let mut e = setup::w1();
    let d = agree::decisions("w1 edge decision", &mut e, &docs);
    assert_eq!(d.visible, 5, "{d:?}");
    let f = agree::fields("w1 edge fields", &mut e, &docs);
    assert_eq!(f.visible, 5, "{f:?}");
}
