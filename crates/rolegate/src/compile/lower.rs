//! Stage: lowering (analysis + folding). Input: one rule [`Expr`] of the validated rule set.
//! Output: nodes in the program's [`Nodes`] arena.
//!
//! Passes, in the order they run on each rule:
//!
//! 1. **depth** ([`eval_depth`]): the deepest level the reference evaluator would reach. A rule
//!    that could pass [`MAX_EVAL_DEPTH`] is not lowered at all but kept whole as a
//!    [`Node::Fallback`], so the reference's limit errors stay exact (everything lowered below
//!    evaluates request-only parts from depth 0, which is only equal when no limit is near).
//! 2. **classify** ([`Facts`]): what a sub-expression reads — the document (`%%root`, bare
//!    fields, `%%prevRoot`), the field (`%%this`, `%%prev`), the request (`%%user`,
//!    `%%request`, `%%values`, `%%environment`, `%%args`, `%%partition`) or a host `%function`
//!    — and whether evaluating it can fail ([`expr_fallible`]). `$elemMatch` query bodies count
//!    as document-dependent (their bare fields are element-relative; conservative).
//! 3. **fold + lower**: constant sub-expressions are evaluated now ([`Node::Const`] /
//!    [`Node::Error`]); maximal request-only sub-expressions become one [`Node::Slot`] each
//!    (evaluated once per request); the rest becomes native [`Node::Test`]s combined with the
//!    folding constructors of [`Nodes`], or a [`Node::Fallback`] for shapes the native
//!    evaluator does not cover.

use bson::Bson;

use super::ir::{
    COp, CPred, ConstVal, DocPath, KeyId, Node, NodeId, NodeInfo, Nodes, Opnd, Slot, SlotKind,
    Subject,
};
use crate::context::RequestContext;
use crate::expr::{ElemMatch, Expansion, Expr, Op, Operand, Predicate, Root};
use crate::value::eval::MAX_EVAL_DEPTH;
use crate::value::{Bindings, eval_expr};

/// What a sub-expression reads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Facts {
    /// `%%root`, bare fields, `%%prevRoot`, `%%this`, `%%prev` (or an `$elemMatch` query).
    pub doc: bool,
    /// `%%this` / `%%prev` (or an `$elemMatch` query).
    pub field: bool,
    /// A request root (`%%user`, ...).
    pub request: bool,
    /// A `%function` call.
    pub host: bool,
}

impl Facts {
    fn add(&mut self, o: Facts) {
        self.doc |= o.doc;
        self.field |= o.field;
        self.request |= o.request;
        self.host |= o.host;
    }

    fn root(&mut self, root: Root) {
        match root {
            Root::Root | Root::PrevRoot => self.doc = true,
            Root::This | Root::Prev => {
                self.doc = true;
                self.field = true;
            }
            Root::True | Root::False => {}
            Root::User
            | Root::Request
            | Root::Values
            | Root::Environment
            | Root::Args
            | Root::Partition => self.request = true,
        }
    }
}

pub(crate) fn expr_facts(e: &Expr) -> Facts {
    let mut f = Facts::default();
    match e {
        Expr::Bool(_) => {}
        Expr::All(es) | Expr::Any(es) | Expr::None(es) => {
            es.iter().for_each(|e| f.add(expr_facts(e)))
        }
        Expr::Not(e) => f.add(expr_facts(e)),
        Expr::Test { subject, predicate } => {
            f.root(subject.root);
            f.add(pred_facts(predicate));
        }
    }
    f
}

fn pred_facts(p: &Predicate) -> Facts {
    match p {
        Predicate::Matches(o) => operand_facts(o),
        Predicate::Ops(ops) => {
            let mut f = Facts::default();
            ops.iter().for_each(|op| f.add(op_facts(op)));
            f
        }
    }
}

