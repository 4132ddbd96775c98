//! Find projections (src/mql/projection.rs): one test per rule, with MongoDB's answers from
//! `jstests/core/query/project/*.js` (mongodb/mongo) and the manual's projection pages, and
//! property tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bson::{Bson, Document, doc};
use proptest::prelude::*;

use crate::mql::{Positional, Projection, compile_query, project};

fn apply(projection: Document, d: &Document) -> Document {
    Projection::compile(&projection).unwrap().apply(d).unwrap()
}

fn error(projection: Document) -> &'static str {
    Projection::compile(&projection).unwrap_err().code
}

/// Key order matters: compared as Extended JSON text.
fn same(a: &Document, b: &Document) {
    assert_eq!(format!("{a}"), format!("{b}"));
}

#[test]
fn inclusion_keeps_named_paths_in_document_order_with_id() {
    let d = doc! {"_id": 1, "b": 2, "a": {"x": 1, "y": 2}, "c": 3};
    same(
        &apply(doc! {"c": 1, "b": 1}, &d),
        &doc! {"_id": 1, "b": 2, "c": 3},
    );
    same(&apply(doc! {"a.y": 1, "_id": 0}, &d), &doc! {"a": {"y": 2}});
    same(
        &apply(doc! {"a": {"x": true}}, &d),
        &doc! {"_id": 1, "a": {"x": 1}},
    );
    same(&apply(doc! {"_id": 1}, &d), &doc! {"_id": 1});
    same(&apply(doc! {"b": 5}, &d), &doc! {"_id": 1, "b": 2});
    // Through arrays: documents projected, scalars dropped, nested arrays kept.
    let arr = doc! {"_id": 2, "a": [{"b": 1, "c": 1}, "s", {"c": 2}, [1, {"b": 3}]]};
    same(
        &apply(doc! {"a.b": 1, "_id": 0}, &arr),
        &doc! {"a": [{"b": 1}, {}, [{"b": 3}]]},
    );
    // A scalar on the way is dropped; a sub-document without the path stays `{}`.
    same(
        &apply(doc! {"c.z": 1, "a.z": 1}, &d),
        &doc! {"_id": 1, "a": {}},
    );
    // Numeric components are field names.
    same(
        &apply(doc! {"_id": 0, "a.2": 1}, &doc! {"a": [0, 1, 2, {"2": 5}]}),
        &doc! {"a": [{"2": 5}]},
    );
}

#[test]
fn exclusion_removes_named_paths_and_keeps_scalars_on_the_way() {
    let d = doc! {"_id": 1, "a": ["s", {"b": 1, "c": 1}, {"b": 2}], "x": 1};
    same(
        &apply(doc! {"a.b": 0}, &d),
        &doc! {"_id": 1, "a": ["s", {"c": 1}, {}], "x": 1},
    );
    same(
        &apply(doc! {"_id": 0}, &d),
        &doc! {"a": ["s", {"b": 1, "c": 1}, {"b": 2}], "x": 1},
    );
    same(
        &apply(doc! {"x": false, "_id": 0}, &d),
        &doc! {"a": ["s", {"b": 1, "c": 1}, {"b": 2}]},
    );
    same(&apply(doc! {}, &d), &d);
}

#[test]
fn mixing_and_collisions_are_mongodbs_errors() {
    assert_eq!(error(doc! {"a": 1, "b": 0}), "Location31254");
    assert_eq!(error(doc! {"a": 0, "b": 1}), "Location31253");
    assert_eq!(error(doc! {"a": 1, "a.b": 1}), "Location31249");
    assert_eq!(error(doc! {"a.b": 1, "a": 1}), "Location31250");
    assert_eq!(
        error(doc! {"a": {"b": {"c": 0}}, "a.b": 0}),
        "Location31250"
    );
    assert_eq!(error(doc! {"": 1}), "Location40352");
    assert_eq!(error(doc! {"a..b": 1}), "Location15998");
    assert_eq!(error(doc! {"$a": 1}), "Location16410");
    assert_eq!(error(doc! {"a": {}}), "Location51270");
    // `_id` mixes with either kind.
    assert!(Projection::compile(&doc! {"_id": 0, "a": 1}).is_ok());
    assert!(Projection::compile(&doc! {"_id": 1, "a": 0}).is_ok());
}

