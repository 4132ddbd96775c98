//! Sort order, sort keys and skip/limit (src/mql/sort.rs). The expectations of the
//! `sort_dotted_paths_*` tests are those of MongoDB's `jstests/core/query/sort/sort_dotted_paths.js`
//! (mongodb/mongo); `sort_array_*` those of `jstests/core/query/sort/sort_array.js`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cmp::Ordering;

use bson::{Bson, Document, doc, oid::ObjectId};
use proptest::prelude::*;

use crate::mql::{SortSpec, Window, bson_cmp, sort_skip_limit, sort_value_cmp};
use crate::value::compare::canonical_rank;

fn ids(docs: &[Document], spec: Document) -> Vec<i32> {
    let spec = SortSpec::parse(&spec).unwrap();
    sort_skip_limit(docs.to_vec(), &spec, 0, 0)
        .unwrap()
        .iter()
        .map(|d| d.get_i32("_id").unwrap())
        .collect()
}

fn ids_limited(docs: &[Document], spec: Document, limit: i64) -> Vec<i32> {
    let spec = SortSpec::parse(&spec).unwrap();
    sort_skip_limit(docs.to_vec(), &spec, 0, limit)
        .unwrap()
        .iter()
        .map(|d| d.get_i32("_id").unwrap())
        .collect()
}

/// Checks the order with and without `limit(500)`, as the jstest does.
fn check(docs: &[Document], spec: Document, expected: &[i32]) {
    assert_eq!(ids(docs, spec.clone()), expected, "sort {spec}");
    assert_eq!(
        ids_limited(docs, spec.clone(), 500),
        expected,
        "sort {spec} limit 500"
    );
    assert_eq!(
        ids_limited(docs, spec.clone(), 3),
        expected[..3],
        "sort {spec} limit 3"
    );
}

fn undefined_null_missing() -> Vec<Document> {
    vec![
        doc! {"_id": 1, "a": 1},
        doc! {"_id": 2, "a": Bson::Undefined},
        doc! {"_id": 3, "a": Bson::Null},
        doc! {"_id": 4, "a": {}},
        doc! {"_id": 5, "a": []},
        doc! {"_id": 6, "a": [1]},
        doc! {"_id": 7, "a": [[1]]},
        doc! {"_id": 8},
        doc! {"_id": 9, "a": [Bson::Undefined]},
    ]
}

#[test]
fn sort_dotted_paths_undefined_null_missing_and_empty_arrays() {
    let docs = undefined_null_missing();
    // `[]` and `[undefined]` sort with undefined, below null and missing.
    check(&docs, doc! {"a": 1, "_id": 1}, &[2, 5, 9, 3, 8, 1, 6, 4, 7]);
    check(
        &docs,
        doc! {"a": -1, "_id": 1},
        &[7, 4, 1, 6, 3, 8, 2, 5, 9],
    );
}

#[test]
fn sort_dotted_paths_numeric_component() {
    let docs = undefined_null_missing();
    // `"a.0"` of `[[1]]` is the array `[1]`, not expanded.
    check(
        &docs,
        doc! {"a.0": 1, "_id": 1},
        &[9, 1, 2, 3, 4, 5, 8, 6, 7],
    );
    check(
        &docs,
        doc! {"a.0": -1, "_id": 1},
        &[7, 6, 1, 2, 3, 4, 5, 8, 9],
    );
}

#[test]
fn sort_dotted_paths_two_fields_each_sometimes_an_array() {
    let docs = vec![
        doc! {"_id": 1, "a": 1, "b": [2]},
        doc! {"_id": 2, "a": 2, "b": []},
        doc! {"_id": 3, "a": [], "b": 4},
        doc! {"_id": 4, "a": [1], "b": 4},
        doc! {"_id": 5, "a": [2, 3], "b": 2},
        doc! {"_id": 6, "a": 2, "b": [3, 5]},
        doc! {"_id": 7, "a": 1, "b": [1, 3]},
        doc! {"_id": 8, "a": [1, 2], "b": 3},
        doc! {"_id": 9, "a": 2, "b": 3},
    ];
    check(
        &docs,
        doc! {"a": 1, "b": 1, "_id": 1},
        &[3, 7, 1, 8, 4, 2, 5, 6, 9],
    );
    check(
        &docs,
        doc! {"a": 1, "b": -1, "_id": 1},
        &[3, 4, 7, 8, 1, 6, 9, 5, 2],
    );
    check(
        &docs,
        doc! {"a": -1, "b": 1, "_id": 1},
        &[5, 2, 6, 8, 9, 7, 1, 4, 3],
    );
    check(
        &docs,
        doc! {"a": -1, "b": -1, "_id": 1},
        &[5, 6, 8, 9, 2, 4, 7, 1, 3],
    );
}

