//! Stage: a find's projection (the in-memory runner's `find`, and every projection rolegate
//! applies to a read through [`project`](crate::mql::project)). Input: a projection document,
//! compiled once into a [`Projection`], then documents (and, for the positional `$`, the
//! query that matched them). Output: the projected documents, or MongoDB's error.
//!
//! [`Projection::compile`] follows MongoDB 4.4+ `find` projections (the manual's "Project Fields
//! to Return from Query" and projection operator pages; `jstests/core/query/project/*.js` in
//! mongodb/mongo):
//!
//! * A value that is a number or a boolean includes the field when it is true (non-zero) and
//!   excludes it when it is false; `_id` is included unless `"_id": 0`. Inclusions and
//!   exclusions of fields other than `_id` cannot be mixed (codes 31253/31254), and no path may be
//!   a prefix of another (`{a: 1, "a.b": 1}`: 31249, "path collision"). A sub-document of plain
//!   keys is a nested projection (`{a: {b: 1}}` is `{"a.b": 1}`; `{a: {}}` is an error).
//! * **Inclusion** keeps the named paths in the document's order: a dotted path goes through
//!   sub-documents and through arrays (an array keeps its document and array elements, each
//!   projected, and drops its scalars), a sub-document without the sub-path stays `{}`, a scalar
//!   in the way is dropped; numeric components are field names, never array indexes.
//! * **Exclusion** removes the named paths, through sub-documents and arrays; everything else,
//!   scalars on the way included, stays.
//! * **`$slice`** (`n`, `-n`, `[skip, n]`, negative `skip` counted from the end; `n` of the
//!   array form must be positive) trims the array at its path and leaves other values alone; it
//!   does not decide the projection's kind: alone, it keeps every other field.
//! * **`$elemMatch`** (top-level fields only) keeps the first element matching its query, or
//!   omits the field; like `$slice` it does not decide the projection's kind, but alone it
//!   includes.
//! * **Positional `"a.$": 1`** (one per projection, an inclusion) keeps, of the first array
//!   along the path, the element the query matched ([`Positional`]): error 51246 when the query
//!   recorded no position and the path reaches an array, 51247 when the array is shorter.
//! * **Computed fields** (decision M25): MongoDB 4.4+ reads any other value as an aggregation
//!   expression. rolegate evaluates literals (strings not starting with `$`, `null`, other
//!   scalars, arrays and documents holding no expression, `{$literal: v}`) and field paths
//!   (`"$a.b"`, read from the document as aggregation reads them, arrays giving arrays); a
//!   computed path creates its sub-documents, and through an array it replaces the scalar
//!   elements. A computed field makes the projection an inclusion (with an exclusion: 31252).
//!   Other expressions (`$$` variables, operators such as `{$add: ...}`) and `$meta` are refused
//!   with `BadValue` naming the field.
//! * **Field order** (decision M26): included fields in the document's order, then the computed
//!   ones (`$slice`, `$elemMatch`, positional `$`, computed fields) in the projection's order, at
//!   each level; exclusions keep the document's order. `$slice` does nothing inside an array
//!   nested in an array.
//!
//! [`project`](crate::mql::project) keeps rolegate's lenient reading for the projections its
//! read pipeline builds (0/1 values, already checked by the query plan): truthy includes, falsy
//! excludes, an inclusion ignores exclusions, a parent path covers its children, `$` keys are
//! plain names. Both readings share the same application code.
//!
//! Values nested deeper than 200 levels under a projected path are dropped (fail closed).

use std::collections::HashMap;

use bson::{Bson, Document};

use crate::expr::Expr;
use crate::mql::find_error::FindError;
use crate::mql::positional::Positional;
use crate::query::memory::{compile_query, matches};
use crate::value::compare::{MAX_DEPTH, truthy};

/// A `$slice` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slice {
    /// `n`: the first `n` (`n >= 0`) or the last `-n` elements.
    Count(i64),
    /// `[skip, n]`: `n > 0` elements from `skip` (from the end when negative).
    Range(i64, i64),
}

