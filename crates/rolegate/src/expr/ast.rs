//! Stage: expression AST. Input: produced by the expression parser from rule JSON. Output:
//! consumed by the compiler, the reference evaluator and the checks of loading and [`crate::lint`].
//!
//! Every variant is documented with the JSON it comes from. Expansion strings are parsed once, at
//! load time, into [`Expansion`] (root + path segments).

use bson::Bson;

/// The name after `%%` in an expansion string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Root {
    /// `%%true`
    True,
    /// `%%false`
    False,
    /// `%%user` — the user object `{id, type, data, custom_data, identities}`.
    User,
    /// `%%request` — HTTP request data (`remoteIPAddress`, `requestHeaders`, ...).
    Request,
    /// `%%values` — app values by name.
    Values,
    /// `%%environment` — `{tag, values}`.
    Environment,
    /// `%%root` — the document (post-image during writes). Bare field names in MongoDB rules.
    Root,
    /// `%%prevRoot` — the document before the write (absent on insert).
    PrevRoot,
    /// `%%this` — the value of the field being checked, after the write.
    This,
    /// `%%prev` — the value of the field being checked, before the write.
    Prev,
    /// `%%args` — service-action arguments. Bare field names in service rules.
    Args,
    /// `%%partition` — the partition value, Partition-Based Sync only.
    Partition,
}

impl Root {
    /// Every root with its spelling after `%%`.
    pub const ALL: [(Root, &'static str); 12] = [
        (Root::True, "true"),
        (Root::False, "false"),
        (Root::User, "user"),
        (Root::Request, "request"),
        (Root::Values, "values"),
        (Root::Environment, "environment"),
        (Root::Root, "root"),
        (Root::PrevRoot, "prevRoot"),
        (Root::This, "this"),
        (Root::Prev, "prev"),
        (Root::Args, "args"),
        (Root::Partition, "partition"),
    ];

    /// The spelling after `%%`, e.g. `prevRoot`.
    pub fn name(self) -> &'static str {
        Root::ALL
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// What evaluating this root depends on.
    pub fn dependency(self) -> Dependency {
        match self {
            Root::True | Root::False => Dependency::Constant,
            Root::User
            | Root::Request
            | Root::Values
            | Root::Environment
            | Root::Args
            | Root::Partition => Dependency::Request,
            Root::Root | Root::PrevRoot => Dependency::Document,
            Root::This | Root::Prev => Dependency::Field,
        }
    }
}

/// What a node's value depends on, from least to most dynamic: it decides when the compiled
/// engine evaluates the node (once at compile time, once per request, per document, per field,
/// or at every call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dependency {
    /// Nothing: literals, `%%true`, `%%false`. Decided once, when the rules are compiled.
    Constant,
    /// The request only: `%%user`, `%%request`, `%%values`, `%%environment`, `%%args`,
    /// `%%partition`. Decided once per request, when it is prepared.
    Request,
    /// The document: `%%root` (and bare field names), `%%prevRoot`. Decided per document.
    Document,
    /// The field being checked: `%%this`, `%%prev` (in schema `validate` expressions).
    Field,
    /// A host function (`%function`): decided per call, never folded.
    Host,
}

/// A parsed expansion string: `"%%user.custom_data.group"` is
/// `Expansion { root: User, path: ["custom_data", "group"], implicit: false }`; the bare field
/// name `"owner.id"` in a MongoDB rule is `Expansion { root: Root, path: ["owner", "id"], implicit: true }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Expansion {
    /// The name after `%%` (`Root` for a bare field name in a MongoDB rule, `Args` in a service
    /// rule).
    pub root: Root,
    /// Path segments after the root (D4: non-empty, may contain `-`, spaces and `$`; numeric
    /// segments also index arrays).
    pub path: Vec<String>,
    /// True when written as a bare field name rather than with `%%`.
    pub implicit: bool,
}