#[test]
fn sort_dotted_paths_parallel_arrays_are_bad_value() {
    let docs = vec![
        doc! {"_id": 1, "a": [], "b": 1},
        doc! {"_id": 2, "a": 1, "b": []},
        doc! {"_id": 3, "a": [], "b": []},
    ];
    for spec in [
        doc! {"a": 1, "b": 1},
        doc! {"_id": 1, "a": 1, "b": 1},
        doc! {"a": 1, "_id": 1, "b": 1},
    ] {
        let spec = SortSpec::parse(&spec).unwrap();
        let err = sort_skip_limit(docs.clone(), &spec, 0, 0).unwrap_err();
        assert_eq!(err.code, "BadValue");
        assert!(err.message.contains("parallel arrays"), "{err}");
    }
    // Without the document holding both arrays, the sort works.
    let spec = SortSpec::parse(&doc! {"a": 1, "b": 1}).unwrap();
    let out = sort_skip_limit(docs[..2].to_vec(), &spec, 0, 0).unwrap();
    assert_eq!(out, docs[..2].to_vec());
    // Two arrays under one sub-document, or under two paths, are parallel too.
    for (doc, spec) in [
        (
            doc! {"a": {"b": [1, 2], "c": [3, 4]}},
            doc! {"a.b": 1, "a.c": 1},
        ),
        (
            doc! {"a": {"b": [1, 2]}, "c": {"d": [3, 4]}},
            doc! {"a.b": 1, "c.d": 1},
        ),
    ] {
        let spec = SortSpec::parse(&spec).unwrap();
        assert_eq!(
            sort_skip_limit(vec![doc], &spec, 0, 0).unwrap_err().code,
            "BadValue"
        );
    }
}

#[test]
fn sort_dotted_paths_length_two() {
    let docs = vec![
        doc! {"_id": 1, "a": {"b": 2}},
        doc! {"_id": 2, "a": {"b": []}},
        doc! {"_id": 3, "a": {"b": [2, 3]}},
        doc! {"_id": 4, "a": {"c": 1}},
        doc! {"_id": 5, "a": []},
        doc! {"_id": 6, "a": [{"b": [5]}]},
        doc! {"_id": 7, "a": [{"b": [4, 5]}, {"b": 7}]},
        doc! {"_id": 8, "a": [{"b": [1, 3]}, {"b": [2, 5]}]},
        doc! {"_id": 9, "a": [{"b": []}, {"b": [1, 3]}]},
    ];
    check(
        &docs,
        doc! {"a.b": 1, "_id": 1},
        &[2, 9, 4, 5, 8, 1, 3, 7, 6],
    );
    check(
        &docs,
        doc! {"a.b": 1, "_id": -1},
        &[9, 2, 5, 4, 8, 3, 1, 7, 6],
    );
    check(
        &docs,
        doc! {"a.b": -1, "_id": 1},
        &[7, 6, 8, 3, 9, 1, 4, 5, 2],
    );
    check(
        &docs,
        doc! {"a.b": -1, "_id": -1},
        &[7, 8, 6, 9, 3, 1, 5, 4, 2],
    );
}

fn common_prefix_docs() -> Vec<Document> {
    vec![
        doc! {"_id": 1, "a": [{"b": 4, "c": 1}, {"b": 1, "c": 2}]},
        doc! {"_id": 2, "a": [{"b": 2, "c": 1}, {"b": 4, "c": 2}]},
        doc! {"_id": 3, "a": [{"b": 6, "c": 1}, {"b": 9, "c": 2}]},
        doc! {"_id": 4, "a": [{"b": 4, "c": 1}, {"b": 5, "c": 3}]},
        doc! {"_id": 5, "a": [{"b": 2, "c": 1}, {"b": 7, "c": 3}]},
        doc! {"_id": 6, "a": [{"b": 5, "c": 1}, {"b": 3, "c": 3}]},
        doc! {"_id": 7, "a": [{"b": 7, "c": 2}, {"b": 2, "c": 3}]},
        doc! {"_id": 8, "a": [{"b": 3, "c": 2}, {"b": 8, "c": 3}]},
        doc! {"_id": 9, "a": [{"b": 8, "c": 2}, {"b": 6, "c": 3}]},
    ]
}