#[test]
fn slice_forms() {
    let d = doc! {"_id": 1, "a": [0, 1, 2, 3, 4], "b": 7};
    let a = |p: Document| apply(p, &d).get("a").cloned().unwrap();
    assert_eq!(a(doc! {"a": {"$slice": 2}}), Bson::from(vec![0, 1]));
    assert_eq!(a(doc! {"a": {"$slice": -2}}), Bson::from(vec![3, 4]));
    assert_eq!(a(doc! {"a": {"$slice": [1, 2]}}), Bson::from(vec![1, 2]));
    assert_eq!(a(doc! {"a": {"$slice": [-2, 5]}}), Bson::from(vec![3, 4]));
    assert_eq!(a(doc! {"a": {"$slice": [-9, 2]}}), Bson::from(vec![0, 1]));
    assert_eq!(
        a(doc! {"a": {"$slice": [9, 2]}}),
        Bson::from(Vec::<i32>::new())
    );
    assert_eq!(a(doc! {"a": {"$slice": 0}}), Bson::from(Vec::<i32>::new()));
    // Alone, `$slice` keeps every other field; a non-array is left alone.
    same(
        &apply(doc! {"a": {"$slice": 1}}, &d),
        &doc! {"_id": 1, "a": [0], "b": 7},
    );
    same(&apply(doc! {"b": {"$slice": 1}}, &d), &d);
    // The array form's limit must be positive.
    assert_eq!(error(doc! {"a": {"$slice": [1, 0]}}), "Location28724");
    assert_eq!(error(doc! {"a": {"$slice": "x"}}), "BadValue");
    // Inside an array nested in an array, `$slice` does nothing.
    same(
        &apply(
            doc! {"a.b": {"$slice": 1}},
            &doc! {"a": [{"b": [1, 2]}, [{"b": [1, 2]}]]},
        ),
        &doc! {"a": [{"b": [1]}, [{"b": [1, 2]}]]},
    );
}

#[test]
fn elem_match_keeps_the_first_matching_element() {
    let d = doc! {"_id": 1, "zip": "63109", "students": [
        {"name": "john", "school": 102, "age": 10},
        {"name": "jess", "school": 102, "age": 11},
        {"name": "jeff", "school": 108, "age": 15},
    ]};
    same(
        &apply(doc! {"students": {"$elemMatch": {"school": 102}}}, &d),
        &doc! {"_id": 1, "students": [{"name": "john", "school": 102, "age": 10}]},
    );
    same(
        &apply(
            doc! {"students": {"$elemMatch": {"school": 102, "age": {"$gt": 10}}}},
            &d,
        ),
        &doc! {"_id": 1, "students": [{"name": "jess", "school": 102, "age": 11}]},
    );
    // No match, or not an array: the field is left out.
    same(
        &apply(doc! {"students": {"$elemMatch": {"school": 1}}}, &d),
        &doc! {"_id": 1},
    );
    assert_eq!(
        error(doc! {"a.b": {"$elemMatch": {"x": 1}}}),
        "Location31275"
    );
}

#[test]
fn computed_fields_come_after_included_ones() {
    let d = doc! {"_id": 1, "a": [1, 2, 3], "b": 1, "c": 1};
    same(
        &apply(doc! {"a": {"$slice": 1}, "b": 1}, &d),
        &doc! {"_id": 1, "b": 1, "a": [1]},
    );
    let d = doc! {"_id": 0, "importing": [{"foo": "a"}, {"foo": "b"}], "jobs": [{"num": 1}, {"num": 2}]};
    let q = compile_query(&doc! {"importing.foo": "b"}).unwrap();
    let p = Projection::compile(&doc! {"jobs": {"$slice": 1}, "importing.$": 1}).unwrap();
    same(
        &p.apply_matched(&d, &Positional::new(&q)).unwrap(),
        &doc! {"_id": 0, "jobs": [{"num": 1}], "importing": [{"foo": "b"}]},
    );
}

