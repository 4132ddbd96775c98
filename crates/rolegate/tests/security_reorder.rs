//! Issue 9, finding 9: reordering the keys of an embedded document is a write of that document
//! (MongoDB documents with different field order are different values), in both engines.
//!
//! The regression tests reproduce the issue's example (a role that may not write `sub` reorders
//! it) and its variants (nested rules, arrays of documents, the top level); the property test
//! draws random pre-images, permutes the keys of one embedded document (at the top of a field,
//! inside an array, inside another document) and checks that a role that cannot write the
//! moved field is refused, by both engines alike.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "differential/arb.rs"]
mod arb;
mod compiled_support;

use bson::{Bson, Document, doc};
use compiled_support::{ctx, rules, user};
use proptest::prelude::*;
use rolegate::{EngineKind, WriteOutcome};
use serde_json::{Value, json};

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

fn update(roles: &Value, pre: &Document, post: &Document) -> Vec<WriteOutcome> {
    let rules = rules(roles.clone());
    let coll = rules.collection("app.items").unwrap();
    let context = ctx(user("u1", doc! {}));
    ENGINES
        .iter()
        .map(|e| coll.prepare_with(&context, *e).update(pre, post))
        .collect()
}

fn assert_refused(roles: Value, pre: Document, post: Document) {
    for (engine, out) in ENGINES.iter().zip(update(&roles, &pre, &post)) {
        assert!(
            !out.allowed,
            "{engine:?} allowed {pre} -> {post} under {roles}: {out:?}"
        );
    }
}

#[test]
fn reordering_an_unwritable_embedded_document_is_refused() {
    let roles = json!([{
        "name": "r", "apply_when": {},
        "fields": {"sub": {"read": true, "write": false}},
        "additional_fields": {"read": true, "write": true}
    }]);
    assert_refused(
        roles,
        doc! {"_id": 1, "sub": {"x": 1, "y": 2}, "a": 1},
        doc! {"_id": 1, "sub": {"y": 2, "x": 1}, "a": 1},
    );
}

#[test]
fn reordering_under_nested_rules_writes_the_moved_fields() {
    let roles = json!([{
        "name": "r", "apply_when": {},
        "fields": {"sub": {
            "fields": {"y": {"read": true, "write": false}},
            "additional_fields": {"read": true, "write": true}
        }},
        "additional_fields": {"read": true, "write": true}
    }]);
    assert_refused(
        roles.clone(),
        doc! {"_id": 1, "sub": {"x": 1, "y": 2}},
        doc! {"_id": 1, "sub": {"y": 2, "x": 1}},
    );
    // Array elements under nested rules.
    assert_refused(
        roles,
        doc! {"_id": 1, "sub": [{"x": 1, "y": 2}]},
        doc! {"_id": 1, "sub": [{"y": 2, "x": 1}]},
    );
}

#[test]
fn reordering_inside_an_array_or_a_deeper_document_is_refused() {
    let roles = json!([{
        "name": "r", "apply_when": {},
        "fields": {"sub": {"read": true, "write": false}},
        "additional_fields": {"read": true, "write": true}
    }]);
    assert_refused(
        roles.clone(),
        doc! {"_id": 1, "sub": [{"x": 1, "y": 2}]},
        doc! {"_id": 1, "sub": [{"y": 2, "x": 1}]},
    );
    assert_refused(
        roles,
        doc! {"_id": 1, "sub": {"g": {"x": 1, "y": 2}}},
        doc! {"_id": 1, "sub": {"g": {"y": 2, "x": 1}}},
    );
}

#[test]
fn reordering_the_top_level_writes_the_moved_fields() {
    let roles = json!([{
        "name": "r", "apply_when": {},
        "fields": {"b": {"read": true, "write": false}},
        "additional_fields": {"read": true, "write": true}
    }]);
    assert_refused(
        roles,
        doc! {"_id": 1, "a": 1, "b": 2},
        doc! {"_id": 1, "b": 2, "a": 1},
    );
    // A moved field under nested rules is written whole: every sub-field must be writable.
    let nested = json!([{
        "name": "r", "apply_when": {},
        "fields": {"sub": {
            "fields": {"y": {"read": true, "write": false}},
            "additional_fields": {"read": true, "write": true}
        }},
        "additional_fields": {"read": true, "write": true}
    }]);
    assert_refused(
        nested,
        doc! {"_id": 1, "sub": {"x": 1, "y": 2}, "a": 1},
        doc! {"_id": 1, "a": 1, "sub": {"x": 1, "y": 2}},
    );
}

