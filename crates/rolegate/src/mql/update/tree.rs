//! Stage: update parsing. The compiled form of an operator update: a tree of update nodes, one
//! level per path component, as MongoDB's `UpdateObjectNode`/`UpdateArrayNode`/leaf nodes.
//! Input: the (path, operation) pairs of the update document ([`Tree::insert`]). Output: the
//! tree [`super::apply`] walks, with MongoDB's `ConflictingUpdateOperators` for two paths of
//! which one is a prefix of the other.

use std::collections::BTreeMap;

use bson::Bson;

use super::TargetPart;
use super::error::UpdateError;
use super::numeric::BitOp;
use super::path::{FieldKey, Segment};

/// A node of the update tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A level of fields (or array indexes), and perhaps the positional `$`.
    Object(ObjectNode),
    /// `$[]` / `$[<id>]` children: applied to the elements of an array.
    Array(ArrayNode),
    /// An operation on the value at this path.
    Leaf(Leaf),
}

/// One level of named children, in the order MongoDB applies them ([`FieldKey`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjectNode {
    pub(crate) children: BTreeMap<FieldKey, Node>,
    /// The child under `$`.
    pub(crate) positional: Option<Box<Node>>,
}

/// The children of an array level, by identifier (`""` for `$[]`), in identifier order.
#[derive(Debug, Clone, Default)]
pub(crate) struct ArrayNode {
    pub(crate) children: BTreeMap<String, Node>,
}

/// An operation at a path, with the path as written (for messages).
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub(crate) op: Op,
    pub(crate) path: String,
}

/// The operation of a leaf.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// `$set`.
    Set(Bson),
    /// `$setOnInsert`: `$set` when the update inserts (upsert), nothing otherwise.
    SetOnInsert(Bson),
    /// `$unset`.
    Unset,
    /// `$inc`.
    Inc(Bson),
    /// `$mul`.
    Mul(Bson),
    /// `$min`.
    Min(Bson),
    /// `$max`.
    Max(Bson),
    /// `$currentDate`: a date (`false`) or a timestamp (`true`).
    CurrentDate { timestamp: bool },
    /// The source of `$rename` number `n`: removed when the rename happens.
    RenameSource(usize),
    /// The target of `$rename` number `n`: set to the source's value.
    RenameTarget(usize),
    /// `$push`.
    Push(Push),
    /// `$addToSet` (the values of `$each`, or the one value).
    AddToSet(Vec<Bson>),
    /// `$pop`: the first element (`true`, `-1`) or the last.
    Pop { first: bool },
    /// `$pull`.
    Pull(Pull),
    /// `$pullAll`.
    PullAll(Vec<Bson>),
    /// `$bit`: the operations, in order.
    Bit(Vec<(BitOp, Bson)>),
}

/// `$push` with its modifiers.
#[derive(Debug, Clone)]
pub(crate) struct Push {
    pub(crate) each: Vec<Bson>,
    pub(crate) position: Option<i64>,
    pub(crate) slice: Option<i64>,
    pub(crate) sort: Option<PushSort>,
}

/// `$push`'s `$sort`.
#[derive(Debug, Clone)]
pub(crate) enum PushSort {
    /// `1` / `-1`: the elements themselves, ascending when true.
    Whole(bool),
    /// `{field: 1/-1, ...}`: by the values at those paths.
    Pattern(Vec<(Vec<String>, bool)>),
}

/// `$pull`'s condition.
#[derive(Debug, Clone)]
pub(crate) enum Pull {
    /// A plain value: elements equal to it are removed (a regex removes the strings it matches).
    Equal(Bson),
    /// An operator document (`{$gte: 6}`): elements it matches, as a query on the element.
    /// Holds the query `{"v": <operand>}`, matched against `{"v": <element>}`.
    Value(crate::expr::Expr),
    /// A query document (`{score: 8}`): document elements it selects.
    Query(crate::expr::Expr),
}

/// The tree of an operator update.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tree {
    pub(crate) root: ObjectNode,
}

fn dotted(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match s {
            Segment::Field(f) => out.push_str(f),
            Segment::Positional => out.push('$'),
            Segment::All => out.push_str("$[]"),
            Segment::Filtered(id) => {
                out.push_str("$[");
                out.push_str(id);
                out.push(']');
            }
        }
    }
    out
}

fn conflict(path: &str, at: &str) -> UpdateError {
    UpdateError::conflict(format!(
        "Updating the path '{path}' would create a conflict at '{at}'"
    ))
}

impl Tree {
    /// Adds `op` at `segments` (MongoDB's `parseAndMerge`): a path that meets a leaf on its way,
    /// or ends where a node already is, conflicts.
    pub(crate) fn insert(&mut self, segments: &[Segment], op: Op) -> Result<(), UpdateError> {
        let path = dotted(segments);
        let Some((last, inner)) = segments.split_last() else {
            return Err(UpdateError::bad_value("An empty update path is not valid."));
        };
        let mut current: &mut Node = {
            // The root is always an object level; reach its child for the first segment.
            let Some((first, _)) = segments.split_first() else {
                return Err(UpdateError::bad_value("An empty update path is not valid."));
            };
            if inner.is_empty() {
                return insert_leaf(&mut self.root, first, op, &path, &path);
            }
            let wants_array = is_array_segment(segments.get(1));
            child_of_object(&mut self.root, first, wants_array, &path, segments, 0)?
        };
        for i in 1..inner.len() {
            let seg = inner.get(i).ok_or_else(|| conflict(&path, &path))?;
            let wants_array = is_array_segment(segments.get(i + 1));
            current = match current {
                Node::Object(o) => child_of_object(o, seg, wants_array, &path, segments, i)?,
                Node::Array(a) => child_of_array(a, seg, wants_array, &path, segments, i)?,
                Node::Leaf(_) => {
                    return Err(conflict(
                        &path,
                        &dotted(segments.get(..i).unwrap_or_default()),
                    ));
                }
            };
        }
        match current {
            Node::Object(o) => insert_leaf(o, last, op, &path, &path),
            Node::Array(a) => {
                let id = array_id(last);
                if a.children.contains_key(&id) {
                    return Err(conflict(&path, &path));
                }
                a.children.insert(id, Node::Leaf(Leaf { op, path }));
                Ok(())
            }
            Node::Leaf(_) => Err(conflict(&path, &path)),
        }
    }
}

