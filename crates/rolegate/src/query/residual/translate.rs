//! Stage: rule expressions into MongoDB queries, for one request. Input: an expression
//! ([`Expr`]) and the request's bindings (no document). Output: its [`Approx`]: request-only
//! parts evaluated to constants, tests on document fields turned into query predicates.
//!
//! Rule tests on document fields follow MongoDB's matching (section 4 of `docs/semantics.md`;
//! the transcribed MongoDB cases run as rules too), so a test whose operands the rule wrote is
//! sent as written. What differs, and how it is sent:
//! - a plain match with an array operand is also membership (U20): `over` adds `$in`, `under`
//!   is MongoDB's equality alone;
//! - a substituted operand that is missing makes match, the comparisons (`$ne` included),
//!   `$in` and `$nin` false;
//! - a substituted operand (an expansion, a conversion) is a value, never syntax: sent under
//!   `$eq`, `$in` (plain scalars only), or a comparison; a test with one is false where the
//!   field is missing, so `$ne` and `$nin` add `$exists: true`; a substituted `null`, regex,
//!   document or array is bounded from above only (or not at all);
//! - `%%root` or `%%prevRoot` tested with `$exists` alone is a constant (reads bind both to
//!   the stored document, which exists);
//! - anything else — `%function`, `%%root` as an operand, a subject that is the whole
//!   document otherwise, `$not` over a substituted operand, an `$elemMatch` query that is not exact —
//!   is unknown (`over` true, `under` false).
//!
//! A rule that surely fails somewhere (a request-only part that fails, an operand of the wrong
//! type) is unknown as a whole: evaluation short-circuits left to right, so where it fails
//! depends on the other parts, and a failure denies. Every rule is also marked when it *may*
//! fail to evaluate on some document ([`Judged::may_fail`]): a `%function`, and every part
//! rolegate does not translate (a `$size` of a substituted operand fails on a non-number).
//! Its bounds hold only where it evaluates; where it fails the decision denies, so `over`
//! stays a superset of where it holds, but an `under` that goes through it (directly, or
//! through its negation) may include documents it fails on: callers drop those
//! ([`super::roles`]).

use std::cell::Cell;

use bson::{Bson, Document};

use super::approx::{Approx, Q};
use crate::expr::{
    CmpOp, Dependency, ElemMatch, Expansion, Expr, Op, Operand, Predicate, Root, TypeSpec,
};
use crate::value::Bindings;
use crate::value::eval::{eval_expr, eval_operand};

/// Translates the expressions of one request.
pub(crate) struct Translator<'b> {
    bindings: Bindings<'b>,
    /// The rule surely fails somewhere: unknown as a whole.
    failed: Cell<bool>,
    /// The rule may fail to evaluate on some document.
    unsure: Cell<bool>,
    /// Inside an `$elemMatch` query, where `%%root` is the element (and `%%prevRoot` is not).
    in_element: Cell<bool>,
}

/// The approximation of one whole rule, and whether it may fail to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judged {
    /// Its bounds where it evaluates (a document it fails on is never visible).
    pub(crate) approx: Approx,
    /// It may fail to evaluate on some document (so its `under`, and the `under` of its
    /// negation, may hold where it fails).
    pub(crate) may_fail: bool,
}

