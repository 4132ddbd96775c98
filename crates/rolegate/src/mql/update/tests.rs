//! Unit tests of the update language: every operator and every error class, through the public
//! API ([`Update::parse`], [`Update::apply`], [`Update::upsert`]).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use bson::{Bson, DateTime, Document, Timestamp, doc};

use super::*;

fn ctx() -> UpdateContext {
    UpdateContext::new(DateTime::from_millis(1_700_000_000_000), Bson::Int32(42))
}

fn run(d: Document, u: Document) -> Result<Document, UpdateError> {
    Update::parse(&u, &[])?
        .apply(&d, &ctx())
        .map(|r| r.document)
}

fn ok(d: Document, u: Document) -> Document {
    run(d, u).unwrap()
}

fn err(d: Document, u: Document) -> &'static str {
    run(d, u).unwrap_err().code_name()
}

fn keys(d: &Document) -> Vec<&str> {
    d.keys().map(String::as_str).collect()
}

#[test]
fn set_changes_in_place_and_appends_new_fields_in_order() {
    let out = ok(
        doc! {"_id": 1, "z": 1, "a": 1},
        doc! {"$set": {"y": 2, "a": 3, "b": 4}},
    );
    assert_eq!(out, doc! {"_id": 1, "z": 1, "a": 3, "b": 4, "y": 2});
    assert_eq!(keys(&out), ["_id", "z", "a", "b", "y"]);
    // Across operators too: the whole update is one tree.
    let out = ok(
        doc! {"_id": 1},
        doc! {"$set": {"c": 1}, "$inc": {"b": 1}, "$max": {"a": 1}},
    );
    assert_eq!(keys(&out), ["_id", "a", "b", "c"]);
}

#[test]
fn dotted_paths_create_documents_and_pad_arrays() {
    assert_eq!(
        ok(doc! {}, doc! {"$set": {"a.b.c": 1}}),
        doc! {"a": {"b": {"c": 1}}}
    );
    assert_eq!(ok(doc! {}, doc! {"$set": {"a.0": 1}}), doc! {"a": {"0": 1}});
    assert_eq!(
        ok(doc! {"a": [1]}, doc! {"$set": {"a.3": 4}}),
        doc! {"a": [1, Bson::Null, Bson::Null, 4]}
    );
    assert_eq!(
        ok(doc! {"a": [{"b": 1}]}, doc! {"$set": {"a.0.b": 2}}),
        doc! {"a": [{"b": 2}]}
    );
    assert_eq!(
        ok(doc! {}, doc! {"$set": {"a.10": 1, "a.9": 2}}),
        doc! {"a": {"9": 2, "10": 1}}
    );
}

#[test]
fn paths_through_scalars_are_not_viable() {
    assert_eq!(
        err(doc! {"a": 1}, doc! {"$set": {"a.b": 1}}),
        "PathNotViable"
    );
    assert_eq!(
        err(doc! {"a": [1]}, doc! {"$set": {"a.b": 1}}),
        "PathNotViable"
    );
    // `$unset` does nothing there; `$pop`, `$pull`, `$pullAll` refuse it too.
    assert_eq!(
        ok(doc! {"a": 1}, doc! {"$unset": {"a.b": 1}}),
        doc! {"a": 1}
    );
    assert_eq!(
        err(doc! {"a": 1}, doc! {"$pull": {"a.b": 1}}),
        "PathNotViable"
    );
    assert_eq!(
        err(doc! {"a": [1]}, doc! {"$pop": {"a.b": 1}}),
        "PathNotViable"
    );
    // A missing path is not a non-viable one.
    assert_eq!(
        ok(doc! {"a": {}}, doc! {"$pull": {"a.b": 1}}),
        doc! {"a": {}}
    );
}

#[test]
fn unset_removes_fields_and_nulls_array_elements() {
    assert_eq!(
        ok(doc! {"a": 1, "b": 2}, doc! {"$unset": {"a": ""}}),
        doc! {"b": 2}
    );
    assert_eq!(
        ok(doc! {"a": [1, 2]}, doc! {"$unset": {"a.0": 1}}),
        doc! {"a": [Bson::Null, 2]}
    );
    let u = Update::parse(&doc! {"$unset": {"x": 1}}, &[]).unwrap();
    assert!(!u.apply(&doc! {"a": 1}, &ctx()).unwrap().modified);
}

