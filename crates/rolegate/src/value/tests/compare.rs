//! MongoDB equality and ordering of BSON values (src/value/compare.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cmp::Ordering;
use std::str::FromStr;

use crate::value::compare::{
    MAX_DEPTH, TooDeep, bson_cmp, bson_cmp_checked, bson_equal, bson_equal_args,
    bson_equal_checked, canonical_rank, compile_regex, is_nan, truthy,
};
use bson::{Binary, Bson, Decimal128, doc, oid::ObjectId, spec::BinarySubtype};
use proptest::prelude::*;

fn dec(s: &str) -> Bson {
    Bson::Decimal128(Decimal128::from_str(s).unwrap())
}

#[test]
fn numbers_equal_across_types() {
    let ones = [
        Bson::Int32(1),
        Bson::Int64(1),
        Bson::Double(1.0),
        dec("1"),
        dec("1.00"),
        dec("0.1E+1"),
    ];
    for a in &ones {
        for b in &ones {
            assert!(bson_equal(a, b), "{a:?} == {b:?}");
            assert_eq!(bson_cmp(a, b), Some(Ordering::Equal));
        }
    }
    assert!(!bson_equal(&Bson::Int32(1), &Bson::Double(1.5)));
    assert!(bson_equal(&Bson::Double(-0.0), &Bson::Int32(0)));
    assert!(bson_equal(&dec("-0"), &Bson::Int64(0)));
}

#[test]
fn large_integers_compare_exactly_with_doubles() {
    let big = 9_007_199_254_740_993_i64; // 2^53 + 1, not a double
    assert!(!bson_equal(
        &Bson::Int64(big),
        &Bson::Double(9_007_199_254_740_992.0)
    ));
    assert_eq!(
        bson_cmp(&Bson::Int64(big), &Bson::Double(9_007_199_254_740_992.0)),
        Some(Ordering::Greater)
    );
    assert_eq!(
        bson_cmp(&Bson::Int64(i64::MAX), &Bson::Double(i64::MAX as f64)),
        Some(Ordering::Less)
    );
    assert_eq!(
        bson_cmp(&Bson::Int64(i64::MIN), &Bson::Double(i64::MIN as f64)),
        Some(Ordering::Equal)
    );
    assert_eq!(
        bson_cmp(&Bson::Int32(2), &Bson::Double(2.5)),
        Some(Ordering::Less)
    );
    assert_eq!(
        bson_cmp(&Bson::Int32(-2), &Bson::Double(-2.5)),
        Some(Ordering::Greater)
    );
    assert_eq!(
        bson_cmp(&Bson::Int32(5), &Bson::Double(f64::INFINITY)),
        Some(Ordering::Less)
    );
    assert_eq!(
        bson_cmp(&Bson::Int32(5), &Bson::Double(f64::NEG_INFINITY)),
        Some(Ordering::Greater)
    );
}

#[test]
fn decimals_compare_exactly() {
    assert_eq!(
        bson_cmp(&dec("1.5"), &Bson::Int32(1)),
        Some(Ordering::Greater)
    );
    assert_eq!(
        bson_cmp(&dec("-1.5"), &Bson::Int32(-1)),
        Some(Ordering::Less)
    );
    assert_eq!(
        bson_cmp(&dec("123.456"), &dec("123.4560000")),
        Some(Ordering::Equal)
    );
    assert_eq!(
        bson_cmp(&dec("1E+10"), &Bson::Int64(10_000_000_000)),
        Some(Ordering::Equal)
    );
    assert_eq!(
        bson_cmp(&dec("1E+10"), &Bson::Int64(9_999_999_999)),
        Some(Ordering::Greater)
    );
    assert_eq!(
        bson_cmp(
            &dec("9999999999999999999999999999999999E+6111"),
            &Bson::Double(f64::MAX)
        ),
        Some(Ordering::Greater)
    );
    assert_eq!(
        bson_cmp(&dec("1E-6176"), &Bson::Int32(0)),
        Some(Ordering::Greater)
    );
    assert_eq!(
        bson_cmp(&dec("-Infinity"), &Bson::Int64(i64::MIN)),
        Some(Ordering::Less)
    );
    assert_eq!(
        bson_cmp(&dec("Infinity"), &Bson::Double(f64::INFINITY)),
        Some(Ordering::Equal)
    );
    // MongoDB widens the double to 34 digits: 0.1 (binary) is not 0.1 (decimal), 0.5 is.
    assert!(!bson_equal(&dec("0.1"), &Bson::Double(0.1)));
    assert!(bson_equal(&dec("0.5"), &Bson::Double(0.5)));
    assert!(bson_equal(
        &dec("0.1000000000000000055511151231257827"),
        &Bson::Double(0.1)
    ));
    assert_eq!(
        bson_cmp(&dec("0.1"), &Bson::Double(0.1)),
        Some(Ordering::Less)
    );
}

