//! Stage: JSON → expression AST. Input: a `serde_json::Value` from a rule file (Extended JSON
//! allowed in literals) and where it sits ([`Site`], [`Dialect`], [`Place`]); or a MongoDB query
//! as a `bson::Document` ([`parse_query`]). Output: an [`Expr`] / [`Operand`], with every problem
//! pushed to [`Diagnostics`] (all of them, not just the first). A part that has an error is
//! replaced by a denying placeholder (`false`, `null`); callers must not use the result when
//! `diags.has_errors()`.
//!
//! Context rules are checked here, at load time: an expansion that the site cannot use is an error
//! in the words of spec §8 (`do not know how to expand '%%root'`).
//!
//! # Shape of the result (decisions where spec §5.1 is open)
//!
//! * An expression document with one clause is that clause (`{"a": 1}` is `Test`, not
//!   `All([Test])`); `{}` is `All([])`; two or more clauses are `All(clauses)`. `%and`/`$and` at
//!   document level is `All` too, without flattening, so `{"$and": [x]}` is `All([x])`.
//! * Subject values: `{}` and Extended JSON objects (`{"$oid": ..}`) are literals; an object whose
//!   only key is a value operator (`%function`, `%stringToOid`, ...) is `Matches(<that operand>)`;
//!   an object whose keys are all operators (`$`/`%`, not `%%`) is `Ops`; an object mixing
//!   operators and field names is an error; anything else is `Matches(<operand>)` (documents are
//!   exact equality, spec U21). A regular-expression literal (`{"$regularExpression": ..}` in
//!   JSON, a BSON regex in a query) as the whole value becomes `Ops([Regex])`, as in MongoDB.
//! * The same operator written twice in one operator document (`{"$eq": 1, "%eq": 2}`) is an
//!   error (`duplicate-operator`): JSON objects cannot hold both in a canonical rendering.
//! * `$and`/`$or`/`$nor` inside an operator document take an array of predicates: operator
//!   documents or plain values (`{"a": {"$or": [1, {"$gt": 5}]}}`).
//! * `$not` inside an operator document needs an operator document or a regex; at document level
//!   (`%not`/`$not`, spec U18) it takes one expression. In queries (and `$elemMatch` queries) a
//!   top-level `$not` is an error, as in MongoDB.
//! * `$elemMatch`: a body whose keys are all non-logical operators is `ElemMatch::Ops`; otherwise
//!   it is a query on the element: keys are field names of the element (`Root::Root`, implicit),
//!   `$and`/`$or`/`$nor` combine sub-queries, and `%%` keys are an error (the element has no
//!   expansions). Values inside may use expansions; element fields are not site-checked.
//! * In a MongoDB query ([`parse_query`]) every key that is not a `$` operator is a field path,
//!   a key starting with `%%` included (`{"%%values.k": 1}` tests the document field `%%values`,
//!   as MongoDB would): a client query must never read the request's context (`%%user`,
//!   `%%values`, `%%environment`, ...), which would let it probe secrets and custom data one
//!   predicate at a time (issue 9, red team).
//! * `$exists` takes a boolean, a number or an expansion; `$in`/`$nin`/`$all` an array, an
//!   expansion or `%function`; `$size` a non-negative whole number or an expansion; `$type`
//!   literal type names/codes only; `$regex` a literal pattern (compiled at load time with the
//!   linear-time `regex` crate: options `i m s x` map to its flags, `u` is accepted and ignored).
//! * `%stringToOid` & co. take a literal or an expansion (spec §5.1); a literal of the wrong type,
//!   or a string that can never convert, is a load-time error.
//! * Nesting deeper than [`MAX_EXPR_DEPTH`] JSON levels is one `expression-too-deep` error; the
//!   parser never recurses further, whatever the input.
//!
//! JSON (`parse_expr`, `parse_operand`) and BSON (`parse_query`) input share every rule through a
//! small read-only view ([`Node`]) rather than a conversion, so BSON types are kept exactly
//! (`Int64(1)` stays `Int64`) and no conversion recurses on hostile input. The only difference is
//! the [`Mode`]: in query mode strings are always literals and only `$` operators exist.
//!
//! Diagnostic codes: `invalid-expression` (wrong shape), `unknown-operator`,
//! `unsupported-operator`, `duplicate-operator`, `unknown-expansion`, `malformed-expansion`,
//! `expansion-not-allowed`, `function-not-allowed`, `invalid-literal` (bad Extended JSON or value
//! operator argument), `invalid-regex`, `expression-too-deep`.

use bson::spec::ElementType;
use bson::{Bson, Document};

use crate::error::{Diagnostic, Diagnostics, Place, did_you_mean};
use crate::expr::expansion::{self, ExpansionError};
use crate::expr::{
    BitTest, CmpOp, ElemMatch, Expansion, Expr, Op, Operand, Predicate, RegexSpec, Root, TypeSpec,
};

/// The deepest JSON nesting (objects and arrays) an expression may have. Deeper input is one
/// `expression-too-deep` error, never a stack overflow. Real rules nest fewer than 15 levels.
pub const MAX_EXPR_DEPTH: usize = 100;

/// What bare field names mean (spec §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// MongoDB rules: a bare name is `%%root.<name>`.
    MongoDb,
    /// Third-party service rules: a bare name is `%%args.<name>`.
    Service,
}

impl Dialect {
    /// The root a bare field name stands for.
    pub fn implicit_root(self) -> Root {
        match self {
            Dialect::MongoDb => Root::Root,
            Dialect::Service => Root::Args,
        }
    }
}

/// Where an expression appears; decides which expansions it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Site {
    /// A role's `apply_when` (non-Sync): everything but `%%this`/`%%prev`/`%%args`/`%%partition`.
    RoleApplyWhen,
    /// A role's `read`/`write`/`insert`/`delete` or `document_filters.*` (non-Sync).
    RolePermission,
    /// `fields.*.read/write`, `additional_fields.*` (non-Sync): also `%%this`/`%%prev`.
    FieldPermission,
    /// A schema node's `validate`: also `%%this`/`%%prev`.
    SchemaValidate,
    /// A filter's `apply_when`: no document expansions, no bare fields.
    FilterApplyWhen,
    /// A filter's `query` values: no document expansions.
    FilterQuery,
    /// A role's `apply_when` when Sync is enabled: `%%user`, `%%values`, `%%environment`,
    /// `%function`, value operators; nothing that reads the document.
    SyncApplyWhen,
    /// `document_filters`, `insert`, `delete` in Sync: bare (queryable) fields, `%%user`,
    /// `%%values`, `%%environment`; no `%function`.
    SyncRule,
    /// Partition-Based Sync `read`/`write`: `%%user`, `%%partition`, `%%values`, `%%environment`, `%function`.
    PartitionPermission,
    /// A service rule's `when`: `%%args`, `%%user`, `%%request`, `%%values`, `%%environment`, `%function`.
    ServiceWhen,
    /// A function's or endpoint's `can_evaluate`: `%%user`, `%%request`, `%%values`,
    /// `%%environment`, `%%args`, `%function`.
    CanEvaluate,
    /// A stand-alone expression (conformance `expression` cases): every root is allowed.
    Any,
}

impl Site {
    /// Whether an expression at this site may use `root` (`implicit`: written as a bare field
    /// name). `%%true`/`%%false` are allowed everywhere; [`Site::Any`] allows everything.
    pub fn allows(self, root: Root, implicit: bool) -> bool {
        if matches!(root, Root::True | Root::False) {
            return true;
        }
        let request_static = matches!(root, Root::User | Root::Values | Root::Environment);
        let document = matches!(root, Root::Root | Root::PrevRoot);
        let bare_document_field = root == Root::Root && implicit;
        match self {
            Site::Any => true,
            Site::RoleApplyWhen | Site::RolePermission => {
                request_static || document || root == Root::Request
            }
            Site::FieldPermission | Site::SchemaValidate => {
                request_static
                    || document
                    || matches!(root, Root::Request | Root::This | Root::Prev)
            }
            Site::FilterApplyWhen => request_static || root == Root::Request,
            Site::FilterQuery => request_static || root == Root::Request || bare_document_field,
            Site::SyncApplyWhen => request_static,
            Site::SyncRule => request_static || bare_document_field,
            Site::PartitionPermission => request_static || root == Root::Partition,
            Site::ServiceWhen | Site::CanEvaluate => {
                request_static || matches!(root, Root::Request | Root::Args)
            }
        }
    }

