//! The raw redaction walk's quick scan (`eval/quick.rs`), its per-document memo actions
//! (`Action::Memo`) and the fast path's quick redaction of whole documents
//! (`quick::redact_document`, resumed by the general walk where it stops).
//!
//! Rules: random read and write rules that are constant, read the request, read the document
//! through a shared memoized rule (`{"%%root.owner": "%%user.id"}` and `{"%%root.flag": true}`,
//! which the fast path settles as seeds, and `{"%%root.b": {"$gt": 1}}`, which it does not), or
//! read the field; under random parent permissions (the role's `write`, a parent field's
//! `read`/`write` over nested rules, `additional_fields`). Documents: keys of up to seven
//! bytes and longer ones, values of every common size, embedded documents and arrays, keys the
//! rules do not name, repeated documents through one scratch space. The compiled engine
//! answers exactly as the reference evaluator through every raw entry point
//! (`compiled_support::same_read`: `read`, `read_raw`, `redact_raw` byte for byte, with and
//! without raw validation).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

#[path = "compiled_support/mod.rs"]
mod support;

use bson::{Bson, Document, doc};
use proptest::prelude::*;
use rolegate::{EngineKind, Scratch};
use serde_json::{Map, Value, json};
use support::{ctx, rules, same_read, user};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/compiled_quick.txt"
);

/// A read or write rule: absent, constant, request-only, three shared document rules
/// (memoized; two of them settled by the fast path's scan), or a rule on the field's own
/// value.
fn rule() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(json!(true))),
        1 => Just(Some(json!(false))),
        3 => Just(Some(json!({"%%root.owner": "%%user.id"}))),
        2 => Just(Some(json!({"%%root.flag": true}))),
        // Memoized, but not an equality test: the fast path's scan does not settle it (no
        // seed), so the general walk evaluates it for each document.
        2 => Just(Some(json!({"%%root.b": {"$gt": 1}}))),
        1 => Just(Some(json!({"%%user.id": "alice"}))),
        1 => Just(Some(json!({"%%user.id": "bob"}))),
        1 => Just(Some(json!({"%%this": 1}))),
    ]
}

/// `{"read": .., "write": ..}` with the absent ones left out.
fn perms() -> impl Strategy<Value = Map<String, Value>> {
    (rule(), rule()).prop_map(|(read, write)| {
        let mut m = Map::new();
        if let Some(r) = read {
            m.insert("read".into(), r);
        }
        if let Some(w) = write {
            m.insert("write".into(), w);
        }
        m
    })
}

/// Top-level names: short keys (the quick scan's), a key of exactly seven bytes, longer keys
/// (the general walk's), and `sub`, the field with nested rules.
const NAMES: [&str; 6] = ["a", "b", "owner", "sevenbb", "a_longer_key", "flag"];

/// A role: doc-level `write` (`read` is left out, so that field rules decide), field rules on
/// some of [`NAMES`], `sub` with nested rules and its own permissions, and `additional_fields`.
fn role() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just(None),
            Just(Some(json!(false))),
            Just(Some(json!({"%%root.owner": "%%user.id"}))),
            Just(Some(json!({"%%user.id": "alice"}))),
        ],
        proptest::collection::vec(proptest::option::of(perms()), NAMES.len()),
        proptest::option::weighted(
            0.9,
            (
                perms(),
                proptest::option::weighted(0.8, perms()),
                proptest::option::of(perms()),
                proptest::option::of(perms()),
            ),
        ),
        proptest::option::of(perms()),
    )
        .prop_map(|(write, named, sub, additional)| {
            let mut fields = Map::new();
            for (name, p) in NAMES.iter().zip(named) {
                if let Some(p) = p {
                    fields.insert((*name).into(), Value::Object(p));
                }
            }
            if let Some((mut parent, x, long, extra)) = sub {
                let mut nested = Map::new();
                if let Some(x) = x {
                    nested.insert("x".into(), Value::Object(x));
                }
                if let Some(l) = long {
                    nested.insert("x_longer_key".into(), Value::Object(l));
                }
                parent.insert("fields".into(), Value::Object(nested));
                if let Some(e) = extra {
                    parent.insert("additional_fields".into(), Value::Object(e));
                }
                fields.insert("sub".into(), Value::Object(parent));
            }
            let mut role = json!({"name": "r", "apply_when": {}, "fields": fields});
            if let Some(w) = write {
                role["write"] = w;
            }
            if let Some(a) = additional {
                role["additional_fields"] = Value::Object(a);
            }
            role
        })
}

