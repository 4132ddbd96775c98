//! Stage: one operation under the rules, without I/O. Input: a [`PreparedRequest`] and an
//! [`Operation`]; then the documents the store returned for the plan's read. Output: an
//! [`OperationPlan`] (what to read), then a [`Decided`] operation: the writes to apply all or
//! nothing (each replace and delete conditional on its pre-image) and the client's result.
//!
//! The order of every operation that selects documents: the store returns the documents the
//! filters' queries select (whole pre-images for writes); each is decided on as stored (role,
//! redaction); the client's query runs on the redacted view, so a predicate on a field the
//! document's role cannot read sees it missing; the sort orders the views (readable values
//! only); `limit` counts visible documents; the projection comes last.

use bson::{Bson, DateTime, Document, doc, oid::ObjectId};

use crate::engine::{Collection, PlannedRead, PreparedRequest, Rules};
use crate::mql::{SortSpec, UpdateContext, Window, sort_order};
use crate::outcome::WriteOutcome;
use crate::query::QueryPlan;
use crate::query::memory::project;

use super::aggregate;
use super::error::OpError;
use super::request::{Action, Operation, Returning, Selection};
use super::store::{Change, Store, StoreError, StoreRead, WriteSet};
use super::targets;

/// How many times [`execute`] re-reads after a write conflict before giving up.
pub const MAX_ATTEMPTS: usize = 3;

/// What an operation needs besides the rules and the store: the time (`$currentDate`) and
/// the `_id`s of inserted documents that have none.
pub struct OpEnv {
    /// The time of the operation.
    pub now: DateTime,
    next_id: Box<dyn FnMut() -> Bson + Send>,
}

impl OpEnv {
    /// The current time and new ObjectIds.
    pub fn new() -> OpEnv {
        OpEnv {
            now: DateTime::now(),
            next_id: Box::new(|| Bson::ObjectId(ObjectId::new())),
        }
    }

    /// A fixed time and `_id`s from `ids` (tests, reproducible runs).
    pub fn fixed(now: DateTime, ids: impl FnMut() -> Bson + Send + 'static) -> OpEnv {
        OpEnv {
            now,
            next_id: Box::new(ids),
        }
    }

    fn new_id(&mut self) -> Bson {
        (self.next_id)()
    }
}

impl Default for OpEnv {
    fn default() -> OpEnv {
        OpEnv::new()
    }
}

impl std::fmt::Debug for OpEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpEnv")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// What an operation reads first.
#[derive(Debug, Clone)]
pub struct OperationPlan {
    read: Option<StoreRead>,
    query_plan: Option<QueryPlan>,
}

impl OperationPlan {
    /// The read to give the store (`None`: the operation reads nothing, e.g. an insert).
    pub fn read(&self) -> Option<&StoreRead> {
        self.read.as_ref()
    }
}

/// A decided operation: what to write, and what the client gets once it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// The writes, all or nothing (`None`: nothing to write).
    pub writes: Option<WriteSet>,
    /// The client's result (App Services' shapes: an array for `find`, `{"matchedCount", ...}`
    /// for updates, ...).
    pub result: Bson,
    /// **Detailed view** (empty unless the request explains): the store query, the number of
    /// documents it returned, the decision on each.
    pub explanation: Vec<String>,
}

/// Runs `op` on a synchronous `store`: plan, read, decide, write; after a write conflict (a
/// document changed since it was read) it starts again from the read, at most
/// [`MAX_ATTEMPTS`] times, and never writes a post-image computed from a stale pre-image.
pub fn execute<S: Store + ?Sized>(
    request: &PreparedRequest<'_, '_>,
    op: &Operation,
    store: &mut S,
    env: &mut OpEnv,
) -> Result<Decided, OpError> {
    let mut last = String::new();
    for _ in 0..MAX_ATTEMPTS {
        let plan = request.plan_operation(op)?;
        let stored = match plan.read() {
            Some(read) => store.find(read).map_err(|e| OpError::store(&e))?,
            None => Vec::new(),
        };
        let decided = request.decide_operation(op, &plan, stored, env)?;
        let Some(writes) = &decided.writes else {
            return Ok(decided);
        };
        match store.write(writes) {
            Ok(()) => return Ok(decided),
            Err(e @ StoreError::Conflict { .. }) => last = e.to_string(),
            Err(e) => return Err(OpError::store(&e)),
        }
    }
    Err(OpError::conflict(format!(
        "gave up after {MAX_ATTEMPTS} attempts: {last}"
    )))
}