    /// Whether `%function` may be called here (everywhere but Sync document filters, spec §3.6).
    pub fn allows_functions(self) -> bool {
        self != Site::SyncRule
    }
}

/// Parses a rule expression (a JSON boolean or an expression document).
pub fn parse_expr(
    value: &serde_json::Value,
    dialect: Dialect,
    site: Site,
    place: &Place,
    diags: &mut Diagnostics,
) -> Expr {
    Parser::new(dialect, site, Mode::Expr, diags).expression(
        Node::Json(value),
        place,
        0,
        Structure::Rule,
    )
}

/// Parses a value position (literal, expansion, container, value operator).
pub fn parse_operand(
    value: &serde_json::Value,
    dialect: Dialect,
    site: Site,
    place: &Place,
    diags: &mut Diagnostics,
) -> Operand {
    Parser::new(dialect, site, Mode::Expr, diags).operand(Node::Json(value), place, 0)
}

/// Parses a MongoDB query document (a client query or a merged filter query, after expansion
/// substitution): bare fields are document fields, strings are literals, only MongoDB (`$`)
/// operators, including `$and`/`$or`/`$nor` at the top level.
pub fn parse_query(query: &bson::Document, place: &Place, diags: &mut Diagnostics) -> Expr {
    let mut parser = Parser::new(Dialect::MongoDb, Site::Any, Mode::Query, diags);
    let entries: Vec<(&str, Node<'_>)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), Node::Bson(v)))
        .collect();
    parser.document(entries, place, 0, Structure::Query)
}

// ---------------------------------------------------------------------------------------------
// Operator tables

/// Operators usable in an operator document (after the `$`/`%` prefix).
const FIELD_OPS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "nin",
    "exists",
    "and",
    "or",
    "nor",
    "not",
    "all",
    "size",
    "elemMatch",
    "type",
    "regex",
    "options",
    "mod",
    "bitsAllSet",
    "bitsAnySet",
    "bitsAllClear",
    "bitsAnyClear",
];

/// Value operators (only with `%`).
const VALUE_OPS: &[&str] = &[
    "function",
    "stringToOid",
    "oidToString",
    "stringToUuid",
    "uuidToString",
];

/// Real MongoDB query operators that rules reject at load time (spec D2).
const UNSUPPORTED_OPS: &[&str] = &[
    "text",
    "where",
    "expr",
    "jsonSchema",
    "near",
    "nearSphere",
    "geoWithin",
    "geoIntersects",
    "within",
    "box",
    "center",
    "centerSphere",
    "polygon",
    "geometry",
    "maxDistance",
    "minDistance",
    "uniqueDocs",
    "sampleRate",
    "rand",
];

/// Keys that make a JSON object an Extended JSON literal.
const EJSON_KEYS: &[&str] = &[
    "$oid",
    "$symbol",
    "$regularExpression",
    "$numberInt",
    "$numberLong",
    "$numberDouble",
    "$numberDecimal",
    "$binary",
    "$uuid",
    "$code",
    "$timestamp",
    "$date",
    "$minKey",
    "$maxKey",
    "$dbPointer",
    "$undefined",
];

/// `$type` aliases, as MongoDB spells them (plus `"number"`, handled apart).
pub(crate) const TYPE_ALIASES: &[(&str, ElementType)] = &[
    ("double", ElementType::Double),
    ("string", ElementType::String),
    ("object", ElementType::EmbeddedDocument),
    ("array", ElementType::Array),
    ("binData", ElementType::Binary),
    ("undefined", ElementType::Undefined),
    ("objectId", ElementType::ObjectId),
    ("bool", ElementType::Boolean),
    ("date", ElementType::DateTime),
    ("null", ElementType::Null),
    ("regex", ElementType::RegularExpression),
    ("dbPointer", ElementType::DbPointer),
    ("javascript", ElementType::JavaScriptCode),
    ("symbol", ElementType::Symbol),
    ("javascriptWithScope", ElementType::JavaScriptCodeWithScope),
    ("int", ElementType::Int32),
    ("timestamp", ElementType::Timestamp),
    ("long", ElementType::Int64),
    ("decimal", ElementType::Decimal128),
    ("minKey", ElementType::MinKey),
    ("maxKey", ElementType::MaxKey),
];

// ---------------------------------------------------------------------------------------------
// Input view shared by JSON and BSON

/// One input value, JSON (rule files) or BSON (queries).
#[derive(Debug, Clone, Copy)]
enum Node<'a> {
    Json(&'a serde_json::Value),
    Bson(&'a Bson),
}

/// What a [`Node`] is, as far as the grammar cares.
enum Kind<'a> {
    Bool(bool),
    Str(&'a str),
    Array(Vec<Node<'a>>),
    Object(Vec<(&'a str, Node<'a>)>),
    /// Any other value: numbers, `null`, and typed BSON values. Numbers from JSON are int32 when
    /// they fit, else int64, and doubles when they have a fraction or exponent.
    Scalar(Bson),
}

impl<'a> Node<'a> {
    fn kind(self) -> Kind<'a> {
        use serde_json::Value as J;
        match self {
            Node::Json(J::Null) => Kind::Scalar(Bson::Null),
            Node::Json(J::Bool(b)) => Kind::Bool(*b),
            Node::Json(J::Number(n)) => Kind::Scalar(json_number(n)),
            Node::Json(J::String(s)) => Kind::Str(s),
            Node::Json(J::Array(a)) => Kind::Array(a.iter().map(Node::Json).collect()),
            // An Extended JSON literal (`{"$numberLong": "2"}`) is the value it stands for, so
            // operands such as `$mod`'s, `$type`'s and `$size`'s may be written that way; one
            // that does not convert stays an object, and the operand parser reports why.
            Node::Json(v @ J::Object(o)) => {
                // Extended JSON literals are shallow; a deep one is left to the depth check.
                let literal = self
                    .ejson()
                    .filter(|_| !json_deeper_than(v, 4))
                    .and_then(|_| Bson::try_from(v.clone()).ok());
                match literal {
                    Some(b) => Kind::Scalar(b),
                    None => {
                        Kind::Object(o.iter().map(|(k, v)| (k.as_str(), Node::Json(v))).collect())
                    }
                }
            }
            Node::Bson(Bson::Boolean(b)) => Kind::Bool(*b),
            Node::Bson(Bson::String(s)) => Kind::Str(s),
            Node::Bson(Bson::Array(a)) => Kind::Array(a.iter().map(Node::Bson).collect()),
            Node::Bson(Bson::Document(d)) => {
                Kind::Object(d.iter().map(|(k, v)| (k.as_str(), Node::Bson(v))).collect())
            }
            Node::Bson(other) => Kind::Scalar(other.clone()),
        }
    }

    /// The JSON object when this is an Extended JSON literal (`{"$oid": ..}`, `{"$date": ..}`).
    fn ejson(self) -> Option<&'a serde_json::Value> {
        match self {
            Node::Json(v @ serde_json::Value::Object(o))
                if o.keys().any(|k| EJSON_KEYS.contains(&k.as_str())) =>
            {
                Some(v)
            }
            _ => None,
        }
    }
}

