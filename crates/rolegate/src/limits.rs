//! Limits on what rolegate accepts: rule files come from people who make mistakes, documents and
//! request data from clients who may be hostile. Every limit here has a safe default
//! ([`Limits::default`]); no real app of the shared corpus comes within a tenth of any of them
//! (its deepest expression nests 6 levels, its largest rule file holds 104 expression nodes, its
//! longest path is 31 bytes, its largest `$in` has 3 elements, its longest role list 4 roles;
//! `tests/lint_corpus.rs` keeps it so).
//!
//! The limits, their defaults, where each is checked and what exceeding it does are in the
//! table of [`Limits`]' documentation.
//!
//! Load-time limits are enforced by [`crate::config`] (through
//! [`LoadOptions::limits`](crate::config::LoadOptions::limits)) and by
//! [`RuleSetBuilder`](crate::rules::build::RuleSetBuilder): a file nested deeper than
//! `max_file_depth` is refused before it is copied or built ([`json_too_deep`]), and everything
//! else is checked on the validated rule set ([`check_rule_set`]). Each violation is one
//! [`Diagnostic`] with code [`LIMIT_EXCEEDED`], the file and the JSON path. The validated
//! [`RuleSet`] keeps the limits it was loaded with ([`RuleSet::limits`]) so that evaluators can
//! apply the evaluation-time ones.
//!
//! Evaluation-time limits: [`Limits::check_document`] measures a document without recursion and
//! says why it is refused; the evaluators call it before looking at a document and deny with the
//! reason ([`LimitExceeded`] converts into [`EvalError::Limit`]).
//!
//! The depth guard (finding 10 of issue 9) is applied at every door where BSON enters, so that
//! nothing recursive (the `bson` crate's conversions, clones, comparisons and drops, the
//! evaluators, explanations, Extended JSON) ever sees a value deeper than the limit: stored
//! documents, pre- and post-images and inserted documents ([`Limits::check_document`], in
//! [`crate::engine`]); raw documents (always, by a pass over element types and lengths that is
//! skipped for documents too short to nest that deep, or by the full validation); the whole
//! request context ([`Limits::check_context`], once when a request is prepared: a refused
//! context fails every decision of the request and its query plan, with the reason, and is
//! never evaluated); the client query and projection (at the entrance of
//! [`PreparedRequest::query_plan`](crate::engine::PreparedRequest::query_plan)); and the
//! Device Sync entry points of [`crate::reference::sync`] (which have no rule set: the default
//! limit). A JavaScript code-with-scope's scope counts as a level of nesting (the `bson` crate
//! recurses into it too). The configured limit is capped at [`DOCUMENT_DEPTH_CEILING`]. The step budget
//! (`max_eval_steps`) is started by [`crate::engine`] for every decision (and for the
//! request-only work of `prepare`) and charged by both evaluators ([`crate::steps`]). The function time budget
//! (`max_function_time`) travels in the request: [`Rules::context`](crate::engine::Rules::context)
//! copies it into
//! [`RequestContext::max_function_time`](crate::context::RequestContext::max_function_time), and
//! [`RequestContext::call_function`](crate::context::RequestContext::call_function), the one
//! call site of both engines, measures every call against it. A call cannot be preempted, so
//! the budget is checked when it returns; [`Deadline`](crate::context::Deadline) gives up waiting
//! instead. Its default, 1 second, is far above what a working rule function takes (an in-memory
//! lookup takes microseconds, a database or network round trip milliseconds) and far below what
//! an interactive request can wait for one permission check: it catches hung and pathological
//! hosts without refusing slow but working ones.
//!
//! Independently of these settings, the stages keep hard ceilings that protect the stack whatever
//! the configuration: expression JSON deeper than [`crate::expr::parse::MAX_EXPR_DEPTH`] is
//! refused by the parser (`expression-too-deep`), expressions are evaluated at most
//! [`crate::value::eval::MAX_EVAL_DEPTH`] levels deep, values are compared at most
//! [`crate::value::compare::MAX_DEPTH`] levels deep, schemas nest at most 64 levels, and a
//! configured `max_file_depth` or `max_expression_depth` above [`FILE_DEPTH_CEILING`] /
//! [`EXPRESSION_DEPTH_CEILING`] is treated as the ceiling.

#[cfg(test)]
mod load_tests;
use std::fmt;
use std::time::Duration;

use bson::{Bson, Document};
use serde_json::Value;

use crate::context::RequestContext;
use crate::error::{Diagnostic, Diagnostics, Place};
use crate::expr::{ElemMatch, Expansion, Expr, Op, Operand, Predicate};
use crate::rules::{FieldPermissions, FieldTree, Filter, Role, Rule, RuleSet};
use crate::value::EvalError;

/// The diagnostic code of every load-time limit violation.
pub const LIMIT_EXCEEDED: &str = "limit-exceeded";

