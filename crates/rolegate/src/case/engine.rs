//! Stage: the engine seam of the case runner. Input: a collection's policy (or the Sync, service
//! and function rules), a request context and documents. Output: the outcomes of
//! [`crate::outcome`].
//!
//! Every conformance case runs through a [`CaseEngine`]; [`EngineChoice`] names the engines that
//! exist: the reference evaluator ([`crate::reference`]) and the compiled engine (through the
//! public API, [`Collection`](crate::Collection) with [`EngineKind::Compiled`]). The same case
//! files check that they agree (style guide §8). The compiled engine's reads are also checked
//! against its raw path: [`PreparedRequest::read_raw`](crate::PreparedRequest::read_raw) and
//! [`PreparedRequest::redact_raw`](crate::PreparedRequest::redact_raw) must give the same role,
//! visibility and redacted document as `read` (a disagreement flips the answer's visibility, so the
//! case fails).

use bson::{Document, RawDocumentBuf};

use crate::context::RequestContext;
use crate::engine::{EngineKind, PolicyCollection, Scratch};
use crate::outcome::{PartitionAccess, ReadOutcome, SyncSessionOutcome, WriteOutcome};
use crate::reference;
use crate::rules::{CollectionPolicy, FunctionConfig, PartitionPermissions, ServiceRule};

/// The engines that can answer conformance cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EngineChoice {
    /// The reference evaluator: a direct walk over the validated rules.
    #[default]
    Reference,
    /// The compiled engine (the decision program [`Rules`](crate::Rules) runs by default) through
    /// the public API.
    Compiled,
}

impl EngineChoice {
    /// Every engine, for runners that check them all.
    pub const ALL: [EngineChoice; 2] = [EngineChoice::Reference, EngineChoice::Compiled];

    /// The engine's implementation.
    pub fn engine(self) -> &'static dyn CaseEngine {
        match self {
            EngineChoice::Reference => &ReferenceEngine,
            EngineChoice::Compiled => &CompiledEngine,
        }
    }

    /// The engine's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            EngineChoice::Reference => "reference",
            EngineChoice::Compiled => "compiled",
        }
    }
}

/// What a case runner asks of an engine. Policies come from [`crate::rules::RuleSet::policy`];
/// engines that compile rules do so from the policy they are handed.
pub trait CaseEngine: Sync {
    /// The library engine that whole operations (`call` cases) are prepared for.
    fn kind(&self) -> EngineKind;
    /// The role assigned to the stored document `doc` (`None`: no role applies); `Err` when an
    /// `apply_when` could not be evaluated.
    fn role(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
    ) -> Result<Option<String>, String>;
    /// The read (or, with `ctx.search`, Atlas Search) decision for `doc`.
    fn read(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
        explain: bool,
    ) -> ReadOutcome;
    /// Inserting `doc`.
    fn insert(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
        explain: bool,
    ) -> WriteOutcome;
    /// Updating `pre` into `post`.
    fn update(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        pre: &Document,
        post: &Document,
        explain: bool,
    ) -> WriteOutcome;
    /// Deleting the stored `doc`.
    fn delete(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
        explain: bool,
    ) -> WriteOutcome;
    /// A Flexible Sync session's role and what it grants `doc`; `later` is the next session's context.
    fn sync_session(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: Option<&Document>,
        later: Option<&RequestContext>,
    ) -> SyncSessionOutcome;
    /// One uploaded Sync change (`pre` absent: create; `post` absent: delete).
    fn sync_write(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        pre: Option<&Document>,
        post: Option<&Document>,
    ) -> WriteOutcome;
    /// Partition-Based Sync access to `ctx.partition`.
    fn partition(
        &self,
        permissions: &PartitionPermissions,
        ctx: &RequestContext,
    ) -> PartitionAccess;
    /// Whether a third-party service `action` may run.
    fn service_action(
        &self,
        rules: &[ServiceRule],
        ctx: &RequestContext,
        action: &str,
    ) -> Result<bool, String>;
    /// A function's `can_evaluate`.
    fn can_evaluate(&self, function: &FunctionConfig, ctx: &RequestContext)
    -> Result<bool, String>;
}

/// [`CaseEngine`] over [`crate::reference`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceEngine;

impl CaseEngine for ReferenceEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Reference
    }

    fn role(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
    ) -> Result<Option<String>, String> {
        reference::roles::assigned_role(policy, ctx, doc).map_err(|f| f.to_string())
    }

    fn read(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
        explain: bool,
    ) -> ReadOutcome {
        reference::read::read(policy, ctx, doc, explain)
    }

    fn insert(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
        explain: bool,
    ) -> WriteOutcome {
        reference::write::insert(policy, ctx, doc, explain)
    }

    fn update(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        pre: &Document,
        post: &Document,
        explain: bool,
    ) -> WriteOutcome {
        reference::write::update(policy, ctx, pre, post, explain)
    }

    fn delete(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
        explain: bool,
    ) -> WriteOutcome {
        reference::write::delete(policy, ctx, doc, explain)
    }

    fn sync_session(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: Option<&Document>,
        later: Option<&RequestContext>,
    ) -> SyncSessionOutcome {
        reference::sync::session(policy, ctx, doc, later, false)
    }

    fn sync_write(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        pre: Option<&Document>,
        post: Option<&Document>,
    ) -> WriteOutcome {
        reference::sync::write(policy, ctx, pre, post, false)
    }

    fn partition(
        &self,
        permissions: &PartitionPermissions,
        ctx: &RequestContext,
    ) -> PartitionAccess {
        reference::sync::partition(permissions, ctx)
    }

    fn service_action(
        &self,
        rules: &[ServiceRule],
        ctx: &RequestContext,
        action: &str,
    ) -> Result<bool, String> {
        reference::sync::service_action(rules, ctx, action).map_err(|f| f.to_string())
    }

    fn can_evaluate(
        &self,
        function: &FunctionConfig,
        ctx: &RequestContext,
    ) -> Result<bool, String> {
        reference::sync::can_evaluate(function, ctx).map_err(|f| f.to_string())
    }
}