#[test]
fn positional_keeps_the_matched_element_of_the_first_array() {
    let d =
        doc! {"_id": 1, "a": [{"b": {"c": [1, 2]}}, {"b": {"c": [3, 4]}}], "x": {"y": [0, 1, 2]}};
    let run = |q: Document, p: Document| {
        let q = compile_query(&q).unwrap();
        Projection::compile(&p)
            .unwrap()
            .apply_matched(&d, &Positional::new(&q))
    };
    same(
        &run(doc! {"x.y": 1}, doc! {"a.b.c.$": 1}).unwrap(),
        &doc! {"_id": 1, "a": [{"b": {"c": [3, 4]}}]},
    );
    same(
        &run(doc! {"x.y": 2}, doc! {"x.y.$": 1}).unwrap(),
        &doc! {"_id": 1, "x": {"y": [2]}},
    );
    // No recorded position: an error when the path reaches an array, nothing otherwise.
    assert_eq!(
        run(doc! {}, doc! {"a.$": 1}).unwrap_err().code,
        "Location51246"
    );
    same(&run(doc! {}, doc! {"g.$": 1}).unwrap(), &doc! {"_id": 1});
    // A position beyond the array.
    let short = doc! {"a": [4, 5, 6], "b": ["four", "five"]};
    let q = compile_query(&doc! {"a": 6}).unwrap();
    let p = Projection::compile(&doc! {"b.$": 1}).unwrap();
    assert_eq!(
        p.apply_matched(&short, &Positional::new(&q))
            .unwrap_err()
            .code,
        "Location51247"
    );
    assert_eq!(error(doc! {"a.$": 1, "b.$": 1}), "Location31276");
    assert_eq!(error(doc! {"a.$": {"$slice": 1}}), "Location31271");
    assert_eq!(error(doc! {"a.$": 1, "b": 0}), "Location31254");
    assert_eq!(
        error(doc! {"a.$": 1, "b": {"$elemMatch": {"x": 1}}}),
        "Location31255"
    );
    assert_eq!(error(doc! {".$": 1}), "Location5392900");
    assert_eq!(error(doc! {"a.$": 1, "a.b": 1}), "Location31249");
}

#[test]
fn computed_literals_and_field_paths() {
    let d = doc! {"_id": 1, "a": ["s", {"b": 1, "c": 1}, {"b": 2}], "p": {"q": 5}};
    same(
        &apply(doc! {"x": "lit", "y": {"$literal": 0}, "z": Bson::Null}, &d),
        &doc! {"_id": 1, "x": "lit", "y": 0, "z": Bson::Null},
    );
    // Through an array a computed path replaces scalars; missing parents are created.
    same(
        &apply(doc! {"_id": 0, "a.b": "v", "n.m": "w"}, &d),
        &doc! {"a": [{"b": "v"}, {"b": "v"}, {"b": "v"}], "n": {"m": "w"}},
    );
    // Field paths read the document; a missing one leaves its field out.
    same(
        &apply(doc! {"_id": 0, "r": "$p.q", "s": "$nope", "t": "$a.b"}, &d),
        &doc! {"r": 5, "t": [1, 2]},
    );
    // Expressions in an exclusion projection are refused.
    assert_eq!(error(doc! {"a": 0, "b": "x"}), "Location31252");
    assert_eq!(error(doc! {"b": "x", "a": 0}), "Location31252");
}

#[test]
fn refused_values_name_the_field() {
    for p in [
        doc! {"s": {"$meta": "textScore"}},
        doc! {"s": {"$add": [1, 2]}},
        doc! {"s": "$$ROOT"},
        doc! {"s": ["$a"]},
    ] {
        let e = Projection::compile(&p).unwrap_err();
        assert_eq!(e.code, "BadValue", "{p}");
        assert!(e.message.contains("`s`"), "{e}");
    }
    assert!(
        Projection::compile(&doc! {"s": {"$meta": "textScore"}})
            .unwrap_err()
            .message
            .contains("$meta")
    );
}

#[test]
fn the_lenient_reading_is_unchanged() {
    // What the read pipeline relies on: mixed keeps the inclusive part, a parent covers its
    // children, operator keys are plain names.
    let d = doc! {"_id": 1, "a": {"b": 1, "c": 2}, "d": 3};
    same(
        &project(&doc! {"a": 1, "d": 0}, &d),
        &doc! {"_id": 1, "a": {"b": 1, "c": 2}},
    );
    same(
        &project(&doc! {"a.b": 1, "a": 1}, &d),
        &doc! {"_id": 1, "a": {"b": 1, "c": 2}},
    );
    same(
        &project(&doc! {"d": {"$slice": 1}}, &d),
        &doc! {"_id": 1, "d": 3},
    );
    same(
        &project(&doc! {"a.b": Bson::Null}, &d),
        &doc! {"_id": 1, "a": {"c": 2}, "d": 3},
    );
}

fn arb_value() -> impl Strategy<Value = Bson> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(Bson::Int32),
        "[a-c]{0,2}".prop_map(Bson::String),
        Just(Bson::Null),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            prop::collection::vec(("[a-c]", inner), 0..4)
                .prop_map(|kvs| Bson::Document(kvs.into_iter().collect())),
        ]
    })
}

fn arb_doc() -> impl Strategy<Value = Document> {
    prop::collection::vec(("[a-d_]{1,3}", arb_value()), 0..5)
        .prop_map(|kvs| kvs.into_iter().collect::<Document>())
}