/// A rule expression: a JSON boolean or an expression document.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `true` / `false`
    Bool(bool),
    /// All of: the clauses of one expression document (`{}` is `All([])`, true), or `%and`/`$and`.
    All(Vec<Expr>),
    /// `{"%or": [e, ...]}` / `$or`
    Any(Vec<Expr>),
    /// `{"%nor": [e, ...]}` / `$nor`: none is true.
    None(Vec<Expr>),
    /// `{"%not": e}` / `$not` at document level (U18).
    Not(Box<Expr>),
    /// `{"<subject>": <predicate>}`: a subject (expansion or bare field) tested by a predicate.
    Test {
        /// The key: `"%%user.custom_data.isAdmin"`, or a bare field name such as `"owner_id"`.
        subject: Expansion,
        /// The value: an operand to match, or an operator document.
        predicate: Predicate,
    },
}

/// What a subject is tested with: a plain operand (match), or an operator document.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `{"owner_id": "%%user.id"}`: MongoDB-style match of the subject against the operand value
    /// (array subjects match any element; U20 reverse membership; `null` matches missing).
    Matches(Operand),
    /// `{"score": {"$gt": 0, "$lt": 10}}`: every operator holds (ANDed). Never empty.
    Ops(Vec<Op>),
}

/// Comparison operators (`$`/`%` prefixes are aliases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `$eq` / `%eq`: equal under MongoDB's rules (numbers compare across types).
    Eq,
    /// `$ne` / `%ne`: not equal; holds for a missing field against a literal operand.
    Ne,
    /// `$gt` / `%gt`: greater, within the same BSON type class.
    Gt,
    /// `$gte` / `%gte`: greater or equal, within the same type class.
    Gte,
    /// `$lt` / `%lt`: less, within the same type class.
    Lt,
    /// `$lte` / `%lte`: less or equal, within the same type class.
    Lte,
}

/// One operator of an operator document, applied to the subject.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `$eq` `$ne` `$gt` `$gte` `$lt` `$lte` (and `%` spellings).
    Cmp(CmpOp, Operand),
    /// `$in: [..]` or `$in: "%%values.x"` (operand must evaluate to an array).
    In(Operand),
    /// `$nin`
    Nin(Operand),
    /// `$exists: true|false|"%%true"`
    Exists(Operand),
    /// `{"%and": [{"$gt": 0}, {"$lte": 42}]}` inside an operator position: each applies to the same subject.
    All(Vec<Predicate>),
    /// `%or`/`$or` inside an operator position.
    Any(Vec<Predicate>),
    /// `%nor`/`$nor` inside an operator position.
    None(Vec<Predicate>),
    /// `$not: {<operators>}` (or a regex).
    Not(Box<Predicate>),
    /// `$all: [..]` — the subject array contains every element (D2).
    AllOf(Operand),
    /// `$size: n` — the subject is an array of length n.
    Size(Operand),
    /// `$elemMatch: {...}` — some element of the subject array matches.
    ElemMatch(Box<ElemMatch>),
    /// `$type: "string" | 2 | ["int", "long"]` (also `%type`).
    Type(Vec<TypeSpec>),
    /// `$regex: "pat"` with optional `$options`, or a BSON regex literal operand of `$in`/match.
    Regex(Box<RegexSpec>),
    /// `$mod: [divisor, remainder]`
    Mod {
        /// The divisor (never 0: refused when the rules are loaded).
        divisor: i64,
        /// The remainder the subject must leave.
        remainder: i64,
    },
    /// `$bitsAllSet`, `$bitsAnySet`, `$bitsAllClear`, `$bitsAnyClear`: bits of an integral
    /// number (two's complement, sign-extended past bit 63) or of binary data (byte `p / 8`,
    /// bit `p % 8`; bits past the end are clear).
    Bits {
        /// Which test.
        test: BitTest,
        /// The bit positions the operand names (a mask's set bits, binary data's set bits, or
        /// an array of positions), sorted, without duplicates.
        positions: Vec<u32>,
    },
}

/// What a bitwise query operator asks of the positions it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitTest {
    /// `$bitsAllSet`: every position is 1.
    AllSet,
    /// `$bitsAnySet`: some position is 1.
    AnySet,
    /// `$bitsAllClear`: every position is 0.
    AllClear,
    /// `$bitsAnyClear`: some position is 0.
    AnyClear,
}

impl BitTest {
    /// The operator's name, with its `$`.
    pub fn name(self) -> &'static str {
        match self {
            BitTest::AllSet => "$bitsAllSet",
            BitTest::AnySet => "$bitsAnySet",
            BitTest::AllClear => "$bitsAllClear",
            BitTest::AnyClear => "$bitsAnyClear",
        }
    }
}