impl<'b> Translator<'b> {
    /// A translator whose request-only parts see `bindings` (which hold no document).
    pub(crate) fn new(bindings: Bindings<'b>) -> Translator<'b> {
        Translator {
            bindings,
            failed: Cell::new(false),
            unsure: Cell::new(false),
            in_element: Cell::new(false),
        }
    }

    /// The approximation of one whole rule (unknown when it surely fails somewhere), and
    /// whether it may fail.
    pub(crate) fn rule(&self, expr: &Expr) -> Judged {
        if expr.dependency() == Dependency::Host {
            return Judged {
                approx: Approx::unknown(),
                may_fail: true,
            };
        }
        self.failed.set(false);
        self.unsure.set(false);
        let approx = self.expr(expr);
        if self.failed.get() {
            Judged {
                approx: Approx::unknown(),
                may_fail: true,
            }
        } else {
            Judged {
                approx,
                may_fail: self.unsure.get(),
            }
        }
    }

    /// The value of a request-only rule, `None` when it fails.
    pub(crate) fn constant(&self, expr: &Expr) -> Option<bool> {
        (expr.dependency() <= Dependency::Request)
            .then(|| eval_expr(expr, &self.bindings).ok())
            .flatten()
    }

    fn fail(&self) -> Approx {
        self.failed.set(true);
        self.unsure.set(true);
        Approx::unknown()
    }

    /// A part rolegate does not translate: anything may hold, and it may fail to evaluate.
    fn unknown(&self) -> Approx {
        self.unsure.set(true);
        Approx::unknown()
    }

    fn expr(&self, e: &Expr) -> Approx {
        if e.dependency() <= Dependency::Request {
            return match eval_expr(e, &self.bindings) {
                Ok(b) => Approx::constant(b),
                Err(_) => self.fail(),
            };
        }
        match e {
            Expr::Bool(b) => Approx::constant(*b),
            Expr::All(v) => v
                .iter()
                .fold(Approx::constant(true), |acc, e| acc.and(self.expr(e))),
            Expr::Any(v) => v
                .iter()
                .fold(Approx::constant(false), |acc, e| acc.or(self.expr(e))),
            Expr::None(v) => v
                .iter()
                .fold(Approx::constant(false), |acc, e| acc.or(self.expr(e)))
                .not(),
            Expr::Not(e) => self.expr(e).not(),
            Expr::Test { subject, predicate } => match field_path(subject, self.in_element.get()) {
                Some(path) => self.predicate(&path, predicate),
                // On reads `%%root` and `%%prevRoot` are the stored document (in an
                // `$elemMatch` query `%%root` is the element): it exists, so the insert-only
                // pattern `{"%%prevRoot": {"%exists": false}}` is false.
                None if whole_document(subject) => match predicate {
                    Predicate::Ops(ops) => ops.iter().fold(Approx::constant(true), |acc, op| {
                        acc.and(match op {
                            Op::Exists(Operand::Literal(Bson::Boolean(b))) => Approx::constant(*b),
                            _ => self.fail(),
                        })
                    }),
                    Predicate::Matches(_) => self.fail(),
                },
                // A request subject tested against the document.
                None => self.fail(),
            },
        }
    }

    fn predicate(&self, path: &str, p: &Predicate) -> Approx {
        match p {
            Predicate::Matches(o) => self.matches(path, o),
            Predicate::Ops(ops) => ops
                .iter()
                .fold(Approx::constant(true), |acc, op| acc.and(self.op(path, op))),
        }
    }

    /// A substituted operand's value: `Err` when it fails (the rule fails), `Ok(None)` when
    /// missing.
    fn value(&self, o: &Operand) -> Result<Option<Bson>, ()> {
        let mut document = false;
        o.visit_expansions(&mut |e| document |= e.root.dependency() > Dependency::Request);
        if document {
            return Err(());
        }
        eval_operand(o, &self.bindings).map_err(|_| ())
    }

    fn matches(&self, path: &str, o: &Operand) -> Approx {
        if let Operand::Literal(v) = o {
            return match v {
                Bson::Array(items) => membership(path, v, items).unwrap_or_else(|| self.unknown()),
                Bson::Document(d) if d.keys().any(|k| k.starts_with('$')) => self.fail(),
                _ => Approx::exact(Q::field(path, v.clone())),
            };
        }
        let v = match self.value(o) {
            Err(()) => return self.fail(),
            Ok(None) => return Approx::constant(false),
            Ok(Some(v)) => v,
        };
        match &v {
            Bson::Array(items) => membership(path, &v, items).unwrap_or_else(|| self.unknown()),
            Bson::Undefined => self.unknown(),
            Bson::Null | Bson::RegularExpression(_) | Bson::Document(_) => {
                Approx::at_most(Q::op(path, "$eq", v))
            }
            _ => Approx::exact(Q::op(path, "$eq", v)),
        }
    }

    fn op(&self, path: &str, op: &Op) -> Approx {
        match op {
            Op::Cmp(cmp, o) => self.comparison(path, *cmp, o),
            Op::In(o) | Op::Nin(o) => {
                let name = if matches!(op, Op::In(_)) {
                    "$in"
                } else {
                    "$nin"
                };
                let literal = matches!(o, Operand::Literal(_));
                // A missing substituted operand makes `$in` and `$nin` false.
                let v = match self.value(o) {
                    Ok(Some(v)) => v,
                    Ok(None) => return Approx::constant(false),
                    Err(()) => return self.fail(),
                };
                let Bson::Array(items) = &v else {
                    return self.fail();
                };
                let ok = if literal {
                    items.iter().all(|i| !dollar_document(i))
                } else {
                    items.iter().all(plain_scalar)
                };
                if !ok {
                    return self.unknown();
                }
                let q = Q::op(path, name, v);
                if !literal && name == "$nin" {
                    Approx::exact(Q::op(path, "$exists", Bson::Boolean(true)).and(q))
                } else {
                    Approx::exact(q)
                }
            }
            Op::Exists(Operand::Literal(Bson::Boolean(b))) => {
                Approx::exact(Q::op(path, "$exists", Bson::Boolean(*b)))
            }
            Op::All(ps) => ps.iter().fold(Approx::constant(true), |acc, p| {
                acc.and(self.predicate(path, p))
            }),
            Op::Any(ps) => ps.iter().fold(Approx::constant(false), |acc, p| {
                acc.or(self.predicate(path, p))
            }),
            Op::None(ps) => ps
                .iter()
                .fold(Approx::constant(false), |acc, p| {
                    acc.or(self.predicate(path, p))
                })
                .not(),
            Op::Not(p) => {
                let mut substituted = false;
                p.visit_operands(&mut |o| substituted |= !matches!(o, Operand::Literal(_)));
                if substituted {
                    self.unknown()
                } else {
                    self.predicate(path, p).not()
                }
            }
            Op::ElemMatch(em) => match em.as_ref() {
                ElemMatch::Ops(ops) => match operator_document(ops) {
                    Some(d) => Approx::exact(Q::op(path, "$elemMatch", Bson::Document(d))),
                    None => self.unknown(),
                },
                ElemMatch::Query(e) => match self.element_query(e) {
                    Approx {
                        over: Q::Query(a),
                        under: Q::Query(b),
                    } if a == b => Approx::exact(Q::op(path, "$elemMatch", Bson::Document(a))),
                    _ => self.unknown(),
                },
            },
            other => match operator_document(std::slice::from_ref(other)) {
                Some(d) => Approx::exact(Q::field(path, Bson::Document(d))),
                None => self.unknown(),
            },
        }
    }

    /// An `$elemMatch` query, its bare fields read from the element.
    fn element_query(&self, e: &Expr) -> Approx {
        let outer = self.in_element.replace(true);
        let approx = self.expr(e);
        self.in_element.set(outer);
        approx
    }

    fn comparison(&self, path: &str, cmp: CmpOp, o: &Operand) -> Approx {
        let name = cmp_name(cmp);
        if let Operand::Literal(v) = o {
            return match v {
                Bson::Undefined => self.fail(),
                Bson::RegularExpression(_) if cmp != CmpOp::Eq => self.fail(),
                _ => Approx::exact(Q::op(path, name, v.clone())),
            };
        }
        // A missing substituted operand makes every comparison false, `$ne` included.
        let v = match self.value(o) {
            Ok(Some(v)) => v,
            Ok(None) => return Approx::constant(false),
            Err(()) => return self.fail(),
        };
        if !plain_scalar(&v) {
            return self.unknown();
        }
        let q = Q::op(path, name, v);
        if cmp == CmpOp::Ne {
            Approx::exact(Q::op(path, "$exists", Bson::Boolean(true)).and(q))
        } else {
            Approx::exact(q)
        }
    }
}

/// U20: a plain match with an array operand is MongoDB's equality or, for a scalar, membership
/// (`None`: an item that is not a plain scalar).
fn membership(path: &str, v: &Bson, items: &[Bson]) -> Option<Approx> {
    let eq = Q::op(path, "$eq", v.clone());
    items.iter().all(plain_scalar).then(|| Approx {
        over: eq.clone().or(Q::op(path, "$in", v.clone())),
        under: eq,
    })
}

/// The dotted field path a subject names in the document (in an `$elemMatch` query: in the
/// element), when it names a field. On reads `%%prevRoot` is the document too, but not inside
/// an `$elemMatch` query.
fn field_path(subject: &Expansion, in_element: bool) -> Option<String> {
    let root = match subject.root {
        Root::Root => true,
        Root::PrevRoot => !in_element,
        _ => false,
    };
    if !root || subject.path.is_empty() {
        return None;
    }
    if subject
        .path
        .iter()
        .any(|s| s.is_empty() || s.starts_with('$') || s.contains('.'))
    {
        return None;
    }
    Some(subject.path.join("."))
}

/// Whether `subject` is the whole document (`%%root` or `%%prevRoot`, which reads bind to the
/// stored document).
fn whole_document(subject: &Expansion) -> bool {
    matches!(subject.root, Root::Root | Root::PrevRoot) && subject.path.is_empty()
}

/// A value MongoDB reads as itself in every operator position: not null, undefined, a regex,
/// a document or an array.
fn plain_scalar(v: &Bson) -> bool {
    !matches!(
        v,
        Bson::Null
            | Bson::Undefined
            | Bson::RegularExpression(_)
            | Bson::Document(_)
            | Bson::Array(_)
            | Bson::JavaScriptCode(_)
            | Bson::JavaScriptCodeWithScope(_)
    )
}

fn dollar_document(v: &Bson) -> bool {
    matches!(v, Bson::Document(d) if d.keys().any(|k| k.starts_with('$')))
}

fn cmp_name(cmp: CmpOp) -> &'static str {
    match cmp {
        CmpOp::Eq => "$eq",
        CmpOp::Ne => "$ne",
        CmpOp::Gt => "$gt",
        CmpOp::Gte => "$gte",
        CmpOp::Lt => "$lt",
        CmpOp::Lte => "$lte",
    }
}