fn arb_path() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-d]", 1..3).prop_map(|s| s.join("."))
}

/// Every dotted path of keys in `d` (arrays looked through).
fn keys(v: &Bson, prefix: &str, out: &mut Vec<String>) {
    match v {
        Bson::Document(d) => {
            for (k, v) in d {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push(p.clone());
                keys(v, &p, out);
            }
        }
        Bson::Array(items) => items.iter().for_each(|i| keys(i, prefix, out)),
        _ => {}
    }
}

fn arb_projection_value() -> impl Strategy<Value = Bson> {
    prop_oneof![
        Just(Bson::Int32(1)),
        Just(Bson::Int32(0)),
        Just(Bson::Boolean(true)),
        Just(Bson::Boolean(false)),
        (-3i32..3).prop_map(|n| Bson::Document(doc! {"$slice": n})),
        (-3i32..3, 1i32..3).prop_map(|(s, n)| Bson::Document(doc! {"$slice": [s, n]})),
        Just(Bson::Document(doc! {"$elemMatch": {"a": 1}})),
        Just(Bson::String("lit".into())),
        Just(Bson::String("$a".into())),
        Just(Bson::Document(doc! {"$meta": "textScore"})),
        Just(Bson::Null),
    ]
}

proptest! {
    /// An inclusion projection shows only paths it names (a named path, a prefix of one, or
    /// below one), plus `_id`.
    #[test]
    fn inclusion_never_shows_an_unnamed_field(
        d in arb_doc(),
        paths in prop::collection::btree_set(arb_path(), 1..4),
    ) {
        let spec: Document = paths.iter().map(|p| (p.clone(), Bson::Int32(1))).collect();
        let Ok(p) = Projection::compile(&spec) else { return Ok(()); };
        let out = p.apply(&d).unwrap();
        let mut shown = Vec::new();
        keys(&Bson::Document(out), "", &mut shown);
        for k in shown {
            let named = k == "_id" || paths.iter().any(|p| {
                *p == k || p.starts_with(&format!("{k}.")) || k.starts_with(&format!("{p}."))
            });
            prop_assert!(named, "{} shown by {}", k, spec);
        }
    }

    /// An exclusion projection never shows a path it names.
    #[test]
    fn exclusion_never_shows_a_named_field(
        d in arb_doc(),
        paths in prop::collection::btree_set(arb_path(), 1..4),
    ) {
        let spec: Document = paths.iter().map(|p| (p.clone(), Bson::Int32(0))).collect();
        let Ok(p) = Projection::compile(&spec) else { return Ok(()); };
        let out = p.apply(&d).unwrap();
        let mut shown = Vec::new();
        keys(&Bson::Document(out), "", &mut shown);
        for k in shown {
            prop_assert!(!paths.iter().any(|p| *p == k || k.starts_with(&format!("{p}."))), "{} shown", k);
        }
    }

    /// Any projection, compiled or lenient, on any document: a value or an error, never a panic.
    #[test]
    fn projection_never_panics(
        d in arb_doc(),
        spec in prop::collection::vec((prop_oneof![arb_path(), arb_path().prop_map(|p| format!("{p}.$"))], arb_projection_value()), 0..4),
        query in prop_oneof![Just(doc! {}), Just(doc! {"a": 1}), Just(doc! {"a.b": {"$gt": 0}})],
    ) {
        let spec: Document = spec.into_iter().collect();
        let q = compile_query(&query).unwrap();
        if let Ok(p) = Projection::compile(&spec) {
            let _ = p.apply_matched(&d, &Positional::new(&q));
        }
        let _ = project(&spec, &d);
    }
}

#[test]
fn hostile_paths_are_refused_or_bounded() {
    // A 200,000-component key: refused (no recursion per component).
    let long = vec!["a"; 200_000].join(".");
    assert_eq!(error(doc! {long.clone(): 1}), "BadValue");
    // The lenient reading caps it and answers (the scalar `a.a` is not on the path's way).
    let d = doc! {"_id": 1, "a": {"a": 1}};
    assert_eq!(
        project(&doc! {long.clone(): 1}, &d),
        doc! {"_id": 1, "a": {}}
    );
    // A sort path of 200,000 components is walked without recursion.
    let spec = crate::mql::SortSpec::parse(&doc! {long: 1}).unwrap();
    assert!(crate::mql::sort_skip_limit(vec![d.clone(), doc! {}], &spec, 0, 0).is_ok());
}