#[test]
fn inc_and_mul_follow_mongodb_numeric_types() {
    assert_eq!(ok(doc! {"a": 1}, doc! {"$inc": {"a": 2}}), doc! {"a": 3});
    assert_eq!(
        ok(doc! {"a": i32::MAX}, doc! {"$inc": {"a": 1}}),
        doc! {"a": i64::from(i32::MAX) + 1}
    );
    assert_eq!(
        ok(doc! {"a": 2}, doc! {"$mul": {"a": 1.5}}),
        doc! {"a": 3.0}
    );
    assert_eq!(ok(doc! {}, doc! {"$inc": {"a": 5i64}}), doc! {"a": 5i64});
    assert_eq!(ok(doc! {}, doc! {"$mul": {"a": 5i64}}), doc! {"a": 0i64});
    assert_eq!(ok(doc! {}, doc! {"$mul": {"a": 2.5}}), doc! {"a": 0.0});
    assert_eq!(
        err(doc! {"a": i64::MAX}, doc! {"$inc": {"a": 1}}),
        "BadValue"
    );
    assert_eq!(
        err(doc! {"a": "x"}, doc! {"$inc": {"a": 1}}),
        "TypeMismatch"
    );
    assert_eq!(
        err(doc! {"a": 1}, doc! {"$inc": {"a": "1"}}),
        "TypeMismatch"
    );
    assert_eq!(
        err(doc! {"a": 1}, doc! {"$mul": {"a": null}}),
        "TypeMismatch"
    );
    let u = Update::parse(&doc! {"$inc": {"a": 0}}, &[]).unwrap();
    assert!(!u.apply(&doc! {"a": 1}, &ctx()).unwrap().modified);
}

#[test]
fn decimal_arithmetic_is_exact_or_refused() {
    let d = |s: &str| Bson::Decimal128(s.parse().unwrap());
    assert_eq!(
        ok(doc! {"a": d("1.5")}, doc! {"$inc": {"a": 1}}),
        doc! {"a": d("2.5")}
    );
    // A double is widened to 15 significant digits first, as MongoDB does.
    assert_eq!(
        ok(doc! {"a": d("1.5")}, doc! {"$inc": {"a": 0.25}}),
        doc! {"a": d("1.750000000000000")}
    );
    let big = d("9999999999999999999999999999999999");
    let e = run(doc! {"a": big.clone()}, doc! {"$mul": {"a": big}}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotImplemented);
}

#[test]
fn min_and_max_compare_across_types() {
    assert_eq!(ok(doc! {"a": 5}, doc! {"$min": {"a": 3}}), doc! {"a": 3});
    assert_eq!(ok(doc! {"a": 5}, doc! {"$min": {"a": 7}}), doc! {"a": 5});
    assert_eq!(
        ok(doc! {"a": 5}, doc! {"$max": {"a": 7.5}}),
        doc! {"a": 7.5}
    );
    // null < numbers < strings
    assert_eq!(
        ok(doc! {"a": 5}, doc! {"$min": {"a": null}}),
        doc! {"a": null}
    );
    assert_eq!(
        ok(doc! {"a": 5}, doc! {"$max": {"a": "x"}}),
        doc! {"a": "x"}
    );
    assert_eq!(ok(doc! {}, doc! {"$min": {"a": 1}}), doc! {"a": 1});
}

