//! Schema `validate` expressions: bindings of `%%this`/`%%prev`/`%%root`/`%%prevRoot`, removed
//! fields, failures (fail closed), and the documented set-once `owner_id` example.

use crate::context::RequestContext;
use crate::error::{Diagnostics, Place};
use crate::schema::{Schema, SchemaViolation};
use bson::{Bson, Document, doc};
use serde_json::{Value, json};

fn schema(json: Value) -> Schema {
    let mut diags = Diagnostics::default();
    let schema = Schema::parse(&json, &Place::file("schema.json"), &mut diags);
    assert!(!diags.has_errors(), "{diags:?}");
    schema
}

fn check(schema: &Schema, post: Document, pre: Option<Document>) -> Result<(), SchemaViolation> {
    schema.validate(&post, pre.as_ref(), &RequestContext::default())
}

fn set_once() -> Schema {
    // doc-cases.json `schema_validate_owner_id_set_once`.
    schema(json!({
        "bsonType": "object",
        "properties": {
            "owner_id": {
                "bsonType": "string",
                "validate": {
                    "%or": [
                        { "%%prev": { "%exists": false } },
                        { "%%prev": "%%this" }
                    ]
                }
            }
        }
    }))
}

#[test]
fn conformance_schema_validate_owner_id_set_once() {
    let s = set_once();
    let pre = doc! { "_id": 1, "owner_id": "5f4863e4d49bd2191ff1e623" };
    let post = doc! { "_id": 1, "owner_id": "5f48640dd49bd2191ff1e624" };
    let violation = check(&s, post, Some(pre)).unwrap_err();
    assert_eq!(violation.path, "owner_id");
    assert_eq!(
        violation.message,
        "`validate` expression evaluated to false"
    );
}

#[test]
fn set_once_allows_first_set_and_unchanged_value() {
    let s = set_once();
    // Insert: no pre-image.
    assert_eq!(check(&s, doc! { "_id": 1, "owner_id": "a" }, None), Ok(()));
    // Update that sets the field for the first time.
    assert_eq!(
        check(
            &s,
            doc! { "_id": 1, "owner_id": "a" },
            Some(doc! { "_id": 1 })
        ),
        Ok(())
    );
    // Update of another field.
    assert_eq!(
        check(
            &s,
            doc! { "_id": 1, "owner_id": "a", "n": 2 },
            Some(doc! { "_id": 1, "owner_id": "a", "n": 1 })
        ),
        Ok(())
    );
}

#[test]
fn removing_a_validated_field_runs_its_validate() {
    let s = set_once();
    // `%%this` is absent, `%%prev` is "a": neither branch holds.
    let violation = check(
        &s,
        doc! { "_id": 1 },
        Some(doc! { "_id": 1, "owner_id": "a" }),
    )
    .unwrap_err();
    assert_eq!(violation.path, "owner_id");
    // Absent from both images: not validated.
    assert_eq!(
        check(&s, doc! { "_id": 1 }, Some(doc! { "_id": 1 })),
        Ok(())
    );
    assert_eq!(check(&s, doc! { "_id": 1 }, None), Ok(()));
}

#[test]
fn removing_the_parent_of_a_validated_field_runs_its_validate() {
    let s = schema(json!({
        "properties": {
            "meta": {
                "properties": {
                    "owner": { "validate": { "%%prev": { "%exists": false } } }
                }
            },
            "list": {
                "bsonType": "array",
                "items": { "validate": { "%%prev": { "%exists": false } } }
            }
        }
    }));
    let pre = doc! { "meta": { "owner": "a" } };
    let violation = check(&s, doc! {}, Some(pre.clone())).unwrap_err();
    assert_eq!(violation.path, "meta.owner");
    let violation = check(&s, doc! { "meta": "flat" }, Some(pre)).unwrap_err();
    assert_eq!(violation.path, "meta.owner");
    let violation = check(&s, doc! { "list": [] }, Some(doc! { "list": [1] })).unwrap_err();
    assert_eq!(violation.path, "list.0");
    // Appending is fine (no `%%prev` at the new position).
    assert_eq!(
        check(&s, doc! { "list": [1] }, Some(doc! { "list": [] })),
        Ok(())
    );
}

#[test]
fn root_validate_binds_whole_documents() {
    let s = schema(json!({
        "bsonType": "object",
        "validate": { "%%this.version": { "$gt": "%%prev.version" } }
    }));
    assert_eq!(
        check(&s, doc! { "version": 2 }, Some(doc! { "version": 1 })),
        Ok(())
    );
    let violation = check(&s, doc! { "version": 1 }, Some(doc! { "version": 1 })).unwrap_err();
    assert_eq!(violation.path, "");
    assert_eq!(
        violation.to_string(),
        "document: `validate` expression evaluated to false"
    );
}

#[test]
fn validate_sees_root_and_prev_root() {
    let s = schema(json!({
        "properties": {
            "status": {
                "validate": {
                    "%or": [
                        { "%%this": "open" },
                        { "%%root.closed_by": { "%exists": true } }
                    ]
                }
            },
            "created": {
                "validate": { "%%prevRoot.created": { "%exists": false } }
            }
        }
    }));
    assert_eq!(check(&s, doc! { "status": "open" }, None), Ok(()));
    assert_eq!(
        check(&s, doc! { "status": "closed", "closed_by": "u" }, None),
        Ok(())
    );
    let violation = check(&s, doc! { "status": "closed" }, None).unwrap_err();
    assert_eq!(violation.path, "status");
    assert_eq!(check(&s, doc! { "created": 1 }, None), Ok(()));
    assert!(check(&s, doc! { "created": 2 }, Some(doc! { "created": 1 })).is_err());
}

#[test]
fn validate_on_array_items_binds_each_item() {
    let s = schema(json!({
        "properties": {
            "scores": {
                "bsonType": "array",
                "items": { "validate": { "%%this": { "$gte": 0 } } }
            }
        }
    }));
    assert_eq!(check(&s, doc! { "scores": [0, 5] }, None), Ok(()));
    let violation = check(&s, doc! { "scores": [1, -1] }, None).unwrap_err();
    assert_eq!(violation.path, "scores.1");
}

#[test]
fn validate_that_fails_to_evaluate_is_a_violation() {
    let s = schema(json!({
        "properties": {
            "x": { "validate": { "%%true": { "%function": { "name": "check", "arguments": ["%%this"] } } } }
        }
    }));
    let violation = check(&s, doc! { "x": 1 }, None).unwrap_err();
    assert_eq!(violation.path, "x");
    assert!(
        violation
            .message
            .starts_with("`validate` expression failed: "),
        "{violation}"
    );
    // Not run when the field is absent from both images.
    assert_eq!(check(&s, doc! {}, None), Ok(()));
}

#[test]
fn validate_runs_with_null_values() {
    let s = set_once();
    let violation = check(
        &s,
        doc! { "owner_id": Bson::Null },
        Some(doc! { "owner_id": "a" }),
    )
    .unwrap_err();
    assert_eq!(violation.path, "owner_id");
}

#[test]
fn invalid_validate_expression_is_a_load_error() {
    let mut diags = Diagnostics::default();
    let s = Schema::parse(
        &json!({ "properties": { "x": { "validate": { "%%nosuch": 1 } } } }),
        &Place::file("schema.json"),
        &mut diags,
    );
    assert!(diags.has_errors());
    assert!(
        diags
            .errors()
            .all(|e| e.place.json_path.starts_with("properties.x.validate")),
        "{diags:?}"
    );
    assert!(check(&s, doc! { "x": 1 }, None).is_err());
}