#[test]
fn sort_dotted_paths_common_prefix_pairs_values_of_one_element() {
    let docs = common_prefix_docs();
    check(
        &docs,
        doc! {"a.c": 1, "a.b": 1, "_id": 1},
        &[2, 5, 1, 4, 6, 3, 8, 7, 9],
    );
    check(
        &docs,
        doc! {"a.c": 1, "a.b": -1, "_id": 1},
        &[3, 6, 1, 4, 2, 5, 9, 7, 8],
    );
    check(
        &docs,
        doc! {"a.c": -1, "a.b": 1, "_id": 1},
        &[7, 6, 4, 9, 5, 8, 1, 2, 3],
    );
    check(
        &docs,
        doc! {"a.c": -1, "a.b": -1, "_id": 1},
        &[8, 5, 9, 4, 6, 7, 3, 2, 1],
    );
    // A path and its prefix: the prefix's value is the element of `a`.
    check(
        &docs,
        doc! {"a.c": 1, "a": 1, "_id": 1},
        &[2, 5, 1, 4, 6, 3, 8, 7, 9],
    );
    check(
        &docs,
        doc! {"a.c": 1, "a": -1, "_id": 1},
        &[3, 6, 1, 4, 2, 5, 9, 7, 8],
    );
    check(
        &docs,
        doc! {"a.c": -1, "a": 1, "_id": 1},
        &[7, 6, 4, 9, 5, 8, 1, 2, 3],
    );
    check(
        &docs,
        doc! {"a.c": -1, "a": -1, "_id": 1},
        &[8, 5, 9, 4, 6, 7, 3, 2, 1],
    );
}

fn common_prefix_docs_with_arrays() -> Vec<Document> {
    vec![
        doc! {"_id": 1, "a": [{"b": [4, 1], "c": 1}, {"b": [1, 5], "c": 2}]},
        doc! {"_id": 2, "a": [{"b": 2, "c": [1, 3]}, {"b": 4, "c": [2, 4]}]},
        doc! {"_id": 3, "a": [{"b": [6, 4], "c": 1}, {"b": [9, 7], "c": 2}]},
        doc! {"_id": 4, "a": [{"b": 4, "c": [1, 2]}, {"b": 5, "c": [3, 2]}]},
        doc! {"_id": 5, "a": [{"b": [2, 3], "c": 1}, {"b": [7, 6], "c": 3}]},
        doc! {"_id": 6, "a": [{"b": 5, "c": []}, {"b": 3, "c": 3}]},
        doc! {"_id": 7, "a": [{"b": [], "c": 2}, {"b": 2, "c": 3}]},
        doc! {"_id": 8, "a": [{"b": 3, "c": [2]}, {"b": 8, "c": [3]}]},
        doc! {"_id": 9, "a": [{"b": [8], "c": 2}, {"b": [6], "c": 3}]},
    ]
}