#[test]
fn rename_moves_values() {
    assert_eq!(
        ok(
            doc! {"_id": 1, "a": 1, "b": 2},
            doc! {"$rename": {"a": "c"}}
        ),
        doc! {"_id": 1, "b": 2, "c": 1}
    );
    assert_eq!(
        ok(doc! {"a": {"b": 1}}, doc! {"$rename": {"a.b": "x.y"}}),
        doc! {"a": {}, "x": {"y": 1}}
    );
    // Over an existing target: in its place.
    assert_eq!(
        ok(doc! {"c": 0, "a": 1}, doc! {"$rename": {"a": "c"}}),
        doc! {"c": 1}
    );
    assert_eq!(
        ok(doc! {"b": 1}, doc! {"$rename": {"a": "c"}}),
        doc! {"b": 1}
    );
    let code = |u: Document| Update::parse(&u, &[]).unwrap_err().code_name();
    assert_eq!(code(doc! {"$rename": {"a": "a"}}), "BadValue");
    assert_eq!(code(doc! {"$rename": {"a": "a.b"}}), "BadValue");
    assert_eq!(code(doc! {"$rename": {"a.b": "a"}}), "BadValue");
    assert_eq!(code(doc! {"$rename": {"a": 1}}), "BadValue");
    assert_eq!(code(doc! {"$rename": {"a.$": "b"}}), "BadValue");
    assert_eq!(
        code(doc! {"$rename": {"a": "b"}, "$set": {"b": 1}}),
        "ConflictingUpdateOperators"
    );
    assert_eq!(
        err(doc! {"a": [{"b": 1}]}, doc! {"$rename": {"a.0.b": "c"}}),
        "BadValue"
    );
    assert_eq!(
        err(doc! {"a": 1, "c": [1]}, doc! {"$rename": {"a": "c.0"}}),
        "BadValue"
    );
}

#[test]
fn current_date_writes_the_context_time() {
    let out = ok(
        doc! {},
        doc! {"$currentDate": {"a": true, "b": {"$type": "timestamp"}, "c": {"$type": "date"}}},
    );
    assert_eq!(
        out.get("a"),
        Some(&Bson::DateTime(DateTime::from_millis(1_700_000_000_000)))
    );
    assert_eq!(
        out.get("b"),
        Some(&Bson::Timestamp(Timestamp {
            time: 1_700_000_000,
            increment: 1
        }))
    );
    let code = |u: Document| Update::parse(&u, &[]).unwrap_err().code_name();
    assert_eq!(
        code(doc! {"$currentDate": {"a": {"$type": "x"}}}),
        "BadValue"
    );
    assert_eq!(code(doc! {"$currentDate": {"a": 1}}), "BadValue");
}

#[test]
fn set_on_insert_applies_only_to_upserts() {
    let u = Update::parse(&doc! {"$set": {"a": 1}, "$setOnInsert": {"b": 2}}, &[]).unwrap();
    assert_eq!(
        u.apply(&doc! {"_id": 1}, &ctx()).unwrap().document,
        doc! {"_id": 1, "a": 1}
    );
    assert_eq!(
        u.upsert(&doc! {"x": 5}, &ctx()).unwrap(),
        doc! {"_id": 42, "a": 1, "b": 2, "x": 5}
    );
}

#[test]
fn push_with_modifiers() {
    assert_eq!(
        ok(doc! {"a": [1]}, doc! {"$push": {"a": 2}}),
        doc! {"a": [1, 2]}
    );
    assert_eq!(ok(doc! {}, doc! {"$push": {"a": [1]}}), doc! {"a": [[1]]});
    assert_eq!(
        ok(
            doc! {"a": [1, 2]},
            doc! {"$push": {"a": {"$each": [3, 4], "$position": 1}}}
        ),
        doc! {"a": [1, 3, 4, 2]}
    );
    assert_eq!(
        ok(
            doc! {"a": [1, 2]},
            doc! {"$push": {"a": {"$each": [3], "$position": -1}}}
        ),
        doc! {"a": [1, 3, 2]}
    );
    assert_eq!(
        ok(
            doc! {"a": [5, 1]},
            doc! {"$push": {"a": {"$each": [3], "$sort": -1, "$slice": 2}}}
        ),
        doc! {"a": [5, 3]}
    );
    assert_eq!(
        ok(
            doc! {"a": [5, 1]},
            doc! {"$push": {"a": {"$each": [3], "$slice": -2}}}
        ),
        doc! {"a": [1, 3]}
    );
    assert_eq!(
        ok(
            doc! {"a": [{"s": 2}, {"s": 1}]},
            doc! {"$push": {"a": {"$each": [{"s": 3}], "$sort": {"s": 1}}}}
        ),
        doc! {"a": [{"s": 1}, {"s": 2}, {"s": 3}]}
    );
    assert_eq!(err(doc! {"a": 1}, doc! {"$push": {"a": 2}}), "BadValue");
    let code = |u: Document| Update::parse(&u, &[]).unwrap_err().code_name();
    assert_eq!(code(doc! {"$push": {"a": {"$each": 1}}}), "BadValue");
    assert_eq!(
        code(doc! {"$push": {"a": {"$each": [], "$slice": 1.5}}}),
        "BadValue"
    );
    assert_eq!(
        code(doc! {"$push": {"a": {"$each": [], "$sort": 2}}}),
        "BadValue"
    );
    assert_eq!(
        code(doc! {"$push": {"a": {"$each": [], "$foo": 1}}}),
        "BadValue"
    );
}

