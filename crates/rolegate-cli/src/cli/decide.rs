//! Stage: the decisions of `eval` and `bench` — one path for both, so that `bench` times
//! exactly what `eval` prints. Input: a prepared request, the action, the request file (its
//! client query and projection) and the documents ([`super::inputs::Item`]). Output: one
//! [`Decision`] per document.
//!
//! Reads and searches first make the query plan (the filters that apply, the store query and
//! store projection sent to the database, the client query and output projection). Each
//! document then plays the stored document: it goes through the database's part of the plan in
//! memory (store query, store projection), then [`rolegate::PreparedRequest::read_for`]. A
//! document that a query does not select is withheld, `selected: false`. Writes are
//! `insert` / `update` (with the pre-image, or the document itself when none is given) /
//! `delete`.
//!
//! [`Decider::plain`] says when the plan leaves nothing but the rules' decision (no filter, no
//! client query, no projection): `bench` then times the raw-BSON path
//! ([`rolegate::PreparedRequest::redact_raw`]), which makes the same decision on the bytes.

use bson::RawDocument;
use clap::ValueEnum;
use rolegate::{
    Explanation, PlanError, PreparedRequest, QueryPlan, ReadOutcome, RequestContext, Scratch,
    WriteOutcome, mql,
    testing::{CaseRequest, to_document},
};
use serde_json::Value;

use super::CliError;
use super::inputs::Item;
use super::report::Problem;

/// What is asked for each document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Action {
    /// A read (`find`).
    Read,
    /// An Atlas Search (`$search`) read.
    Search,
    /// An insert of the document.
    Insert,
    /// An update: the pre-image (`--prev`) becomes the document.
    Update,
    /// A delete of the stored document.
    Delete,
}

impl Action {
    /// The spelling on the command line and in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Search => "search",
            Action::Insert => "insert",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    /// A read or a search.
    pub fn is_read(self) -> bool {
        matches!(self, Action::Read | Action::Search)
    }
}

/// The answer for one document.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A read: `selected` is false when a query of the plan does not select the document.
    Read {
        selected: bool,
        outcome: ReadOutcome,
    },
    /// A write.
    Write(WriteOutcome),
}

impl Decision {
    /// Visible (reads) or allowed (writes).
    pub fn yes(&self) -> bool {
        match self {
            Decision::Read { selected, outcome } => *selected && outcome.visible,
            Decision::Write(o) => o.allowed,
        }
    }
}

/// The query plan of a read with its store query compiled for the in-memory database.
struct ReadPlan {
    store_query: rolegate::rules::Expr,
    plan: QueryPlan,
}

/// Decides documents for one prepared request, as `eval` prints them and `bench` times them.
pub struct Decider<'a, 'p, 'c> {
    prepared: &'a PreparedRequest<'p, 'c>,
    context: &'c RequestContext,
    action: Action,
    read: Option<ReadPlan>,
    explain: bool,
}

impl<'a, 'p, 'c> Decider<'a, 'p, 'c> {
    /// The decider of `action`; for reads, with the query plan of `request`'s client query and
    /// projection. The inner error is a request that fails (a refused query operator, ...): no
    /// document is returned then.
    pub fn new(
        prepared: &'a PreparedRequest<'p, 'c>,
        context: &'c RequestContext,
        action: Action,
        request: Option<&CaseRequest>,
    ) -> Result<Result<Self, PlanError>, CliError> {
        let read = if action.is_read() {
            let plan = match query_plan(prepared, request)? {
                Ok(plan) => plan,
                Err(e) => return Ok(Err(e)),
            };
            let store_query = mql::compile_query(&plan.store_query).map_err(|e| {
                CliError::input(Problem::error(
                    "invalid-request",
                    format!("the store query is not a valid MongoDB query: {e}"),
                ))
            })?;
            Some(ReadPlan { store_query, plan })
        } else {
            None
        };
        Ok(Ok(Decider {
            prepared,
            context,
            action,
            read,
            explain: false,
        }))
    }

    /// This decider, saying (when `explain`) why a document the store query does not select is
    /// left out; give the value of the prepared request's
    /// [`with_explain`](PreparedRequest::with_explain). The other decisions carry the prepared
    /// request's own explanations.
    pub fn explaining(mut self, explain: bool) -> Self {
        self.explain = explain;
        self
    }

    /// The query plan (reads).
    pub fn plan(&self) -> Option<&QueryPlan> {
        self.read.as_ref().map(|r| &r.plan)
    }