impl Rules {
    /// The rules of the collection `op` addresses: `service/db.coll` when the client named a
    /// service that is one of the app's data sources, else `db.coll` (which must be
    /// unambiguous). `NoMatchingRuleFound` when no rules govern it.
    pub fn operation_collection(&self, op: &Operation) -> Result<Collection, OpError> {
        let plain = op.namespace().to_string();
        if let Some(service) = op.service()
            && let Ok(c) = self.collection(&format!("{service}/{plain}"))
        {
            return Ok(c);
        }
        self.collection(&plain).map_err(|e| {
            let mut err = OpError::no_rule(&plain);
            err.add_detail(&e.reason);
            err
        })
    }
}

impl PreparedRequest<'_, '_> {
    /// What `op` reads: the query and projection for the store. Checks the client's query
    /// and projection (operators App Services refused to app users fail here).
    pub fn plan_operation(&self, op: &Operation) -> Result<OperationPlan, OpError> {
        self.check_governed(op)?;
        let namespace = op.namespace().clone();
        let (query, projection, whole) = match &op.action {
            Action::Insert { .. } => {
                return Ok(OperationPlan {
                    read: None,
                    query_plan: None,
                });
            }
            Action::Find {
                selection,
                projection,
                ..
            } => (Some(&selection.query), projection.as_ref(), false),
            Action::Count { selection } => (Some(&selection.query), None, false),
            Action::Aggregate { .. } => (None, None, false),
            Action::Update {
                selection,
                returning,
                ..
            }
            | Action::Delete {
                selection,
                returning,
                ..
            } => (
                Some(&selection.query),
                returning.as_ref().and_then(|r| r.projection.as_ref()),
                true,
            ),
        };
        let plan = self.query_plan(query, projection)?;
        // Writes need whole pre-images (the replace writes them back); a sort needs its
        // fields, which the plan's store projection does not know of.
        let mut store_projection = plan.store_projection.clone();
        if let Some(sort) = op.action.sort() {
            keep_sort_fields(&mut store_projection, sort);
        }
        let read = StoreRead {
            namespace,
            query: plan.store_query.clone(),
            projection: (!whole && !store_projection.is_empty()).then_some(store_projection),
        };
        Ok(OperationPlan {
            // No role can show any document: nothing to read (pushdown).
            read: (!plan.reads_nothing()).then_some(read),
            query_plan: Some(plan),
        })
    }

    /// Decides `op` over the documents the store returned for `plan`'s read: the client's
    /// result and the writes (nothing is written unless every document's write is permitted).
    pub fn decide_operation(
        &self,
        op: &Operation,
        plan: &OperationPlan,
        stored: Vec<Document>,
        env: &mut OpEnv,
    ) -> Result<Decided, OpError> {
        self.check_governed(op)?;
        let mut explanation = Vec::new();
        if self.explain {
            if let Some(residual) = plan.query_plan.as_ref().and_then(QueryPlan::residual) {
                explanation.push(format!("residual: {}", residual.describe()));
            }
            if let Some(read) = &plan.read {
                explanation.push(format!("store query on {}: {}", read.namespace, read.query));
                if let Some(p) = &read.projection {
                    explanation.push(format!("store projection: {p}"));
                }
            }
            if plan.query_plan.is_some() {
                explanation.push(format!("store returned {}", stored.len()));
            }
        }
        let mut cx = Cx {
            request: self,
            explanation,
        };
        let decided = Self::decide_action(&mut cx, op, plan, stored, env);
        let (result, writes) = match decided {
            Ok(done) => done,
            Err(e) => return Err(e.with_explanation(cx.explanation)),
        };
        Ok(Decided {
            writes: writes.map(|changes| WriteSet {
                namespace: op.namespace().clone(),
                changes,
            }),
            result,
            explanation: cx.explanation,
        })
    }