#[test]
fn nan_equals_nan_and_sorts_first() {
    let nan = Bson::Double(f64::NAN);
    assert!(bson_equal(&nan, &Bson::Double(f64::NAN)));
    assert!(bson_equal(&nan, &dec("NaN")));
    assert!(is_nan(&dec("NaN")) && is_nan(&nan) && !is_nan(&Bson::Int32(0)));
    assert_eq!(
        bson_cmp(&nan, &Bson::Double(f64::NEG_INFINITY)),
        Some(Ordering::Less)
    );
    assert_eq!(
        bson_cmp(&Bson::Int64(i64::MIN), &nan),
        Some(Ordering::Greater)
    );
    assert_eq!(bson_cmp(&nan, &Bson::String("a".into())), None);
}

#[test]
fn types_are_bracketed() {
    assert_eq!(bson_cmp(&Bson::String("100".into()), &Bson::Int32(0)), None);
    assert!(!bson_equal(&Bson::String("1".into()), &Bson::Int32(1)));
    let oid = ObjectId::parse_str("5f4863e4d49bd2191ff1e623").unwrap();
    assert!(!bson_equal(
        &Bson::ObjectId(oid),
        &Bson::String(oid.to_hex())
    ));
    assert!(!bson_equal(&Bson::Null, &Bson::Boolean(false)));
    assert!(!bson_equal(&Bson::Boolean(true), &Bson::Int32(1)));
    assert_eq!(bson_cmp(&Bson::Null, &Bson::Null), Some(Ordering::Equal));
    assert_eq!(bson_cmp(&Bson::Null, &Bson::Int32(0)), None);
    assert!(canonical_rank(&Bson::Null) < canonical_rank(&Bson::Int32(0)));
    assert!(
        canonical_rank(&Bson::String(String::new())) < canonical_rank(&Bson::Document(doc! {}))
    );
}

#[test]
fn strings_use_binary_order() {
    assert_eq!(
        bson_cmp(&Bson::String("B".into()), &Bson::String("a".into())),
        Some(Ordering::Less)
    );
    assert_eq!(
        bson_cmp(&Bson::String("a".into()), &Bson::String("ab".into())),
        Some(Ordering::Less)
    );
    assert_eq!(
        bson_cmp(&Bson::String("é".into()), &Bson::String("z".into())),
        Some(Ordering::Greater)
    );
    assert!(bson_equal(
        &Bson::Symbol("x".into()),
        &Bson::String("x".into())
    ));
    assert!(!bson_equal(
        &Bson::String("A".into()),
        &Bson::String("a".into())
    ));
}