impl Slice {
    fn apply(self, items: &[Bson]) -> Vec<Bson> {
        let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
        let (start, count) = match self {
            Slice::Count(n) if n >= 0 => (0, n),
            Slice::Count(n) => ((len.saturating_add(n)).max(0), len),
            Slice::Range(skip, n) if skip >= 0 => (skip.min(len), n),
            Slice::Range(skip, n) => ((len.saturating_add(skip)).max(0), n),
        };
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        let count = usize::try_from(count.max(0)).unwrap_or(usize::MAX);
        items.iter().skip(start).take(count).cloned().collect()
    }
}

/// A computed field's value: a literal, or a field path of the document (`"$a.b"`), read as
/// aggregation reads it (through arrays, giving arrays).
#[derive(Debug, Clone)]
enum Computed {
    Literal(Bson),
    Path(Vec<String>),
}

impl Computed {
    fn value(&self, root: &Document) -> Option<Bson> {
        match self {
            Computed::Literal(v) => Some(v.clone()),
            Computed::Path(segments) => {
                let (first, rest) = segments.split_first()?;
                field_path(root.get(first)?, rest, 0)
            }
        }
    }
}

/// Aggregation's reading of a field path below `v`: through sub-documents, and through arrays
/// element by element (keeping the arrays, dropping elements without the path).
fn field_path(v: &Bson, rest: &[String], depth: usize) -> Option<Bson> {
    if depth > MAX_DEPTH {
        return None;
    }
    let Some((first, tail)) = rest.split_first() else {
        return Some(v.clone());
    };
    match v {
        Bson::Document(d) => field_path(d.get(first)?, tail, depth + 1),
        Bson::Array(items) => Some(Bson::Array(
            items
                .iter()
                .filter_map(|i| match i {
                    Bson::Document(_) | Bson::Array(_) => field_path(i, rest, depth + 1),
                    _ => None,
                })
                .collect(),
        )),
        _ => None,
    }
}

/// What a projection does at a path.
#[derive(Debug, Clone)]
enum Node {
    /// Inclusion: the whole value.
    Include,
    /// Exclusion: removed.
    Exclude,
    /// `$slice`.
    Slice(Slice),
    /// `$elemMatch`: the query `{"k": {"$elemMatch": <q>}}`, run on `{"k": [element]}`.
    ElemMatch(Box<Expr>),
    /// Positional `$` at the end of this path.
    Positional,
    /// A computed field.
    Computed(Computed),
    /// Only the given sub-paths.
    Branch(Tree),
    /// A value rolegate refuses (decision M25): the error, raised once the path is placed (so
    /// a path collision is reported first, as MongoDB does).
    Refused(FindError),
}

impl Node {
    /// Computed nodes come after a document's included fields, in projection order.
    fn is_computed(&self) -> bool {
        match self {
            Node::Slice(_) | Node::ElemMatch(_) | Node::Positional | Node::Computed(_) => true,
            Node::Branch(sub) => sub.creates,
            _ => false,
        }
    }
}

/// Children by key, hashed: applying a projection of many keys stays linear (red team R5).
#[derive(Debug, Clone, Default)]
struct Tree {
    children: HashMap<String, Node>,
    /// The keys of computed children (and of branches that create fields), in projection order.
    computed: Vec<String>,
    /// The positional `$` is at or below this tree.
    positional: bool,
    /// A computed field is at or below this tree: it creates its path where the document has
    /// none.
    creates: bool,
}

/// The kind of a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inclusion,
    Exclusion,
}

/// A compiled find projection (see the module documentation).
#[derive(Debug, Clone)]
pub struct Projection {
    kind: Kind,
    tree: Tree,
    keep_id: bool,
    /// The projection is `{}`: documents are returned unchanged.
    identity: bool,
}

