//! The `_id` key agrees with MongoDB's equality: fixed cases, then a property over values built
//! to collide (the same number in every numeric type, the same text as a string and a symbol...).

use std::str::FromStr;

use bson::{Binary, Bson, Decimal128, Regex, doc, oid::ObjectId, spec::BinarySubtype};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rolegate::mql::bson_equal;

use super::id_key;

fn dec(s: &str) -> Bson {
    Bson::Decimal128(Decimal128::from_str(s).unwrap_or_else(|_| Decimal128::from_bytes([0; 16])))
}

fn same(a: &Bson, b: &Bson) -> bool {
    id_key(a).unwrap() == id_key(b).unwrap()
}

#[test]
fn numerically_equal_ids_are_one_key() {
    let one = [
        Bson::Int32(1),
        Bson::Int64(1),
        Bson::Double(1.0),
        dec("1"),
        dec("1.00"),
        dec("0.1E1"),
    ];
    for a in &one {
        for b in &one {
            assert!(same(a, b), "{a:?} and {b:?} must be one _id");
        }
    }
    let zero = [
        Bson::Int32(0),
        Bson::Double(-0.0),
        Bson::Double(0.0),
        dec("-0"),
        dec("0E-6176"),
        dec("0E+6111"),
    ];
    for a in &zero {
        for b in &zero {
            assert!(same(a, b), "{a:?} and {b:?} must be one _id");
        }
    }
    assert!(same(&Bson::Double(f64::NAN), &dec("NaN")));
    assert!(same(&Bson::Double(f64::INFINITY), &dec("Infinity")));
    assert!(same(&Bson::Double(0.5), &dec("0.5")));
    assert!(same(
        &Bson::Int64(1 << 53),
        &Bson::Double(9_007_199_254_740_992.0)
    ));
    assert!(same(&Bson::Int64(100), &dec("1E+2")));
}

#[test]
fn different_ids_are_different_keys() {
    let pairs = [
        (Bson::Int32(1), Bson::Int32(2)),
        (Bson::Int32(1), Bson::Int32(-1)),
        (
            Bson::Int64((1 << 53) + 1),
            Bson::Double(9_007_199_254_740_992.0),
        ),
        (dec("0.1"), Bson::Double(0.1)),
        (Bson::Double(f64::INFINITY), Bson::Double(f64::NEG_INFINITY)),
        (Bson::Double(f64::NAN), Bson::Int32(0)),
        (Bson::Int32(1), Bson::String("1".into())),
        (Bson::Null, Bson::Undefined),
        (Bson::MinKey, Bson::MaxKey),
        (Bson::Boolean(true), Bson::Int32(1)),
        (
            Bson::Document(doc! {"a": 1, "b": 2}),
            Bson::Document(doc! {"b": 2, "a": 1}),
        ),
        (
            Bson::Document(doc! {"a": 1}),
            Bson::Document(doc! {"a": 1, "b": 2}),
        ),
        (
            Bson::Document(doc! {"ab": ""}),
            Bson::Document(doc! {"a": "b"}),
        ),
        (Bson::Array(vec![Bson::Int32(1)]), Bson::Int32(1)),
        (
            Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: vec![1],
            }),
            Bson::Binary(Binary {
                subtype: BinarySubtype::Uuid,
                bytes: vec![1],
            }),
        ),
    ];
    for (a, b) in &pairs {
        assert!(!same(a, b), "{a:?} and {b:?} must be different _ids");
    }
    let oid = ObjectId::from_bytes([7; 12]);
    assert!(!same(&Bson::ObjectId(oid), &Bson::String(oid.to_hex())));
}

#[test]
fn strings_and_symbols_and_documents_by_value() {
    assert!(same(&Bson::String("x".into()), &Bson::Symbol("x".into())));
    assert!(same(
        &Bson::Document(doc! {"a": 1}),
        &Bson::Document(doc! {"a": 1.0})
    ));
    assert!(same(
        &Bson::RegularExpression(Regex {
            pattern: "a".into(),
            options: "im".into()
        }),
        &Bson::RegularExpression(Regex {
            pattern: "a".into(),
            options: "mi".into()
        }),
    ));
}

#[test]
fn deep_ids_are_refused_not_walked() {
    let mut v = Bson::Int32(1);
    for _ in 0..(super::MAX_DEPTH + 10) {
        v = Bson::Array(vec![v]);
    }
    assert!(id_key(&v).is_err());
}

