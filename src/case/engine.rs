//! Stage: the engine seam of the case runner. Input: a collection's policy (or the Sync, service
//! and function rules), a request context and documents. Output: the outcomes of
//! [`crate::outcome`].
//!
//! Every conformance case runs through a [`CaseEngine`]; [`EngineChoice`] names the engines that
//! exist. Only the reference evaluator ([`crate::reference`]) exists today; a compiled engine
//! plugs in by implementing [`CaseEngine`] and adding a variant, and then the same case files
//! check that it agrees with the reference (style guide §8).

use bson::Document;

use crate::context::RequestContext;
use crate::outcome::{PartitionAccess, ReadOutcome, SyncSessionOutcome, WriteOutcome};
use crate::reference;
use crate::rules::{CollectionPolicy, FunctionConfig, PartitionPermissions, ServiceRule};

/// The engines that can answer conformance cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EngineChoice {
    /// The reference evaluator: a direct walk over the validated rules.
    #[default]
    Reference,
}

impl EngineChoice {
    /// Every engine, for runners that check them all.
    pub const ALL: [EngineChoice; 1] = [EngineChoice::Reference];

    /// The engine's implementation.
    pub fn engine(self) -> &'static dyn CaseEngine {
        match self {
            EngineChoice::Reference => &ReferenceEngine,
        }
    }

    /// The engine's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            EngineChoice::Reference => "reference",
        }
    }
}

/// What a case runner asks of an engine. Policies come from [`crate::rules::RuleSet::policy`];
/// engines that compile rules do so from the policy they are handed.
pub trait CaseEngine: Sync {
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
