//! Issue 9, finding 7: an expansion that resolves to nothing never matches, on either side of a
//! test, in either engine; a null that an expansion substituted does not match a missing value
//! (only a `null` the rule author wrote does, U22).
//!
//! The regression tests reproduce the example (`{"%%user.custom_data.orgId":
//! "%%root.orgId"}` against a user without `orgId` and documents whose `orgId` is null) and its
//! mirror; the property test draws pairs of expansions (request or document, each missing, null
//! or a value) and checks, for every comparison operator, that both engines agree, that the
//! test and its mirror agree, and that a missing expansion never makes a test true.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod compiled_support;

use bson::{Bson, Document, doc};
use compiled_support::{rules, user};
use proptest::prelude::*;
use rolegate::{EngineKind, RequestContext};
use serde_json::{Value, json};

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

/// Roles: `yes` when `rule` holds for the document, else `no`; returns the role chosen by each
/// engine (and checks the raw path agrees through `same_read`).
fn chosen(rule: &Value, ctx: &RequestContext, d: &Document) -> Vec<String> {
    let rules = rules(json!([
        {"name": "yes", "apply_when": rule, "read": true},
        {"name": "no", "apply_when": {}, "read": false}
    ]));
    let _ = compiled_support::same_read(&rules, ctx, d);
    let coll = rules.collection("app.items").unwrap();
    ENGINES
        .iter()
        .map(|e| coll.prepare_with(ctx, *e).read(d).role.unwrap_or_default())
        .collect()
}

fn user_ctx(custom: Document) -> RequestContext {
    RequestContext::for_user(user("u1", custom))
}

#[test]
fn missing_user_value_does_not_match_a_null_document_value() {
    let ctx = user_ctx(doc! {});
    let rule = json!({"%%user.custom_data.orgId": "%%root.orgId"});
    for d in [doc! {"_id": 1, "orgId": Bson::Null}, doc! {"_id": 2}] {
        assert_eq!(chosen(&rule, &ctx, &d), ["no", "no"], "{rule} on {d}");
    }
}

#[test]
fn the_mirrored_rule_agrees() {
    let ctx = user_ctx(doc! {});
    let rule = json!({"%%root.orgId": "%%user.custom_data.orgId"});
    for d in [doc! {"_id": 1, "orgId": Bson::Null}, doc! {"_id": 2}] {
        assert_eq!(chosen(&rule, &ctx, &d), ["no", "no"], "{rule} on {d}");
    }
}

#[test]
fn a_substituted_null_does_not_match_a_missing_field() {
    // The user's orgId is null; documents without orgId are not theirs.
    let ctx = user_ctx(doc! {"orgId": Bson::Null});
    for rule in [
        json!({"orgId": "%%user.custom_data.orgId"}),
        json!({"orgId": {"$eq": "%%user.custom_data.orgId"}}),
        json!({"orgId": {"$in": ["%%user.custom_data.orgId"]}}),
        json!({"orgId": {"$gte": "%%user.custom_data.orgId"}}),
        json!({"orgId": {"$lte": "%%user.custom_data.orgId"}}),
        json!({"%%user.custom_data.orgId": "%%root.orgId"}),
    ] {
        assert_eq!(
            chosen(&rule, &ctx, &doc! {"_id": 1}),
            ["no", "no"],
            "{rule}"
        );
        // A present null is a value like any other.
        let null = doc! {"_id": 1, "orgId": Bson::Null};
        assert_eq!(chosen(&rule, &ctx, &null), ["yes", "yes"], "{rule}");
    }
}

#[test]
fn negations_with_a_missing_expansion_do_not_grant() {
    let ctx = user_ctx(doc! {});
    for rule in [
        json!({"orgId": {"$ne": "%%user.custom_data.orgId"}}),
        json!({"orgId": {"$nin": ["%%user.custom_data.orgId"]}}),
        json!({"orgId": {"$nin": "%%user.custom_data.orgIds"}}),
        json!({"%%user.custom_data.orgId": {"$ne": "%%root.orgId"}}),
        json!({"orgId": {"$exists": "%%user.custom_data.flag"}}),
    ] {
        for d in [doc! {"_id": 1, "orgId": "o1"}, doc! {"_id": 2}] {
            assert_eq!(chosen(&rule, &ctx, &d), ["no", "no"], "{rule} on {d}");
        }
    }
}

