//! Stage: decide, per request. Input: a [`PreparedRequest`] (a policy, its compiled program, the
//! request context). Output: per owned document the read and write outcomes ([`ReadOutcome`],
//! [`WriteOutcome`]), explanations on demand, and the Device Sync decisions.

use super::EngineKind;
use std::sync::Arc;

use bson::Document;

use crate::compile::Program;
use crate::context::RequestContext;
use crate::eval::CompiledRequest;
use crate::eval::doc::{DocEval, DocRef, Fail, KeyCache};
use crate::eval::prepare::Prepared;
use crate::eval::read::Level;
use crate::limits::{LimitExceeded, Limits};
use crate::mql::TargetPart;
use crate::outcome::{
    ErrorCode, Explanation, ReadOutcome, SyncSessionOutcome, WriteError, WriteOutcome,
};
use crate::query::RuleFields;
use crate::reference;
use crate::reference::write::WriteKind;
use crate::rules::CollectionPolicy;
use crate::steps::StepBudget;

/// One request of one user against one collection.
#[derive(Debug, Clone)]
pub struct PreparedRequest<'p, 'c> {
    pub(crate) policy: CollectionPolicy<'p>,
    pub(super) program: &'p Program,
    pub(super) fields: &'p RuleFields,
    pub(super) limits: Limits,
    pub(crate) context: &'c RequestContext,
    pub(crate) explain: bool,
    /// Check raw documents in full before deciding ([`PreparedRequest::with_raw_validation`]).
    pub(super) validate_raw: bool,
    /// Add the read residual to the store query ([`PreparedRequest::with_pushdown`]).
    pub(crate) pushdown: bool,
    /// Apply `limit` before withholding, as App Services did
    /// ([`PreparedRequest::with_window_before_rules`]).
    pub(crate) window_before_rules: bool,
    pub(super) engine: EngineKind,
    /// The compiled engine's request state (`None` for the reference engine), shared by the
    /// copies [`PreparedRequest::with_explain`] makes.
    pub(super) prepared: Option<Arc<CompiledRequest<'c>>>,
    /// Why the request context was refused ([`Limits::check_context`]): every decision of the
    /// request fails with this reason, and no rule sees the context.
    pub(super) refused: Option<LimitExceeded>,
}

