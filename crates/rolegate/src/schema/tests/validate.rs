//! Validating documents against App Services schemas: one test per keyword (no `validate`
//! expressions here; see `schema_expressions.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions"
)]

use crate::context::RequestContext;
use crate::error::{Diagnostics, Place};
use crate::schema::{Schema, SchemaOptions, SchemaViolation};
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Decimal128, Document, Timestamp, doc, oid::ObjectId};
use serde_json::{Value, json};

fn schema(json: Value) -> Schema {
    let mut diags = Diagnostics::default();
    let schema = Schema::parse(&json, &Place::file("schema.json"), &mut diags);
    assert!(!diags.has_errors(), "{diags:?}");
    schema
}

fn check(schema: &Schema, post: Document) -> Result<(), SchemaViolation> {
    schema.validate(&post, None, &RequestContext::default())
}

/// Asserts a violation at `path` and returns its message.
fn rejects(schema: &Schema, post: Document, path: &str) -> String {
    let violation = check(schema, post.clone()).expect_err(&format!("{post} should fail"));
    assert_eq!(violation.path, path, "{violation}");
    violation.message
}

fn field(field_schema: Value) -> Schema {
    schema(json!({ "bsonType": "object", "properties": { "x": field_schema } }))
}

fn samples() -> Vec<(&'static str, Bson)> {
    vec![
        ("double", Bson::Double(1.5)),
        ("string", Bson::String("s".into())),
        ("object", Bson::Document(doc! { "a": 1 })),
        ("array", Bson::Array(vec![Bson::Int32(1)])),
        ("objectId", Bson::ObjectId(ObjectId::new())),
        ("date", Bson::DateTime(bson::DateTime::from_millis(0))),
        ("bool", Bson::Boolean(true)),
        ("null", Bson::Null),
        (
            "regex",
            Bson::RegularExpression(bson::Regex {
                pattern: "a".into(),
                options: String::new(),
            }),
        ),
        ("int", Bson::Int32(1)),
        (
            "timestamp",
            Bson::Timestamp(Timestamp {
                time: 1,
                increment: 1,
            }),
        ),
        ("long", Bson::Int64(1)),
        (
            "decimal",
            Bson::Decimal128("1.5".parse::<Decimal128>().unwrap()),
        ),
        (
            "uuid",
            Bson::Binary(Binary {
                subtype: BinarySubtype::Uuid,
                bytes: vec![0; 16],
            }),
        ),
        (
            "binData",
            Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: vec![1, 2],
            }),
        ),
    ]
}

#[test]
fn each_bson_type_matches_only_its_values() {
    for (name, _) in samples() {
        let s = field(json!({ "bsonType": name }));
        for (value_type, value) in samples() {
            let expected = value_type == name || (name == "binData" && value_type == "uuid");
            let result = check(&s, doc! { "x": value.clone() });
            assert_eq!(
                result.is_ok(),
                expected,
                "bsonType {name} vs {value_type}: {result:?}"
            );
        }
    }
}

#[test]
fn number_and_mixed_types() {
    let number = field(json!({ "bsonType": "number" }));
    let mixed = field(json!({ "bsonType": "mixed" }));
    for (name, value) in samples() {
        let numeric = matches!(name, "double" | "int" | "long" | "decimal");
        assert_eq!(
            check(&number, doc! { "x": value.clone() }).is_ok(),
            numeric,
            "{name}"
        );
        assert_eq!(check(&mixed, doc! { "x": value }), Ok(()), "{name}");
    }
}

#[test]
fn json_type_keyword() {
    let cases = [
        ("object", "object"),
        ("array", "array"),
        ("boolean", "bool"),
        ("string", "string"),
        ("null", "null"),
    ];
    for (json_type, bson_type) in cases {
        let s = field(json!({ "type": json_type }));
        for (value_type, value) in samples() {
            assert_eq!(
                check(&s, doc! { "x": value }).is_ok(),
                value_type == bson_type,
                "type {json_type} vs {value_type}"
            );
        }
    }
    let s = field(json!({ "type": "number" }));
    assert_eq!(check(&s, doc! { "x": 1_i64 }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "x": "1" }, "x"),
        "`type` requires `number`, found `string`"
    );
}