#[test]
fn sort_dotted_paths_common_prefix_with_inner_arrays() {
    let docs = common_prefix_docs_with_arrays();
    check(
        &docs,
        doc! {"a.c": 1, "a.b": 1, "_id": 1},
        &[6, 1, 2, 5, 3, 4, 7, 8, 9],
    );
    check(
        &docs,
        doc! {"a.c": 1, "a.b": -1, "_id": 1},
        &[6, 3, 1, 4, 5, 2, 9, 8, 7],
    );
    check(
        &docs,
        doc! {"a.c": -1, "a.b": 1, "_id": 1},
        &[2, 7, 6, 4, 5, 9, 8, 1, 3],
    );
    check(
        &docs,
        doc! {"a.c": -1, "a.b": -1, "_id": 1},
        &[2, 8, 5, 9, 4, 6, 7, 3, 1],
    );
    check(
        &docs,
        doc! {"a.b": 1, "a": 1, "_id": 1},
        &[7, 1, 2, 5, 6, 8, 4, 3, 9],
    );
    check(
        &docs,
        doc! {"a.b": 1, "a": -1, "_id": 1},
        &[7, 1, 5, 2, 8, 6, 3, 4, 9],
    );
    check(
        &docs,
        doc! {"a.b": -1, "a": 1, "_id": 1},
        &[3, 8, 9, 5, 6, 4, 1, 2, 7],
    );
    check(
        &docs,
        doc! {"a.b": -1, "a": -1, "_id": 1},
        &[3, 9, 8, 5, 1, 4, 6, 2, 7],
    );
    // A numeric component picks the first element; its `b` array is expanded.
    check(
        &docs,
        doc! {"a.0.b": 1, "_id": 1},
        &[7, 1, 2, 5, 8, 3, 4, 6, 9],
    );
    check(
        &docs,
        doc! {"a.0.b": 1, "_id": -1},
        &[7, 1, 5, 2, 8, 4, 3, 6, 9],
    );
    check(
        &docs,
        doc! {"a.0.b": -1, "_id": 1},
        &[9, 3, 6, 1, 4, 5, 8, 2, 7],
    );
    check(
        &docs,
        doc! {"a.0.b": -1, "_id": -1},
        &[9, 3, 6, 4, 1, 8, 5, 2, 7],
    );
}

#[test]
fn sort_dotted_paths_two_paths_without_common_prefix() {
    let docs = vec![
        doc! {"_id": 1, "a": {"b": 1}, "c": [{"d": [4, 1]}, {"d": [1, 5]}]},
        doc! {"_id": 2, "a": [{"b": [1, 3]}, {"b": [2, 4]}], "c": {"d": 2}},
        doc! {"_id": 3, "a": {"b": 1}, "c": [{"d": [6, 4]}, {"d": [9, 7]}]},
        doc! {"_id": 4, "a": [{"b": [2]}, {"b": [3, 2]}], "c": {"d": 4}},
        doc! {"_id": 5, "a": {"b": 1}, "c": [{"d": [2, 3]}, {"d": [7, 6]}]},
        doc! {"_id": 6, "a": [{"b": []}, {"b": 3}], "c": {"d": 4}},
        doc! {"_id": 7, "a": {"b": 2}, "c": [{"d": []}, {"d": 2}]},
        doc! {"_id": 8, "a": [{"b": [2]}, {"b": [3]}], "c": {"d": 3}},
        doc! {"_id": 9, "a": {"b": 3}, "c": [{"d": [8]}, {"d": [6]}]},
    ];
    check(
        &docs,
        doc! {"a.b": 1, "c.d": 1, "_id": 1},
        &[6, 1, 2, 5, 3, 7, 8, 4, 9],
    );
    check(
        &docs,
        doc! {"a.b": 1, "c.d": -1, "_id": 1},
        &[6, 3, 5, 1, 2, 4, 8, 7, 9],
    );
    check(
        &docs,
        doc! {"a.b": -1, "c.d": 1, "_id": 1},
        &[2, 8, 4, 6, 9, 7, 1, 5, 3],
    );
    check(
        &docs,
        doc! {"a.b": -1, "c.d": -1, "_id": 1},
        &[2, 9, 4, 6, 8, 7, 3, 5, 1],
    );
}

#[test]
fn sort_dotted_paths_length_three() {
    let docs = vec![
        doc! {"_id": 1, "a": {"b": {"c": 2}}},
        doc! {"_id": 2, "a": {"b": {"c": []}}},
        doc! {"_id": 3, "a": [{"b": []}, {"b": {"c": []}}]},
        doc! {"_id": 4, "a": [{"b": {"c": 1}}]},
        doc! {"_id": 5, "a": {"b": [{"c": 3}, {"d": 1}]}},
        doc! {"_id": 6, "a": {"b": [{"c": [5]}]}},
        doc! {"_id": 7, "a": []},
        doc! {"_id": 8, "a": {"b": [{"c": [1, 3]}, {"c": [2, 5]}]}},
        doc! {"_id": 9, "a": [{"b": [{"c": []}, {"c": [1, 3]}]}]},
    ];
    check(
        &docs,
        doc! {"a.b.c": 1, "_id": 1},
        &[2, 3, 9, 5, 7, 4, 8, 1, 6],
    );
    check(
        &docs,
        doc! {"a.b.c": 1, "_id": -1},
        &[9, 3, 2, 7, 5, 8, 4, 1, 6],
    );
    check(
        &docs,
        doc! {"a.b.c": -1, "_id": 1},
        &[6, 8, 5, 9, 1, 4, 3, 7, 2],
    );
    check(
        &docs,
        doc! {"a.b.c": -1, "_id": -1},
        &[8, 6, 9, 5, 1, 4, 7, 3, 2],
    );
}