fn json_number(n: &serde_json::Number) -> Bson {
    match n.as_i64() {
        Some(i) => i32::try_from(i).map_or(Bson::Int64(i), Bson::Int32),
        None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// True when `v` nests more than `limit` containers deep (iterative: safe on any input).
fn json_deeper_than(v: &serde_json::Value, limit: usize) -> bool {
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match v {
            serde_json::Value::Array(a) => Box::new(a.iter()),
            serde_json::Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        if d >= limit {
            return true;
        }
        stack.extend(children.map(|c| (c, d + 1)));
    }
    false
}

// ---------------------------------------------------------------------------------------------
// The parser

/// How values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Rule expressions: `%%` strings are expansions, `$` and `%` operators, value operators.
    Expr,
    /// MongoDB queries: strings are literals, only `$` operators.
    Query,
}

/// How the keys of an expression document are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Structure {
    /// A rule expression: expansions, bare fields (dialect root), `%`/`$` logical operators,
    /// document-level `%not`.
    Rule,
    /// A MongoDB query: keys not starting with `$` are document fields, `$and/$or/$nor` only.
    Query,
    /// An `$elemMatch` query inside a rule expression: keys are element fields, `%`/`$`
    /// `and/or/nor`, no `%%` keys.
    ElemQuery,
}

struct Parser<'d> {
    dialect: Dialect,
    site: Site,
    mode: Mode,
    diags: &'d mut Diagnostics,
    /// The depth error is reported once per parse.
    too_deep: bool,
}

/// A denying placeholder for a broken predicate (`$in: []` never holds).
fn never() -> Predicate {
    Predicate::Ops(vec![Op::In(Operand::Literal(Bson::Array(Vec::new())))])
}

fn null() -> Operand {
    Operand::Literal(Bson::Null)
}

impl<'d> Parser<'d> {
    fn new(dialect: Dialect, site: Site, mode: Mode, diags: &'d mut Diagnostics) -> Self {
        Parser {
            dialect,
            site,
            mode,
            diags,
            too_deep: false,
        }
    }

    fn error(&mut self, code: &'static str, place: &Place, message: impl Into<String>) {
        self.diags.error(code, place.clone(), message);
    }

    fn error_hint(
        &mut self,
        code: &'static str,
        place: &Place,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let mut d = Diagnostic::error(code, place.clone(), message);
        d.hint = hint;
        self.diags.push(d);
    }

    /// True (after reporting once) when a node at `depth` is too deep to look at.
    fn too_deep(&mut self, depth: usize, place: &Place) -> bool {
        if depth <= MAX_EXPR_DEPTH {
            return false;
        }
        if !self.too_deep {
            self.too_deep = true;
            self.error_hint(
                "expression-too-deep",
                place,
                format!("expression nested too deeply (more than {MAX_EXPR_DEPTH} levels)"),
                None,
            );
        }
        true
    }

    /// Whether `key` is an operator key in this mode: `$x`, and `%x` (not `%%x`) in rule mode.
    fn is_op_key(&self, key: &str) -> bool {
        (key.starts_with('$') && !is_dbref_key(key))
            || (self.mode == Mode::Expr && is_percent_op(key))
    }

    fn report_expansion_error(&mut self, err: ExpansionError, place: &Place) {
        let code = err.code();
        let place = place.with_span(err.span.clone());
        self.error_hint(code, &place, err.message, err.hint);
    }

    // -- expressions ----------------------------------------------------------------------------

    /// Expression := JSON boolean | object (rule structure); object only in query structures.
    fn expression(&mut self, node: Node<'_>, place: &Place, depth: usize, st: Structure) -> Expr {
        if self.too_deep(depth, place) {
            return Expr::Bool(false);
        }
        match node.kind() {
            Kind::Bool(b) if st == Structure::Rule => Expr::Bool(b),
            Kind::Object(entries) => self.document(entries, place, depth, st),
            _ => {
                let wanted = if st == Structure::Rule {
                    "an expression (`true`, `false` or an object)"
                } else {
                    "a query document (an object)"
                };
                self.error(
                    "invalid-expression",
                    place,
                    format!("expected {wanted}, found {}", describe(node)),
                );
                Expr::Bool(false)
            }
        }
    }

    /// The clauses of one expression document, ANDed.
    fn document(
        &mut self,
        entries: Vec<(&str, Node<'_>)>,
        place: &Place,
        depth: usize,
        st: Structure,
    ) -> Expr {
        if self.too_deep(depth, place) {
            return Expr::Bool(false);
        }
        let mut clauses: Vec<Expr> = entries
            .into_iter()
            .map(|(key, value)| self.clause(key, value, &place.key(key), depth + 1, st))
            .collect();
        match (clauses.pop(), clauses.is_empty()) {
            (None, _) => Expr::always(),
            (Some(only), true) => only,
            (Some(last), false) => {
                clauses.push(last);
                Expr::All(clauses)
            }
        }
    }

    /// One `key: value` member of an expression document; `place` is the member's place and
    /// `depth` the value's depth.
    fn clause(
        &mut self,
        key: &str,
        value: Node<'_>,
        place: &Place,
        depth: usize,
        st: Structure,
    ) -> Expr {
        let operator = match st {
            Structure::Query => key.strip_prefix('$'),
            Structure::Rule | Structure::ElemQuery => {
                key.strip_prefix('$').or_else(|| percent_op_name(key))
            }
        };
        if let Some(name) = operator.filter(|_| !is_dbref_key(key)) {
            return match name {
                // MongoDB's `$comment` annotates a query and selects nothing: always true.
                "comment" if key.starts_with('$') => Expr::always(),
                "and" | "or" | "nor" => {
                    let exprs = self.logical_array(key, value, place, depth, st);
                    match name {
                        "and" => Expr::All(exprs),
                        "or" => Expr::Any(exprs),
                        _ => Expr::None(exprs),
                    }
                }
                "not" if st == Structure::Rule => {
                    if let Kind::Array(_) = value.kind() {
                        self.error(
                            "invalid-expression",
                            place,
                            format!("`{key}` takes one expression, not an array"),
                        );
                        return Expr::Bool(false);
                    }
                    Expr::Not(Box::new(self.expression(value, place, depth, st)))
                }
                _ => {
                    self.misplaced_operator(key, name, place, st);
                    Expr::Bool(false)
                }
            };
        }
        let subject = if st != Structure::Query && expansion::is_expansion(key) {
            if st == Structure::ElemQuery {
                self.error_hint(
                    "invalid-expression",
                    place,
                    format!("`{key}` cannot be a key inside `$elemMatch`"),
                    Some(
                        "the keys of an `$elemMatch` query are field names of the array element"
                            .into(),
                    ),
                );
                return Expr::Bool(false);
            }
            match expansion::parse_expansion(key) {
                Ok(e) => {
                    let span = 0..2 + e.root.name().len();
                    self.check_expansion(&e, &place.with_span(span));
                    e
                }
                Err(err) => {
                    self.report_expansion_error(err, place);
                    return Expr::Bool(false);
                }
            }
        } else {
            let parsed = match st {
                Structure::Rule => expansion::parse_subject(key, self.dialect.implicit_root()),
                // A query's keys are field names, `%%` or not (MongoDB expands nothing): a
                // client query key `%%values.apiKey` must never read the request's context.
                Structure::Query | Structure::ElemQuery => {
                    expansion::parse_field_path(key).map(|path| Expansion {
                        root: Root::Root,
                        path,
                        implicit: true,
                    })
                }
            };
            match parsed {
                Ok(e) => {
                    if st == Structure::Rule {
                        self.check_expansion(&e, place);
                    }
                    e
                }
                Err(err) => {
                    self.report_expansion_error(err, place);
                    return Expr::Bool(false);
                }
            }
        };
        let predicate = self.predicate(value, place, depth);
        Expr::Test { subject, predicate }
    }

    /// The non-empty array of a document-level `$and`/`$or`/`$nor`.
    fn logical_array(
        &mut self,
        key: &str,
        value: Node<'_>,
        place: &Place,
        depth: usize,
        st: Structure,
    ) -> Vec<Expr> {
        if self.too_deep(depth, place) {
            return Vec::new();
        }
        match value.kind() {
            Kind::Array(items) if !items.is_empty() => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| self.expression(item, &place.index(i), depth + 1, st))
                .collect(),
            _ => {
                self.error(
                    "invalid-expression",
                    place,
                    format!(
                        "`{key}` needs a non-empty array of expressions, found {}",
                        describe(value)
                    ),
                );
                vec![Expr::Bool(false)]
            }
        }
    }