#[test]
fn type_lists_and_both_keywords() {
    let s = field(json!({ "bsonType": ["string", "int"] }));
    assert_eq!(check(&s, doc! { "x": "a" }), Ok(()));
    assert_eq!(check(&s, doc! { "x": 1 }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "x": 1.5 }, "x"),
        "`bsonType` requires one of `string`, `int`, found `double`"
    );
    let mut diags = Diagnostics::default();
    let both = Schema::parse(
        &json!({ "properties": { "x": { "bsonType": "int", "type": "number" } } }),
        &Place::default(),
        &mut diags,
    );
    assert_eq!(check(&both, doc! { "x": 1 }), Ok(()));
    assert!(check(&both, doc! { "x": 1.5 }).is_err());
}

#[test]
fn wrong_type_message_names_the_field() {
    let s = field(json!({ "bsonType": "string" }));
    let violation = check(&s, doc! { "x": 42 }).unwrap_err();
    assert_eq!(
        violation,
        SchemaViolation {
            path: "x".into(),
            message: "`bsonType` requires `string`, found `int`".into()
        }
    );
    assert_eq!(
        violation.to_string(),
        "field `x`: `bsonType` requires `string`, found `int`"
    );
}

#[test]
fn enum_keyword() {
    let s = field(json!({ "enum": ["a", { "$numberLong": "3" }, { "k": 1 }, null] }));
    assert_eq!(check(&s, doc! { "x": "a" }), Ok(()));
    assert_eq!(check(&s, doc! { "x": 3_i64 }), Ok(()));
    assert_eq!(check(&s, doc! { "x": { "k": 1 } }), Ok(()));
    assert_eq!(check(&s, doc! { "x": Bson::Null }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "x": "b" }, "x"),
        "value is not one of the `enum` values"
    );
    // An ObjectId never equals its hex string.
    let oid = ObjectId::new();
    let s = field(json!({ "enum": [{ "$oid": oid.to_hex() }] }));
    assert_eq!(check(&s, doc! { "x": oid }), Ok(()));
    assert!(check(&s, doc! { "x": oid.to_hex() }).is_err());
}

#[test]
fn enum_compares_numbers_across_types() {
    let s = field(json!({ "enum": [1, 2.5] }));
    assert_eq!(check(&s, doc! { "x": 1_i64 }), Ok(()));
    assert_eq!(check(&s, doc! { "x": 1.0 }), Ok(()));
    assert_eq!(check(&s, doc! { "x": 2.5 }), Ok(()));
    assert!(check(&s, doc! { "x": 2 }).is_err());
}

#[test]
fn root_enum_and_type() {
    let s = schema(json!({ "bsonType": "object", "enum": [{ "_id": 1 }] }));
    assert_eq!(check(&s, doc! { "_id": 1 }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "_id": 2 }, ""),
        "value is not one of the `enum` values"
    );
    let violation = check(&s, doc! { "_id": 2 }).unwrap_err();
    assert_eq!(
        violation.to_string(),
        "document: value is not one of the `enum` values"
    );
}

#[test]
fn metadata_keywords_do_not_validate() {
    let s = schema(
        json!({ "title": "t", "description": "d", "properties": { "x": { "title": "x" } } }),
    );
    assert_eq!(check(&s, doc! { "x": 1, "y": "z" }), Ok(()));
}

#[test]
fn required_keyword() {
    let s = schema(json!({
        "bsonType": "object",
        "required": ["name"],
        "properties": { "a": { "bsonType": "object", "required": ["b"] } }
    }));
    assert_eq!(check(&s, doc! { "name": "n" }), Ok(()));
    assert_eq!(rejects(&s, doc! {}, "name"), "required field is missing");
    assert_eq!(
        rejects(&s, doc! { "name": "n", "a": { "c": 1 } }, "a.b"),
        "required field is missing"
    );
}

