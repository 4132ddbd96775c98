//! Stage: the compiled form of rule expressions. Input: built by [`super::lower`] from
//! [`crate::expr::Expr`]. Output: a flat [`Nodes`] arena (`Vec<Node>` indexed by [`NodeId`]),
//! evaluated per request by [`crate::eval::prepare`] and per document by [`crate::eval::doc`].
//!
//! Every node records whether evaluating it can fail ([`NodeInfo::fallible`]). The smart
//! constructors ([`Nodes::all`], [`Nodes::any`], [`Nodes::not`]) fold constants *with error
//! semantics*: the reference evaluates `%and`/`%or` left to right with short-circuit, so a
//! constant that decides the whole only does so when nothing before it can fail; otherwise the
//! list is cut after it (it is a residual, reached only when the clauses before it let it be).

use bson::Bson;

use crate::expr::{CmpOp, Expansion, Expr, Operand, RegexSpec, TypeSpec};
use crate::value::EvalError;

/// Index of a node in [`Nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct NodeId(pub u32);

/// Index of a per-request slot (a request-only part evaluated once per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SlotId(pub u32);

/// Index of an interned top-level document key (the first segment of a `%%root` path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KeyId(pub u32);

/// A boolean node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A constant (folded at compile time).
    Const(bool),
    /// Always fails with this error when reached (a constant sub-expression that fails).
    Error(EvalError),
    /// All hold, left to right, stopping at the first false (`%and`, expression documents).
    All(Box<[NodeId]>),
    /// One holds, left to right, stopping at the first true (`%or`; `%nor` is `Not(Any)`).
    Any(Box<[NodeId]>),
    Not(NodeId),
    /// A request-only sub-expression: its value is computed once per request.
    Slot(SlotId),
    /// A document- or field-dependent test, evaluated natively per document.
    Test(Box<Test>),
    /// `{"field": operand}` / `{"field": {"$eq": operand}}` on a top-level field of `%%root`
    /// with a literal or request operand: the commonest test. When the operand is a string or
    /// a boolean, it is decided on the raw bytes of the field (no decoding); otherwise `test`
    /// decides.
    FieldEq(Box<FieldEq>),
    /// A shape the native evaluator does not cover (`$elemMatch` queries, operands that mix
    /// document values into containers, functions or conversions): evaluated by the reference
    /// evaluator on owned values.
    Fallback(Box<Expr>),
}

/// Facts recorded about every node.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NodeInfo {
    /// Evaluating the node may return an error.
    pub fallible: bool,
    /// The node reads `%%this` / `%%prev`.
    pub field: bool,
    /// The node reads the document or the field (its value may differ between documents).
    pub doc: bool,
}

/// `{"<subject>": <predicate>}` with a document- or field-dependent part.
#[derive(Debug, Clone)]
pub(crate) struct Test {
    pub subject: Subject,
    pub pred: CPred,
}

/// A [`Node::FieldEq`].
#[derive(Debug, Clone)]
pub(crate) struct FieldEq {
    pub key: KeyId,
    /// [`Opnd::Const`] or [`Opnd::Slot`].
    pub operand: Opnd,
    /// The same test, for operands of other types.
    pub test: Test,
}

/// Where a subject (or a path operand) takes its values from.
#[derive(Debug, Clone)]
pub(crate) enum Subject {
    /// `%%root.<path>` (bare fields) or, with `prev`, `%%prevRoot.<path>`.
    Doc { prev: bool, path: DocPath },
    /// `%%this.<path>` or, with `prev`, `%%prev.<path>`.
    Field { prev: bool, path: Box<[String]> },
    /// A request value (`%%user...`): resolved once per request (a [`SlotKind::Subject`] slot).
    Request(SlotId),
}

/// A path into a document: its first segment interned (`None`: the whole document), the rest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DocPath {
    pub key: Option<KeyId>,
    pub rest: Box<[String]>,
}

/// A compiled predicate.
#[derive(Debug, Clone)]
pub(crate) enum CPred {
    Matches(Opnd),
    Ops(Box<[COp]>),
}

/// A compiled operator (see [`crate::expr::Op`] for the JSON each comes from).
#[derive(Debug, Clone)]
pub(crate) enum COp {
    Cmp(CmpOp, Opnd),
    In(Opnd),
    Nin(Opnd),
    Exists(Opnd),
    All(Box<[CPred]>),
    Any(Box<[CPred]>),
    None(Box<[CPred]>),
    Not(Box<CPred>),
    AllOf(Opnd),
    Size(Opnd),
    /// `$elemMatch` with operators (the query form falls back).
    ElemMatch(Box<[COp]>),
    Type(Box<[TypeSpec]>),
    Regex(Box<RegexSpec>),
    Mod {
        divisor: i64,
        remainder: i64,
    },
}

/// A compiled operand.
#[derive(Debug, Clone)]
pub(crate) enum Opnd {
    /// A literal, with its regexes compiled once.
    Const(Box<ConstVal>),
    /// A request-only operand, computed once per request ([`SlotKind::Operand`]).
    Slot(SlotId),
    /// A document or field value (`"%%root.owner"`, `"%%this"`), collapsed as the reference's
    /// `Resolved::into_value` does.
    Path(Box<Subject>),
}

/// A literal operand.
#[derive(Debug, Clone)]
pub(crate) struct ConstVal {
    pub value: Bson,
    /// The compiled regex when the value is a regular expression.
    pub regex: Option<Result<regex::Regex, String>>,
    /// The compiled regex of each array element that is a regular expression.
    pub items: Box<[Option<Result<regex::Regex, String>>]>,
}

