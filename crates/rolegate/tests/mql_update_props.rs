//! Properties of `rolegate::mql::Update` on random documents and updates: `$set` then reading
//! the path gives the value; `$addToSet` never duplicates and is idempotent; `$unset` leaves the
//! path missing; `$rename` moves the value; `$inc` by n then by -n gives back an equal number;
//! an update that fails returns no document and leaves the input as it was; `$push` with
//! `$each` grows the array by the number of elements; any generated update (operators, paths
//! through arrays and scalars, positional and filtered paths) never panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use bson::{Bson, Document, doc};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rolegate::mql::{ErrorKind, Update, UpdateContext, bson_equal};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/mql_update_props.txt"
);

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    }
}

fn scalar() -> impl Strategy<Value = Bson> {
    prop_oneof![
        (-5i32..5).prop_map(Bson::Int32),
        (-5i64..5).prop_map(Bson::Int64),
        (-2.0f64..2.0).prop_map(|d| Bson::Double((d * 4.0).round() / 4.0)),
        "[ab]{0,2}".prop_map(Bson::String),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c"), Just("0"), Just("1")].prop_map(String::from)
}

fn value() -> impl Strategy<Value = Bson> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|kv| Bson::Document(kv.into_iter().collect())),
        ]
    })
}

fn document() -> impl Strategy<Value = Document> {
    prop::collection::vec((key(), value()), 0..5).prop_map(|kv| {
        let mut d: Document = kv.into_iter().collect();
        d.insert("_id", 1);
        d
    })
}

/// A dotted path of field names (no array indexes).
fn field_path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(String::from),
        1..4,
    )
}

/// The value at `path`, through documents only.
fn read<'a>(doc: &'a Document, path: &[String]) -> Option<&'a Bson> {
    let (first, rest) = path.split_first()?;
    let mut current = doc.get(first)?;
    for part in rest {
        match current {
            Bson::Document(d) => current = d.get(part)?,
            _ => return None,
        }
    }
    Some(current)
}

fn ctx() -> UpdateContext {
    UpdateContext::default()
}

fn apply(doc: &Document, update: Document) -> Result<(Document, bool), rolegate::mql::UpdateError> {
    let u = Update::parse(&update, &[])?;
    u.apply(doc, &ctx()).map(|r| (r.document, r.modified))
}

