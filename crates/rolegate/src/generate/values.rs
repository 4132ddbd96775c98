//! Stage: generators, step 2 — values. Input: a [`Vocabulary`]. Output: proptest strategies of
//! BSON values for its paths, of documents for its trees, and of the `%%user` object.
//!
//! What a path gets, in the order proptest shrinks towards (first the plainest):
//!
//! 1. **its main values**: the schema's `enum`; else a value of each type the schema declares
//!    (strings and ObjectIds from the path's class pool, numbers from its numeric constants,
//!    arrays of items, embedded documents of its children); else, without a schema, a value
//!    of its class pool (the constants the rules compare it with, then two fresh values that
//!    only paths of the class share);
//! 2. **edge values**, rarer: `null`, a value of the wrong type, the pool value inside an array
//!    (array membership), the numeric constants as int32, int64, double and decimal128.
//!
//! A member of a document is absent with some probability (less when the schema requires it),
//! and shrinks to absent. Every strategy is built once per path and shared (`BoxedStrategy` is
//! reference-counted), so making one case costs only the drawing.

use std::collections::HashMap;
use std::str::FromStr;

use bson::oid::ObjectId;
use bson::{Bson, Decimal128, Document};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;

use super::vocab::{Class, PathNode, Vocabulary, same_value};
use crate::schema::model::TypeName;

/// How many values a class pool holds at most.
const MAX_POOL: usize = 16;

/// The provider types a generated identity may have (plus the ones the rules name).
const PROVIDERS: &[&str] = &[
    "local-userpass",
    "anon-user",
    "api-key",
    "custom-token",
    "oauth2-google",
];

/// The pool of a class: its constants, then fresh values (module docs).
pub(crate) fn pool(class: &Class, index: usize) -> Vec<Bson> {
    let mut out: Vec<Bson> = Vec::new();
    let push = |v: Bson, out: &mut Vec<Bson>| {
        if out.len() < MAX_POOL && !out.iter().any(|x| same_value(x, &v)) {
            out.push(v);
        }
    };
    for c in &class.constants {
        push(c.clone(), &mut out);
    }
    let stringy = class.constants.is_empty()
        || class.oid_like
        || class
            .constants
            .iter()
            .any(|c| matches!(c, Bson::String(_) | Bson::ObjectId(_)));
    if stringy {
        for i in 1..=2u32 {
            let fresh = if class.oid_like {
                Bson::String(fresh_oid_hex(index, i))
            } else {
                Bson::String(format!("{}-{i}", short_label(&class.label)))
            };
            push(fresh, &mut out);
        }
    }
    for c in &class.constants {
        match c {
            Bson::Boolean(b) => push(Bson::Boolean(!b), &mut out),
            n => {
                if let Some(i) = as_i64(n) {
                    if let Some(next) = i.checked_add(1) {
                        push(int(next), &mut out);
                    }
                    if let Some(prev) = i.checked_sub(1) {
                        push(int(prev), &mut out);
                    }
                }
            }
        }
    }
    if out.is_empty() {
        out.push(Bson::String(format!("{}-1", short_label(&class.label))));
    }
    out
}

fn short_label(label: &str) -> String {
    let cleaned: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(16)
        .collect();
    if cleaned.is_empty() {
        "v".to_string()
    } else {
        cleaned
    }
}

/// A 24-digit hexadecimal string, recognisably generated: `66000000000000000000c0de` style,
/// with the class and the value number in it.
fn fresh_oid_hex(class: usize, i: u32) -> String {
    format!(
        "66{:06x}0000000000000000{:02x}",
        class % 0x100_0000,
        i % 0x100
    )
}

fn int(n: i64) -> Bson {
    match i32::try_from(n) {
        Ok(small) => Bson::Int32(small),
        Err(_) => Bson::Int64(n),
    }
}

/// A number that is an integer, as `i64`.
fn as_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        _ => None,
    }
}

fn as_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(f) => Some(*f),
        Bson::Decimal128(d) => d.to_string().parse().ok(),
        _ => None,
    }
}