#[test]
fn properties_validate_present_fields_only() {
    let s = schema(json!({
        "properties": {
            "a": { "bsonType": "object", "properties": { "b": { "bsonType": "int" } } }
        }
    }));
    assert_eq!(check(&s, doc! {}), Ok(()));
    assert_eq!(check(&s, doc! { "a": {} }), Ok(()));
    assert_eq!(check(&s, doc! { "a": { "b": 1 }, "other": "x" }), Ok(()));
    rejects(&s, doc! { "a": { "b": "1" } }, "a.b");
}

#[test]
fn min_and_max_properties() {
    let s = field(json!({ "bsonType": "object", "minProperties": 1, "maxProperties": 2 }));
    assert_eq!(check(&s, doc! { "x": { "a": 1 } }), Ok(()));
    assert_eq!(check(&s, doc! { "x": { "a": 1, "b": 2 } }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "x": {} }, "x"),
        "object has 0 fields, fewer than `minProperties` 1"
    );
    assert_eq!(
        rejects(&s, doc! { "x": { "a": 1, "b": 2, "c": 3 } }, "x"),
        "object has 3 fields, more than `maxProperties` 2"
    );
}

#[test]
fn pattern_properties() {
    let s = schema(json!({
        "patternProperties": { "^n_": { "bsonType": "int" }, "_s$": { "bsonType": "string" } }
    }));
    assert_eq!(
        check(&s, doc! { "n_a": 1, "b_s": "x", "other": true }),
        Ok(())
    );
    rejects(&s, doc! { "n_a": "1" }, "n_a");
    // A key matching two patterns must satisfy both.
    rejects(&s, doc! { "n_s": 1 }, "n_s");
}

#[test]
fn additional_properties_false() {
    let s = schema(json!({
        "bsonType": "object",
        "properties": { "_id": {}, "a": {} },
        "patternProperties": { "^x": {} },
        "additionalProperties": false
    }));
    assert_eq!(check(&s, doc! { "_id": 1, "a": 2, "xy": 3 }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "_id": 1, "b": 2 }, "b"),
        "field is not allowed (`additionalProperties` is false)"
    );
}

#[test]
fn additional_properties_schema_makes_a_dictionary() {
    let s = field(json!({ "bsonType": "object", "additionalProperties": { "bsonType": "int" } }));
    assert_eq!(check(&s, doc! { "x": { "a": 1, "b": 2 } }), Ok(()));
    rejects(&s, doc! { "x": { "a": 1, "b": "2" } }, "x.b");
    let s = schema(json!({ "additionalProperties": true }));
    assert_eq!(check(&s, doc! { "anything": 1 }), Ok(()));
}

#[test]
fn dependencies_fields_and_schema() {
    let s = schema(json!({
        "dependencies": {
            "card": ["billing", "zip"],
            "vip": { "required": ["level"], "properties": { "level": { "bsonType": "int" } } }
        }
    }));
    assert_eq!(check(&s, doc! {}), Ok(()));
    assert_eq!(
        check(&s, doc! { "card": 1, "billing": 2, "zip": 3 }),
        Ok(())
    );
    assert_eq!(
        rejects(&s, doc! { "card": 1, "billing": 2 }, "zip"),
        "required when `card` is present (`dependencies`)"
    );
    assert_eq!(check(&s, doc! { "vip": true, "level": 2 }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "vip": true }, "level"),
        "required field is missing"
    );
    rejects(&s, doc! { "vip": true, "level": "high" }, "level");
    // Without the trigger field, the dependency schema does not apply.
    assert_eq!(check(&s, doc! { "level": "high" }), Ok(()));
}

#[test]
fn items_single_schema() {
    let s = field(json!({ "bsonType": "array", "items": { "bsonType": "string" } }));
    assert_eq!(check(&s, doc! { "x": ["a", "b"] }), Ok(()));
    assert_eq!(check(&s, doc! { "x": [] }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "x": ["a", 2] }, "x.1"),
        "`bsonType` requires `string`, found `int`"
    );
}

