//! Stage: reference evaluation of one expression. Input: an [`Expr`] and the [`Bindings`] of the
//! moment (request context, `%%root`, `%%prevRoot`, `%%this`, `%%prev`). Output: `Ok(bool)` or an
//! [`EvalError`] (fail closed: callers deny).
//!
//! Written to be obviously correct, not fast: every expansion is looked up and every operand
//! rebuilt each time it is evaluated — but never in more than linear work (finding 11 of
//! issue 9): a literal or expansion operand is borrowed, not copied; a bare `%%root` /
//! `%%prevRoot` (which the bindings hold as documents, not values) is copied at most once per
//! decision when the caller keeps a [`WholeRoots`] in the [`Bindings`]; every copy that
//! remains (operands built from parts, collapsed traversals, `%function` arguments) is charged
//! its size to the step budget ([`crate::steps::copy_steps`]); regexes are compiled through a
//! per-thread cache ([`crate::value::compare::compile_regex_cached`]).
//!
//! # Values
//!
//! * Expansions resolve through [`crate::value::path`]; a path that reaches nothing is
//!   **missing** (not null). `%%root`/`%%prevRoot`/`%%this`/`%%prev` come from the bindings, the
//!   other roots from [`RequestContext::root_value`]; `%%request.requestHeaders.<Name>` is
//!   case-insensitive (U25).
//! * **Operands** are rebuilt with expansions substituted. A missing expansion anywhere inside an
//!   array or document operand makes the **whole operand missing** (it cannot be built, so it
//!   matches nothing; see below for what missing operands do in each operator).
//! * **`%function` arguments** are passed the way JavaScript serializes them: an argument that is
//!   missing is passed as `null`; inside an argument, a missing document value drops its key and a
//!   missing array element becomes `null`. A call that the host fails, that panics or that
//!   takes longer than the request's time budget ([`RequestContext::call_function`]) is
//!   [`EvalError::Function`] (U23: the decision denies).
//! * `%stringToOid`: a 24-hex-digit string (or a string of exactly 12 bytes) → ObjectId, an
//!   ObjectId unchanged (D3). `%oidToString`: ObjectId → 24 lowercase hex digits, a string
//!   unchanged. `%stringToUuid`: a 36-character hyphenated UUID string → binary subtype 4, a
//!   subtype-4 binary unchanged. `%uuidToString`: subtype-4 binary → hyphenated lowercase
//!   string, a string unchanged. Other types are [`EvalError::BadArgument`]; a missing argument
//!   gives a missing result (like the expansion itself would).
//!
//! # Missing and substituted values (issue 9, finding 7)
//!
//! An operand is **literal** when the rule author wrote its value (`Operand::Literal`), and
//! **substituted** otherwise (an expansion, a container holding one, a `%function` result, a
//! conversion of an expansion). The decision, for every operator and both engines:
//!
//! * A substituted operand that resolves to nothing (**missing**) never matches: match, `$eq`,
//!   `$gt`…`$lte`, `$in`, `$all`, `$size` are false — and so are the negated forms `$ne` and
//!   `$nin`, and `$exists` (a test whose value is unknown is neither true nor its negation).
//! * A **missing subject** (the subject expansion, or a bare document field, reaches nothing)
//!   tested against a substituted operand never matches either, negated forms included: a
//!   substituted `null` does not match missing (only a present `null`, or an array holding
//!   one), `$gte`/`$lte` of a substituted `null` do not match missing, and `$ne`/`$nin` are
//!   false. So `{"%%user.custom_data.orgId": "%%root.orgId"}` and its mirror
//!   `{"%%root.orgId": "%%user.custom_data.orgId"}` both match nothing for a user without
//!   `orgId`, whatever the document's `orgId` (null or absent).
//! * A `null` the rule author wrote still matches missing (U22: MongoDB's rule), and `$ne`/`$nin`
//!   with literal operands keep MongoDB's meaning on a missing subject (`{"deleted": {"$ne":
//!   true}}` holds when `deleted` is absent). Only *substituted* values lose the
//!   null-matches-missing rule.
//! * A substituted regular expression is a value, never a pattern (issue 9, finding 4): it
//!   equals only the same stored regex. Only a regex the rule wrote (`$regex`, or a literal regex
//!   operand of match, `$in`, `$all`) matches strings. Inside an array operand that mixes
//!   literals and expansions (`"$in": [null, /^a/, "%%user.x"]`) each element keeps its own
//!   kind.
//! * `%not` and `%nor` stay plain boolean negations of what they wrap: `{"%not": {"orgId":
//!   "%%user.custom_data.orgId"}}` is true when `orgId` is missing from the user. Rules should
//!   test presence explicitly where that matters.
//!
//! # Predicates (spec §5.2.4–§5.2.6)
//!
//! A subject resolves to every value its path reaches ([`Resolved`]); a positive operator is true
//! when it holds for **any** reached value, and for an array value when it holds for the array or
//! for any of its elements (MongoDB). `$ne`, `$nin`, `$not`, `%nor` and `$exists: false` are the
//! negations of their positive forms over the whole subject.
//!
//! * **Match** (`{"f": operand}`): a literal `null` operand matches null, missing, and arrays
//!   holding null (U22; a substituted one does not match missing, see above). A missing operand
//!   matches nothing ("a missing expansion never equals a literal";
//!   `{"%%user.custom_data.isGlobalAdmin": true}` is false without custom data, and
//!   `{"owner": "%%user.custom_data.x"}` is false when `x` is absent even if `owner` is absent
//!   too). Otherwise: BSON equality ([`crate::value::compare`]), any element of an array
//!   subject, a regex operand matches strings; **U20**: a non-array subject also matches an
//!   operand that evaluates to an array containing it (rule expressions only — the in-memory
//!   query runner uses [`Semantics::Query`], plain MongoDB). A document operand is exact
//!   document equality (U21).
//! * **`$eq`** is MongoDB's equality match: like match but without the U20 widening and with a
//!   regex operand compared as a value. **`$ne`** = not `$eq` (true when the subject is missing
//!   and the operand literal; false when the operand is missing, or substituted against a
//!   missing subject).
//! * **`$gt` `$gte` `$lt` `$lte`**: only values of the same type bracket compare; a missing
//!   subject or operand is false, except that a literal `$gte: null`/`$lte: null` match a
//!   missing subject (MongoDB, consistent with U22). NaN: `$gt`/`$lt` false, `$gte`/`$lte` only NaN to NaN.
//! * **`$in`**: the operand must be an array ([`EvalError::NotAnArray`] otherwise); true when
//!   some element matches the subject as `$eq` would, a `null` element matching missing and a
//!   literal regex element matching strings. A **missing** operand (`"$in":
//!   "%%user.custom_data.x"` with no `x`) makes both `$in` and `$nin` false. **`$nin`** = not
//!   `$in`, except that it is false where a substituted operand cannot decide (above).
//! * **`$exists`**: the operand's truth value (`true`, non-zero numbers, any non-null value)
//!   against whether the subject reaches a value; a missing operand makes it false.
//! * **`$all`** (array operand, empty → false; missing → false): every element matches.
//!   **`$size`** (numeric operand; fractional or negative → false; other types →
//!   [`EvalError::BadArgument`]): an array of that length. **`$elemMatch`**: some element of an
//!   array value satisfies the operators, or — query form — is a document on which the query
//!   holds with `%%root` (and so bare fields) rebound to the element. **`$type`**: the value's
//!   type, or for an array value the array itself (`"array"`) or any element. **`$regex`**:
//!   strings (any element of an array); a stored regex equal to it. **`$mod`**: numbers
//!   truncated to integers; divisor 0 is [`EvalError::BadArgument`].
//!
//! # Evaluation order and limits
//!
//! Clauses and operators are evaluated left to right, and `%and`/`%or`/`%nor`/operator lists
//! short-circuit (a `%function` in a clause after the result is decided is not called, spec
//! §5.2.8). An error in an evaluated clause propagates (fail closed). Expressions nesting deeper
//! than [`MAX_EVAL_DEPTH`] and values nesting deeper than
//! [`crate::value::compare::MAX_DEPTH`] are [`EvalError::Limit`].