/// One update document with up to three operators on random paths, some positional or
/// filtered, with operands of every shape.
fn any_update() -> impl Strategy<Value = (Document, Vec<Document>)> {
    let op = prop_oneof![
        Just("$set"),
        Just("$unset"),
        Just("$inc"),
        Just("$mul"),
        Just("$min"),
        Just("$max"),
        Just("$rename"),
        Just("$currentDate"),
        Just("$setOnInsert"),
        Just("$push"),
        Just("$addToSet"),
        Just("$pop"),
        Just("$pull"),
        Just("$pullAll"),
        Just("$bit"),
    ];
    let segment = prop_oneof![
        4 => key(),
        1 => Just("$".to_string()),
        1 => Just("$[]".to_string()),
        1 => Just("$[x]".to_string()),
    ];
    let path = prop::collection::vec(segment, 1..4).prop_map(|s| s.join("."));
    let operand = prop_oneof![
        3 => value(),
        1 => prop::collection::vec(value(), 0..4)
            .prop_map(|each| Bson::Document(doc! {"$each": each, "$slice": -2, "$sort": 1})),
        1 => prop::collection::vec(value(), 0..4)
            .prop_map(|each| Bson::Document(doc! {"$each": each, "$position": 1})),
        1 => Just(Bson::Document(doc! {"and": 5, "or": 2i64})),
        1 => Just(Bson::Document(doc! {"$gte": 1})),
        1 => Just(Bson::Document(doc! {"$type": "timestamp"})),
        1 => key().prop_map(Bson::String),
        1 => (-1i32..=1).prop_map(Bson::Int32),
    ];
    (
        prop::collection::vec((op, prop::collection::vec((path, operand), 1..3)), 1..3),
        any::<bool>(),
    )
        .prop_map(|(ops, with_filter)| {
            let mut update = Document::new();
            for (op, fields) in ops {
                let d: Document = fields.into_iter().collect();
                update.insert(op, d);
            }
            let filters = if with_filter {
                vec![doc! {"x": {"$gt": 0}}]
            } else {
                vec![]
            };
            (update, filters)
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn set_then_read_gives_the_value(doc in document(), path in field_path(), v in value()) {
        let update = doc! {"$set": {path.join("."): v.clone()}};
        match apply(&doc, update) {
            Ok((out, _)) => {
                let got = read(&out, &path);
                prop_assert!(got.is_some_and(|g| g == &v), "{out} at {path:?}");
            }
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::PathNotViable),
        }
    }

    #[test]
    fn unset_leaves_the_path_missing(doc in document(), path in field_path()) {
        let (out, _) = apply(&doc, doc! {"$unset": {path.join("."): 1}}).unwrap();
        prop_assert!(read(&out, &path).is_none());
    }

    #[test]
    fn add_to_set_never_duplicates_and_is_idempotent(
        items in prop::collection::vec(scalar(), 0..6),
        each in prop::collection::vec(scalar(), 0..6),
    ) {
        // Start from a set.
        let mut start: Vec<Bson> = Vec::new();
        for i in items {
            if !start.iter().any(|s| bson_equal(s, &i)) {
                start.push(i);
            }
        }
        let doc = doc! {"_id": 1, "a": start.clone()};
        let update = doc! {"$addToSet": {"a": {"$each": each.clone()}}};
        let (out, _) = apply(&doc, update.clone()).unwrap();
        let Some(Bson::Array(result)) = out.get("a") else { panic!("{out}") };
        for (i, x) in result.iter().enumerate() {
            for y in &result[i + 1..] {
                prop_assert!(!bson_equal(x, y), "duplicate in {result:?}");
            }
        }
        prop_assert!(each.iter().all(|e| result.iter().any(|r| bson_equal(r, e))));
        prop_assert_eq!(&result[..start.len()], &start[..]);
        let (again, modified) = apply(&out, update).unwrap();
        prop_assert_eq!(again, out);
        prop_assert!(!modified);
    }

    #[test]
    fn rename_moves_the_value(v in value(), other in value()) {
        let doc = doc! {"_id": 1, "x": v.clone(), "z": other};
        let (out, _) = apply(&doc, doc! {"$rename": {"x": "y"}}).unwrap();
        prop_assert!(out.get("x").is_none());
        prop_assert_eq!(out.get("y"), Some(&v));
    }

    #[test]
    fn inc_then_dec_gives_back_an_equal_number(v in any::<i32>(), n in any::<i32>()) {
        let doc = doc! {"_id": 1, "a": v};
        let (once, _) = apply(&doc, doc! {"$inc": {"a": n}}).unwrap();
        let back = Update::parse(&doc! {"$inc": {"a": Bson::Int64(-i64::from(n))}}, &[]).unwrap();
        let twice = back.apply(&once, &ctx()).unwrap().document;
        prop_assert!(bson_equal(twice.get("a").unwrap(), &Bson::Int32(v)));
        // In the int32 range, an int32 stays an int32.
        if let Some(sum) = v.checked_add(n) {
            prop_assert_eq!(once.get("a"), Some(&Bson::Int32(sum)));
        } else {
            prop_assert_eq!(once.get("a"), Some(&Bson::Int64(i64::from(v) + i64::from(n))));
        }
    }

    #[test]
    fn push_each_grows_the_array_by_its_length(
        items in prop::collection::vec(value(), 0..6),
        each in prop::collection::vec(value(), 0..6),
        position in prop::option::of(-8i32..8),
    ) {
        let doc = doc! {"_id": 1, "a": items.clone()};
        let mut modifiers = doc! {"$each": each.clone()};
        if let Some(p) = position {
            modifiers.insert("$position", p);
        }
        let (out, _) = apply(&doc, doc! {"$push": {"a": modifiers}}).unwrap();
        let Some(Bson::Array(result)) = out.get("a") else { panic!("{out}") };
        prop_assert_eq!(result.len(), items.len() + each.len());
    }

    #[test]
    fn any_update_never_panics_and_errors_leave_the_input(
        doc in document(),
        (update, filters) in any_update(),
        query_hit in any::<bool>(),
    ) {
        let before = doc.clone();
        let context = if query_hit {
            UpdateContext::default().with_query(&doc! {"a": {"$gte": 0}}).unwrap()
        } else {
            UpdateContext::default()
        };
        if let Ok(u) = Update::parse(&update, &filters) {
            match u.apply(&doc, &context) {
                Ok(r) => {
                    prop_assert_eq!(r.document.get("_id"), Some(&Bson::Int32(1)));
                    if !r.modified {
                        prop_assert_eq!(&r.document, &doc);
                    }
                }
                Err(e) => prop_assert!(!e.message().is_empty()),
            }
            let _ = u.upsert(&doc! {"a": 1}, &context);
        }
        prop_assert_eq!(doc, before);
    }
}