#[test]
fn an_unchanged_document_is_still_not_a_write() {
    let roles = json!([{
        "name": "r", "apply_when": {},
        "fields": {"sub": {"read": true, "write": false}},
        "additional_fields": {"read": true, "write": true}
    }]);
    let pre = doc! {"_id": 1, "sub": {"x": 1, "y": [{"k": 2, "j": 3}]}, "a": 1};
    let post = doc! {"_id": 1, "sub": {"x": 1, "y": [{"k": 2, "j": 3}]}, "a": 2};
    for (engine, out) in ENGINES.iter().zip(update(&roles, &pre, &post)) {
        assert!(out.allowed, "{engine:?}: {out:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Property

const KEYS: &[&str] = &["x", "y", "k", "j", "m"];

/// Where the reordered document sits under the top-level field `f`.
#[derive(Clone, Debug)]
enum Place {
    /// `f: {...}`
    Direct,
    /// `f: [..., {...}, ...]` at this index
    InArray(usize),
    /// `f: {"g": {...}}`
    InDoc,
}

#[derive(Clone, Debug)]
struct ReorderCase {
    pre: arb::Doc,
    /// The embedded document (distinct keys, two or more).
    inner: Vec<(&'static str, arb::Val)>,
    /// A permutation of `inner` that is not the identity.
    order: Vec<usize>,
    place: Place,
    /// Siblings of the embedded document in an array.
    siblings: Vec<arb::Val>,
    /// How the role forbids the write: `f` unwritable, or (nested rules) one moved key of the
    /// document unwritable.
    nested_rule: Option<usize>,
    /// `write: false` spelled as a boolean or as an expression that is false.
    as_expression: bool,
}

fn reorder_case() -> impl Strategy<Value = ReorderCase> {
    let inner = prop::sample::subsequence(KEYS, 2..=KEYS.len())
        .prop_shuffle()
        .prop_flat_map(|keys| {
            let n = keys.len();
            (
                prop::collection::vec(arb::val(), n)
                    .prop_map(move |vals| keys.iter().copied().zip(vals).collect::<Vec<_>>()),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            )
        })
        .prop_filter("a permutation that moves something", |(_, order)| {
            order.iter().enumerate().any(|(i, j)| i != *j)
        });
    (
        arb::document(),
        inner,
        prop_oneof![
            Just(Place::Direct),
            (0usize..3).prop_map(Place::InArray),
            Just(Place::InDoc)
        ],
        prop::collection::vec(arb::val(), 0..3),
        prop::option::of(0usize..KEYS.len()),
        any::<bool>(),
    )
        .prop_map(
            |(pre, (inner, order), place, siblings, nested_rule, as_expression)| ReorderCase {
                pre,
                inner,
                order,
                place,
                siblings,
                nested_rule,
                as_expression,
            },
        )
}

impl ReorderCase {
    fn embed(&self, inner: Document) -> Bson {
        match self.place {
            Place::Direct => Bson::Document(inner),
            Place::InDoc => Bson::Document(doc! {"g": inner}),
            Place::InArray(i) => {
                let mut items: Vec<Bson> = self.siblings.iter().map(arb::Val::bson).collect();
                items.insert(i.min(items.len()), Bson::Document(inner));
                Bson::Array(items)
            }
        }
    }

    /// `(pre, post)`: the same document but for the order of the embedded document's keys.
    fn images(&self) -> (Document, Document) {
        let inner_pre = arb::doc_of(&self.inner);
        let permuted: Vec<(&'static str, arb::Val)> =
            self.order.iter().map(|&i| self.inner[i].clone()).collect();
        let inner_post = arb::doc_of(&permuted);
        let mut pre = self.pre.bson();
        pre.remove("f");
        let mut post = pre.clone();
        pre.insert("f", self.embed(inner_pre));
        post.insert("f", self.embed(inner_post));
        (pre, post)
    }

    fn roles(&self) -> Value {
        let no = if self.as_expression {
            json!({"%%user.id": "nobody"})
        } else {
            json!(false)
        };
        let open = json!({"read": true, "write": true});
        let f_rule = match (self.nested_rule, &self.place) {
            // Nested rules govern the level of the embedded document itself (directly or as an
            // array element); the key made unwritable is one the permutation moved.
            (Some(pick), Place::Direct | Place::InArray(_)) => {
                let moved: Vec<&str> = self
                    .order
                    .iter()
                    .enumerate()
                    .filter(|(i, j)| i != *j)
                    .map(|(_, &j)| self.inner[j].0)
                    .collect();
                let key = moved[pick % moved.len()];
                json!({"fields": {key: {"read": true, "write": no}}, "additional_fields": open})
            }
            _ => json!({"read": true, "write": no}),
        };
        json!([{
            "name": "r", "apply_when": {},
            "fields": {"f": f_rule},
            "additional_fields": open
        }])
    }
}

proptest! {
    #![proptest_config(compiled_support::persisted(
        1000,
        "proptest-regressions/security_reorder.txt"
    ))]

    /// A permuted embedded document is a write that a role unable to write the field (or a moved
    /// key of it, under nested rules) is refused, by both engines alike; the unpermuted
    /// post-image is no write at all.
    #[test]
    fn permuting_an_embedded_document_is_a_write(case in reorder_case()) {
        let roles = case.roles();
        let (pre, post) = case.images();
        let outs = update(&roles, &pre, &post);
        prop_assert_eq!(&outs[0], &outs[1], "engines differ on {} -> {}", pre, post);
        prop_assert!(!outs[1].allowed, "reorder allowed: {} -> {} under {}", pre, post, roles);
        let same = update(&roles, &pre, &pre);
        prop_assert_eq!(&same[0], &same[1]);
        prop_assert!(same[1].allowed, "no-op refused: {} under {}: {:?}", pre, roles, same[1]);
    }
}