/// A value of one of the common sizes (the quick scan sizes them itself) or a rarer one (it
/// leaves those to the general walk).
fn scalar() -> impl Strategy<Value = Bson> {
    prop_oneof![
        (0i32..3).prop_map(Bson::Int32),
        (0i64..3).prop_map(Bson::Int64),
        Just(Bson::Double(1.5)),
        "[ab]{0,3}".prop_map(Bson::String),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
        Just(Bson::RegularExpression(bson::Regex {
            pattern: "a".into(),
            options: "i".into()
        })),
        Just(Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: vec![1, 2]
        })),
    ]
}

/// The value of `sub`: an embedded document, an array of them (and of scalars), or a scalar.
fn sub_value() -> impl Strategy<Value = Bson> {
    prop_oneof![
        3 => inner_doc().prop_map(Bson::Document),
        2 => proptest::collection::vec(
            prop_oneof![3 => inner_doc().prop_map(Bson::Document), 1 => scalar()],
            0..4
        )
        .prop_map(Bson::Array),
        1 => scalar(),
    ]
}

/// A document under `sub`: `x` (named by the nested rules), `x_longer_key`, `y` (not named).
fn inner_doc() -> impl Strategy<Value = Document> {
    (
        proptest::option::of(scalar()),
        proptest::option::of(scalar()),
        proptest::option::of(scalar()),
    )
        .prop_map(|(x, long, other)| {
            let mut d = Document::new();
            if let Some(v) = other {
                d.insert("y", v);
            }
            if let Some(v) = x {
                d.insert("x", v);
            }
            if let Some(v) = long {
                d.insert("x_longer_key", v);
            }
            d
        })
}

/// A document: `owner` (the user's or someone else's, or missing), `flag`, some of the named
/// fields and some unnamed ones, `sub`, in a random order.
fn document() -> impl Strategy<Value = Document> {
    let owner = prop_oneof![
        3 => Just(Some(Bson::String("alice".into()))),
        2 => Just(Some(Bson::String("bob".into()))),
        1 => Just(None),
    ];
    (
        owner,
        proptest::option::of(any::<bool>()),
        proptest::collection::vec(
            (
                prop_oneof![
                    Just("a"),
                    Just("b"),
                    Just("sevenbb"),
                    Just("a_longer_key"),
                    Just("z"),
                    Just("unnamed_long_key"),
                ],
                scalar(),
            ),
            0..6,
        ),
        proptest::option::weighted(0.8, sub_value()),
        any::<proptest::sample::Index>(),
    )
        .prop_map(|(owner, flag, fields, sub, at)| {
            let mut pairs: Vec<(String, Bson)> = Vec::new();
            for (k, v) in fields {
                if !pairs.iter().any(|(n, _)| n == k) {
                    pairs.push((k.into(), v));
                }
            }
            if let Some(f) = flag {
                pairs.push(("flag".into(), Bson::Boolean(f)));
            }
            if let Some(s) = sub {
                pairs.push(("sub".into(), s));
            }
            // `owner` anywhere: before, between or after the fields its rule decides.
            if let Some(o) = owner {
                let i = at.index(pairs.len() + 1);
                pairs.insert(i, ("owner".into(), o));
            }
            pairs.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(support::persisted(600, REGRESSIONS))]

    /// Every entry point agrees with the reference on every document, each read on a fresh
    /// scratch space (`same_read`).
    #[test]
    fn quick_scan_and_memo_actions_agree_with_the_reference(
        role in role(),
        docs in proptest::collection::vec(document(), 1..4),
    ) {
        let r = rules(json!([role]));
        let c = ctx(user("alice", doc! {}));
        for d in &docs {
            same_read(&r, &c, d);
        }
    }

    /// The same documents through one scratch space in turn (the per-request actions and the
    /// per-document memos are reused across documents), against the reference's redaction.
    #[test]
    fn one_scratch_space_serves_every_document(
        role in role(),
        docs in proptest::collection::vec(document(), 2..6),
    ) {
        let r = rules(json!([role]));
        let c = ctx(user("alice", doc! {}));
        let coll = r.collection("app.items").unwrap();
        let compiled = coll.prepare_with(&c, EngineKind::Compiled);
        let reference = coll.prepare_with(&c, EngineKind::Reference);
        let mut scratch = Scratch::new();
        for d in docs.iter().chain(docs.iter().rev()) {
            let raw = bson::RawDocumentBuf::from_document(d).unwrap();
            let mut out = Vec::new();
            let got = compiled.redact_raw(&raw, &mut scratch, &mut out);
            let want = reference.read(d);
            prop_assert_eq!(got.visible, want.visible, "visibility of {}", d);
            prop_assert_eq!(got.error, want.error.is_some(), "error of {}", d);
            let mut expected = Vec::new();
            if let Some(w) = &want.document {
                w.to_writer(&mut expected).unwrap();
            }
            prop_assert_eq!(out, expected, "redaction of {}", d);
        }
    }
}