#[test]
fn sort_array_smallest_ascending_largest_descending() {
    let docs = vec![
        doc! {"_id": 0, "a": [3, 0, 1]},
        doc! {"_id": 1, "a": [8, 4, -1]},
    ];
    assert_eq!(ids(&docs, doc! {"a": 1}), [1, 0]);
    let docs = vec![
        doc! {"_id": 0, "a": [3, 0, 1]},
        doc! {"_id": 1, "a": [0, 4, -1]},
    ];
    assert_eq!(ids(&docs, doc! {"a": -1}), [1, 0]);
    let docs = vec![
        doc! {"_id": 0, "x": [{"y": [4, 0, 1], "z": 7}, {"y": 0, "z": 9}]},
        doc! {"_id": 1, "x": [{"y": 1, "z": 7}, {"y": 0, "z": [8, 6]}]},
    ];
    assert_eq!(ids(&docs, doc! {"x.y": 1, "x.z": -1}), [0, 1]);
    assert_eq!(ids(&docs, doc! {"x.y": -1, "x.z": 1}), [0, 1]);
    let docs = vec![
        doc! {"_id": 0, "a": 1, "d": [{"e": {"f": 1, "g": [6, 5, 4]}}, {"e": {"g": [3, 2, 1]}}]},
        doc! {"_id": 1, "a": 2, "d": [{"e": {"f": 2, "g": [5, 4, 3]}}, {"e": {"g": [2, 1, 0]}}]},
    ];
    assert_eq!(ids(&docs, doc! {"d.e.g": 1}), [1, 0]);
}

