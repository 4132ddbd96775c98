//! The positional match (src/mql/positional.rs). Expectations from MongoDB's
//! `jstests/core/query/project/positional_projection.js` and
//! `positional_projection_multiple_array_fields.js` (mongodb/mongo), read as the index the
//! projection `"<array>.$": 1` returned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bson::{Document, doc};

use crate::mql::{Positional, compile_query, matches, positional_index};

fn position(query: Document, doc: Document) -> Option<usize> {
    let q = compile_query(&query).unwrap();
    assert!(matches(&q, &doc).unwrap(), "{query} must match {doc}");
    positional_index(&q, &doc).unwrap()
}

#[test]
fn a_condition_through_an_array_records_its_first_matching_element() {
    let x = doc! {
        "x": [{"a": 1, "b": 2}, {"a": 2, "c": 3}, {"a": 1, "d": 5}],
        "y": [{"aa": 1, "bb": 2}, {"aa": 2, "cc": 3}, {"aa": 1, "dd": 5}],
    };
    assert_eq!(position(doc! {"x.a": 2}, x.clone()), Some(1));
    assert_eq!(position(doc! {"x.a": 1}, x.clone()), Some(0));
    assert_eq!(position(doc! {"y.dd": 5}, x), Some(2));
    assert_eq!(
        position(
            doc! {"x.y.a": 1},
            doc! {"x": {"y": [{"a": 1, "b": 1}, {"a": 1, "b": 2}]}}
        ),
        Some(0)
    );
    assert_eq!(
        position(doc! {"x.y.z": 1}, doc! {"x": {"y": {"z": [0, 1, 2]}}}),
        Some(1)
    );
    assert_eq!(
        position(doc! {"x": {"$gt": 0}}, doc! {"x": [-1, 1, 2]}),
        Some(1)
    );
}

#[test]
fn elem_match_records_the_first_element_meeting_all_of_it() {
    assert_eq!(
        position(
            doc! {"x": {"$elemMatch": {"$gt": 1, "$lt": 3}}},
            doc! {"x": [1, 2, 3]}
        ),
        Some(1)
    );
    assert_eq!(
        position(
            doc! {"x": {"$elemMatch": {"y": {"$gt": 1}}}},
            doc! {"x": [{"y": 1}, {"y": 2}, {"y": 3}]}
        ),
        Some(1)
    );
    assert_eq!(
        position(
            doc! {"x": {"$elemMatch": {"a": 1, "b": 2}}},
            doc! {"x": [{"a": 1, "b": 2}, {"a": 2, "c": 3}, {"a": 1, "d": 5}]}
        ),
        Some(0)
    );
    // Nested `$elemMatch`: the outer array's index.
    assert_eq!(
        position(
            doc! {"a": {"$elemMatch": {"$elemMatch": {"$eq": 3}}}},
            doc! {"a": [[1, 2], [3, 4]], "b": [[5, 6], [7, 8]]}
        ),
        Some(1)
    );
    let a = doc! {"a": [{"p": [1, 2], "q": [3, 4]}, {"p": [5, 6], "q": [7, 8]}], "b": [11, 12]};
    assert_eq!(
        position(
            doc! {"a": {"$elemMatch": {"p": {"$elemMatch": {"$eq": 2}}}}},
            a.clone()
        ),
        Some(0)
    );
    assert_eq!(
        position(
            doc! {"a": {"$elemMatch": {"p": {"$elemMatch": {"$eq": 6}}}}},
            a.clone()
        ),
        Some(1)
    );
    assert_eq!(
        position(
            doc! {"a": {"$elemMatch": {"q": {"$elemMatch": {"$eq": 7}}}}},
            a
        ),
        Some(1)
    );
    assert_eq!(
        position(
            doc! {"a": {"$elemMatch": {"y": {"$exists": true}}}},
            doc! {"a": [{"y": 1}, {"y": 2}]}
        ),
        Some(0)
    );
}

#[test]
fn the_last_condition_of_an_and_wins() {
    let d = doc! {"a": [1, 2, 3], "b": [4, 5, 6]};
    assert_eq!(
        position(doc! {"$and": [{"a": 1}, {"a": 2}, {"a": 3}]}, d.clone()),
        Some(2)
    );
    assert_eq!(
        position(doc! {"$and": [{"a": 3}, {"a": 2}, {"a": 1}]}, d.clone()),
        Some(0)
    );
    // Operators of one operator document are an `$and` too.
    assert_eq!(
        position(doc! {"a": {"$gt": 1, "$lt": 3}}, doc! {"a": [0, 5, 2]}),
        Some(0)
    );
    // A condition on another array positions too (parallel arrays).
    assert_eq!(position(doc! {"a": 2}, d), Some(1));
}

#[test]
fn in_and_an_or_of_equalities_record_the_first_matching_element() {
    let d = doc! {"a": [1, 2, 3], "b": [4, 5, 6]};
    assert_eq!(position(doc! {"a": {"$in": [2, 3]}}, d.clone()), Some(1));
    assert_eq!(
        position(doc! {"$or": [{"a": 2}, {"a": 3}]}, d.clone()),
        Some(1)
    );
    assert_eq!(position(doc! {"$or": [{"a": 3}, {"a": 2}]}, d), Some(1));
}

#[test]
fn negations_whole_arrays_and_other_ors_record_nothing() {
    let d = doc! {"a": [1, 2, 3], "b": [4, 5, 6], "c": [7, 8, 9]};
    for q in [
        doc! {},
        doc! {"b": [4, 5, 6]},
        doc! {"$or": [{"a": 1}, {"b": 5}]},
        doc! {"$or": [{"a": 0}, {"b": 5}]},
        doc! {"$nor": [{"a": -1}, {"a": -2}]},
        doc! {"a": {"$not": {"$elemMatch": {"$eq": 100}}}},
        doc! {"a": {"$ne": 5}},
        doc! {"a": {"$nin": [5]}},
        doc! {"a": {"$size": 3}},
    ] {
        assert_eq!(position(q.clone(), d.clone()), None, "{q}");
        assert!(
            Positional::new(&compile_query(&q).unwrap())
                .position(&d)
                .unwrap()
                .is_none()
        );
    }
    assert!(Positional::new(&compile_query(&doc! {}).unwrap()).records_nothing());
}

#[test]
fn all_is_an_and_of_equalities() {
    assert_eq!(
        position(doc! {"a": {"$all": [3, 1]}}, doc! {"a": [1, 2, 3]}),
        Some(0)
    );
    assert_eq!(
        position(doc! {"a": {"$all": [1, 3]}}, doc! {"a": [1, 2, 3]}),
        Some(2)
    );
}

#[test]
fn work_is_linear_in_the_array() {
    // 20,000 elements, the match at the end: one small copy per element.
    let items: Vec<bson::Bson> = (0..20_000)
        .map(|i| bson::Bson::Document(doc! {"v": i}))
        .collect();
    let d = doc! {"big": {"pad": "x".repeat(100_000)}, "a": items};
    let start = std::time::Instant::now();
    assert_eq!(position(doc! {"a.v": 19_999}, d), Some(19_999));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}
