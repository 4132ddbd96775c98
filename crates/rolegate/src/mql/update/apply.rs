//! Stage: update application. Input: the compiled update tree ([`super::tree`]) and a copy of
//! the document (the output being built). Output: the document with every operation applied,
//! or MongoDB's error.
//!
//! The walk is MongoDB's (`UpdateObjectNode::apply`, `UpdateArrayNode::apply`): at each level
//! the children are applied in [`cmp_fields`](super::path::cmp_fields) order, so an existing
//! field is changed where it is and a new one is appended in that order; the positional `$`
//! child is applied in the place of the index it stands for. A path that does not exist is
//! created by the operations that create (`$set`, `$inc`, `$push`, ...): missing fields become
//! sub-documents (`a.0` on a missing `a` creates `{a: {"0": ...}}`), an index past the end of an
//! array pads it with `null`s. An operation that would create a path through a scalar, or a
//! field name on an array, is `PathNotViable`; the others (`$unset`, `$pull`, ...) do nothing
//! there. `$[]` and `$[<id>]` need an existing array.
//!
//! The walk recurses once per path component; paths are capped at
//! [`max_document_depth`](crate::limits::Limits::max_document_depth) components by the parser.

use bson::{Bson, DateTime, Document, Timestamp};

use super::error::UpdateError;
use super::filters::ArrayFilters;
use super::ops;
use super::path::{array_index, cmp_fields};
use super::tree::{ArrayNode, Node, ObjectNode, Op};
use crate::steps::charge;

/// The most elements MongoDB pads an array to (`$set` of `a.1500001` fails).
pub(crate) const MAX_PADDED_INDEX: usize = 1_500_000;

/// What the walk needs besides the tree and the document.
pub(crate) struct Cx<'a> {
    /// The update inserts (an upsert): `$setOnInsert` applies.
    pub(crate) inserting: bool,
    /// The positional `$` index, when the query recorded one.
    pub(crate) matched: Option<String>,
    pub(crate) filters: &'a ArrayFilters,
    /// The values of the `$rename` sources, read from the input document.
    pub(crate) renames: &'a [Option<Bson>],
    pub(crate) now: DateTime,
    pub(crate) timestamp: Timestamp,
    /// The document's `_id`, for messages.
    pub(crate) id: Option<&'a Bson>,
    /// Set by operations MongoDB counts as a modification even when the document ends as it
    /// was (`$push` with a non-empty `$each` that `$slice` cuts back).
    pub(crate) touched: std::cell::Cell<bool>,
}

impl Cx<'_> {
    /// `{_id: ...}` as MongoDB's messages show the document.
    pub(crate) fn doc_id(&self) -> String {
        match self.id {
            Some(id) => format!("{{_id: {id}}}"),
            None => "no id".to_string(),
        }
    }
}

/// A child's place in its container: a field name or an array index (shown in messages without
/// formatting the index on the way).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key<'k> {
    Name(&'k str),
    Index(usize),
}

impl std::fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Name(n) => f.write_str(n),
            Key::Index(i) => write!(f, "{i}"),
        }
    }
}

fn positional_missing() -> UpdateError {
    UpdateError::bad_value("The positional operator did not find the match needed from the query.")
}

/// Applies the children of `node` to `target` (a document, an array or a scalar), whose field
/// name is `field`.
pub(crate) fn apply_object(
    node: &ObjectNode,
    target: &mut Bson,
    field: Key<'_>,
    cx: &Cx<'_>,
) -> Result<(), UpdateError> {
    let positional = match &node.positional {
        Some(p) => Some((
            p.as_ref(),
            cx.matched.as_deref().ok_or_else(positional_missing)?,
        )),
        None => None,
    };
    let mut pending = positional;
    for (key, child) in &node.children {
        charge(1)?;
        if let Some((p, at)) = pending {
            match cmp_fields(at, &key.0) {
                std::cmp::Ordering::Less => {
                    apply_at(p, target, Key::Name(at), field, cx)?;
                    pending = None;
                }
                std::cmp::Ordering::Equal => {
                    if matches!(p, Node::Leaf(_)) || matches!(child, Node::Leaf(_)) {
                        return Err(UpdateError::conflict(format!(
                            "Update created a conflict at '{field}.{at}'"
                        )));
                    }
                    apply_at(p, target, Key::Name(at), field, cx)?;
                    pending = None;
                }
                std::cmp::Ordering::Greater => {}
            }
        }
        apply_at(child, target, Key::Name(&key.0), field, cx)?;
    }
    if let Some((p, at)) = pending {
        apply_at(p, target, Key::Name(at), field, cx)?;
    }
    Ok(())
}

