//! Stage: the library's front door. Input: a validated [`RuleSet`]. Output: [`Rules`] (immutable,
//! `Send + Sync`, cheap to clone and share across requests), a [`Collection`] handle per
//! namespace, and a [`PreparedRequest`] per request that answers the query plan and the
//! per-document read/insert/update/delete outcomes.
//!
//! ```text
//! RuleSet ──Rules::new (compile every collection once)──▶ Rules
//!   └─collection("db.coll")──▶ Collection
//!        └─prepare(&RequestContext)──▶ PreparedRequest (request-only parts, live roles)
//!             ├─ query_plan(client query, projection) ─▶ QueryPlan (store query + projection)
//!             ├─ read_for(&QueryPlan, &stored Document) ─▶ PlannedRead (decided on the stored
//!             │     document, redacted, client query on the redacted view, then projected)
//!             ├─ read_raw / redact_raw(&RawDocument, &mut Scratch) ─▶ RawDecision (+ BSON)
//!             └─ read / insert / update / delete(&Document) ─▶ outcomes
//! ```
//!
//! Two engines answer the per-document questions ([`EngineKind`]): the **compiled** engine
//! (default; [`crate::compile`] + [`crate::eval`]) and the **reference** evaluator
//! ([`crate::reference`]), which stays selectable and is the oracle the compiled engine is
//! tested against. They give the same outcomes. What the compiled engine delegates:
//!
//! - **explanations**: with [`PreparedRequest::with_explain`]`(true)`, `read`/`insert`/`update`/
//!   `delete` are answered by the reference evaluator, which records the steps (explanations
//!   are on demand, not the hot path); the decision is the same either way;
//! - **per-request operations** — the query plan (filters), Device Sync sessions and writes,
//!   Partition-Based Sync, service rules and `can_evaluate` — run once per request, not per
//!   document, and use the reference implementations ([`crate::reference::sync`],
//!   [`crate::query::plan`]);
//! - **schema validation** of a write result uses [`crate::schema`].
//!
//! `%function` calls whose arguments depend only on the request are made at most once per
//! request by the compiled engine (on first use; see [`crate::eval::prepare`]): host functions
//! must be pure. Both engines call them through [`RequestContext::call_function`], so a host
//! that fails, panics or overruns [`Limits::max_function_time`] denies the same way in both.
//! Raw documents with duplicate keys are read by their first occurrence (MongoDB never stores
//! such documents).
//!
//! **Reads with a client query or projection** (issue 9, findings 1 and 5): the rules always
//! decide on the stored document. [`PreparedRequest::query_plan`] gives what to send to the
//! database; the client's query and projection stay private to the [`QueryPlan`] and are
//! applied only by [`PreparedRequest::read_for`], after the decision and the redaction (the
//! client query on what the user may see, then the projection). A plan is bound to the
//! collection and request that made it. `read`, `read_raw` and `redact_raw` take no client
//! input: they are the decision on a stored document.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::{Bson, Document};

use crate::compile::Program;
use crate::config::LoadOptions;
use crate::context::{FunctionHost, RequestContext};
use crate::error::LoadError;
use crate::eval::doc::{DocEval, DocRef, Fail, KeyCache};
use crate::eval::fast::FastDecision;
use crate::eval::prepare::Prepared;
use crate::eval::raw::Validity;
use crate::eval::read::Level;
use crate::limits::{LimitExceeded, Limits};
use crate::outcome::{
    ErrorCode, Explanation, ReadOutcome, SyncSessionOutcome, WriteError, WriteOutcome,
};
use crate::query::plan::{PlanInput, PlanIssuer};
use crate::query::{PlanError, QueryPlan, RuleFields, RunError, memory, plan};
use crate::reference;
use crate::reference::write::WriteKind;
use crate::rules::{CollectionPolicy, Role, RolesKey, RuleSet, ValueDef};
use crate::steps::StepBudget;

/// Compiled, immutable rules of an app (or of one rule file), shared by every request.
#[derive(Debug, Clone)]
pub struct Rules {
    set: Arc<RuleSet>,
    programs: Arc<Programs>,
    compile_time: Duration,
}