#[test]
fn add_to_set_never_duplicates() {
    assert_eq!(
        ok(doc! {"a": [1, 2]}, doc! {"$addToSet": {"a": 2}}),
        doc! {"a": [1, 2]}
    );
    assert_eq!(
        ok(doc! {"a": [1]}, doc! {"$addToSet": {"a": 1.0}}),
        doc! {"a": [1]}
    );
    assert_eq!(
        ok(
            doc! {"a": [1]},
            doc! {"$addToSet": {"a": {"$each": [2, 2, 3]}}}
        ),
        doc! {"a": [1, 2, 3]}
    );
    assert_eq!(
        ok(doc! {}, doc! {"$addToSet": {"a": [1, 2]}}),
        doc! {"a": [[1, 2]]}
    );
    assert_eq!(err(doc! {"a": 1}, doc! {"$addToSet": {"a": 2}}), "BadValue");
}

#[test]
fn pop_pull_and_pull_all() {
    assert_eq!(
        ok(doc! {"a": [1, 2, 3]}, doc! {"$pop": {"a": 1}}),
        doc! {"a": [1, 2]}
    );
    assert_eq!(
        ok(doc! {"a": [1, 2, 3]}, doc! {"$pop": {"a": -1}}),
        doc! {"a": [2, 3]}
    );
    assert_eq!(ok(doc! {"a": []}, doc! {"$pop": {"a": 1}}), doc! {"a": []});
    assert_eq!(err(doc! {"a": 1}, doc! {"$pop": {"a": 1}}), "TypeMismatch");
    assert_eq!(
        Update::parse(&doc! {"$pop": {"a": 2}}, &[])
            .unwrap_err()
            .code_name(),
        "FailedToParse"
    );
    assert_eq!(
        ok(doc! {"a": [1, 2, 1]}, doc! {"$pull": {"a": 1}}),
        doc! {"a": [2]}
    );
    assert_eq!(
        ok(doc! {"a": [1, 5, 7]}, doc! {"$pull": {"a": {"$gte": 5}}}),
        doc! {"a": [1]}
    );
    assert_eq!(
        ok(
            doc! {"a": [{"s": 8, "i": "B", "x": 1}, {"s": 8, "i": "A"}]},
            doc! {"$pull": {"a": {"s": 8, "i": "B"}}}
        ),
        doc! {"a": [{"s": 8, "i": "A"}]}
    );
    assert_eq!(
        ok(
            doc! {"a": ["ab", "b"]},
            doc! {"$pull": {"a": Bson::RegularExpression(bson::Regex { pattern: "^a".into(), options: String::new() })}}
        ),
        doc! {"a": ["b"]}
    );
    assert_eq!(err(doc! {"a": 1}, doc! {"$pull": {"a": 1}}), "BadValue");
    assert_eq!(
        ok(doc! {"a": [1, 2, 3, 1]}, doc! {"$pullAll": {"a": [1, 3]}}),
        doc! {"a": [2]}
    );
    assert_eq!(
        Update::parse(&doc! {"$pullAll": {"a": 1}}, &[])
            .unwrap_err()
            .code_name(),
        "BadValue"
    );
}

