//! Loading App Services schemas: diagnostics for invalid, unknown and unsupported keywords.

use crate::context::RequestContext;
use crate::error::{Diagnostics, Place, Severity};
use crate::schema::{Schema, SchemaOptions};
use bson::doc;
use serde_json::{Value, json};

fn parse(json: Value) -> (Schema, Diagnostics) {
    let mut diags = Diagnostics::default();
    let schema = Schema::parse(&json, &Place::file("schema.json"), &mut diags);
    (schema, diags)
}

fn codes(diags: &Diagnostics, severity: Severity) -> Vec<(&'static str, String)> {
    diags
        .0
        .iter()
        .filter(|d| d.severity == severity)
        .map(|d| (d.code, d.place.json_path.clone()))
        .collect()
}

#[test]
fn schema_is_debug_clone_partialeq_send_sync() {
    fn assert_traits<T: std::fmt::Debug + Clone + PartialEq + Send + Sync + 'static>() {}
    assert_traits::<Schema>();
    assert_traits::<crate::schema::SchemaViolation>();
}

#[test]
fn full_keyword_set_parses_cleanly() {
    let (schema, diags) = parse(json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "person",
        "description": "a person",
        "bsonType": "object",
        "required": ["_id", "name"],
        "minProperties": 1,
        "maxProperties": 20,
        "properties": {
            "_id": { "bsonType": "objectId" },
            "name": { "bsonType": "string", "minLength": 1, "maxLength": 50, "pattern": "^[A-Z]" },
            "age": { "bsonType": ["int", "long"], "minimum": 0, "maximum": 150,
                     "exclusiveMaximum": true, "exclusiveMinimum": false, "multipleOf": 1 },
            "score": { "type": "number" },
            "kind": { "enum": ["a", "b", { "$numberLong": "3" }] },
            "tags": { "bsonType": "array", "items": { "bsonType": "string" },
                      "minItems": 0, "maxItems": 5, "uniqueItems": true },
            "pair": { "bsonType": "array", "items": [{ "bsonType": "int" }, { "bsonType": "string" }],
                      "additionalItems": false },
            "meta": { "bsonType": "object", "additionalProperties": { "bsonType": "string" } },
            "flags": { "type": "object", "patternProperties": { "^f_": { "type": "boolean" } },
                       "additionalProperties": false }
        },
        "dependencies": { "card": ["billing"], "vip": { "required": ["level"] } }
    }));
    assert!(diags.0.is_empty(), "{diags:?}");
    assert_eq!(schema.title(), Some("person"));
    assert_eq!(schema.options(), SchemaOptions::default());
}

#[test]
fn root_without_type_but_with_properties_is_accepted() {
    let (_, diags) =
        parse(json!({ "title": "person", "properties": { "name": { "bsonType": "string" } } }));
    assert!(diags.0.is_empty(), "{diags:?}");
    let (_, diags) = parse(json!({}));
    assert!(diags.0.is_empty(), "{diags:?}");
}

#[test]
fn root_of_another_type_is_an_error() {
    for root in [
        json!({ "bsonType": "string" }),
        json!({ "bsonType": ["object", "null"] }),
        json!({ "type": "array" }),
        json!({ "bsonType": "mixed" }),
    ] {
        let (_, diags) = parse(root.clone());
        let errors: Vec<_> = diags.errors().collect();
        assert_eq!(errors.len(), 1, "{root}: {diags:?}");
        assert_eq!(
            errors[0].message,
            "root schema must be an object schema (`bsonType: \"object\"`)"
        );
    }
    let (_, diags) = parse(json!({ "type": "object" }));
    assert!(!diags.has_errors());
}

#[test]
fn schema_that_is_not_an_object_is_an_error() {
    let (schema, diags) = parse(json!(["object"]));
    assert_eq!(
        codes(&diags, Severity::Error),
        [("invalid-schema", String::new())]
    );
    assert!(
        schema
            .validate(&doc! {}, None, &RequestContext::default())
            .is_err()
    );
}