/// The compiled program of every role list of a rule set, and what its rules read (for query
/// plans), by the list's identity ([`RolesKey`], the key [`RuleSet::policy`] gives every policy
/// it returns).
///
/// Every non-empty role list of the set is compiled once, by [`Rules::new`]; the set is
/// immutable behind its `Arc`, so every policy it hands out names a list compiled here. Should a
/// lookup ever miss regardless, [`Rules::collection`] refuses the namespace (fail closed): it
/// never compiles at request time.
#[derive(Debug)]
struct Programs {
    by_roles: BTreeMap<RolesKey, (Arc<Program>, Arc<RuleFields>)>,
    empty: Arc<Program>,
    empty_fields: Arc<RuleFields>,
}

impl Programs {
    fn compile(set: &RuleSet) -> Programs {
        let mut programs = Programs {
            by_roles: BTreeMap::new(),
            empty: Arc::default(),
            empty_fields: Arc::new(RuleFields::of_roles(&[])),
        };
        let mut add = |key: RolesKey, roles: &[Role]| {
            if !roles.is_empty() {
                let program = Arc::new(crate::compile::compile(roles));
                let fields = Arc::new(RuleFields::of_roles(roles));
                programs.by_roles.insert(key, (program, fields));
            }
        };
        for ds in set.data_sources.values() {
            if let Some(d) = &ds.default_rule {
                let key = RolesKey::Default {
                    data_source: ds.name.clone(),
                };
                add(key, &d.roles);
            }
            for ((database, collection), c) in &ds.collections {
                let key = RolesKey::Collection {
                    data_source: ds.name.clone(),
                    database: database.clone(),
                    collection: collection.clone(),
                };
                add(key, &c.roles);
            }
        }
        programs
    }

    /// The program of a policy's role list and what its rules read; `None` only if the policy
    /// does not come from the rule set these programs were compiled from.
    fn get(&self, policy: &CollectionPolicy<'_>) -> Option<(Arc<Program>, Arc<RuleFields>)> {
        if policy.roles.is_empty() {
            return Some((self.empty.clone(), self.empty_fields.clone()));
        }
        self.by_roles.get(&policy.roles_key).cloned()
    }
}

/// Which evaluator answers a request's per-document questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EngineKind {
    /// The compiled decision program (the default).
    #[default]
    Compiled,
    /// The reference evaluator: a direct walk over the validated rules, written to follow the
    /// semantics as literally as possible; the compiled program is checked against it.
    Reference,
}

impl EngineKind {
    /// The engine's name (`compiled` or `reference`).
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Compiled => "compiled",
            EngineKind::Reference => "reference",
        }
    }
}

/// Per-thread scratch space of the raw per-document path ([`PreparedRequest::read_raw`],
/// [`PreparedRequest::redact_raw`]): reuse one across documents; it grows once and then stops
/// allocating.
#[derive(Debug, Default)]
pub struct Scratch {
    cache: KeyCache,
    plans: crate::eval::doc::PlanCache,
    validate: crate::eval::raw::ValidateScratch,
}

impl Scratch {
    /// An empty scratch space (the same as `Scratch::default()`).
    pub fn new() -> Scratch {
        Scratch::default()
    }
}

/// A decision withheld because a rule failed (or the raw input is malformed).
const FAILED: RawDecision = RawDecision {
    role: None,
    visible: false,
    error: true,
};

/// The decision for one raw document: the role applied, whether the document is returned, and
/// whether it was withheld because a rule failed to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawDecision {
    /// Index of the applied role in the policy's roles ([`PreparedRequest::role_name`]).
    pub role: Option<usize>,
    /// True when the document is returned: a role applies, its document filters let it be read,
    /// and some field is readable. False when it is withheld.
    pub visible: bool,
    /// True when the document was withheld because a rule failed to evaluate (or the raw input
    /// is malformed): fail closed. The decoded path ([`PreparedRequest::read`] with explanations)
    /// gives the reason.
    pub error: bool,
}

/// A namespace that no rules govern, or that names an unknown data source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no rules for `{namespace}`: {reason}")]
pub struct UnknownNamespace {
    /// The namespace as given: `db.coll` or `data_source/db.coll`.
    pub namespace: String,
    /// Why it does not resolve: not of the form `database.collection`, an unknown data source,
    /// or several data sources that could govern it (named, so the caller can pick one).
    pub reason: String,
}

/// A request context could not be built from the app's values and the host's secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// A value is `from_secret` and the host did not supply the secret.
    #[error("value `{value}` reads secret `{secret}`, which the host did not supply")]
    MissingSecret {
        /// The name of the value (`%%values.<name>`).
        value: String,
        /// The `secret_name` the value reads.
        secret: String,
    },
    /// The selected environment is not defined in `environments/`.
    #[error("environment `{0}` is not defined by the app")]
    UnknownEnvironment(String),
}