#[test]
fn bit_keeps_integer_widths() {
    assert_eq!(
        ok(doc! {"a": 13}, doc! {"$bit": {"a": {"and": 10}}}),
        doc! {"a": 8}
    );
    assert_eq!(
        ok(doc! {"a": 13}, doc! {"$bit": {"a": {"or": 2i64}}}),
        doc! {"a": 15i64}
    );
    assert_eq!(ok(doc! {}, doc! {"$bit": {"a": {"xor": 5}}}), doc! {"a": 5});
    assert_eq!(
        err(doc! {"a": 1.0}, doc! {"$bit": {"a": {"and": 1}}}),
        "BadValue"
    );
    let code = |u: Document| Update::parse(&u, &[]).unwrap_err().code_name();
    assert_eq!(code(doc! {"$bit": {"a": {"not": 1}}}), "BadValue");
    assert_eq!(code(doc! {"$bit": {"a": {"and": 1.0}}}), "BadValue");
    assert_eq!(code(doc! {"$bit": {"a": 1}}), "BadValue");
}

#[test]
fn positional_operator_uses_the_query_match() {
    let c = ctx().with_query(&doc! {"grades": 85}).unwrap();
    let u = Update::parse(&doc! {"$set": {"grades.$": 82}}, &[]).unwrap();
    let out = u
        .apply(&doc! {"grades": [80, 85, 90]}, &c)
        .unwrap()
        .document;
    assert_eq!(out, doc! {"grades": [80, 82, 90]});
    let c = ctx().with_query(&doc! {"a.b": 2}).unwrap();
    let u = Update::parse(&doc! {"$inc": {"a.$.c": 1}}, &[]).unwrap();
    let out = u
        .apply(&doc! {"a": [{"b": 1}, {"b": 2, "c": 1}]}, &c)
        .unwrap()
        .document;
    assert_eq!(out, doc! {"a": [{"b": 1}, {"b": 2, "c": 2}]});
    // Without a match, MongoDB's BadValue.
    let e = u.apply(&doc! {"a": [{"b": 1}]}, &ctx()).unwrap_err();
    assert_eq!(e.code_name(), "BadValue");
}

#[test]
fn all_positional_and_array_filters() {
    assert_eq!(
        ok(doc! {"a": [1, 2]}, doc! {"$inc": {"a.$[]": 10}}),
        doc! {"a": [11, 12]}
    );
    assert_eq!(
        ok(
            doc! {"a": [{"b": 1}, {"b": 2}]},
            doc! {"$set": {"a.$[].c": 0}}
        ),
        doc! {"a": [{"b": 1, "c": 0}, {"b": 2, "c": 0}]}
    );
    let u = Update::parse(
        &doc! {"$set": {"g.$[x]": 100}},
        &[doc! {"x": {"$gte": 100}}],
    )
    .unwrap();
    let out = u
        .apply(&doc! {"g": [95, 102, 90, 150]}, &ctx())
        .unwrap()
        .document;
    assert_eq!(out, doc! {"g": [95, 100, 90, 100]});
    let u = Update::parse(&doc! {"$inc": {"g.$[e].s": 1}}, &[doc! {"e.s": {"$lt": 2}}]).unwrap();
    let out = u
        .apply(&doc! {"g": [{"s": 1}, {"s": 5}]}, &ctx())
        .unwrap()
        .document;
    assert_eq!(out, doc! {"g": [{"s": 2}, {"s": 5}]});
    assert_eq!(err(doc! {}, doc! {"$set": {"a.$[]": 1}}), "BadValue");
    assert_eq!(err(doc! {"a": 1}, doc! {"$set": {"a.$[]": 1}}), "BadValue");
    let code = |u: Document, f: &[Document]| Update::parse(&u, f).unwrap_err().code_name();
    assert_eq!(code(doc! {"$set": {"a.$[x]": 1}}, &[]), "BadValue");
    assert_eq!(
        code(doc! {"$set": {"a": 1}}, &[doc! {"x": 1}]),
        "FailedToParse"
    );
    assert_eq!(
        code(doc! {"$set": {"a.$[X]": 1}}, &[doc! {"X": 1}]),
        "BadValue"
    );
}