fn bad(message: impl Into<String>) -> FindError {
    FindError::bad_value(message)
}

/// One parsed entry: a path and what it does.
struct Entry {
    segments: Vec<String>,
    node: Node,
}

/// True when `v` holds no expression (`$`-string or operator document) at any depth.
fn is_constant(v: &Bson, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match v {
        Bson::String(s) => !s.starts_with('$'),
        Bson::Array(items) => items.iter().all(|i| is_constant(i, depth + 1)),
        Bson::Document(d) => d
            .iter()
            .all(|(k, v)| !k.starts_with('$') && is_constant(v, depth + 1)),
        _ => true,
    }
}

fn refuse_expression(shown: &str, what: &str) -> Node {
    Node::Refused(bad(format!(
        "projection `{shown}`: {what} is an aggregation expression rolegate does not evaluate; \
         it supports 1/true, 0/false, $slice, $elemMatch, positional $, literal values, \
         {{$literal: ...}} and field paths \"$a.b\""
    )))
}

/// What a projection value does (`shown`: the field, for messages).
fn node_of(
    shown: &str,
    segments: &[String],
    value: &Bson,
    positional: bool,
) -> Result<Node, FindError> {
    Ok(match value {
        Bson::Int32(_)
        | Bson::Int64(_)
        | Bson::Double(_)
        | Bson::Decimal128(_)
        | Bson::Boolean(_) => {
            if positional {
                if !truthy(value) {
                    return Err(bad(format!(
                        "positional projection `{shown}` must be an inclusion (1 or true)"
                    )));
                }
                Node::Positional
            } else if truthy(value) {
                Node::Include
            } else {
                Node::Exclude
            }
        }
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
            let op = d.keys().next().map(String::as_str).unwrap_or_default();
            if positional {
                return Err(FindError::new(
                    "Location31271",
                    format!("positional projection `{shown}` cannot be combined with {op}"),
                ));
            }
            match (op, d.get(op)) {
                ("$slice", Some(arg)) if d.len() == 1 => Node::Slice(parse_slice(shown, arg)?),
                ("$elemMatch", Some(Bson::Document(q))) if d.len() == 1 => {
                    if segments.len() != 1 {
                        return Err(FindError::new(
                            "Location31275",
                            format!(
                                "Cannot use $elemMatch projection on a nested field: `{shown}`"
                            ),
                        ));
                    }
                    let query = compile_query(&bson::doc! {"k": {"$elemMatch": q.clone()}})
                        .map_err(|e| bad(format!("$elemMatch projection `{shown}`: {e}")))?;
                    Node::ElemMatch(Box::new(query))
                }
                ("$elemMatch", _) => {
                    return Err(bad(format!(
                        "$elemMatch projection `{shown}` needs an object"
                    )));
                }
                ("$meta", _) => Node::Refused(bad(format!(
                    "projection `{shown}`: $meta is not supported: rolegate has no text or search \
                     scores"
                ))),
                ("$literal", Some(v)) if d.len() == 1 => {
                    Node::Computed(Computed::Literal(v.clone()))
                }
                _ => refuse_expression(shown, op),
            }
        }
        Bson::String(s) if s.starts_with("$$") => {
            refuse_expression(shown, &format!("the variable {s}"))
        }
        Bson::String(s) if s.starts_with('$') => {
            let path: Vec<String> = s[1..].split('.').map(str::to_string).collect();
            if path.iter().any(|p| p.is_empty() || p.starts_with('$')) {
                return Err(bad(format!("projection `{shown}`: invalid field path {s}")));
            }
            Node::Computed(Computed::Path(path))
        }
        other if is_constant(other, 0) => Node::Computed(Computed::Literal(other.clone())),
        _ => refuse_expression(shown, "an array or document holding expressions"),
    })
}