#[test]
fn items_tuple_and_additional_items() {
    let tuple = json!([{ "bsonType": "int" }, { "bsonType": "string" }]);
    let open = field(json!({ "bsonType": "array", "items": tuple }));
    assert_eq!(check(&open, doc! { "x": [1, "a", true] }), Ok(()));
    assert_eq!(check(&open, doc! { "x": [1] }), Ok(()));
    rejects(&open, doc! { "x": ["a", "a"] }, "x.0");

    let closed = field(json!({ "bsonType": "array", "items": tuple, "additionalItems": false }));
    assert_eq!(check(&closed, doc! { "x": [1, "a"] }), Ok(()));
    assert_eq!(
        rejects(&closed, doc! { "x": [1, "a", true] }, "x.2"),
        "item is not allowed (`additionalItems` is false)"
    );

    let typed = field(json!({ "items": tuple, "additionalItems": { "bsonType": "bool" } }));
    assert_eq!(check(&typed, doc! { "x": [1, "a", true, false] }), Ok(()));
    rejects(&typed, doc! { "x": [1, "a", true, 3] }, "x.3");
}

#[test]
fn min_and_max_items() {
    let s = field(json!({ "bsonType": "array", "minItems": 1, "maxItems": 2 }));
    assert_eq!(check(&s, doc! { "x": [1] }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "x": [] }, "x"),
        "array has 0 items, fewer than `minItems` 1"
    );
    assert_eq!(
        rejects(&s, doc! { "x": [1, 2, 3] }, "x"),
        "array has 3 items, more than `maxItems` 2"
    );
}

#[test]
fn unique_items() {
    let s = field(json!({ "bsonType": "array", "uniqueItems": true }));
    assert_eq!(
        check(
            &s,
            doc! { "x": [1, 2, "1", { "a": 1 }, { "a": 2 }, [1], [2]] }
        ),
        Ok(())
    );
    assert_eq!(
        rejects(&s, doc! { "x": [1, 2, 3, 2] }, "x"),
        "items 1 and 3 are equal (`uniqueItems`)"
    );
    rejects(&s, doc! { "x": [{ "a": [1, 2] }, { "a": [1, 2] }] }, "x");
    rejects(&s, doc! { "x": [Bson::Null, Bson::Null] }, "x");
    let off = field(json!({ "bsonType": "array", "uniqueItems": false }));
    assert_eq!(check(&off, doc! { "x": [1, 1] }), Ok(()));
}

#[test]
fn unique_items_compares_numbers_across_types() {
    let s = field(json!({ "bsonType": "array", "uniqueItems": true }));
    rejects(&s, doc! { "x": [1, 1.0] }, "x");
    rejects(&s, doc! { "x": [1_i64, 1] }, "x");
}

#[test]
fn unique_items_is_fast_on_large_arrays() {
    let s = field(json!({ "bsonType": "array", "uniqueItems": true }));
    let items: Vec<Bson> = (0..200_000)
        .map(|i| Bson::String(format!("item-{i}")))
        .collect();
    let started = std::time::Instant::now();
    assert_eq!(check(&s, doc! { "x": items }), Ok(()));
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn min_and_max_length_count_characters() {
    let s = field(json!({ "bsonType": "string", "minLength": 2, "maxLength": 3 }));
    assert_eq!(check(&s, doc! { "x": "ab" }), Ok(()));
    assert_eq!(check(&s, doc! { "x": "äöü" }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "x": "a" }, "x"),
        "string has 1 characters, fewer than `minLength` 2"
    );
    assert_eq!(
        rejects(&s, doc! { "x": "abcd" }, "x"),
        "string has 4 characters, more than `maxLength` 3"
    );
    // Length keywords ignore values of other types.
    assert_eq!(
        check(&field(json!({ "maxLength": 1 })), doc! { "x": 12345 }),
        Ok(())
    );
}