/// [`CaseEngine`] over the compiled engine, through the public API ([`Collection::from_policy`],
/// [`EngineKind::Compiled`]). Per-request operations (Sync, PBS, service rules,
/// `can_evaluate`) are the reference's, as in the library.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompiledEngine;

impl CompiledEngine {
    /// Checks the raw path against `outcome`; `Err` names the disagreement.
    fn check_raw(
        collection: &PolicyCollection<'_>,
        ctx: &RequestContext,
        doc: &Document,
        outcome: &ReadOutcome,
    ) -> Result<(), String> {
        let prepared = collection.prepare_with(ctx, EngineKind::Compiled);
        let raw = RawDocumentBuf::from_document(doc).map_err(|e| e.to_string())?;
        let mut scratch = Scratch::new();
        let decision = prepared.read_raw(&raw, &mut scratch);
        let mut out = Vec::new();
        let redacted = prepared.redact_raw(&raw, &mut scratch, &mut out);
        let role = |r: Option<usize>| r.and_then(|i| prepared.role_name(i)).map(str::to_string);
        for (what, d) in [("read_raw", decision), ("redact_raw", redacted)] {
            if role(d.role) != outcome.role
                || d.visible != outcome.visible
                || d.error != outcome.error.is_some()
            {
                return Err(format!(
                    "{what} gives role {:?}, visible {}, error {} but read gives role {:?}, \
                     visible {}, error {:?}",
                    role(d.role),
                    d.visible,
                    d.error,
                    outcome.role,
                    outcome.visible,
                    outcome.error
                ));
            }
        }
        let written = if out.is_empty() {
            None
        } else {
            let raw = bson::RawDocument::from_bytes(&out).map_err(|e| e.to_string())?;
            Some(Document::try_from(raw).map_err(|e| e.to_string())?)
        };
        if written != outcome.document {
            return Err(format!(
                "redact_raw writes {written:?} but read gives {:?}",
                outcome.document
            ));
        }
        Ok(())
    }
}

impl CaseEngine for CompiledEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Compiled
    }

    fn role(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
    ) -> Result<Option<String>, String> {
        // Role selection binds `%%root` = `%%prevRoot` = the stored document, as a read does;
        // a read that names no role but an error failed in role selection.
        let collection = PolicyCollection::new(policy.clone());
        let outcome = collection.prepare_with(ctx, EngineKind::Compiled).read(doc);
        match (outcome.role, outcome.error) {
            (None, Some(error)) => Err(error),
            (role, _) => Ok(role),
        }
    }

    fn read(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
        explain: bool,
    ) -> ReadOutcome {
        let collection = PolicyCollection::new(policy.clone());
        let outcome = collection
            .prepare_with(ctx, EngineKind::Compiled)
            .with_explain(explain)
            .read(doc);
        match Self::check_raw(&collection, ctx, doc, &outcome) {
            Ok(()) => outcome,
            Err(disagreement) => ReadOutcome {
                role: Some(format!("<raw path disagrees: {disagreement}>")),
                visible: !outcome.visible,
                document: None,
                error: Some(disagreement),
                explanation: outcome.explanation,
            },
        }
    }

    fn insert(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
        explain: bool,
    ) -> WriteOutcome {
        PolicyCollection::new(policy.clone())
            .prepare_with(ctx, EngineKind::Compiled)
            .with_explain(explain)
            .insert(doc)
    }

    fn update(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        pre: &Document,
        post: &Document,
        explain: bool,
    ) -> WriteOutcome {
        PolicyCollection::new(policy.clone())
            .prepare_with(ctx, EngineKind::Compiled)
            .with_explain(explain)
            .update(pre, post)
    }

    fn delete(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: &Document,
        explain: bool,
    ) -> WriteOutcome {
        PolicyCollection::new(policy.clone())
            .prepare_with(ctx, EngineKind::Compiled)
            .with_explain(explain)
            .delete(doc)
    }

    fn sync_session(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        doc: Option<&Document>,
        later: Option<&RequestContext>,
    ) -> SyncSessionOutcome {
        ReferenceEngine.sync_session(policy, ctx, doc, later)
    }

    fn sync_write(
        &self,
        policy: &CollectionPolicy<'_>,
        ctx: &RequestContext,
        pre: Option<&Document>,
        post: Option<&Document>,
    ) -> WriteOutcome {
        ReferenceEngine.sync_write(policy, ctx, pre, post)
    }

    fn partition(
        &self,
        permissions: &PartitionPermissions,
        ctx: &RequestContext,
    ) -> PartitionAccess {
        ReferenceEngine.partition(permissions, ctx)
    }

    fn service_action(
        &self,
        rules: &[ServiceRule],
        ctx: &RequestContext,
        action: &str,
    ) -> Result<bool, String> {
        ReferenceEngine.service_action(rules, ctx, action)
    }

    fn can_evaluate(
        &self,
        function: &FunctionConfig,
        ctx: &RequestContext,
    ) -> Result<bool, String> {
        ReferenceEngine.can_evaluate(function, ctx)
    }
}
