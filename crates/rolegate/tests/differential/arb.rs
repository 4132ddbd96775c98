//! Generators shared by `tests/differential.rs` and `tests/properties.rs`: random rule sets (as
//! app files that go through the real loader and validator), users, requests, documents and
//! update post-images, over a small vocabulary so that tests collide often.
//!
//! Everything is built from plain Rust enums (so proptest shrinks them structurally) and rendered
//! to JSON app files / BSON values only when a case runs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use bson::{Bson, Decimal128, Document, oid::ObjectId};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use rolegate::{FunctionHost, LoadOptions, RequestContext, RuleSet, Rules};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Strategy cache

thread_local! {
    static CACHE: std::cell::RefCell<std::collections::HashMap<String, Box<dyn std::any::Any>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Builds a strategy once per thread. `prop_recursive` re-runs its closure on every generated
/// value, so everything a closure uses must be cheap to clone, not rebuilt.
fn cached<T: std::fmt::Debug + 'static>(
    key: String,
    make: impl FnOnce() -> BoxedStrategy<T>,
) -> BoxedStrategy<T> {
    let hit = CACHE.with(|c| {
        c.borrow()
            .get(&key)
            .and_then(|b| b.downcast_ref::<BoxedStrategy<T>>())
            .cloned()
    });
    if let Some(s) = hit {
        return s;
    }
    let s = make();
    CACHE.with(|c| c.borrow_mut().insert(key, Box::new(s.clone())));
    s
}

// ---------------------------------------------------------------------------------------------
// Values

/// The two ObjectIds of the vocabulary (and their hex strings, which are also string values).
pub const OIDS: [&str; 2] = ["5f1e00000000000000000001", "5f1e00000000000000000002"];