/// Flattens a projection document (nested projections become dotted paths) into entries.
fn flatten(
    spec: &Document,
    prefix: &[String],
    out: &mut Vec<Entry>,
    depth: usize,
) -> Result<(), FindError> {
    if depth > MAX_DEPTH {
        return Err(bad("projection nested too deeply"));
    }
    for (key, value) in spec {
        let shown = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{}.{key}", prefix.join("."))
        };
        if key.is_empty() {
            return Err(FindError::new(
                "Location40352",
                "FieldPath cannot be constructed with empty string",
            ));
        }
        let (path, positional) = match key.strip_suffix(".$") {
            Some("") => {
                return Err(FindError::new(
                    "Location5392900",
                    format!("positional projection `{shown}` needs a field path before `.$`"),
                ));
            }
            Some(path) => (path, true),
            None if key == "$" => {
                return Err(FindError::new(
                    "Location16410",
                    format!("projection `{shown}`: field names may not start with '$'"),
                ));
            }
            None => (key.as_str(), false),
        };
        let mut segments: Vec<String> = prefix.to_vec();
        for part in path.split('.') {
            if part.is_empty() {
                return Err(FindError::new(
                    "Location15998",
                    format!("projection `{shown}`: field names may not be empty strings"),
                ));
            }
            if part.starts_with('$') {
                return Err(FindError::new(
                    "Location16410",
                    format!("projection `{shown}`: field names may not start with '$'"),
                ));
            }
            segments.push(part.to_string());
        }
        if let Bson::Document(d) = value
            && !positional
            && !d.keys().next().is_some_and(|k| k.starts_with('$'))
        {
            if d.is_empty() {
                return Err(FindError::new(
                    "Location51270",
                    format!("projection `{shown}`: an empty sub-projection is not valid"),
                ));
            }
            flatten(d, &segments, out, depth + 1)?;
            continue;
        }
        let node = node_of(&shown, &segments, value, positional)?;
        out.push(Entry { segments, node });
    }
    Ok(())
}

fn parse_slice(shown: &str, arg: &Bson) -> Result<Slice, FindError> {
    let int = |v: &Bson| -> Option<i64> {
        match v {
            Bson::Int32(i) => Some(i64::from(*i)),
            Bson::Int64(i) => Some(*i),
            Bson::Double(d) if d.is_finite() => Some(d.trunc() as i64),
            Bson::Decimal128(_) => crate::value::eval::truncated(v),
            _ => None,
        }
    };
    match arg {
        Bson::Array(items) => match items.as_slice() {
            [skip, n] => {
                let (Some(skip), Some(n)) = (int(skip), int(n)) else {
                    return Err(bad(format!(
                        "$slice `{shown}`: the array form takes two numbers [skip, limit]"
                    )));
                };
                if n <= 0 {
                    return Err(FindError::new(
                        "Location28724",
                        format!("$slice `{shown}`: the limit must be positive"),
                    ));
                }
                Ok(Slice::Range(skip, n))
            }
            _ => Err(bad(format!(
                "$slice `{shown}`: the array form takes two numbers [skip, limit]"
            ))),
        },
        other => int(other).map(Slice::Count).ok_or_else(|| {
            bad(format!(
                "$slice `{shown}` takes a number or [skip, limit], not {other}"
            ))
        }),
    }
}

impl Tree {
    /// Inserts a path. MongoDB's path collisions: a path below one already placed (31249), or
    /// a path equal to or above one already placed (31250).
    fn insert_strict(
        &mut self,
        segments: &[String],
        node: Node,
        shown: &str,
    ) -> Result<(), FindError> {
        let Some((first, rest)) = segments.split_first() else {
            return Err(FindError::new(
                "Location31250",
                format!("Path collision at {shown}"),
            ));
        };
        if matches!(node, Node::Positional) {
            self.positional = true;
        }
        if matches!(node, Node::Computed(_)) {
            self.creates = true;
        }
        if rest.is_empty() {
            if self.children.contains_key(first) {
                return Err(FindError::new(
                    "Location31250",
                    format!("Path collision at {shown}"),
                ));
            }
            if node.is_computed() {
                self.computed.push(first.clone());
            }
            self.children.insert(first.clone(), node);
            return Ok(());
        }
        let creates = matches!(node, Node::Computed(_));
        let sub = self
            .children
            .entry(first.clone())
            .or_insert_with(|| Node::Branch(Tree::default()));
        let Node::Branch(sub) = sub else {
            return Err(FindError::new(
                "Location31249",
                format!(
                    "Path collision at {shown} remaining portion {}",
                    rest.join(".")
                ),
            ));
        };
        let was_creating = sub.creates;
        sub.insert_strict(rest, node, shown)?;
        if creates && !was_creating && !self.computed.contains(first) {
            self.computed.push(first.clone());
        }
        Ok(())
    }

