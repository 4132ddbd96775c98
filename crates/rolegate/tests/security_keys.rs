//! Issue 9, finding 2: a rule key and a document key that differ are never taken for the same
//! key by the compiled engine, whatever their lengths and shared prefixes (a key tag holds the
//! key only for keys of at most seven bytes without a NUL; for any other key it keeps the first
//! seven bytes and a saturated length, and may never stand for the key itself).
//!
//! The regression tests reproduce the issue's example (`abcdefg` read as a 263-byte rule key that
//! starts with it) for reads, redaction, inserts and role choice, in both engines, and a rule
//! name holding a NUL (`a` then NUL, never the document key `a`); the property
//! test draws keys and values of every length 0–1,000 that share prefixes and checks that the
//! compiled engine gives the reference's answers and that neither engine lets an unlisted key
//! through.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod compiled_support;

use bson::{Bson, Document, RawDocumentBuf, doc};
use compiled_support::{ctx, rules, user};
use proptest::prelude::*;
use rolegate::{EngineKind, Scratch};
use serde_json::{Map, Value, json};

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

/// `abcdefg` followed by `len - 7` more letters.
fn long_key(len: usize) -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz";
    (0..len)
        .map(|i| char::from(alphabet[i % alphabet.len()]))
        .collect()
}

/// Every entry point of one engine agrees on reading `doc`; returns the redacted document (or
/// `None` when withheld) and the role.
fn read_all(
    roles: &Value,
    user_doc: &Document,
    doc: &Document,
    engine: EngineKind,
) -> (Option<Document>, Option<String>) {
    let rules = rules(roles.clone());
    let coll = rules.collection("app.items").unwrap();
    let context = ctx(user_doc.clone());
    let p = coll.prepare_with(&context, engine);
    let outcome = p.read(doc);
    let raw = RawDocumentBuf::from_document(doc).unwrap();
    let mut scratch = Scratch::new();
    for validate in [false, true] {
        let q = p.with_raw_validation(validate);
        let d = q.read_raw(&raw, &mut scratch);
        let mut out = Vec::new();
        let e = q.redact_raw(&raw, &mut scratch, &mut out);
        assert_eq!(d, e, "read_raw and redact_raw differ ({engine:?})");
        assert_eq!(d.visible, outcome.visible, "raw visibility ({engine:?})");
        let raw_role = d.role.and_then(|i| q.role_name(i)).map(str::to_string);
        assert_eq!(raw_role, outcome.role, "raw role ({engine:?})");
        let mut expected = Vec::new();
        if let Some(redacted) = &outcome.document {
            redacted.to_writer(&mut expected).unwrap();
        }
        assert_eq!(out, expected, "redact_raw bytes ({engine:?})");
    }
    (outcome.document, outcome.role)
}

#[test]
fn short_document_key_is_not_a_long_rule_key_on_read() {
    let long = long_key(263);
    let roles = json!([{
        "name": "r",
        "apply_when": {},
        "fields": { long.clone(): {"read": true} }
    }]);
    let d = doc! {"_id": 1, "abcdefg": "secret", long.clone(): "listed"};
    for engine in ENGINES {
        let (out, _) = read_all(&roles, &user("u1", doc! {}), &d, engine);
        let out = out.unwrap_or_default();
        assert!(
            !out.contains_key("abcdefg"),
            "{engine:?} returned the unlisted field abcdefg: {out}"
        );
        assert_eq!(out.get_str(&long).ok(), Some("listed"), "{engine:?}");
    }
}

/// A rule's field name may hold a NUL (`"a\u0000"`), which no document key does: it names
/// no document field. Short document keys are their own tags, so such a name must not be
/// tagged as the key before its NUL (`a`).
#[test]
fn a_rule_name_holding_a_nul_is_not_the_key_before_it() {
    let roles = json!([{
        "name": "r",
        "apply_when": {},
        "fields": { "a\u{0}": {"read": true}, "_id": {"read": true} }
    }]);
    let d = doc! {"_id": 1, "a": "secret"};
    for engine in ENGINES {
        let (out, _) = read_all(&roles, &user("u1", doc! {}), &d, engine);
        let out = out.unwrap_or_default();
        assert!(
            !out.contains_key("a"),
            "{engine:?} returned the unlisted field a: {out}"
        );
    }
}

