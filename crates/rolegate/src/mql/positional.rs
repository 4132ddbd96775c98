//! Stage: the positional match (the `$` of a find projection `"a.$": 1` and of an update path
//! `a.$.b`). Input: a query compiled by [`compile_query`](crate::mql::compile_query), read once
//! into a [`Positional`], then documents the query matched. Output: the index of the array
//! element the query matched, MongoDB's "elemMatchKey".
//!
//! MongoDB records, while it matches a query, the position in an array at which a condition
//! matched, and the positional `$` uses that number, whatever array it came from. Its rules, as
//! `jstests/core/query/project/positional_projection.js` and
//! `positional_projection_multiple_array_fields.js` (mongodb/mongo) state them:
//!
//! * A condition on a path (`{"a.b": 5}`, `{a: {$gt: 1}}`, `{a: {$elemMatch: ...}}`) records the
//!   index of the first element of the **first array along its path** through which it holds;
//!   a condition met by the array as a whole (`{b: [4, 5, 6]}`, `$size`) records nothing.
//! * Conditions joined by `$and` (and the operators of one operator document, and the values of
//!   `$all`) are evaluated in order and **the last one that records wins**:
//!   `{$and: [{a: 1}, {a: 2}, {a: 3}]}` on `a: [1, 2, 3]` gives 2, reversed it gives 0. So
//!   `{a: {$gt: 1, $lt: 3}}` on `[0, 5, 2]` gives the position of the first element below 3
//!   (0), not of an element meeting both: `$elemMatch` is the way to ask for one element.
//! * `$in` records the first element equal to any of its values; an `$or` whose branches are all
//!   equalities on one path is MongoDB's `$in` and does the same; any other `$or`, and `$nor`,
//!   `$not`, `$ne`, `$nin`, `$exists: false` record nothing.
//! * Because the position is not tied to a path, a condition on one array positions another
//!   (`{a: 2}` with `"b.$": 1` gives `b`'s second element); MongoDB's manual calls queries with
//!   conditions on several arrays undefined behaviour, and rolegate gives the last-wins answer.
//!
//! When nothing records, [`Positional::position`] answers `None`: a projection fails with
//! MongoDB's 51246 ("positional operator ... couldn't find a matching element"), an update with
//! "The positional operator did not find the match needed from the query" (`BadValue`).
//!
//! rolegate finds the element by evaluating each recording condition on each element of its
//! array alone: the element is copied into a document that holds only it, at the same path, so
//! the work is linear in the array's size (the document is never copied). Decision M24: a
//! condition whose path goes on into an array element that is itself an array, or through a
//! numeric component right after the first array (`{"a.0.b": 1}`), records nothing.

use bson::{Bson, Document};

use crate::expr::{CmpOp, Expr, Op, Operand, Predicate, Root};
use crate::mql::find_error::FindError;
use crate::query::memory::matches;
use crate::value::compare::truthy;

/// One condition that can record a position: its path, and the predicates (any of which) an
/// element must meet, each as a one-condition query on that path.
#[derive(Debug, Clone)]
struct Recorder {
    path: Vec<String>,
    /// Queries of the form `{path: predicate}`; the element records when one of them holds.
    tests: Vec<Expr>,
    /// The predicate needs an array at the end of the path (`$elemMatch`): the element is
    /// wrapped in a one-element array.
    needs_array: bool,
}

/// A query read for its positional match: its recording conditions, in evaluation order.
#[derive(Debug, Clone, Default)]
pub struct Positional {
    recorders: Vec<Recorder>,
}

impl Positional {
    /// Reads the conditions of `query` that record a position (see the module documentation).
    pub fn new(query: &Expr) -> Positional {
        let mut recorders = Vec::new();
        collect(query, &mut recorders);
        Positional { recorders }
    }

    /// True when no condition of the query can record a position (`{}`, `$or` of different
    /// paths, negations only): every positional `$` then fails on an array.
    pub fn records_nothing(&self) -> bool {
        self.recorders.is_empty()
    }