    /// An operator key where a clause was expected.
    fn misplaced_operator(&mut self, key: &str, name: &str, place: &Place, st: Structure) {
        if name == "not" {
            self.error_hint(
                "invalid-expression",
                place,
                format!("`{key}` cannot be used at the top level of a query"),
                Some("use `$nor`, or put `$not` under a field: {\"a\": {\"$not\": {...}}}".into()),
            );
        } else if FIELD_OPS.contains(&name) {
            self.error_hint(
                "invalid-expression",
                place,
                format!("operator `{key}` needs a subject"),
                Some(format!(
                    "write {{\"<field or expansion>\": {{\"{key}\": ...}}}}"
                )),
            );
        } else if key.starts_with('%') && VALUE_OPS.contains(&name) && st != Structure::Query {
            self.error_hint(
                "invalid-expression",
                place,
                format!("`{key}` cannot be a clause on its own"),
                Some(format!(
                    "compare its result with a subject: {{\"%%true\": {{\"{key}\": ...}}}}"
                )),
            );
        } else {
            self.unknown_operator(key, name, place);
        }
    }

    /// Reports an operator that is not supported (`$text`, geo) or not known (with a hint).
    fn unknown_operator(&mut self, key: &str, name: &str, place: &Place) {
        if UNSUPPORTED_OPS.contains(&name) {
            let what = match self.mode {
                Mode::Expr => "in rule expressions",
                Mode::Query => "by rolegate in queries",
            };
            self.error(
                "unsupported-operator",
                place,
                format!("operator `{key}` is not supported {what}"),
            );
            return;
        }
        let mut candidates: Vec<String> = Vec::new();
        let prefixes: &[&str] = match self.mode {
            Mode::Expr => &["$", "%"],
            Mode::Query => &["$"],
        };
        for p in prefixes {
            candidates.extend(FIELD_OPS.iter().map(|o| format!("{p}{o}")));
        }
        if self.mode == Mode::Expr {
            candidates.extend(VALUE_OPS.iter().map(|o| format!("%{o}")));
        }
        let refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
        let hint = did_you_mean(key, &refs).map(|c| format!("did you mean `{c}`?"));
        self.error_hint(
            "unknown-operator",
            place,
            format!("unknown operator `{key}`"),
            hint,
        );
    }

    // -- site checks ----------------------------------------------------------------------------

    /// Checks that the site may use `e`; `place` already carries the span of the root name for
    /// explicit expansions.
    fn check_expansion(&mut self, e: &Expansion, place: &Place) {
        if self.site.allows(e.root, e.implicit) {
            return;
        }
        let document_like = matches!(
            e.root,
            Root::Root | Root::PrevRoot | Root::This | Root::Prev
        );
        let message = match self.site {
            Site::FilterApplyWhen if document_like => {
                "filter apply_when cannot use document expansions (%%root, %%prevRoot, %%this, %%prev)"
                    .to_string()
            }
            Site::SyncApplyWhen if document_like => {
                "apply_when cannot reference the document in Sync".to_string()
            }
            _ => format!("do not know how to expand '%%{}'", e.root.name()),
        };
        let hint = if e.implicit {
            let path = e.path.join(".");
            Some(format!(
                "the bare field name `{path}` stands for `%%{}.{path}`",
                e.root.name()
            ))
        } else {
            match e.root {
                Root::Partition => {
                    Some("`%%partition` is only available in Partition-Based Sync permissions")
                }
                Root::Args => Some("`%%args` is only available in service rules and `can_evaluate`"),
                Root::This | Root::Prev => Some(
                    "`%%this` and `%%prev` are only available in field-level rules and schema `validate`",
                ),
                Root::Request
                    if matches!(
                        self.site,
                        Site::SyncApplyWhen | Site::SyncRule | Site::PartitionPermission
                    ) =>
                {
                    Some("`%%request` is not available in Device Sync")
                }
                Root::Root | Root::PrevRoot if self.site == Site::SyncRule => Some(
                    "Sync document filters refer to the document with bare queryable field names",
                ),
                Root::Root | Root::PrevRoot => Some("there is no document at this point"),
                _ => None,
            }
            .map(str::to_string)
        };
        self.error_hint("expansion-not-allowed", place, message, hint);
    }

    // -- predicates and operators ---------------------------------------------------------------

    /// The value of a subject key (or an element of an operator-level `$and`).
    fn predicate(&mut self, node: Node<'_>, place: &Place, depth: usize) -> Predicate {
        if self.too_deep(depth, place) {
            return never();
        }
        if let Kind::Object(entries) = node.kind()
            && !entries.is_empty()
            && node.ejson().is_none()
        {
            if let [(key, value)] = entries.as_slice()
                && self.mode == Mode::Expr
                && is_value_op(key)
            {
                return Predicate::Matches(self.value_op(key, *value, place, depth));
            }
            let ops = entries.iter().filter(|(k, _)| self.is_op_key(k)).count();
            if ops == entries.len() {
                let ops = self.ops(entries, place, depth);
                return if ops.is_empty() {
                    never()
                } else {
                    Predicate::Ops(ops)
                };
            }
            if ops > 0 {
                let op = entries
                    .iter()
                    .find(|(k, _)| self.is_op_key(k))
                    .map_or("", |(k, _)| *k);
                let field = entries
                    .iter()
                    .find(|(k, _)| !self.is_op_key(k))
                    .map_or("", |(k, _)| *k);
                self.error_hint(
                        "invalid-expression",
                        place,
                        format!(
                            "an object cannot mix operators (`{op}`) and field names (`{field}`)"
                        ),
                        Some("use only operators to test the subject, or only field names to compare with a document".into()),
                    );
                return never();
            }
        }
        match self.operand(node, place, depth) {
            Operand::Literal(Bson::Undefined) => {
                self.error(
                    "invalid-expression",
                    place,
                    "cannot compare with `undefined` (MongoDB refuses it as a query value)",
                );
                never()
            }
            Operand::Literal(Bson::RegularExpression(r)) => {
                match self.compile_regex(&r.pattern, &r.options, place) {
                    Some(spec) => Predicate::Ops(vec![Op::Regex(Box::new(spec))]),
                    None => never(),
                }
            }
            operand => Predicate::Matches(operand),
        }
    }