#[test]
fn short_document_key_is_not_a_long_rule_key_on_insert() {
    let long = long_key(263);
    let roles = json!([{
        "name": "r",
        "apply_when": {},
        "insert": true,
        "fields": { long.clone(): {"write": true} }
    }]);
    let rules = rules(roles);
    let coll = rules.collection("app.items").unwrap();
    let context = ctx(user("u1", doc! {}));
    for engine in ENGINES {
        let p = coll.prepare_with(&context, engine);
        let ok = p.insert(&doc! {long.clone(): 1});
        assert!(ok.allowed, "{engine:?} refused the listed field: {ok:?}");
        let bad = p.insert(&doc! {"abcdefg": 1});
        assert!(
            !bad.allowed,
            "{engine:?} allowed an unlisted field: {bad:?}"
        );
        let upd = p.update(&doc! {"_id": 1}, &doc! {"_id": 1, "abcdefg": 1});
        assert!(
            !upd.allowed,
            "{engine:?} allowed an unlisted update: {upd:?}"
        );
    }
}

#[test]
fn short_document_key_does_not_choose_a_role_of_a_long_key() {
    let long = long_key(263);
    let roles = json!([
        {"name": "long", "apply_when": { long.clone(): "x" }, "read": true},
        {"name": "other", "apply_when": {}, "read": false}
    ]);
    let d = doc! {"_id": 1, "abcdefg": "x"};
    for engine in ENGINES {
        let (out, role) = read_all(&roles, &user("u1", doc! {}), &d, engine);
        assert_eq!(role.as_deref(), Some("other"), "{engine:?}");
        assert!(out.is_none(), "{engine:?} returned {out:?}");
    }
}

