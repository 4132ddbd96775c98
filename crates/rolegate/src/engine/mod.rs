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
//!
//! The files of this folder: `collection.rs` (the [`Collection`] handle and what a prepared
//! request borrows), `request.rs` ([`PreparedRequest`]: owned documents, writes, explanations,
//! Device Sync), `raw.rs` (the raw-BSON path: [`Scratch`], [`RawDecision`]), `planned.rs` (reads
//! with a client query or projection: [`PreparedRequest::query_plan`], [`PlannedRead`]) and
//! `context.rs` ([`ContextBuilder`]). Dependencies point down: `mod.rs` ([`Rules`]) → `collection`
//! → `request` → `raw`, `planned`.

mod collection;
mod context;
mod planned;
mod raw;
mod request;
mod request_info;

pub use collection::Collection;
pub(crate) use collection::PolicyCollection;
pub(crate) use context::resolve_values;
pub use context::{ContextBuilder, ContextError};
pub use planned::PlannedRead;
pub use raw::{RawDecision, Scratch};
pub use request::PreparedRequest;
pub use request_info::RequestInfo;

use collection::{Compiled, Resolved};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::Document;

use crate::compile::Program;
use crate::config::LoadOptions;
use crate::context::RequestContext;
use crate::error::LoadError;
use crate::query::RuleFields;
use crate::rules::{CollectionPolicy, Role, RoleSource, RolesKey, RuleSet};

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
        // The keys come from `RolesKey::of`, as the policies' keys do: one definition of a role
        // list's identity for compiling and for looking up.
        let mut add = |key: RolesKey, roles: &[Role]| {
            if !roles.is_empty() {
                let program = Arc::new(crate::compile::compile(roles));
                let fields = Arc::new(RuleFields::of_roles(roles));
                programs.by_roles.insert(key, (program, fields));
            }
        };
        for ds in set.data_sources.values() {
            if let Some(d) = &ds.default_rule {
                add(
                    RolesKey::of(&ds.name, "", "", RoleSource::Default, &d.roles),
                    &d.roles,
                );
            }
            for ((database, collection), c) in &ds.collections {
                let key = RolesKey::of(
                    &ds.name,
                    database,
                    collection,
                    RoleSource::Collection,
                    &c.roles,
                );
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
            key: (db.to_string(), coll.to_string()),
            roles_key: policy.roles_key.clone(),
            roles_at: (policy.roles.as_ptr() as usize, policy.roles.len()),
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
    /// `%%environment`, and with the rule set's [`Limits::max_function_time`](crate::Limits::max_function_time) as the budget of
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
