//! Extended JSON conversion (src/value/ejson.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bson::{Bson, doc, oid::ObjectId, spec::BinarySubtype};
use rolegate::mql::{bson_from_json, bson_to_json, document_from_json, type_name};
use serde_json::json;

#[test]
fn plain_numbers_follow_the_case_format() {
    assert_eq!(bson_from_json(&json!(1)).unwrap(), Bson::Int32(1));
    assert_eq!(
        bson_from_json(&json!(-2147483648_i64)).unwrap(),
        Bson::Int32(i32::MIN)
    );
    assert_eq!(
        bson_from_json(&json!(2147483648_i64)).unwrap(),
        Bson::Int64(2_147_483_648)
    );
    assert_eq!(
        bson_from_json(&json!(-2147483649_i64)).unwrap(),
        Bson::Int64(-2_147_483_649)
    );
    assert_eq!(bson_from_json(&json!(1.5)).unwrap(), Bson::Double(1.5));
    let one_point_oh: serde_json::Value = serde_json::from_str("1.0").unwrap();
    assert_eq!(bson_from_json(&one_point_oh).unwrap(), Bson::Double(1.0));
    let exp: serde_json::Value = serde_json::from_str("1e3").unwrap();
    assert_eq!(bson_from_json(&exp).unwrap(), Bson::Double(1000.0));
    let huge: serde_json::Value = serde_json::from_str("18446744073709551615").unwrap();
    assert!(matches!(bson_from_json(&huge).unwrap(), Bson::Double(_)));
}

#[test]
fn canonical_and_relaxed_forms() {
    let v = json!({
        "oid": {"$oid": "5f4863e4d49bd2191ff1e623"},
        "i": {"$numberInt": "7"},
        "l": {"$numberLong": "7"},
        "d": {"$numberDouble": "7.0"},
        "nan": {"$numberDouble": "NaN"},
        "dec": {"$numberDecimal": "7.10"},
        "date": {"$date": "2020-01-01T00:00:00Z"},
        "date2": {"$date": {"$numberLong": "1577836800000"}},
        "uuid": {"$uuid": "3b241101-e2bb-4255-8caf-4136c566a962"},
        "bin": {"$binary": {"base64": "AQI=", "subType": "00"}},
        "ts": {"$timestamp": {"t": 1, "i": 2}},
        "re": {"$regularExpression": {"pattern": "^a", "options": "i"}},
        "op": {"$in": [1, 2]},
        "nested": {"a": [1, {"b": null}]}
    });
    let d = document_from_json(&v).unwrap();
    assert_eq!(
        d.get("oid"),
        Some(&Bson::ObjectId(
            ObjectId::parse_str("5f4863e4d49bd2191ff1e623").unwrap()
        ))
    );
    assert_eq!(d.get("i"), Some(&Bson::Int32(7)));
    assert_eq!(d.get("l"), Some(&Bson::Int64(7)));
    assert_eq!(d.get("d"), Some(&Bson::Double(7.0)));
    assert!(matches!(d.get("nan"), Some(Bson::Double(x)) if x.is_nan()));
    assert!(matches!(d.get("dec"), Some(Bson::Decimal128(x)) if x.to_string() == "7.10"));
    assert_eq!(d.get("date"), d.get("date2"));
    assert!(matches!(d.get("uuid"), Some(Bson::Binary(b)) if b.subtype == BinarySubtype::Uuid));
    assert!(matches!(d.get("bin"), Some(Bson::Binary(b)) if b.bytes == vec![1, 2]));
    assert!(matches!(d.get("ts"), Some(Bson::Timestamp(t)) if t.time == 1 && t.increment == 2));
    assert!(matches!(d.get("re"), Some(Bson::RegularExpression(r)) if r.pattern == "^a"));
    assert_eq!(d.get("op"), Some(&Bson::Document(doc! {"$in": [1, 2]})));
    assert_eq!(
        d.get("nested"),
        Some(&Bson::Document(doc! {"a": [1, {"b": null}]}))
    );
    let keys: Vec<&String> = d.keys().collect();
    assert_eq!(
        keys.first().map(|k| k.as_str()),
        Some("oid"),
        "key order is kept"
    );
}

#[test]
fn malformed_extended_json_is_an_error() {
    assert!(bson_from_json(&json!({"$oid": "nothex"})).is_err());
    assert!(bson_from_json(&json!({"$numberLong": 7})).is_err());
    assert!(bson_from_json(&json!({"$oid": "5f4863e4d49bd2191ff1e623", "x": 1})).is_err());
}

#[test]
fn documents_must_be_objects() {
    assert!(document_from_json(&json!([1])).is_err());
    assert!(document_from_json(&json!("x")).is_err());
    assert!(document_from_json(&json!({"$oid": "5f4863e4d49bd2191ff1e623"})).is_err());
    assert_eq!(document_from_json(&json!({})).unwrap(), doc! {});
}

#[test]
fn deep_json_is_rejected_without_recursion() {
    let mut v = json!(1);
    for _ in 0..1000 {
        v = json!([v]);
    }
    assert!(bson_from_json(&v).unwrap_err().contains("nested deeper"));
    // Drop the deep value iteratively-ish: unwrap layers so the test itself cannot overflow.
    while let serde_json::Value::Array(mut items) = v {
        v = items.pop().unwrap_or(serde_json::Value::Null);
    }
}

#[test]
fn output_is_relaxed_extended_json() {
    let d = doc! {
        "i": 1, "l": 5_000_000_000_i64, "d": 1.0, "s": "x", "n": null,
        "oid": ObjectId::parse_str("5f4863e4d49bd2191ff1e623").unwrap(),
        "date": bson::DateTime::from_millis(0),
        "inf": f64::INFINITY,
    };
    let j = bson_to_json(&Bson::Document(d));
    assert_eq!(
        j,
        json!({
            "i": 1, "l": 5_000_000_000_i64, "d": 1.0, "s": "x", "n": null,
            "oid": {"$oid": "5f4863e4d49bd2191ff1e623"},
            "date": {"$date": "1970-01-01T00:00:00Z"},
            "inf": {"$numberDouble": "Infinity"},
        })
    );
    assert_eq!(
        serde_json::to_string(&bson_to_json(&Bson::Double(1.0))).unwrap(),
        "1.0"
    );
    let dec = bson_from_json(&json!({"$numberDecimal": "1.50"})).unwrap();
    assert_eq!(bson_to_json(&dec), json!({"$numberDecimal": "1.50"}));
}

#[test]
fn round_trips() {
    let v = json!({"a": [1, 2.5, "x", true, null, {"b": {"$oid": "5f4863e4d49bd2191ff1e623"}}]});
    let b = bson_from_json(&v).unwrap();
    assert_eq!(bson_from_json(&bson_to_json(&b)).unwrap(), b);
}

#[test]
fn type_names_are_mongodb_aliases() {
    assert_eq!(type_name(&Bson::Int32(1)), "int");
    assert_eq!(type_name(&Bson::Int64(1)), "long");
    assert_eq!(type_name(&Bson::Document(doc! {})), "object");
}