/// The same number as int32, int64, double and decimal128, where each can hold it exactly.
fn numeric_variants(v: &Bson) -> Vec<Bson> {
    let mut out = Vec::new();
    if let Some(i) = as_i64(v) {
        if let Ok(small) = i32::try_from(i) {
            out.push(Bson::Int32(small));
        }
        out.push(Bson::Int64(i));
        if i.unsigned_abs() < (1u64 << 53) {
            out.push(Bson::Double(i as f64));
        }
        if let Ok(d) = Decimal128::from_str(&i.to_string()) {
            out.push(Bson::Decimal128(d));
        }
    } else if let Some(f) = as_f64(v) {
        out.push(Bson::Double(f));
        if let Ok(d) = Decimal128::from_str(&format!("{f:?}")) {
            out.push(Bson::Decimal128(d));
        }
    }
    out
}

/// Fixed sample values of the rarer types.
fn sample_oid(i: u8) -> Bson {
    let mut bytes = [0x5fu8; 12];
    if let Some(last) = bytes.last_mut() {
        *last = i;
    }
    Bson::ObjectId(ObjectId::from_bytes(bytes))
}

fn sample_date(i: i64) -> Bson {
    Bson::DateTime(bson::DateTime::from_millis(
        1_700_000_000_000 + i * 86_400_000,
    ))
}

/// An edge made of a main value (see [`ValueGen::node`]).
#[derive(Debug, Clone)]
enum Edge {
    /// `null` instead.
    Null,
    /// A value of another type instead.
    Wrong(Bson),
    /// The value inside an array, with another pool value or not.
    Wrap(Option<Bson>),
    /// The number as another numeric type (or, for a value that is no number, one of the
    /// class's numbers as one).
    Variant(usize, std::rc::Rc<Vec<Bson>>),
}

impl Edge {
    fn apply(self, value: Bson) -> Bson {
        match self {
            Edge::Null => Bson::Null,
            Edge::Wrong(w) => w,
            Edge::Wrap(other) => Bson::Array(std::iter::once(value).chain(other).collect()),
            Edge::Variant(i, pool) => {
                let own = numeric_variants(&value);
                let from = if own.is_empty() {
                    pool.as_slice()
                } else {
                    own.as_slice()
                };
                match from.len() {
                    0 => value,
                    n => from.get(i % n).cloned().unwrap_or(value),
                }
            }
        }
    }
}

/// Builds the strategies of one vocabulary (module docs).
pub(crate) struct ValueGen<'v> {
    vocab: &'v Vocabulary,
    pools: Vec<Vec<Bson>>,
    /// The strategies built so far, by node (address and depth): a node reached twice (as an
    /// object and as the items of an array, say) is built once, so building stays linear in
    /// the number of paths however they nest.
    nodes: std::cell::RefCell<HashMap<(usize, usize), BoxedStrategy<Bson>>>,
    documents: std::cell::RefCell<HashMap<(usize, usize, usize), BoxedStrategy<Document>>>,
}

impl<'v> ValueGen<'v> {
    /// The generators of `vocab`.
    pub fn new(vocab: &'v Vocabulary) -> ValueGen<'v> {
        let pools = vocab
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| pool(c, i))
            .collect();
        ValueGen {
            vocab,
            pools,
            nodes: Default::default(),
            documents: Default::default(),
        }
    }

    fn pool_of(&self, class: usize) -> Vec<Bson> {
        match self.pools.get(class) {
            Some(p) if !p.is_empty() => p.clone(),
            _ => vec![Bson::String("v-1".to_string())],
        }
    }

    fn is_oid_class(&self, class: usize) -> bool {
        self.vocab.classes.get(class).is_some_and(|c| c.oid_like)
    }

    /// A strategy choosing one of `values` (never empty: a `null` stands in).
    fn choose(values: Vec<Bson>) -> BoxedStrategy<Bson> {
        if values.is_empty() {
            return Just(Bson::Null).boxed();
        }
        select(values).boxed()
    }