    /// The operators of an operator document (every key is an operator key); `place` is the
    /// document's place and `depth` its depth.
    fn ops(&mut self, entries: Vec<(&str, Node<'_>)>, place: &Place, depth: usize) -> Vec<Op> {
        let mut out = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let options = entries
            .iter()
            .find(|(k, _)| op_name(k) == Some("options"))
            .copied();
        let has_regex = entries.iter().any(|(k, _)| op_name(k) == Some("regex"));
        for (key, value) in entries.iter().copied() {
            let p = place.key(key);
            let d = depth + 1;
            let Some(name) = op_name(key) else {
                continue;
            };
            if FIELD_OPS.contains(&name) {
                if seen.contains(&name) {
                    self.error(
                        "duplicate-operator",
                        &p,
                        format!("operator `{key}` is given twice in one object"),
                    );
                    continue;
                }
                seen.push(name);
            }
            if self.too_deep(d, &p) {
                continue;
            }
            let op = match name {
                "eq" | "ne" | "gt" | "gte" | "lt" | "lte" => {
                    let cmp = match name {
                        "eq" => CmpOp::Eq,
                        "ne" => CmpOp::Ne,
                        "gt" => CmpOp::Gt,
                        "gte" => CmpOp::Gte,
                        "lt" => CmpOp::Lt,
                        _ => CmpOp::Lte,
                    };
                    let o = self.operand(value, &p, d);
                    self.check_comparison_operand(key, cmp, &o, &p);
                    Some(Op::Cmp(cmp, o))
                }
                "all" if self.is_elem_match_list(value) => self.all_elem_match(key, value, &p, d),
                "in" | "nin" | "all" => {
                    let o = self.operand(value, &p, d);
                    self.check_list_members(key, name, &o, &p);
                    let array_like = matches!(
                        o,
                        Operand::Literal(Bson::Array(_))
                            | Operand::Array(_)
                            | Operand::Expansion(_)
                            | Operand::Function { .. }
                    );
                    if !array_like {
                        self.error(
                            "invalid-expression",
                            &p,
                            format!(
                                "`{key}` needs an array (or an expansion or `%function` that gives one), found {}",
                                describe(value)
                            ),
                        );
                    }
                    Some(match name {
                        "in" => Op::In(o),
                        "nin" => Op::Nin(o),
                        _ => Op::AllOf(o),
                    })
                }
                "exists" => {
                    let o = self.operand(value, &p, d);
                    let ok = matches!(
                        o,
                        Operand::Literal(
                            Bson::Boolean(_)
                                | Bson::Int32(_)
                                | Bson::Int64(_)
                                | Bson::Double(_)
                                | Bson::Decimal128(_)
                        ) | Operand::Expansion(_)
                    );
                    if !ok {
                        self.error(
                            "invalid-expression",
                            &p,
                            format!(
                                "`{key}` needs `true` or `false` (or an expansion), found {}",
                                describe(value)
                            ),
                        );
                    }
                    Some(Op::Exists(o))
                }
                "and" | "or" | "nor" => {
                    let preds = match value.kind() {
                        Kind::Array(items) if !items.is_empty() => items
                            .into_iter()
                            .enumerate()
                            .map(|(i, item)| self.predicate(item, &p.index(i), d + 1))
                            .collect(),
                        _ => {
                            self.error(
                                "invalid-expression",
                                &p,
                                format!(
                                    "`{key}` needs a non-empty array of operator documents, found {}",
                                    describe(value)
                                ),
                            );
                            vec![never()]
                        }
                    };
                    Some(match name {
                        "and" => Op::All(preds),
                        "or" => Op::Any(preds),
                        _ => Op::None(preds),
                    })
                }
                "not" => {
                    let pred = self.predicate(value, &p, d);
                    if let Predicate::Matches(_) = pred {
                        self.error(
                            "invalid-expression",
                            &p,
                            format!(
                                "`{key}` needs an operator document or a regular expression, found {}",
                                describe(value)
                            ),
                        );
                    }
                    Some(Op::Not(Box::new(pred)))
                }
                "size" => {
                    let o = self.operand(value, &p, d);
                    let ok = match &o {
                        Operand::Expansion(_) => true,
                        Operand::Literal(b) => whole_number(b).is_some_and(|n| n >= 0),
                        _ => false,
                    };
                    if !ok {
                        self.error(
                            "invalid-expression",
                            &p,
                            format!(
                                "`{key}` needs a non-negative whole number (or an expansion), found {}",
                                describe(value)
                            ),
                        );
                    }
                    Some(Op::Size(o))
                }
                "elemMatch" => Some(Op::ElemMatch(Box::new(self.elem_match(key, value, &p, d)))),
                "type" => self.type_specs(key, value, &p, d).map(Op::Type),
                "regex" => self
                    .regex_op(key, value, options, &p, place)
                    .map(|r| Op::Regex(Box::new(r))),
                "options" => {
                    if !has_regex {
                        self.error(
                            "invalid-expression",
                            &p,
                            format!("`{key}` needs `$regex` in the same object"),
                        );
                    }
                    None
                }
                "mod" => self.modulo(key, value, &p),
                "bitsAllSet" | "bitsAnySet" | "bitsAllClear" | "bitsAnyClear" => {
                    let test = match name {
                        "bitsAllSet" => BitTest::AllSet,
                        "bitsAnySet" => BitTest::AnySet,
                        "bitsAllClear" => BitTest::AllClear,
                        _ => BitTest::AnyClear,
                    };
                    self.bit_positions(key, value, &p)
                        .map(|positions| Op::Bits { test, positions })
                }
                _ if self.mode == Mode::Expr
                    && key.starts_with('%')
                    && VALUE_OPS.contains(&name) =>
                {
                    self.error_hint(
                        "invalid-expression",
                        &p,
                        format!("value operator `{key}` must be the only key of its object"),
                        Some(format!("write {{\"<subject>\": {{\"{key}\": ...}}}}")),
                    );
                    None
                }
                _ => {
                    self.unknown_operator(key, name, &p);
                    None
                }
            };
            out.extend(op);
        }
        out
    }

    /// MongoDB refuses a regular expression as the operand of an ordering comparison or `$ne`
    /// (only `$eq` compares it as a value), and `undefined` as any comparison's operand.
    fn check_comparison_operand(&mut self, key: &str, cmp: CmpOp, o: &Operand, place: &Place) {
        match o {
            Operand::Literal(Bson::RegularExpression(_)) if cmp != CmpOp::Eq => self.error_hint(
                "invalid-expression",
                place,
                format!("`{key}` cannot take a regular expression"),
                Some("use `$regex` (or `$not` with a regular expression) to match strings".into()),
            ),
            Operand::Literal(Bson::Undefined) => self.error(
                "invalid-expression",
                place,
                format!("`{key}` cannot compare with `undefined`"),
            ),
            _ => {}
        }
    }

    /// MongoDB refuses operator objects as members of `$in`/`$nin` (`[{"$gt": 1}]` is not a
    /// condition) and `$elemMatch` members of `$all` after a plain value.
    fn check_list_members(&mut self, key: &str, name: &str, o: &Operand, place: &Place) {
        let members: Vec<(usize, &Bson)> = match o {
            Operand::Literal(Bson::Array(items)) => items.iter().enumerate().collect(),
            Operand::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Operand::Literal(b) => Some((i, b)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for (i, member) in members {
            if let (Bson::Undefined, true) = (member, name != "all") {
                self.error(
                    "invalid-expression",
                    &place.index(i),
                    format!("`{key}` cannot hold `undefined`"),
                );
                return;
            }
            let Bson::Document(d) = member else {
                continue;
            };
            let Some(first) = d
                .keys()
                .next()
                .filter(|k| k.starts_with('$') && !is_dbref_key(k))
            else {
                continue;
            };
            let message = if name == "all" {
                format!(
                    "`{key}` mixes `{first}` conditions with plain values: every element must be a condition, or none"
                )
            } else {
                format!(
                    "`{key}` cannot hold operator objects such as `{first}`: its elements are values"
                )
            };
            self.error("invalid-expression", &place.index(i), message);
            return;
        }
    }

    /// True when `value` is an array whose first element is an `{"$elemMatch": ..}` object:
    /// `$all` then lists element conditions, not values.
    fn is_elem_match_list(&self, value: Node<'_>) -> bool {
        let Kind::Array(items) = value.kind() else {
            return false;
        };
        items.first().is_some_and(|first| match first.kind() {
            Kind::Object(entries) => {
                matches!(entries.first(), Some((k, _)) if op_name(k) == Some("elemMatch"))
            }
            _ => false,
        })
    }

    /// `$all: [{"$elemMatch": ..}, ...]`: every condition holds for some element (each its
    /// own). MongoDB refuses a list that mixes them with values.
    fn all_elem_match(
        &mut self,
        key: &str,
        value: Node<'_>,
        place: &Place,
        depth: usize,
    ) -> Option<Op> {
        let Kind::Array(items) = value.kind() else {
            return None;
        };
        let mut preds = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let p = place.index(i);
            let body = match item.kind() {
                Kind::Object(entries) => match entries.as_slice() {
                    [(k, body)] if op_name(k) == Some("elemMatch") => Some((*k, *body)),
                    _ => None,
                },
                _ => None,
            };
            let Some((k, body)) = body else {
                self.error(
                    "invalid-expression",
                    &p,
                    format!(
                        "`{key}` mixes `$elemMatch` conditions with other values: every element must be `{{\"$elemMatch\": ...}}`"
                    ),
                );
                return None;
            };
            if self.too_deep(depth + 2, &p) {
                return None;
            }
            let em = self.elem_match(k, body, &p.key(k), depth + 2);
            preds.push(Predicate::Ops(vec![Op::ElemMatch(Box::new(em))]));
        }
        Some(Op::All(preds))
    }

    /// The bit positions of a bitwise operator's operand: a non-negative integral number (its
    /// set bits), binary data (its set bits, byte by byte, low bit first) or an array of
    /// non-negative integral positions.
    fn bit_positions(&mut self, key: &str, value: Node<'_>, place: &Place) -> Option<Vec<u32>> {
        let mut positions: Vec<u32> = Vec::new();
        let bad = |what: String| format!("`{key}` {what}");
        match value.kind() {
            Kind::Scalar(Bson::Binary(bin)) => {
                for (i, byte) in bin.bytes.iter().enumerate() {
                    for bit in 0..8u32 {
                        if byte & (1 << bit) != 0 {
                            let Some(p) = u32::try_from(i)
                                .ok()
                                .and_then(|i| i.checked_mul(8))
                                .and_then(|b| b.checked_add(bit))
                            else {
                                self.error(
                                    "invalid-expression",
                                    place,
                                    bad("has too many bits".into()),
                                );
                                return None;
                            };
                            positions.push(p);
                        }
                    }
                }
            }
            Kind::Scalar(b) if crate::value::compare::is_number(&b) => match whole_number(&b) {
                Some(mask) if mask >= 0 => {
                    positions.extend((0..63u32).filter(|bit| mask & (1i64 << bit) != 0));
                }
                _ => {
                    self.error(
                        "invalid-expression",
                        place,
                        bad(format!(
                            "needs a non-negative whole-number bit mask, found {}",
                            describe(value)
                        )),
                    );
                    return None;
                }
            },
            Kind::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    let p = match item.kind() {
                        Kind::Scalar(b) => whole_number(&b).and_then(|n| u32::try_from(n).ok()),
                        _ => None,
                    };
                    let Some(p) = p.filter(|p| i32::try_from(*p).is_ok()) else {
                        self.error(
                            "invalid-expression",
                            &place.index(i),
                            bad(format!(
                                "bit positions must be non-negative whole numbers, found {}",
                                describe(item)
                            )),
                        );
                        return None;
                    };
                    positions.push(p);
                }
            }
            _ => {
                self.error(
                    "invalid-expression",
                    place,
                    bad(format!(
                        "needs a bit mask (a number or binary data) or an array of bit positions, found {}",
                        describe(value)
                    )),
                );
                return None;
            }
        }
        positions.sort_unstable();
        positions.dedup();
        Some(positions)
    }

