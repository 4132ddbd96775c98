//! Stage: reads with a client query or projection. Input: a [`PreparedRequest`], the client's
//! query and projection, then the stored documents the database returns. Output: a
//! [`QueryPlan`] (what to send to the database) and per stored document a [`PlannedRead`]:
//! decided on the stored document, redacted, the client query on the redacted view, projected.

use super::PreparedRequest;
use super::request::too_deep_read;

use bson::Document;

use crate::outcome::{Explanation, ReadOutcome};
use crate::query::plan::{PlanInput, PlanIssuer};
use crate::query::{PlanError, QueryPlan, RunError, memory, plan};
use crate::steps::StepBudget;

impl<'c> PreparedRequest<'_, 'c> {
    /// The plan of a read: the filters that apply, the query and projection to send to the
    /// database ([`QueryPlan::store_query`], [`QueryPlan::store_projection`]), and — private to
    /// the plan — the client query and output projection that [`PreparedRequest::read_for`]
    /// applies to each stored document. The client query and projection are checked first:
    /// operators clients may not use (`$where`, `$expr`, `$function`, `$regex`, ...) are refused
    /// with [`PlanError::OperatorNotAllowed`]. The system user bypasses filters.
    pub fn query_plan(
        &self,
        client_query: Option<&Document>,
        client_projection: Option<&Document>,
    ) -> Result<QueryPlan, PlanError> {
        // Planning (the filters' `apply_when` and queries) has its own step budget.
        let _steps = StepBudget::start(self.limits.max_eval_steps);
        // The depth guard of the request and of the client's query and projection (finding 10
        // of issue 9): nothing below sees a value nested too deep.
        if let Some(limit) = &self.refused {
            return Err(PlanError::Limit(limit.clone()));
        }
        for (what, value) in [
            ("the client query", client_query),
            ("the client projection", client_projection),
        ] {
            if let Some(doc) = value {
                self.limits
                    .check_document_as(what, doc)
                    .map_err(PlanError::Limit)?;
            }
        }
        let (filters, fields) = if self.context.is_system() {
            (&[][..], &crate::query::reads::SYSTEM_FIELDS)
        } else {
            (self.policy.filters, self.fields)
        };
        let input = PlanInput {
            filters,
            fields,
            max_depth: self.limits.max_document_depth,
        };
        let mut plan = plan::plan_explained(
            input,
            client_query,
            client_projection,
            self.context,
            self.explain,
        )?;
        if self.explain && self.context.is_system() {
            plan.explanation = Explanation::default();
            plan.explanation
                .push(None, "the system user bypasses every filter");
        }
        plan.set_residual(
            crate::query::Residual::of(self.policy.roles, self.context),
            self.pushdown,
        );
        if self.pushdown
            && let Some(readable) =
                crate::query::Residual::readable_fields(self.policy.roles, self.context)
        {
            plan.narrow_store_projection(&readable, &self.fields.read_by_rules);
        }
        plan.set_issuer(self.issuer());
        Ok(plan)
    }

    /// Identifies this request's collection rules and context (plans are bound to them).
    fn issuer(&self) -> PlanIssuer {
        PlanIssuer {
            fields: std::ptr::from_ref(self.fields) as usize,
            filters: (
                self.policy.filters.as_ptr() as usize,
                self.policy.filters.len(),
            ),
            context: std::ptr::from_ref(self.context) as usize,
        }
    }

    /// The answer to a planned read for one document **as the database stored it** (or as it
    /// returned it for [`QueryPlan::store_query`] and [`QueryPlan::store_projection`], which
    /// keep every field the rules read), in the only safe order:
    ///
    /// 1. the applied filters' queries must hold on the stored document (the database applied
    ///    them already; checked again so that a store that ignored them cannot widen access);
    /// 2. roles, document filters and field rules decide on the stored document
    ///    ([`PreparedRequest::read`]);
    /// 3. the client query is evaluated on what the user may see — the redacted document,
    ///    narrowed by the filters' projections: a field the role cannot read (or a filter
    ///    projects away) is missing there, so a predicate on it cannot reveal its value;
    /// 4. the output projection (filters' and client's) narrows the redacted document; a
    ///    document with nothing left is withheld (as one with no readable field is).
    ///
    /// A document that a query does not select is `selected: false` and not visible.
    ///
    /// Each stage has its own step budget (`limits.max_eval_steps`), one after the other: the
    /// client query's budget does not depend on what the rules' decision cost, which depends on
    /// hidden values.
    ///
    /// A plan is bound to the collection (roles and filters) and the request context it was
    /// made for: a plan from another collection (whose filters would be the wrong ones),
    /// another context (another user's filters) or built by hand is refused — not selected,
    /// with the reason. (The binding is by identity, a guard against mistakes: keep a plan no
    /// longer than its request.)
    pub fn read_for(&self, plan: &QueryPlan, stored: &Document) -> PlannedRead {
        let read = self.read_view(plan, stored);
        self.project_view(plan, read)
    }

    /// Steps 1–3 of [`PreparedRequest::read_for`]: a selected, visible read's `document` is the
    /// redacted view, not yet projected (operations sort it first: a sort sees the readable
    /// values, not the projection).
    pub(crate) fn read_view(&self, plan: &QueryPlan, stored: &Document) -> PlannedRead {
        let not_selected = |outcome: ReadOutcome| PlannedRead {
            selected: false,
            outcome,
        };
        let failed = |error: String| not_selected(ReadOutcome::withheld(Some(error)));
        if plan.issuer() != Some(self.issuer()) {
            return failed(
                "the query plan was made for another collection or request (use this request's query_plan)"
                    .to_string(),
            );
        }
        // The document's depth guard, once: `decide_read` below does not repeat it.
        if let Err(limit) = self.limits.check_document(stored) {
            return not_selected(too_deep_read(limit));
        }
        if let Some(filters) = plan.filter_check() {
            let selects = {
                let _steps = StepBudget::start(self.limits.max_eval_steps);
                memory::matches_with(filters, stored, self.context)
            };
            match selects {
                Ok(true) => {}
                Ok(false) => {
                    let mut outcome = ReadOutcome::withheld(None);
                    if self.explain {
                        outcome.explanation.push(
                            None,
                            format!(
                                "the queries of the applied filters ({}) do not select this document",
                                plan.applied.join(", ")
                            ),
                        );
                    }
                    return not_selected(outcome);
                }
                Err(e) => return failed(format!("the filters' queries failed: {e}")),
            }
        }
        let mut outcome = match &self.refused {
            Some(limit) => too_deep_read(limit.clone()),
            None => {
                let _steps = StepBudget::start(self.limits.max_eval_steps);
                self.decide_read(stored)
            }
        };
        let Some(view) = outcome.document.take() else {
            return PlannedRead {
                selected: true,
                outcome,
            };
        };
        if let Some(client) = plan.client_check() {
            let selects = {
                let _steps = StepBudget::start(self.limits.max_eval_steps);
                if plan.view_projection().is_empty() {
                    memory::matches_with(client, &view, self.context)
                } else {
                    let seen = memory::project(plan.view_projection(), &view);
                    memory::matches_with(client, &seen, self.context)
                }
            };
            match selects {
                Ok(true) => {}
                Ok(false) => {
                    outcome.visible = false;
                    if self.explain {
                        outcome.explanation.push(
                            None,
                            "the client query does not select the readable fields; not returned",
                        );
                    }
                    return not_selected(outcome);
                }
                Err(e) => {
                    outcome.visible = false;
                    outcome.error = Some(format!("the client query failed: {e}"));
                    return not_selected(outcome);
                }
            }
        }
        outcome.document = Some(view);
        PlannedRead {
            selected: true,
            outcome,
        }
    }

    /// Step 4 of [`PreparedRequest::read_for`]: the output projection of a read from
    /// [`PreparedRequest::read_view`]; a document with nothing left is withheld.
    pub(crate) fn project_view(&self, plan: &QueryPlan, mut read: PlannedRead) -> PlannedRead {
        let Some(view) = read.outcome.document.take() else {
            return read;
        };
        let outcome = &mut read.outcome;
        let projected = if plan.output_projection().is_empty() {
            view
        } else {
            memory::project(plan.output_projection(), &view)
        };
        if projected.is_empty() {
            // Nothing readable is left: withheld, as a document with no readable field is.
            // (Returning `{}` would differ between the stored document and the one the store
            // projection returns, which may lack readable fields the output drops.)
            outcome.visible = false;
            if self.explain {
                outcome.explanation.push(
                    None,
                    "no readable field is left after the projection; withheld",
                );
            }
        } else {
            outcome.document = Some(projected);
        }
        read
    }

    /// Runs a planned read over a whole collection in memory: the database's part
    /// ([`memory::run`]: store query and store projection), then [`PreparedRequest::read_for`]
    /// on each document it returns. The documents the client receives are the visible outcomes'
    /// `document`s, in order.
    pub fn find(
        &self,
        plan: &QueryPlan,
        collection: &[Document],
    ) -> Result<Vec<PlannedRead>, RunError> {
        let stored = memory::run(plan, collection)?;
        Ok(stored.iter().map(|doc| self.read_for(plan, doc)).collect())
    }
}

/// The answer of [`PreparedRequest::read_for`] for one stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRead {
    /// False when the filters' queries (on the stored document) or the client query (on the
    /// redacted document) do not select it: it is not part of the results, whatever its role.
    pub selected: bool,
    /// The rules' decision on the stored document; when visible, `document` is the redacted
    /// document narrowed by the output projection (what the client receives).
    pub outcome: ReadOutcome,
}