#[test]
fn other_types_compare_with_themselves() {
    let a = ObjectId::parse_str("000000000000000000000001").unwrap();
    let b = ObjectId::parse_str("000000000000000000000002").unwrap();
    assert_eq!(
        bson_cmp(&Bson::ObjectId(a), &Bson::ObjectId(b)),
        Some(Ordering::Less)
    );
    let d1 = Bson::DateTime(bson::DateTime::from_millis(1));
    let d2 = Bson::DateTime(bson::DateTime::from_millis(2));
    assert_eq!(bson_cmp(&d1, &d2), Some(Ordering::Less));
    assert_eq!(bson_cmp(&d1, &Bson::Int64(1)), None);
    let t1 = Bson::Timestamp(bson::Timestamp {
        time: 1,
        increment: 9,
    });
    let t2 = Bson::Timestamp(bson::Timestamp {
        time: 2,
        increment: 0,
    });
    assert_eq!(bson_cmp(&t1, &t2), Some(Ordering::Less));
    assert_eq!(
        bson_cmp(&Bson::Boolean(false), &Bson::Boolean(true)),
        Some(Ordering::Less)
    );
    let bin = |s: u8, b: &[u8]| {
        Bson::Binary(Binary {
            subtype: BinarySubtype::from(s),
            bytes: b.to_vec(),
        })
    };
    assert_eq!(
        bson_cmp(&bin(0, &[9]), &bin(0, &[1, 1])),
        Some(Ordering::Less),
        "length first"
    );
    assert_eq!(bson_cmp(&bin(0, &[1]), &bin(4, &[1])), Some(Ordering::Less));
    assert!(bson_equal(&bin(4, &[1, 2]), &bin(4, &[1, 2])));
    let re = |p: &str, o: &str| {
        Bson::RegularExpression(bson::Regex {
            pattern: p.into(),
            options: o.into(),
        })
    };
    assert!(bson_equal(&re("a", "im"), &re("a", "mi")));
    assert!(!bson_equal(&re("a", "i"), &re("a", "")));
    assert!(bson_equal(&Bson::MinKey, &Bson::MinKey));
    assert_eq!(bson_cmp(&Bson::MinKey, &Bson::MaxKey), None);
}

#[test]
fn documents_need_same_keys_in_same_order() {
    let a = Bson::Document(doc! {"x": 1, "y": 2.0});
    assert!(bson_equal(&a, &Bson::Document(doc! {"x": 1.0, "y": 2_i64})));
    assert!(!bson_equal(&a, &Bson::Document(doc! {"y": 2, "x": 1})));
    assert!(!bson_equal(&a, &Bson::Document(doc! {"x": 1})));
    assert!(!bson_equal(
        &a,
        &Bson::Document(doc! {"x": 1, "y": 2, "z": 3})
    ));
    assert_eq!(
        bson_cmp(
            &Bson::Document(doc! {"x": 1}),
            &Bson::Document(doc! {"x": 2})
        ),
        Some(Ordering::Less)
    );
    // Type bracket of the value first, then the key.
    assert_eq!(
        bson_cmp(
            &Bson::Document(doc! {"z": 1}),
            &Bson::Document(doc! {"a": "s"})
        ),
        Some(Ordering::Less)
    );
    assert_eq!(
        bson_cmp(
            &Bson::Document(doc! {"a": 1}),
            &Bson::Document(doc! {"b": 1})
        ),
        Some(Ordering::Less)
    );
}

#[test]
fn arrays_compare_element_wise() {
    let a = Bson::Array(vec![Bson::Int32(1), Bson::String("x".into())]);
    assert!(bson_equal(
        &a,
        &Bson::Array(vec![Bson::Double(1.0), Bson::String("x".into())])
    ));
    assert!(!bson_equal(
        &a,
        &Bson::Array(vec![Bson::String("x".into()), Bson::Int32(1)])
    ));
    assert_eq!(
        bson_cmp(&Bson::Array(vec![Bson::Int32(1)]), &a),
        Some(Ordering::Less),
        "prefix sorts first"
    );
    assert_eq!(
        bson_cmp(
            &Bson::Array(vec![Bson::Int32(5)]),
            &Bson::Array(vec![Bson::String("a".into())])
        ),
        Some(Ordering::Less),
        "numbers before strings inside arrays"
    );
}

fn nested(depth: usize) -> Bson {
    let mut v = Bson::Int32(1);
    for _ in 0..depth {
        v = Bson::Document(doc! {"a": v});
    }
    v
}

#[test]
fn deep_values_are_a_limit_not_a_crash() {
    let a = nested(MAX_DEPTH + 5);
    let b = nested(MAX_DEPTH + 5);
    assert_eq!(bson_equal_checked(&a, &b), Err(TooDeep));
    assert_eq!(bson_cmp_checked(&a, &b), Err(TooDeep));
    assert!(!bson_equal(&a, &b), "fail closed: not equal");
    assert_eq!(bson_cmp(&a, &b), None);
    assert!(bson_equal(&nested(MAX_DEPTH - 1), &nested(MAX_DEPTH - 1)));
}