impl ConstVal {
    pub fn new(value: Bson) -> ConstVal {
        let compile = |v: &Bson| match v {
            Bson::RegularExpression(re) => Some(crate::value::compare::compile_regex(
                &re.pattern,
                &re.options,
            )),
            _ => None,
        };
        let regex = compile(&value);
        let items = match &value {
            Bson::Array(items)
                if items
                    .iter()
                    .any(|i| matches!(i, Bson::RegularExpression(_))) =>
            {
                items.iter().map(compile).collect()
            }
            _ => Box::default(),
        };
        ConstVal {
            value,
            regex,
            items,
        }
    }
}

/// What a slot computes once per request.
#[derive(Debug, Clone)]
pub(crate) enum SlotKind {
    /// A request-only boolean sub-expression (evaluated by the reference evaluator with
    /// request-only bindings).
    Bool(Expr),
    /// A request-only operand value.
    Operand(Operand),
    /// Everything a request expansion reaches (a test subject).
    Subject(Expansion),
}

/// A per-request slot.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub kind: SlotKind,
    /// Calls a host `%function`: evaluated lazily (on first use by a document), never ahead.
    pub host: bool,
}

/// The node arena with its facts and slots.
#[derive(Debug, Clone, Default)]
pub(crate) struct Nodes {
    nodes: Vec<Node>,
    info: Vec<NodeInfo>,
    pub slots: Vec<Slot>,
}

impl Nodes {
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.0 as usize)
    }

    pub fn info(&self, id: NodeId) -> NodeInfo {
        self.info.get(id.0 as usize).copied().unwrap_or(NodeInfo {
            fallible: true,
            field: true,
            doc: true,
        })
    }

    pub fn slot(&self, id: SlotId) -> Option<&Slot> {
        self.slots.get(id.0 as usize)
    }

    pub fn push(&mut self, node: Node, info: NodeInfo) -> NodeId {
        let id = NodeId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
        self.nodes.push(node);
        self.info.push(info);
        id
    }

    pub fn add_slot(&mut self, slot: Slot) -> SlotId {
        let id = SlotId(u32::try_from(self.slots.len()).unwrap_or(u32::MAX));
        self.slots.push(slot);
        id
    }

    pub fn constant(&mut self, b: bool) -> NodeId {
        self.push(Node::Const(b), NodeInfo::default())
    }

    pub fn error(&mut self, e: EvalError) -> NodeId {
        self.push(
            Node::Error(e),
            NodeInfo {
                fallible: true,
                field: false,
                doc: false,
            },
        )
    }

    fn as_const(&self, id: NodeId) -> Option<bool> {
        match self.get(id) {
            Some(Node::Const(b)) => Some(*b),
            _ => None,
        }
    }

    fn is_error(&self, id: NodeId) -> bool {
        matches!(self.get(id), Some(Node::Error(_)))
    }

    /// `All` (`conj = true`) or `Any` (`conj = false`), folded and flattened.
    fn junction(&mut self, ids: Vec<NodeId>, conj: bool) -> NodeId {
        // `neutral` is skipped; `decisive` decides the whole when nothing before it can fail.
        let (neutral, decisive) = (conj, !conj);
        let mut flat = Vec::with_capacity(ids.len());
        for id in ids {
            match self.get(id) {
                Some(Node::All(children)) if conj => flat.extend(children.iter().copied()),
                Some(Node::Any(children)) if !conj => flat.extend(children.iter().copied()),
                _ => flat.push(id),
            }
        }
        let mut out: Vec<NodeId> = Vec::with_capacity(flat.len());
        let mut prefix_fallible = false;
        for id in flat {
            match self.as_const(id) {
                Some(b) if b == neutral => continue,
                Some(_) => {
                    debug_assert!(self.as_const(id) == Some(decisive));
                    if !prefix_fallible {
                        // Every clause before is infallible: it either decides the same way
                        // first or lets this constant decide.
                        return self.constant(decisive);
                    }
                    // INVARIANT: a clause before may fail; keep the constant as a residual and
                    // drop what follows (never reached).
                    out.push(id);
                    break;
                }
                None if self.is_error(id) => {
                    if out.is_empty() {
                        return id;
                    }
                    out.push(id);
                    break;
                }
                None => {
                    prefix_fallible |= self.info(id).fallible;
                    out.push(id);
                }
            }
        }
        match out.as_slice() {
            [] => self.constant(neutral),
            [one] => *one,
            _ => {
                let info = NodeInfo {
                    fallible: out.iter().any(|c| self.info(*c).fallible),
                    field: out.iter().any(|c| self.info(*c).field),
                    doc: out.iter().any(|c| self.info(*c).doc),
                };
                let children = out.into_boxed_slice();
                let node = if conj {
                    Node::All(children)
                } else {
                    Node::Any(children)
                };
                self.push(node, info)
            }
        }
    }

    /// Every one of `ids` holds (left to right, short-circuit).
    pub fn all(&mut self, ids: Vec<NodeId>) -> NodeId {
        self.junction(ids, true)
    }

    /// One of `ids` holds (left to right, short-circuit).
    pub fn any(&mut self, ids: Vec<NodeId>) -> NodeId {
        self.junction(ids, false)
    }

    /// The negation of `id` (errors pass through).
    pub fn not(&mut self, id: NodeId) -> NodeId {
        match self.get(id) {
            Some(Node::Const(b)) => {
                let b = !*b;
                self.constant(b)
            }
            Some(Node::Error(_)) => id,
            Some(Node::Not(inner)) => *inner,
            _ => {
                let info = self.info(id);
                self.push(Node::Not(id), info)
            }
        }
    }
}