/// The largest effective [`Limits::max_file_depth`]: building a rule file recurses once per
/// level, so deeper input is never accepted whatever the configuration.
pub const FILE_DEPTH_CEILING: usize = 512;

/// The largest effective [`Limits::max_expression_depth`] (the evaluator's own recursion cap,
/// [`crate::value::eval::MAX_EVAL_DEPTH`], is 256 levels).
pub const EXPRESSION_DEPTH_CEILING: usize = 200;

/// Configurable limits on what rolegate accepts: rule files come from people who make mistakes,
/// documents and request data from clients who may be hostile. Every limit has a safe default
/// ([`Limits::DEFAULT`]), far above what real apps need. Load-time limits are checked when the
/// rules are loaded ([`LoadOptions::limits`](crate::LoadOptions::limits)): each violation is one
/// error with code `limit-exceeded`, the file and the JSON path. The validated rule set keeps
/// the limits it was loaded with ([`RuleSet::limits`](crate::RuleSet::limits)), and the
/// evaluation-time ones apply to every decision made with it.
///
/// | limit | default | checked | exceeding it |
/// |-------|---------|---------|--------------|
/// | [`max_file_depth`](Limits::max_file_depth) | 128 | load, before anything else | error `limit-exceeded` |
/// | [`max_files`](Limits::max_files) | 100,000 | walking an app directory | error `limit-exceeded` naming the entry where the walk stopped |
/// | [`max_file_bytes`](Limits::max_file_bytes) | 16 MiB | before a rule file is read | error `limit-exceeded` naming the file |
/// | [`max_expression_depth`](Limits::max_expression_depth) | 64 | load | error `limit-exceeded` |
/// | [`max_expression_nodes`](Limits::max_expression_nodes) | 1,000,000 | load | error `limit-exceeded` |
/// | [`max_path_length`](Limits::max_path_length) | 1,024 bytes | load | error `limit-exceeded` |
/// | [`max_array_operand`](Limits::max_array_operand) | 10,000 | load | error `limit-exceeded` |
/// | [`max_roles`](Limits::max_roles) | 50,000 | load | error `limit-exceeded` |
/// | [`max_filters`](Limits::max_filters) | 1,000 | load | error `limit-exceeded` |
/// | [`max_document_depth`](Limits::max_document_depth) | 100 (at most [`Limits::DOCUMENT_DEPTH_CEILING`], 200) | every door where BSON enters: stored, inserted and raw documents, pre- and post-images, the request context, the client query and projection | the decision (or the query plan) denies with the reason |
/// | [`max_eval_steps`](Limits::max_eval_steps) | 1,000,000 | evaluation | the decision denies with the reason |
/// | [`max_function_time`](Limits::max_function_time) | 1 second | each `%function` call, when it returns | the call fails (`took X ms, budget Y ms`), its result is discarded; the decision denies with the reason |
///
///
/// Independently of these settings, hard ceilings protect the stack whatever the configuration:
/// a configured `max_file_depth` above 512, `max_expression_depth` above 200 or
/// `max_document_depth` above 200 is treated as that ceiling.
///
/// ```
/// use rolegate::{Limits, LoadOptions, RuleSet};
/// use serde_json::json;
///
/// let mut limits = Limits::default();
/// limits.max_roles = 1;
/// let options = LoadOptions { limits, ..LoadOptions::default() };
/// let rules = json!({"database": "db", "collection": "c", "roles": [
///     {"name": "a", "apply_when": {}, "read": true},
///     {"name": "b", "apply_when": {}, "read": true}
/// ]});
/// let err = RuleSet::from_json("rules.json", &rules, &options).unwrap_err();
/// let d = err.diagnostics.errors().next().unwrap();
/// assert_eq!(d.code, "limit-exceeded");
/// assert_eq!(d.place.json_path, "roles[1]");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Limits {
    /// How deeply one rule file's JSON may nest (objects and arrays; `{}` is 1 level). The JSON
    /// text parser stops at 127 levels anyway (serde_json's recursion limit); this also covers
    /// rule JSON built in memory ([`RuleSet::from_json`](crate::RuleSet::from_json),
    /// [`RuleSet::from_files`](crate::RuleSet::from_files)). Capped at 512 levels whatever the
    /// configuration ([`effective_file_depth`](Self::effective_file_depth)).
    pub max_file_depth: usize,
    /// How many entries (files and directories, hidden ones and `node_modules` excepted) the
    /// walk of an app directory may meet before it stops with a `limit-exceeded` error naming
    /// the entry where it stopped. Symbolic links to directories are never followed, so the walk
    /// is linear in this number.
    pub max_files: usize,
    /// Largest rule file read from disk, in bytes: a bigger file is a `limit-exceeded` error
    /// naming it, found from its metadata before it is opened (and reading stops there should
    /// it grow meanwhile).
    pub max_file_bytes: u64,
    /// How deeply one parsed expression may nest: every logical combinator (`%and`, `%or`,
    /// `%not`, ...), test, operator, operand container and value operator is one level
    /// (`{"a": {"$in": [1]}}` is 4). Keeps every expression well inside the evaluator's own
    /// recursion cap. Capped at 200 levels whatever the configuration
    /// ([`effective_expression_depth`](Self::effective_expression_depth)).
    pub max_expression_depth: usize,
    /// How many expression nodes the whole rule set may hold (every node counted by
    /// `max_expression_depth`, plus one per element of a literal array operand). Bounds the
    /// memory and compile time of a rule set.
    pub max_expression_nodes: usize,
    /// Longest field path, field name or expansion string, in bytes: an expansion
    /// (`%%user.custom_data.team`), a bare field path in a rule (`owner.id`), the dotted path of
    /// a field rule (`address.zip`), or a filter projection key.
    pub max_path_length: usize,
    /// Most elements of a literal `$in` / `$nin` / `$all` array (each is compared with the
    /// subject for every document). Arrays that come from expansions at request time are not
    /// known at load time; they are bounded by the request data.
    pub max_array_operand: usize,
    /// Most roles in one role list (a collection's `roles`, a default rule's, or pre-2023 Sync
    /// type rules).
    pub max_roles: usize,
    /// Most filters of one collection or default rule.
    pub max_filters: usize,
    /// How deeply a document (stored, inserted, or a pre-/post-image) may nest, in documents and
    /// arrays (`{}` is 1 level). MongoDB itself stores at most 100 levels. A deeper document is
    /// denied with the reason, never walked recursively ([`Limits::check_document`]).
    pub max_document_depth: usize,
    /// How many evaluation steps (expression nodes evaluated, and values compared with an
    /// operand) one document's decision may take before it is denied with the reason. A
    /// comparison of a value with an operand is one step per value compared (so
    /// `{"tags": {"$in": "%%user.custom_data.allowed"}}` costs about `tags × allowed` steps), and
    /// copying or comparing a document or array costs one step per value it holds. The compiled
    /// engine evaluates request-only parts once per request and shared field rules once per
    /// document, so it counts fewer steps than the reference evaluator: a decision within a few
    /// steps of the budget may be denied by one engine and not the other. The default is about
    /// 10,000 times what the deepest decision of real apps takes.
    pub max_eval_steps: u64,
    /// How long one `%function` call may take. Measured around each call when it returns (a
    /// synchronous call cannot be preempted): a call that took longer fails with the time it
    /// took, its result discarded, and the decision denies. Reaches the call through
    /// [`RequestContext::max_function_time`](crate::context::RequestContext::max_function_time),
    /// which [`Rules::context`](crate::engine::Rules::context) sets from the rule set's limits.
    /// `Duration::MAX` disables it.
    pub max_function_time: Duration,
}