#[test]
fn unknown_keyword_warns_with_hint() {
    let (_, diags) = parse(json!({
        "bsonType": "object",
        "properties": { "name": { "bsonTyp": "string", "maxLenght": 3, "zzzzzz": 1 } }
    }));
    assert!(!diags.has_errors());
    let warnings: Vec<_> = diags.warnings().collect();
    assert_eq!(warnings.len(), 3);
    assert_eq!(warnings[0].code, "unknown-key");
    assert_eq!(warnings[0].place.json_path, "properties.name.bsonTyp");
    assert_eq!(
        warnings[0].message,
        "unknown schema keyword `bsonTyp` is ignored"
    );
    assert_eq!(
        warnings[0].hint.as_deref(),
        Some("did you mean `bsonType`?")
    );
    assert_eq!(
        warnings[1].hint.as_deref(),
        Some("did you mean `maxLength`?")
    );
    assert_eq!(warnings[2].hint, None);
}

#[test]
fn unsupported_json_schema_keywords_warn() {
    let (_, diags) = parse(json!({
        "bsonType": "object",
        "anyOf": [{ "required": ["a"] }],
        "properties": { "a": { "$ref": "#/definitions/x", "format": "email" } }
    }));
    assert!(!diags.has_errors());
    assert_eq!(
        codes(&diags, Severity::Warning),
        [
            ("unsupported-keyword", "anyOf".to_string()),
            ("unsupported-keyword", "properties.a[\"$ref\"]".to_string()),
            ("unsupported-keyword", "properties.a.format".to_string()),
        ]
    );
}

#[test]
fn unknown_type_names_are_errors_with_hints() {
    let (_, diags) = parse(json!({
        "bsonType": "object",
        "properties": {
            "a": { "bsonType": "strin" },
            "b": { "type": "integer" },
            "c": { "bsonType": ["int", "objectID"] },
            "d": { "type": "bool" },
            "e": { "bsonType": [] },
            "f": { "bsonType": 3 }
        }
    }));
    let errors: Vec<_> = diags.errors().collect();
    let summary: Vec<_> = errors
        .iter()
        .map(|e| (e.place.json_path.as_str(), e.hint.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("properties.a.bsonType", Some("did you mean `string`?")),
            (
                "properties.b.type",
                Some("use `bsonType: \"int\"` or `\"long\"`")
            ),
            ("properties.c.bsonType[1]", Some("did you mean `objectId`?")),
            (
                "properties.d.type",
                Some("`bool` is a `bsonType` name: use `bsonType: \"bool\"`")
            ),
            ("properties.e.bsonType", None),
            ("properties.f.bsonType", None),
        ]
    );
    assert_eq!(errors[0].message, "unknown type `strin`");
}

#[test]
fn deployed_bson_type_aliases_load_with_a_warning() {
    let (schema, diags) = parse(json!({
        "bsonType": "object",
        "properties": { "done": { "bsonType": "boolean" }, "ratio": { "bsonType": "float" } }
    }));
    assert!(!diags.has_errors(), "{diags:?}");
    let warnings: Vec<_> = diags
        .warnings()
        .map(|w| (w.code, w.place.json_path.as_str(), w.hint.as_deref()))
        .collect();
    assert_eq!(
        warnings,
        [
            (
                "bson-type-alias",
                "properties.done.bsonType",
                Some("write `bool`")
            ),
            (
                "bson-type-alias",
                "properties.ratio.bsonType",
                Some("write `double`")
            ),
        ]
    );
    let ctx = crate::context::RequestContext::default();
    assert!(
        schema
            .validate(&bson::doc! {"done": true, "ratio": 0.5}, None, &ctx)
            .is_ok()
    );
    assert!(
        schema
            .validate(&bson::doc! {"done": 1}, None, &ctx)
            .is_err()
    );
    assert!(
        schema
            .validate(&bson::doc! {"ratio": "x"}, None, &ctx)
            .is_err()
    );
}

#[test]
fn every_bson_type_name_is_known() {
    for name in [
        "double",
        "string",
        "object",
        "array",
        "objectId",
        "date",
        "bool",
        "null",
        "regex",
        "int",
        "timestamp",
        "long",
        "decimal",
        "uuid",
        "binData",
        "mixed",
        "number",
    ] {
        let (_, diags) = parse(json!({ "properties": { "x": { "bsonType": name } } }));
        assert!(diags.0.is_empty(), "{name}: {diags:?}");
    }
    for name in ["object", "array", "number", "boolean", "string", "null"] {
        let (_, diags) = parse(json!({ "properties": { "x": { "type": name } } }));
        assert!(diags.0.is_empty(), "{name}: {diags:?}");
    }
}

