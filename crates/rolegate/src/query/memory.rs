//! Stage: in-memory query execution (conformance `filters` cases with `results`, tests, hosts
//! without a database, and the client query of every planned read). Input: a [`QueryPlan`] (or a
//! parsed query [`Expr`] and a projection) and documents. Output: the documents the query selects,
//! projected — what MongoDB's `find` would return. [`run`] plays the database's part of a plan only
//! (its store query and store projection); the rules, the client query and the output projection
//! are applied afterwards by [`PreparedRequest::read_for`](crate::PreparedRequest::read_for)
//! ([`PreparedRequest::find`](crate::PreparedRequest::find) does both).
//!
//! Queries are evaluated by the reference evaluator with [`Semantics::Query`] (plain MongoDB
//! matching: no U20 widening), `%%root` bound to the document. Projections follow MongoDB's
//! `find`:
//!
//! * a projection value of `0`/`false`/`null` excludes, any other value includes; `_id` does
//!   not decide the kind; a projection with an included path (other than `_id`) is inclusive
//!   and ignores its excluded paths (so an invalid mixed projection never shows more than the
//!   inclusive part); otherwise it is exclusive; `{}` returns documents unchanged;
//! * **inclusive**: keeps the listed paths (dotted paths reach into sub-documents, and into the
//!   document elements of arrays; other array elements are dropped; a sub-document without the
//!   sub-path stays as `{}`), plus `_id` unless `"_id": 0`; fields keep the document's order;
//! * **exclusive**: removes the listed paths (through sub-documents and the document elements of
//!   arrays), and `_id` when `"_id": 0`.
//!
//! Arrays nested in arrays deeper than [`MAX_DEPTH`] levels under a projected path are dropped
//! from the output (fail closed).
//!
//! Projection operators (`$slice`, `$elemMatch`, `$meta`, positional `$`) are not supported;
//! their keys are treated as plain included paths.
//!
//! Each match of a document ([`matches_with`], so every document of [`run`]) has the default
//! step budget ([`Limits::max_eval_steps`], [`crate::steps`]; capped by an enclosing
//! decision's): a query whose work on one document runs away fails with
//! [`EvalError::Limit`] instead (finding 11 of issue 9). Documents, the query and the
//! projection nested deeper than the default
//! [`max_document_depth`](Limits::max_document_depth) are refused the same way (finding 10).

use std::collections::HashMap;
use std::sync::OnceLock;

use bson::{Bson, Document};

use crate::context::RequestContext;
use crate::error::{Diagnostics, LoadError, Place};
use crate::expr::{Expr, parse_query};
use crate::limits::Limits;
use crate::query::plan::QueryPlan;
use crate::steps::StepBudget;
use crate::value::compare::{MAX_DEPTH, truthy};
use crate::value::eval::{Bindings, EvalError, Semantics, eval_expr_with};

/// Running a plan in memory failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// The query is not a valid MongoDB query.
    #[error("invalid query: {0}")]
    Query(#[from] LoadError),
    /// Evaluating the query on a document failed.
    #[error("query evaluation failed: {0}")]
    Eval(#[from] EvalError),
}

fn empty_request() -> &'static RequestContext {
    static EMPTY: OnceLock<RequestContext> = OnceLock::new();
    EMPTY.get_or_init(RequestContext::default)
}

/// Parses a MongoDB query document (`{"status": "todo", "n": {"$gt": 1}}`) into an
/// expression for [`matches()`]: bare keys are document fields, strings are literals (never
/// expansions), and only MongoDB's `$` operators are read, `$and`/`$or`/`$nor` included. A key
/// or operator it cannot read is an error with its JSON path.
pub fn compile_query(query: &Document) -> Result<Expr, LoadError> {
    let mut diagnostics = Diagnostics::default();
    let expr = parse_query(query, &Place::default(), &mut diagnostics);
    if diagnostics.has_errors() {
        Err(LoadError { diagnostics })
    } else {
        Ok(expr)
    }
}