/// The operator document of `ops` whose operands the rule wrote, when each has one form and
/// no operator repeats (`{"$gt": 1, "$lt": 5}`).
fn operator_document(ops: &[Op]) -> Option<Document> {
    let mut d = Document::new();
    for op in ops {
        let (name, value): (&str, Bson) = match op {
            Op::Cmp(cmp, Operand::Literal(v))
                if !matches!(v, Bson::Undefined)
                    && (*cmp == CmpOp::Eq || !matches!(v, Bson::RegularExpression(_))) =>
            {
                (cmp_name(*cmp), v.clone())
            }
            Op::In(Operand::Literal(v @ Bson::Array(items)))
                if !items.iter().any(dollar_document) =>
            {
                ("$in", v.clone())
            }
            Op::Nin(Operand::Literal(v @ Bson::Array(items)))
                if !items.iter().any(dollar_document) =>
            {
                ("$nin", v.clone())
            }
            Op::Exists(Operand::Literal(Bson::Boolean(b))) => ("$exists", Bson::Boolean(*b)),
            Op::AllOf(Operand::Literal(v @ Bson::Array(items)))
                if !items.iter().any(dollar_document) =>
            {
                ("$all", v.clone())
            }
            Op::Size(Operand::Literal(v @ (Bson::Int32(_) | Bson::Int64(_)))) => {
                ("$size", v.clone())
            }
            Op::Type(specs) => {
                let codes: Vec<Bson> = specs
                    .iter()
                    .map(|s| match s {
                        TypeSpec::Number => Bson::String("number".into()),
                        TypeSpec::Exact(bson::spec::ElementType::MinKey) => Bson::Int32(-1),
                        TypeSpec::Exact(t) => Bson::Int32(i32::from(*t as u8)),
                    })
                    .collect();
                ("$type", Bson::Array(codes))
            }
            Op::Regex(spec) => {
                if d.contains_key("$regex") {
                    return None;
                }
                d.insert("$regex", spec.pattern.clone());
                if !spec.options.is_empty() {
                    d.insert("$options", spec.options.clone());
                }
                continue;
            }
            Op::Mod { divisor, remainder } => (
                "$mod",
                Bson::Array(vec![Bson::Int64(*divisor), Bson::Int64(*remainder)]),
            ),
            Op::Bits { test, positions } => (
                test.name(),
                Bson::Array(
                    positions
                        .iter()
                        .map(|p| Bson::Int64(i64::from(*p)))
                        .collect(),
                ),
            ),
            _ => return None,
        };
        if d.contains_key(name) {
            return None;
        }
        d.insert(name, value);
    }
    (!d.is_empty()).then_some(d)
}