    /// A read whose plan leaves only the rules' decision: no filter applied, no client query, no
    /// projection. Its decision on a document is [`PreparedRequest::redact_raw`]'s on the bytes.
    pub fn plain(&self) -> bool {
        self.read.as_ref().is_some_and(|r| {
            let p = &r.plan;
            p.applied.is_empty()
                && p.store_query.is_empty()
                && p.store_projection.is_empty()
                && p.merged_query().is_empty()
                && p.output_projection().is_empty()
        })
    }

    /// The decision for `item`; an error when the store query cannot be evaluated on it.
    pub fn decide(&self, item: &Item) -> Result<Decision, CliError> {
        let p = self.prepared;
        Ok(match (self.action, &self.read) {
            (Action::Read | Action::Search, Some(read)) => {
                // The database's part: the store query and the store projection.
                match mql::matches_with(&read.store_query, &item.doc, self.context) {
                    Ok(true) => {
                        let stored = mql::project(&read.plan.store_projection, &item.doc);
                        let planned = p.read_for(&read.plan, &stored);
                        Decision::Read {
                            selected: planned.selected,
                            outcome: planned.outcome,
                        }
                    }
                    Ok(false) => {
                        let mut outcome = ReadOutcome::withheld(None);
                        if self.explain {
                            outcome.explanation = not_selected(&read.plan);
                        }
                        Decision::Read {
                            selected: false,
                            outcome,
                        }
                    }
                    Err(e) => {
                        return Err(CliError::input(Problem::error(
                            "query-failed",
                            format!("{}: the query cannot be evaluated: {e}", item.label),
                        )));
                    }
                }
            }
            (Action::Read | Action::Search, None) => Decision::Read {
                selected: true,
                outcome: p.read(&item.doc),
            },
            (Action::Insert, _) => Decision::Write(p.insert(&item.doc)),
            (Action::Delete, _) => Decision::Write(p.delete(&item.doc)),
            (Action::Update, _) => {
                let pre = item.prev.as_ref().unwrap_or(&item.doc);
                Decision::Write(p.update(pre, &item.doc))
            }
        })
    }

    /// The raw-BSON read decision of a [`plain`](Self::plain) read: visible or not, the redacted
    /// document appended to `out`.
    pub fn decide_raw(&self, raw: &RawDocument, scratch: &mut Scratch, out: &mut Vec<u8>) -> bool {
        self.prepared.redact_raw(raw, scratch, out).visible
    }

    /// A plain read's decision alone on raw BSON (`read_raw`: no redacted output): visible.
    pub fn decide_raw_only(&self, raw: &RawDocument, scratch: &mut Scratch) -> bool {
        self.prepared.read_raw(raw, scratch).visible
    }
}

/// Why the store query of `plan` leaves a document out: the query, and the filters whose
/// queries it holds.
fn not_selected(plan: &QueryPlan) -> Explanation {
    let mut why = Explanation::default();
    why.push(
        None,
        format!(
            "the store query {} does not select this document",
            mql::document_to_json(&plan.store_query)
        ),
    );
    if !plan.applied.is_empty() {
        why.push(
            None,
            format!(
                "it holds the queries of the applied filters: {}",
                plan.applied.join(", ")
            ),
        );
    }
    why
}

/// The query plan of a read: the request's query and projection with the filters, without
/// pushdown.
fn query_plan(
    engine: &PreparedRequest<'_, '_>,
    request: Option<&CaseRequest>,
) -> Result<Result<QueryPlan, PlanError>, CliError> {
    let operation = request.and_then(|r| r.operation.as_ref());
    let doc = |v: Option<&Value>, what: &str| match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => to_document(v, what).map(Some).map_err(|e| {
            CliError::input(Problem::error("invalid-request", e.message).at_path(e.path))
        }),
    };
    let query = doc(
        operation.and_then(|op| op.client_query()),
        "request.operation.query",
    )?;
    let projection = match request.and_then(|r| r.client_projection.as_ref()) {
        Some(p) => doc(Some(p), "request.client_projection")?,
        None => doc(
            operation.and_then(|op| op.projection.as_ref()),
            "request.operation.projection",
        )?,
    };
    // `eval` and `bench` decide every document given, as the rules see it: the residual is
    // not pushed (a document it would keep from the store would show as not selected).
    Ok(engine
        .with_pushdown(false)
        .query_plan(query.as_ref(), projection.as_ref()))
}