fn op_facts(op: &Op) -> Facts {
    let mut f = Facts::default();
    match op {
        Op::Cmp(_, o) | Op::In(o) | Op::Nin(o) | Op::Exists(o) | Op::AllOf(o) | Op::Size(o) => {
            f.add(operand_facts(o))
        }
        Op::All(ps) | Op::Any(ps) | Op::None(ps) => ps.iter().for_each(|p| f.add(pred_facts(p))),
        Op::Not(p) => f.add(pred_facts(p)),
        Op::ElemMatch(em) => match em.as_ref() {
            ElemMatch::Ops(ops) => ops.iter().for_each(|op| f.add(op_facts(op))),
            ElemMatch::Query(e) => {
                // Bare fields in the body are element-relative: treat the body as dependent on
                // everything (it always falls back).
                f.add(expr_facts(e));
                f.doc = true;
                f.field = true;
            }
        },
        Op::Type(_) | Op::Regex(_) | Op::Mod { .. } | Op::Bits { .. } => {}
    }
    f
}

pub(crate) fn operand_facts(o: &Operand) -> Facts {
    let mut f = Facts::default();
    match o {
        Operand::Literal(_) => {}
        Operand::Expansion(e) => f.root(e.root),
        Operand::Array(items) => items.iter().for_each(|i| f.add(operand_facts(i))),
        Operand::Document(members) => members.iter().for_each(|(_, i)| f.add(operand_facts(i))),
        Operand::Function { arguments, .. } => {
            f.host = true;
            arguments.iter().for_each(|a| f.add(operand_facts(a)));
        }
        Operand::StringToOid(i)
        | Operand::OidToString(i)
        | Operand::StringToUuid(i)
        | Operand::UuidToString(i) => f.add(operand_facts(i)),
    }
    f
}

/// Whether evaluating `e` may return an error (conservative: `true` when unsure).
pub(crate) fn expr_fallible(e: &Expr) -> bool {
    match e {
        Expr::Bool(_) => false,
        Expr::All(es) | Expr::Any(es) | Expr::None(es) => es.iter().any(expr_fallible),
        Expr::Not(e) => expr_fallible(e),
        Expr::Test { predicate, .. } => pred_fallible(predicate),
    }
}

fn pred_fallible(p: &Predicate) -> bool {
    match p {
        Predicate::Matches(o) => value_fallible(o),
        Predicate::Ops(ops) => ops.iter().any(op_fallible),
    }
}

fn op_fallible(op: &Op) -> bool {
    match op {
        Op::Cmp(_, o) => value_fallible(o),
        Op::Exists(o) => !matches!(o, Operand::Literal(_)),
        Op::In(o) | Op::Nin(o) | Op::AllOf(o) => match o {
            Operand::Literal(Bson::Array(items)) => items.iter().any(literal_fallible),
            _ => true,
        },
        Op::Size(o) => !matches!(
            o,
            Operand::Literal(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))
        ),
        Op::All(ps) | Op::Any(ps) | Op::None(ps) => ps.iter().any(pred_fallible),
        Op::Not(p) => pred_fallible(p),
        Op::ElemMatch(em) => match em.as_ref() {
            ElemMatch::Ops(ops) => ops.iter().any(op_fallible),
            ElemMatch::Query(e) => expr_fallible(e),
        },
        Op::Type(_) | Op::Regex(_) | Op::Bits { .. } => false,
        Op::Mod { divisor, .. } => *divisor == 0,
    }
}

/// A value operand compared with the subject: only a literal is known not to fail.
fn value_fallible(o: &Operand) -> bool {
    match o {
        Operand::Literal(v) => literal_fallible(v),
        _ => true,
    }
}

/// A literal fails when it is a regex that does not compile, or nests close to the comparison
/// depth limit.
fn literal_fallible(v: &Bson) -> bool {
    fn deep(v: &Bson, depth: usize) -> bool {
        if depth >= 100 {
            return true;
        }
        match v {
            Bson::Document(d) => d.values().any(|v| deep(v, depth + 1)),
            Bson::Array(items) => items.iter().any(|v| deep(v, depth + 1)),
            _ => false,
        }
    }
    match v {
        Bson::RegularExpression(re) => {
            crate::value::compare::compile_regex(&re.pattern, &re.options).is_err()
        }
        _ => deep(v, 0),
    }
}