#[test]
fn short_string_value_is_not_a_long_indexed_constant() {
    // Indexed roles look document values up in a table of constants keyed the same way.
    let long = long_key(263);
    let mut roles: Vec<Value> = (0..4)
        .map(|i| json!({"name": format!("t{i}"), "apply_when": {"team": format!("t{i}")}, "read": true}))
        .collect();
    roles.push(json!({"name": "long", "apply_when": {"team": long.clone()}, "read": true}));
    roles.push(json!({"name": "other", "apply_when": {}, "read": false}));
    let roles = Value::Array(roles);
    let d = doc! {"_id": 1, "team": "abcdefg"};
    for engine in ENGINES {
        let (out, role) = read_all(&roles, &user("u1", doc! {}), &d, engine);
        assert_eq!(role.as_deref(), Some("other"), "{engine:?}");
        assert!(out.is_none(), "{engine:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Property: keys of every length 0–1,000 sharing prefixes

/// A key: `len` letters of the shared alphabet run, the last one changed when `twist` (so two
/// keys of the same length may differ only at their end).
#[derive(Clone, Debug)]
struct K {
    len: usize,
    twist: bool,
}

impl K {
    fn name(&self) -> String {
        let mut s = long_key(self.len);
        if self.twist && self.len > 0 {
            s.pop();
            s.push('Z');
        }
        s
    }
}

/// Lengths near the tag's blind spots (7, 8, multiples of 256 plus 0..8) and anywhere in 0–1,000.
fn key() -> impl Strategy<Value = K> {
    let len = prop_oneof![
        3 => prop::sample::select(&[0usize, 1, 6, 7, 8, 9, 15, 16, 17, 255, 256, 257, 262, 263, 264, 512, 519, 520, 775, 1000][..]),
        2 => 0usize..=1000,
        1 => (0usize..4, 0usize..9).prop_map(|(k, r)| k * 256 + r),
    ];
    (len, prop::bool::weighted(0.2)).prop_map(|(len, twist)| K { len, twist })
}

/// A rule key (never empty: the validator refuses an empty field name).
fn rule_key() -> impl Strategy<Value = K> {
    key().prop_map(|k| K {
        len: k.len.max(1),
        ..k
    })
}

#[derive(Clone, Debug)]
struct LongCase {
    /// Field rules: key, read, write.
    fields: Vec<(K, bool, bool)>,
    /// `apply_when` of the first role: `{key: value}`; the second role applies always.
    role_key: K,
    role_value: K,
    /// An indexed run of roles `{"team": value}` (before the first role).
    team_values: Vec<K>,
    /// Document members (key, value as a string of letters).
    doc: Vec<(K, K)>,
    team: Option<K>,
}

fn long_case() -> impl Strategy<Value = LongCase> {
    (
        prop::collection::vec((rule_key(), any::<bool>(), any::<bool>()), 1..5),
        rule_key(),
        key(),
        prop::collection::vec(key(), 0..5),
        prop::collection::vec((key(), key()), 0..6),
        prop::option::of(key()),
    )
        .prop_map(
            |(fields, role_key, role_value, team_values, doc, team)| LongCase {
                fields,
                role_key,
                role_value,
                team_values,
                doc,
                team,
            },
        )
}

impl LongCase {
    /// The field rules as written (a repeated key keeps its first rule): name, read, write.
    fn first_fields(&self) -> impl Iterator<Item = (String, bool, bool)> + '_ {
        let mut seen = Vec::new();
        self.fields.iter().filter_map(move |(k, r, w)| {
            let name = k.name();
            if seen.contains(&name) {
                return None;
            }
            seen.push(name.clone());
            Some((name, *r, *w))
        })
    }

    fn roles(&self) -> Value {
        let mut fields = Map::new();
        for (k, r, w) in &self.fields {
            fields
                .entry(k.name())
                .or_insert(json!({"read": r, "write": w}));
        }
        let mut roles: Vec<Value> = Vec::new();
        for (i, t) in self.team_values.iter().enumerate() {
            roles.push(json!({
                "name": format!("team{i}"),
                "apply_when": {"team": t.name()},
                "read": i % 2 == 0,
                "insert": i % 2 == 1,
                "write": i % 2 == 1,
            }));
        }
        roles.push(json!({
            "name": "keyed",
            "apply_when": { self.role_key.name(): self.role_value.name() },
            "insert": true,
            "fields": fields.clone(),
        }));
        roles.push(json!({
            "name": "rest",
            "apply_when": {},
            "insert": true,
            "fields": fields,
        }));
        Value::Array(roles)
    }

    fn document(&self) -> Document {
        let mut d = doc! {"_id": 1};
        if let Some(t) = &self.team {
            d.insert("team", t.name());
        }
        for (k, v) in &self.doc {
            let name = k.name();
            if !name.is_empty() && !name.starts_with('$') && !d.contains_key(&name) {
                d.insert(name, v.name());
            }
        }
        d
    }
}

proptest! {
    #![proptest_config(compiled_support::persisted(
        400,
        "proptest-regressions/security_keys.txt"
    ))]

    /// Reads (every entry point), redaction, inserts, updates and role choice agree between the
    /// engines, and no returned or written field is one the chosen role does not list.
    #[test]
    fn long_keys_sharing_prefixes_never_collide(case in long_case()) {
        let roles = case.roles();
        let d = case.document();
        let u = user("u1", doc! {});
        let (c_doc, c_role) = read_all(&roles, &u, &d, EngineKind::Compiled);
        let (r_doc, r_role) = read_all(&roles, &u, &d, EngineKind::Reference);
        prop_assert_eq!(&c_role, &r_role, "role of {}", d);
        prop_assert_eq!(
            c_doc.as_ref().map(|x| bson::to_vec(x).unwrap()), r_doc.as_ref().map(|x| bson::to_vec(x).unwrap()), "redaction of {}", d
        );
        // Nothing returned that no rule lists (the `keyed`/`rest` roles have no additional_fields).
        // (`write` implies `read`; a repeated rule key keeps its first rule.)
        let listed: Vec<String> = case.first_fields().filter(|f| f.1 || f.2).map(|f| f.0).collect();
        if matches!(r_role.as_deref(), Some("keyed" | "rest")) {
            for (k, _) in r_doc.iter().flatten() {
                prop_assert!(k == "_id" || listed.contains(k), "unlisted {} returned", k.len());
            }
        }
        // The chosen role is the first whose key and value are exactly those of the document.
        let want = d.get_str(case.role_key.name()).ok() == Some(case.role_value.name().as_str());
        let team = d.get_str("team").ok();
        let team_role = case.team_values.iter().position(|t| Some(t.name().as_str()) == team);
        let expected = match (team_role, want) {
            (Some(i), _) => format!("team{i}"),
            (None, true) => "keyed".to_string(),
            (None, false) => "rest".to_string(),
        };
        prop_assert_eq!(r_role.as_deref(), Some(expected.as_str()));

        let rules = rules(roles);
        let coll = rules.collection("app.items").unwrap();
        let context = ctx(u);
        let c = coll.prepare_with(&context, EngineKind::Compiled);
        let r = coll.prepare_with(&context, EngineKind::Reference);
        let ci = c.insert(&d);
        prop_assert_eq!(&ci, &r.insert(&d), "insert of {}", d);
        let writable: Vec<String> = case.first_fields().filter(|f| f.2).map(|f| f.0).collect();
        if ci.allowed && matches!(ci.role.as_deref(), Some("keyed" | "rest")) {
            for k in d.keys() {
                prop_assert!(k == "_id" || writable.contains(k), "unlisted {} inserted", k.len());
            }
        }
        let pre = doc! {"_id": 1, "team": d.get("team").cloned().unwrap_or(Bson::Null)};
        prop_assert_eq!(c.update(&pre, &d), r.update(&pre, &d), "update to {}", d);
    }
}