    /// Inserts an included path, a parent covering its children (the lenient reading).
    fn insert_covering(&mut self, segments: &[String]) {
        let Some((first, rest)) = segments.split_first() else {
            return;
        };
        match (self.children.get_mut(first), rest.is_empty()) {
            (None, true) => {
                self.children.insert(first.clone(), Node::Include);
            }
            (None, false) => {
                let mut sub = Tree::default();
                sub.insert_covering(rest);
                self.children.insert(first.clone(), Node::Branch(sub));
            }
            (Some(Node::Branch(_)), true) => {
                self.children.insert(first.clone(), Node::Include);
            }
            (Some(Node::Branch(sub)), false) => sub.insert_covering(rest),
            (Some(_), _) => {}
        }
    }
}

impl Projection {
    /// Compiles a MongoDB find projection (see the module documentation for its rules and
    /// errors).
    pub fn compile(spec: &Document) -> Result<Projection, FindError> {
        let mut entries = Vec::new();
        flatten(spec, &[], &mut entries, 0)?;
        let mut kind: Option<Kind> = None;
        let mut id: Option<bool> = None;
        let mut positional: Option<String> = None;
        let mut elem_match = false;
        let mut computed = false;
        let mut tree = Tree::default();
        for entry in entries {
            let shown = entry.segments.join(".");
            let is_id = entry.segments.len() == 1 && shown == "_id";
            let this = match &entry.node {
                Node::Include if is_id => {
                    id = Some(true);
                    None
                }
                Node::Exclude if is_id => {
                    id = Some(false);
                    None
                }
                Node::Include | Node::Positional | Node::Computed(_) => Some(Kind::Inclusion),
                Node::Exclude => Some(Kind::Exclusion),
                _ => None,
            };
            match (&entry.node, kind) {
                (Node::Computed(_), Some(Kind::Exclusion)) | (Node::Exclude, _)
                    if computed && !is_id =>
                {
                    return Err(FindError::new(
                        "Location31252",
                        format!(
                            "Cannot use an expression other than $meta in an exclusion projection \
                             ({shown})"
                        ),
                    ));
                }
                _ => {}
            }
            if let Some(this) = this {
                match kind {
                    None => kind = Some(this),
                    Some(k) if k == this => {}
                    Some(Kind::Inclusion) => {
                        return Err(FindError::new(
                            "Location31254",
                            format!("Cannot do exclusion on field {shown} in inclusion projection"),
                        ));
                    }
                    Some(Kind::Exclusion) => {
                        return Err(FindError::new(
                            "Location31253",
                            format!("Cannot do inclusion on field {shown} in exclusion projection"),
                        ));
                    }
                }
            }
            match &entry.node {
                Node::Positional => {
                    if let Some(first) = &positional {
                        return Err(FindError::new(
                            "Location31276",
                            format!(
                                "Cannot specify more than one positional projection per query \
                                 ({first}.$ and {shown}.$)"
                            ),
                        ));
                    }
                    positional = Some(shown.clone());
                }
                Node::ElemMatch(_) => elem_match = true,
                Node::Computed(_) => computed = true,
                _ => {}
            }
            if positional.is_some() && elem_match {
                return Err(FindError::new(
                    "Location31255",
                    "Cannot specify positional operator and $elemMatch",
                ));
            }
            let refused = match &entry.node {
                Node::Refused(e) => Some(e.clone()),
                _ => None,
            };
            tree.insert_strict(&entry.segments, entry.node, &shown)?;
            if let Some(e) = refused {
                return Err(e);
            }
        }
        let kind = match kind {
            Some(k) => k,
            // Nothing decided: `$elemMatch` and `{_id: 1}` include, `$slice` and `{_id: 0}`
            // exclude.
            None if elem_match => Kind::Inclusion,
            None if id == Some(true)
                && !tree
                    .children
                    .values()
                    .any(|n| matches!(n, Node::Slice(_) | Node::Branch(_))) =>
            {
                Kind::Inclusion
            }
            None => Kind::Exclusion,
        };
        Ok(Projection {
            kind,
            tree,
            keep_id: id != Some(false),
            identity: spec.is_empty(),
        })
    }