/// A value of the vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Str(&'static str),
    I32(i32),
    I64(i64),
    F64(f64),
    Dec(&'static str),
    Bool(bool),
    Null,
    Oid(usize),
    Date(i64),
    Arr(Vec<Val>),
    Doc(Vec<(&'static str, Val)>),
    /// The rarer types: a regex, binary (generic and UUID), timestamp, min/max key, symbol,
    /// undefined, JavaScript code.
    Odd(Odd),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Odd {
    Regex(&'static str, &'static str),
    Bin,
    Uuid,
    Ts,
    MinKey,
    MaxKey,
    Sym(&'static str),
    Undefined,
    Code,
}

const UUID: &str = "5f1e0000-0000-4000-8000-000000000001";

impl Val {
    pub fn bson(&self) -> Bson {
        match self {
            Val::Str(s) => Bson::String((*s).to_string()),
            Val::I32(n) => Bson::Int32(*n),
            Val::I64(n) => Bson::Int64(*n),
            Val::F64(f) => Bson::Double(*f),
            Val::Dec(s) => Bson::Decimal128(Decimal128::from_str(s).unwrap()),
            Val::Bool(b) => Bson::Boolean(*b),
            Val::Null => Bson::Null,
            Val::Oid(i) => Bson::ObjectId(ObjectId::parse_str(OIDS[*i]).unwrap()),
            Val::Date(ms) => Bson::DateTime(bson::DateTime::from_millis(*ms)),
            Val::Odd(o) => match o {
                Odd::Regex(p, opts) => Bson::RegularExpression(bson::Regex {
                    pattern: (*p).to_string(),
                    options: (*opts).to_string(),
                }),
                Odd::Bin => Bson::Binary(bson::Binary {
                    subtype: bson::spec::BinarySubtype::Generic,
                    bytes: b"a".to_vec(),
                }),
                Odd::Uuid => Bson::Binary(bson::Binary::from_uuid(
                    bson::Uuid::parse_str(UUID).unwrap(),
                )),
                Odd::Ts => Bson::Timestamp(bson::Timestamp {
                    time: 1,
                    increment: 1,
                }),
                Odd::MinKey => Bson::MinKey,
                Odd::MaxKey => Bson::MaxKey,
                Odd::Sym(s) => Bson::Symbol((*s).to_string()),
                Odd::Undefined => Bson::Undefined,
                Odd::Code => Bson::JavaScriptCode("a".to_string()),
            },
            Val::Arr(items) => Bson::Array(items.iter().map(Val::bson).collect()),
            Val::Doc(members) => Bson::Document(doc_of(members)),
        }
    }

    /// The value as it is written in a rule file (JSON, Extended JSON where the type matters).
    pub fn json(&self) -> Value {
        match self {
            Val::Str(s) => json!(s),
            Val::I32(n) => json!(n),
            Val::I64(n) => json!({"$numberLong": n.to_string()}),
            Val::F64(f) if f.is_finite() => json!(f),
            Val::F64(f) => {
                json!({"$numberDouble": if f.is_nan() { "NaN".to_string() } else { f.to_string() }})
            }
            Val::Dec(s) => json!({"$numberDecimal": s}),
            Val::Bool(b) => json!(b),
            Val::Null => Value::Null,
            Val::Oid(i) => json!({"$oid": OIDS[*i]}),
            Val::Date(ms) => json!({"$date": {"$numberLong": ms.to_string()}}),
            Val::Odd(_) => self.bson().into_canonical_extjson(),
            Val::Arr(items) => Value::Array(items.iter().map(Val::json).collect()),
            Val::Doc(members) => {
                let mut m = Map::new();
                for (k, v) in members {
                    m.entry(k.to_string()).or_insert_with(|| v.json());
                }
                Value::Object(m)
            }
        }
    }
}

/// A document from members (a repeated key keeps its first value).
pub fn doc_of(members: &[(&'static str, Val)]) -> Document {
    let mut d = Document::new();
    for (k, v) in members {
        if !d.contains_key(*k) {
            d.insert(*k, v.bson());
        }
    }
    d
}

const STRS: &[&str] = &[
    "a", "b", "x", "t0", "t1", "g0", "g1", "u1", "u2", "10.0.0.1", "prod", OIDS[0], "",
];

pub fn string() -> impl Strategy<Value = Val> {
    select(STRS).prop_map(Val::Str)
}

/// Scalars of many BSON types, with the numeric look-alikes (1, 1.0, 1L, 1.0m) and NaN.
pub fn scalar() -> BoxedStrategy<Val> {
    cached("scalar".into(), || {
        prop_oneof![
        5 => string(),
        2 => select(&[1, 0, 2, -1][..]).prop_map(Val::I32),
        1 => select(&[1i64, 2, 1 << 40, i64::MAX, i64::MIN][..]).prop_map(Val::I64),
        2 => select(&[1.0, 1.5, f64::NAN, -0.0, 2.0, f64::INFINITY, 9.223372036854776e18][..]).prop_map(Val::F64),
        1 => select(&["1", "1.0", "2.5", "-0", "NaN", "Infinity", "1E+1"][..]).prop_map(Val::Dec),
        2 => any::<bool>().prop_map(Val::Bool),
        1 => Just(Val::Null),
        1 => (0..2usize).prop_map(Val::Oid),
        1 => select(&[0i64, 1000][..]).prop_map(Val::Date),
        1 => odd().prop_map(Val::Odd),
    ]
    .boxed()
    })
}

fn odd() -> impl Strategy<Value = Odd> {
    prop_oneof![
        3 => select(&[("^t", ""), ("A", "i"), ("^$", "")][..]).prop_map(|(p, o)| Odd::Regex(p, o)),
        1 => Just(Odd::Bin),
        1 => Just(Odd::Uuid),
        1 => Just(Odd::Ts),
        1 => Just(Odd::MinKey),
        1 => Just(Odd::MaxKey),
        1 => select(&["a", "t0"][..]).prop_map(Odd::Sym),
        1 => Just(Odd::Undefined),
        1 => Just(Odd::Code),
    ]
}

pub const SUBKEYS: &[&str] = &["x", "y", "k"];

/// Any value: scalars, arrays (empty, nested) and sub-documents, two levels deep.
pub fn val() -> BoxedStrategy<Val> {
    cached("val".into(), || {
        scalar()
            .prop_recursive(2, 10, 3, |inner| {
                prop_oneof![
                    vec(inner.clone(), 0..3).prop_map(Val::Arr),
                    vec((select(SUBKEYS), inner), 0..3).prop_map(Val::Doc),
                ]
            })
            .boxed()
    })
}

/// The constants that `team` fields and indexable roles use: strings and every numeric spelling
/// of 1, null (which matches missing), a bool and an ObjectId.
/// How many [`team_const`]s there are.
pub const TEAMS: usize = 20;

pub fn team_const(i: usize) -> Val {
    match i % TEAMS {
        0 => Val::Str("t0"),
        1 => Val::Str("t1"),
        2 => Val::Str("t2"),
        3 => Val::I32(1),
        4 => Val::F64(1.0),
        5 => Val::I64(1),
        6 => Val::Dec("1.0"),
        7 => Val::Null,
        8 => Val::Bool(true),
        9 => Val::Oid(0),
        10 => Val::Odd(Odd::Sym("t0")),
        11 => Val::Odd(Odd::Regex("^t", "")),
        12 => Val::Doc(vec![("x", Val::Str("t0"))]),
        13 => Val::F64(f64::NAN),
        14 => Val::Dec("NaN"),
        15 => Val::F64(-0.0),
        16 => Val::I32(0),
        17 => Val::Date(0),
        18 => Val::Str("T0"),
        _ => Val::Arr(vec![]),
    }
}

pub fn team() -> impl Strategy<Value = Val> {
    prop_oneof![
        4 => (0..3usize).prop_map(team_const),
        2 => (0..TEAMS).prop_map(team_const),
        1 => vec((0..TEAMS).prop_map(team_const), 0..3).prop_map(Val::Arr),
        1 => vec(vec((0..TEAMS).prop_map(team_const), 0..3).prop_map(Val::Arr), 1..3).prop_map(Val::Arr),
    ]
}

pub fn group_const(i: usize) -> Val {
    match i % 6 {
        0 => Val::Str("g0"),
        1 => Val::Str("g1"),
        2 => Val::Str("g2"),
        3 => Val::I32(1),
        4 => Val::F64(1.0),
        _ => Val::Null,
    }
}

// ---------------------------------------------------------------------------------------------
// Documents

/// Top-level field names of documents (besides `_id`).
pub const FIELDS: [&str; 8] = ["a", "b", "c", "owner_id", "team", "tags", "sub", "arr"];

pub fn user_id() -> impl Strategy<Value = Val> {
    prop_oneof![
        select(&["u1", "u2", OIDS[0]][..]).prop_map(Val::Str),
        (0..2usize).prop_map(Val::Oid),
    ]
}

fn sub_doc() -> impl Strategy<Value = Val> {
    (
        option::of(val()),
        option::of(scalar()),
        option::weighted(0.2, scalar()),
    )
        .prop_map(|(x, y, k)| {
            let mut m = Vec::new();
            if let Some(x) = x {
                m.push(("x", x));
            }
            if let Some(y) = y {
                m.push(("y", y));
            }
            if let Some(k) = k {
                m.push(("k", k));
            }
            Val::Doc(m)
        })
}

fn elem_doc() -> impl Strategy<Value = Val> {
    (
        option::weighted(0.8, scalar()),
        option::weighted(0.4, scalar()),
    )
        .prop_map(|(k, j)| {
            let mut m = Vec::new();
            if let Some(k) = k {
                m.push(("k", k));
            }
            if let Some(j) = j {
                m.push(("j", j));
            }
            Val::Doc(m)
        })
}

/// A value for the top-level field `name`.
pub fn field_value(name: &'static str) -> BoxedStrategy<Val> {
    match name {
        "_id" => prop_oneof![
            (0..2usize).prop_map(Val::Oid),
            select(&[1, 2][..]).prop_map(Val::I32),
            Just(Val::Str("a"))
        ]
        .boxed(),
        "owner_id" => prop_oneof![
            6 => user_id(),
            1 => Just(Val::Null),
            1 => vec(user_id(), 0..3).prop_map(Val::Arr),
        ]
        .boxed(),
        "team" => team().boxed(),
        "tags" => prop_oneof![
            4 => vec(string(), 0..4).prop_map(Val::Arr),
            1 => string(),
            1 => vec(scalar(), 0..3).prop_map(Val::Arr),
        ]
        .boxed(),
        "sub" => prop_oneof![
            5 => sub_doc(),
            1 => scalar(),
            2 => vec(sub_doc(), 0..3).prop_map(Val::Arr),
        ]
        .boxed(),
        "arr" => prop_oneof![
            5 => vec(elem_doc(), 0..4).prop_map(Val::Arr),
            1 => vec(prop_oneof![elem_doc().boxed(), scalar()], 0..3).prop_map(Val::Arr),
            1 => vec(vec(elem_doc(), 0..2).prop_map(Val::Arr), 1..3).prop_map(Val::Arr),
            1 => elem_doc(),
            1 => scalar(),
        ]
        .boxed(),
        _ => val(),
    }
}

/// A document: members in the order they are written.
#[derive(Clone, Debug, PartialEq)]
pub struct Doc(pub Vec<(&'static str, Val)>);

impl Doc {
    pub fn bson(&self) -> Document {
        doc_of(&self.0)
    }
}

/// A document with `_id` (usually first) and a random subset of the vocabulary in random order.
pub fn document() -> impl Strategy<Value = Doc> {
    let others: Vec<BoxedStrategy<Option<(&'static str, Val)>>> = FIELDS
        .iter()
        .map(|&name| option::weighted(0.6, field_value(name).prop_map(move |v| (name, v))).boxed())
        .collect();
    (
        option::weighted(0.85, field_value("_id")),
        others.prop_shuffle(),
        any::<bool>(),
    )
        .prop_map(|(id, others, id_last)| {
            let mut members: Vec<(&'static str, Val)> = others.into_iter().flatten().collect();
            if let Some(id) = id {
                if id_last {
                    members.push(("_id", id));
                } else {
                    members.insert(0, ("_id", id));
                }
            }
            Doc(members)
        })
}

/// How one field changes between the pre-image and the post-image of an update.
#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    Keep,
    Set(Val),
    Remove,
    /// Sets a key inside the field's sub-document (or its first array element's).
    Nested(&'static str, Val),
    /// Reverses the key order of the field's sub-document (or its first array element's): a
    /// write of the field (issue 9, finding 9).
    Reorder,
}

fn mutation(name: &'static str) -> BoxedStrategy<Mutation> {
    prop_oneof![
        6 => Just(Mutation::Keep),
        2 => field_value(name).prop_map(Mutation::Set),
        1 => Just(Mutation::Remove),
        1 => (select(&["x", "y", "k", "j"][..]), scalar()).prop_map(|(k, v)| Mutation::Nested(k, v)),
        1 => Just(Mutation::Reorder),
    ]
    .boxed()
}

/// One mutation per vocabulary field (`_id` first, then [`FIELDS`]).
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let mut all = vec![
        prop_oneof![9 => Just(Mutation::Keep), 1 => field_value("_id").prop_map(Mutation::Set)]
            .boxed(),
    ];
    all.extend(FIELDS.iter().map(|&n| mutation(n)));
    all
}

/// The post-image: `pre` with `muts` applied (new fields go last).
pub fn apply(pre: &Doc, muts: &[Mutation]) -> Doc {
    let mut out = pre.0.clone();
    let names = std::iter::once("_id").chain(FIELDS);
    for (name, m) in names.zip(muts) {
        let pos = out.iter().position(|(k, _)| *k == name);
        match (m, pos) {
            (Mutation::Keep, _) => {}
            (Mutation::Set(v), Some(i)) => out[i].1 = v.clone(),
            (Mutation::Set(v), None) => out.push((name, v.clone())),
            (Mutation::Remove, Some(i)) => {
                out.remove(i);
            }
            (Mutation::Remove, None) => {}
            (Mutation::Nested(k, v), Some(i)) => set_nested(&mut out[i].1, k, v),
            (Mutation::Nested(..), None) => {}
            (Mutation::Reorder, Some(i)) => reorder(&mut out[i].1),
            (Mutation::Reorder, None) => {}
        }
    }
    Doc(out)
}

fn reorder(target: &mut Val) {
    match target {
        Val::Doc(m) => m.reverse(),
        Val::Arr(items) => {
            if let Some(first) = items.first_mut() {
                reorder(first);
            }
        }
        _ => {}
    }
}

fn set_nested(target: &mut Val, key: &'static str, v: &Val) {
    match target {
        Val::Doc(m) => match m.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = v.clone(),
            None => m.push((key, v.clone())),
        },
        Val::Arr(items) => {
            if let Some(first) = items.first_mut() {
                set_nested(first, key, v);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions

/// Where an expression appears: decides which expansions it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// A role's `apply_when`.
    ApplyWhen,
    /// A role's `read`/`write`/`insert`/`delete`/`document_filters.*`.
    Perm,
    /// A field rule or `additional_fields` (`%%this`/`%%prev` too).
    Field,
    /// A filter's `apply_when` (request only).
    Filter,
}

const DOC_SUBJECTS: &[&str] = &[
    "a",
    "b",
    "c",
    "owner_id",
    "team",
    "tags",
    "sub.x",
    "sub.y",
    "arr.k",
    "sub",
    "arr",
    "_id",
    "%%root.a",
    "%%root.owner_id",
    "%%root.sub.x",
    "%%prevRoot.a",
    "%%prevRoot.owner_id",
    "%%prevRoot",
    "%%root",
];
const REQ_SUBJECTS: &[&str] = &[
    "%%user.id",
    "%%user.custom_data.group",
    "%%user.custom_data.teams",
    "%%user.data.email",
    "%%values.v1",
    "%%values.v2",
    "%%environment.tag",
    "%%environment.values.open",
    "%%request.remoteIPAddress",
    "%%user.type",
    "%%user.custom_data.teams.0",
    "%%request.requestHeaders.x-api-key",
    "%%request.requestHeaders.Content-Type",
    "%%user.identities.provider_type",
    "%%user.identities.0.id",
    "%%values.nope",
    "%%user",
];
const FIELD_SUBJECTS: &[&str] = &["%%this", "%%prev", "%%this.x", "%%prev.k"];
const DOC_OPERANDS: &[&str] = &[
    "%%root.a",
    "%%root.owner_id",
    "%%root.team",
    "%%root.sub",
    "%%prevRoot.a",
    "%%prevRoot.team",
];
const FIELD_OPERANDS: &[&str] = &["%%this", "%%prev", "%%this.x"];
const FUNCTIONS: &[&str] = &["isU1", "echo", "fail", "failOnNull"];

/// A value position of an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Opd {
    Lit(Val),
    Exp(&'static str),
    Arr(Vec<Opd>),
    ToOid(Box<Opd>),
    ToStr(Box<Opd>),
    Func(&'static str, Vec<Opd>),
    /// A document with operand values (function arguments).
    Doc(Vec<(&'static str, Opd)>),
}

impl Opd {
    pub fn json(&self) -> Value {
        match self {
            Opd::Lit(v) => v.json(),
            Opd::Exp(e) => json!(e),
            Opd::Arr(items) => Value::Array(items.iter().map(Opd::json).collect()),
            Opd::ToOid(a) => json!({"%stringToOid": a.json()}),
            Opd::ToStr(a) => json!({"%oidToString": a.json()}),
            Opd::Func(name, args) => json!({"%function": {
                "name": name,
                "arguments": args.iter().map(Opd::json).collect::<Vec<_>>(),
            }}),
            Opd::Doc(members) => {
                let mut m = Map::new();
                for (k, v) in members {
                    m.entry(k.to_string()).or_insert_with(|| v.json());
                }
                Value::Object(m)
            }
        }
    }
}

/// Expansions that usually hold arrays (for `$in`/`$nin`).
const ARRAY_EXPANSIONS: &[&str] = &[
    "%%user.custom_data.teams",
    "%%values.v2",
    "%%values.v1",
    "%%user.custom_data.group",
];
const ARRAY_DOC_EXPANSIONS: &[&str] = &[
    "%%root.tags",
    "%%root.arr",
    "%%prevRoot.tags",
    "%%root.team",
];

fn array_expansion(site: Site) -> BoxedStrategy<&'static str> {
    match site {
        Site::Filter => select(ARRAY_EXPANSIONS).boxed(),
        _ => prop_oneof![3 => select(ARRAY_EXPANSIONS), 2 => select(ARRAY_DOC_EXPANSIONS), 1 => expansion(site)].boxed(),
    }
}

fn expansion(site: Site) -> BoxedStrategy<&'static str> {
    let req = select(REQ_SUBJECTS);
    match site {
        Site::Filter => req.boxed(),
        Site::ApplyWhen | Site::Perm => prop_oneof![3 => req, 2 => select(DOC_OPERANDS)].boxed(),
        Site::Field => prop_oneof![
            3 => req,
            2 => select(DOC_OPERANDS),
            2 => select(FIELD_OPERANDS),
        ]
        .boxed(),
    }
}

fn subject(site: Site) -> BoxedStrategy<&'static str> {
    let req = select(REQ_SUBJECTS);
    match site {
        Site::Filter => prop_oneof![6 => req, 1 => Just("%%true")].boxed(),
        Site::ApplyWhen | Site::Perm => prop_oneof![
            5 => select(DOC_SUBJECTS),
            4 => req,
            1 => select(&["%%true", "%%false"][..]),
        ]
        .boxed(),
        Site::Field => prop_oneof![
            4 => select(DOC_SUBJECTS),
            3 => req,
            3 => select(FIELD_SUBJECTS),
            1 => select(&["%%true", "%%false"][..]),
        ]
        .boxed(),
    }
}

/// A simple operand: literal or expansion.
fn simple_operand(site: Site) -> BoxedStrategy<Opd> {
    prop_oneof![3 => val().prop_map(Opd::Lit), 2 => expansion(site).prop_map(Opd::Exp)].boxed()
}

fn function_name() -> impl Strategy<Value = &'static str> {
    prop_oneof![3 => Just("isU1"), 3 => Just("echo"), 1 => Just("fail"), 1 => Just("failOnNull")]
}

/// A `%function` argument: a simple operand, or a document or array of them (expansions at any
/// depth; missing ones become null in arrays and drop their key in documents).
fn argument(site: Site) -> BoxedStrategy<Opd> {
    prop_oneof![
        4 => simple_operand(site),
        1 => vec((select(&["u", "r"][..]), simple_operand(site)), 1..3).prop_map(Opd::Doc),
        1 => vec(simple_operand(site), 0..3).prop_map(Opd::Arr),
    ]
    .boxed()
}

pub fn operand(site: Site) -> BoxedStrategy<Opd> {
    cached(format!("operand{site:?}"), || {
        prop_oneof![
        8 => val().prop_map(Opd::Lit),
        6 => expansion(site).prop_map(Opd::Exp),
        1 => prop_oneof![
            2 => select(&[OIDS[0], OIDS[1]][..]).prop_map(|s| Opd::Lit(Val::Str(s))),
            1 => (0..2usize).prop_map(|i| Opd::Lit(Val::Oid(i))),
            2 => select(&["%%user.id", "%%root.owner_id", "%%values.v1"][..]).prop_map(Opd::Exp),
        ]
        .prop_map(|a| Opd::ToOid(Box::new(a))),
        1 => prop_oneof![
            2 => (0..2usize).prop_map(|i| Opd::Lit(Val::Oid(i))),
            1 => string().prop_map(Opd::Lit),
            2 => select(&["%%user.id", "%%root.owner_id", "%%root._id"][..]).prop_map(Opd::Exp),
        ]
        .prop_map(move |a| match (site, a) {
            // Filters' apply_when cannot read the document.
            (Site::Filter, Opd::Exp(e)) if e.starts_with("%%root") => Opd::ToStr(Box::new(Opd::Exp("%%user.id"))),
            (_, a) => Opd::ToStr(Box::new(a)),
        }),
        1 => (function_name(), vec(argument(site), 0..3)).prop_map(|(n, a)| Opd::Func(n, a)),
        1 => vec(simple_operand(site), 0..3).prop_map(Opd::Arr),
    ]
    .prop_map(move |o| match (site, o) {
        (Site::Filter, Opd::ToOid(a)) if matches!(*a, Opd::Exp(e) if e.starts_with("%%root")) => {
            Opd::ToOid(Box::new(Opd::Exp("%%user.id")))
        }
        (_, o) => o,
    })
    .boxed()
    })
}

/// An operand that may evaluate to an array (`$in`, `$nin`).
fn array_operand(site: Site) -> BoxedStrategy<Opd> {
    cached(format!("array_operand{site:?}"), || {
        prop_oneof![
        5 => vec(scalar(), 0..4).prop_map(|v| Opd::Lit(Val::Arr(v))),
        3 => array_expansion(site).prop_map(Opd::Exp),
        2 => vec(simple_operand(site), 1..3).prop_map(Opd::Arr),
        1 => (Just("echo"), vec(array_expansion(site).prop_map(Opd::Exp), 1..2)).prop_map(|(n, a)| Opd::Func(n, a)),
    ]
    .boxed()
    })
}

/// One operator of an operator document.
#[derive(Clone, Debug, PartialEq)]
pub enum OpI {
    Cmp(&'static str, Opd),
    In(Opd),
    Nin(Opd),
    Exists(Opd),
    All(Vec<Val>),
    Size(Opd),
    Type(Vec<&'static str>),
    Regex(&'static str, Option<&'static str>),
    ElemOps(Vec<(bool, OpI)>),
    ElemQuery(Vec<(&'static str, Val)>),
    Not(Vec<(bool, OpI)>),
    Logic(&'static str, Vec<Vec<(bool, OpI)>>),
    Mod(i64, i64),
}

impl OpI {
    fn name(&self) -> &'static str {
        match self {
            OpI::Cmp(n, _) => n,
            OpI::In(_) => "in",
            OpI::Nin(_) => "nin",
            OpI::Exists(_) => "exists",
            OpI::All(_) => "all",
            OpI::Size(_) => "size",
            OpI::Type(_) => "type",
            OpI::Regex(..) => "regex",
            OpI::ElemOps(_) | OpI::ElemQuery(_) => "elemMatch",
            OpI::Not(_) => "not",
            OpI::Logic(n, _) => n,
            OpI::Mod(..) => "mod",
        }
    }
}

/// Renders operators into one operator document (a repeated operator keeps its first use).
pub fn ops_json(ops: &[(bool, OpI)]) -> Value {
    let mut m = Map::new();
    let mut seen: Vec<&str> = Vec::new();
    for (dollar, op) in ops {
        let name = op.name();
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        // The documented operators take either prefix; the MongoDB extras use `$`.
        let documented = matches!(
            name,
            "eq" | "ne"
                | "gt"
                | "gte"
                | "lt"
                | "lte"
                | "in"
                | "nin"
                | "exists"
                | "and"
                | "or"
                | "nor"
        );
        let key = if *dollar || !documented {
            format!("${name}")
        } else {
            format!("%{name}")
        };
        let value = match op {
            OpI::Cmp(_, o) | OpI::In(o) | OpI::Nin(o) | OpI::Exists(o) | OpI::Size(o) => o.json(),
            OpI::All(vals) => Value::Array(vals.iter().map(Val::json).collect()),
            OpI::Type(names) if names.len() == 1 => json!(names[0]),
            OpI::Type(names) => json!(names),
            OpI::Regex(p, opts) => {
                if let Some(o) = opts {
                    m.insert("$options".into(), json!(o));
                }
                json!(p)
            }
            OpI::ElemOps(inner) | OpI::Not(inner) => ops_json(inner),
            OpI::ElemQuery(members) => Val::Doc(members.clone()).json(),
            OpI::Logic(_, docs) => Value::Array(docs.iter().map(|d| ops_json(d)).collect()),
            OpI::Mod(d, r) => json!([d, r]),
        };
        m.insert(key, value);
    }
    Value::Object(m)
}

const CMP: &[&str] = &["eq", "ne", "gt", "gte", "lt", "lte"];
const TYPES: &[&str] = &[
    "string", "number", "int", "long", "double", "decimal", "array", "null", "objectId", "bool",
    "date", "object",
];

/// Operators that hold no other operators.
fn basic_op(site: Site) -> BoxedStrategy<OpI> {
    cached(format!("basic_op{site:?}"), || {
        prop_oneof![
        6 => (select(CMP), operand(site)).prop_map(|(c, o)| OpI::Cmp(c, o)),
        3 => array_operand(site).prop_map(OpI::In),
        2 => array_operand(site).prop_map(OpI::Nin),
        2 => prop_oneof![
            3 => any::<bool>().prop_map(|b| Opd::Lit(Val::Bool(b))),
            1 => select(&[0, 1][..]).prop_map(|n| Opd::Lit(Val::I32(n))),
            1 => select(&["%%true", "%%false", "%%user.custom_data.group", "%%environment.values.open"][..]).prop_map(Opd::Exp),
        ]
        .prop_map(OpI::Exists),
        1 => vec(select(TYPES), 1..3).prop_map(OpI::Type),
        1 => (select(&["^t", "a", "^$", "U"][..]), option::of(select(&["i", ""][..]))).prop_map(|(p, o)| OpI::Regex(p, o)),
        1 => prop_oneof![
            select(&[0, 1, 2][..]).prop_map(|n| Opd::Lit(Val::I32(n))),
            Just(Opd::Lit(Val::F64(1.0))),
            Just(Opd::Exp("%%values.v2")),
        ]
        .prop_map(OpI::Size),
    ]
    .boxed()
    })
}

fn op_item(site: Site) -> BoxedStrategy<(bool, OpI)> {
    cached(format!("op_item{site:?}"), || {
        let basic = || (any::<bool>(), basic_op(site));
        prop_oneof![
        12 => basic(),
        1 => (any::<bool>(), vec(scalar(), 0..3).prop_map(OpI::All)),
        1 => (any::<bool>(), vec(basic(), 1..3).prop_map(OpI::ElemOps)),
        1 => (
            any::<bool>(),
            vec((select(&["k", "j", "x"][..]), scalar()), 1..3).prop_map(OpI::ElemQuery)
        ),
        1 => (any::<bool>(), vec(basic(), 1..3).prop_map(OpI::Not)),
        2 => (
            any::<bool>(),
            (select(&["and", "or", "nor"][..]), vec(vec(basic(), 1..3), 1..3))
                .prop_map(|(n, d)| OpI::Logic(n, d))
        ),
        1 => (any::<bool>(), select(&[(2i64, 0i64), (2, 1), (3, 1)][..]).prop_map(|(d, r)| OpI::Mod(d, r))),
    ]
    .boxed()
    })
}

/// What a subject is tested with.
#[derive(Clone, Debug, PartialEq)]
pub enum Pred {
    Match(Opd),
    Ops(Vec<(bool, OpI)>),
}

impl Pred {
    pub fn json(&self) -> Value {
        match self {
            Pred::Match(o) => o.json(),
            Pred::Ops(ops) => ops_json(ops),
        }
    }
}

fn predicate(site: Site) -> BoxedStrategy<Pred> {
    cached(format!("predicate{site:?}"), || {
        prop_oneof![
            5 => operand(site).prop_map(Pred::Match),
            4 => vec(op_item(site), 1..3).prop_map(Pred::Ops),
        ]
        .boxed()
    })
}

/// A rule expression.
#[derive(Clone, Debug, PartialEq)]
pub enum E {
    /// `{}`
    Empty,
    Bool(bool),
    /// `%and`/`%or`/`%nor` (`$` spelling when the flag is set).
    Logic(&'static str, bool, Vec<E>),
    /// `%not`/`$not`
    Not(bool, Box<E>),
    /// One expression document: subject clauses, ANDed (a repeated subject keeps its first use).
    Clauses(Vec<(&'static str, Pred)>),
    /// Raw JSON (fixed shapes such as the indexable roles).
    Raw(Value),
}

impl E {
    pub fn json(&self) -> Value {
        match self {
            E::Empty => json!({}),
            E::Bool(b) => json!(b),
            E::Logic(op, dollar, items) => {
                let key = format!("{}{op}", if *dollar { "$" } else { "%" });
                json!({ key: items.iter().map(E::json).collect::<Vec<_>>() })
            }
            E::Not(dollar, e) => {
                let key = if *dollar { "$not" } else { "%not" };
                json!({ key: e.json() })
            }
            E::Clauses(clauses) => {
                let mut m = Map::new();
                for (s, p) in clauses {
                    m.entry(s.to_string()).or_insert_with(|| p.json());
                }
                Value::Object(m)
            }
            E::Raw(v) => v.clone(),
        }
    }
}

/// A subject test (the common leaf), with the `%function` idiom for `%%true`/`%%false`.
fn clause(site: Site) -> BoxedStrategy<(&'static str, Pred)> {
    cached(format!("clause{site:?}"), || {
        prop_oneof![
            10 => (subject(site), predicate(site)),
            1 => (
                select(&["%%true", "%%false"][..]),
                (function_name(), vec(simple_operand(site), 0..2))
                    .prop_map(|(n, a)| Pred::Match(Opd::Func(n, a)))
            ),
        ]
        .boxed()
    })
}

/// Expressions up to four levels deep.
pub fn expr(site: Site) -> BoxedStrategy<E> {
    cached(format!("expr{site:?}"), || {
        let clause = clause(site);
        let leaf = prop_oneof![
            2 => Just(E::Empty),
            2 => any::<bool>().prop_map(E::Bool),
            10 => clause.clone().prop_map(|c| E::Clauses(vec![c])),
        ];
        leaf.prop_recursive(3, 16, 3, move |inner| {
            prop_oneof![
                3 => (select(&["and", "or", "nor"][..]), any::<bool>(), vec(inner.clone(), 1..4))
                    .prop_map(|(op, d, items)| E::Logic(op, d, items)),
                1 => (any::<bool>(), inner.clone()).prop_map(|(d, e)| E::Not(d, Box::new(e))),
                2 => vec(clause.clone(), 2..4).prop_map(E::Clauses),
            ]
        })
        .boxed()
    })
}

// ---------------------------------------------------------------------------------------------
// Roles and filters

/// A permission slot: absent, a boolean, or an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Perm {
    Absent,
    Bool(bool),
    Expr(E),
}

impl Perm {
    fn put(&self, m: &mut Map<String, Value>, key: &str) {
        match self {
            Perm::Absent => {}
            Perm::Bool(b) => {
                m.insert(key.into(), json!(b));
            }
            Perm::Expr(e) => {
                m.insert(key.into(), e.json());
            }
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Perm::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

pub fn perm(site: Site, absent: u32, boolean: u32, expression: u32) -> BoxedStrategy<Perm> {
    prop_oneof![
        absent => Just(Perm::Absent),
        boolean => any::<bool>().prop_map(Perm::Bool),
        expression => expr(site).prop_map(Perm::Expr),
    ]
    .boxed()
}

/// `read`/`write` of a field rule or of `additional_fields`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub read: Perm,
    pub write: Perm,
}

impl Pair {
    pub fn json(&self) -> Value {
        let mut m = Map::new();
        self.read.put(&mut m, "read");
        self.write.put(&mut m, "write");
        Value::Object(m)
    }
}

/// A field rule, with nested `fields`/`additional_fields` (`nested` is `None` when absent).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldG {
    pub perms: Pair,
    pub nested: Option<Tree>,
}

/// The `fields` map and `additional_fields` of one level.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    /// `None`: no `fields` key.
    pub fields: Option<Vec<(&'static str, FieldG)>>,
    /// `None`: no `additional_fields` key.
    pub additional: Option<Pair>,
}

impl Tree {
    fn put(&self, m: &mut Map<String, Value>) {
        if let Some(fields) = &self.fields {
            let mut f = Map::new();
            for (name, rule) in fields {
                if !f.contains_key(*name) {
                    f.insert(name.to_string(), rule.json());
                }
            }
            m.insert("fields".into(), Value::Object(f));
        }
        if let Some(a) = &self.additional {
            m.insert("additional_fields".into(), a.json());
        }
    }

    pub fn get(&self, name: &str) -> Option<&FieldG> {
        self.fields
            .as_ref()
            .and_then(|f| f.iter().find(|(n, _)| *n == name))
            .map(|(_, r)| r)
    }
}

impl FieldG {
    pub fn json(&self) -> Value {
        let mut m = match self.perms.json() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Some(t) = &self.nested {
            t.put(&mut m);
        }
        Value::Object(m)
    }
}

/// How often each permission shape is drawn.
#[derive(Clone, Copy, Debug)]
pub struct Weights {
    pub absent: u32,
    pub boolean: u32,
    pub expression: u32,
}

pub const MIXED: Weights = Weights {
    absent: 3,
    boolean: 3,
    expression: 3,
};
pub const BOOLEAN_ONLY: Weights = Weights {
    absent: 1,
    boolean: 2,
    expression: 0,
};

fn pair(w: Weights) -> BoxedStrategy<Pair> {
    let p = || perm(Site::Field, w.absent, w.boolean, w.expression);
    (p(), p())
        .prop_map(|(read, write)| Pair { read, write })
        .boxed()
}

const TOP_NAMES: &[&str] = &[
    "a", "b", "c", "owner_id", "team", "tags", "sub", "arr", "_id",
];
const NESTED_NAMES: &[&str] = &["x", "y", "k", "j"];

fn nested_tree(w: Weights) -> BoxedStrategy<Tree> {
    (
        option::weighted(
            0.8,
            vec(
                (
                    select(NESTED_NAMES),
                    pair(w).prop_map(|perms| FieldG {
                        perms,
                        nested: None,
                    }),
                ),
                0..3,
            ),
        ),
        option::weighted(0.4, pair(w)),
    )
        .prop_map(|(fields, additional)| Tree { fields, additional })
        .boxed()
}

fn field_rule(w: Weights) -> BoxedStrategy<FieldG> {
    prop_oneof![
        3 => pair(w).prop_map(|perms| FieldG { perms, nested: None }),
        2 => (
            // A field with nested rules usually leaves its own read/write undefined.
            prop_oneof![3 => Just(Pair { read: Perm::Absent, write: Perm::Absent }), 1 => pair(w)],
            nested_tree(w)
        )
            .prop_map(|(perms, t)| FieldG { perms, nested: Some(t) }),
    ]
    .boxed()
}

/// The top-level `fields` and `additional_fields` of a role.
pub fn tree(w: Weights, fields_weight: f64) -> BoxedStrategy<Tree> {
    (
        option::weighted(fields_weight, vec((select(TOP_NAMES), field_rule(w)), 0..4)),
        option::weighted(0.5, pair(w)),
    )
        .prop_map(|(fields, additional)| Tree { fields, additional })
        .boxed()
}

/// A role (its name is given when rendered).
#[derive(Clone, Debug, PartialEq)]
pub struct RoleG {
    /// `None`: no `apply_when` key (behaves as `{}`).
    pub apply_when: Option<E>,
    pub read: Perm,
    pub write: Perm,
    pub insert: Perm,
    pub delete: Perm,
    pub search: Option<bool>,
    /// `document_filters` with its `read` and `write` members (`Absent`: member left out).
    pub document_filters: Option<(Perm, Perm)>,
    pub tree: Tree,
}

impl RoleG {
    pub fn json(&self, name: &str) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(name));
        if let Some(a) = &self.apply_when {
            m.insert("apply_when".into(), a.json());
        }
        if let Some((r, w)) = &self.document_filters {
            let mut d = Map::new();
            r.put(&mut d, "read");
            w.put(&mut d, "write");
            m.insert("document_filters".into(), Value::Object(d));
        }
        self.read.put(&mut m, "read");
        self.write.put(&mut m, "write");
        self.insert.put(&mut m, "insert");
        self.delete.put(&mut m, "delete");
        if let Some(s) = self.search {
            m.insert("search".into(), json!(s));
        }
        self.tree.put(&mut m);
        Value::Object(m)
    }

    /// A role that applies to everything and permits everything (`apply_when: {}`).
    pub fn open() -> RoleG {
        RoleG {
            apply_when: Some(E::Empty),
            read: Perm::Bool(true),
            write: Perm::Bool(true),
            insert: Perm::Absent,
            delete: Perm::Absent,
            search: None,
            document_filters: None,
            tree: Tree {
                fields: None,
                additional: None,
            },
        }
    }
}

/// A random role: random `apply_when`, permissions, `search`, `document_filters`, fields.
pub fn role() -> BoxedStrategy<RoleG> {
    let gate = || perm(Site::Perm, 2, 1, 3);
    (
        option::weighted(0.9, expr(Site::ApplyWhen)),
        perm(Site::Perm, 4, 3, 3),
        perm(Site::Perm, 4, 3, 3),
        perm(Site::Perm, 5, 2, 2),
        perm(Site::Perm, 5, 2, 2),
        option::weighted(0.3, any::<bool>()),
        option::weighted(0.3, (gate(), gate())),
        tree(MIXED, 0.6),
    )
        .prop_map(
            |(apply_when, read, write, insert, delete, search, document_filters, tree)| RoleG {
                apply_when,
                read,
                write,
                insert,
                delete,
                search,
                document_filters,
                tree,
            },
        )
        .boxed()
}

/// A role whose decisions come from field rules (read and write mostly undefined), with deep
/// `fields` and `additional_fields`.
pub fn field_role() -> BoxedStrategy<RoleG> {
    (
        option::weighted(0.5, expr(Site::ApplyWhen)),
        perm(Site::Perm, 8, 1, 1),
        perm(Site::Perm, 8, 1, 1),
        perm(Site::Perm, 4, 1, 1),
        perm(Site::Perm, 4, 1, 1),
        option::weighted(0.15, (perm(Site::Perm, 2, 1, 2), perm(Site::Perm, 2, 1, 2))),
        tree(MIXED, 0.95),
    )
        .prop_map(
            |(apply_when, read, write, insert, delete, document_filters, tree)| RoleG {
                apply_when,
                read,
                write,
                insert,
                delete,
                search: None,
                document_filters,
                tree,
            },
        )
        .boxed()
}

/// The shape of an indexable `apply_when`.
#[derive(Clone, Debug, PartialEq)]
pub enum Indexable {
    /// `{"%%user.custom_data.group": gK, "team": tK}`
    GroupTeam(usize, usize),
    /// `{"team": tK}`
    Team(usize),
    /// `{"%%user.custom_data.group": gK}`
    Group(usize),
    /// `{"team": {"$eq": tK}}` / `{"team": {"$in": [tK, tJ]}}`
    TeamOp(bool, usize, usize),
    /// `{"team": tK, "%%user.custom_data.group": gK}` (the pair in the other order)
    TeamGroup(usize, usize),
    /// `{"team": [tK, tJ]}`: an array constant (whole-array equality, element of an array of
    /// arrays, and U20 membership for a scalar `team`)
    TeamArray(usize, usize),
    /// `{"arr.k": tK}` / `{"sub.x": tK}`: a path through arrays and sub-documents
    Path(bool, usize),
    /// `{"team": "%%user.custom_data.teams"}` / `{"owner_id": "%%user.id"}` /
    /// `{"team": "%%user.custom_data.group"}`: the constant comes from the request
    FromRequest(usize),
}

impl Indexable {
    pub fn json(&self) -> Value {
        match self {
            Indexable::GroupTeam(g, t) => {
                json!({"%%user.custom_data.group": group_const(*g).json(), "team": team_const(*t).json()})
            }
            Indexable::Team(t) => json!({"team": team_const(*t).json()}),
            Indexable::Group(g) => json!({"%%user.custom_data.group": group_const(*g).json()}),
            Indexable::TeamOp(false, t, _) => json!({"team": {"$eq": team_const(*t).json()}}),
            Indexable::TeamOp(true, t, u) => {
                json!({"team": {"$in": [team_const(*t).json(), team_const(*u).json()]}})
            }
            Indexable::TeamGroup(t, g) => {
                json!({"team": team_const(*t).json(), "%%user.custom_data.group": group_const(*g).json()})
            }
            Indexable::TeamArray(t, u) => {
                json!({"team": [team_const(*t).json(), team_const(*u).json()]})
            }
            Indexable::Path(false, t) => json!({"arr.k": team_const(*t).json()}),
            Indexable::Path(true, t) => json!({"sub.x": team_const(*t).json()}),
            Indexable::FromRequest(i) => match i % 3 {
                0 => json!({"team": "%%user.custom_data.teams"}),
                1 => json!({"owner_id": "%%user.id"}),
                _ => json!({"team": "%%user.custom_data.group"}),
            },
        }
    }
}

pub fn indexable() -> impl Strategy<Value = Indexable> {
    prop_oneof![
        4 => (0..4usize, 0..TEAMS).prop_map(|(g, t)| Indexable::GroupTeam(g, t)),
        4 => (0..TEAMS).prop_map(Indexable::Team),
        2 => (0..6usize).prop_map(Indexable::Group),
        1 => (any::<bool>(), 0..TEAMS, 0..TEAMS).prop_map(|(b, t, u)| Indexable::TeamOp(b, t, u)),
        1 => (0..TEAMS, 0..4usize).prop_map(|(t, g)| Indexable::TeamGroup(t, g)),
        1 => (0..TEAMS, 0..TEAMS).prop_map(|(t, u)| Indexable::TeamArray(t, u)),
        1 => (any::<bool>(), 0..TEAMS).prop_map(|(b, t)| Indexable::Path(b, t)),
        1 => (0..3usize).prop_map(Indexable::FromRequest),
    ]
}

/// A role of the indexable form with simple permissions.
pub fn indexable_role() -> BoxedStrategy<RoleG> {
    (
        indexable(),
        perm(Site::Perm, 2, 3, 0),
        perm(Site::Perm, 2, 3, 0),
        perm(Site::Perm, 3, 1, 0),
        tree(BOOLEAN_ONLY, 0.3),
    )
        .prop_map(|(ix, read, write, delete, tree)| RoleG {
            apply_when: Some(E::Raw(ix.json())),
            read,
            write,
            insert: Perm::Absent,
            delete,
            search: None,
            document_filters: None,
            tree,
        })
        .boxed()
}

/// A filter query value.
#[derive(Clone, Debug, PartialEq)]
pub enum QV {
    Lit(Val),
    Exp(&'static str),
    In(Opd),
    Gt(Val),
    /// `$ne` (client queries: a probe that matches when the field is missing).
    Ne(Val),
    /// `$not: {$lt: ..}`.
    NotLt(Val),
    Exists(bool),
    Func(&'static str),
}

impl QV {
    fn json(&self) -> Value {
        match self {
            QV::Lit(v) => v.json(),
            QV::Exp(e) => json!(e),
            QV::In(o) => json!({"$in": o.json()}),
            QV::Gt(v) => json!({"$gt": v.json()}),
            QV::Ne(v) => json!({"$ne": v.json()}),
            QV::NotLt(v) => json!({"$not": {"$lt": v.json()}}),
            QV::Exists(b) => json!({"$exists": b}),
            QV::Func(e) => json!({"%function": {"name": "echo", "arguments": [e]}}),
        }
    }
}

const QUERY_FIELDS: &[&str] = &["a", "b", "owner_id", "team", "tags", "sub.x", "arr.k"];

/// A literal query value MongoDB accepts: any scalar but `undefined` (refused as a query value,
/// decision M6).
fn query_scalar() -> BoxedStrategy<Val> {
    scalar()
        .prop_filter("MongoDB refuses undefined in queries", |v| {
            !matches!(v, Val::Odd(Odd::Undefined))
        })
        .boxed()
}

/// An operand of `$ne`, `$gt`, `$lt`: no regular expression either (M6).
fn comparison_operand() -> BoxedStrategy<Val> {
    query_scalar()
        .prop_filter("MongoDB refuses a regex operand of $ne/$gt/$lt", |v| {
            !matches!(v, Val::Odd(Odd::Regex(..)))
        })
        .boxed()
}

fn query_value() -> BoxedStrategy<QV> {
    prop_oneof![
        4 => query_scalar().prop_map(QV::Lit),
        4 => select(REQ_SUBJECTS).prop_map(QV::Exp),
        2 => prop_oneof![
            vec(query_scalar(), 0..3).prop_map(|v| Opd::Lit(Val::Arr(v))),
            select(&["%%user.custom_data.teams", "%%values.v2", "%%user.id"][..]).prop_map(Opd::Exp),
        ]
        .prop_map(QV::In),
        1 => comparison_operand().prop_map(QV::Gt),
        1 => any::<bool>().prop_map(QV::Exists),
        1 => select(&["%%user.id", "%%user.custom_data.group"][..]).prop_map(QV::Func),
    ]
    .boxed()
}

/// A query document: field clauses, optionally under `$or`.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryG {
    pub clauses: Vec<(&'static str, QV)>,
    pub or: Option<Vec<Vec<(&'static str, QV)>>>,
}

fn clauses_json(clauses: &[(&'static str, QV)]) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in clauses {
        m.entry(k.to_string()).or_insert_with(|| v.json());
    }
    m
}

impl QueryG {
    pub fn json(&self) -> Value {
        let mut m = clauses_json(&self.clauses);
        if let Some(or) = &self.or {
            let items: Vec<Value> = or.iter().map(|c| Value::Object(clauses_json(c))).collect();
            m.insert("$or".into(), Value::Array(items));
        }
        Value::Object(m)
    }
}

/// A client query: literal values only (a client sends plain BSON).
pub fn client_query() -> BoxedStrategy<QueryG> {
    let value = || {
        prop_oneof![
            4 => query_scalar().prop_map(QV::Lit),
            2 => vec(query_scalar(), 0..3).prop_map(|v| QV::In(Opd::Lit(Val::Arr(v)))),
            1 => comparison_operand().prop_map(QV::Gt),
            1 => comparison_operand().prop_map(QV::Ne),
            1 => comparison_operand().prop_map(QV::NotLt),
            1 => any::<bool>().prop_map(QV::Exists),
        ]
    };
    (
        vec((select(QUERY_FIELDS), value()), 0..3),
        option::weighted(0.15, vec(vec((select(QUERY_FIELDS), value()), 1..3), 1..3)),
    )
        .prop_map(|(clauses, or)| QueryG { clauses, or })
        .boxed()
}

fn filter_query() -> BoxedStrategy<QueryG> {
    let clauses = || vec((select(QUERY_FIELDS), query_value()), 0..3);
    (
        clauses(),
        option::weighted(
            0.15,
            vec(vec((select(QUERY_FIELDS), query_value()), 1..3), 1..3),
        ),
    )
        .prop_map(|(clauses, or)| QueryG { clauses, or })
        .boxed()
}

/// A projection of one kind (with `_id: 0` allowed in an inclusive one).
#[derive(Clone, Debug, PartialEq)]
pub struct Proj {
    pub inclusive: bool,
    pub keys: Vec<&'static str>,
    pub id_zero: bool,
    /// `true`/`false` instead of `1`/`0`.
    pub booleans: bool,
}

const PROJ_KEYS: &[&str] = &["a", "b", "sub", "sub.x", "owner_id", "team", "arr.k", "_id"];

impl Proj {
    pub fn json(&self) -> Value {
        let mut m = Map::new();
        let v = |inc: bool| {
            if self.booleans {
                json!(inc)
            } else {
                json!(i32::from(inc))
            }
        };
        if self.id_zero {
            m.insert("_id".into(), v(false));
        }
        for k in &self.keys {
            m.entry(k.to_string()).or_insert_with(|| v(self.inclusive));
        }
        Value::Object(m)
    }

    pub fn bson(&self) -> Document {
        literal_query(&self.json())
    }
}

pub fn projection() -> BoxedStrategy<Proj> {
    (
        any::<bool>(),
        vec(select(PROJ_KEYS), 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(inclusive, keys, id_zero, booleans)| Proj {
            inclusive,
            keys,
            id_zero,
            booleans,
        })
        .boxed()
}

/// A filter.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterG {
    pub apply_when: Option<E>,
    pub query: Option<QueryG>,
    pub projection: Option<Proj>,
}

impl FilterG {
    pub fn json(&self, name: &str) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(name));
        if let Some(a) = &self.apply_when {
            m.insert("apply_when".into(), a.json());
        }
        if let Some(q) = &self.query {
            m.insert("query".into(), q.json());
        }
        if let Some(p) = &self.projection {
            m.insert("projection".into(), p.json());
        }
        Value::Object(m)
    }
}

pub fn filter() -> BoxedStrategy<FilterG> {
    (
        option::weighted(0.9, expr(Site::Filter)),
        option::weighted(0.8, filter_query()),
        option::weighted(0.5, projection()),
    )
        .prop_map(|(apply_when, query, projection)| FilterG {
            apply_when,
            query,
            projection,
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Rule sets

/// Which file holds the roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// `app/items/rules.json`
    Collection,
    /// `default_rule.json` only.
    Default,
    /// `rules.json` with zero roles (and the filters), `default_rule.json` with the roles (U2).
    EmptyCollection,
}

/// A rule set for the collection `app.items`.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSetG {
    pub roles: Vec<RoleG>,
    pub filters: Vec<FilterG>,
    pub placement: Placement,
    /// Index into [`schemas`].
    pub schema: Option<usize>,
    /// `Limits::max_document_depth` (evaluation-time: deeper documents are denied with a
    /// reason by both engines); `None`: the default.
    pub max_document_depth: Option<usize>,
}

pub const NAMESPACE: &str = "app.items";

fn schemas(i: usize) -> Value {
    match i % 3 {
        0 => {
            json!({"title": "items", "bsonType": "object", "properties": {"a": {"bsonType": "string"}}})
        }
        1 => json!({"title": "items", "bsonType": "object", "required": ["owner_id"],
                    "properties": {"owner_id": {"bsonType": ["string", "objectId"]}}}),
        _ => json!({"title": "items", "bsonType": "object", "properties": {
                    "owner_id": {"bsonType": "string",
                                 "validate": {"%or": [{"%%prev": {"%exists": false}}, {"%%prev": "%%this"}]}}}}),
    }
}

impl RuleSetG {
    pub fn role_name(i: usize) -> String {
        format!("r{i}")
    }

    pub fn roles_json(&self) -> Value {
        Value::Array(
            self.roles
                .iter()
                .enumerate()
                .map(|(i, r)| r.json(&Self::role_name(i)))
                .collect(),
        )
    }

    pub fn filters_json(&self) -> Value {
        Value::Array(
            self.filters
                .iter()
                .enumerate()
                .map(|(i, f)| f.json(&format!("f{i}")))
                .collect(),
        )
    }

    /// The app files (app-relative path → JSON).
    pub fn files(&self) -> BTreeMap<String, Value> {
        let mut files = BTreeMap::new();
        let ds = "data_sources/mongodb-atlas";
        files.insert(
            format!("{ds}/config.json"),
            json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}}),
        );
        let coll = format!("{ds}/app/items");
        match self.placement {
            Placement::Collection => {
                files.insert(
                    format!("{coll}/rules.json"),
                    json!({"database": "app", "collection": "items",
                           "roles": self.roles_json(), "filters": self.filters_json()}),
                );
            }
            Placement::Default => {
                files.insert(
                    format!("{ds}/default_rule.json"),
                    json!({"roles": self.roles_json(), "filters": self.filters_json()}),
                );
            }
            Placement::EmptyCollection => {
                files.insert(
                    format!("{coll}/rules.json"),
                    json!({"database": "app", "collection": "items",
                           "roles": [], "filters": self.filters_json()}),
                );
                files.insert(
                    format!("{ds}/default_rule.json"),
                    json!({"roles": self.roles_json(), "filters": []}),
                );
            }
        }
        if let Some(s) = self.schema
            && self.placement != Placement::Default
        {
            files.insert(format!("{coll}/schema.json"), schemas(s));
        }
        files.insert("values/v1.json".into(), json!({"name": "v1", "value": "a"}));
        files.insert(
            "values/v2.json".into(),
            json!({"name": "v2", "value": ["t0", "t1", 1]}),
        );
        files.insert(
            "environments/prod.json".into(),
            json!({"values": {"open": true}}),
        );
        files.insert(
            "environments/dev.json".into(),
            json!({"values": {"open": false}}),
        );
        files.insert(
            "functions/config.json".into(),
            Value::Array(
                FUNCTIONS
                    .iter()
                    .map(|n| json!({"name": n, "private": true}))
                    .collect(),
            ),
        );
        files
    }

    /// The rules files only (for reports).
    pub fn rules_report(&self) -> String {
        let files = self.files();
        let mut out = String::new();
        if let Some(d) = self.max_document_depth {
            out.push_str(&format!("(limits.max_document_depth = {d})\n"));
        }
        for (path, v) in files {
            if path.ends_with("rules.json")
                || path.ends_with("default_rule.json")
                || path.ends_with("schema.json")
            {
                out.push_str(&format!(
                    "{path}:\n{}\n",
                    serde_json::to_string(&v).unwrap()
                ));
            }
        }
        out
    }

    /// Loads and compiles the rule set; `Err` with the diagnostics when the validator rejects it.
    pub fn load(&self) -> Result<Rules, String> {
        let mut options = LoadOptions::default();
        if let Some(d) = self.max_document_depth {
            options.limits.max_document_depth = d;
        }
        RuleSet::from_files(&self.files(), &options)
            .map(Rules::new)
            .map_err(|e| e.to_string())
    }
}

fn placement() -> impl Strategy<Value = Placement> {
    prop_oneof![
        17 => Just(Placement::Collection),
        2 => Just(Placement::Default),
        1 => Just(Placement::EmptyCollection),
    ]
}

fn schema_choice() -> impl Strategy<Value = Option<usize>> {
    option::weighted(0.15, 0..3usize)
}

/// 1–6 random roles, 0–3 filters.
pub fn rule_set() -> BoxedStrategy<RuleSetG> {
    (
        vec(role(), 1..=6),
        vec(filter(), 0..=3),
        placement(),
        schema_choice(),
        option::weighted(0.1, 1..5usize),
    )
        .prop_map(
            |(roles, filters, placement, schema, max_document_depth)| RuleSetG {
                roles,
                filters,
                placement,
                schema,
                max_document_depth,
            },
        )
        .boxed()
}

/// 1–4 roles driven by field rules.
pub fn field_rule_set() -> BoxedStrategy<RuleSetG> {
    (
        vec(prop_oneof![4 => field_role(), 1 => role()], 1..=4),
        vec(filter(), 0..=1),
        placement(),
    )
        .prop_map(|(roles, filters, placement)| RuleSetG {
            roles,
            filters,
            placement,
            schema: None,
            max_document_depth: None,
        })
        .boxed()
}

/// 30–60 indexable roles with colliding constants, some random roles among them.
pub fn many_roles_set() -> BoxedStrategy<RuleSetG> {
    (
        vec(indexable_role(), 30..=60),
        vec((any::<prop::sample::Index>(), role()), 0..3),
        vec(filter(), 0..=1),
    )
        .prop_map(|(mut roles, extra, filters)| {
            for (at, r) in extra {
                let i = at.index(roles.len() + 1);
                roles.insert(i, r);
            }
            RuleSetG {
                roles,
                filters,
                placement: Placement::Collection,
                schema: None,
                max_document_depth: None,
            }
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Users and requests

#[derive(Clone, Debug, PartialEq)]
pub struct UserG {
    pub id: Val,
    pub kind: &'static str,
    pub email: Option<Val>,
    /// `None`: no `custom_data`.
    pub custom: Option<(Option<Val>, Option<Val>)>,
    pub identities: Option<Val>,
}

impl UserG {
    pub fn bson(&self) -> Document {
        let mut d = Document::new();
        d.insert("id", self.id.bson());
        d.insert("type", self.kind);
        let mut data = Document::new();
        if let Some(e) = &self.email {
            data.insert("email", e.bson());
        }
        d.insert("data", data);
        if let Some((group, teams)) = &self.custom {
            let mut c = Document::new();
            if let Some(g) = group {
                c.insert("group", g.bson());
            }
            if let Some(t) = teams {
                c.insert("teams", t.bson());
            }
            d.insert("custom_data", c);
        }
        if let Some(i) = &self.identities {
            d.insert("identities", i.bson());
        }
        d
    }
}

fn identity() -> impl Strategy<Value = Val> {
    (
        select(&["u1", "u2"][..]),
        select(&["local-userpass", "anon-user"][..]),
    )
        .prop_map(|(id, p)| Val::Doc(vec![("id", Val::Str(id)), ("provider_type", Val::Str(p))]))
}

/// User-editable values that look like query syntax (issue 9, finding 4): operator documents
/// and match-anything regexes. Only ever rendered as BSON (request values), never as rule JSON.
pub fn hostile() -> BoxedStrategy<Val> {
    prop_oneof![
        Just(Val::Doc(vec![("$ne", Val::Str("g0"))])),
        Just(Val::Doc(vec![("$gt", Val::Str(""))])),
        Just(Val::Doc(vec![("$exists", Val::Bool(true))])),
        Just(Val::Doc(vec![(
            "$in",
            Val::Arr(vec![Val::Str("t0"), Val::Str("g0")])
        )])),
        Just(Val::Odd(Odd::Regex(".*", ""))),
        Just(Val::Odd(Odd::Regex("^t", ""))),
        Just(Val::Odd(Odd::Regex("^G", "i"))),
    ]
    .boxed()
}

pub fn user() -> impl Strategy<Value = UserG> {
    (
        (
            select(&["u1", "u2", OIDS[0]][..]).prop_map(Val::Str),
            prop_oneof![30 => Just("normal"), 2 => Just("server"), 1 => Just("system")],
            option::weighted(
                0.6,
                prop_oneof![4 => string(), 2 => Just(Val::Null), 1 => hostile()],
            ),
            option::weighted(
                0.8,
                (
                    option::weighted(
                        0.8,
                        prop_oneof![
                            6 => (0..6usize).prop_map(group_const),
                            1 => vec((0..3usize).prop_map(group_const), 0..3).prop_map(Val::Arr),
                            1 => hostile(),
                        ],
                    ),
                    option::weighted(
                        0.7,
                        prop_oneof![
                            4 => vec((0..TEAMS).prop_map(team_const), 0..3).prop_map(Val::Arr),
                            1 => (0..3usize).prop_map(team_const),
                            1 => vec(hostile(), 1..3).prop_map(Val::Arr),
                        ],
                    ),
                ),
            ),
        ),
        option::weighted(0.4, vec(identity(), 0..3).prop_map(Val::Arr)),
    )
        .prop_map(|((id, kind, email, custom), identities)| UserG {
            id,
            kind,
            email,
            custom,
            identities,
        })
}

/// Everything about a request that is not the rules or the documents.
#[derive(Clone, Debug, PartialEq)]
pub struct ReqG {
    pub user: Option<UserG>,
    /// `%%values.v1` supplied by the request (over the app's `"a"`).
    pub v1: Option<Val>,
    pub environment: Option<&'static str>,
    pub ip: Option<&'static str>,
    /// `%%request.requestHeaders` (names in varying case; values are arrays of strings).
    pub headers: Option<Vec<(&'static str, Val)>>,
    /// False: no function host (every `%function` call fails).
    pub host: bool,
}

impl ReqG {
    /// The request context (with `search` as given).
    pub fn context(&self, rules: &Rules, search: bool) -> RequestContext {
        let mut b = rules.context().search(search);
        if let Some(u) = &self.user {
            b = b.user(u.bson());
        }
        if let Some(v) = &self.v1 {
            b = b.value("v1", v.bson());
        }
        if let Some(e) = self.environment {
            b = b.environment(e);
        }
        let mut request = Document::new();
        if let Some(ip) = self.ip {
            request.insert("remoteIPAddress", ip);
        }
        if let Some(h) = &self.headers {
            request.insert("requestHeaders", doc_of(h));
        }
        if !request.is_empty() {
            b = b.request(request);
        }
        if self.host {
            b = b.functions(host());
        }
        b.build().unwrap()
    }

    pub fn report(&self) -> String {
        format!(
            "user: {}\nvalues.v1: {}; environment: {:?}; remoteIPAddress: {:?}; headers: {}; function host: {}",
            self.user
                .as_ref()
                .map(|u| Bson::Document(u.bson()).into_relaxed_extjson().to_string())
                .unwrap_or_else(|| "none".into()),
            self.v1
                .as_ref()
                .map(|v| v.bson().into_relaxed_extjson().to_string())
                .unwrap_or_else(|| "(app value \"a\")".into()),
            self.environment,
            self.ip,
            self.headers
                .as_ref()
                .map(|h| show(&doc_of(h)))
                .unwrap_or_else(|| "none".into()),
            self.host
        )
    }
}

pub fn request() -> impl Strategy<Value = ReqG> {
    (
        option::weighted(0.95, user()),
        option::weighted(
            0.3,
            prop_oneof![scalar(), vec(scalar(), 0..3).prop_map(Val::Arr)],
        ),
        option::weighted(0.5, select(&["prod", "dev"][..])),
        option::weighted(0.5, select(&["10.0.0.1", "10.0.0.2"][..])),
        prop_oneof![19 => Just(true), 1 => Just(false)],
        option::weighted(
            0.3,
            vec(
                (
                    select(&["X-Api-Key", "x-api-key", "Content-Type"][..]),
                    prop_oneof![
                        3 => vec(select(&["a", "b"][..]).prop_map(Val::Str), 0..3).prop_map(Val::Arr),
                        1 => string(),
                    ],
                ),
                1..3,
            ),
        ),
    )
        .prop_map(|(user, v1, environment, ip, host, headers)| ReqG {
            user,
            v1,
            environment,
            ip,
            headers,
            host,
        })
}

/// The deterministic function host: `isU1(x)` is `x == "u1"`, `echo(x)` returns `x` (null
/// without arguments), `fail` always fails, `failOnNull(x)` fails on a null/absent `x`.
pub fn host() -> Arc<dyn FunctionHost> {
    Arc::new(|name: &str, args: &[Bson]| -> Result<Bson, String> {
        match name {
            "isU1" => Ok(Bson::Boolean(
                matches!(args.first(), Some(Bson::String(s)) if s == "u1"),
            )),
            "echo" => Ok(args.first().cloned().unwrap_or(Bson::Null)),
            "fail" => Err("fail always fails".to_string()),
            "failOnNull" => match args.first() {
                None | Some(Bson::Null) => Err("failOnNull got null".to_string()),
                Some(_) => Ok(Bson::Boolean(true)),
            },
            other => Err(format!("no function {other}")),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Cases

/// One generated case: a rule set, a request, documents with update post-images, and a client
/// query and projection.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub rules: RuleSetG,
    pub request: ReqG,
    pub docs: Vec<Doc>,
    /// One per document: how its post-image differs.
    pub mutations: Vec<Vec<Mutation>>,
    pub client_query: Option<QueryG>,
    pub client_projection: Option<Proj>,
}

impl Case {
    /// `(pre, post)` per document.
    pub fn updates(&self) -> Vec<(Document, Document)> {
        self.docs
            .iter()
            .zip(&self.mutations)
            .map(|(d, m)| (d.bson(), apply(d, m).bson()))
            .collect()
    }

    pub fn client_query_bson(&self) -> Option<Document> {
        self.client_query.as_ref().map(|q| literal_query(&q.json()))
    }

    pub fn client_projection_bson(&self) -> Option<Document> {
        self.client_projection.as_ref().map(Proj::bson)
    }
}

/// A client query is literal BSON: expansion strings in it are plain strings; a `%function`
/// document is a plain sub-document.
pub fn literal_query(v: &Value) -> Document {
    match Bson::try_from(v.clone()) {
        Ok(Bson::Document(d)) => d,
        _ => Document::new(),
    }
}

fn case_with(
    rules: BoxedStrategy<RuleSetG>,
    docs: std::ops::RangeInclusive<usize>,
) -> BoxedStrategy<Case> {
    (
        rules,
        request(),
        vec((document(), mutations()), docs),
        option::weighted(0.5, client_query()),
        option::weighted(0.4, projection()),
    )
        .prop_map(|(rules, request, docs, client_query, client_projection)| {
            let (docs, mutations) = docs.into_iter().unzip();
            Case {
                rules,
                request,
                docs,
                mutations,
                client_query,
                client_projection,
            }
        })
        .boxed()
}

pub fn case() -> BoxedStrategy<Case> {
    case_with(rule_set(), 1..=4)
}

pub fn field_case() -> BoxedStrategy<Case> {
    case_with(field_rule_set(), 1..=4)
}

pub fn many_roles_case() -> BoxedStrategy<Case> {
    case_with(many_roles_set(), 2..=4)
}

/// A document as relaxed Extended JSON (for reports).
pub fn show(doc: &Document) -> String {
    Bson::Document(doc.clone())
        .into_relaxed_extjson()
        .to_string()
}

/// The BSON bytes of a document: equal bytes mean equal documents, field order, types and NaN
/// payloads included.
pub fn bytes(doc: &Document) -> Vec<u8> {
    let mut out = Vec::new();
    doc.to_writer(&mut out).unwrap();
    out
}

// ---------------------------------------------------------------------------------------------
// Evaluation order: errors behind short-circuits, request-only failures behind document tests

/// Tests that decide early or fail: the evaluation order of the reference (first-match roles,
/// short-circuiting `%and`/`%or`, clauses in key order, field rules only for present fields)
/// decides whether an error is ever reached, so a compiled engine that evaluates request-only
/// parts ahead of time must defer their errors.
fn atom(i: usize) -> (String, Value) {
    let (k, v) = match i % 14 {
        0 => ("team", json!("t0")),
        1 => ("team", json!("t1")),
        2 => ("%%user.id", json!("u1")),
        3 => (
            "%%true",
            json!({"%function": {"name": "fail", "arguments": []}}),
        ),
        4 => (
            "%%false",
            json!({"%function": {"name": "failOnNull", "arguments": ["%%root.a"]}}),
        ),
        5 => (
            "%%true",
            json!({"%function": {"name": "isU1", "arguments": ["%%user.id"]}}),
        ),
        6 => ("%%values.v1", json!({"$in": "%%user.id"})),
        7 => ("team", json!({"$in": "%%root.a"})),
        8 => ("a", json!({"$exists": true})),
        9 => ("%%user.custom_data.group", json!("g0")),
        10 => ("%%prevRoot.owner_id", json!({"%stringToOid": "%%user.id"})),
        11 => ("b", json!({"$size": "%%user.id"})),
        12 => ("%%environment.tag", json!("prod")),
        _ => ("owner_id", json!({"%oidToString": "%%root._id"})),
    };
    (k.to_string(), v)
}

/// An expression of atoms, two levels deep.
#[derive(Clone, Debug, PartialEq)]
pub enum OE {
    Atom(usize),
    /// One document of several atoms (key order = evaluation order; repeated keys dropped).
    Doc(Vec<usize>),
    Logic(&'static str, Vec<OE>),
    Not(Box<OE>),
    Empty,
}

impl OE {
    pub fn json(&self) -> Value {
        match self {
            OE::Atom(i) => {
                let (k, v) = atom(*i);
                json!({ k: v })
            }
            OE::Doc(items) => {
                let mut m = Map::new();
                for i in items {
                    let (k, v) = atom(*i);
                    m.entry(k).or_insert(v);
                }
                Value::Object(m)
            }
            OE::Logic(op, items) => {
                json!({ format!("%{op}"): items.iter().map(OE::json).collect::<Vec<_>>() })
            }
            OE::Not(e) => json!({"%not": e.json()}),
            OE::Empty => json!({}),
        }
    }
}

fn atom_index() -> impl Strategy<Value = usize> {
    // Atoms that cannot fail are drawn three times as often as those that can.
    prop_oneof![
        3 => select(&[0usize, 1, 2, 5, 8, 9, 12][..]),
        1 => select(&[3usize, 4, 6, 7, 10, 11, 13][..]),
    ]
}

pub fn ordered_expr() -> BoxedStrategy<E> {
    let leaf = prop_oneof![
        6 => atom_index().prop_map(OE::Atom),
        3 => vec(atom_index(), 2..4).prop_map(OE::Doc),
        1 => Just(OE::Empty),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            3 => (select(&["and", "or", "nor"][..]), vec(inner.clone(), 2..4))
                .prop_map(|(op, items)| OE::Logic(op, items)),
            1 => inner.prop_map(|e| OE::Not(Box::new(e))),
        ]
    })
    .prop_map(|e| E::Raw(e.json()))
    .boxed()
}

fn ordered_perm() -> BoxedStrategy<Perm> {
    prop_oneof![
        3 => Just(Perm::Absent),
        2 => any::<bool>().prop_map(Perm::Bool),
        3 => ordered_expr().prop_map(Perm::Expr),
    ]
    .boxed()
}

fn ordered_tree() -> BoxedStrategy<Tree> {
    let pair = || (ordered_perm(), ordered_perm()).prop_map(|(read, write)| Pair { read, write });
    (
        option::weighted(
            0.7,
            vec(
                (
                    select(TOP_NAMES),
                    pair().prop_map(|perms| FieldG {
                        perms,
                        nested: None,
                    }),
                ),
                1..4,
            ),
        ),
        option::weighted(0.5, pair()),
    )
        .prop_map(|(fields, additional)| Tree { fields, additional })
        .boxed()
}

pub fn ordered_role() -> BoxedStrategy<RoleG> {
    (
        ordered_expr(),
        ordered_perm(),
        ordered_perm(),
        ordered_perm(),
        ordered_perm(),
        option::weighted(0.2, (ordered_perm(), ordered_perm())),
        ordered_tree(),
    )
        .prop_map(
            |(apply_when, read, write, insert, delete, document_filters, tree)| RoleG {
                apply_when: Some(apply_when),
                read,
                write,
                insert,
                delete,
                search: None,
                document_filters,
                tree,
            },
        )
        .boxed()
}

/// 1–6 roles built from early-deciding and failing atoms.
pub fn ordered_case() -> BoxedStrategy<Case> {
    let rules = vec(ordered_role(), 1..=6)
        .prop_map(|roles| RuleSetG {
            roles,
            filters: Vec::new(),
            placement: Placement::Collection,
            schema: None,
            max_document_depth: None,
        })
        .boxed();
    case_with(rules, 1..=4)
}

// ---------------------------------------------------------------------------------------------
// Wide documents and roles (more fields than a machine word)

/// `f0` … `f129`.
pub fn wide_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        (0..130)
            .map(|i| &*Box::leak(format!("f{i}").into_boxed_str()))
            .collect()
    })
}

fn wide_pair() -> BoxedStrategy<Pair> {
    let p = || {
        prop_oneof![
            2 => Just(Perm::Absent),
            4 => any::<bool>().prop_map(Perm::Bool),
            1 => prop_oneof![
                Just(json!({"%%this": {"$exists": true}})),
                Just(json!({"%%this": {"$type": "string"}})),
                Just(json!({"%%user.id": "u1"})),
                Just(json!({"%%prev": "%%this"})),
            ]
            .prop_map(|v| Perm::Expr(E::Raw(v))),
        ]
    };
    (p(), p())
        .prop_map(|(read, write)| Pair { read, write })
        .boxed()
}

fn wide_role() -> BoxedStrategy<RoleG> {
    (
        vec(
            (
                select(wide_names()),
                wide_pair().prop_map(|perms| FieldG {
                    perms,
                    nested: None,
                }),
            ),
            20..100,
        ),
        option::weighted(0.5, wide_pair()),
        prop_oneof![4 => Just(Perm::Absent), 1 => any::<bool>().prop_map(Perm::Bool)],
        option::weighted(0.5, expr(Site::ApplyWhen)),
    )
        .prop_map(|(fields, additional, write, apply_when)| RoleG {
            apply_when,
            read: Perm::Absent,
            write,
            insert: Perm::Absent,
            delete: Perm::Absent,
            search: None,
            document_filters: None,
            tree: Tree {
                fields: Some(fields),
                additional,
            },
        })
        .boxed()
}

fn wide_document() -> impl Strategy<Value = Doc> {
    (vec((select(wide_names()), scalar()), 0..140), document()).prop_map(|(wide, base)| {
        let mut members = base.0;
        members.extend(wide);
        Doc(members)
    })
}

/// 1–3 roles with 20–100 field rules over 130 names; documents with up to 140 such fields.
pub fn wide_case() -> BoxedStrategy<Case> {
    (
        vec(wide_role(), 1..=3),
        request(),
        vec((wide_document(), mutations()), 1..=3),
    )
        .prop_map(|(roles, request, docs)| {
            let (docs, mutations) = docs.into_iter().unzip();
            Case {
                rules: RuleSetG {
                    roles,
                    filters: Vec::new(),
                    placement: Placement::Collection,
                    schema: None,
                    max_document_depth: None,
                },
                request,
                docs,
                mutations,
                client_query: None,
                client_projection: None,
            }
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Long keys sharing prefixes (issue 9, finding 2: key tags keep the length modulo 256)

/// Prefixes of one run of letters (`abcdefg…`) of the lengths where key tags are blind (7, 8,
/// 256 + 7, …) and a few more, each also with its last letter changed: keys that share
/// prefixes, lengths equal modulo 256, or both.
pub fn long_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let run: String = (0..1000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let mut out = Vec::new();
        for len in [
            1usize, 6, 7, 8, 9, 16, 255, 256, 257, 263, 264, 512, 519, 1000,
        ] {
            let base = &run[..len];
            out.push(&*Box::leak(base.to_string().into_boxed_str()));
            let twisted = format!("{}Z", &base[..len - 1]);
            out.push(&*Box::leak(twisted.into_boxed_str()));
        }
        out
    })
}

fn long_pair() -> BoxedStrategy<Pair> {
    let p = || {
        prop_oneof![
            1 => Just(Perm::Absent),
            3 => any::<bool>().prop_map(Perm::Bool),
            1 => Just(Perm::Expr(E::Raw(json!({"%%this": {"$exists": true}})))),
        ]
    };
    (p(), p())
        .prop_map(|(read, write)| Pair { read, write })
        .boxed()
}

fn long_role() -> BoxedStrategy<RoleG> {
    let names = long_names();
    (
        vec(
            (
                select(names),
                long_pair().prop_map(|perms| FieldG {
                    perms,
                    nested: None,
                }),
            ),
            1..6,
        ),
        option::weighted(0.3, long_pair()),
        prop_oneof![
            2 => Just(None),
            2 => (select(names), select(names)).prop_map(|(k, v)| Some(E::Raw(json!({ k: v })))),
            1 => select(names).prop_map(|v| Some(E::Raw(json!({ "team": v })))),
        ],
        prop_oneof![2 => Just(Perm::Absent), 1 => any::<bool>().prop_map(Perm::Bool)],
        prop_oneof![1 => Just(Perm::Absent), 1 => any::<bool>().prop_map(Perm::Bool)],
    )
        .prop_map(|(fields, additional, apply_when, write, insert)| RoleG {
            apply_when,
            read: Perm::Absent,
            write,
            insert,
            delete: Perm::Absent,
            search: None,
            document_filters: None,
            tree: Tree {
                fields: Some(fields),
                additional,
            },
        })
        .boxed()
}

fn long_document() -> impl Strategy<Value = Doc> {
    let names = long_names();
    (
        vec((select(names), select(names).prop_map(Val::Str)), 0..8),
        option::of(select(names).prop_map(Val::Str)),
        option::weighted(0.3, Just(Val::Str(""))),
        document(),
    )
        .prop_map(|(long, team, empty_key, base)| {
            let mut members = base.0;
            members.retain(|(k, _)| *k != "team");
            if let Some(t) = team {
                members.push(("team", t));
            }
            if let Some(v) = empty_key {
                members.push(("", v));
            }
            members.extend(long);
            Doc(members)
        })
}

/// 1–4 roles keyed by long names (fields, `apply_when` keys and `team` constants), a run of
/// indexable `{"team": long}` roles among them; documents with long keys and values.
pub fn long_case() -> BoxedStrategy<Case> {
    (
        vec(long_role(), 1..=4),
        request(),
        vec((long_document(), mutations()), 1..=3),
    )
        .prop_map(|(roles, request, docs)| {
            let (docs, mutations) = docs.into_iter().unzip();
            Case {
                rules: RuleSetG {
                    roles,
                    filters: Vec::new(),
                    placement: Placement::Collection,
                    schema: None,
                    max_document_depth: None,
                },
                request,
                docs,
                mutations,
                client_query: None,
                client_projection: None,
            }
        })
        .boxed()
}