fn cannot_create(key: Key<'_>, field: Key<'_>, target: &Bson) -> UpdateError {
    let name = match key {
        Key::Name(n) => n.to_string(),
        Key::Index(i) => i.to_string(),
    };
    UpdateError::not_viable(format!(
        "Cannot create field '{name}' in element {{{field}: {target}}}"
    ))
}

fn apply_at(
    node: &Node,
    target: &mut Bson,
    key: Key<'_>,
    field: Key<'_>,
    cx: &Cx<'_>,
) -> Result<(), UpdateError> {
    match target {
        Bson::Document(d) => {
            let name_buf;
            let name: &str = match key {
                Key::Name(n) => n,
                Key::Index(i) => {
                    name_buf = i.to_string();
                    &name_buf
                }
            };
            match d.get_mut(name) {
                Some(value) => {
                    if let ops::Outcome::Remove = apply_existing(node, value, Key::Name(name), cx)?
                    {
                        d.remove(name);
                    }
                }
                None => {
                    if let Some(v) = create(node, Key::Name(name), cx)? {
                        d.insert(name, v);
                    }
                }
            }
            Ok(())
        }
        Bson::Array(items) => {
            let index = match key {
                Key::Index(i) => Some(i),
                Key::Name(n) => array_index(n),
            };
            let Some(i) = index else {
                return match key {
                    Key::Name(_) if needs_viable(node) || create(node, key, cx)?.is_some() => {
                        Err(cannot_create(key, field, target))
                    }
                    _ => Ok(()),
                };
            };
            match items.get_mut(i) {
                Some(value) => {
                    if let ops::Outcome::Remove = apply_existing(node, value, Key::Index(i), cx)?
                        && let Some(slot) = items.get_mut(i)
                    {
                        *slot = Bson::Null;
                    }
                }
                None => {
                    if let Some(v) = create(node, Key::Index(i), cx)? {
                        if i > MAX_PADDED_INDEX {
                            return Err(UpdateError::new(
                                super::error::ErrorKind::CannotBackfillArray,
                                format!(
                                    "can't backfill array to larger than {MAX_PADDED_INDEX} elements"
                                ),
                            ));
                        }
                        charge((i - items.len()) as u64)?;
                        items.resize(i, Bson::Null);
                        items.push(v);
                    }
                }
            }
            Ok(())
        }
        _ => {
            if needs_viable(node) || create(node, key, cx)?.is_some() {
                Err(cannot_create(key, field, target))
            } else {
                Ok(())
            }
        }
    }
}

fn apply_existing(
    node: &Node,
    value: &mut Bson,
    field: Key<'_>,
    cx: &Cx<'_>,
) -> Result<ops::Outcome, UpdateError> {
    match node {
        Node::Leaf(leaf) => ops::apply_existing(leaf, value, field, cx),
        Node::Object(o) => {
            apply_object(o, value, field, cx)?;
            Ok(ops::Outcome::Keep)
        }
        Node::Array(a) => {
            apply_array(a, value, field, cx)?;
            Ok(ops::Outcome::Keep)
        }
    }
}

/// True when `node` holds an operation that refuses a path through a scalar even though it
/// creates nothing (`$pop`, `$pull`, `$pullAll`; `$unset` accepts it).
fn needs_viable(node: &Node) -> bool {
    match node {
        Node::Leaf(l) => matches!(l.op, Op::Pop { .. } | Op::Pull(_) | Op::PullAll(_)),
        Node::Object(o) => {
            o.children.values().any(needs_viable)
                || o.positional.as_deref().is_some_and(needs_viable)
        }
        Node::Array(a) => a.children.values().any(needs_viable),
    }
}

fn merge_conflict(path: &str) -> UpdateError {
    UpdateError::conflict(format!("Update created a conflict at '{path}'"))
}