    /// rolegate's lenient reading (see the module documentation), for the projections its read
    /// pipeline builds; never fails.
    pub(crate) fn lenient(spec: &Document) -> Projection {
        let mut included = Vec::new();
        let mut excluded = Vec::new();
        let mut id: Option<bool> = None;
        for (k, v) in spec {
            if k == "_id" {
                id = Some(truthy(v));
            } else if truthy(v) {
                included.push(k);
            } else {
                excluded.push(k);
            }
        }
        let split = |p: &String| -> Vec<String> {
            p.split('.')
                .take(MAX_DEPTH + 1)
                .map(str::to_string)
                .collect()
        };
        let inclusive = !included.is_empty() || (id == Some(true) && excluded.is_empty());
        let mut tree = Tree::default();
        if inclusive {
            for p in &included {
                tree.insert_covering(&split(p));
            }
        } else {
            for p in &excluded {
                // An exclusion tree: a parent's exclusion covers its children too.
                tree.insert_covering(&split(p));
            }
            flip_to_exclusions(&mut tree);
        }
        Projection {
            kind: if inclusive {
                Kind::Inclusion
            } else {
                Kind::Exclusion
            },
            tree,
            keep_id: id != Some(false),
            identity: spec.is_empty(),
        }
    }

    /// True when the projection has a positional `$` (it needs the query that matched:
    /// [`Projection::apply_matched`]).
    pub fn is_positional(&self) -> bool {
        self.tree.positional
    }

    /// Applies the projection to `doc`. A positional `$` that reaches an array fails (51246):
    /// use [`Projection::apply_matched`].
    pub fn apply(&self, doc: &Document) -> Result<Document, FindError> {
        self.apply_at(doc, None)
    }

    /// Applies the projection to `doc`, which the query read into `positional` matched.
    pub fn apply_matched(
        &self,
        doc: &Document,
        positional: &Positional,
    ) -> Result<Document, FindError> {
        let index = if self.is_positional() {
            positional.position(doc)?
        } else {
            None
        };
        self.apply_at(doc, index)
    }

    /// Applies the projection with the positional `$` standing for `index`.
    pub fn apply_at(&self, doc: &Document, index: Option<usize>) -> Result<Document, FindError> {
        if self.identity {
            return Ok(doc.clone());
        }
        let mut ctx = Ctx {
            index,
            consumed: false,
            root: doc,
        };
        match self.kind {
            Kind::Inclusion => include_doc(doc, &self.tree, 0, &mut ctx, false, Some(self.keep_id)),
            Kind::Exclusion => {
                let mut out = exclude_doc(doc, &self.tree, 0, &mut ctx, false)?;
                if !self.keep_id {
                    out.remove("_id");
                }
                Ok(out)
            }
        }
    }
}