impl<'c> PreparedRequest<'_, 'c> {
    /// Device Sync: the session role of this request's user for the collection, and what it
    /// grants `doc` when given. `later` is the request context of the user's next session
    /// (changed custom data): when its role differs, the client is reset. Per-request work,
    /// answered by the reference evaluator in both engines.
    pub fn sync_session(
        &self,
        doc: Option<&Document>,
        later: Option<&RequestContext>,
    ) -> SyncSessionOutcome {
        reference::sync::session(&self.policy, self.context, doc, later, self.explain)
    }

    /// Device Sync: the verdict on one uploaded change — `pre` absent for a create, `post`
    /// absent for a delete.
    pub fn sync_write(&self, pre: Option<&Document>, post: Option<&Document>) -> WriteOutcome {
        reference::sync::write(&self.policy, self.context, pre, post, self.explain)
    }

    /// The engine answering this request.
    pub fn engine(&self) -> EngineKind {
        self.engine
    }

    /// The name of the role at `index` in the policy's roles.
    pub fn role_name(&self, index: usize) -> Option<&str> {
        self.policy.roles.get(index).map(|r| r.name.as_str())
    }

    /// The compiled read decision of an owned document.
    pub(super) fn read_compiled(&self, prepared: &Prepared<'_>, doc: &Document) -> ReadOutcome {
        let outcome =
            |role: Option<String>, document: Option<Document>, error: Option<String>| ReadOutcome {
                role,
                visible: document.is_some(),
                document,
                error,
                explanation: Explanation::default(),
            };
        if prepared.system {
            return outcome(None, Some(doc.clone()), None);
        }
        let program = self.program;
        let mut cache = KeyCache::default();
        let mut eval = DocEval::new(
            program,
            prepared,
            Some(DocRef::Own(doc)),
            Some(DocRef::Own(doc)),
            true,
            &mut cache,
            None,
        );
        let index = match eval.select() {
            Ok(Some(i)) => i as usize,
            Ok(None) => return outcome(None, None, None),
            Err(fail) => return outcome(None, None, Some(fail.message(program))),
        };
        let name = self.policy.roles.get(index).map(|r| r.name.clone());
        let Some(role) = program.roles.get(index) else {
            return outcome(name, None, None);
        };
        let result: Result<Option<Document>, Fail> = match eval.read_level(role) {
            Err(fail) => Err(fail),
            Ok(Level::Hidden) => Ok(None),
            Ok(Level::Whole) => Ok(Some(doc.clone())),
            Ok(Level::Fields(inherited)) => eval
                .redact_owned(&role.fields, doc, inherited)
                .map(|d| (!d.is_empty()).then_some(d)),
        };
        match result {
            Ok(document) => outcome(name, document, None),
            Err(fail) => outcome(name, None, Some(fail.message(program))),
        }
    }

    /// The compiled engine's state, unless explanations are asked for (the reference records
    /// them).
    fn compiled(&self) -> Option<&CompiledRequest<'c>> {
        if self.explain {
            None
        } else {
            self.prepared.as_deref()
        }
    }

    /// This request, recording an explanation in every outcome (off by default: it costs
    /// time). With the compiled engine, explained decisions are made by the reference
    /// evaluator. The request itself is left as it is (the copy shares its prepared state).
    pub fn with_explain(&self, explain: bool) -> Self {
        let mut copy = self.clone();
        copy.explain = explain;
        copy
    }

    /// This request with the read residual pushed into the store query (`true`, the default) or
    /// not: [`QueryPlan::residual`](crate::QueryPlan::residual) is computed either way; with
    /// pushdown the store returns only documents the rules could show, and a residual of
    /// *nothing* reads nothing. Answers are the same either way (the decision still runs on
    /// every document returned).
    pub fn with_pushdown(&self, pushdown: bool) -> Self {
        let mut copy = self.clone();
        copy.pushdown = pushdown;
        copy
    }

    /// This request with App Services' order of `limit` and withholding (off by default):
    /// `limit` counts the documents the filters and the client query select — withheld ones
    /// included, which then drop out, so a page may hold fewer than `limit` documents — instead
    /// of the documents the user may see. It turns pushdown off (App Services fetched before it
    /// decided). A sort still orders by what the user may see; withheld documents sort as if
    /// every field were missing (decision P3).
    pub fn with_window_before_rules(&self, before: bool) -> Self {
        let mut copy = self.clone();
        copy.window_before_rules = before;
        if before {
            copy.pushdown = false;
        }
        copy
    }

    /// Whether any rule governs this request's collection: a role (the collection's or the
    /// default rule's) or the system user's bypass. An app user's request on a collection no
    /// role governs fails as a whole (`NoMatchingRuleFound`, semantics 1.1).
    pub(crate) fn governed(&self) -> bool {
        self.context.is_system() || !self.policy.roles.is_empty()
    }

    /// The limits in force (the rule set's).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether raw documents are checked in full ([`PreparedRequest::with_raw_validation`]).
    pub fn validates_raw(&self) -> bool {
        self.validate_raw
    }

    /// Checks every raw document in full before the compiled engine decides it (off by
    /// default). The compiled raw path reads only the fields the rules need and trusts the
    /// rest to be valid BSON, as MongoDB guarantees for the documents it returns: keys unique
    /// at every level, strings and keys UTF-8. Its nesting is always measured (a cheap pass over
    /// types and lengths, skipped for documents too short to nest that deep): a document
    /// deeper than `max_document_depth` (code-with-scope scopes included) is withheld with an
    /// error, as in every other path. On bytes that break those rules its answer may
    /// differ from the reference's (which converts the document first: a repeated key keeps its
    /// first position and its last value; bytes that do not convert are withheld with an
    /// error). With validation on, the compiled raw path gives the reference's answer on any
    /// bytes, at the cost of one pass over each document.
    pub fn with_raw_validation(&self, validate: bool) -> Self {
        let mut copy = self.clone();
        copy.validate_raw = validate;
        copy
    }

    /// Whether the stored document `doc` is returned, and with which fields, for a read without
    /// a client query or projection. `doc` must be the document as stored (or as the database
    /// returns it under [`QueryPlan::store_projection`](crate::QueryPlan::store_projection)): never one the client's projection has
    /// narrowed, which would let the client choose what the rules see. A read with a client
    /// query or projection goes through [`PreparedRequest::read_for`].
    pub fn read(&self, doc: &Document) -> ReadOutcome {
        let _steps = StepBudget::start(self.limits.max_eval_steps);
        if let Some(limit) = self.refused.clone() {
            return too_deep_read(limit);
        }
        if let Err(limit) = self.limits.check_document(doc) {
            return too_deep_read(limit);
        }
        self.decide_read(doc)
    }

    /// The read decision of a document that has passed the request's and its own depth guards
    /// ([`PreparedRequest::read`], [`PreparedRequest::read_for`]), by the request's engine.
    pub(super) fn decide_read(&self, doc: &Document) -> ReadOutcome {
        match self.compiled() {
            Some(prepared) => self.read_compiled(prepared, doc),
            None => reference::read::read(&self.policy, self.context, doc, self.explain),
        }
    }

    /// The index of the first of an update's target paths
    /// ([`Update::targets`](crate::mql::Update::targets)) that the user may not read entirely
    /// in the stored `doc`, or `None` when all are readable (decision O17: such an update is
    /// refused whatever is stored there). An error — a rule that fails to evaluate, a document
    /// or request context over the limits — is the reason to refuse. Answered by the reference
    /// evaluator in both engines.
    pub fn unreadable_target(
        &self,
        doc: &Document,
        targets: &[Vec<TargetPart>],
    ) -> Result<Option<usize>, String> {
        let _steps = StepBudget::start(self.limits.max_eval_steps);
        if let Some(limit) = &self.refused {
            return Err(limit.to_string());
        }
        self.limits
            .check_document(doc)
            .map_err(|limit| limit.to_string())?;
        reference::targets::first_unreadable(&self.policy, self.context, doc, targets)
            .map_err(|failure| failure.to_string())
    }

    /// Whether inserting `doc` is permitted (an upsert that inserts is an insert).
    pub fn insert(&self, doc: &Document) -> WriteOutcome {
        self.write(WriteKind::Insert, None, Some(doc), || {
            reference::write::insert(&self.policy, self.context, doc, self.explain)
        })
    }

    /// Whether changing `pre` into `post` is permitted (update, replace, findAndModify).
    pub fn update(&self, pre: &Document, post: &Document) -> WriteOutcome {
        self.write(WriteKind::Update, Some(pre), Some(post), || {
            reference::write::update(&self.policy, self.context, pre, post, self.explain)
        })
    }

    /// Whether deleting the stored `doc` is permitted.
    pub fn delete(&self, doc: &Document) -> WriteOutcome {
        self.write(WriteKind::Delete, Some(doc), None, || {
            reference::write::delete(&self.policy, self.context, doc, self.explain)
        })
    }

    /// One write decision: its step budget, the depth guard on every image, then the compiled
    /// engine, or `reference` (the reference evaluator's entry point for this kind of write).
    fn write(
        &self,
        kind: WriteKind,
        pre: Option<&Document>,
        post: Option<&Document>,
        reference: impl FnOnce() -> WriteOutcome,
    ) -> WriteOutcome {
        let _steps = StepBudget::start(self.limits.max_eval_steps);
        if let Some(limit) = self.refused.clone() {
            return too_deep_write(limit);
        }
        if let Some(limit) = [pre, post]
            .into_iter()
            .flatten()
            .find_map(|d| self.limits.check_document(d).err())
        {
            return too_deep_write(limit);
        }
        match self.compiled() {
            Some(prepared) => {
                crate::eval::write::decide(self.program, prepared, &self.policy, kind, pre, post)
            }
            None => reference(),
        }
    }
}

/// A document nested deeper than `max_document_depth` is withheld before any rule sees it
/// (fail closed; evaluating it could exhaust the stack).
pub(super) fn too_deep_read(limit: LimitExceeded) -> ReadOutcome {
    ReadOutcome::withheld(Some(limit.to_string()))
}

/// A write of a document nested deeper than `max_document_depth` is refused before any rule
/// sees it.
pub(super) fn too_deep_write(limit: LimitExceeded) -> WriteOutcome {
    WriteOutcome {
        role: None,
        allowed: false,
        error: Some(WriteError {
            code: ErrorCode::RuleEvaluationFailed,
            message: limit.to_string(),
        }),
        explanation: Explanation::default(),
    }
}