/// The body of `$elemMatch`.
#[derive(Debug, Clone, PartialEq)]
pub enum ElemMatch {
    /// `{"$elemMatch": {"$gt": 1, "$lt": 5}}` — operators applied to each element.
    Ops(Vec<Op>),
    /// `{"$elemMatch": {"a": 1, "b": {"$gt": 2}}}` — a query whose bare fields are read from the
    /// element (`Root::Root` is rebound to the element while it is evaluated).
    Query(Expr),
}

/// A `$type` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeSpec {
    /// An exact BSON element type (`"string"`, `2`, `"objectId"`, ...).
    Exact(bson::spec::ElementType),
    /// `"number"`: any of double, int, long, decimal.
    Number,
}

/// A compiled `$regex`.
#[derive(Debug, Clone)]
pub struct RegexSpec {
    /// The pattern as written in `$regex`.
    pub pattern: String,
    /// `$options` as written (such as `i`), empty when absent.
    pub options: String,
    /// The compiled pattern, on a linear-time engine (D2).
    pub regex: regex::Regex,
}

impl PartialEq for RegexSpec {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.options == other.options
    }
}

/// A value position: literal, expansion, container of operands, or value operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// Any JSON / Extended JSON value without expansions: `"a"`, `42`, `{"$oid": "..."}`.
    Literal(Bson),
    /// `"%%user.id"`
    Expansion(Expansion),
    /// An array with at least one non-literal member (expansions substituted element-wise).
    Array(Vec<Operand>),
    /// A document with at least one non-literal value (expansions substituted).
    Document(Vec<(String, Operand)>),
    /// `{"%function": {"name": "f", "arguments": [..]}}`
    Function {
        /// `name`: the function the host is asked to call.
        name: String,
        /// `arguments`, expanded before the call.
        arguments: Vec<Operand>,
    },
    /// `{"%stringToOid": <string | expansion>}`
    StringToOid(Box<Operand>),
    /// `{"%oidToString": <ObjectId | expansion>}`
    OidToString(Box<Operand>),
    /// `{"%stringToUuid": <string | expansion>}`
    StringToUuid(Box<Operand>),
    /// `{"%uuidToString": <UUID | expansion>}`
    UuidToString(Box<Operand>),
}

impl Expr {
    /// The always-true expression `{}`.
    pub fn always() -> Expr {
        Expr::All(Vec::new())
    }

    /// Calls `f` on every expansion in this expression (subjects and operands), depth first.
    pub fn visit_expansions<'a>(&'a self, f: &mut dyn FnMut(&'a Expansion)) {
        match self {
            Expr::Bool(_) => {}
            Expr::All(v) | Expr::Any(v) | Expr::None(v) => {
                v.iter().for_each(|e| e.visit_expansions(f))
            }
            Expr::Not(e) => e.visit_expansions(f),
            Expr::Test { subject, predicate } => {
                f(subject);
                predicate.visit_expansions(f);
            }
        }
    }

    /// Calls `f` on the name of every `%function` call in this expression, wherever it is:
    /// operands of operators at any depth (`$not`, `%and`/`%or`/`%nor` in operator position),
    /// `$elemMatch` bodies of both forms, containers and function arguments.
    pub fn visit_functions<'a>(&'a self, f: &mut dyn FnMut(&'a str)) {
        match self {
            Expr::Bool(_) => {}
            Expr::All(v) | Expr::Any(v) | Expr::None(v) => {
                v.iter().for_each(|e| e.visit_functions(f))
            }
            Expr::Not(e) => e.visit_functions(f),
            Expr::Test { predicate, .. } => predicate.visit_functions(f),
        }
    }

    /// The most dynamic thing this expression depends on.
    pub fn dependency(&self) -> Dependency {
        let mut dep = Dependency::Constant;
        self.visit_expansions(&mut |e| dep = dep.max(e.root.dependency()));
        let mut host = false;
        self.visit_functions(&mut |_| host = true);
        if host { Dependency::Host } else { dep }
    }
}