/// One node doing what `a` and `b` do at the same place (two `$[<id>]` children selecting the
/// same element; MongoDB's `createUpdateNodeByMerging`): internal nodes merge their children,
/// a leaf meeting anything is a conflict.
fn merge(a: &Node, b: &Node, path: &str) -> Result<Node, UpdateError> {
    charge(1)?;
    match (a, b) {
        (Node::Object(x), Node::Object(y)) => {
            let mut out = x.clone();
            for (k, child) in &y.children {
                let merged = match out.children.get(k) {
                    Some(existing) => merge(existing, child, &format!("{path}.{}", k.0))?,
                    None => child.clone(),
                };
                out.children.insert(k.clone(), merged);
            }
            out.positional = match (&x.positional, &y.positional) {
                (Some(p), Some(q)) => Some(Box::new(merge(p, q, &format!("{path}.$"))?)),
                (p, q) => p.clone().or_else(|| q.clone()),
            };
            Ok(Node::Object(out))
        }
        (Node::Array(x), Node::Array(y)) => {
            let mut out = x.clone();
            for (id, child) in &y.children {
                let merged = match out.children.get(id) {
                    Some(existing) => merge(existing, child, &format!("{path}.$[{id}]"))?,
                    None => child.clone(),
                };
                out.children.insert(id.clone(), merged);
            }
            Ok(Node::Array(out))
        }
        _ => Err(merge_conflict(path)),
    }
}

fn first_leaf_path(node: &Node) -> String {
    let mut current = node;
    loop {
        match current {
            Node::Leaf(l) => return l.path.clone(),
            Node::Object(o) => match o.children.values().next().or(o.positional.as_deref()) {
                Some(n) => current = n,
                None => return String::new(),
            },
            Node::Array(a) => match a.children.values().next() {
                Some(n) => current = n,
                None => return String::new(),
            },
        }
    }
}

/// The value `node` creates where nothing is (`None`: it creates nothing).
fn create(node: &Node, field: Key<'_>, cx: &Cx<'_>) -> Result<Option<Bson>, UpdateError> {
    match node {
        Node::Leaf(leaf) => ops::create(leaf, cx),
        Node::Object(o) => {
            let mut out = Bson::Document(Document::new());
            apply_object(o, &mut out, field, cx)?;
            Ok(match out {
                Bson::Document(d) if d.is_empty() => None,
                other => Some(other),
            })
        }
        Node::Array(_) => {
            let path = first_leaf_path(node);
            let upto = path.split(".$[").next().unwrap_or_default();
            Err(UpdateError::bad_value(format!(
                "The path '{upto}' must exist in the document in order to apply array updates."
            )))
        }
    }
}

/// Applies `$[]` / `$[<id>]` children to every element of the array `target` they select.
fn apply_array(
    node: &ArrayNode,
    target: &mut Bson,
    field: Key<'_>,
    cx: &Cx<'_>,
) -> Result<(), UpdateError> {
    let Bson::Array(items) = target else {
        return Err(UpdateError::bad_value(format!(
            "Cannot apply array updates to non-array element {field}: {target}"
        )));
    };
    // One `{id: element}` document per filter, reused for every element: the element is swapped
    // in for the match and back out (never copied, no allocation per element).
    let mut wrappers: Vec<Option<Document>> = node
        .children
        .keys()
        .map(|id| {
            (!id.is_empty()).then(|| {
                let mut w = Document::new();
                w.insert(id.as_str(), Bson::Null);
                w
            })
        })
        .collect();
    for i in 0..items.len() {
        charge(1)?;
        let mut first: Option<&Node> = None;
        let mut merged: Option<Node> = None;
        for ((id, child), wrapper) in node.children.iter().zip(wrappers.iter_mut()) {
            charge(1)?;
            let selected = match wrapper {
                None => true,
                Some(w) => {
                    let (Some(slot), Some(inner)) = (items.get_mut(i), w.get_mut(id.as_str()))
                    else {
                        break;
                    };
                    std::mem::swap(slot, inner);
                    let selected = cx.filters.selects(id, w);
                    if let (Some(slot), Some(inner)) = (items.get_mut(i), w.get_mut(id.as_str())) {
                        std::mem::swap(slot, inner);
                    }
                    selected?
                }
            };
            if !selected {
                continue;
            }
            match (first, &merged) {
                (None, _) => first = Some(child),
                (Some(f), None) => merged = Some(merge(f, child, &format!("{field}.{i}"))?),
                (Some(_), Some(m)) => merged = Some(merge(m, child, &format!("{field}.{i}"))?),
            }
        }
        let Some(apply) = merged.as_ref().or(first) else {
            continue;
        };
        let mut holder = Bson::Array(std::mem::take(items));
        let result = apply_at(apply, &mut holder, Key::Index(i), field, cx);
        if let Bson::Array(back) = holder {
            *items = back;
        }
        result?;
    }
    Ok(())
}