#[test]
fn pattern_is_unanchored() {
    let s = field(json!({ "pattern": "b+" }));
    assert_eq!(check(&s, doc! { "x": "abbc" }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "x": "ac" }, "x"),
        "string does not match `pattern` `b+`"
    );
    let anchored = field(json!({ "pattern": "^[a-z]+$" }));
    assert!(check(&anchored, doc! { "x": "ab1" }).is_err());
    assert_eq!(check(&anchored, doc! { "x": 1 }), Ok(()));
}

#[test]
fn multiple_of() {
    let s = field(json!({ "multipleOf": 3 }));
    assert_eq!(check(&s, doc! { "x": 9 }), Ok(()));
    assert_eq!(check(&s, doc! { "x": -9_i64 }), Ok(()));
    assert_eq!(check(&s, doc! { "x": 9.0 }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "x": 10 }, "x"),
        "10 is not a multiple of `multipleOf` 3"
    );
    let tenth = field(json!({ "multipleOf": 0.1 }));
    assert_eq!(check(&tenth, doc! { "x": 0.3 }), Ok(()));
    assert_eq!(check(&tenth, doc! { "x": 7 }), Ok(()));
    assert!(check(&tenth, doc! { "x": 0.35 }).is_err());
    let decimal = Bson::Decimal128("0.7".parse::<Decimal128>().unwrap());
    assert_eq!(check(&tenth, doc! { "x": decimal }), Ok(()));
}

#[test]
fn maximum_and_minimum() {
    let s = field(json!({ "minimum": 0, "maximum": 10 }));
    for ok in [Bson::Int32(0), Bson::Int64(10), Bson::Double(5.5)] {
        assert_eq!(check(&s, doc! { "x": ok.clone() }), Ok(()), "{ok}");
    }
    assert_eq!(
        rejects(&s, doc! { "x": 11 }, "x"),
        "11 is above `maximum` 10"
    );
    assert_eq!(
        rejects(&s, doc! { "x": -0.5 }, "x"),
        "-0.5 is below `minimum` 0"
    );
    assert!(check(&s, doc! { "x": f64::NAN }).is_err());
    let big = Bson::Decimal128("1E+3".parse::<Decimal128>().unwrap());
    assert!(check(&s, doc! { "x": big }).is_err());
    // Bounds ignore values of other types.
    assert_eq!(check(&s, doc! { "x": "100" }), Ok(()));
}

#[test]
fn exclusive_bounds() {
    let s = field(json!({
        "minimum": 0, "exclusiveMinimum": true, "maximum": 10, "exclusiveMaximum": true
    }));
    assert_eq!(check(&s, doc! { "x": 5 }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "x": 10 }, "x"),
        "10 is above the exclusive `maximum` 10"
    );
    assert_eq!(
        rejects(&s, doc! { "x": 0.0 }, "x"),
        "0 is below the exclusive `minimum` 0"
    );
    let inclusive = field(json!({ "maximum": 10, "exclusiveMaximum": false }));
    assert_eq!(check(&inclusive, doc! { "x": 10 }), Ok(()));
}

#[test]
fn bounds_compare_large_integers_exactly() {
    // 2^53 + 1 is not representable as a double; a lossy comparison would accept it.
    let s = field(json!({ "maximum": 9_007_199_254_740_992_u64 }));
    assert_eq!(check(&s, doc! { "x": 9_007_199_254_740_992_i64 }), Ok(()));
    assert!(check(&s, doc! { "x": 9_007_199_254_740_993_i64 }).is_err());
    let s = field(json!({ "maximum": 9_007_199_254_740_992.5 }));
    assert!(check(&s, doc! { "x": i64::MAX }).is_err());
    let s = field(json!({ "minimum": 0.5 }));
    assert!(check(&s, doc! { "x": 0 }).is_err());
    assert_eq!(check(&s, doc! { "x": 1 }), Ok(()));
}