impl Rules {
    /// Compiles a validated rule set.
    pub fn new(set: RuleSet) -> Self {
        let start = Instant::now();
        let programs = Programs::compile(&set);
        Rules {
            set: Arc::new(set),
            programs: Arc::new(programs),
            compile_time: start.elapsed(),
        }
    }

    /// How long [`Rules::new`] took to compile the rule set.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Loads and compiles an app directory or a single rule file, with the default
    /// [`LoadOptions`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        Rules::load_with(path, &LoadOptions::default())
    }

    /// Loads and compiles an app directory or a single rule file with `options` (limits, what
    /// an undefined `%function` is).
    pub fn load_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Self, LoadError> {
        RuleSet::load(path, options).map(Rules::new)
    }

    /// The validated rule set these rules were compiled from.
    pub fn rule_set(&self) -> &RuleSet {
        &self.set
    }

    /// The rules of a collection, by `db.coll` or `data_source/db.coll`.
    ///
    /// `db.coll` without a data source must be unambiguous: it resolves to the one data source
    /// whose rules name it, or to the only data source there is; otherwise it is an error naming
    /// the candidates (`data_source/db.coll`), never a guess ([`RuleSet::policy`]).
    pub fn collection(&self, namespace: &str) -> Result<Collection, UnknownNamespace> {
        let unknown = |reason: String| UnknownNamespace {
            namespace: namespace.to_string(),
            reason,
        };
        let (data_source, ns) = match namespace.split_once('/') {
            Some((ds, ns)) => (Some(ds), ns),
            None => (None, namespace),
        };
        let (db, coll) = ns
            .split_once('.')
            .ok_or_else(|| unknown("expected `database.collection`".to_string()))?;
        let policy = self
            .set
            .policy(data_source, db, coll)
            .map_err(|e| unknown(e.to_string()))?;
        let (program, fields) = self
            .programs
            .get(&policy)
            .ok_or_else(|| unknown("no compiled program for its role list".to_string()))?;
        let resolved = Resolved {
            data_source: policy.data_source.to_string(),
            database: db.to_string(),
            collection: coll.to_string(),
            roles_key: policy.roles_key.clone(),
        };
        Ok(Collection {
            set: self.set.clone(),
            resolved,
            compiled: Compiled {
                program,
                fields,
                limits: self.set.limits,
            },
            nothing: Compiled {
                program: self.programs.empty.clone(),
                fields: self.programs.empty_fields.clone(),
                limits: self.set.limits,
            },
        })
    }

    /// A builder for request contexts pre-filled with the app's `%%values` (plain values) and
    /// `%%environment`, and with the rule set's [`Limits::max_function_time`] as the budget of
    /// each `%function` call.
    pub fn context(&self) -> ContextBuilder<'_> {
        ContextBuilder {
            set: &self.set,
            ctx: RequestContext {
                max_function_time: self.set.limits.max_function_time,
                ..RequestContext::default()
            },
            values: Document::new(),
            secrets: Vec::new(),
            environment: None,
        }
    }
}

/// The roles, filters and schema that govern one collection, with their compiled program: a
/// handle that owns what it needs (an `Arc` of the rule set and of the program), so it can live
/// in application state beside [`Rules`]. Resolve it once with [`Rules::collection`]; cloning it
/// is cheap.
#[derive(Debug, Clone)]
pub struct Collection {
    set: Arc<RuleSet>,
    resolved: Resolved,
    compiled: Compiled,
    /// The program of no roles: what a request gets should its policy no longer resolve to the
    /// role list `compiled` was built for (it cannot, the rule set being immutable; if it ever
    /// did, every decision would deny, in both engines).
    nothing: Compiled,
}

/// Where a [`Collection`] handle's policy lives in its rule set.
#[derive(Debug, Clone)]
struct Resolved {
    data_source: String,
    database: String,
    collection: String,
    roles_key: RolesKey,
}

/// What a [`PreparedRequest`] borrows besides its policy: the compiled program of the policy's
/// role list, what its rules read (for query plans), and the limits (`max_document_depth`
/// guards every document before evaluation).
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    program: Arc<Program>,
    fields: Arc<RuleFields>,
    limits: Limits,
}