#[test]
fn conflicting_paths() {
    let code = |u: Document| Update::parse(&u, &[]).unwrap_err().code_name();
    assert_eq!(
        code(doc! {"$set": {"a": 1}, "$inc": {"a.b": 1}}),
        "ConflictingUpdateOperators"
    );
    assert_eq!(
        code(doc! {"$set": {"a.b": 1}, "$inc": {"a": 1}}),
        "ConflictingUpdateOperators"
    );
    assert_eq!(
        code(doc! {"$set": {"a": 1}, "$unset": {"a": 1}}),
        "ConflictingUpdateOperators"
    );
    assert_eq!(
        code(doc! {"$set": {"a.$[]": 1, "a.b": 1}}),
        "ConflictingUpdateOperators"
    );
    assert!(Update::parse(&doc! {"$set": {"a.b": 1, "a.c": 1}}, &[]).is_ok());
    // A positional and an index that turn out to be the same element.
    let c = ctx().with_query(&doc! {"a": 1}).unwrap();
    let u = Update::parse(&doc! {"$set": {"a.$": 5, "a.0": 6}}, &[]).unwrap();
    assert_eq!(
        u.apply(&doc! {"a": [1, 2]}, &c).unwrap_err().code_name(),
        "ConflictingUpdateOperators"
    );
}

#[test]
fn malformed_updates() {
    let code = |u: Document| Update::parse(&u, &[]).unwrap_err().code_name();
    assert_eq!(code(doc! {"$foo": {"a": 1}}), "FailedToParse");
    assert_eq!(code(doc! {"$set": {"a": 1}, "b": 2}), "FailedToParse");
    assert_eq!(code(doc! {"$set": 1}), "FailedToParse");
    assert_eq!(
        code(doc! {"a": 1, "$set": {"b": 2}}),
        "DollarPrefixedFieldName"
    );
    assert_eq!(code(doc! {"$set": {"a..b": 1}}), "EmptyFieldName");
    assert_eq!(code(doc! {"$set": {"": 1}}), "EmptyFieldName");
    // Dollar-prefixed names (MongoDB 5.0+): refused at the top level of a stored document,
    // accepted below it and by an upsert's insert; DBRef fields must form DBRefs.
    assert_eq!(
        err(doc! {"_id": 1}, doc! {"$set": {"$a": 1}}),
        "DollarPrefixedFieldName"
    );
    assert_eq!(
        ok(doc! {}, doc! {"$set": {"a.$b": 1}}),
        doc! {"a": {"$b": 1}}
    );
    assert_eq!(
        ok(doc! {}, doc! {"$set": {"a": {"$b": 1}}}),
        doc! {"a": {"$b": 1}}
    );
    let u = Update::parse(&doc! {"$set": {"$a": 1}}, &[]).unwrap();
    assert_eq!(
        u.upsert(&doc! {}, &ctx()).unwrap(),
        doc! {"_id": 42, "$a": 1}
    );
    assert_eq!(err(doc! {}, doc! {"$set": {"$id": 1}}), "InvalidDBRef");
    assert_eq!(
        err(
            doc! {"r": {"$ref": "c", "$id": 1}},
            doc! {"$unset": {"r.$id": 1}}
        ),
        "InvalidDBRef"
    );
    assert_eq!(
        ok(
            doc! {"r": {"$ref": "c", "$id": 1}},
            doc! {"$set": {"r.$id": 2}}
        ),
        doc! {"r": {"$ref": "c", "$id": 2}}
    );
    assert_eq!(code(doc! {"$set": {"a.$.b.$": 1}}), "BadValue");
    // Empty operator documents do nothing (MongoDB 5.0+).
    let u = Update::parse(&doc! {"$set": {}}, &[]).unwrap();
    let r = u.apply(&doc! {"a": 1}, &ctx()).unwrap();
    assert_eq!((r.document, r.modified), (doc! {"a": 1}, false));
    let e = Update::parse_value(&Bson::Array(vec![]), &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotImplemented);
}