impl Predicate {
    /// Calls `f` on every expansion in operands of this predicate.
    pub fn visit_expansions<'a>(&'a self, f: &mut dyn FnMut(&'a Expansion)) {
        self.visit_operands(&mut |o| o.visit_expansions(f));
        // $elemMatch queries hold expressions whose subjects are element-relative.
        self.visit_elem_queries(&mut |e| e.visit_expansions(f));
    }

    /// Calls `f` on the name of every `%function` call in this predicate: in its operands and in
    /// its `$elemMatch` query bodies (which [`Predicate::visit_operands`] does not enter).
    pub fn visit_functions<'a>(&'a self, f: &mut dyn FnMut(&'a str)) {
        self.visit_operands(&mut |o| o.visit_functions(f));
        self.visit_elem_queries(&mut |e| e.visit_functions(f));
    }

    fn visit_elem_queries<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        if let Predicate::Ops(ops) = self {
            for op in ops {
                op.visit_elem_queries(f);
            }
        }
    }

    /// Calls `f` on every top-level operand of this predicate and its operators, including the
    /// operator form of `$elemMatch`, but not the expressions of `$elemMatch` query bodies
    /// (their bare fields are element-relative; see `visit_elem_queries`).
    pub fn visit_operands<'a>(&'a self, f: &mut dyn FnMut(&'a Operand)) {
        match self {
            Predicate::Matches(o) => f(o),
            Predicate::Ops(ops) => ops.iter().for_each(|op| op.visit_operands(f)),
        }
    }
}

impl Op {
    fn visit_operands<'a>(&'a self, f: &mut dyn FnMut(&'a Operand)) {
        match self {
            Op::Cmp(_, o) | Op::In(o) | Op::Nin(o) | Op::Exists(o) | Op::AllOf(o) | Op::Size(o) => {
                f(o)
            }
            Op::All(ps) | Op::Any(ps) | Op::None(ps) => ps.iter().for_each(|p| p.visit_operands(f)),
            Op::Not(p) => p.visit_operands(f),
            Op::ElemMatch(em) => match em.as_ref() {
                ElemMatch::Ops(ops) => ops.iter().for_each(|op| op.visit_operands(f)),
                ElemMatch::Query(_) => {}
            },
            Op::Type(_) | Op::Regex(_) | Op::Mod { .. } | Op::Bits { .. } => {}
        }
    }

    fn visit_elem_queries<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        match self {
            Op::ElemMatch(em) => match em.as_ref() {
                ElemMatch::Query(e) => f(e),
                ElemMatch::Ops(ops) => ops.iter().for_each(|op| op.visit_elem_queries(f)),
            },
            Op::All(ps) | Op::Any(ps) | Op::None(ps) => {
                ps.iter().for_each(|p| p.visit_elem_queries(f))
            }
            Op::Not(p) => p.visit_elem_queries(f),
            _ => {}
        }
    }
}

impl Operand {
    /// Calls `f` on every expansion inside this operand.
    pub fn visit_expansions<'a>(&'a self, f: &mut dyn FnMut(&'a Expansion)) {
        match self {
            Operand::Literal(_) => {}
            Operand::Expansion(e) => f(e),
            Operand::Array(v) => v.iter().for_each(|o| o.visit_expansions(f)),
            Operand::Document(v) => v.iter().for_each(|(_, o)| o.visit_expansions(f)),
            Operand::Function { arguments, .. } => {
                arguments.iter().for_each(|o| o.visit_expansions(f))
            }
            Operand::StringToOid(o)
            | Operand::OidToString(o)
            | Operand::StringToUuid(o)
            | Operand::UuidToString(o) => o.visit_expansions(f),
        }
    }

    /// Calls `f` on the name of every `%function` call inside this operand.
    pub fn visit_functions<'a>(&'a self, f: &mut dyn FnMut(&'a str)) {
        match self {
            Operand::Literal(_) | Operand::Expansion(_) => {}
            Operand::Array(v) => v.iter().for_each(|o| o.visit_functions(f)),
            Operand::Document(v) => v.iter().for_each(|(_, o)| o.visit_functions(f)),
            Operand::Function { name, arguments } => {
                f(name);
                arguments.iter().for_each(|o| o.visit_functions(f));
            }
            Operand::StringToOid(o)
            | Operand::OidToString(o)
            | Operand::StringToUuid(o)
            | Operand::UuidToString(o) => o.visit_functions(f),
        }
    }
}