/// One of a few numbers, in one of the numeric types that can hold it.
fn number() -> impl Strategy<Value = Bson> {
    let values: Vec<&'static str> = vec![
        "0",
        "1",
        "-1",
        "2",
        "10",
        "100",
        "0.5",
        "0.1",
        "0.25",
        "1.5",
        "9007199254740992",
        "9007199254740993",
        "1E+20",
        "-0",
        "NaN",
        "Infinity",
        "-Infinity",
        "9223372036854775807",
    ];
    (prop::sample::select(values), 0..5u8, 0..3usize).prop_map(|(text, kind, zeros)| {
        let exact = Decimal128::from_str(text).ok();
        match kind {
            0 => text
                .parse::<i32>()
                .map(Bson::Int32)
                .unwrap_or(Bson::Double(f64::NAN)),
            1 => text.parse::<i64>().map(Bson::Int64).unwrap_or(Bson::Null),
            2 => text.parse::<f64>().map(Bson::Double).unwrap_or(Bson::Null),
            3 => exact.map(Bson::Decimal128).unwrap_or(Bson::Null),
            // The same value with trailing zeros (a different decimal encoding of it).
            _ => {
                if text.contains(['E', 'N', 'I']) {
                    dec(text)
                } else if text.contains('.') {
                    dec(&format!("{text}{}", "0".repeat(zeros)))
                } else {
                    dec(&format!("{text}.{}", "0".repeat(zeros + 1)))
                }
            }
        }
    })
}

fn scalar() -> impl Strategy<Value = Bson> {
    prop_oneof![
        4 => number(),
        1 => prop::sample::select(vec!["a", "b", "1"]).prop_map(|s| Bson::String(s.into())),
        1 => prop::sample::select(vec!["a", "b"]).prop_map(|s| Bson::Symbol(s.into())),
        1 => prop::sample::select(vec![Bson::Null, Bson::Undefined, Bson::MinKey, Bson::MaxKey,
                                       Bson::Boolean(true), Bson::Boolean(false)]),
        1 => (0..2u8).prop_map(|b| Bson::ObjectId(ObjectId::from_bytes([b; 12]))),
        1 => (0..2u8, prop::bool::ANY).prop_map(|(b, uuid)| Bson::Binary(Binary {
            subtype: if uuid { BinarySubtype::Uuid } else { BinarySubtype::Generic },
            bytes: vec![b],
        })),
        1 => (0..2i64).prop_map(|m| Bson::DateTime(bson::DateTime::from_millis(m))),
    ]
}

fn id_value() -> impl Strategy<Value = Bson> {
    scalar().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Bson::Array),
            prop::collection::vec((prop::sample::select(vec!["a", "b"]), inner), 0..3).prop_map(
                |fields| {
                    let mut d = bson::Document::new();
                    for (k, v) in fields {
                        d.insert(k, v);
                    }
                    Bson::Document(d)
                }
            ),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/id_key.txt"
        )))),
        ..ProptestConfig::default()
    })]

    /// Two values have the same key exactly when MongoDB's equality says they are equal.
    #[test]
    fn key_equality_is_mongodb_equality(a in id_value(), b in id_value()) {
        let (ka, kb) = (id_key(&a), id_key(&b));
        prop_assert!(ka.is_ok() && kb.is_ok());
        prop_assert_eq!(ka == kb, bson_equal(&a, &b), "{:?} vs {:?}", a, b);
    }

    /// Any double is one key with itself in every numeric type that holds it exactly.
    #[test]
    fn doubles_meet_their_integers(i in any::<i64>(), f in any::<f64>()) {
        let d = i as f64;
        prop_assert_eq!(same(&Bson::Int64(i), &Bson::Double(d)), bson_equal(&Bson::Int64(i), &Bson::Double(d)));
        prop_assert_eq!(same(&Bson::Double(f), &Bson::Double(f)), true);
        let as_int = f as i64;
        prop_assert_eq!(same(&Bson::Int64(as_int), &Bson::Double(f)), bson_equal(&Bson::Int64(as_int), &Bson::Double(f)));
        let text = format!("{f:e}");
        let shortest = dec(&text);
        prop_assert_eq!(same(&shortest, &Bson::Double(f)), bson_equal(&shortest, &Bson::Double(f)));
    }
}