    /// The result and changes of `op`'s action.
    fn decide_action(
        cx: &mut Cx<'_, '_, '_>,
        op: &Operation,
        plan: &OperationPlan,
        stored: Vec<Document>,
        env: &mut OpEnv,
    ) -> Result<Outcome, OpError> {
        let this = cx.request;
        Ok(match (&op.action, &plan.query_plan) {
            (Action::Insert { documents, many }, _) => cx.insert(documents, *many, env)?,
            (_, None) => return Err(OpError::invalid("the operation plan has no read")),
            (Action::Find { selection, one, .. }, Some(qp)) => {
                // `limit` counts the documents the user receives: a view the projection
                // empties is withheld, so with a projection the limit applies after it.
                let projected = !qp.output_projection().is_empty();
                let unlimited = Selection {
                    limit: 0,
                    ..selection.clone()
                };
                let views =
                    cx.select(qp, &stored, if projected { &unlimited } else { selection })?;
                let wanted = usize::try_from(selection.limit.unsigned_abs()).unwrap_or(usize::MAX);
                let mut docs = Vec::with_capacity(views.len());
                for (_, read) in views {
                    if projected && wanted != 0 && docs.len() == wanted {
                        break;
                    }
                    let read = this.project_view(qp, read);
                    if let Some(d) = read.outcome.document {
                        docs.push(Bson::Document(d));
                    }
                }
                let result = if *one {
                    docs.into_iter().next().unwrap_or(Bson::Null)
                } else {
                    Bson::Array(docs)
                };
                (result, None)
            }
            (Action::Count { selection }, Some(qp)) => {
                let n = cx.select(qp, &stored, selection)?.len();
                (Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX)), None)
            }
            (Action::Aggregate { pipeline }, Some(qp)) => {
                let all = Selection {
                    query: Document::new(),
                    sort: None,
                    limit: 0,
                };
                let views: Vec<Document> = cx
                    .select(qp, &stored, &all)?
                    .into_iter()
                    .filter_map(|(_, r)| r.outcome.document)
                    .collect();
                let out = aggregate::run(this, pipeline, views)?;
                (
                    Bson::Array(out.into_iter().map(Bson::Document).collect()),
                    None,
                )
            }
            (
                Action::Update {
                    selection,
                    update,
                    upsert,
                    many,
                    returning,
                },
                Some(qp),
            ) => cx.update(
                qp,
                &stored,
                selection,
                update,
                *upsert,
                *many,
                returning.as_ref(),
                env,
            )?,
            (
                Action::Delete {
                    selection,
                    many,
                    returning,
                },
                Some(qp),
            ) => cx.delete(qp, &stored, selection, *many, returning.as_ref())?,
        })
    }
}

impl PreparedRequest<'_, '_> {
    /// `NoMatchingRuleFound` when no role governs the collection and the user is not the
    /// system user: the request fails as a whole, reads included (semantics 1.1).
    fn check_governed(&self, op: &Operation) -> Result<(), OpError> {
        if self.governed() {
            Ok(())
        } else {
            Err(OpError::no_rule(&op.namespace().to_string()))
        }
    }
}