/// True when the parsed MongoDB `query` selects `doc`.
pub fn matches(query: &Expr, doc: &Document) -> Result<bool, EvalError> {
    matches_with(query, doc, empty_request())
}

/// [`matches()`] with a request context (for queries that still hold host functions).
pub fn matches_with(
    query: &Expr,
    doc: &Document,
    request: &RequestContext,
) -> Result<bool, EvalError> {
    // One match is one decision: it has the default step budget (capped by the budget of an
    // enclosing decision, if any).
    let _steps = StepBudget::start(Limits::DEFAULT.max_eval_steps);
    // The depth guard (finding 10 of issue 9), as at the engine's doors.
    Limits::DEFAULT.check_document(doc)?;
    eval_expr_with(query, &Bindings::document(request, doc), Semantics::Query)
}

/// Plays the database's part of a plan over `docs`: the documents its store query selects, in
/// order, with its store projection applied. What the client receives comes from
/// [`PreparedRequest::read_for`](crate::PreparedRequest::read_for) on each of them.
pub fn run(plan: &QueryPlan, docs: &[Document]) -> Result<Vec<Document>, RunError> {
    for (what, doc) in [
        ("the query", &plan.store_query),
        ("the projection", &plan.store_projection),
    ] {
        Limits::DEFAULT
            .check_document_as(what, doc)
            .map_err(|e| RunError::Eval(e.into()))?;
    }
    let query = compile_query(&plan.store_query)?;
    let mut out = Vec::new();
    for doc in docs {
        if matches(&query, doc)? {
            out.push(project(&plan.store_projection, doc));
        }
    }
    Ok(out)
}

/// A projection as a tree of paths. Children are found by hashing their key: a lookup per key
/// of each document, and an insertion per segment of each path, take constant time, so
/// applying an 80,000-key client projection is linear (a linear search per key made it
/// quadratic, 19 s per document; red team R5).
#[derive(Debug, Default)]
struct Tree(HashMap<String, Node>);

#[derive(Debug)]
enum Node {
    /// The whole value at this key.
    Leaf,
    /// Only the given sub-paths.
    Branch(Tree),
}

impl Tree {
    fn get(&self, key: &str) -> Option<&Node> {
        self.0.get(key)
    }

    fn insert(&mut self, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        match (self.0.get_mut(*first), rest.is_empty()) {
            (None, true) => {
                self.0.insert((*first).to_string(), Node::Leaf);
            }
            (None, false) => {
                let mut sub = Tree::default();
                sub.insert(rest);
                self.0.insert((*first).to_string(), Node::Branch(sub));
            }
            // An ancestor already covers the whole value.
            (Some(Node::Leaf), _) => {}
            (Some(node @ Node::Branch(_)), true) => *node = Node::Leaf,
            (Some(Node::Branch(sub)), false) => sub.insert(rest),
        }
    }

    /// The tree of `paths`. Only the first [`MAX_DEPTH`] + 1 segments of a path are kept:
    /// projecting never looks deeper (values below [`MAX_DEPTH`] are dropped whatever the
    /// node), so the answer is the same, and the tree — built and dropped recursively — stays
    /// as shallow as that whatever the client sends (a 400 KB key of 200,000 segments used to
    /// overflow the stack; red team R3).
    fn of(paths: &[&String]) -> Tree {
        let mut t = Tree::default();
        for p in paths {
            let segments: Vec<&str> = p.split('.').take(MAX_DEPTH + 1).collect();
            t.insert(&segments);
        }
        t
    }
}

