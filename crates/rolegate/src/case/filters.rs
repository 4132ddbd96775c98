//! Stage: `filters` cases. Input: a case's request (client query and projection, and
//! `collection_documents`), the collection's policy and the request context. Output: the filters
//! that apply, the merged query and projection (spec §4's canonical forms,
//! [`crate::query::QueryPlan::merged_query`] and [`crate::query::QueryPlan::output_projection`])
//! and — when the case gives `collection_documents` — what the client receives: the documents the
//! database part of the plan returns ([`crate::query::memory::run`]), decided on by the rules,
//! redacted, selected by the client query on the redacted document and projected
//! ([`crate::PreparedRequest::find`], reference engine). Cases compare `query` and `projection`
//! with App Services' canonical merged forms, which rolegate keeps as the description of the
//! request (it never sends the merged query to a database; issue 9).
//!
//! A plan that fails (projection conflict, a filter that cannot be evaluated, a refused client
//! operator) is the answer `{error}`. The system user bypasses filters (spec §2.5): nothing
//! applies.

use super::compare::Actual;
use super::context::to_document_opt;
use super::model::Case;
use super::run::{CaseError, collection_documents};
use crate::context::RequestContext;
use crate::engine::{EngineKind, PolicyCollection};
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
    let collection = PolicyCollection::new(policy.clone());
    let request = collection.prepare_with(ctx, EngineKind::Reference);
    let plan = match request.query_plan(query.as_ref(), projection.as_ref()) {
        Ok(plan) => plan,
        Err(e) => {
            return Ok(Actual {
                error: Some(e.to_string()),
                ..Default::default()
            });
        }
    };
    let wants_results = case
        .request
        .as_ref()
        .is_some_and(|r| r.collection_documents.is_some());
    let results = if wants_results {
        let docs = collection_documents(case)?;
        match request.find(&plan, &docs) {
            Ok(reads) => Some(
                reads
                    .into_iter()
                    .filter_map(|r| r.outcome.document.filter(|_| r.selected))
                    .collect(),
            ),
            Err(e) => {
                return Ok(Actual {
                    applied: Some(plan.applied.clone()),
                    query: Some(plan.merged_query().clone()),
                    projection: Some(plan.output_projection().clone()),
                    error: Some(e.to_string()),
                    ..Default::default()
                });
            }
        }
    } else {
        None
    };
    Ok(Actual {
        query: Some(plan.merged_query().clone()),
        projection: Some(plan.output_projection().clone()),
        applied: Some(plan.applied),
        results,
        ..Default::default()
    })
}