use std::borrow::Cow;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document};

use crate::context::RequestContext;
use crate::expr::{CmpOp, ElemMatch, Expansion, Expr, Op, Operand, Predicate, Root, TypeSpec};
use crate::steps::charge;
use crate::value::compare::{
    TooDeep, bson_cmp_checked, bson_equal_checked, compile_regex_cached, is_nan, is_number, truthy,
};
use crate::value::ejson::type_name;
use crate::value::path::{
    Resolved, resolve, resolve_in_document, resolve_query_path, resolve_request,
};

/// How deeply expressions (and operands) may nest while being evaluated.
pub const MAX_EVAL_DEPTH: usize = 256;

/// What the expansions of an expression are bound to while it is evaluated.
#[derive(Debug, Clone, Copy)]
pub struct Bindings<'a> {
    pub request: &'a RequestContext,
    /// `%%root` (and bare field names in MongoDB rules).
    pub root: Option<&'a Document>,
    /// `%%prevRoot`
    pub prev_root: Option<&'a Document>,
    /// `%%this`
    pub this: Option<&'a Bson>,
    /// `%%prev`
    pub prev: Option<&'a Bson>,
    /// Where a bare `%%root` / `%%prevRoot` is copied at most once (per decision, when the
    /// caller keeps one [`WholeRoots`] for it); `None` copies them at every use, each copy
    /// charged its size. It must belong to this `root` and `prev_root`: bindings that rebind
    /// either use another one (or `None`).
    pub whole: Option<&'a WholeRoots>,
}

/// The bare `%%root` and `%%prevRoot` of one decision as values (finding 11 of issue 9): the
/// bindings hold documents, and a bare expansion needs them as a [`Bson`] value, which is a
/// copy. Kept here, the copy is made on first use and borrowed after, instead of being made
/// (12.6 s for a 229 KB document under the set-once idiom) at every evaluation.
#[derive(Debug, Default)]
pub struct WholeRoots {
    root: std::cell::OnceCell<Bson>,
    prev_root: std::cell::OnceCell<Bson>,
}

impl WholeRoots {
    /// Nothing copied yet.
    pub fn new() -> Self {
        WholeRoots::default()
    }
}

impl<'a> Bindings<'a> {
    /// Bindings with only the request context (no document).
    pub fn request_only(request: &'a RequestContext) -> Self {
        Bindings {
            request,
            root: None,
            prev_root: None,
            this: None,
            prev: None,
            whole: None,
        }
    }

    /// Bindings for a read of the stored `doc`: `%%root` = `%%prevRoot` = `doc`, bare roots
    /// copied into `whole` when given.
    pub fn stored(
        request: &'a RequestContext,
        doc: &'a Document,
        whole: Option<&'a WholeRoots>,
    ) -> Self {
        Bindings {
            root: Some(doc),
            prev_root: Some(doc),
            whole,
            ..Bindings::request_only(request)
        }
    }

    /// Bindings for a MongoDB query over `doc` (`%%root` = `doc`, nothing else bound).
    pub fn document(request: &'a RequestContext, doc: &'a Document) -> Self {
        Bindings {
            root: Some(doc),
            ..Bindings::request_only(request)
        }
    }
}

/// Evaluating an expression failed; the decision it was part of denies.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A `%function` call failed or the host could not serve it.
    #[error("function `{name}` failed: {message}")]
    Function {
        /// The function's name, as `%function` gave it.
        name: String,
        /// Why: the host's error, its panic message, or that the call was not served or ran out of
        /// time.
        message: String,
    },
    /// A value operator got an argument of the wrong type or shape.
    #[error("{operator}: {message}")]
    BadArgument {
        /// The operator (`%stringToOid`, `$mod`, `$size`, `$regex`, ...).
        operator: &'static str,
        /// What was wrong with the argument.
        message: String,
    },
    /// An operand that must be an array (`$in`, `$nin`, `$all`) was something else.
    #[error("`{operator}` needs an array, got {found}")]
    NotAnArray {
        /// The operator: `$in`, `$nin` or `$all`.
        operator: &'static str,
        /// The BSON type the operand had instead.
        found: String,
    },
    /// An evaluation limit was reached.
    #[error("evaluation limit reached: {0}")]
    Limit(String),
}

impl From<TooDeep> for EvalError {
    fn from(e: TooDeep) -> Self {
        EvalError::Limit(e.to_string())
    }
}

/// Which matching rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Semantics {
    /// Rule expressions: MongoDB matching plus the U20 widening (a scalar subject matches an
    /// array operand that contains it).
    #[default]
    Rule,
    /// MongoDB queries (client queries, merged filter queries run in memory): plain MongoDB.
    Query,
}

/// Evaluates a rule expression under `bindings`. Logical operators short-circuit left to right
/// (spec §5.2.8: a `%function` after a decided clause is not called).
pub fn eval_expr(expr: &Expr, bindings: &Bindings<'_>) -> Result<bool, EvalError> {
    eval_expr_with(expr, bindings, Semantics::Rule)
}