#[test]
fn types_sort_in_bracket_order() {
    let ordered = vec![
        Bson::MinKey,
        Bson::Undefined,
        Bson::Null,
        Bson::Double(f64::NAN),
        Bson::Double(f64::NEG_INFINITY),
        Bson::Int32(-1),
        Bson::Int64(2),
        Bson::Double(2.5),
        Bson::String("a".into()),
        Bson::Symbol("b".into()),
        Bson::Document(doc! {}),
        Bson::Array(vec![]),
        Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: vec![],
        }),
        Bson::ObjectId(ObjectId::from_bytes([0; 12])),
        Bson::Boolean(false),
        Bson::Boolean(true),
        Bson::DateTime(bson::DateTime::from_millis(0)),
        Bson::Timestamp(bson::Timestamp {
            time: 0,
            increment: 0,
        }),
        Bson::RegularExpression(bson::Regex {
            pattern: "a".into(),
            options: String::new(),
        }),
        Bson::JavaScriptCode("x".into()),
        Bson::MaxKey,
    ];
    for (i, a) in ordered.iter().enumerate() {
        for (j, b) in ordered.iter().enumerate() {
            assert_eq!(sort_value_cmp(a, b), i.cmp(&j), "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn missing_sorts_as_null_and_ties_keep_input_order() {
    let docs = vec![
        doc! {"_id": 1, "a": Bson::Null},
        doc! {"_id": 2},
        doc! {"_id": 3, "a": Bson::Null},
        doc! {"_id": 4, "a": 1},
        doc! {"_id": 5},
    ];
    assert_eq!(ids(&docs, doc! {"a": 1}), [1, 2, 3, 5, 4]);
    assert_eq!(ids(&docs, doc! {"a": -1}), [4, 1, 2, 3, 5]);
    // An empty specification is the natural order.
    assert_eq!(ids(&docs, doc! {}), [1, 2, 3, 4, 5]);
}

#[test]
fn specifications_are_checked() {
    for ok in [
        doc! {"a": 1},
        doc! {"a": -1i64},
        doc! {"a": 1.0},
        doc! {"a.b": -1.0, "c": 1},
    ] {
        assert!(SortSpec::parse(&ok).is_ok(), "{ok}");
    }
    for (bad, code) in [
        (doc! {"a": 0}, "BadValue"),
        (doc! {"a": 2}, "BadValue"),
        (doc! {"a": 0.5}, "BadValue"),
        (doc! {"a": "asc"}, "BadValue"),
        (doc! {"a": true}, "BadValue"),
        (doc! {"a": Bson::Null}, "BadValue"),
        (doc! {"a": {"$meta": "textScore"}}, "BadValue"),
        (doc! {"": 1}, "BadValue"),
        (doc! {"a..b": 1}, "Location15998"),
        (doc! {"$a": 1}, "Location16410"),
    ] {
        assert_eq!(SortSpec::parse(&bad).unwrap_err().code, code, "{bad}");
    }
    let meta = SortSpec::parse(&doc! {"s": {"$meta": "textScore"}}).unwrap_err();
    assert!(meta.message.contains("$meta"), "{meta}");
}

#[test]
fn skip_and_limit() {
    let docs: Vec<Document> = (0..10).map(|i| doc! {"_id": i, "k": 9 - i}).collect();
    let spec = SortSpec::parse(&doc! {"k": 1}).unwrap();
    let got = |skip, limit| -> Vec<i32> {
        sort_skip_limit(docs.clone(), &spec, skip, limit)
            .unwrap()
            .iter()
            .map(|d| d.get_i32("_id").unwrap())
            .collect()
    };
    assert_eq!(got(0, 3), [9, 8, 7]);
    assert_eq!(got(2, 3), [7, 6, 5]);
    assert_eq!(
        got(0, -3),
        [9, 8, 7],
        "a negative limit is the positive one"
    );
    assert_eq!(got(8, 0), [1, 0], "limit 0 is no limit");
    assert_eq!(got(20, 5), Vec::<i32>::new());
    assert_eq!(got(9, 5), [0]);
    assert_eq!(got(0, i64::MIN).len(), 10);
    assert_eq!(
        sort_skip_limit(docs.clone(), &spec, -1, 0)
            .unwrap_err()
            .code,
        "BadValue"
    );
    assert_eq!(
        Window::new(3, -2).unwrap(),
        Window {
            skip: 3,
            limit: Some(2)
        }
    );
    // The natural order windows too.
    let natural = SortSpec::parse(&doc! {}).unwrap();
    let out = sort_skip_limit(docs.clone(), &natural, 1, 2).unwrap();
    assert_eq!(out, docs[1..3].to_vec());
}

#[test]
fn compare_agrees_with_sorting() {
    let spec = SortSpec::parse(&doc! {"a": -1}).unwrap();
    assert_eq!(
        spec.compare(&doc! {"a": [1, 5]}, &doc! {"a": 4}),
        Ordering::Less
    );
    let spec = SortSpec::parse(&doc! {"a": 1}).unwrap();
    assert_eq!(
        spec.compare(&doc! {"a": [1, 5]}, &doc! {"a": 4}),
        Ordering::Less
    );
    assert_eq!(
        spec.compare(&doc! {"a": []}, &doc! {}),
        Ordering::Less,
        "an empty array sorts below missing"
    );
}

#[test]
fn deep_arrays_of_documents_do_not_overflow() {
    // 300 levels of `{a: [{a: [...]}]}`: the key of "a.a.a..." stops at the depth cap.
    let mut v = Bson::Int32(1);
    for _ in 0..300 {
        v = Bson::Array(vec![Bson::Document(doc! {"a": v})]);
    }
    let doc = doc! {"a": v};
    let path = vec!["a"; 6000].join(".");
    let spec = SortSpec::parse(&doc! {path: 1}).unwrap();
    let out = sort_skip_limit(vec![doc, doc! {}], &spec, 0, 0).unwrap();
    assert_eq!(out.len(), 2);
}

fn arb_scalar() -> impl Strategy<Value = Bson> {
    prop_oneof![
        any::<i32>().prop_map(Bson::Int32),
        (-5i64..5).prop_map(Bson::Int64),
        any::<f64>().prop_map(Bson::Double),
        Just(Bson::Double(f64::NAN)),
        (-5i32..5).prop_map(|i| Bson::Double(f64::from(i) / 2.0)),
        (-5i32..5).prop_map(Bson::Int32),
        "[a-c]{0,2}".prop_map(Bson::String),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
        Just(Bson::Undefined),
        Just(Bson::MinKey),
        Just(Bson::MaxKey),
        (-3i64..3).prop_map(|m| Bson::DateTime(bson::DateTime::from_millis(m))),
    ]
}

fn arb_bson() -> impl Strategy<Value = Bson> {
    arb_scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            prop::collection::vec(("[a-b]", inner), 0..3)
                .prop_map(|kvs| Bson::Document(kvs.into_iter().collect())),
        ]
    })
}