/// Widens a store projection so that it keeps the top-level fields `sort` reads: an inclusive
/// projection includes them, an exclusive one stops excluding paths under them.
pub(super) fn keep_sort_fields(projection: &mut Document, sort: &Document) {
    if projection.is_empty() {
        return;
    }
    let tops: Vec<&str> = sort
        .keys()
        .filter(|k| !k.starts_with('$'))
        .map(|k| k.split('.').next().unwrap_or(k))
        .collect();
    let inclusive = projection.values().any(|v| matches!(v, Bson::Int32(1)));
    if inclusive {
        for top in tops {
            if !projection.contains_key(top) {
                projection.insert(top, 1);
            }
        }
    } else {
        let excluded: Vec<String> = projection
            .keys()
            .filter(|k| tops.contains(&k.split('.').next().unwrap_or(k)))
            .cloned()
            .collect();
        for key in excluded {
            projection.remove(&key);
        }
    }
}

/// The state of one decision.
struct Cx<'r, 'p, 'c> {
    request: &'r PreparedRequest<'p, 'c>,
    explanation: Vec<String>,
}

type Outcome = (Bson, Option<Vec<Change>>);

impl Cx<'_, '_, '_> {
    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.request.explain {
            self.explanation.push(line());
        }
    }

    /// The visible documents the selection picks, as (index in `stored`, redacted view), sorted
    /// and limited. With App Services' order ([`PreparedRequest::with_window_before_rules`]),
    /// withheld documents the filters select take places in the window too (sorted as if every
    /// field were missing), and drop out after it (decision P3).
    fn select(
        &mut self,
        qp: &QueryPlan,
        stored: &[Document],
        selection: &Selection,
    ) -> Result<Vec<(usize, PlannedRead)>, OpError> {
        let before = self.request.window_before_rules;
        let mut views = Vec::new();
        let mut visible = 0usize;
        for (i, doc) in stored.iter().enumerate() {
            let read = narrowed(qp, self.request.read_view(qp, doc));
            // Only explanations name the document.
            let id = || id_text(doc);
            if read.selected && read.outcome.visible {
                visible += 1;
                self.note(|| {
                    format!(
                        "_id {}: role {}, visible, selected",
                        id(),
                        read.outcome.role.as_deref().unwrap_or("-")
                    )
                });
                views.push((i, read));
            } else {
                let why = read.outcome.error.clone().unwrap_or_else(|| {
                    if read.selected {
                        "withheld".into()
                    } else {
                        "not selected".into()
                    }
                });
                self.note(|| format!("_id {}: {why}", id()));
                if before && read.selected {
                    views.push((i, read));
                }
            }
        }
        self.note(|| format!("visible {visible}"));
        let natural = Document::new();
        let spec = SortSpec::parse(selection.sort.as_ref().unwrap_or(&natural))
            .map_err(|e| OpError::invalid(format!("`sort`: {e}")))?;
        let window = Window::new(0, selection.limit)
            .map_err(|e| OpError::invalid(format!("`limit`: {e}")))?;
        let order = {
            let docs: Vec<&Document> = views
                .iter()
                .map(|(_, r)| match &r.outcome.document {
                    Some(view) if r.outcome.visible => view,
                    _ => &natural,
                })
                .collect();
            sort_order(&docs, &spec, window).map_err(|e| OpError::mongodb(e.to_string()))?
        };
        let mut slots: Vec<Option<(usize, PlannedRead)>> = views.into_iter().map(Some).collect();
        Ok(order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .filter(|(_, r)| r.outcome.visible)
            .collect())
    }

    fn insert(
        &mut self,
        documents: &[Document],
        many: bool,
        env: &mut OpEnv,
    ) -> Result<Outcome, OpError> {
        let mut changes = Vec::with_capacity(documents.len());
        let mut ids = Vec::with_capacity(documents.len());
        for (i, doc) in documents.iter().enumerate() {
            let doc = with_id(doc, env);
            let outcome = self.request.insert(&doc);
            let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
            self.judge(
                &outcome,
                || format!("insert #{i} (_id {id})"),
                "",
                &format!(" (document #{i}, _id {id})"),
            )?;
            ids.push(id);
            changes.push(Change::Insert(doc));
        }
        let result = if many {
            Bson::Document(doc! {"insertedIds": ids})
        } else {
            Bson::Document(doc! {"insertedId": ids.into_iter().next().unwrap_or(Bson::Null)})
        };
        Ok((result, Some(changes)))
    }

    #[allow(clippy::too_many_arguments, reason = "the parts of one update action")]
    fn update(
        &mut self,
        qp: &QueryPlan,
        stored: &[Document],
        selection: &Selection,
        update: &crate::mql::Update,
        upsert: bool,
        many: bool,
        returning: Option<&Returning>,
        env: &mut OpEnv,
    ) -> Result<Outcome, OpError> {
        let mut picked = self.select(qp, stored, selection)?;
        if !many {
            picked.truncate(1);
        }
        let ctx = UpdateContext::new(env.now, Bson::Null)
            .with_query(&selection.query)
            .map_err(|e| OpError::invalid(format!("`query`: {e}")))?;
        let positional = update.is_positional();
        let mut changes = Vec::with_capacity(picked.len());
        let mut modified = 0usize;
        let mut returned = Bson::Null;
        let matched = picked.len();
        for (i, view) in picked {
            let Some(pre) = stored.get(i) else { continue };
            let id = id_text(pre);
            // Before the update runs: its outcome must not depend on what the user cannot read.
            if let Some(refused) =
                targets::refusal(self.request, qp, pre, update, view.outcome.role.as_deref())
            {
                self.judge(
                    &refused,
                    || format!("update of _id {id}"),
                    " (it names a path the user cannot read)",
                    &format!(" (_id {id})"),
                )?;
            }
            let failed = |e| OpError::mongodb(format!("update of _id {id}: {e}"));
            let updated = if positional {
                // The positional `$` takes its element from what the user may read (O14).
                let seen = view.outcome.document.as_ref().unwrap_or(pre);
                let index = ctx.matched_index_in(seen).map_err(failed)?;
                update.apply(pre, &ctx.clone().with_matched_index(index))
            } else {
                update.apply(pre, &ctx)
            }
            .map_err(failed)?;
            let outcome = self.request.update(pre, &updated.document);
            self.judge(
                &outcome,
                || format!("update of _id {id}"),
                if updated.modified { "" } else { " (unchanged)" },
                &format!(" (_id {id})"),
            )?;
            if let Some(r) = returning {
                returned = if r.new_document {
                    self.returned_image(qp, &updated.document)
                } else {
                    self.returned_view(qp, view)
                };
            }
            if updated.modified {
                modified += 1;
                changes.push(Change::Replace {
                    expected: pre.clone(),
                    document: updated.document,
                });
            }
        }
        let mut upserted = None;
        if matched == 0 && upsert {
            let id = env.new_id();
            let ctx = UpdateContext::new(env.now, id)
                .with_query(&selection.query)
                .map_err(|e| OpError::invalid(format!("`query`: {e}")))?;
            let doc = update
                .upsert(&selection.query, &ctx)
                .map_err(|e| OpError::mongodb(format!("upsert: {e}")))?;
            let outcome = self.request.insert(&doc);
            let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
            self.judge(
                &outcome,
                || format!("upsert (_id {id})"),
                "",
                &format!(" (upsert, _id {id})"),
            )?;
            if let Some(r) = returning
                && r.new_document
            {
                returned = self.returned_image(qp, &doc);
            }
            changes.push(Change::Insert(doc));
            upserted = Some(id);
        }
        let result = if returning.is_some() {
            returned
        } else {
            let mut out = doc! {
                "matchedCount": count32(matched),
                "modifiedCount": count32(modified),
            };
            if let Some(id) = upserted {
                out.insert("upsertedId", id);
            }
            Bson::Document(out)
        };
        Ok((result, (!changes.is_empty()).then_some(changes)))
    }

    fn delete(
        &mut self,
        qp: &QueryPlan,
        stored: &[Document],
        selection: &Selection,
        many: bool,
        returning: Option<&Returning>,
    ) -> Result<Outcome, OpError> {
        let mut picked = self.select(qp, stored, selection)?;
        if !many {
            picked.truncate(1);
        }
        let mut changes = Vec::with_capacity(picked.len());
        let mut returned = Bson::Null;
        for (i, view) in picked {
            let Some(pre) = stored.get(i) else { continue };
            let id = id_text(pre);
            let outcome = self.request.delete(pre);
            self.judge(
                &outcome,
                || format!("delete of _id {id}"),
                "",
                &format!(" (_id {id})"),
            )?;
            if returning.is_some() {
                returned = self.returned_view(qp, view);
            }
            changes.push(Change::Delete {
                expected: pre.clone(),
            });
        }
        let result = if returning.is_some() {
            returned
        } else {
            Bson::Document(doc! {"deletedCount": count32(changes.len())})
        };
        Ok((result, (!changes.is_empty()).then_some(changes)))
    }

    /// Notes a write decision (`<what>: role R, permitted<suffix>`) and refuses the operation
    /// when the write is not permitted, with `where_` appended to the detail.
    fn judge(
        &mut self,
        outcome: &WriteOutcome,
        what: impl FnOnce() -> String,
        suffix: &str,
        where_: &str,
    ) -> Result<(), OpError> {
        self.note(|| {
            format!(
                "{}: role {}, {}{suffix}",
                what(),
                outcome.role.as_deref().unwrap_or("-"),
                if outcome.allowed {
                    "permitted"
                } else {
                    "refused"
                }
            )
        });
        if outcome.allowed {
            Ok(())
        } else {
            Err(OpError::refused(outcome, where_))
        }
    }

    /// A pre-image as the client sees it: its redacted view, projected; `{}` when the user may
    /// read it but the projection leaves nothing (as MongoDB returns), `null` when withheld.
    fn returned_view(&self, qp: &QueryPlan, view: PlannedRead) -> Bson {
        let readable = view.outcome.visible && view.outcome.document.is_some();
        match self.request.project_view(qp, view).outcome.document {
            Some(doc) => Bson::Document(doc),
            None if readable => Bson::Document(Document::new()),
            None => Bson::Null,
        }
    }

    /// A post-image as the client sees it: decided as a read (its role, its redaction),
    /// projected; `null` when the user may not read it.
    fn returned_image(&self, qp: &QueryPlan, doc: &Document) -> Bson {
        let read = PlannedRead {
            selected: true,
            outcome: self.request.read(doc),
        };
        self.returned_view(qp, read)
    }
}

/// A read view narrowed by the applied filters' projections: what the user may see of the
/// document, which is all a sort or a pipeline may see (a field a filter projects away is
/// hidden like one a role hides). A view with nothing left is withheld, as a read withholds it.
fn narrowed(qp: &QueryPlan, mut read: PlannedRead) -> PlannedRead {
    if qp.view_projection().is_empty() {
        return read;
    }
    if let Some(view) = read.outcome.document.take() {
        let seen = project(qp.view_projection(), &view);
        if seen.is_empty() {
            read.outcome.visible = false;
        } else {
            read.outcome.document = Some(seen);
        }
    }
    read
}

/// `doc` with an `_id` (a new one first, when it has none).
fn with_id(doc: &Document, env: &mut OpEnv) -> Document {
    if doc.contains_key("_id") {
        return doc.clone();
    }
    let mut out = Document::new();
    out.insert("_id", env.new_id());
    for (k, v) in doc {
        out.insert(k.clone(), v.clone());
    }
    out
}

fn id_text(doc: &Document) -> String {
    doc.get("_id")
        .map_or_else(|| "(none)".to_string(), ToString::to_string)
}

fn count32(n: usize) -> Bson {
    Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX))
}
