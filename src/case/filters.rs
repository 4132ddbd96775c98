//! Stage: `filters` cases. Input: a case's request (client query and projection, and
//! `collection_documents`), the collection's policy and the request context. Output: the filters
//! that apply, the merged query and projection (spec §4's canonical forms, [`crate::query::plan()`]),
//! and — when the case gives `collection_documents` — what an in-memory run of that query and
//! projection returns ([`crate::query::memory`]).
//!
//! A plan that fails (projection conflict, a filter that cannot be evaluated) is the answer
//! `{error}`. The system user bypasses filters (spec §2.5): nothing applies.

use super::compare::Actual;
use super::context::to_document_opt;
use super::model::Case;
use super::run::{CaseError, collection_documents};
use crate::context::RequestContext;
use crate::query::{memory, plan};
use crate::rules::CollectionPolicy;

/// Answers a `filters` case.
pub fn run(
    case: &Case,
    policy: &CollectionPolicy<'_>,
    ctx: &RequestContext,
) -> Result<Actual, CaseError> {
    let request = case.request.as_ref();
    let operation = request.and_then(|r| r.operation.as_ref());
    let query = to_document_opt(
        operation.and_then(|op| op.client_query()),
        "request.operation.query",
    )?;
    let projection = match request.and_then(|r| r.client_projection.as_ref()) {
        Some(p) => to_document_opt(Some(p), "request.client_projection")?,
        None => to_document_opt(
            operation.and_then(|op| op.projection.as_ref()),
            "request.operation.projection",
        )?,
    };
    let filters = if ctx.is_system() { &[] } else { policy.filters };
    let plan = match plan::plan(filters, query.as_ref(), projection.as_ref(), ctx) {
        Ok(plan) => plan,
        Err(e) => {
            return Ok(Actual {
                error: Some(e.to_string()),
                ..Default::default()
            });
        }
    };
    let wants_results = request.is_some_and(|r| r.collection_documents.is_some());
    let results = if wants_results {
        let docs = collection_documents(case)?;
        match memory::run(&plan, &docs) {
            Ok(results) => Some(results),
            Err(e) => {
                return Ok(Actual {
                    applied: Some(plan.applied),
                    query: Some(plan.query),
                    projection: Some(plan.projection),
                    error: Some(e.to_string()),
                    ..Default::default()
                });
            }
        }
    } else {
        None
    };
    Ok(Actual {
        applied: Some(plan.applied),
        query: Some(plan.query),
        projection: Some(plan.projection),
        results,
        ..Default::default()
    })
}