impl Compiled {
    /// Compiles a policy's roles on their own, with default limits (outside [`Rules`]: the
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
                Some(Arc::new(Prepared::new(&self.program, context)))
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
        format!("{}/{}.{}", r.data_source, r.database, r.collection)
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
        match self
            .set
            .policy(Some(&r.data_source), &r.database, &r.collection)
        {
            Ok(policy) if policy.roles_key == r.roles_key => (policy, &self.compiled),
            Ok(_) | Err(_) => (CollectionPolicy::nothing(&r.collection), &self.nothing),
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

/// A policy outside [`Rules`] with its own compiled program (the conformance runner's cases).
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

/// One request of one user against one collection.
#[derive(Debug, Clone)]
pub struct PreparedRequest<'p, 'c> {
    policy: CollectionPolicy<'p>,
    program: &'p Program,
    fields: &'p RuleFields,
    limits: Limits,
    context: &'c RequestContext,
    explain: bool,
    /// Check raw documents in full before deciding ([`PreparedRequest::with_raw_validation`]).
    validate_raw: bool,
    engine: EngineKind,
    /// The compiled engine's request state (`None` for the reference engine), shared by the
    /// copies [`PreparedRequest::with_explain`] makes.
    prepared: Option<Arc<Prepared<'c>>>,
    /// Why the request context was refused ([`Limits::check_context`]): every decision of the
    /// request fails with this reason, and no rule sees the context.
    refused: Option<LimitExceeded>,
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

    /// The reference engine's raw path: the document is converted and read by the reference.
    fn raw_via_reference(&self, doc: &bson::RawDocument) -> (RawDecision, Option<Document>) {
        // The depth guard comes first: converting a deeply nested document recurses.
        let mut check = crate::eval::raw::ValidateScratch::default();
        let max_depth = self.limits.effective_document_depth();
        if let Validity::Invalid | Validity::TooDeep =
            crate::eval::raw::validate(doc, max_depth, &mut check)
        {
            return (FAILED, None);
        }
        let Ok(owned) = Document::try_from(doc) else {
            return (FAILED, None);
        };
        let outcome = reference::read::read(&self.policy, self.context, &owned, false);
        let role = outcome
            .role
            .as_deref()
            .and_then(|name| self.policy.roles.iter().position(|r| r.name == name));
        let decision = RawDecision {
            role,
            visible: outcome.visible,
            error: outcome.error.is_some(),
        };
        (decision, outcome.document)
    }

    /// The compiled read decision of a raw document; writes the redacted document to `out`
    /// when given (nothing when withheld).
    fn raw_compiled(
        &self,
        prepared: &Prepared<'_>,
        doc: &bson::RawDocument,
        scratch: &mut Scratch,
        mut out: Option<&mut Vec<u8>>,
    ) -> RawDecision {
        if self.validate_raw {
            let max_depth = self.limits.effective_document_depth();
            match crate::eval::raw::validate(doc, max_depth, &mut scratch.validate) {
                Validity::Valid => {}
                Validity::Invalid | Validity::TooDeep => return FAILED,
                Validity::RepeatedKeys => return self.raw_via_document(prepared, doc, out),
            }
        } else {
            // The depth guard (finding 10 of issue 9): even without full validation, a
            // document nested deeper than the limit is withheld, as the other paths do.
            let max_depth = self.limits.effective_document_depth();
            match crate::eval::raw::nests_deeper(doc, max_depth, &mut scratch.validate.depth) {
                Ok(false) => {}
                Ok(true) | Err(_) => return FAILED,
            }
        }
        if prepared.system {
            if let Some(out) = out {
                out.extend_from_slice(doc.as_bytes());
            }
            return RawDecision {
                role: None,
                visible: true,
                error: false,
            };
        }
        let program = self.program;
        if out.is_none()
            && let Some(fast) = prepared.fast(program)
            && let FastDecision::Decided { role, visible } =
                fast.decide(program, doc, &mut scratch.cache)
        {
            return RawDecision {
                role: role.map(|i| i as usize),
                visible,
                error: false,
            };
        }
        let mut eval = DocEval::new(
            program,
            prepared,
            Some(DocRef::Raw(doc)),
            Some(DocRef::Raw(doc)),
            true,
            &mut scratch.cache,
            Some(&mut scratch.plans),
        );
        let index = match eval.select() {
            Ok(Some(i)) => i,
            Ok(None) => return RawDecision::default(),
            Err(_) => return FAILED,
        };
        let role = Some(index as usize);
        let Some(prog_role) = program.roles.get(index as usize) else {
            return RawDecision::default();
        };
        let failed = RawDecision {
            role,
            visible: false,
            error: true,
        };
        let visible = match eval.read_level(prog_role) {
            Err(_) => return failed,
            Ok(Level::Hidden) => false,
            Ok(Level::Whole) => {
                if let Some(out) = out {
                    out.extend_from_slice(doc.as_bytes());
                }
                true
            }
            Ok(Level::Fields(inherited)) => {
                let mark = out.as_deref().map(Vec::len);
                match eval.redact_raw(&prog_role.fields, doc, inherited, out.as_deref_mut()) {
                    Ok(kept) => {
                        if let (false, Some(out), Some(mark)) = (kept, out, mark) {
                            out.truncate(mark);
                        }
                        kept
                    }
                    Err(_) => {
                        if let (Some(out), Some(mark)) = (out, mark) {
                            out.truncate(mark);
                        }
                        return failed;
                    }
                }
            }
        };
        RawDecision {
            role,
            visible,
            error: false,
        }
    }

    /// A valid raw document with repeated keys: decided on its `Document` conversion (first
    /// position, last value), as the reference sees it.
    fn raw_via_document(
        &self,
        prepared: &Prepared<'_>,
        doc: &bson::RawDocument,
        out: Option<&mut Vec<u8>>,
    ) -> RawDecision {
        let Ok(owned) = Document::try_from(doc) else {
            return FAILED;
        };
        let outcome = self.read_compiled(prepared, &owned);
        let role = outcome
            .role
            .as_deref()
            .and_then(|name| self.policy.roles.iter().position(|r| r.name == name));
        if let (Some(out), Some(redacted)) = (out, &outcome.document) {
            let mark = out.len();
            if redacted.to_writer(&mut *out).is_err() {
                out.truncate(mark);
                return RawDecision {
                    role,
                    visible: false,
                    error: true,
                };
            }
        }
        RawDecision {
            role,
            visible: outcome.visible,
            error: outcome.error.is_some(),
        }
    }

    /// The read decision for a raw document: role, visibility and field mask, no output. Like
    /// [`PreparedRequest::read`], it decides on the stored document and applies no client query
    /// or projection.
    /// The compiled engine reads only the fields the rules need, once each, without allocating
    /// in the common cases.
    pub fn read_raw(&self, doc: &bson::RawDocument, scratch: &mut Scratch) -> RawDecision {
        let _steps = StepBudget::start(self.limits.max_eval_steps);
        if self.refused.is_some() {
            return FAILED;
        }
        match &self.prepared {
            Some(prepared) => self.raw_compiled(prepared, doc, scratch, None),
            None => self.raw_via_reference(doc).0,
        }
    }

    /// The read decision for a raw document, appending the redacted document as BSON bytes to
    /// `out` when visible (nothing is written when withheld). Readable elements are copied
    /// byte-for-byte, in document order.
    pub fn redact_raw(
        &self,
        doc: &bson::RawDocument,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> RawDecision {
        let _steps = StepBudget::start(self.limits.max_eval_steps);
        if self.refused.is_some() {
            return FAILED;
        }
        if let Some(prepared) = &self.prepared {
            return self.raw_compiled(prepared, doc, scratch, Some(out));
        }
        let (decision, redacted) = self.raw_via_reference(doc);
        if let Some(redacted) = redacted {
            let mark = out.len();
            if redacted.to_writer(&mut *out).is_err() {
                out.truncate(mark);
                return RawDecision {
                    role: decision.role,
                    visible: false,
                    error: true,
                };
            }
        }
        decision
    }

    /// The compiled read decision of an owned document.
    fn read_compiled(&self, prepared: &Prepared<'_>, doc: &Document) -> ReadOutcome {
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
    fn compiled(&self) -> Option<&Prepared<'c>> {
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
        PlannedRead {
            selected: true,
            outcome,
        }
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

    /// Whether the stored document `doc` is returned, and with which fields, for a read without
    /// a client query or projection. `doc` must be the document as stored (or as the database
    /// returns it under [`QueryPlan::store_projection`]): never one the client's projection has
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
    fn decide_read(&self, doc: &Document) -> ReadOutcome {
        match self.compiled() {
            Some(prepared) => self.read_compiled(prepared, doc),
            None => reference::read::read(&self.policy, self.context, doc, self.explain),
        }
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

/// A document nested deeper than `max_document_depth` is withheld before any rule sees it
/// (fail closed; evaluating it could exhaust the stack).
fn too_deep_read(limit: LimitExceeded) -> ReadOutcome {
    ReadOutcome::withheld(Some(limit.to_string()))
}

/// A write of a document nested deeper than `max_document_depth` is refused before any rule
/// sees it.
fn too_deep_write(limit: LimitExceeded) -> WriteOutcome {
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

/// Builds a [`RequestContext`] for an app: plain `%%values` come from the app, secret-backed ones
/// from [`ContextBuilder::secret`], `%%environment` from the chosen environment.
pub struct ContextBuilder<'a> {
    set: &'a RuleSet,
    ctx: RequestContext,
    values: Document,
    secrets: Vec<(String, Bson)>,
    environment: Option<String>,
}

impl ContextBuilder<'_> {
    /// The `%%user` object (`{id, type, data, custom_data, identities}`).
    pub fn user(mut self, user: Document) -> Self {
        self.ctx.user = Some(Bson::Document(user));
        self
    }

    /// The `%%request` object.
    pub fn request(mut self, request: Document) -> Self {
        self.ctx.request = Bson::Document(request);
        self
    }

    /// Sets `%%values.<name>` for this request, over the app's value of that name (this also
    /// supplies a `from_secret` value directly).
    pub fn value(mut self, name: impl Into<String>, value: impl Into<Bson>) -> Self {
        self.values.insert(name.into(), value.into());
        self
    }

    /// Supplies the content of a secret that a `from_secret` value names. Secrets of values that
    /// some rule reads are required; the others may be left out.
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<Bson>) -> Self {
        self.secrets.push((name.into(), value.into()));
        self
    }

    /// Selects the environment (`environments/<tag>.json`) that `%%environment` exposes.
    pub fn environment(mut self, tag: impl Into<String>) -> Self {
        self.environment = Some(tag.into());
        self
    }

    /// The host's `%function` implementations.
    pub fn functions(mut self, host: Arc<dyn FunctionHost>) -> Self {
        self.ctx.functions = host;
        self
    }

    /// How long one `%function` call of this request may take (default: the rule set's
    /// [`Limits::max_function_time`]); see [`RequestContext::max_function_time`].
    pub fn max_function_time(mut self, budget: Duration) -> Self {
        self.ctx.max_function_time = budget;
        self
    }

    /// Makes the request a system-user request, which bypasses every rule, filter and schema
    /// check ([`RequestContext::with_system`]). Never inferred from the user document.
    pub fn system(mut self, system: bool) -> Self {
        self.ctx = self.ctx.with_system(system);
        self
    }

    /// Marks the request as an Atlas Search (`$search`) request.
    pub fn search(mut self, search: bool) -> Self {
        self.ctx.search = search;
        self
    }

    /// The context, or an error naming a missing secret or environment.
    pub fn build(mut self) -> Result<RequestContext, ContextError> {
        let values = resolve_values(self.set, &self.values, &self.secrets)?;
        self.ctx.values = Bson::Document(values);
        if let Some(tag) = self.environment {
            let env_values = self
                .set
                .environments
                .get(&tag)
                .cloned()
                .ok_or(ContextError::UnknownEnvironment(tag.clone()))?;
            let mut env = Document::new();
            env.insert("tag", tag);
            env.insert("values", env_values);
            self.ctx.environment = Bson::Document(env);
        }
        Ok(self.ctx)
    }
}

/// The `%%values` document of a request: the app's plain values, overlaid by `supplied` (value
/// name → value); a `from_secret` value takes its secret's content from `secrets` (secret name →
/// content) unless `supplied` names it. A secret-backed value that some rule reads and that
/// neither supplies is an error naming it; one that no rule reads is left out.
pub fn resolve_values(
    set: &RuleSet,
    supplied: &Document,
    secrets: &[(String, Bson)],
) -> Result<Document, ContextError> {
    let referenced = set.referenced_values();
    let mut values = Document::new();
    for (name, def) in &set.values {
        if supplied.contains_key(name) {
            continue;
        }
        match def {
            ValueDef::Plain(v) => {
                values.insert(name.clone(), v.clone());
            }
            ValueDef::Secret { secret_name } => {
                match secrets.iter().find(|(s, _)| s == secret_name) {
                    Some((_, v)) => {
                        values.insert(name.clone(), v.clone());
                    }
                    None if referenced.contains(name) => {
                        return Err(ContextError::MissingSecret {
                            value: name.clone(),
                            secret: secret_name.clone(),
                        });
                    }
                    None => {}
                }
            }
        }
    }
    for (name, v) in supplied {
        values.insert(name.clone(), v.clone());
    }
    Ok(values)
}