#[test]
fn args_compare_element_wise() {
    assert!(bson_equal_args(
        &[Bson::Int32(1), Bson::Null],
        &[Bson::Double(1.0), Bson::Null]
    ));
    assert!(!bson_equal_args(
        &[Bson::Int32(1)],
        &[Bson::Int32(1), Bson::Int32(1)]
    ));
    assert!(bson_equal_args(&[], &[]));
}

#[test]
fn truth_values() {
    for v in [
        Bson::Boolean(true),
        Bson::Int32(2),
        Bson::Double(f64::NAN),
        Bson::String(String::new()),
        dec("0.1"),
        Bson::Document(doc! {}),
    ] {
        assert!(truthy(&v), "{v:?}");
    }
    for v in [
        Bson::Boolean(false),
        Bson::Int64(0),
        Bson::Double(0.0),
        Bson::Null,
        dec("0E+3"),
    ] {
        assert!(!truthy(&v), "{v:?}");
    }
}

#[test]
fn regexes_compile_with_mongodb_options() {
    assert!(compile_regex("^ab", "i").unwrap().is_match("ABc"));
    assert!(compile_regex("^b", "m").unwrap().is_match("a\nb"));
    assert!(compile_regex("a.b", "s").unwrap().is_match("a\nb"));
    assert!(compile_regex("a b", "x").unwrap().is_match("ab"));
    assert!(compile_regex("a", "q").is_err());
    assert!(
        compile_regex("(?<=a)b", "").is_err(),
        "lookbehind is not linear-time"
    );
}

fn arb_scalar() -> impl Strategy<Value = Bson> {
    prop_oneof![
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        any::<f64>().prop_map(Bson::Double),
        (-50i32..50).prop_map(Bson::Int32),
        (-50i32..50).prop_map(|i| Bson::Double(f64::from(i) / 2.0)),
        (-50i64..50, -3i32..3).prop_map(|(c, e)| dec(&format!("{c}E{e}"))),
        "[a-c]{0,3}".prop_map(Bson::String),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
        any::<i64>().prop_map(|m| Bson::DateTime(bson::DateTime::from_millis(m))),
        any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(ObjectId::from_bytes(b))),
    ]
}

fn arb_bson() -> impl Strategy<Value = Bson> {
    arb_scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            prop::collection::vec(("[a-c]", inner), 0..4)
                .prop_map(|kvs| { Bson::Document(kvs.into_iter().collect()) }),
        ]
    })
}

proptest! {
    #[test]
    fn equality_is_reflexive_and_symmetric(a in arb_bson(), b in arb_bson()) {
        prop_assert!(bson_equal(&a, &a));
        prop_assert_eq!(bson_equal(&a, &b), bson_equal(&b, &a));
    }

    #[test]
    fn ordering_is_antisymmetric_and_agrees_with_equality(a in arb_bson(), b in arb_bson()) {
        let ab = bson_cmp(&a, &b);
        let ba = bson_cmp(&b, &a);
        prop_assert_eq!(ab, ba.map(Ordering::reverse));
        prop_assert_eq!(ab == Some(Ordering::Equal), bson_equal(&a, &b));
        prop_assert_eq!(ab.is_some(), canonical_rank(&a) == canonical_rank(&b));
    }

    #[test]
    fn ordering_is_transitive(a in arb_scalar(), b in arb_scalar(), c in arb_scalar()) {
        if let (Some(x), Some(y), Some(z)) = (bson_cmp(&a, &b), bson_cmp(&b, &c), bson_cmp(&a, &c))
            && x != Ordering::Greater && y != Ordering::Greater {
                // a <= b <= c implies a <= c, strictly when either step is strict.
                let strict = x == Ordering::Less || y == Ordering::Less;
                prop_assert_eq!(z, if strict { Ordering::Less } else { Ordering::Equal });
            }
    }

    #[test]
    fn int_double_comparison_matches_exact_arithmetic(i in -1_000_000i64..1_000_000, f in -1.0e6f64..1.0e6) {
        // Both exactly representable in f64 here, so f64 comparison is exact.
        prop_assert_eq!(bson_cmp(&Bson::Int64(i), &Bson::Double(f)), (i as f64).partial_cmp(&f));
    }
}
