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
//! Arrays nested in arrays deeper than 200 levels under a projected path are dropped
//! from the output (fail closed).
//!
//! Projection operators (`$slice`, `$elemMatch`, `$meta`, positional `$`) are not read by
//! [`project`] (their keys are treated as plain included paths); [`crate::mql::Projection`]
//! compiles MongoDB's find projections with them, and [`project`] is its lenient reading.
//!
//! Each match of a document ([`matches_with`], so every document of [`run`]) has the default
//! step budget ([`Limits::max_eval_steps`], [`crate::steps`]; capped by an enclosing
//! decision's): a query whose work on one document runs away fails with
//! [`EvalError::Limit`] instead (finding 11 of issue 9). Documents, the query and the
//! projection nested deeper than the default
//! [`max_document_depth`](Limits::max_document_depth) are refused the same way (finding 10).

use std::sync::OnceLock;

use bson::Document;

use crate::context::RequestContext;
use crate::error::{Diagnostics, LoadError, Place};
use crate::expr::{Expr, parse_query};
use crate::limits::Limits;
use crate::mql::Projection;
use crate::query::plan::QueryPlan;
use crate::steps::StepBudget;
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
/// are not read here: their keys are treated as plain included paths (the query plan refuses them
/// in client projections). This is the lenient reading of
/// [`Projection`](crate::mql::Projection), which gives MongoDB's find projections with their
/// operators and errors ([`Projection::compile`](crate::mql::Projection::compile)).
pub fn project(projection: &Document, doc: &Document) -> Document {
    // The lenient reading never has a positional `$`, so applying it cannot fail; an error
    // would still show nothing rather than more (fail closed).
    Projection::lenient(projection)
        .apply(doc)
        .unwrap_or_default()
}