#[test]
fn wrong_keyword_types_are_all_reported() {
    let (schema, diags) = parse(json!({
        "bsonType": "object",
        "required": "name",
        "title": 3,
        "minProperties": -1,
        "properties": {
            "a": { "maxLength": 1.5, "pattern": 7, "uniqueItems": "yes" },
            "b": { "minimum": "0", "exclusiveMinimum": 1, "multipleOf": 0 },
            "c": "string",
            "d": { "enum": "x", "items": 3, "additionalProperties": "no" },
            "e": { "enum": [] },
            "f": { "required": ["x", 1] }
        },
        "patternProperties": [],
        "dependencies": { "x": "y" }
    }));
    let paths: Vec<_> = diags.errors().map(|e| e.place.json_path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "required",
            "title",
            "minProperties",
            "properties.a.maxLength",
            "properties.a.pattern",
            "properties.a.uniqueItems",
            "properties.b.minimum",
            "properties.b.multipleOf",
            "properties.b.exclusiveMinimum",
            "properties.c",
            "properties.d.enum",
            "properties.d.items",
            "properties.d.additionalProperties",
            "properties.e.enum",
            "properties.f.required[1]",
            "patternProperties",
            "dependencies.x",
        ]
    );
    // A schema with errors fails closed.
    let violation = schema
        .validate(&doc! { "name": "x" }, None, &RequestContext::default())
        .unwrap_err();
    assert_eq!(violation.message, "the collection schema is invalid");
}

#[test]
fn invalid_regexes_and_extended_json_are_errors() {
    let (_, diags) = parse(json!({
        "properties": {
            "a": { "pattern": "(" },
            "b": { "enum": [{ "$oid": "nothex" }] }
        },
        "patternProperties": { "[": {} }
    }));
    assert_eq!(
        codes(&diags, Severity::Error),
        [
            ("invalid-regex", "properties.a.pattern".to_string()),
            ("invalid-schema", "properties.b.enum[0]".to_string()),
            ("invalid-regex", "patternProperties[\"[\"]".to_string()),
        ]
    );
}

#[test]
fn ineffective_keywords_warn() {
    let (_, diags) = parse(json!({
        "properties": {
            "a": { "bsonType": "array", "items": { "bsonType": "int" }, "additionalItems": false },
            "b": { "exclusiveMaximum": true },
            "c": { "bsonType": "string", "type": "string" }
        }
    }));
    assert!(!diags.has_errors());
    assert_eq!(
        codes(&diags, Severity::Warning),
        [
            (
                "ineffective-keyword",
                "properties.a.additionalItems".to_string()
            ),
            (
                "ineffective-keyword",
                "properties.b.exclusiveMaximum".to_string()
            ),
            ("ineffective-keyword", "properties.c.type".to_string()),
        ]
    );
}

/// `levels` object schemas wrapped around `leaf` (moved, not re-serialized: `json!` would
/// serialize the nested value recursively).
fn nest(leaf: Value, levels: usize) -> Value {
    let mut nested = leaf;
    for _ in 0..levels {
        let mut properties = serde_json::Map::new();
        properties.insert("a".into(), nested);
        let mut node = serde_json::Map::new();
        node.insert("bsonType".into(), json!("object"));
        node.insert("properties".into(), Value::Object(properties));
        nested = Value::Object(node);
    }
    nested
}

#[test]
fn nesting_depth_is_capped() {
    let (schema, diags) = parse(nest(json!({ "bsonType": "int" }), 1000));
    let errors: Vec<_> = diags.errors().collect();
    assert_eq!(errors.len(), 1, "{:?}", errors.first());
    assert_eq!(errors[0].code, "schema-too-deep");
    assert_eq!(
        errors[0].message,
        "schema is nested more than 64 levels deep"
    );
    assert!(
        schema
            .validate(&doc! {}, None, &RequestContext::default())
            .is_err()
    );

    let (_, diags) = parse(nest(json!({ "bsonType": "int" }), 64));
    assert!(diags.0.is_empty(), "{diags:?}");
}

#[test]
fn options_are_kept() {
    let options = SchemaOptions {
        null_type_validation: true,
    };
    let mut diags = Diagnostics::default();
    let schema = Schema::parse_with_options(&json!({}), options, &Place::default(), &mut diags);
    assert_eq!(schema.options(), options);
    let schema = schema.with_options(SchemaOptions::default());
    assert_eq!(schema.options(), SchemaOptions::default());
    assert_eq!(
        Schema::default().validate(&doc! { "a": 1 }, None, &RequestContext::default()),
        Ok(())
    );
}