    /// The body of `$elemMatch`; `depth` is the body's depth.
    fn elem_match(&mut self, key: &str, value: Node<'_>, place: &Place, depth: usize) -> ElemMatch {
        let Kind::Object(entries) = value.kind() else {
            self.error(
                "invalid-expression",
                place,
                format!("`{key}` needs an object, found {}", describe(value)),
            );
            return ElemMatch::Ops(vec![Op::In(Operand::Literal(Bson::Array(Vec::new())))]);
        };
        let operators_only = !entries.is_empty()
            && entries.iter().all(|(k, _)| {
                self.is_op_key(k) && !matches!(op_name(k), Some("and" | "or" | "nor"))
            });
        if operators_only {
            ElemMatch::Ops(self.ops(entries, place, depth))
        } else {
            let st = match self.mode {
                Mode::Expr => Structure::ElemQuery,
                Mode::Query => Structure::Query,
            };
            ElemMatch::Query(self.document(entries, place, depth, st))
        }
    }

    /// `$type`: an alias, a numeric code, or a non-empty array of them.
    fn type_specs(
        &mut self,
        key: &str,
        value: Node<'_>,
        place: &Place,
        depth: usize,
    ) -> Option<Vec<TypeSpec>> {
        match value.kind() {
            Kind::Array(items) if !items.is_empty() => {
                let mut specs = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    let p = place.index(i);
                    if self.too_deep(depth + 1, &p) {
                        return None;
                    }
                    specs.push(self.type_spec(key, item, &p)?);
                }
                Some(specs)
            }
            Kind::Array(_) => {
                self.error(
                    "invalid-expression",
                    place,
                    format!("`{key}` needs at least one type"),
                );
                None
            }
            _ => self.type_spec(key, value, place).map(|t| vec![t]),
        }
    }

    fn type_spec(&mut self, key: &str, value: Node<'_>, place: &Place) -> Option<TypeSpec> {
        match value.kind() {
            Kind::Str("number") => Some(TypeSpec::Number),
            Kind::Str(s) => {
                if let Some((_, t)) = TYPE_ALIASES.iter().find(|(n, _)| *n == s) {
                    return Some(TypeSpec::Exact(*t));
                }
                let mut names: Vec<&str> = TYPE_ALIASES.iter().map(|(n, _)| *n).collect();
                names.push("number");
                let hint = if self.mode == Mode::Expr && expansion::is_expansion(s) {
                    Some(format!("`{key}` takes literal type names, not expansions"))
                } else {
                    did_you_mean(s, &names).map(|n| format!("did you mean `{n}`?"))
                };
                self.error_hint(
                    "invalid-expression",
                    place,
                    format!("unknown BSON type `{s}` in `{key}`"),
                    hint,
                );
                None
            }
            Kind::Scalar(b) => {
                let t = whole_number(&b).and_then(|code| match code {
                    -1 => Some(ElementType::MinKey),
                    127 => Some(ElementType::MaxKey),
                    0x01..=0x13 => u8::try_from(code).ok().and_then(ElementType::from),
                    _ => None,
                });
                if t.is_none() {
                    self.error(
                        "invalid-expression",
                        place,
                        format!("invalid BSON type code {b} in `{key}`"),
                    );
                }
                t.map(TypeSpec::Exact)
            }
            _ => {
                self.error(
                    "invalid-expression",
                    place,
                    format!(
                        "`{key}` needs a type name, a type code or an array of them, found {}",
                        describe(value)
                    ),
                );
                None
            }
        }
    }

    /// `$regex` (with the `$options` of the same object, if any).
    fn regex_op(
        &mut self,
        key: &str,
        value: Node<'_>,
        options: Option<(&str, Node<'_>)>,
        place: &Place,
        object_place: &Place,
    ) -> Option<RegexSpec> {
        let (pattern, mut opts) = match value.kind() {
            Kind::Str(s) if !(self.mode == Mode::Expr && expansion::is_expansion(s)) => {
                (s.to_string(), String::new())
            }
            Kind::Scalar(Bson::RegularExpression(r)) => (r.pattern, r.options),
            Kind::Object(_) if value.ejson().is_some() => match self.ejson(value, place, 0) {
                Bson::RegularExpression(r) => (r.pattern, r.options),
                _ => {
                    self.error(
                        "invalid-expression",
                        place,
                        format!("`{key}` needs a pattern string"),
                    );
                    return None;
                }
            },
            _ => {
                self.error(
                    "invalid-expression",
                    place,
                    format!(
                        "`{key}` needs a literal pattern string, found {}",
                        describe(value)
                    ),
                );
                return None;
            }
        };
        if let Some((okey, onode)) = options {
            let oplace = object_place.key(okey);
            match onode.kind() {
                Kind::Str(o) if opts.is_empty() => opts = o.to_string(),
                Kind::Str(_) => {
                    self.error(
                        "invalid-expression",
                        &oplace,
                        format!("options are given both in the regular expression and in `{okey}`"),
                    );
                    return None;
                }
                _ => {
                    self.error(
                        "invalid-expression",
                        &oplace,
                        format!(
                            "`{okey}` needs a string of flags, found {}",
                            describe(onode)
                        ),
                    );
                    return None;
                }
            }
        }
        self.compile_regex(&pattern, &opts, place)
    }

    /// Compiles a MongoDB regex on the linear-time engine with PCRE2's answers in MongoDB's
    /// configuration ([`crate::value::regex`]); an unknown option, an invalid pattern or one
    /// the engine cannot run (e.g. a backreference) is an `invalid-regex` error with a hint.
    fn compile_regex(&mut self, pattern: &str, options: &str, place: &Place) -> Option<RegexSpec> {
        match crate::value::regex::compile(pattern, options) {
            Ok(regex) => Some(RegexSpec {
                pattern: pattern.to_string(),
                options: options.to_string(),
                regex,
            }),
            Err(e) => {
                let hint = e.hint.clone().or_else(|| {
                    Some(
                        "patterns follow MongoDB's (PCRE2) syntax and run on a linear-time \
                         engine"
                            .into(),
                    )
                });
                self.error_hint(
                    "invalid-regex",
                    place,
                    format!("invalid regular expression `{pattern}`: {}", e.message),
                    hint,
                );
                None
            }
        }
    }

    /// `$mod: [divisor, remainder]`.
    fn modulo(&mut self, key: &str, value: Node<'_>, place: &Place) -> Option<Op> {
        let nums: Option<Vec<i64>> = match value.kind() {
            Kind::Array(items) if items.len() == 2 => items
                .into_iter()
                .map(|n| match n.kind() {
                    Kind::Scalar(b) => truncated(&b),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        match nums.as_deref() {
            Some([0, _]) => {
                self.error(
                    "invalid-expression",
                    place,
                    format!("`{key}` divisor cannot be 0"),
                );
                None
            }
            Some([divisor, remainder]) => Some(Op::Mod {
                divisor: *divisor,
                remainder: *remainder,
            }),
            _ => {
                self.error(
                    "invalid-expression",
                    place,
                    format!(
                        "`{key}` needs an array of two numbers [divisor, remainder], found {}",
                        describe(value)
                    ),
                );
                None
            }
        }
    }

    // -- operands -------------------------------------------------------------------------------

    /// A value position.
    fn operand(&mut self, node: Node<'_>, place: &Place, depth: usize) -> Operand {
        if self.too_deep(depth, place) {
            return null();
        }
        match node.kind() {
            Kind::Bool(b) => Operand::Literal(Bson::Boolean(b)),
            Kind::Scalar(b) => Operand::Literal(b),
            Kind::Str(s) if self.mode == Mode::Expr && expansion::is_expansion(s) => {
                match expansion::parse_expansion(s) {
                    Ok(e) => {
                        let span = 0..2 + e.root.name().len();
                        self.check_expansion(&e, &place.with_span(span));
                        Operand::Expansion(e)
                    }
                    Err(err) => {
                        self.report_expansion_error(err, place);
                        null()
                    }
                }
            }
            Kind::Str(s) => Operand::Literal(Bson::String(s.to_string())),
            Kind::Array(items) => {
                let items: Vec<Operand> = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| self.operand(item, &place.index(i), depth + 1))
                    .collect();
                fold_array(items)
            }
            Kind::Object(entries) => {
                if node.ejson().is_some() {
                    return Operand::Literal(self.ejson(node, place, depth));
                }
                if self.mode == Mode::Expr {
                    if let Some((key, value)) = entries.iter().find(|(k, _)| is_value_op(k)) {
                        if entries.len() != 1 {
                            self.error(
                                "invalid-expression",
                                &place.key(key),
                                format!(
                                    "value operator `{key}` must be the only key of its object"
                                ),
                            );
                            return null();
                        }
                        return self.value_op(key, *value, place, depth);
                    }
                    if let Some((key, _)) = entries.iter().find(|(k, _)| is_percent_op(k)) {
                        let name = percent_op_name(key).unwrap_or("");
                        let mut names: Vec<String> =
                            VALUE_OPS.iter().map(|o| format!("%{o}")).collect();
                        names.extend(FIELD_OPS.iter().map(|o| format!("%{o}")));
                        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                        let hint = if FIELD_OPS.contains(&name) {
                            Some(format!(
                                "`{key}` tests a subject; it cannot be used as a value here"
                            ))
                        } else {
                            did_you_mean(key, &refs).map(|c| format!("did you mean `{c}`?"))
                        };
                        self.error_hint(
                            "unknown-operator",
                            &place.key(key),
                            format!("unknown value operator `{key}`"),
                            hint,
                        );
                        return null();
                    }
                }
                let members: Vec<(String, Operand)> = entries
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), self.operand(v, &place.key(k), depth + 1)))
                    .collect();
                fold_document(members)
            }
        }
    }

    /// Converts an Extended JSON object (`{"$oid": ..}`) to BSON.
    fn ejson(&mut self, node: Node<'_>, place: &Place, depth: usize) -> Bson {
        let Some(value) = node.ejson() else {
            return Bson::Null;
        };
        if json_deeper_than(value, MAX_EXPR_DEPTH.saturating_sub(depth)) {
            self.too_deep(MAX_EXPR_DEPTH + 1, place);
            return Bson::Null;
        }
        match Bson::try_from(value.clone()) {
            Ok(b) => b,
            Err(e) => {
                self.error(
                    "invalid-literal",
                    place,
                    format!("invalid Extended JSON value: {e}"),
                );
                Bson::Null
            }
        }
    }

    /// `{"%function": ..}`, `{"%stringToOid": ..}`, ...; `place` is the object's place.
    fn value_op(&mut self, key: &str, value: Node<'_>, place: &Place, depth: usize) -> Operand {
        let p = place.key(key);
        let d = depth + 1;
        if self.too_deep(d, &p) {
            return null();
        }
        match percent_op_name(key).unwrap_or("") {
            "function" => self.function(key, value, &p, d),
            name => {
                let arg = self.operand(value, &p, d);
                let ok = match &arg {
                    Operand::Expansion(_) => true,
                    Operand::Literal(b) => self.check_conversion_literal(key, name, b, &p),
                    _ => {
                        self.error_hint(
                            "invalid-expression",
                            &p,
                            format!("`{key}` takes a literal or an expansion"),
                            Some(
                                "value operators do not evaluate other operators or containers"
                                    .into(),
                            ),
                        );
                        false
                    }
                };
                if !ok {
                    return null();
                }
                let arg = Box::new(arg);
                match name {
                    "stringToOid" => Operand::StringToOid(arg),
                    "oidToString" => Operand::OidToString(arg),
                    "stringToUuid" => Operand::StringToUuid(arg),
                    _ => Operand::UuidToString(arg),
                }
            }
        }
    }

    /// Whether a literal argument of a conversion operator can ever convert (spec D3: the
    /// target type is passed through unchanged).
    fn check_conversion_literal(&mut self, key: &str, name: &str, b: &Bson, place: &Place) -> bool {
        let problem = match (name, b) {
            ("stringToOid", Bson::String(s)) => {
                (s.len() != 12 && bson::oid::ObjectId::parse_str(s).is_err()).then(|| {
                    format!("`{key}` argument `{s}` is not a 24-character hex string or 12 bytes")
                })
            }
            ("stringToUuid", Bson::String(s)) => (s.len() != 36
                || bson::Uuid::parse_str(s).is_err())
            .then(|| format!("`{key}` argument `{s}` is not a 36-character UUID string")),
            ("stringToOid" | "oidToString", Bson::ObjectId(_)) => None,
            ("oidToString" | "uuidToString", Bson::String(_)) => None,
            ("stringToUuid" | "uuidToString", Bson::Binary(bin))
                if bin.subtype == bson::spec::BinarySubtype::Uuid =>
            {
                None
            }
            _ => Some(format!("`{key}` cannot convert {}", describe_bson(b))),
        };
        match problem {
            Some(message) => {
                self.error("invalid-literal", place, message);
                false
            }
            None => true,
        }
    }

    /// `{"%function": {"name": <string>, "arguments": [..]}}`; `place` is the `%function` member.
    fn function(&mut self, key: &str, value: Node<'_>, place: &Place, depth: usize) -> Operand {
        if !self.site.allows_functions() {
            self.error(
                "function-not-allowed",
                place,
                "%function is not allowed in Sync document filters",
            );
        }
        let Kind::Object(entries) = value.kind() else {
            self.error(
                "invalid-expression",
                place,
                format!(
                    "`{key}` needs an object {{\"name\": ..., \"arguments\": [...]}}, found {}",
                    describe(value)
                ),
            );
            return null();
        };
        let mut name: Option<String> = None;
        let name_given = entries.iter().any(|(k, _)| *k == "name");
        let mut arguments = Vec::new();
        for (k, v) in entries {
            let p = place.key(k);
            match k {
                "name" => match v.kind() {
                    Kind::Str(s) if !s.is_empty() => name = Some(s.to_string()),
                    _ => self.error(
                        "invalid-expression",
                        &p,
                        format!(
                            "the function name must be a non-empty string, found {}",
                            describe(v)
                        ),
                    ),
                },
                "arguments" => match v.kind() {
                    Kind::Array(items) => {
                        if self.too_deep(depth + 1, &p) {
                            return null();
                        }
                        arguments = items
                            .into_iter()
                            .enumerate()
                            .map(|(i, item)| self.operand(item, &p.index(i), depth + 2))
                            .collect();
                    }
                    _ => self.error(
                        "invalid-expression",
                        &p,
                        format!("`arguments` must be an array, found {}", describe(v)),
                    ),
                },
                other => {
                    let hint = did_you_mean(other, &["name", "arguments"])
                        .map(|c| format!("did you mean `{c}`?"))
                        .or_else(|| Some("`%function` takes `name` and `arguments`".into()));
                    self.error_hint(
                        "invalid-expression",
                        &p,
                        format!("unknown key `{other}` in `{key}`"),
                        hint,
                    );
                }
            }
        }
        match name {
            Some(name) => Operand::Function { name, arguments },
            None => {
                if !name_given {
                    self.error(
                        "invalid-expression",
                        place,
                        format!("`{key}` needs a `name`"),
                    );
                }
                null()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// `%x` but not `%%x`.
/// The keys of a DBRef (`{"$ref": "coll", "$id": .., "$db": ..}`): MongoDB reads them as field
/// names, in queries and in the documents they are compared with, not as operators.
fn is_dbref_key(key: &str) -> bool {
    matches!(key, "$ref" | "$id" | "$db")
}

fn is_percent_op(key: &str) -> bool {
    key.starts_with('%') && !key.starts_with("%%")
}

fn percent_op_name(key: &str) -> Option<&str> {
    if is_percent_op(key) {
        key.strip_prefix('%')
    } else {
        None
    }
}

/// The operator name after a `$` or single `%` prefix.
fn op_name(key: &str) -> Option<&str> {
    key.strip_prefix('$').or_else(|| percent_op_name(key))
}

fn is_value_op(key: &str) -> bool {
    percent_op_name(key).is_some_and(|n| VALUE_OPS.contains(&n))
}

fn fold_array(items: Vec<Operand>) -> Operand {
    if items.iter().all(|o| matches!(o, Operand::Literal(_))) {
        Operand::Literal(Bson::Array(
            items
                .into_iter()
                .filter_map(|o| match o {
                    Operand::Literal(b) => Some(b),
                    _ => None,
                })
                .collect(),
        ))
    } else {
        Operand::Array(items)
    }
}

fn fold_document(members: Vec<(String, Operand)>) -> Operand {
    if members
        .iter()
        .all(|(_, o)| matches!(o, Operand::Literal(_)))
    {
        let mut doc = Document::new();
        for (k, o) in members {
            if let Operand::Literal(b) = o {
                doc.insert(k, b);
            }
        }
        Operand::Literal(Bson::Document(doc))
    } else {
        Operand::Document(members)
    }
}

/// A whole number (int32, int64, or a double or decimal without fraction).
fn whole_number(b: &Bson) -> Option<i64> {
    match b {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18 => {
            // INVARIANT: |f| < 2^63 and no fraction, so the cast is exact.
            Some(*f as i64)
        }
        Bson::Decimal128(d) => {
            let text = d.to_string();
            match text.parse::<i64>() {
                Ok(i) => Some(i),
                Err(_) => whole_number(&Bson::Double(text.parse::<f64>().ok()?)),
            }
        }
        _ => None,
    }
}

/// A number truncated toward zero, as MongoDB's `$mod` does.
fn truncated(b: &Bson) -> Option<i64> {
    match b {
        Bson::Double(f) if f.is_finite() && f.abs() < 9.0e18 => {
            whole_number(&Bson::Double(f.trunc()))
        }
        Bson::Decimal128(d) => truncated(&Bson::Double(d.to_string().parse::<f64>().ok()?)),
        other => whole_number(other),
    }
}

/// A short description of an input value for messages (`a string`, `the number 5`).
fn describe(node: Node<'_>) -> String {
    match node.kind() {
        Kind::Bool(b) => format!("`{b}`"),
        Kind::Str(s) => format!("the string `{s}`"),
        Kind::Array(_) => "an array".to_string(),
        Kind::Object(_) => "an object".to_string(),
        Kind::Scalar(b) => describe_bson(&b),
    }
}

fn describe_bson(b: &Bson) -> String {
    match b {
        Bson::Null => "`null`".to_string(),
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            format!("the number {b}")
        }
        Bson::String(s) => format!("the string `{s}`"),
        Bson::Boolean(v) => format!("`{v}`"),
        Bson::Array(_) => "an array".to_string(),
        Bson::Document(_) => "an object".to_string(),
        other => format!(
            "a value of BSON type `{}`",
            crate::expr::display::type_name(TypeSpec::Exact(other.element_type()))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> (Expr, Diagnostics) {
        let mut d = Diagnostics::default();
        let e = parse_expr(
            &v,
            Dialect::MongoDb,
            Site::Any,
            &Place::file("t.json"),
            &mut d,
        );
        (e, d)
    }

    fn ok(v: serde_json::Value) -> Expr {
        let (e, d) = parse(v);
        assert!(!d.has_errors(), "{d:?}");
        e
    }

    fn codes(v: serde_json::Value) -> Vec<&'static str> {
        parse(v).1.errors().map(|d| d.code).collect()
    }

    fn field(path: &str) -> Expansion {
        Expansion {
            root: Root::Root,
            path: path.split('.').map(str::to_string).collect(),
            implicit: true,
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(ok(json!(true)), Expr::Bool(true));
        assert_eq!(ok(json!({})), Expr::All(vec![]));
        assert_eq!(
            ok(json!({"a": 1})),
            Expr::Test {
                subject: field("a"),
                predicate: Predicate::Matches(Operand::Literal(Bson::Int32(1)))
            }
        );
        assert!(matches!(ok(json!({"a": 1, "b": 2})), Expr::All(v) if v.len() == 2));
        assert!(matches!(ok(json!({"$and": [{"a": 1}]})), Expr::All(v) if v.len() == 1));
    }

    #[test]
    fn depth_cap() {
        let mut v = json!(true);
        for _ in 0..(MAX_EXPR_DEPTH * 2) {
            v = json!({"$not": v});
        }
        assert_eq!(codes(v), vec!["expression-too-deep"]);
        let mut v = json!(1);
        for _ in 0..(MAX_EXPR_DEPTH * 2) {
            v = json!([v]);
        }
        assert_eq!(codes(json!({"a": v})), vec!["expression-too-deep"]);
    }

    #[test]
    fn json_depth_helper() {
        assert!(!json_deeper_than(&json!(1), 0));
        assert!(json_deeper_than(&json!([1]), 0));
        assert!(!json_deeper_than(&json!([[1]]), 2));
        assert!(json_deeper_than(&json!([[[1]]]), 2));
    }

    #[test]
    fn numbers() {
        assert_eq!(whole_number(&Bson::Double(3.0)), Some(3));
        assert_eq!(whole_number(&Bson::Double(3.5)), None);
        assert_eq!(truncated(&Bson::Double(-3.5)), Some(-3));
        assert_eq!(
            json_number(&serde_json::Number::from(5_000_000_000_i64)),
            Bson::Int64(5_000_000_000)
        );
    }
}