/// Applies a MongoDB `find` projection to one document, as MongoDB's `find` would:
///
/// * a projection value of `0`/`false`/`null` excludes, any other value includes; `_id` does
///   not decide the kind; a projection with an included path (other than `_id`) is inclusive
///   and ignores its excluded paths (so an invalid mixed projection never shows more than the
///   inclusive part); otherwise it is exclusive; `{}` returns the document unchanged;
/// * **inclusive**: keeps the listed paths (dotted paths reach into sub-documents, and into the
///   document elements of arrays; other array elements are dropped; a sub-document without the
///   sub-path stays as `{}`), plus `_id` unless `"_id": 0`; fields keep the document's order;
/// * **exclusive**: removes the listed paths (through sub-documents and the document elements of
///   arrays), and `_id` when `"_id": 0`.
///
/// Arrays nested in arrays deeper than 200 levels under a projected path are dropped from the
/// output (fail closed). Projection operators (`$slice`, `$elemMatch`, `$meta`, positional `$`)
/// are not supported: their keys are treated as plain included paths.
pub fn project(projection: &Document, doc: &Document) -> Document {
    let mut included = Vec::new();
    let mut excluded = Vec::new();
    let mut id: Option<bool> = None;
    for (k, v) in projection {
        if k == "_id" {
            id = Some(truthy(v));
        } else if truthy(v) {
            included.push(k);
        } else {
            excluded.push(k);
        }
    }
    let keep_id = id != Some(false);
    if !included.is_empty() || (id == Some(true) && excluded.is_empty()) {
        let tree = Tree::of(&included);
        let mut out = Document::new();
        for (k, v) in doc {
            if k == "_id" {
                if keep_id {
                    out.insert(k.clone(), v.clone());
                }
            } else if let Some(node) = tree.get(k)
                && let Some(v) = include_value(v, node, 1)
            {
                out.insert(k.clone(), v);
            }
        }
        out
    } else {
        let tree = Tree::of(&excluded);
        let mut out = exclude_doc(doc, &tree, 0);
        if !keep_id {
            out.remove("_id");
        }
        out
    }
}

fn include_doc(doc: &Document, tree: &Tree, depth: usize) -> Document {
    let mut out = Document::new();
    for (k, v) in doc {
        if let Some(node) = tree.get(k)
            && let Some(v) = include_value(v, node, depth + 1)
        {
            out.insert(k.clone(), v);
        }
    }
    out
}

/// The part of `v` that `node` includes; `None` drops it. Values nested deeper than
/// [`MAX_DEPTH`] are dropped (fail closed: a projection never shows more).
fn include_value(v: &Bson, node: &Node, depth: usize) -> Option<Bson> {
    if depth > MAX_DEPTH {
        return None;
    }
    match node {
        Node::Leaf => Some(v.clone()),
        Node::Branch(sub) => match v {
            Bson::Document(d) => Some(Bson::Document(include_doc(d, sub, depth))),
            Bson::Array(items) => Some(Bson::Array(
                items
                    .iter()
                    .filter_map(|i| match i {
                        Bson::Document(_) | Bson::Array(_) => include_value(i, node, depth + 1),
                        _ => None,
                    })
                    .collect(),
            )),
            _ => None,
        },
    }
}

fn exclude_doc(doc: &Document, tree: &Tree, depth: usize) -> Document {
    let mut out = Document::new();
    for (k, v) in doc {
        match tree.get(k) {
            None => {
                out.insert(k.clone(), v.clone());
            }
            Some(Node::Leaf) => {}
            Some(node @ Node::Branch(_)) => {
                if let Some(v) = exclude_value(v, node, depth + 1) {
                    out.insert(k.clone(), v);
                }
            }
        }
    }
    out
}

/// `v` without what `node` excludes; `None` drops it. Values nested deeper than [`MAX_DEPTH`]
/// are dropped (fail closed: an excluded field could hide in them).
fn exclude_value(v: &Bson, node: &Node, depth: usize) -> Option<Bson> {
    if depth > MAX_DEPTH {
        return None;
    }
    match (v, node) {
        (Bson::Document(d), Node::Branch(sub)) => Some(Bson::Document(exclude_doc(d, sub, depth))),
        (Bson::Array(items), Node::Branch(_)) => Some(Bson::Array(
            items
                .iter()
                .filter_map(|i| exclude_value(i, node, depth + 1))
                .collect(),
        )),
        _ => Some(v.clone()),
    }
}