/// Turns an inclusion-shaped tree of excluded paths into exclusions.
fn flip_to_exclusions(tree: &mut Tree) {
    let mut stack: Vec<&mut Tree> = vec![tree];
    while let Some(t) = stack.pop() {
        for node in t.children.values_mut() {
            match node {
                Node::Include => *node = Node::Exclude,
                Node::Branch(sub) => stack.push(sub),
                _ => {}
            }
        }
    }
}

/// The state of one document's projection: the positional `$`'s index, whether the first array
/// on its path was already cut to that element, and the document (for field paths).
struct Ctx<'d> {
    index: Option<usize>,
    consumed: bool,
    root: &'d Document,
}

impl Ctx<'_> {
    /// The element of `items` the positional `$` keeps.
    fn pick<'a>(&mut self, items: &'a [Bson]) -> Result<&'a Bson, FindError> {
        self.consumed = true;
        let Some(i) = self.index else {
            return Err(FindError::new(
                "Location51246",
                "positional operator '.$' couldn't find a matching element in the array",
            ));
        };
        items.get(i).ok_or_else(|| {
            FindError::new(
                "Location51247",
                "positional operator '.$' element mismatch: the matched position is beyond the \
                 array",
            )
        })
    }
}

/// The first element of `items` matching an `$elemMatch` projection's query.
fn elem_match(query: &Expr, items: &[Bson]) -> Result<Option<Bson>, FindError> {
    for item in items {
        crate::steps::charge_quietly(1);
        let alone = bson::doc! {"k": [item.clone()]};
        if matches(query, &alone).map_err(|e| bad(format!("$elemMatch projection: {e}")))? {
            return Ok(Some(Bson::Array(vec![item.clone()])));
        }
    }
    Ok(None)
}

/// The document a creating tree makes where the document has nothing (or a scalar).
fn build(tree: &Tree, ctx: &Ctx<'_>, depth: usize) -> Document {
    let mut out = Document::new();
    if depth > MAX_DEPTH {
        return out;
    }
    for key in &tree.computed {
        match tree.children.get(key) {
            Some(Node::Computed(c)) => {
                if let Some(v) = c.value(ctx.root) {
                    out.insert(key.clone(), v);
                }
            }
            Some(Node::Branch(sub)) if sub.creates => {
                out.insert(key.clone(), Bson::Document(build(sub, ctx, depth + 1)));
            }
            _ => {}
        }
    }
    out
}

/// The part of `v` that `node` includes; `None` drops it. `nested`: `v` is inside an array
/// that is itself an element of an array (where `$slice` does nothing).
fn include_value(
    v: &Bson,
    node: &Node,
    depth: usize,
    ctx: &mut Ctx<'_>,
    nested: bool,
) -> Result<Option<Bson>, FindError> {
    if depth > MAX_DEPTH {
        return Ok(None);
    }
    Ok(match node {
        Node::Include => Some(v.clone()),
        Node::Exclude | Node::Refused(_) => None,
        Node::ElemMatch(query) => match v {
            Bson::Array(items) => elem_match(query, items)?,
            _ => None,
        },
        Node::Computed(c) => c.value(ctx.root),
        Node::Slice(s) => Some(match v {
            Bson::Array(items) if !nested => Bson::Array(s.apply(items)),
            other => other.clone(),
        }),
        Node::Positional => match v {
            Bson::Array(items) if !ctx.consumed => {
                Some(Bson::Array(vec![ctx.pick(items)?.clone()]))
            }
            other => Some(other.clone()),
        },
        Node::Branch(sub) => match v {
            Bson::Document(d) => Some(Bson::Document(include_doc(
                d, sub, depth, ctx, nested, None,
            )?)),
            Bson::Array(items) if sub.positional && !ctx.consumed => {
                let item = ctx.pick(items)?;
                let kept = match item {
                    Bson::Document(_) => include_value(item, node, depth + 1, ctx, nested)?,
                    Bson::Array(_) => include_value(item, node, depth + 1, ctx, true)?,
                    _ => None,
                };
                Some(Bson::Array(kept.into_iter().collect()))
            }
            Bson::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let kept = match item {
                        Bson::Document(_) => include_value(item, node, depth + 1, ctx, nested)?,
                        Bson::Array(_) => include_value(item, node, depth + 1, ctx, true)?,
                        _ if sub.creates => Some(Bson::Document(build(sub, ctx, depth + 1))),
                        _ => None,
                    };
                    out.extend(kept);
                }
                Some(Bson::Array(out))
            }
            _ if sub.creates => Some(Bson::Document(build(sub, ctx, depth + 1))),
            _ => None,
        },
    })
}