fn is_array_segment(s: Option<&Segment>) -> bool {
    matches!(s, Some(Segment::All | Segment::Filtered(_)))
}

fn array_id(s: &Segment) -> String {
    match s {
        Segment::Filtered(id) => id.clone(),
        _ => String::new(),
    }
}

fn new_internal(wants_array: bool) -> Node {
    if wants_array {
        Node::Array(ArrayNode::default())
    } else {
        Node::Object(ObjectNode::default())
    }
}

fn check_kind<'a>(
    node: &'a mut Node,
    wants_array: bool,
    path: &str,
    segments: &[Segment],
    i: usize,
) -> Result<&'a mut Node, UpdateError> {
    let ok = match node {
        Node::Object(_) => !wants_array,
        Node::Array(_) => wants_array,
        Node::Leaf(_) => false,
    };
    if ok {
        Ok(node)
    } else {
        Err(conflict(
            path,
            &dotted(segments.get(..=i).unwrap_or_default()),
        ))
    }
}

fn child_of_object<'a>(
    o: &'a mut ObjectNode,
    seg: &Segment,
    wants_array: bool,
    path: &str,
    segments: &[Segment],
    i: usize,
) -> Result<&'a mut Node, UpdateError> {
    match seg {
        Segment::Field(f) => {
            let node = o
                .children
                .entry(FieldKey(f.clone()))
                .or_insert_with(|| new_internal(wants_array));
            check_kind(node, wants_array, path, segments, i)
        }
        Segment::Positional => {
            let node = o
                .positional
                .get_or_insert_with(|| Box::new(new_internal(wants_array)));
            check_kind(node, wants_array, path, segments, i)
        }
        // `a.$[]` under an object level: the object level's child must be an array node,
        // which the previous step created; reaching here means the kinds disagree.
        Segment::All | Segment::Filtered(_) => Err(conflict(
            path,
            &dotted(segments.get(..=i).unwrap_or_default()),
        )),
    }
}

fn child_of_array<'a>(
    a: &'a mut ArrayNode,
    seg: &Segment,
    wants_array: bool,
    path: &str,
    segments: &[Segment],
    i: usize,
) -> Result<&'a mut Node, UpdateError> {
    match seg {
        Segment::All | Segment::Filtered(_) => {
            let node = a
                .children
                .entry(array_id(seg))
                .or_insert_with(|| new_internal(wants_array));
            check_kind(node, wants_array, path, segments, i)
        }
        _ => Err(conflict(
            path,
            &dotted(segments.get(..=i).unwrap_or_default()),
        )),
    }
}

fn insert_leaf(
    o: &mut ObjectNode,
    seg: &Segment,
    op: Op,
    path: &str,
    at: &str,
) -> Result<(), UpdateError> {
    let leaf = Node::Leaf(Leaf {
        op,
        path: path.to_string(),
    });
    match seg {
        Segment::Field(f) => {
            let key = FieldKey(f.clone());
            if o.children.contains_key(&key) {
                return Err(conflict(path, at));
            }
            o.children.insert(key, leaf);
            Ok(())
        }
        Segment::Positional => {
            if o.positional.is_some() {
                return Err(conflict(path, at));
            }
            o.positional = Some(Box::new(leaf));
            Ok(())
        }
        Segment::All | Segment::Filtered(_) => Err(conflict(path, at)),
    }
}

impl Tree {
    /// The paths the update writes to a stored document, as [`TargetPart`]s: every leaf but
    /// `$setOnInsert`'s (which writes only when an upsert inserts). Both ends of a `$rename`
    /// are leaves.
    pub(crate) fn targets(&self) -> Vec<Vec<TargetPart>> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        object_targets(&self.root, &mut prefix, &mut out);
        out
    }
}

/// Collects the target paths under an object level (`prefix` is the path to it). The depth is
/// that of the update's paths, which parsing bounds.
fn object_targets(o: &ObjectNode, prefix: &mut Vec<TargetPart>, out: &mut Vec<Vec<TargetPart>>) {
    for (key, node) in &o.children {
        prefix.push(TargetPart::Name(key.0.clone()));
        node_targets(node, prefix, out);
        prefix.pop();
    }
    if let Some(node) = &o.positional {
        prefix.push(TargetPart::Element);
        node_targets(node, prefix, out);
        prefix.pop();
    }
}

fn node_targets(node: &Node, prefix: &mut Vec<TargetPart>, out: &mut Vec<Vec<TargetPart>>) {
    match node {
        Node::Leaf(Leaf {
            op: Op::SetOnInsert(_),
            ..
        }) => {}
        Node::Leaf(_) => out.push(prefix.clone()),
        Node::Object(o) => object_targets(o, prefix, out),
        Node::Array(a) => {
            for child in a.children.values() {
                prefix.push(TargetPart::Element);
                node_targets(child, prefix, out);
                prefix.pop();
            }
        }
    }
}