/// Evaluates `expr` with the given matching [`Semantics`].
pub fn eval_expr_with(
    expr: &Expr,
    bindings: &Bindings<'_>,
    semantics: Semantics,
) -> Result<bool, EvalError> {
    eval(expr, bindings, semantics, 0, &mut NoRecord)
}

/// Evaluates a rule expression as [`eval_expr`] does (same result, same steps charged, same
/// `%function` calls), and also returns the values each test compared, for explanations: one
/// line per test evaluated, e.g. `owner_id: "u2" (document) vs "u1" (%%user.id) => false`, at
/// most [`MAX_COMPARED`] lines (then one line saying how many more), each value quoted in at
/// most about 80 characters. Detailed view only: the lines quote document values.
pub fn eval_expr_explained(
    expr: &Expr,
    bindings: &Bindings<'_>,
) -> (Result<bool, EvalError>, Vec<String>) {
    let mut rec = Comparisons::default();
    let result = eval(expr, bindings, Semantics::Rule, 0, &mut rec);
    (result, rec.finish())
}

/// How many compared tests an explained evaluation lists (the rest are counted).
pub const MAX_COMPARED: usize = 8;

/// What an evaluation records for explanations. Plain evaluation uses [`NoRecord`], whose
/// methods do nothing and compile away: explanations cost nothing when they are off.
trait Record {
    /// Whether anything is recorded (operand texts are built only when it is).
    fn on(&self) -> bool;
    /// An operator of the test being evaluated, with the operand value it compared (`None`:
    /// missing) — `label` is `""` for a plain match.
    fn operand(&mut self, label: &str, operand: &Operand, value: Option<&Bson>);
    /// An operator without an operand value (`$type`, `$regex`, `$elemMatch`, ...).
    fn operator(&mut self, label: &str);
    /// A test starts; returns the mark to give [`Record::test_end`].
    fn test_start(&mut self) -> usize;
    /// The test of `subject` (which reached `s`) ended with `result`.
    fn test_end(&mut self, mark: usize, subject: &Expansion, s: &Resolved<'_>, result: bool);
}

/// Records nothing (plain evaluation).
struct NoRecord;

impl Record for NoRecord {
    #[inline(always)]
    fn on(&self) -> bool {
        false
    }
    #[inline(always)]
    fn operand(&mut self, _: &str, _: &Operand, _: Option<&Bson>) {}
    #[inline(always)]
    fn operator(&mut self, _: &str) {}
    #[inline(always)]
    fn test_start(&mut self) -> usize {
        0
    }
    #[inline(always)]
    fn test_end(&mut self, _: usize, _: &Expansion, _: &Resolved<'_>, _: bool) {}
}

/// The tests of one explained evaluation, as text.
#[derive(Default)]
struct Comparisons {
    /// The operators of the tests being evaluated (nested tests stack theirs above).
    pending: Vec<String>,
    lines: Vec<String>,
    more: usize,
}

impl Comparisons {
    fn full(&self) -> bool {
        self.lines.len() >= MAX_COMPARED
    }

    /// No more operators are kept for the tests being evaluated (an `$elemMatch` over a long
    /// array tests every element).
    fn crowded(&self) -> bool {
        self.full() || self.pending.len() >= 2 * MAX_COMPARED
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.lines.push(format!("... and {} more tests", self.more));
        }
        self.lines
    }
}

/// Where a subject's value comes from, when it is not the expansion itself.
fn subject_source(e: &Expansion) -> &'static str {
    match e.root {
        Root::Root => " (document)",
        Root::PrevRoot => " (previous document)",
        Root::This => " (field value)",
        Root::Prev => " (previous field value)",
        _ => "",
    }
}

/// Where an operand's value comes from: `""` for a value the rule wrote.
fn operand_source(o: &Operand) -> String {
    match o {
        Operand::Literal(_) => String::new(),
        Operand::Expansion(e) => format!(" ({e})"),
        Operand::Function { name, .. } => format!(" (%function {name})"),
        Operand::StringToOid(_) => " (%stringToOid)".to_string(),
        Operand::OidToString(_) => " (%oidToString)".to_string(),
        Operand::StringToUuid(_) => " (%stringToUuid)".to_string(),
        Operand::UuidToString(_) => " (%uuidToString)".to_string(),
        Operand::Array(_) | Operand::Document(_) => " (with expansions)".to_string(),
    }
}

fn quote_opt(v: Option<&Bson>) -> String {
    v.map_or_else(|| "missing".to_string(), crate::value::quote::quote)
}

impl Record for Comparisons {
    fn on(&self) -> bool {
        !self.full()
    }

    fn operand(&mut self, label: &str, operand: &Operand, value: Option<&Bson>) {
        if self.crowded() {
            return;
        }
        let sep = if label.is_empty() { "" } else { " " };
        self.pending.push(format!(
            "vs {label}{sep}{}{}",
            quote_opt(value),
            operand_source(operand)
        ));
    }

    fn operator(&mut self, label: &str) {
        if !self.crowded() {
            self.pending.push(format!("vs {label}"));
        }
    }

    fn test_start(&mut self) -> usize {
        self.pending.len()
    }

    fn test_end(&mut self, mark: usize, subject: &Expansion, s: &Resolved<'_>, result: bool) {
        let ops: Vec<String> = self.pending.drain(mark.min(self.pending.len())..).collect();
        if self.full() {
            self.more += 1;
            return;
        }
        let value = match s.values.as_slice() {
            [one] => quote_opt(one.as_deref()),
            many => {
                let shown: Vec<String> = many
                    .iter()
                    .take(4)
                    .map(|v| quote_opt(v.as_deref()))
                    .collect();
                let rest = many.len().saturating_sub(shown.len());
                let rest = if rest > 0 {
                    format!(", ... {rest} more")
                } else {
                    String::new()
                };
                format!("each of [{}{rest}]", shown.join(", "))
            }
        };
        self.lines.push(format!(
            "{subject}: {value}{} {} => {result}",
            subject_source(subject),
            ops.join(", ")
        ));
    }
}

/// Evaluates an operand to a value; `Ok(None)` means missing (an expansion that resolves to
/// nothing, or a container holding one).
pub fn eval_operand(operand: &Operand, bindings: &Bindings<'_>) -> Result<Option<Bson>, EvalError> {
    Ok(operand_value(operand, bindings, Holes::Strict, 0)?.map(Cow::into_owned))
}