impl Limits {
    /// The defaults: the table of the type's documentation.
    pub const DEFAULT: Limits = Limits {
        max_file_depth: 128,
        max_files: 100_000,
        max_file_bytes: 16 * 1024 * 1024,
        max_expression_depth: 64,
        max_expression_nodes: 1_000_000,
        max_path_length: 1024,
        max_array_operand: 10_000,
        max_roles: 50_000,
        max_filters: 1000,
        max_document_depth: 100,
        max_eval_steps: 1_000_000,
        max_function_time: Duration::from_secs(1),
    };

    /// [`max_file_depth`](Self::max_file_depth), capped at 512: the depth actually enforced.
    pub fn effective_file_depth(&self) -> usize {
        self.max_file_depth.min(FILE_DEPTH_CEILING)
    }

    /// [`max_expression_depth`](Self::max_expression_depth), capped at 200: the depth actually
    /// enforced.
    pub fn effective_expression_depth(&self) -> usize {
        self.max_expression_depth.min(EXPRESSION_DEPTH_CEILING)
    }

    /// `Ok` when `doc` nests at most [`max_document_depth`](Self::max_document_depth) levels;
    /// otherwise why not (with the path of the first value too deep). Never recurses, so any
    /// document can be checked.
    ///
    /// ```
    /// use bson::doc;
    /// use rolegate::Limits;
    ///
    /// let mut limits = Limits::default();
    /// limits.max_document_depth = 2;
    /// assert!(limits.check_document(&doc! {"a": {"b": 1}}).is_ok());
    /// let err = limits.check_document(&doc! {"a": {"b": [1]}}).unwrap_err();
    /// assert_eq!(err.to_string(), "document nested deeper than 2 levels (at `a.b`)");
    /// ```
    pub fn check_document(&self, doc: &Document) -> Result<(), LimitExceeded> {
        self.check_document_as("document", doc)
    }

    // --- Depth guard of every BSON door (finding 10 of issue 9) ---