#[test]
fn null_is_rejected_for_typed_fields_by_default() {
    let s = schema(json!({
        "bsonType": "object",
        "required": ["name"],
        "properties": {
            "name": { "bsonType": "string" },
            "nick": { "bsonType": "string", "enum": ["a"] },
            "note": { "bsonType": ["string", "null"] }
        }
    }));
    assert_eq!(check(&s, doc! { "name": "n", "note": Bson::Null }), Ok(()));
    assert_eq!(
        rejects(&s, doc! { "name": "n", "nick": Bson::Null }, "nick"),
        "`bsonType` requires `string`, found `null`"
    );
    rejects(&s, doc! { "name": Bson::Null }, "name");
}

#[test]
fn null_type_validation_accepts_null_for_optional_fields_only() {
    let s = schema(json!({
        "bsonType": "object",
        "required": ["name"],
        "properties": {
            "name": { "bsonType": "string" },
            "nick": { "bsonType": "string", "enum": ["a"] },
            "tags": { "bsonType": "array", "items": { "bsonType": "string" } },
            "inner": { "bsonType": "object", "required": ["r"],
                       "properties": { "r": { "bsonType": "int" }, "o": { "bsonType": "int" } } }
        }
    }))
    .with_options(SchemaOptions {
        null_type_validation: true,
    });
    assert_eq!(check(&s, doc! { "name": "n", "nick": Bson::Null }), Ok(()));
    assert_eq!(check(&s, doc! { "name": "n", "inner": Bson::Null }), Ok(()));
    assert_eq!(
        check(
            &s,
            doc! { "name": "n", "inner": { "r": 1, "o": Bson::Null } }
        ),
        Ok(())
    );
    // Required fields are never nullable.
    rejects(&s, doc! { "name": Bson::Null }, "name");
    rejects(
        &s,
        doc! { "name": "n", "inner": { "r": Bson::Null } },
        "inner.r",
    );
    // Array items are not fields.
    rejects(
        &s,
        doc! { "name": "n", "tags": ["a", Bson::Null] },
        "tags.1",
    );
}

#[test]
fn violations_report_the_first_problem_in_document_order() {
    let s = schema(json!({
        "properties": {
            "a": { "bsonType": "int" },
            "b": { "bsonType": "array", "items": { "properties": { "c": { "bsonType": "int" } } } }
        }
    }));
    let violation = check(&s, doc! { "b": [{ "c": 1 }, { "c": "x" }], "a": "y" }).unwrap_err();
    assert_eq!(violation.path, "b.1.c");
    assert_eq!(
        violation.to_string(),
        "field `b.1.c`: `bsonType` requires `int`, found `string`"
    );
}

#[test]
fn deeply_nested_documents_are_only_walked_as_deep_as_the_schema() {
    let s = field(json!({ "bsonType": "object" }));
    let mut nested = doc! { "leaf": 1 };
    for _ in 0..500 {
        nested = doc! { "n": nested };
    }
    assert_eq!(check(&s, doc! { "x": nested }), Ok(()));
}

#[test]
fn conformance_schema_rejects_wrong_type_even_with_write_permission() {
    // doc-cases.json `schema_rejects_wrong_type_even_with_write_permission` (schema part).
    let s = schema(json!({
        "title": "person",
        "properties": { "_id": { "bsonType": "objectId" }, "name": { "bsonType": "string" } }
    }));
    let id = ObjectId::parse_str("5ae782e48f25b9dc5c51c4d0").unwrap();
    let pre = doc! { "_id": id, "name": "Ann" };
    let post = doc! { "_id": id, "name": 42 };
    let violation = s
        .validate(&post, Some(&pre), &RequestContext::default())
        .unwrap_err();
    assert_eq!(violation.path, "name");
    assert_eq!(
        violation.message,
        "`bsonType` requires `string`, found `int`"
    );
    assert_eq!(s.validate(&pre, None, &RequestContext::default()), Ok(()));
}
