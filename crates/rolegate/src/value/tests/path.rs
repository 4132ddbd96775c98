//! Path lookup (src/value/path.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;

use crate::value::path::{
    Resolved, lookup, lookup_in_document, resolve, resolve_in_document, resolve_request,
    split_dotted,
};
use bson::{Bson, Document, doc};

fn p(s: &str) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        split_dotted(s)
    }
}

fn get(d: &Document, path: &str) -> Option<Bson> {
    lookup_in_document(d, &p(path)).map(Cow::into_owned)
}

#[test]
fn documents_by_key() {
    let d = doc! {"a": {"b": {"c": 1}}, "x-y z$": 2};
    assert_eq!(get(&d, "a.b.c"), Some(Bson::Int32(1)));
    assert_eq!(get(&d, "a.b"), Some(Bson::Document(doc! {"c": 1})));
    assert_eq!(get(&d, "x-y z$"), Some(Bson::Int32(2)));
    assert_eq!(get(&d, "a.B"), None, "case-sensitive");
    assert_eq!(get(&d, "a.b.c.d"), None, "scalar has no fields");
    assert_eq!(get(&d, "nope"), None);
    assert_eq!(
        get(&d, ""),
        Some(Bson::Document(d.clone())),
        "empty path is the document"
    );
}

#[test]
fn null_is_a_value_missing_is_not() {
    let d = doc! {"a": null};
    assert_eq!(get(&d, "a"), Some(Bson::Null));
    assert_eq!(get(&d, "a.b"), None);
    assert_eq!(get(&d, "b"), None);
}

#[test]
fn numeric_segments_index_arrays() {
    let d = doc! {"a": [10, 20, {"b": 1}], "m": [[1, 2], [3]]};
    assert_eq!(get(&d, "a.0"), Some(Bson::Int32(10)));
    assert_eq!(get(&d, "a.2.b"), Some(Bson::Int32(1)));
    assert_eq!(get(&d, "m.1.0"), Some(Bson::Int32(3)));
    assert_eq!(
        get(&d, "a.01"),
        None,
        "leading zero is not an index; no document element has key `01`"
    );
    // No such index: fall through to traversal of document elements (key "5").
    let d2 = doc! {"a": [{"5": "x"}]};
    assert_eq!(
        get(&d2, "a.5"),
        Some(Bson::Array(vec![Bson::String("x".into())]))
    );
    // Documents use numeric segments as keys.
    let d3 = doc! {"a": {"0": "k"}};
    assert_eq!(get(&d3, "a.0"), Some(Bson::String("k".into())));
}

#[test]
fn arrays_of_documents_are_traversed() {
    let d = doc! {"a": [{"b": 1}, {"c": 2}, 7, {"b": [3, 4]}, [{"b": 9}]]};
    assert_eq!(
        get(&d, "a.b"),
        Some(Bson::Array(vec![
            Bson::Int32(1),
            Bson::Array(vec![Bson::Int32(3), Bson::Int32(4)])
        ])),
        "missing skipped, scalars and nested arrays skipped"
    );
    let r = resolve_in_document(&d, &p("a.b"));
    assert!(r.traversed);
    assert_eq!(
        r.values.len(),
        5,
        "two found, a document lacking b, a scalar and a nested array"
    );
    assert_eq!(
        r.values.iter().filter(|v| v.is_none()).count(),
        3,
        "every element that does not have b is a missing position (MongoDB: {{\"a.b\": null}} matches {{a: [5, {{b: 1}}]}})"
    );
    assert_eq!(get(&d, "a.zzz"), None, "nothing found is missing");
    assert_eq!(get(&doc! {"a": [1, 2]}, "a.b"), None);
    assert_eq!(get(&doc! {"a": []}, "a.b"), None);
}

#[test]
fn traversal_continues_through_nested_arrays_of_documents() {
    let d = doc! {"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": {"c": 3}}]};
    assert_eq!(
        get(&d, "a.b.c"),
        Some(Bson::Array(vec![
            Bson::Int32(1),
            Bson::Int32(2),
            Bson::Int32(3)
        ]))
    );
}

#[test]
fn resolved_helpers() {
    let m = Resolved::missing();
    assert!(m.is_missing());
    assert_eq!(m.into_value(), None);
    let v = Bson::Int32(1);
    let s = Resolved::single(Cow::Borrowed(&v));
    assert!(!s.is_missing());
    assert_eq!(s.present().count(), 1);
    assert_eq!(
        resolve(&v, &[]).into_value().map(Cow::into_owned),
        Some(v.clone())
    );
    assert_eq!(
        lookup(&Bson::Document(doc! {"a": 1}), &p("a")).map(Cow::into_owned),
        Some(Bson::Int32(1))
    );
}

#[test]
fn request_headers_are_case_insensitive() {
    let req = Bson::Document(doc! {
        "remoteIPAddress": "1.2.3.4",
        "requestHeaders": {"Content-Type": ["application/json"], "x-secret-key": ["s3"], "X-Dup": ["upper"], "x-dup": ["lower"]},
    });
    let h = |path: &str| {
        resolve_request(&req, &p(path))
            .into_value()
            .map(Cow::into_owned)
    };
    assert_eq!(
        h("requestHeaders.content-type"),
        Some(Bson::Array(vec![Bson::String("application/json".into())]))
    );
    assert_eq!(
        h("requestHeaders.X-Secret-Key"),
        Some(Bson::Array(vec![Bson::String("s3".into())]))
    );
    assert_eq!(
        h("requestHeaders.x-dup"),
        Some(Bson::Array(vec![Bson::String("lower".into())])),
        "exact key first"
    );
    assert_eq!(
        h("requestHeaders.X-Dup"),
        Some(Bson::Array(vec![Bson::String("upper".into())]))
    );
    assert_eq!(
        h("requestHeaders.content-type.0"),
        Some(Bson::String("application/json".into()))
    );
    assert_eq!(h("remoteipaddress"), None, "only header names ignore case");
    assert_eq!(h("requestHeaders.missing"), None);
}

#[test]
fn deep_documents_do_not_recurse() {
    let mut d = doc! {"a": 1};
    for _ in 0..150 {
        d = doc! {"a": d};
    }
    let mut path = vec!["a".to_string(); 151];
    assert_eq!(get_path(&d, &path), Some(Bson::Int32(1)));
    path.push("a".into());
    assert_eq!(get_path(&d, &path), None);
}

fn get_path(d: &Document, path: &[String]) -> Option<Bson> {
    lookup_in_document(d, path).map(Cow::into_owned)
}