    /// The most [`max_document_depth`](Self::max_document_depth) can be: nesting beyond it is
    /// refused whatever the limits say (the guards and evaluators recurse that deep).
    pub const DOCUMENT_DEPTH_CEILING: usize = DOCUMENT_DEPTH_CEILING;

    /// [`max_document_depth`](Self::max_document_depth), capped at
    /// [`DOCUMENT_DEPTH_CEILING`](Self::DOCUMENT_DEPTH_CEILING): the depth actually enforced.
    pub fn effective_document_depth(&self) -> usize {
        self.max_document_depth.min(DOCUMENT_DEPTH_CEILING)
    }

    /// [`check_document`](Self::check_document) of a document that the reason calls `what`
    /// (such as `the client query`).
    pub fn check_document_as(&self, what: &str, doc: &Document) -> Result<(), LimitExceeded> {
        let max = self.effective_document_depth();
        match document_too_deep(doc, max) {
            None => Ok(()),
            Some(path) => Err(too_deep_error(what, max, &path)),
        }
    }

    /// `Ok` when `value` nests at most [`effective_document_depth`](Self::effective_document_depth)
    /// levels (a document or array is one level, a JavaScript code-with-scope's scope one more);
    /// otherwise why not, naming `what` (such as `%%user` or `the client query`) and the path of
    /// the first value too deep. Never recurses.
    ///
    /// ```
    /// use bson::{Bson, doc};
    /// use rolegate::Limits;
    ///
    /// let mut limits = Limits::default();
    /// limits.max_document_depth = 2;
    /// assert!(limits.check_value("%%user", &Bson::Document(doc! {"a": {"b": 1}})).is_ok());
    /// let err = limits.check_value("%%user", &Bson::Document(doc! {"a": {"b": [1]}})).unwrap_err();
    /// assert_eq!(err.to_string(), "%%user nested deeper than 2 levels (at `a.b`)");
    /// ```
    pub fn check_value(&self, what: &str, value: &Bson) -> Result<(), LimitExceeded> {
        let max = self.effective_document_depth();
        match value_too_deep(value, max) {
            None => Ok(()),
            Some(path) => Err(too_deep_error(what, max, &path)),
        }
    }

    /// Checks every value of a request context that rules can expand (`%%user`, `%%request`,
    /// `%%values`, `%%environment`, `%%args`, `%%partition`) with
    /// [`check_value`](Self::check_value): the depth guard that
    /// [`Collection::prepare`](crate::engine::Collection::prepare) applies once per request
    /// (a request that fails it fails every decision, with the reason).
    pub fn check_context(&self, context: &RequestContext) -> Result<(), LimitExceeded> {
        let parts = [
            ("%%user", context.user.as_ref()),
            ("%%request", Some(&context.request)),
            ("%%values", Some(&context.values)),
            ("%%environment", Some(&context.environment)),
            ("%%args", context.args.as_ref()),
            ("%%partition", context.partition.as_ref()),
        ];
        for (what, value) in parts {
            if let Some(value) = value {
                self.check_value(what, value)?;
            }
        }
        Ok(())
    }
}

/// The largest effective [`Limits::max_document_depth`]: documents, request values, client
/// queries and projections deeper than this are refused whatever the configuration, so that
/// the recursive work on values that passed the guard (the `bson` crate's own conversions,
/// clones and comparisons, explanations, Extended JSON) stays far inside any thread's stack.
/// It matches [`crate::value::compare::MAX_DEPTH`].
pub const DOCUMENT_DEPTH_CEILING: usize = 200;

/// The error of a value `what` nested deeper than `max` levels, first at `path`.
fn too_deep_error(what: &str, max: usize, path: &str) -> LimitExceeded {
    LimitExceeded {
        limit: "max_document_depth",
        max,
        what: format!("{what} nested deeper than {max} levels (at `{path}`)"),
    }
}