/// The value of one expansion (collapsed as [`Resolved::into_value`] does); `None` is missing.
pub fn eval_expansion(expansion: &Expansion, bindings: &Bindings<'_>) -> Option<Bson> {
    resolve_subject(expansion, bindings)
        .into_value()
        .map(Cow::into_owned)
}

/// Everything `expansion` reaches under `bindings`, uncollapsed (what a test subject sees).
pub fn resolve_expansion<'b>(expansion: &Expansion, bindings: &Bindings<'b>) -> Resolved<'b> {
    resolve_subject(expansion, bindings)
}

/// Everything the subject expansion reaches.
fn resolve_subject<'b>(e: &Expansion, b: &Bindings<'b>) -> Resolved<'b> {
    let path = e.path.as_slice();
    match e.root {
        Root::Root => b
            .root
            .map_or_else(Resolved::missing, |d| resolve_in_document(d, path)),
        Root::PrevRoot => b
            .prev_root
            .map_or_else(Resolved::missing, |d| resolve_in_document(d, path)),
        Root::This => b.this.map_or_else(Resolved::missing, |v| resolve(v, path)),
        Root::Prev => b.prev.map_or_else(Resolved::missing, |v| resolve(v, path)),
        Root::Request => resolve_request(&b.request.request, path),
        other => b
            .request
            .root_value(other)
            .map_or_else(Resolved::missing, |v| resolve(v, path)),
    }
}

/// [`resolve_subject`], with a bare `%%root` / `%%prevRoot` borrowed from the bindings'
/// [`WholeRoots`] (copied there on first use) and every copy charged its size.
fn resolve_charged<'b>(e: &Expansion, b: &Bindings<'b>) -> Result<Resolved<'b>, EvalError> {
    let (doc, cell) = match e.root {
        Root::Root if e.path.is_empty() => (b.root, b.whole.map(|w| &w.root)),
        Root::PrevRoot if e.path.is_empty() => (b.prev_root, b.whole.map(|w| &w.prev_root)),
        _ => return Ok(resolve_subject(e, b)),
    };
    let Some(doc) = doc else {
        return Ok(Resolved::missing());
    };
    let whole = |cell: Option<&std::cell::OnceCell<Bson>>| cell.and_then(|c| c.get()).is_some();
    if !whole(cell) {
        charge(crate::steps::document_copy_steps(doc))?;
    }
    Ok(match cell {
        Some(cell) => Resolved::single(Cow::Borrowed(
            cell.get_or_init(|| Bson::Document(doc.clone())),
        )),
        None => Resolved::single(Cow::Owned(Bson::Document(doc.clone()))),
    })
}

/// What the subject of a test reaches: a path on the document (`%%root`, `%%prevRoot`, bare
/// field names) is a MongoDB query path ([`resolve_query_path`]: a numeric segment is both an
/// index and a field name); other subjects resolve as expansions.
fn resolve_tested<'b>(e: &Expansion, b: &Bindings<'b>) -> Result<Resolved<'b>, EvalError> {
    let doc = match e.root {
        Root::Root if !e.path.is_empty() => b.root,
        Root::PrevRoot if !e.path.is_empty() => b.prev_root,
        _ => return resolve_charged(e, b),
    };
    Ok(doc.map_or_else(Resolved::missing, |d| resolve_query_path(d, &e.path)))
}

/// A value made owned, a borrowed one copied and charged its size.
fn owned(v: Cow<'_, Bson>) -> Result<Bson, EvalError> {
    if let Cow::Borrowed(b) = &v {
        charge(crate::steps::copy_steps(b))?;
    }
    Ok(v.into_owned())
}

fn limit(depth: usize) -> Result<(), EvalError> {
    if depth > MAX_EVAL_DEPTH {
        Err(EvalError::Limit(format!(
            "expression nested deeper than {MAX_EVAL_DEPTH} levels"
        )))
    } else {
        Ok(())
    }
}