fn arb_doc() -> impl Strategy<Value = Document> {
    prop::collection::vec(("[a-b]", arb_bson()), 0..3)
        .prop_map(|kvs| kvs.into_iter().collect::<Document>())
}

fn arb_spec() -> impl Strategy<Value = Document> {
    prop::collection::vec(
        (
            prop_oneof![Just("a"), Just("b"), Just("a.a"), Just("a.b"), Just("b.0")],
            any::<bool>(),
        ),
        1..3,
    )
    .prop_map(|fields| {
        fields
            .into_iter()
            .map(|(p, desc)| (p.to_string(), Bson::Int32(if desc { -1 } else { 1 })))
            .collect()
    })
}

proptest! {
    #[test]
    fn the_value_order_is_total(a in arb_bson(), b in arb_bson(), c in arb_bson()) {
        prop_assert_eq!(sort_value_cmp(&a, &a), Ordering::Equal);
        prop_assert_eq!(sort_value_cmp(&a, &b), sort_value_cmp(&b, &a).reverse());
        let (ab, bc, ac) = (sort_value_cmp(&a, &b), sort_value_cmp(&b, &c), sort_value_cmp(&a, &c));
        if ab != Ordering::Greater && bc != Ordering::Greater {
            let strict = ab == Ordering::Less || bc == Ordering::Less;
            prop_assert_eq!(ac, if strict { Ordering::Less } else { Ordering::Equal });
        }
        if canonical_rank(&a) == canonical_rank(&b) {
            prop_assert_eq!(Some(sort_value_cmp(&a, &b)), bson_cmp(&a, &b));
        } else {
            prop_assert_eq!(sort_value_cmp(&a, &b), canonical_rank(&a).cmp(&canonical_rank(&b)));
        }
    }

    #[test]
    fn sorting_is_a_sorted_permutation_and_limit_is_a_prefix(
        docs in prop::collection::vec(arb_doc(), 0..12),
        spec in arb_spec(),
        skip in 0i64..5,
        limit in 0i64..6,
    ) {
        let docs: Vec<Document> = docs
            .into_iter()
            .enumerate()
            .map(|(i, mut d)| { d.insert("_id", i as i32); d })
            .collect();
        let parsed = SortSpec::parse(&spec).unwrap();
        let Ok(all) = sort_skip_limit(docs.clone(), &parsed, 0, 0) else {
            // Parallel arrays: every window fails the same way.
            prop_assert!(sort_skip_limit(docs, &parsed, skip, limit).is_err());
            return Ok(());
        };
        let mut got: Vec<i32> = all.iter().map(|d| d.get_i32("_id").unwrap()).collect();
        for pair in all.windows(2) {
            let o = parsed.compare(&pair[0], &pair[1]);
            prop_assert!(o != Ordering::Greater);
            if o == Ordering::Equal {
                prop_assert!(pair[0].get_i32("_id").unwrap() < pair[1].get_i32("_id").unwrap());
            }
        }
        let window = sort_skip_limit(docs.clone(), &parsed, skip, limit).unwrap();
        let end = if limit == 0 { all.len() } else { (skip + limit) as usize };
        // Compared by `_id` (a NaN makes `Document` equality false).
        let expected: Vec<i32> = got.iter().skip(skip as usize).take(end.saturating_sub(skip as usize)).copied().collect();
        let window: Vec<i32> = window.iter().map(|d| d.get_i32("_id").unwrap()).collect();
        prop_assert_eq!(window, expected);
        got.sort_unstable();
        prop_assert_eq!(got, (0..docs.len() as i32).collect::<Vec<_>>());
    }
}