#[test]
fn id_is_immutable() {
    assert_eq!(
        err(doc! {"_id": 1}, doc! {"$set": {"_id": 2}}),
        "ImmutableField"
    );
    assert_eq!(
        err(doc! {"_id": 1}, doc! {"$unset": {"_id": 1}}),
        "ImmutableField"
    );
    assert_eq!(
        err(doc! {"_id": {"a": 1}}, doc! {"$set": {"_id.a": 2}}),
        "ImmutableField"
    );
    assert_eq!(
        ok(doc! {"_id": 1}, doc! {"$set": {"_id": 1}}),
        doc! {"_id": 1}
    );
    assert_eq!(
        err(doc! {"_id": 1}, doc! {"_id": 2, "a": 1}),
        "ImmutableField"
    );
    assert_eq!(
        err(doc! {"a": 1}, doc! {"$set": {"_id": [1]}}),
        "InvalidIdField"
    );
}

#[test]
fn replacement_keeps_the_old_id_first() {
    assert_eq!(
        ok(doc! {"_id": 1, "a": 1}, doc! {"b": 2}),
        doc! {"_id": 1, "b": 2}
    );
    assert_eq!(
        keys(&ok(doc! {"_id": 1, "a": 1}, doc! {"b": 2})),
        ["_id", "b"]
    );
    assert_eq!(
        ok(doc! {"_id": 1, "a": 1}, doc! {"b": 2, "_id": 1}),
        doc! {"b": 2, "_id": 1}
    );
    assert_eq!(ok(doc! {"_id": 1, "a": 1}, doc! {}), doc! {"_id": 1});
    assert_eq!(
        Update::parse(&doc! {"a": 1}, &[doc! {"x": 1}])
            .unwrap_err()
            .code_name(),
        "FailedToParse"
    );
}

#[test]
fn upserts_seed_from_equalities() {
    let u = Update::parse(&doc! {"$set": {"c": 1}}, &[]).unwrap();
    let out = u
        .upsert(&doc! {"b": 1, "a.x": {"$eq": 2}, "n": {"$gt": 1}}, &ctx())
        .unwrap();
    assert_eq!(out, doc! {"_id": 42, "a": {"x": 2}, "b": 1, "c": 1});
    let out = u.upsert(&doc! {"a": 1, "_id": 7}, &ctx()).unwrap();
    assert_eq!(keys(&out), ["_id", "a", "c"]);
    assert_eq!(out.get("_id"), Some(&Bson::Int32(7)));
    let u = Update::parse(&doc! {"$set": {"_id": 8}}, &[]).unwrap();
    assert_eq!(
        u.upsert(&doc! {"_id": 7}, &ctx()).unwrap_err().code_name(),
        "ImmutableField"
    );
    assert_eq!(
        u.upsert(&doc! {"a": 1}, &ctx()).unwrap(),
        doc! {"_id": 8, "a": 1}
    );
    let r = Update::parse(&doc! {"z": 1}, &[]).unwrap();
    assert_eq!(
        r.upsert(&doc! {"_id": 3, "a": 1}, &ctx()).unwrap(),
        doc! {"_id": 3, "z": 1}
    );
    assert_eq!(
        r.upsert(&doc! {"a": 1}, &ctx()).unwrap(),
        doc! {"_id": 42, "z": 1}
    );
    assert_eq!(
        u.upsert(&doc! {"a": 1, "a.b": 1}, &ctx())
            .unwrap_err()
            .code_name(),
        "NotSingleValueField"
    );
}

#[test]
fn errors_leave_the_input_untouched_and_return_nothing() {
    let d = doc! {"_id": 1, "a": "x", "b": 1};
    let u = Update::parse(&doc! {"$set": {"b": 2}, "$inc": {"a": 1}}, &[]).unwrap();
    assert!(u.apply(&d, &ctx()).is_err());
    assert_eq!(d, doc! {"_id": 1, "a": "x", "b": 1});
}

