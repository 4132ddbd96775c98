//! Stage: the front door, per collection. Input: a rule set's resolved policy and its compiled
//! program. Output: the [`Collection`] handle (owned: `Arc`s of the rule set and program) and, per
//! request, a [`PreparedRequest`] (through [`Compiled::prepare`]).

use super::{EngineKind, PreparedRequest};
use std::sync::Arc;

use crate::compile::Program;
use crate::context::RequestContext;
use crate::eval::CompiledRequest;
use crate::limits::Limits;
use crate::query::RuleFields;
use crate::rules::{CollectionPolicy, RolesKey, RuleSet};
use crate::steps::StepBudget;

/// The roles, filters and schema that govern one collection, with their compiled program: a
/// handle that owns what it needs (an `Arc` of the rule set and of the program), so it can live
/// in application state beside [`Rules`](crate::Rules). Resolve it once with
/// [`Rules::collection`](crate::Rules::collection); cloning it is cheap.
#[derive(Debug, Clone)]
pub struct Collection {
    pub(super) set: Arc<RuleSet>,
    pub(super) resolved: Resolved,
    pub(super) compiled: Compiled,
    /// The program of no roles: what a request gets should its policy no longer resolve to the
    /// role list `compiled` was built for (it cannot, the rule set being immutable; if it ever
    /// did, every decision would deny, in both engines).
    pub(super) nothing: Compiled,
}

/// Where a [`Collection`] handle's policy lives in its rule set.
#[derive(Debug, Clone)]
pub(super) struct Resolved {
    pub(super) data_source: String,
    /// (database, collection).
    pub(super) key: (String, String),
    /// The identity of the role list the program was compiled for.
    pub(super) roles_key: RolesKey,
    /// Where that role list lives in the (immutable) rule set: its address and length, checked
    /// again at every resolution.
    pub(super) roles_at: (usize, usize),
}

/// What a [`PreparedRequest`] borrows besides its policy: the compiled program of the policy's
/// role list, what its rules read (for query plans), and the limits (`max_document_depth`
/// guards every document before evaluation).
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(super) program: Arc<Program>,
    pub(super) fields: Arc<RuleFields>,
    pub(super) limits: Limits,
}

impl Compiled {
    /// Compiles a policy's roles on their own, with default limits (outside [`Rules`](crate::Rules): the
    /// conformance runner).
    pub(crate) fn of_policy(policy: &CollectionPolicy<'_>) -> Compiled {
        Compiled {
            program: Arc::new(crate::compile::compile(policy.roles)),
            fields: Arc::new(RuleFields::of_roles(policy.roles)),
            limits: Limits::default(),
        }
    }

    /// Prepares a request on `policy` (whose roles this program was compiled from).
    pub(crate) fn prepare<'p, 'c>(
        &'p self,
        policy: CollectionPolicy<'p>,
        context: &'c RequestContext,
        engine: EngineKind,
    ) -> PreparedRequest<'p, 'c> {
        // The request-only work done here has its own step budget (a request whose parts fail
        // on it fails every decision of the request, with the reason).
        let _steps = StepBudget::start(self.limits.max_eval_steps);
        // The depth guard of the request's values comes first: preparing recurses into them.
        let refused = self.limits.check_context(context).err();
        let prepared = match engine {
            EngineKind::Compiled if refused.is_none() => {
                Some(Arc::new(CompiledRequest::new(&self.program, context)))
            }
            EngineKind::Compiled | EngineKind::Reference => None,
        };
        PreparedRequest {
            policy,
            program: &self.program,
            fields: &self.fields,
            limits: self.limits,
            context,
            explain: false,
            validate_raw: false,
            pushdown: true,
            window_before_rules: false,
            engine,
            prepared,
            refused,
        }
    }
}

impl Collection {
    /// The namespace this handle resolved to: `data_source/database.collection`.
    pub fn namespace(&self) -> String {
        let r = &self.resolved;
        format!("{}/{}.{}", r.data_source, r.key.0, r.key.1)
    }

    /// The policy (roles, filters, schema) in force for this collection.
    pub fn policy(&self) -> CollectionPolicy<'_> {
        self.resolve().0
    }

    /// The policy and the program to decide it with: the resolved policy and its program, or —
    /// should the policy no longer be the role list the program was compiled for — no roles
    /// and the program of no roles (every decision denies).
    fn resolve(&self) -> (CollectionPolicy<'_>, &Compiled) {
        let r = &self.resolved;
        match self.set.policy_in(&r.data_source, &r.key, &r.roles_key) {
            Some(policy) if (policy.roles.as_ptr() as usize, policy.roles.len()) == r.roles_at => {
                (policy, &self.compiled)
            }
            Some(_) | None => (CollectionPolicy::nothing(&r.key.1), &self.nothing),
        }
    }

    /// Prepares a request for the compiled engine: everything below is evaluated in `context`.
    pub fn prepare<'c>(&self, context: &'c RequestContext) -> PreparedRequest<'_, 'c> {
        self.prepare_with(context, EngineKind::Compiled)
    }

    /// Prepares a request for the chosen engine.
    pub fn prepare_with<'c>(
        &self,
        context: &'c RequestContext,
        engine: EngineKind,
    ) -> PreparedRequest<'_, 'c> {
        let (policy, compiled) = self.resolve();
        compiled.prepare(policy, context, engine)
    }
}

/// A policy outside [`Rules`](crate::Rules) with its own compiled program (the conformance runner's cases).
#[derive(Debug, Clone)]
pub(crate) struct PolicyCollection<'r> {
    policy: CollectionPolicy<'r>,
    compiled: Compiled,
}

impl<'r> PolicyCollection<'r> {
    /// Compiles `policy` on its own, with default limits.
    pub(crate) fn new(policy: CollectionPolicy<'r>) -> PolicyCollection<'r> {
        let compiled = Compiled::of_policy(&policy);
        PolicyCollection { policy, compiled }
    }

    /// Prepares a request for the chosen engine.
    pub(crate) fn prepare_with<'c>(
        &self,
        context: &'c RequestContext,
        engine: EngineKind,
    ) -> PreparedRequest<'_, 'c> {
        self.compiled.prepare(self.policy.clone(), context, engine)
    }
}