/// When `value` nests more than `max` levels (a document or array is a level, the scope of a
/// JavaScript code-with-scope one more; a scalar nests 0 levels), the dotted path of the first
/// value beyond the limit. Iterative: any depth is safe.
pub fn value_too_deep(value: &Bson, max: usize) -> Option<String> {
    match value {
        Bson::Document(doc) => document_too_deep(doc, max),
        Bson::JavaScriptCodeWithScope(code) => document_too_deep(&code.scope, max),
        Bson::Array(_) if max == 0 => Some(String::new()),
        Bson::Array(items) => frames_too_deep(BsonFrame::Array(items.iter().enumerate()), max),
        _ => None,
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// An evaluation-time limit was reached; the decision denies with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct LimitExceeded {
    /// The [`Limits`] field that was reached, such as `max_document_depth`.
    pub limit: &'static str,
    /// Its value.
    pub max: usize,
    /// Lowercase description of what exceeded it.
    pub what: String,
}

impl From<LimitExceeded> for EvalError {
    fn from(e: LimitExceeded) -> Self {
        EvalError::Limit(e.what)
    }
}

// ---------------------------------------------------------------------------------------------
// Depth of raw values, without recursion

/// One step of a path inside a JSON value.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

enum JsonFrame<'a> {
    Array(std::iter::Enumerate<std::slice::Iter<'a, Value>>),
    Object(serde_json::map::Iter<'a>),
}

impl<'a> JsonFrame<'a> {
    fn of(value: &'a Value) -> Option<Self> {
        match value {
            Value::Array(items) => Some(JsonFrame::Array(items.iter().enumerate())),
            Value::Object(map) => Some(JsonFrame::Object(map.iter())),
            _ => None,
        }
    }

    fn next(&mut self) -> Option<(Step<'a>, &'a Value)> {
        match self {
            JsonFrame::Array(it) => it.next().map(|(i, v)| (Step::Index(i), v)),
            JsonFrame::Object(it) => it.next().map(|(k, v)| (Step::Key(k.as_str()), v)),
        }
    }
}

/// When `value` nests more than `max` levels (objects and arrays; `{}` is 1 level), the place of
/// the first container beyond the limit, relative to `base`. Iterative: any depth is safe.
pub fn json_too_deep(value: &Value, max: usize, base: &Place) -> Option<Place> {
    let mut stack: Vec<JsonFrame<'_>> = Vec::new();
    let mut path: Vec<Step<'_>> = Vec::new();
    if let Some(frame) = JsonFrame::of(value) {
        if max == 0 {
            return Some(base.clone());
        }
        stack.push(frame);
    }
    while let Some(top) = stack.last_mut() {
        let Some((step, child)) = top.next() else {
            stack.pop();
            continue;
        };
        path.truncate(stack.len().saturating_sub(1));
        path.push(step);
        if let Some(frame) = JsonFrame::of(child) {
            if stack.len() >= max {
                return Some(place_of(base, &path));
            }
            stack.push(frame);
        }
    }
    None
}

/// The `limit-exceeded` error of a rule file nested more than `max_depth` levels at `place`
/// (found by [`json_too_deep`]).
pub fn depth_error(place: Place, max_depth: usize) -> Diagnostic {
    Diagnostic::error(
        LIMIT_EXCEEDED,
        place,
        format!("JSON nested more than {max_depth} levels deep"),
    )
    .with_hint("if this is intended, raise `Limits::max_file_depth` in the load options")
}

fn place_of(base: &Place, path: &[Step<'_>]) -> Place {
    path.iter().fold(base.clone(), |p, step| match step {
        Step::Key(k) => p.key(k),
        Step::Index(i) => p.index(*i),
    })
}

enum BsonFrame<'a> {
    Array(std::iter::Enumerate<std::slice::Iter<'a, Bson>>),
    Document(bson::document::Iter<'a>),
}

impl<'a> BsonFrame<'a> {
    /// The frame of a nested value: a document, an array, or the scope of a JavaScript
    /// code-with-scope (which nests like a document: the `bson` crate converts, clones,
    /// compares and drops it recursively too).
    fn of(value: &'a Bson) -> Option<Self> {
        match value {
            Bson::Array(items) => Some(BsonFrame::Array(items.iter().enumerate())),
            Bson::Document(doc) => Some(BsonFrame::Document(doc.iter())),
            Bson::JavaScriptCodeWithScope(code) => Some(BsonFrame::Document(code.scope.iter())),
            _ => None,
        }
    }

    fn next(&mut self) -> Option<(Step<'a>, &'a Bson)> {
        match self {
            BsonFrame::Array(it) => it.next().map(|(i, v)| (Step::Index(i), v)),
            BsonFrame::Document(it) => it.next().map(|(k, v)| (Step::Key(k.as_str()), v)),
        }
    }
}

/// When `doc` nests more than `max` levels (the document itself is level 1), the dotted path of
/// the first embedded document or array beyond the limit. Iterative: any depth is safe.
pub fn document_too_deep(doc: &Document, max: usize) -> Option<String> {
    if max == 0 {
        return Some(String::new());
    }
    frames_too_deep(BsonFrame::Document(doc.iter()), max)
}

fn frames_too_deep(first: BsonFrame<'_>, max: usize) -> Option<String> {
    let mut stack: Vec<BsonFrame<'_>> = vec![first];
    let mut path: Vec<Step<'_>> = Vec::new();
    while let Some(top) = stack.last_mut() {
        let Some((step, child)) = top.next() else {
            stack.pop();
            continue;
        };
        path.truncate(stack.len().saturating_sub(1));
        path.push(step);
        if let Some(frame) = BsonFrame::of(child) {
            if stack.len() >= max {
                return Some(dotted(&path));
            }
            stack.push(frame);
        }
    }
    None
}

/// How many levels `doc` nests (the document itself is 1). Iterative.
#[cfg(test)]
pub fn document_depth(doc: &Document) -> usize {
    let mut stack: Vec<BsonFrame<'_>> = vec![BsonFrame::Document(doc.iter())];
    let mut deepest = 1;
    while let Some(top) = stack.last_mut() {
        let Some((_, child)) = top.next() else {
            stack.pop();
            continue;
        };
        if let Some(frame) = BsonFrame::of(child) {
            stack.push(frame);
            deepest = deepest.max(stack.len());
        }
    }
    deepest
}

fn dotted(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for (i, step) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match step {
            Step::Key(k) => out.push_str(k),
            Step::Index(n) => out.push_str(&n.to_string()),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The validated rule set

/// Every load-time limit except [`Limits::max_file_depth`] (checked on the raw JSON), checked on
/// a validated rule set: one `limit-exceeded` error per violation (at most one per expression),
/// with the file and JSON path.
pub fn check_rule_set(set: &RuleSet, limits: &Limits) -> Diagnostics {
    walk_rule_set(set, limits).diags
}

/// How close a rule set comes to the load-time limits: the largest value of each, as
/// loading checks it (expressions deeper than 200 levels are measured up to 200).
/// From [`RuleSet::measure`](crate::RuleSet::measure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Measures {
    /// The deepest expression ([`Limits::max_expression_depth`]).
    pub expression_depth: usize,
    /// Expression nodes in the whole rule set ([`Limits::max_expression_nodes`]).
    pub expression_nodes: usize,
    /// The longest field path, field name or expansion, in bytes ([`Limits::max_path_length`]).
    pub path_length: usize,
    /// The largest literal `$in`/`$nin`/`$all` array ([`Limits::max_array_operand`]).
    pub array_operand: usize,
    /// The longest role list ([`Limits::max_roles`]).
    pub roles: usize,
    /// The most filters of one collection ([`Limits::max_filters`]).
    pub filters: usize,
}

impl RuleSet {
    /// How large this rule set is, in the terms of the load-time [`Limits`] (to choose limits
    /// for a deployment, or to see how close an app comes to them).
    pub fn measure(&self) -> Measures {
        measure(self)
    }
}

/// Measures `set` against the load-time limits (see [`Measures`]).
pub(crate) fn measure(set: &RuleSet) -> Measures {
    let mut unlimited = Limits::DEFAULT;
    unlimited.max_expression_depth = EXPRESSION_DEPTH_CEILING;
    walk_rule_set(set, &unlimited).seen
}

fn walk_rule_set<'l>(set: &RuleSet, limits: &'l Limits) -> Checker<'l> {
    let mut c = Checker {
        limits,
        max_depth: limits.effective_expression_depth(),
        diags: Diagnostics::default(),
        nodes: 0,
        nodes_reported: false,
        seen: Measures::default(),
    };
    for ds in set.data_sources.values() {
        if let Some(d) = &ds.default_rule {
            c.roles(&d.roles, &d.place.key("roles"));
            c.filters(&d.filters, &d.place.key("filters"));
        }
        for coll in ds.collections.values() {
            c.roles(&coll.roles, &coll.place.key("roles"));
            c.filters(&coll.filters, &coll.place.key("filters"));
        }
        if let Some(pbs) = &ds.partition_sync {
            c.rule(&pbs.read);
            c.rule(&pbs.write);
        }
    }
    for rules in set.services.values() {
        for r in rules {
            c.rule(&r.when);
        }
    }
    for f in set.functions.values() {
        if let Some(r) = &f.can_evaluate {
            c.rule(r);
        }
    }
    c.seen.expression_nodes = c.nodes;
    c
}

struct Checker<'l> {
    limits: &'l Limits,
    max_depth: usize,
    diags: Diagnostics,
    nodes: usize,
    nodes_reported: bool,
    seen: Measures,
}

/// What one expression walk found (reported once per expression).
#[derive(Default)]
struct Found {
    too_deep: bool,
    long_path: Option<usize>,
    big_array: Option<(&'static str, usize)>,
}

fn limit_error(place: Place, message: String, field: &str) -> Diagnostic {
    Diagnostic::error(LIMIT_EXCEEDED, place, message).with_hint(format!(
        "if this is intended, raise `Limits::{field}` in the load options"
    ))
}

impl Checker<'_> {
    /// A list longer than `max` (`field` of [`Limits`]) is an error at its first element past
    /// the limit (or at the list itself).
    fn too_many<'p>(
        &mut self,
        mut places: impl ExactSizeIterator<Item = &'p Place>,
        max: usize,
        list: &Place,
        what: &str,
        field: &str,
    ) {
        let len = places.len();
        if len <= max {
            return;
        }
        let place = places.nth(max).unwrap_or(list).clone();
        self.diags.push(limit_error(
            place,
            format!("{len} {what}; at most {max} are allowed"),
            field,
        ));
    }

    fn roles(&mut self, roles: &[Role], list: &Place) {
        self.seen.roles = self.seen.roles.max(roles.len());
        let places = roles.iter().map(|r| &r.place);
        let max = self.limits.max_roles;
        self.too_many(places, max, list, "roles in one role list", "max_roles");
        for role in roles {
            self.rule(&role.apply_when);
            if let Some(df) = &role.document_filters {
                self.opt(df.read.as_ref());
                self.opt(df.write.as_ref());
            }
            for r in [&role.read, &role.write, &role.insert, &role.delete] {
                self.opt(r.as_ref());
            }
            let mut path = String::new();
            self.field_tree(&role.fields, &mut path, 0);
        }
    }

    fn filters(&mut self, filters: &[Filter], list: &Place) {
        self.seen.filters = self.seen.filters.max(filters.len());
        let places = filters.iter().map(|f| &f.place);
        let max = self.limits.max_filters;
        self.too_many(
            places,
            max,
            list,
            "filters in one collection",
            "max_filters",
        );
        for f in filters {
            self.rule(&f.apply_when);
            let place = f.place.key("query");
            let mut found = Found::default();
            self.operand(&f.query, 1, &mut found);
            self.report(found, &place);
            for key in f.projection.keys() {
                self.seen.path_length = self.seen.path_length.max(key.len());
                if key.len() > self.limits.max_path_length {
                    self.path_error(f.place.key("projection"), key.len());
                }
            }
        }
    }

    fn field_tree(&mut self, tree: &FieldTree, path: &mut String, level: usize) {
        // Field trees come from files at most `max_file_depth` deep; this guard keeps a tree
        // built in memory from recursing without bound.
        if level > FILE_DEPTH_CEILING {
            return;
        }
        for (name, rule) in &tree.fields {
            let before = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(name);
            self.seen.path_length = self.seen.path_length.max(path.len());
            if path.len() > self.limits.max_path_length {
                self.path_error(rule.place.clone(), path.len());
            } else {
                self.permissions(&rule.permissions);
                self.field_tree(&rule.nested, path, level + 1);
            }
            path.truncate(before);
        }
        if let Some(add) = &tree.additional {
            self.permissions(add);
        }
    }

    fn permissions(&mut self, p: &FieldPermissions) {
        self.opt(p.read.as_ref());
        self.opt(p.write.as_ref());
    }

    fn opt(&mut self, rule: Option<&Rule>) {
        if let Some(r) = rule {
            self.rule(r);
        }
    }

    fn rule(&mut self, rule: &Rule) {
        let mut found = Found::default();
        self.expr(&rule.expr, 1, &mut found);
        self.report(found, &rule.place);
    }

    fn path_error(&mut self, place: Place, len: usize) {
        self.diags.push(limit_error(
            place,
            format!(
                "a field path or expansion of {len} bytes; at most {} are allowed",
                self.limits.max_path_length
            ),
            "max_path_length",
        ));
    }

    fn report(&mut self, found: Found, place: &Place) {
        if found.too_deep {
            self.diags.push(limit_error(
                place.clone(),
                format!("expression nested more than {} levels deep", self.max_depth),
                "max_expression_depth",
            ));
        }
        if let Some(len) = found.long_path {
            self.path_error(place.clone(), len);
        }
        if let Some((op, len)) = found.big_array {
            self.diags.push(limit_error(
                place.clone(),
                format!(
                    "`{op}` array of {len} elements; at most {} are allowed",
                    self.limits.max_array_operand
                ),
                "max_array_operand",
            ));
        }
        if self.nodes > self.limits.max_expression_nodes && !self.nodes_reported {
            self.nodes_reported = true;
            self.diags.push(limit_error(
                place.clone(),
                format!(
                    "the rule set holds more than {} expression nodes",
                    self.limits.max_expression_nodes
                ),
                "max_expression_nodes",
            ));
        }
    }

    /// Counts a node at `depth`; false (and marks `found`) when it is too deep to descend into.
    fn enter(&mut self, depth: usize, found: &mut Found) -> bool {
        self.nodes = self.nodes.saturating_add(1);
        self.seen.expression_depth = self.seen.expression_depth.max(depth.min(self.max_depth));
        if depth > self.max_depth {
            found.too_deep = true;
            return false;
        }
        true
    }

    fn expansion(&mut self, e: &Expansion, found: &mut Found) {
        let segments: usize = e.path.iter().map(|s| s.len() + 1).sum();
        let len = if e.implicit {
            segments.saturating_sub(1)
        } else {
            2 + e.root.name().len() + segments
        };
        self.seen.path_length = self.seen.path_length.max(len);
        if len > self.limits.max_path_length {
            found.long_path = Some(found.long_path.unwrap_or(0).max(len));
        }
    }

    fn expr(&mut self, expr: &Expr, depth: usize, found: &mut Found) {
        if !self.enter(depth, found) {
            return;
        }
        match expr {
            Expr::Bool(_) => {}
            Expr::All(v) | Expr::Any(v) | Expr::None(v) => {
                for e in v {
                    self.expr(e, depth + 1, found);
                }
            }
            Expr::Not(e) => self.expr(e, depth + 1, found),
            Expr::Test { subject, predicate } => {
                self.expansion(subject, found);
                self.predicate(predicate, depth + 1, found);
            }
        }
    }

    fn predicate(&mut self, p: &Predicate, depth: usize, found: &mut Found) {
        if !self.enter(depth, found) {
            return;
        }
        match p {
            Predicate::Matches(o) => self.operand(o, depth + 1, found),
            Predicate::Ops(ops) => {
                for op in ops {
                    self.op(op, depth + 1, found);
                }
            }
        }
    }

    fn op(&mut self, op: &Op, depth: usize, found: &mut Found) {
        if !self.enter(depth, found) {
            return;
        }
        match op {
            Op::In(o) => self.array_operand("$in", o, depth, found),
            Op::Nin(o) => self.array_operand("$nin", o, depth, found),
            Op::AllOf(o) => self.array_operand("$all", o, depth, found),
            Op::Cmp(_, o) | Op::Exists(o) | Op::Size(o) => self.operand(o, depth + 1, found),
            Op::All(ps) | Op::Any(ps) | Op::None(ps) => {
                for p in ps {
                    self.predicate(p, depth + 1, found);
                }
            }
            Op::Not(p) => self.predicate(p, depth + 1, found),
            Op::ElemMatch(em) => match em.as_ref() {
                ElemMatch::Ops(ops) => {
                    for op in ops {
                        self.op(op, depth + 1, found);
                    }
                }
                ElemMatch::Query(e) => self.expr(e, depth + 1, found),
            },
            Op::Type(_) | Op::Regex(_) | Op::Mod { .. } | Op::Bits { .. } => {}
        }
    }

    fn array_operand(&mut self, op: &'static str, o: &Operand, depth: usize, found: &mut Found) {
        let len = match o {
            Operand::Literal(Bson::Array(items)) => Some(items.len()),
            Operand::Array(items) => Some(items.len()),
            _ => None,
        };
        self.seen.array_operand = self.seen.array_operand.max(len.unwrap_or(0));
        if let Some(len) = len
            && len > self.limits.max_array_operand
            && found.big_array.is_none_or(|(_, n)| n < len)
        {
            found.big_array = Some((op, len));
        }
        self.operand(o, depth + 1, found);
    }

    fn operand(&mut self, o: &Operand, depth: usize, found: &mut Found) {
        if !self.enter(depth, found) {
            return;
        }
        match o {
            Operand::Literal(Bson::Array(items)) => {
                self.nodes = self.nodes.saturating_add(items.len());
            }
            Operand::Literal(_) => {}
            Operand::Expansion(e) => self.expansion(e, found),
            Operand::Array(items) => {
                for item in items {
                    self.operand(item, depth + 1, found);
                }
            }
            Operand::Document(members) => {
                for (_, item) in members {
                    self.operand(item, depth + 1, found);
                }
            }
            Operand::Function { arguments, .. } => {
                for item in arguments {
                    self.operand(item, depth + 1, found);
                }
            }
            Operand::StringToOid(inner)
            | Operand::OidToString(inner)
            | Operand::StringToUuid(inner)
            | Operand::UuidToString(inner) => self.operand(inner, depth + 1, found),
        }
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "file depth {}, expression depth {}, expression nodes {}, path length {}, \
             array operand {}, roles {}, filters {}, document depth {}, evaluation steps {}, \
             function time {:?}",
            self.max_file_depth,
            self.max_expression_depth,
            self.max_expression_nodes,
            self.max_path_length,
            self.max_array_operand,
            self.max_roles,
            self.max_filters,
            self.max_document_depth,
            self.max_eval_steps,
            self.max_function_time
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use serde_json::json;

    #[test]
    fn json_depth_counts_containers() {
        let base = Place::file("f.json");
        assert!(json_too_deep(&json!(1), 0, &base).is_none());
        assert_eq!(json_too_deep(&json!({}), 0, &base), Some(base.clone()));
        assert!(json_too_deep(&json!({"a": {"b": [1]}}), 3, &base).is_none());
        let p = json_too_deep(&json!({"a": 1, "b": {"c": [1, {"d": 2}]}}), 3, &base).unwrap();
        assert_eq!(p.json_path, "b.c[1]");
    }

    #[test]
    fn document_depth_is_iterative() {
        let mut doc = bson::doc! {"x": 1};
        for _ in 0..10 {
            doc = bson::doc! {"a": doc};
        }
        assert_eq!(document_depth(&doc), 11);
        assert!(document_too_deep(&doc, 11).is_none());
        assert_eq!(document_too_deep(&doc, 10).unwrap().split('.').count(), 10);
    }
}