/// One item of the explicit stack of [`eval_depth`].
enum Item<'a> {
    Expr(&'a Expr),
    Pred(&'a Predicate),
    Op(&'a Op),
    Operand(&'a Operand),
}

/// The deepest level [`crate::value::eval`] passes to its depth check while evaluating `e`
/// (mirrors its increments; iterative, so any input depth is safe). Stops counting past `cap`.
pub(crate) fn eval_depth(e: &Expr, cap: usize) -> usize {
    let mut max = 0;
    let mut stack: Vec<(Item<'_>, usize)> = vec![(Item::Expr(e), 0)];
    while let Some((item, d)) = stack.pop() {
        max = max.max(d);
        if max > cap {
            return max;
        }
        match item {
            Item::Expr(e) => match e {
                Expr::Bool(_) => {}
                Expr::All(es) | Expr::Any(es) | Expr::None(es) => {
                    stack.extend(es.iter().map(|e| (Item::Expr(e), d + 1)))
                }
                Expr::Not(e) => stack.push((Item::Expr(e), d + 1)),
                Expr::Test { predicate, .. } => stack.push((Item::Pred(predicate), d + 1)),
            },
            Item::Pred(p) => match p {
                Predicate::Matches(o) => stack.push((Item::Operand(o), d)),
                Predicate::Ops(ops) => stack.extend(ops.iter().map(|o| (Item::Op(o), d + 1))),
            },
            Item::Op(op) => match op {
                Op::Cmp(_, o)
                | Op::In(o)
                | Op::Nin(o)
                | Op::Exists(o)
                | Op::AllOf(o)
                | Op::Size(o) => stack.push((Item::Operand(o), d)),
                Op::All(ps) | Op::Any(ps) | Op::None(ps) => {
                    stack.extend(ps.iter().map(|p| (Item::Pred(p), d + 1)))
                }
                Op::Not(p) => stack.push((Item::Pred(p), d + 1)),
                Op::ElemMatch(em) => match em.as_ref() {
                    ElemMatch::Query(e) => stack.push((Item::Expr(e), d + 2)),
                    ElemMatch::Ops(ops) => stack.extend(ops.iter().map(|o| (Item::Op(o), d + 2))),
                },
                Op::Type(_) | Op::Regex(_) | Op::Mod { .. } | Op::Bits { .. } => {}
            },
            Item::Operand(o) => match o {
                Operand::Literal(_) | Operand::Expansion(_) => {}
                Operand::Array(items) => {
                    stack.extend(items.iter().map(|i| (Item::Operand(i), d + 1)))
                }
                Operand::Document(members) => {
                    stack.extend(members.iter().map(|(_, i)| (Item::Operand(i), d + 1)))
                }
                Operand::Function { arguments, .. } => {
                    stack.extend(arguments.iter().map(|i| (Item::Operand(i), d + 1)))
                }
                Operand::StringToOid(i)
                | Operand::OidToString(i)
                | Operand::StringToUuid(i)
                | Operand::UuidToString(i) => stack.push((Item::Operand(i), d + 1)),
            },
        }
    }
    max
}

/// The key and operand of a test that can be a [`Node::FieldEq`]: a top-level `%%root` field
/// matched (or `$eq`) against a literal or request operand.
fn field_eq(test: &super::ir::Test) -> Option<(KeyId, Opnd)> {
    let Subject::Doc {
        prev: false,
        path: DocPath {
            key: Some(key),
            rest,
        },
    } = &test.subject
    else {
        return None;
    };
    if !rest.is_empty() {
        return None;
    }
    let operand = match &test.pred {
        CPred::Matches(o) => o,
        CPred::Ops(ops) => match ops.as_ref() {
            [COp::Cmp(crate::expr::CmpOp::Eq, o)] => o,
            _ => return None,
        },
    };
    match operand {
        Opnd::Const(_) | Opnd::Slot(_) => Some((*key, operand.clone())),
        Opnd::Path(_) => None,
    }
}

/// A request with nothing in it, for folding constants (built once).
/// True when a segment of a document path could index an array (digits only): such tests are
/// evaluated by the reference evaluator, whose query paths treat the segment as both an index
/// and a field name.
pub(crate) fn has_numeric_segment(path: &[String]) -> bool {
    path.iter()
        .any(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

fn empty_context() -> &'static RequestContext {
    static EMPTY: std::sync::OnceLock<RequestContext> = std::sync::OnceLock::new();
    EMPTY.get_or_init(RequestContext::default)
}

/// Interns the first segments of document paths.
pub(crate) trait KeyInterner {
    fn intern(&mut self, key: &str) -> KeyId;
}

/// Lowers expressions into `nodes`.
pub(crate) struct Lowerer<'n, K> {
    pub nodes: &'n mut Nodes,
    pub keys: &'n mut K,
}

impl<K: KeyInterner> Lowerer<'_, K> {
    /// Lowers a whole rule expression (the depth pass first).
    pub fn rule(&mut self, e: &Expr) -> NodeId {
        if eval_depth(e, MAX_EVAL_DEPTH) > MAX_EVAL_DEPTH {
            return self.fallback(e);
        }
        self.expr(e)
    }

    fn fallback(&mut self, e: &Expr) -> NodeId {
        let f = expr_facts(e);
        self.nodes.push(
            Node::Fallback(Box::new(e.clone())),
            NodeInfo {
                fallible: true,
                field: f.field,
                doc: true,
            },
        )
    }

    fn expr(&mut self, e: &Expr) -> NodeId {
        match e {
            // PERF: the commonest rules (`true`, `false`, `{}`) need no analysis.
            Expr::Bool(b) => return self.nodes.constant(*b),
            Expr::All(es) if es.is_empty() => return self.nodes.constant(true),
            _ => {}
        }
        let facts = expr_facts(e);
        if !facts.doc {
            if !facts.request && !facts.host {
                // Constant: fold now (the reference with an empty request gives the value).
                let empty = empty_context();
                return match eval_expr(e, &Bindings::request_only(empty)) {
                    Ok(b) => self.nodes.constant(b),
                    Err(err) => self.nodes.error(err),
                };
            }
            let slot = self.nodes.add_slot(Slot {
                kind: SlotKind::Bool(e.clone()),
                host: facts.host,
            });
            return self.nodes.push(
                Node::Slot(slot),
                NodeInfo {
                    fallible: facts.host || expr_fallible(e),
                    field: false,
                    doc: false,
                },
            );
        }
        match e {
            Expr::Bool(b) => self.nodes.constant(*b),
            Expr::All(es) => {
                let ids = es.iter().map(|e| self.expr(e)).collect();
                self.nodes.all(ids)
            }
            Expr::Any(es) => {
                let ids = es.iter().map(|e| self.expr(e)).collect();
                self.nodes.any(ids)
            }
            Expr::None(es) => {
                let ids = es.iter().map(|e| self.expr(e)).collect();
                let any = self.nodes.any(ids);
                self.nodes.not(any)
            }
            Expr::Not(inner) => {
                let id = self.expr(inner);
                self.nodes.not(id)
            }
            Expr::Test { subject, .. }
                if matches!(subject.root, Root::Root | Root::PrevRoot)
                    && has_numeric_segment(&subject.path) =>
            {
                // MongoDB's query paths make a numeric segment both an array index and a field
                // name (`value/path.rs` `resolve_query_path`); the native walk indexes only.
                self.fallback(e)
            }
            Expr::Test { subject, predicate } => {
                let lowered = self.pred(predicate);
                match lowered {
                    Some(pred) => {
                        let subject = self.subject(subject);
                        let info = NodeInfo {
                            fallible: pred_fallible(predicate) || facts.host,
                            field: facts.field,
                            doc: true,
                        };
                        let test = super::ir::Test { subject, pred };
                        let node = match field_eq(&test) {
                            Some((key, operand)) => {
                                Node::FieldEq(Box::new(super::ir::FieldEq { key, operand, test }))
                            }
                            None => Node::Test(Box::new(test)),
                        };
                        self.nodes.push(node, info)
                    }
                    None => self.fallback(e),
                }
            }
        }
    }

    /// A document path (`%%root.a.b` → key `a`, rest `[b]`).
    pub fn doc_path(&mut self, path: &[String]) -> DocPath {
        match path.split_first() {
            None => DocPath {
                key: None,
                rest: Box::default(),
            },
            Some((first, rest)) => DocPath {
                key: Some(self.keys.intern(first)),
                rest: rest.into(),
            },
        }
    }

    fn subject(&mut self, e: &Expansion) -> Subject {
        match e.root {
            Root::Root | Root::PrevRoot => Subject::Doc {
                prev: e.root == Root::PrevRoot,
                path: self.doc_path(&e.path),
            },
            Root::This | Root::Prev => Subject::Field {
                prev: e.root == Root::Prev,
                path: e.path.clone().into(),
            },
            _ => Subject::Request(self.nodes.add_slot(Slot {
                kind: SlotKind::Subject(e.clone()),
                host: false,
            })),
        }
    }

    fn pred(&mut self, p: &Predicate) -> Option<CPred> {
        Some(match p {
            Predicate::Matches(o) => CPred::Matches(self.operand(o)?),
            Predicate::Ops(ops) => CPred::Ops(self.ops(ops)?),
        })
    }

    fn ops(&mut self, ops: &[Op]) -> Option<Box<[COp]>> {
        ops.iter().map(|op| self.op(op)).collect()
    }

    fn preds(&mut self, ps: &[Predicate]) -> Option<Box<[CPred]>> {
        ps.iter().map(|p| self.pred(p)).collect()
    }

    fn op(&mut self, op: &Op) -> Option<COp> {
        Some(match op {
            Op::Cmp(c, o) => COp::Cmp(*c, self.operand(o)?),
            Op::In(o) => COp::In(self.list_operand(o)?),
            Op::Nin(o) => COp::Nin(self.list_operand(o)?),
            Op::Exists(o) => COp::Exists(self.operand(o)?),
            Op::All(ps) => COp::All(self.preds(ps)?),
            Op::Any(ps) => COp::Any(self.preds(ps)?),
            Op::None(ps) => COp::None(self.preds(ps)?),
            Op::Not(p) => COp::Not(Box::new(self.pred(p)?)),
            Op::AllOf(o) => COp::AllOf(self.list_operand(o)?),
            Op::Size(o) => COp::Size(self.operand(o)?),
            Op::ElemMatch(em) => match em.as_ref() {
                ElemMatch::Ops(ops) => COp::ElemMatch(self.ops(ops)?),
                ElemMatch::Query(_) => return None,
            },
            Op::Type(specs) => COp::Type(specs.clone().into()),
            Op::Regex(spec) => COp::Regex(spec.clone()),
            Op::Mod { divisor, remainder } => COp::Mod {
                divisor: *divisor,
                remainder: *remainder,
            },
            // Rare in rules: the reference evaluates them.
            Op::Bits { .. } => return None,
        })
    }

    /// The operand of `$in`/`$nin`/`$all`; `None` (the test falls back) for an array that mixes
    /// expansions with literal `null` or regex elements, which keep their literal meaning
    /// element by element in `value/eval.rs` (`is_literal_item`) while the native evaluator
    /// judges a whole operand literal or substituted.
    fn list_operand(&mut self, o: &Operand) -> Option<Opnd> {
        if let Operand::Array(items) = o
            && items
                .iter()
                .any(|i| matches!(i, Operand::Literal(Bson::Null | Bson::RegularExpression(_))))
        {
            return None;
        }
        self.operand(o)
    }

    /// `None` when the operand mixes document values into something the native evaluator
    /// does not build (containers, functions, conversions): the test falls back.
    fn operand(&mut self, o: &Operand) -> Option<Opnd> {
        let facts = operand_facts(o);
        if facts.doc {
            return match o {
                Operand::Expansion(e) => Some(Opnd::Path(Box::new(self.subject(e)))),
                _ => None,
            };
        }
        Some(match o {
            Operand::Literal(v) => Opnd::Const(Box::new(ConstVal::new(v.clone()))),
            _ => Opnd::Slot(self.nodes.add_slot(Slot {
                kind: SlotKind::Operand(o.clone()),
                host: facts.host,
            })),
        })
    }
}