/// An inclusion at one document: its included fields in the document's order, then its
/// computed fields in the projection's order. At the top level (`keep_id` given), `_id` is kept
/// in its place unless the projection excludes it.
fn include_doc(
    doc: &Document,
    tree: &Tree,
    depth: usize,
    ctx: &mut Ctx<'_>,
    nested: bool,
    keep_id: Option<bool>,
) -> Result<Document, FindError> {
    let mut out = Document::new();
    for (k, v) in doc {
        let Some(node) = tree.children.get(k) else {
            if k == "_id" && keep_id == Some(true) {
                out.insert(k.clone(), v.clone());
            }
            continue;
        };
        if node.is_computed() {
            continue;
        }
        if let Some(v) = include_value(v, node, depth + 1, ctx, nested)? {
            out.insert(k.clone(), v);
        }
    }
    for key in &tree.computed {
        let Some(node) = tree.children.get(key) else {
            continue;
        };
        match (node, doc.get(key)) {
            (Node::Branch(sub), None) => {
                out.insert(key.clone(), Bson::Document(build(sub, ctx, depth + 1)));
            }
            (Node::Computed(c), _) => {
                if let Some(v) = c.value(ctx.root) {
                    out.insert(key.clone(), v);
                }
            }
            (_, Some(v)) => {
                if let Some(v) = include_value(v, node, depth + 1, ctx, nested)? {
                    out.insert(key.clone(), v);
                }
            }
            (_, None) => {}
        }
    }
    Ok(out)
}

fn exclude_doc(
    doc: &Document,
    tree: &Tree,
    depth: usize,
    ctx: &mut Ctx<'_>,
    nested: bool,
) -> Result<Document, FindError> {
    let mut out = Document::new();
    for (k, v) in doc {
        match tree.children.get(k) {
            None => {
                out.insert(k.clone(), v.clone());
            }
            Some(Node::Exclude) => {}
            Some(node) => {
                if let Some(v) = exclude_value(v, node, depth + 1, ctx, nested)? {
                    out.insert(k.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

/// `v` without what `node` excludes (and with its slices and `$elemMatch`es applied); `None`
/// drops it. Values nested deeper than [`MAX_DEPTH`] are dropped (fail closed: an excluded
/// field could hide in them).
fn exclude_value(
    v: &Bson,
    node: &Node,
    depth: usize,
    ctx: &mut Ctx<'_>,
    nested: bool,
) -> Result<Option<Bson>, FindError> {
    if depth > MAX_DEPTH {
        return Ok(None);
    }
    Ok(match (v, node) {
        (_, Node::Exclude | Node::Refused(_)) => None,
        (Bson::Array(items), Node::ElemMatch(query)) => elem_match(query, items)?,
        (_, Node::ElemMatch(_)) => None,
        (Bson::Array(items), Node::Slice(s)) if !nested => Some(Bson::Array(s.apply(items))),
        (Bson::Document(d), Node::Branch(sub)) => {
            Some(Bson::Document(exclude_doc(d, sub, depth, ctx, nested)?))
        }
        (Bson::Array(items), Node::Branch(_)) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                let inner = nested || matches!(i, Bson::Array(_));
                out.extend(exclude_value(i, node, depth + 1, ctx, inner)?);
            }
            Some(Bson::Array(out))
        }
        _ => Some(v.clone()),
    })
}