    /// The index MongoDB's positional `$` uses for `doc`, which the query matched: that of the
    /// last condition (in order) that records one; `None` when none does.
    pub fn position(&self, doc: &Document) -> Result<Option<usize>, FindError> {
        for recorder in self.recorders.iter().rev() {
            if let Some(i) = recorder.position(doc)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

/// [`Positional::new`] then [`Positional::position`], for one document.
pub fn positional_index(query: &Expr, doc: &Document) -> Result<Option<usize>, FindError> {
    Positional::new(query).position(doc)
}

impl Recorder {
    fn position(&self, doc: &Document) -> Result<Option<usize>, FindError> {
        // The first array along the path, through sub-documents.
        let mut cur = doc;
        let mut found = None;
        for (j, segment) in self.path.iter().enumerate() {
            match cur.get(segment) {
                Some(Bson::Document(sub)) => cur = sub,
                Some(Bson::Array(items)) => {
                    found = Some((j, items));
                    break;
                }
                _ => return Ok(None),
            }
        }
        let Some((j, items)) = found else {
            return Ok(None);
        };
        let rest = self.path.get(j + 1..).unwrap_or_default();
        if rest
            .first()
            .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        {
            return Ok(None);
        }
        let prefix = self.path.get(..=j).unwrap_or_default();
        for (i, element) in items.iter().enumerate() {
            crate::steps::charge_quietly(1);
            let value = match element {
                // Fields are not looked up through an array nested in the array.
                Bson::Array(_) if !rest.is_empty() => continue,
                // A nested array is matched as a value, as an element, not element-wise.
                Bson::Array(_) => Bson::Array(vec![element.clone()]),
                _ if self.needs_array && rest.is_empty() => Bson::Array(vec![element.clone()]),
                _ => element.clone(),
            };
            let alone = nest(prefix, value);
            for test in &self.tests {
                let holds = matches(test, &alone)
                    .map_err(|e| FindError::new("BadValue", format!("positional match: {e}")))?;
                if holds {
                    return Ok(Some(i));
                }
            }
        }
        Ok(None)
    }
}

/// `{p0: {p1: ... {pn: value}}}`.
fn nest(path: &[String], value: Bson) -> Document {
    let mut v = value;
    let mut out = Document::new();
    for (k, segment) in path.iter().enumerate().rev() {
        let mut d = Document::new();
        d.insert(segment.clone(), v);
        if k == 0 {
            out = d;
            break;
        }
        v = Bson::Document(d);
    }
    out
}

fn test(path: &[String], predicate: Predicate, subject: &crate::expr::Expansion) -> Expr {
    Expr::Test {
        subject: crate::expr::Expansion {
            root: subject.root,
            path: path.to_vec(),
            implicit: subject.implicit,
        },
        predicate,
    }
}

fn collect(expr: &Expr, out: &mut Vec<Recorder>) {
    match expr {
        Expr::All(children) => children.iter().for_each(|c| collect(c, out)),
        Expr::Any(children) if children.len() == 1 => {
            children.iter().for_each(|c| collect(c, out));
        }
        Expr::Any(children) => {
            if let Some(r) = or_as_in(children) {
                out.push(r);
            }
        }
        Expr::Test { subject, predicate } if subject.root == Root::Root => {
            collect_predicate(subject, predicate, out);
        }
        // Negations, booleans and expansions other than the document's fields record nothing.
        _ => {}
    }
}

/// An `$or` whose branches are all equalities on one path: MongoDB rewrites it into `$in`.
fn or_as_in(children: &[Expr]) -> Option<Recorder> {
    let mut path: Option<&crate::expr::Expansion> = None;
    let mut tests = Vec::new();
    for child in children {
        let Expr::Test { subject, predicate } = child else {
            return None;
        };
        if subject.root != Root::Root || path.is_some_and(|p| p.path != subject.path) {
            return None;
        }
        let equality = match predicate {
            Predicate::Matches(Operand::Literal(v)) => !matches!(v, Bson::Document(_)),
            Predicate::Ops(ops) => {
                matches!(ops.as_slice(), [Op::Cmp(CmpOp::Eq, Operand::Literal(v))] if !matches!(v, Bson::Document(_)))
            }
            _ => false,
        };
        if !equality {
            return None;
        }
        path = Some(subject);
        tests.push(test(&subject.path, predicate.clone(), subject));
    }
    let subject = path?;
    Some(Recorder {
        path: subject.path.clone(),
        tests,
        needs_array: false,
    })
}

fn collect_predicate(
    subject: &crate::expr::Expansion,
    predicate: &Predicate,
    out: &mut Vec<Recorder>,
) {
    let leaf = |predicate: Predicate, needs_array: bool| Recorder {
        path: subject.path.clone(),
        tests: vec![test(&subject.path, predicate, subject)],
        needs_array,
    };
    match predicate {
        Predicate::Matches(_) => out.push(leaf(predicate.clone(), false)),
        Predicate::Ops(ops) => {
            for op in ops {
                collect_op(subject, op, out, &leaf);
            }
        }
    }
}

fn collect_op(
    subject: &crate::expr::Expansion,
    op: &Op,
    out: &mut Vec<Recorder>,
    leaf: &dyn Fn(Predicate, bool) -> Recorder,
) {
    let one = |op: Op| Predicate::Ops(vec![op]);
    match op {
        // Negations and whole-array conditions record nothing.
        Op::Cmp(CmpOp::Ne, _) | Op::Nin(_) | Op::None(_) | Op::Not(_) | Op::Size(_) => {}
        Op::Exists(Operand::Literal(v)) if !truthy(v) => {}
        Op::All(predicates) => {
            for p in predicates {
                collect_predicate(subject, p, out);
            }
        }
        Op::Any(predicates) if predicates.len() == 1 => {
            for p in predicates {
                collect_predicate(subject, p, out);
            }
        }
        Op::Any(_) => {}
        // `$all` is an `$and` of equalities (or of `$elemMatch`es).
        Op::AllOf(Operand::Literal(Bson::Array(values))) => {
            for v in values {
                let predicate = match v {
                    Bson::Document(d) if d.keys().next().is_some_and(|k| k == "$elemMatch") => {
                        match crate::mql::compile_query(&bson::doc! {"x": v.clone()}) {
                            Ok(Expr::Test { predicate, .. }) => predicate,
                            Ok(Expr::All(mut v)) if v.len() == 1 => match v.pop() {
                                Some(Expr::Test { predicate, .. }) => predicate,
                                _ => continue,
                            },
                            _ => continue,
                        }
                    }
                    _ => one(Op::Cmp(CmpOp::Eq, Operand::Literal(v.clone()))),
                };
                let needs_array = is_elem_match(&predicate);
                out.push(leaf(predicate, needs_array));
            }
        }
        Op::ElemMatch(_) => out.push(leaf(one(op.clone()), true)),
        _ => out.push(leaf(one(op.clone()), false)),
    }
}

fn is_elem_match(p: &Predicate) -> bool {
    matches!(p, Predicate::Ops(ops) if matches!(ops.as_slice(), [Op::ElemMatch(_)]))
}