#[test]
fn a_literal_null_still_matches_missing() {
    // U22: MongoDB's `null` matches missing when the rule author writes it.
    let ctx = user_ctx(doc! {});
    for rule in [
        json!({"%%user.custom_data.orgId": null}),
        json!({"orgId": null}),
        json!({"orgId": {"$eq": null}}),
        json!({"orgId": {"$in": [null, "x"]}}),
        json!({"orgId": {"$gte": null}}),
        json!({"deleted": {"$ne": true}}),
    ] {
        assert_eq!(
            chosen(&rule, &ctx, &doc! {"_id": 1}),
            ["yes", "yes"],
            "{rule}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Property

/// One side's value: missing, null, or a value.
#[derive(Clone, Debug)]
enum Side {
    Missing,
    Null,
    Val(Bson),
}

/// Where an expansion reads: the user's custom data, `%%values`, the document.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Root {
    User,
    Values,
    Doc,
}

impl Root {
    fn expansion(self, name: &str) -> String {
        match self {
            Root::User => format!("%%user.custom_data.{name}"),
            Root::Values => format!("%%values.{name}"),
            Root::Doc => format!("%%root.{name}"),
        }
    }
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![
        3 => Just(Side::Missing),
        3 => Just(Side::Null),
        4 => prop::sample::select(vec![
            Bson::String("x".into()),
            Bson::String("y".into()),
            Bson::Int32(1),
            Bson::Double(1.0),
            Bson::Int64(2),
            Bson::Boolean(true),
        ])
        .prop_map(Side::Val),
        1 => prop::sample::select(vec![
            Bson::Array(vec![Bson::Null]),
            Bson::Array(vec![]),
            Bson::Array(vec![Bson::String("x".into()), Bson::Null]),
        ])
        .prop_map(Side::Val),
    ]
}

fn root() -> impl Strategy<Value = Root> {
    prop::sample::select(vec![Root::User, Root::Values, Root::Doc])
}

/// Operators with their mirror (`{a: {op: b}}` ⇔ `{b: {mirror: a}}`); `None`: a plain match.
const OPS: &[(Option<&str>, Option<&str>)] = &[
    (None, None),
    (Some("$eq"), Some("$eq")),
    (Some("$ne"), Some("$ne")),
    (Some("$gt"), Some("$lt")),
    (Some("$gte"), Some("$lte")),
    (Some("$in"), Some("$in")),
    (Some("$nin"), Some("$nin")),
];

fn rule(subject: &str, op: Option<&str>, operand: &str) -> Value {
    match op {
        None => json!({ subject: operand }),
        Some(op @ ("$in" | "$nin")) => json!({ subject: { op: [operand] } }),
        Some(op) => json!({ subject: { op: operand } }),
    }
}

fn put(target: &mut Document, name: &str, side: &Side) {
    match side {
        Side::Missing => {}
        Side::Null => {
            target.insert(name, Bson::Null);
        }
        Side::Val(v) => {
            target.insert(name, v.clone());
        }
    }
}

fn is_scalar(side: &Side) -> bool {
    !matches!(side, Side::Val(Bson::Array(_)))
}

proptest! {
    #![proptest_config(compiled_support::persisted(
        600,
        "proptest-regressions/security_missing.txt"
    ))]

    /// For every operator, both engines agree, a test and its mirror agree (for scalar sides;
    /// arrays match element-wise in one direction only), and a missing expansion on either side
    /// never makes the test true.
    #[test]
    fn missing_expansions_never_match_on_either_side(
        a in side(), b in side(), ra in root(), rb in root(), op in 0..OPS.len()
    ) {
        let (ea, eb) = (ra.expansion("a"), rb.expansion("b"));
        let mut custom = Document::new();
        let mut values = Document::new();
        let mut d = doc! {"_id": 1};
        for (r, name, s) in [(ra, "a", &a), (rb, "b", &b)] {
            match r {
                Root::User => put(&mut custom, name, s),
                Root::Values => put(&mut values, name, s),
                Root::Doc => put(&mut d, name, s),
            }
        }
        let mut ctx = user_ctx(custom);
        ctx.values = Bson::Document(values);
        let (o, mirror) = OPS[op];
        let forward = rule(&ea, o, &eb);
        let backward = rule(&eb, mirror, &ea);
        let f = chosen(&forward, &ctx, &d);
        let r = chosen(&backward, &ctx, &d);
        prop_assert_eq!(&f[0], &f[1], "engines differ on {} over {}", forward, d);
        prop_assert_eq!(&r[0], &r[1], "engines differ on {} over {}", backward, d);
        if matches!(a, Side::Missing) || matches!(b, Side::Missing) {
            prop_assert_eq!(&f[1], "no", "{} granted with a missing side over {}", forward, d);
            prop_assert_eq!(&r[1], "no", "{} granted with a missing side over {}", backward, d);
        }
        let one_element_in = matches!(o, Some("$in" | "$nin"));
        if is_scalar(&a) && is_scalar(&b) && !one_element_in {
            prop_assert_eq!(&f[1], &r[1], "{} and {} differ over {}", forward, backward, d);
        }
    }

    /// `$all`, `$exists`, `$size` and negations of them with a missing expansion operand: never
    /// true, in either engine, whatever the subject.
    #[test]
    fn missing_operands_never_grant_in_other_operators(
        a in side(), ra in root(), rb in root(), op in 0..5usize
    ) {
        let (ea, eb) = (ra.expansion("a"), rb.expansion("b"));
        let mut custom = Document::new();
        let mut values = Document::new();
        let mut d = doc! {"_id": 1};
        match ra {
            Root::User => put(&mut custom, "a", &a),
            Root::Values => put(&mut values, "a", &a),
            Root::Doc => put(&mut d, "a", &a),
        }
        let mut ctx = user_ctx(custom);
        ctx.values = Bson::Document(values);
        // `b` is never set: its expansion is missing.
        let rule = match op {
            0 => json!({ ea: {"$all": [eb]} }),
            1 => json!({ ea: {"$all": eb} }),
            2 => json!({ ea: {"$exists": eb} }),
            3 => json!({ ea: {"$size": eb} }),
            _ => json!({ ea: {"$not": {"$ne": eb}} }),
        };
        let got = chosen(&rule, &ctx, &d);
        prop_assert_eq!(&got[0], &got[1], "engines differ on {} over {}", rule, d);
        if op < 4 {
            prop_assert_eq!(&got[1], "no", "{} granted over {}", rule, d);
        }
    }
}