    /// Values of type `t` for a path of class `class` (children: its members, for objects).
    fn typed(&self, t: TypeName, node: &PathNode, depth: usize) -> BoxedStrategy<Bson> {
        let pool = self.pool_of(node.class);
        let strings: Vec<Bson> = pool
            .iter()
            .filter(|v| matches!(v, Bson::String(_)))
            .cloned()
            .collect();
        let numbers: Vec<Bson> = pool
            .iter()
            .filter(|v| as_f64(v).is_some())
            .cloned()
            .collect();
        let ints = || {
            let mut v: Vec<i64> = numbers.iter().filter_map(as_i64).collect();
            for d in [0, 1, 5] {
                if !v.contains(&d) {
                    v.push(d);
                }
            }
            v
        };
        match t {
            TypeName::String => Self::choose(if strings.is_empty() {
                vec![Bson::String(format!("{}-1", short_label(&node.name)))]
            } else {
                strings
            }),
            TypeName::ObjectId => {
                let mut oids: Vec<Bson> = pool
                    .iter()
                    .filter_map(|v| match v {
                        Bson::String(s) => ObjectId::parse_str(s).ok().map(Bson::ObjectId),
                        Bson::ObjectId(o) => Some(Bson::ObjectId(*o)),
                        _ => None,
                    })
                    .collect();
                if oids.is_empty() || !self.is_oid_class(node.class) {
                    oids.push(sample_oid(1));
                    oids.push(sample_oid(2));
                }
                Self::choose(oids)
            }
            TypeName::Int => Self::choose(
                ints()
                    .into_iter()
                    .filter_map(|n| i32::try_from(n).ok().map(Bson::Int32))
                    .collect(),
            ),
            TypeName::Long => Self::choose(ints().into_iter().map(Bson::Int64).collect()),
            TypeName::Double => Self::choose(
                ints()
                    .into_iter()
                    .map(|n| Bson::Double(n as f64))
                    .chain([Bson::Double(0.5)])
                    .collect(),
            ),
            TypeName::Decimal => Self::choose(
                ints()
                    .into_iter()
                    .filter_map(|n| Decimal128::from_str(&n.to_string()).ok())
                    .map(Bson::Decimal128)
                    .collect(),
            ),
            TypeName::Number => {
                let mut all: Vec<Bson> = ints().into_iter().map(int).collect();
                for n in &numbers {
                    all.extend(numeric_variants(n));
                }
                Self::choose(all)
            }
            TypeName::Bool => {
                let mut b: Vec<Bson> = pool
                    .iter()
                    .filter(|v| matches!(v, Bson::Boolean(_)))
                    .cloned()
                    .collect();
                for x in [true, false] {
                    if !b.contains(&Bson::Boolean(x)) {
                        b.push(Bson::Boolean(x));
                    }
                }
                Self::choose(b)
            }
            TypeName::Date => {
                let mut d: Vec<Bson> = pool
                    .iter()
                    .filter(|v| matches!(v, Bson::DateTime(_)))
                    .cloned()
                    .collect();
                d.push(sample_date(0));
                d.push(sample_date(1));
                Self::choose(d)
            }
            TypeName::Null => Just(Bson::Null).boxed(),
            TypeName::Object => {
                if node.children.is_empty() || depth == 0 {
                    Just(Bson::Document(Document::new())).boxed()
                } else {
                    self.document(&node.children, depth - 1)
                        .prop_map(Bson::Document)
                        .boxed()
                }
            }
            TypeName::Array => self.array(node, depth),
            TypeName::Mixed => Self::choose(pool),
            TypeName::Regex => Just(Bson::RegularExpression(bson::Regex {
                pattern: "^a".to_string(),
                options: String::new(),
            }))
            .boxed(),
            TypeName::Timestamp => Just(Bson::Timestamp(bson::Timestamp {
                time: 1,
                increment: 1,
            }))
            .boxed(),
            TypeName::Uuid => Just(Bson::Binary(bson::Binary {
                subtype: bson::spec::BinarySubtype::Uuid,
                bytes: vec![0x66; 16],
            }))
            .boxed(),
            TypeName::BinData => Just(Bson::Binary(bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes: b"a".to_vec(),
            }))
            .boxed(),
        }
    }

    /// An array for `node`: of embedded documents (its children) when the schema says so, else of
    /// items of the declared item types, else of its class pool.
    fn array(&self, node: &PathNode, depth: usize) -> BoxedStrategy<Bson> {
        let item: BoxedStrategy<Bson> = if node.shape.array_of_docs && depth > 0 {
            self.document(&node.children, depth - 1)
                .prop_map(Bson::Document)
                .boxed()
        } else if !node.shape.item_types.is_empty() {
            // An item is typed like the path itself (its class, its children): `typed` reads
            // neither the path's own shape nor, for the types kept here, its arrays.
            let alts: Vec<BoxedStrategy<Bson>> = node
                .shape
                .item_types
                .iter()
                .filter(|t| **t != TypeName::Array)
                .map(|t| self.typed(*t, node, depth.saturating_sub(1)))
                .collect();
            if alts.is_empty() {
                Self::choose(self.pool_of(node.class))
            } else {
                Union::new(alts).boxed()
            }
        } else {
            Self::choose(self.pool_of(node.class))
        };
        // Arrays of documents hold up to three elements at the top level of a document and at
        // most one below it: a generated document then holds at most about three values per
        // path of the vocabulary (bounded), however deep arrays of documents nest.
        let most = if node.shape.array_of_docs && depth < super::vocab::MAX_PATH_DEPTH {
            1
        } else {
            3
        };
        vec(item, 0..=most).prop_map(Bson::Array).boxed()
    }

    /// Every value of a path (module docs).
    pub fn node(&self, node: &PathNode, depth: usize) -> BoxedStrategy<Bson> {
        let key = (std::ptr::from_ref(node) as usize, depth);
        if let Some(s) = self.nodes.borrow().get(&key) {
            return s.clone();
        }
        let built = self.build_node(node, depth);
        self.nodes.borrow_mut().insert(key, built.clone());
        built
    }

    fn build_node(&self, node: &PathNode, depth: usize) -> BoxedStrategy<Bson> {
        let pool = self.pool_of(node.class);
        let mut main: Vec<(u32, BoxedStrategy<Bson>)> = Vec::new();
        let shape = &node.shape;
        if !shape.enum_values.is_empty() {
            main.push((8, Self::choose(shape.enum_values.clone())));
        } else if !shape.types.is_empty() {
            let types: Vec<TypeName> = shape
                .types
                .iter()
                .copied()
                .filter(|t| *t != TypeName::Null || shape.types.len() == 1)
                .collect();
            let w = (8 / u32::try_from(types.len().max(1)).unwrap_or(1)).max(1);
            for t in types {
                main.push((w, self.typed(t, node, depth)));
            }
        } else if !node.children.is_empty() && depth > 0 {
            main.push((
                8,
                self.document(&node.children, depth - 1)
                    .prop_map(Bson::Document)
                    .boxed(),
            ));
        } else {
            main.push((8, Self::choose(pool.clone())));
        }
        // Edge values, rarer (about one value in eight): a change made to a main value, so that
        // shrinking drops the change and keeps the value (`["support"]` shrinks to `"support"`).
        let wrong = if shape.types.contains(&TypeName::String)
            || pool.iter().any(|v| matches!(v, Bson::String(_)))
        {
            Bson::Int32(1)
        } else {
            Bson::String("1".to_string())
        };
        let mut edges: Vec<BoxedStrategy<Edge>> =
            vec![Just(Edge::Null).boxed(), Just(Edge::Wrong(wrong)).boxed()];
        if !shape.types.contains(&TypeName::Array) && !shape.array_of_docs {
            edges.push(
                option::of(Self::choose(pool.clone()))
                    .prop_map(Edge::Wrap)
                    .boxed(),
            );
        }
        let variants: Vec<Bson> = pool.iter().flat_map(numeric_variants).collect();
        let numeric = shape.types.iter().any(|t| {
            matches!(
                t,
                TypeName::Int
                    | TypeName::Long
                    | TypeName::Double
                    | TypeName::Decimal
                    | TypeName::Number
            )
        });
        if !variants.is_empty() || numeric {
            let variants = std::rc::Rc::new(variants);
            edges.push(
                (0..8usize)
                    .prop_map(move |i| Edge::Variant(i, variants.clone()))
                    .boxed(),
            );
        }
        (
            Union::new_weighted(main),
            option::weighted(0.12, Union::new(edges)),
        )
            .prop_map(|(value, edge)| match edge {
                None => value,
                Some(edge) => edge.apply(value),
            })
            .boxed()
    }

    /// A document of `children` (each present with its probability).
    pub fn document(&self, children: &[PathNode], depth: usize) -> BoxedStrategy<Document> {
        let key = (children.as_ptr() as usize, children.len(), depth);
        if let Some(s) = self.documents.borrow().get(&key) {
            return s.clone();
        }
        let built = self.build_document(children.iter(), depth);
        self.documents.borrow_mut().insert(key, built.clone());
        built
    }

    /// A document of the nodes of `children` (not cached: the caller picks them). Every node
    /// given is a node of the vocabulary itself (never a copy), whose strategy is cached by
    /// its address.
    fn build_document<'n>(
        &self,
        children: impl Iterator<Item = &'n PathNode>,
        depth: usize,
    ) -> BoxedStrategy<Document> {
        let parts: Vec<BoxedStrategy<Option<(String, Bson)>>> = children
            .map(|c| {
                let name = c.name.clone();
                let p = if c.shape.required { 0.95 } else { 0.7 };
                option::weighted(p, self.node(c, depth).prop_map(move |v| (name.clone(), v)))
                    .boxed()
            })
            .collect();
        parts
            .prop_map(|members| {
                let mut d = Document::new();
                for (k, v) in members.into_iter().flatten() {
                    d.insert(k, v);
                }
                d
            })
            .boxed()
    }

    /// The `%%user` object: `id`, `type`, `data`, `custom_data`, `identities`, and any other
    /// member the rules read.
    pub fn user(&self, depth: usize) -> BoxedStrategy<Document> {
        let tree = &self.vocab.user;
        let member = |name: &str| tree.children.iter().find(|c| c.name == name);
        let id = match member("id") {
            Some(node) => option::weighted(0.97, Self::choose(self.pool_of(node.class))).boxed(),
            None => Just(Some(Bson::String("id-1".to_string()))).boxed(),
        };
        // `normal` most of the time; never `system`, which case files reserve for the system
        // user (a printed counterexample must mean the same user).
        let mut types = vec![Bson::String("server".to_string())];
        if let Some(node) = member("type") {
            for v in self.pool_of(node.class) {
                let reserved = matches!(&v, Bson::String(s) if s == "system" || s == "normal");
                if matches!(v, Bson::String(_)) && !reserved && !types.contains(&v) {
                    types.push(v);
                }
            }
        }
        let kind = Union::new_weighted(vec![
            (6, Just(Bson::String("normal".to_string())).boxed()),
            (1, Self::choose(types)),
        ]);
        // `data` and `custom_data`: the members the rules read, or (as for an anonymous user
        // or a user without custom data) empty.
        let sub = |name: &str| -> BoxedStrategy<Document> {
            match member(name) {
                Some(node) if !node.children.is_empty() => Union::new_weighted(vec![
                    (6, self.document(&node.children, depth.saturating_sub(1))),
                    (1, Just(Document::new()).boxed()),
                ])
                .boxed(),
                _ => Just(Document::new()).boxed(),
            }
        };
        let identity = self.identity(member("identities"));
        let others = self.build_document(
            tree.children.iter().filter(|c| {
                !matches!(
                    c.name.as_str(),
                    "id" | "type" | "data" | "custom_data" | "identities"
                )
            }),
            depth.saturating_sub(1),
        );
        (
            id,
            kind,
            sub("data"),
            sub("custom_data"),
            vec(identity, 1..=2),
            others,
        )
            .prop_map(|(id, kind, data, custom, identities, others)| {
                let mut u = Document::new();
                if let Some(id) = id {
                    u.insert("id", id);
                }
                u.insert("type", kind);
                u.insert("data", data);
                u.insert("custom_data", custom);
                u.insert(
                    "identities",
                    Bson::Array(identities.into_iter().map(Bson::Document).collect()),
                );
                for (k, v) in others {
                    u.insert(k, v);
                }
                u
            })
            .boxed()
    }

    /// One element of `%%user.identities`: `id`, `provider_type`, and the members the rules
    /// read.
    fn identity(&self, node: Option<&PathNode>) -> BoxedStrategy<Document> {
        let mut providers: Vec<Bson> = Vec::new();
        let provider = node.and_then(|n| n.children.iter().find(|c| c.name == "provider_type"));
        if let Some(p) = provider {
            for v in self.pool_of(p.class) {
                if matches!(v, Bson::String(_)) && !providers.contains(&v) {
                    providers.push(v);
                }
            }
        }
        for p in PROVIDERS {
            let v = Bson::String((*p).to_string());
            if !providers.contains(&v) {
                providers.push(v);
            }
        }
        let members: &[PathNode] = node.map_or(&[], |n| n.children.as_slice());
        let others = self.build_document(
            members
                .iter()
                .filter(|c| !matches!(c.name.as_str(), "id" | "provider_type")),
            1,
        );
        (Self::choose(providers), others)
            .prop_map(|(provider, others)| {
                let mut d = Document::new();
                d.insert("id", "identity-1");
                d.insert("provider_type", provider);
                for (k, v) in others {
                    d.insert(k, v);
                }
                d
            })
            .boxed()
    }

    /// `%%request`: the members the rules read; a request header's value is an array of
    /// strings.
    pub fn request(&self, depth: usize) -> BoxedStrategy<Document> {
        let parts: Vec<BoxedStrategy<Option<(String, Bson)>>> = self
            .vocab
            .request
            .children
            .iter()
            .map(|c| {
                let name = c.name.clone();
                let value = if c.name.eq_ignore_ascii_case("requestHeaders") {
                    self.headers(c)
                } else {
                    self.node(c, depth.saturating_sub(1))
                };
                option::weighted(0.9, value.prop_map(move |v| (name.clone(), v))).boxed()
            })
            .collect();
        parts
            .prop_map(|members| {
                let mut d = Document::new();
                for (k, v) in members.into_iter().flatten() {
                    d.insert(k, v);
                }
                d
            })
            .boxed()
    }

    fn headers(&self, node: &PathNode) -> BoxedStrategy<Bson> {
        let parts: Vec<BoxedStrategy<Option<(String, Bson)>>> = node
            .children
            .iter()
            .map(|c| {
                let name = c.name.clone();
                let strings: Vec<Bson> = self
                    .pool_of(c.class)
                    .into_iter()
                    .filter(|v| matches!(v, Bson::String(_)))
                    .collect();
                let value = Self::choose(strings).prop_map(|v| Bson::Array(vec![v]));
                option::weighted(0.8, value.prop_map(move |v| (name.clone(), v))).boxed()
            })
            .collect();
        parts
            .prop_map(|members| {
                let mut d = Document::new();
                for (k, v) in members.into_iter().flatten() {
                    d.insert(k, v);
                }
                Bson::Document(d)
            })
            .boxed()
    }

    /// The result of each function the rules call: a value of its class pool or a boolean,
    /// or `None` (the call fails, which denies).
    pub fn functions(&self) -> BoxedStrategy<Vec<(String, Option<Bson>)>> {
        let parts: Vec<BoxedStrategy<(String, Option<Bson>)>> = self
            .vocab
            .functions
            .iter()
            .map(|(name, class)| {
                let mut results = vec![Bson::Boolean(true), Bson::Boolean(false)];
                for v in self.pool_of(*class) {
                    if !results.iter().any(|r| same_value(r, &v)) {
                        results.push(v);
                    }
                }
                let name = name.clone();
                option::weighted(0.9, Self::choose(results))
                    .prop_map(move |r| (name.clone(), r))
                    .boxed()
            })
            .collect();
        parts.boxed()
    }
}