fn eval<R: Record>(
    expr: &Expr,
    b: &Bindings<'_>,
    sem: Semantics,
    depth: usize,
    rec: &mut R,
) -> Result<bool, EvalError> {
    limit(depth)?;
    charge(1)?;
    match expr {
        Expr::Bool(v) => Ok(*v),
        Expr::All(es) => {
            for e in es {
                if !eval(e, b, sem, depth + 1, rec)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Expr::Any(es) => {
            for e in es {
                if eval(e, b, sem, depth + 1, rec)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Expr::None(es) => {
            for e in es {
                if eval(e, b, sem, depth + 1, rec)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Expr::Not(e) => Ok(!eval(e, b, sem, depth + 1, rec)?),
        Expr::Test { subject, predicate } => {
            let s = resolve_tested(subject, b)?;
            let mark = rec.test_start();
            let result = eval_predicate(predicate, &s, b, sem, depth + 1, rec)?;
            rec.test_end(mark, subject, &s, result);
            Ok(result)
        }
    }
}

fn eval_predicate<R: Record>(
    p: &Predicate,
    s: &Resolved<'_>,
    b: &Bindings<'_>,
    sem: Semantics,
    depth: usize,
    rec: &mut R,
) -> Result<bool, EvalError> {
    limit(depth)?;
    match p {
        Predicate::Matches(o) => {
            let value = operand_value(o, b, Holes::Strict, depth)?;
            if rec.on() {
                rec.operand("", o, value.as_deref());
            }
            match value {
                None => Ok(false),
                Some(_) if undecided(o, s) => Ok(false),
                Some(v) => match_any(
                    s,
                    &v,
                    Mode {
                        regex: true,
                        contains: sem == Semantics::Rule,
                        literal: is_literal(o),
                    },
                ),
            }
        }
        Predicate::Ops(ops) => {
            for op in ops {
                if !eval_op(op, s, b, sem, depth + 1, rec)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

const EQ: Mode = Mode {
    regex: false,
    contains: false,
    literal: true,
};
const IN: Mode = Mode {
    regex: true,
    contains: false,
    literal: true,
};

/// True when the rule author wrote the operand's value (see the module docs: literal and
/// substituted operands).
pub fn is_literal(o: &Operand) -> bool {
    matches!(o, Operand::Literal(_))
}

/// Whether element `i` of the array `o` evaluates to was written by the rule author: every
/// element of a literal array, the literal members of an array operand, no element of a
/// substituted array.
pub fn is_literal_item(o: &Operand, i: usize) -> bool {
    match o {
        Operand::Literal(_) => true,
        Operand::Array(items) => items.get(i).is_some_and(is_literal),
        _ => false,
    }
}

/// A substituted operand tested against a subject that reaches nothing: the test is false,
/// negated forms included (module docs).
fn undecided(o: &Operand, s: &Resolved<'_>) -> bool {
    !is_literal(o) && s.is_missing()
}

/// `mode` with `literal` set.
fn with_literal(mode: Mode, literal: bool) -> Mode {
    Mode { literal, ..mode }
}

/// The label of an operator in explanations (`$gt`, `$in`, ...).
fn op_label(op: &Op) -> String {
    match op {
        Op::Cmp(cmp, _) => match cmp {
            CmpOp::Eq => "$eq",
            CmpOp::Ne => "$ne",
            CmpOp::Gt => "$gt",
            CmpOp::Gte => "$gte",
            CmpOp::Lt => "$lt",
            CmpOp::Lte => "$lte",
        }
        .to_string(),
        Op::In(_) => "$in".to_string(),
        Op::Nin(_) => "$nin".to_string(),
        Op::Exists(_) => "$exists".to_string(),
        Op::All(_) => "$and".to_string(),
        Op::Any(_) => "$or".to_string(),
        Op::None(_) => "$nor".to_string(),
        Op::Not(_) => "$not".to_string(),
        Op::AllOf(_) => "$all".to_string(),
        Op::Size(_) => "$size".to_string(),
        Op::ElemMatch(_) => "$elemMatch".to_string(),
        Op::Type(specs) => {
            let names: Vec<&str> = specs
                .iter()
                .map(|t| crate::expr::display::type_name(*t))
                .collect();
            format!("$type {}", names.join("|"))
        }
        Op::Regex(spec) => {
            let pattern = crate::value::quote::quote(&Bson::RegularExpression(bson::Regex {
                pattern: spec.pattern.clone(),
                options: spec.options.clone(),
            }));
            format!("$regex {pattern}")
        }
        Op::Mod { divisor, remainder } => format!("$mod [{divisor}, {remainder}]"),
        Op::Bits { test, positions } => format!("{} {positions:?}", test.name()),
    }
}

/// The value of the operand `o` of `op` (recorded for explanations).
fn op_value<'v, R: Record>(
    op: &Op,
    o: &'v Operand,
    b: &Bindings<'v>,
    depth: usize,
    rec: &mut R,
) -> Result<Option<Cow<'v, Bson>>, EvalError> {
    let v = operand_value(o, b, Holes::Strict, depth)?;
    if rec.on() {
        rec.operand(&op_label(op), o, v.as_deref());
    }
    Ok(v)
}

fn eval_op<'v, R: Record>(
    op: &'v Op,
    s: &Resolved<'_>,
    b: &Bindings<'v>,
    sem: Semantics,
    depth: usize,
    rec: &mut R,
) -> Result<bool, EvalError> {
    limit(depth)?;
    if rec.on()
        && matches!(
            op,
            Op::All(_)
                | Op::Any(_)
                | Op::None(_)
                | Op::Not(_)
                | Op::ElemMatch(_)
                | Op::Type(_)
                | Op::Regex(_)
                | Op::Mod { .. }
                | Op::Bits { .. }
        )
    {
        rec.operator(&op_label(op));
    }
    match op {
        Op::Cmp(CmpOp::Eq, o) => match op_value(op, o, b, depth, rec)? {
            None => Ok(false),
            Some(_) if undecided(o, s) => Ok(false),
            Some(v) => match_any(s, &v, with_literal(EQ, is_literal(o))),
        },
        Op::Cmp(CmpOp::Ne, o) => match op_value(op, o, b, depth, rec)? {
            None => Ok(false),
            Some(_) if undecided(o, s) => Ok(false),
            Some(v) => Ok(!match_any(s, &v, with_literal(EQ, is_literal(o)))?),
        },
        Op::Cmp(cmp, o) => match op_value(op, o, b, depth, rec)? {
            None => Ok(false),
            Some(_) if undecided(o, s) => Ok(false),
            Some(v) => any_value(s, |c, expand| compare_one(c, expand, *cmp, &v, is_literal(o))),
        },
        Op::In(o) => match op_value(op, o, b, depth, rec)? {
            None => Ok(false),
            Some(_) if undecided(o, s) => Ok(false),
            list => Ok(in_list(s, list.as_deref(), o, "$in")?.unwrap_or(false)),
        },
        Op::Nin(o) => match op_value(op, o, b, depth, rec)? {
            None => Ok(false),
            Some(_) if undecided(o, s) => Ok(false),
            list => Ok(!in_list(s, list.as_deref(), o, "$nin")?.unwrap_or(false)),
        },
        Op::Exists(o) => match op_value(op, o, b, depth, rec)? {
            None => Ok(false),
            Some(v) => Ok(s.is_missing() != truthy(&v)),
        },
        Op::All(ps) => {
            for p in ps {
                if !eval_predicate(p, s, b, sem, depth + 1, rec)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Op::Any(ps) => {
            for p in ps {
                if eval_predicate(p, s, b, sem, depth + 1, rec)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Op::None(ps) => {
            for p in ps {
                if eval_predicate(p, s, b, sem, depth + 1, rec)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Op::Not(p) => Ok(!eval_predicate(p, s, b, sem, depth + 1, rec)?),
        Op::AllOf(o) => match op_value(op, o, b, depth, rec)?.as_deref() {
            None => Ok(false),
            Some(_) if undecided(o, s) => Ok(false),
            Some(Bson::Array(list)) => {
                if list.is_empty() {
                    return Ok(false);
                }
                for (i, item) in list.iter().enumerate() {
                    if !match_any(s, item, with_literal(IN, is_literal_item(o, i)))? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Some(other) => Err(not_an_array("$all", other)),
        },
        Op::Size(o) => match op_value(op, o, b, depth, rec)? {
            None => Ok(false),
            Some(n) => {
                let Some(len) = array_length_operand(&n)? else {
                    return Ok(false);
                };
                Ok(s.present()
                    .any(|v| matches!(v, Bson::Array(items) if items.len() == len)))
            }
        },
        Op::ElemMatch(em) => {
            for v in s.present() {
                let Bson::Array(items) = v else { continue };
                for item in items {
                    if elem_matches(em, item, b, sem, depth + 1, rec)? {
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        }
        Op::Type(specs) => Ok(s.present_expanding().any(|(v, expand)| {
            type_is(v, specs)
                || matches!(v, Bson::Array(items) if expand && items.iter().any(|i| type_is(i, specs)))
        })),
        Op::Regex(spec) => Ok(s.present_expanding().any(|(v, expand)| {
            let one = |x: &Bson| match x {
                Bson::String(t) | Bson::Symbol(t) => spec.regex.is_match(t),
                Bson::RegularExpression(r) => {
                    r.pattern == spec.pattern && sorted(&r.options) == sorted(&spec.options)
                }
                _ => false,
            };
            one(v) || matches!(v, Bson::Array(items) if expand && items.iter().any(one))
        })),
        Op::Mod { divisor, remainder } => {
            if *divisor == 0 {
                return Err(EvalError::BadArgument {
                    operator: "$mod",
                    message: "divisor must not be 0".into(),
                });
            }
            let one =
                |x: &Bson| truncated(x).is_some_and(|i| i.wrapping_rem(*divisor) == *remainder);
            Ok(s.present_expanding().any(|(v, expand)| {
                one(v) || matches!(v, Bson::Array(items) if expand && items.iter().any(one))
            }))
        }
        Op::Bits { test, positions } => {
            charge(positions.len() as u64)?;
            let one = |x: &Bson| bits_match(x, *test, positions);
            Ok(s.present_expanding().any(|(v, expand)| {
                one(v) || matches!(v, Bson::Array(items) if expand && items.iter().any(one))
            }))
        }
    }
}

/// A bitwise query operator on one value: an integral number (int32, int64, or a double or
/// decimal with no fraction that fits in 64 bits; two's complement, so bits past 63 are the
/// sign) or binary data (byte `p / 8`, bit `p % 8`, clear past the end). Other values never
/// match.
pub fn bits_match(v: &Bson, test: crate::expr::BitTest, positions: &[u32]) -> bool {
    use crate::expr::BitTest;
    let bit: Box<dyn Fn(u32) -> bool + '_> = match v {
        Bson::Binary(bin) => Box::new(move |p: u32| {
            bin.bytes
                .get((p / 8) as usize)
                .is_some_and(|byte| byte & (1u8 << (p % 8)) != 0)
        }),
        _ => {
            let Some(n) = integral(v) else {
                return false;
            };
            Box::new(move |p: u32| if p >= 64 { n < 0 } else { (n >> p) & 1 == 1 })
        }
    };
    match test {
        BitTest::AllSet => positions.iter().all(|p| bit(*p)),
        BitTest::AnySet => positions.iter().any(|p| bit(*p)),
        BitTest::AllClear => positions.iter().all(|p| !bit(*p)),
        BitTest::AnyClear => positions.iter().any(|p| !bit(*p)),
    }
}

/// A number with no fractional part that fits in a signed 64-bit integer.
fn integral(v: &Bson) -> Option<i64> {
    let f = match v {
        Bson::Int32(i) => return Some(i64::from(*i)),
        Bson::Int64(i) => return Some(*i),
        Bson::Double(d) => *d,
        Bson::Decimal128(d) => {
            let text = d.to_string();
            if let Ok(i) = text.parse::<i64>() {
                return Some(i);
            }
            text.parse::<f64>().ok()?
        }
        _ => return None,
    };
    // -2^63 is exact as a double; 2^63 is not representable as an i64.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    (f.is_finite() && f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f))
        .then_some(f as i64)
}

fn sorted(s: &str) -> Vec<char> {
    let mut v: Vec<char> = s.chars().collect();
    v.sort_unstable();
    v
}

fn not_an_array(operator: &'static str, found: &Bson) -> EvalError {
    EvalError::NotAnArray {
        operator,
        found: type_name(found).to_string(),
    }
}

/// `$in` of the value `list` of operand `o`: `None` when the operand is missing.
fn in_list(
    s: &Resolved<'_>,
    list: Option<&Bson>,
    o: &Operand,
    operator: &'static str,
) -> Result<Option<bool>, EvalError> {
    match list {
        None => Ok(None),
        Some(Bson::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if match_any(s, item, with_literal(IN, is_literal_item(o, i)))? {
                    return Ok(Some(true));
                }
            }
            Ok(Some(false))
        }
        Some(other) => Err(not_an_array(operator, other)),
    }
}

/// The length `$size` asks for; `None` when no array can have it (fractional, negative).
pub fn array_length_operand(n: &Bson) -> Result<Option<usize>, EvalError> {
    let as_f64 = match n {
        Bson::Int32(i) => return Ok(usize::try_from(*i).ok()),
        Bson::Int64(i) => return Ok(usize::try_from(*i).ok()),
        Bson::Double(d) => *d,
        Bson::Decimal128(d) => d.to_string().parse::<f64>().unwrap_or(f64::NAN),
        other => {
            return Err(EvalError::BadArgument {
                operator: "$size",
                message: format!("needs a number, got {}", type_name(other)),
            });
        }
    };
    if as_f64.fract() == 0.0 && (0.0..1e15).contains(&as_f64) {
        Ok(Some(as_f64 as usize))
    } else {
        Ok(None)
    }
}

/// A number truncated toward zero (`$mod`); `None` for non-numbers, NaN and infinities.
pub fn truncated(v: &Bson) -> Option<i64> {
    let f = match v {
        Bson::Int32(i) => return Some(i64::from(*i)),
        Bson::Int64(i) => return Some(*i),
        Bson::Double(d) => *d,
        Bson::Decimal128(d) => d.to_string().parse::<f64>().ok()?,
        _ => return None,
    };
    if f.is_finite() && f.abs() < 9.2e18 {
        Some(f.trunc() as i64)
    } else {
        None
    }
}

fn type_is(v: &Bson, specs: &[TypeSpec]) -> bool {
    specs.iter().any(|t| match t {
        TypeSpec::Exact(et) => v.element_type() == *et,
        TypeSpec::Number => is_number(v),
    })
}

fn elem_matches<R: Record>(
    em: &ElemMatch,
    item: &Bson,
    b: &Bindings<'_>,
    sem: Semantics,
    depth: usize,
    rec: &mut R,
) -> Result<bool, EvalError> {
    match em {
        ElemMatch::Query(e) => {
            // An element that is an array is queried as the document of its positions
            // (`{"0": .., "1": ..}`), as MongoDB does; other non-documents never match.
            let as_document;
            let d = match item {
                Bson::Document(d) => d,
                Bson::Array(items) => {
                    charge(crate::steps::copy_steps(item))?;
                    as_document = items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (i.to_string(), v.clone()))
                        .collect::<Document>();
                    &as_document
                }
                _ => return Ok(false),
            };
            let inner = Bindings {
                request: b.request,
                root: Some(d),
                prev_root: b.prev_root,
                this: b.this,
                prev: b.prev,
                // Its `%%root` is the element, not the bindings' root.
                whole: None,
            };
            eval(e, &inner, sem, depth + 1, rec)
        }
        ElemMatch::Ops(ops) => {
            // Every operator tests the element itself: an element that is an array is not
            // expanded (`{"$elemMatch": {"$gt": 4, "$lt": 6}}` does not match `[[3, 7]]`).
            let s = Resolved::single_whole(Cow::Borrowed(item));
            for op in ops {
                if !eval_op(op, &s, b, sem, depth + 1, rec)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

/// True when `f` holds for some value the subject reaches (missing positions included as `None`).
/// `f` also gets whether an array at that position is expanded into its elements
/// ([`Resolved::whole`]).
fn any_value(
    s: &Resolved<'_>,
    mut f: impl FnMut(Option<&Bson>, bool) -> Result<bool, EvalError>,
) -> Result<bool, EvalError> {
    for (v, expand) in s.positions() {
        if f(v, expand)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How a value operand matches.
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// A regex operand matches strings (match, `$in`, `$all`) rather than only equal regexes.
    regex: bool,
    /// U20: a non-array subject matches an array operand that contains it.
    contains: bool,
    /// The rule author wrote the operand: a `null` matches missing (U22) and a regex is a
    /// pattern (when `regex`). A substituted operand has neither (module docs).
    literal: bool,
}

fn match_any(s: &Resolved<'_>, operand: &Bson, mode: Mode) -> Result<bool, EvalError> {
    if let (true, true, Bson::RegularExpression(re)) = (mode.regex, mode.literal, operand) {
        // PERF: one cache lookup per operand, not one per value the subject reaches (a `$in`
        // of 1,000 patterns over 2,000 values looked the pattern up 2,000,000 times). Steps
        // are charged as `match_one` charges them.
        let compiled = compiled_regex(re)?;
        return any_value(s, |c, expand| {
            charge(1)?;
            match c {
                None => Ok(false),
                Some(v) => regex_matches(v, expand, &compiled, operand),
            }
        });
    }
    any_value(s, |c, expand| match_one(c, expand, operand, mode))
}

/// A regex operand's compiled form, its compilation charged (once per thread and pattern).
fn compiled_regex(re: &bson::Regex) -> Result<std::rc::Rc<regex::Regex>, EvalError> {
    let (compiled, cost) = compile_regex_cached(&re.pattern, &re.options);
    charge(cost)?;
    compiled.map_err(|message| EvalError::BadArgument {
        operator: "$regex",
        message,
    })
}

/// Whether the present value `v` (or one of its elements) matches the pattern `compiled` of
/// the regex operand `operand`: strings by the pattern, stored regexes by equality.
fn regex_matches(
    v: &Bson,
    expand: bool,
    compiled: &regex::Regex,
    operand: &Bson,
) -> Result<bool, EvalError> {
    let one = |x: &Bson| -> Result<bool, EvalError> {
        Ok(match x {
            Bson::String(t) | Bson::Symbol(t) => compiled.is_match(t),
            Bson::RegularExpression(_) => bson_equal_checked(x, operand)?,
            _ => false,
        })
    };
    if one(v)? {
        return Ok(true);
    }
    if let (true, Bson::Array(items)) = (expand, v) {
        for i in items {
            charge(1)?;
            if one(i)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// One position of a subject against a value operand; `expand`: an array there also matches
/// through its elements (false for a position matched as a whole, [`Resolved::whole`]).
fn match_one(
    subject: Option<&Bson>,
    expand: bool,
    operand: &Bson,
    mode: Mode,
) -> Result<bool, EvalError> {
    charge(1)?;
    if let Bson::Null = operand {
        return Ok(match subject {
            None => mode.literal,
            Some(Bson::Null) => true,
            Some(Bson::Array(items)) if expand => items.iter().any(|i| matches!(i, Bson::Null)),
            Some(_) => false,
        });
    }
    let Some(v) = subject else {
        return Ok(false);
    };
    if let (true, true, Bson::RegularExpression(re)) = (mode.regex, mode.literal, operand) {
        let compiled = compiled_regex(re)?;
        return regex_matches(v, expand, &compiled, operand);
    }
    if bson_equal_checked(v, operand)? {
        return Ok(true);
    }
    match (v, operand) {
        (Bson::Array(items), _) if expand => {
            for i in items {
                charge(1)?;
                if bson_equal_checked(i, operand)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        (_, Bson::Array(list)) if mode.contains => {
            for i in list {
                charge(1)?;
                if bson_equal_checked(v, i)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// `$gt` `$gte` `$lt` `$lte` of one subject position; `literal`: the rule wrote the operand (a
/// literal `null` is `$gte`/`$lte` a missing position, a substituted one is not).
fn compare_one(
    subject: Option<&Bson>,
    expand: bool,
    op: CmpOp,
    operand: &Bson,
    literal: bool,
) -> Result<bool, EvalError> {
    charge(1)?;
    let Some(v) = subject else {
        // A missing value compares as null with a literal null, MinKey or MaxKey.
        return Ok(literal
            && match operand {
                Bson::Null => matches!(op, CmpOp::Gte | CmpOp::Lte),
                Bson::MinKey | Bson::MaxKey => compare_single(&Bson::Null, op, operand)?,
                _ => false,
            });
    };
    if compare_single(v, op, operand)? {
        return Ok(true);
    }
    if let (true, Bson::Array(items)) = (expand, v) {
        for i in items {
            charge(1)?;
            if compare_single(i, op, operand)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn compare_single(v: &Bson, op: CmpOp, operand: &Bson) -> Result<bool, EvalError> {
    if let Some(ord) = extreme_order(v.element_type() as u8, operand.element_type() as u8) {
        return Ok(cmp_holds(op, ord));
    }
    let (nan_v, nan_o) = (is_nan(v), is_nan(operand));
    if nan_v || nan_o {
        let both = nan_v && nan_o;
        return Ok(match op {
            CmpOp::Gte | CmpOp::Lte | CmpOp::Eq => both,
            CmpOp::Gt | CmpOp::Lt => false,
            CmpOp::Ne => !both,
        });
    }
    let Some(ord) = bson_cmp_checked(v, operand)? else {
        return Ok(false);
    };
    Ok(cmp_holds(op, ord))
}

/// Whether `op` holds for a value that compares `ord` to the operand.
pub fn cmp_holds(op: CmpOp, ord: std::cmp::Ordering) -> bool {
    match op {
        CmpOp::Eq => ord.is_eq(),
        CmpOp::Ne => ord.is_ne(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::Gte => ord.is_ge(),
        CmpOp::Lt => ord.is_lt(),
        CmpOp::Lte => ord.is_le(),
    }
}

/// MongoDB compares every value with a MinKey or MaxKey operand (the ends of its order, below
/// and above every type), not only values of the operand's own type: the order of a value of
/// BSON type `value` against an operand of type `operand` when the operand is one of them.
pub fn extreme_order(value: u8, operand: u8) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering;
    const MIN_KEY: u8 = 0xFF;
    const MAX_KEY: u8 = 0x7F;
    match operand {
        MIN_KEY if value == MIN_KEY => Some(Ordering::Equal),
        MIN_KEY => Some(Ordering::Greater),
        MAX_KEY if value == MAX_KEY => Some(Ordering::Equal),
        MAX_KEY => Some(Ordering::Less),
        _ => None,
    }
}

/// How missing values inside containers are treated while an operand is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holes {
    /// A missing member makes the whole operand missing.
    Strict,
    /// JavaScript serialization (`%function` arguments): a missing document value drops the key,
    /// a missing array element becomes `null`.
    Lenient,
}

/// The value of an operand: borrowed from the rule or the bindings when it is a literal or an
/// expansion (finding 11 of issue 9: it was copied at every evaluation), built otherwise (every
/// copy into it charged its size).
fn operand_value<'v>(
    o: &'v Operand,
    b: &Bindings<'v>,
    holes: Holes,
    depth: usize,
) -> Result<Option<Cow<'v, Bson>>, EvalError> {
    limit(depth)?;
    match o {
        Operand::Literal(v) => Ok(Some(Cow::Borrowed(v))),
        Operand::Expansion(e) => {
            let resolved = resolve_charged(e, b)?;
            let traversed = resolved.traversed;
            let value = resolved.into_value();
            // Collapsing a traversal copies the values it reached.
            if traversed && let Some(v) = &value {
                charge(crate::steps::copy_steps(v))?;
            }
            Ok(value)
        }
        Operand::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match (operand_value(item, b, holes, depth + 1)?, holes) {
                    (Some(v), _) => out.push(owned(v)?),
                    (None, Holes::Lenient) => out.push(Bson::Null),
                    (None, Holes::Strict) => return Ok(None),
                }
            }
            Ok(Some(Cow::Owned(Bson::Array(out))))
        }
        Operand::Document(members) => {
            let mut out = Document::new();
            for (k, item) in members {
                match (operand_value(item, b, holes, depth + 1)?, holes) {
                    (Some(v), _) => {
                        out.insert(k.clone(), owned(v)?);
                    }
                    (None, Holes::Lenient) => {}
                    (None, Holes::Strict) => return Ok(None),
                }
            }
            Ok(Some(Cow::Owned(Bson::Document(out))))
        }
        Operand::Function { name, arguments } => {
            let mut args = Vec::with_capacity(arguments.len());
            for a in arguments {
                args.push(match operand_value(a, b, Holes::Lenient, depth + 1)? {
                    Some(v) => owned(v)?,
                    None => Bson::Null,
                });
            }
            // Fail closed on a host error, a panic or an overrun of the time budget.
            b.request
                .call_function(name, &args)
                .map(|v| Some(Cow::Owned(v)))
                .map_err(|message| EvalError::Function {
                    name: name.clone(),
                    message,
                })
        }
        Operand::StringToOid(inner) => convert(inner, b, depth, "%stringToOid", |v| match v {
            Bson::ObjectId(_) => Ok(v),
            Bson::String(s) => string_to_oid(&s).map(Bson::ObjectId),
            other => Err(format!(
                "needs a string or an ObjectId, got {}",
                type_name(&other)
            )),
        }),
        Operand::OidToString(inner) => convert(inner, b, depth, "%oidToString", |v| match v {
            Bson::ObjectId(oid) => Ok(Bson::String(oid.to_hex())),
            Bson::String(_) => Ok(v),
            other => Err(format!(
                "needs an ObjectId or a string, got {}",
                type_name(&other)
            )),
        }),
        Operand::StringToUuid(inner) => convert(inner, b, depth, "%stringToUuid", |v| match v {
            Bson::Binary(ref bin) if bin.subtype == BinarySubtype::Uuid => Ok(v),
            Bson::String(s) => string_to_uuid(&s),
            other => Err(format!(
                "needs a string or a UUID, got {}",
                type_name(&other)
            )),
        }),
        Operand::UuidToString(inner) => convert(inner, b, depth, "%uuidToString", |v| match v {
            Bson::Binary(ref bin) if bin.subtype == BinarySubtype::Uuid => bin
                .to_uuid()
                .map(|u| Bson::String(u.to_string()))
                .map_err(|e| format!("invalid UUID: {e}")),
            Bson::String(_) => Ok(v),
            other => Err(format!(
                "needs a UUID or a string, got {}",
                type_name(&other)
            )),
        }),
    }
}

fn convert<'v>(
    inner: &'v Operand,
    b: &Bindings<'v>,
    depth: usize,
    operator: &'static str,
    f: impl FnOnce(Bson) -> Result<Bson, String>,
) -> Result<Option<Cow<'v, Bson>>, EvalError> {
    match operand_value(inner, b, Holes::Strict, depth + 1)? {
        None => Ok(None),
        Some(v) => f(owned(v)?)
            .map(|v| Some(Cow::Owned(v)))
            .map_err(|message| EvalError::BadArgument { operator, message }),
    }
}

fn string_to_oid(s: &str) -> Result<bson::oid::ObjectId, String> {
    if s.len() == 24 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return bson::oid::ObjectId::parse_str(s).map_err(|e| e.to_string());
    }
    match <[u8; 12]>::try_from(s.as_bytes()) {
        Ok(bytes) => Ok(bson::oid::ObjectId::from_bytes(bytes)),
        Err(_) => Err(format!(
            "`{s}` is neither 24 hexadecimal digits nor 12 bytes"
        )),
    }
}

fn string_to_uuid(s: &str) -> Result<Bson, String> {
    let shape_ok = s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if !shape_ok {
        return Err(format!("`{s}` is not a 36-character UUID string"));
    }
    bson::Uuid::parse_str(s)
        .map(|u| Bson::Binary(Binary::from_uuid(u)))
        .map_err(|e| format!("`{s}` is not a UUID: {e}"))
}