#[test]
fn huge_work_is_stopped_by_the_step_budget() {
    let each: Vec<Bson> = (0..3000).map(Bson::Int32).collect();
    let items: Vec<Bson> = (0..3000).map(|i| Bson::Int32(-i - 1)).collect();
    let u = Update::parse(&doc! {"$addToSet": {"a": {"$each": each}}}, &[]).unwrap();
    let e = u.apply(&doc! {"a": items}, &ctx()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    let e = run(doc! {"a": []}, doc! {"$set": {"a.1500001": 1}}).unwrap_err();
    assert_eq!(e.code_name(), "CannotBackfillArray");
}

fn nested(depth: usize) -> Bson {
    let mut v = Bson::Int32(1);
    for _ in 0..depth {
        v = Bson::Document(doc! {"x": v});
    }
    v
}

#[test]
fn depth_is_capped_at_every_door() {
    // The update itself.
    let e = Update::parse(&doc! {"$set": {"a": nested(150)}}, &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    // The stored document.
    let u = Update::parse(&doc! {"$set": {"b": 1}}, &[]).unwrap();
    let e = u.apply(&doc! {"a": nested(150)}, &ctx()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    // The result: a deep path holding a deep value.
    let path = vec!["p"; 60].join(".");
    let u = Update::parse(&doc! {"$set": {path: nested(60)}}, &[]).unwrap();
    let e = u.apply(&doc! {}, &ctx()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    // The upsert's query.
    let e = u.upsert(&doc! {"a": nested(150)}, &ctx()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
}

#[test]
fn error_codes_are_mongodb_numbers() {
    let e = Update::parse(&doc! {"$set": {"a": 1}, "$inc": {"a.b": 1}}, &[]).unwrap_err();
    assert_eq!(
        (e.code_name(), e.code()),
        ("ConflictingUpdateOperators", Some(40))
    );
    assert!(
        e.message().contains("would create a conflict at 'a'"),
        "{}",
        e.message()
    );
    let e = run(doc! {"_id": 1, "a": "x"}, doc! {"$inc": {"a": 1}}).unwrap_err();
    assert_eq!(e.code(), Some(14));
    assert!(
        e.to_string()
            .starts_with("TypeMismatch (14): Cannot apply $inc"),
        "{e}"
    );
    assert_eq!(ErrorKind::LimitExceeded.code(), None);
}

#[test]
fn compiled_updates_are_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Update>();
    shareable::<UpdateContext>();
    let u = std::sync::Arc::new(Update::parse(&doc! {"$inc": {"n": 1}}, &[]).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let u = std::sync::Arc::clone(&u);
            std::thread::spawn(move || u.apply(&doc! {"n": i}, &ctx()).unwrap().document)
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), doc! {"n": i as i32 + 1});
    }
}

#[test]
fn targets_are_the_paths_written_to_a_stored_document() {
    let dotted = |u: Document, filters: &[Document]| -> Vec<String> {
        Update::parse(&u, filters)
            .unwrap()
            .targets()
            .iter()
            .map(|path| {
                path.iter()
                    .map(|p| match p {
                        TargetPart::Name(n) => n.clone(),
                        TargetPart::Element => "*".to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect()
    };
    // Operators, in MongoDB's order; both ends of a rename; not $setOnInsert.
    assert_eq!(
        dotted(
            doc! {"$set": {"b": 1, "a.0": 2}, "$rename": {"c": "d"}, "$setOnInsert": {"e": 1}},
            &[]
        ),
        ["a.0", "b", "c", "d"]
    );
    // Positional, all-elements and filtered elements are elements.
    assert_eq!(
        dotted(
            doc! {"$set": {"a.$.x": 1, "b.$[].y": 1, "c.$[i].z": 1}},
            &[doc! {"i.z": 1}]
        ),
        ["a.*.x", "b.*.y", "c.*.z"]
    );
    // A replacement names its top-level fields.
    assert_eq!(dotted(doc! {"_id": 1, "t": {"u": 1}}, &[]), ["_id", "t"]);
    assert!(dotted(doc! {"$setOnInsert": {"x": 1}}, &[]).is_empty());
}
