//! Stage: the library's front door. Input: a validated [`RuleSet`]. Output: [`Rules`] (immutable,
//! `Send + Sync`, cheap to clone and share across requests), a [`Collection`] handle per
//! namespace, and a [`PreparedRequest`] per request that answers the query plan and the
//! per-document read/insert/update/delete outcomes.
//!
//! ```text
//! RuleSet ──Rules::new──▶ Rules ──collection("db.coll")──▶ Collection
//!                                   └─prepare(&RequestContext)─▶ PreparedRequest
//!                                        ├─ query_plan(client query, projection) ─▶ QueryPlan
//!                                        └─ read / insert / update / delete(doc) ─▶ outcomes
//! ```
//!
//! Decisions come from the reference evaluator ([`crate::reference`]).

use std::path::Path;
use std::sync::Arc;

use bson::{Bson, Document};

use crate::context::{FunctionHost, RequestContext};
use crate::error::LoadError;
use crate::outcome::{ReadOutcome, WriteOutcome};
use crate::query::{PlanError, QueryPlan, plan};
use crate::reference;
use crate::rules::{CollectionPolicy, RuleSet, ValueDef};

/// Compiled, immutable rules of an app (or of one rule file), shared by every request.
#[derive(Debug, Clone)]
pub struct Rules {
    set: Arc<RuleSet>,
}

/// A namespace that no rules govern, or that names an unknown data source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no rules for `{namespace}`: {reason}")]
pub struct UnknownNamespace {
    pub namespace: String,
    pub reason: String,
}

/// A request context could not be built from the app's values and the host's secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// A value is `from_secret` and the host did not supply the secret.
    #[error("value `{value}` reads secret `{secret}`, which the host did not supply")]
    MissingSecret { value: String, secret: String },
    /// The selected environment is not defined in `environments/`.
    #[error("environment `{0}` is not defined by the app")]
    UnknownEnvironment(String),
}

impl Rules {
    /// Compiles a validated rule set.
    pub fn new(set: RuleSet) -> Self {
        Rules { set: Arc::new(set) }
    }

    /// Loads and compiles an app directory or a single rule file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        crate::config::load_path(path.as_ref(), &crate::config::LoadOptions::default())
            .map(Rules::new)
    }

    /// The validated rule set these rules were compiled from.
    pub fn rule_set(&self) -> &RuleSet {
        &self.set
    }

    /// The rules of a collection, by `db.coll` or `data_source/db.coll`.
    pub fn collection(&self, namespace: &str) -> Result<Collection<'_>, UnknownNamespace> {
        let unknown = |reason: &str| UnknownNamespace {
            namespace: namespace.to_string(),
            reason: reason.to_string(),
        };
        let (data_source, ns) = match namespace.split_once('/') {
            Some((ds, ns)) => (Some(ds), ns),
            None => (None, namespace),
        };
        let (db, coll) = ns
            .split_once('.')
            .ok_or_else(|| unknown("expected `database.collection`"))?;
        let policy = self
            .set
            .policy(data_source, db, coll)
            .ok_or_else(|| unknown("no data source with rules"))?;
        Ok(Collection { policy })
    }

    /// A builder for request contexts pre-filled with the app's `%%values` (plain values) and
    /// `%%environment`.
    pub fn context(&self) -> ContextBuilder<'_> {
        ContextBuilder {
            set: &self.set,
            ctx: RequestContext::default(),
            values: Document::new(),
            secrets: Vec::new(),
            environment: None,
        }
    }
}

/// The roles, filters and schema that govern one collection.
#[derive(Debug, Clone)]
pub struct Collection<'r> {
    policy: CollectionPolicy<'r>,
}

impl<'r> Collection<'r> {
    /// The policy (roles, filters, schema) in force for this collection.
    pub fn policy(&self) -> &CollectionPolicy<'r> {
        &self.policy
    }

    /// Prepares a request: everything below is evaluated in `context`.
    pub fn prepare<'c>(&'r self, context: &'c RequestContext) -> PreparedRequest<'r, 'c> {
        PreparedRequest {
            policy: &self.policy,
            context,
            explain: false,
        }
    }
}

/// One request of one user against one collection.
#[derive(Debug, Clone, Copy)]
pub struct PreparedRequest<'p, 'c> {
    policy: &'p CollectionPolicy<'p>,
    context: &'c RequestContext,
    explain: bool,
}

impl PreparedRequest<'_, '_> {
    /// Records an explanation in every outcome (off by default: it costs time).
    pub fn with_explain(mut self, explain: bool) -> Self {
        self.explain = explain;
        self
    }

    /// The filters that apply, and the query and projection to send to the database.
    /// The system user bypasses filters.
    pub fn query_plan(
        &self,
        client_query: Option<&Document>,
        client_projection: Option<&Document>,
    ) -> Result<QueryPlan, PlanError> {
        let filters = if self.context.is_system() {
            &[]
        } else {
            self.policy.filters
        };
        plan::plan(filters, client_query, client_projection, self.context)
    }

    /// Whether `doc` is returned, and with which fields.
    pub fn read(&self, doc: &Document) -> ReadOutcome {
        reference::read::read(self.policy, self.context, doc, self.explain)
    }

    /// Whether inserting `doc` is permitted (an upsert that inserts is an insert).
    pub fn insert(&self, doc: &Document) -> WriteOutcome {
        reference::write::insert(self.policy, self.context, doc, self.explain)
    }

    /// Whether changing `pre` into `post` is permitted (update, replace, findAndModify).
    pub fn update(&self, pre: &Document, post: &Document) -> WriteOutcome {
        reference::write::update(self.policy, self.context, pre, post, self.explain)
    }

    /// Whether deleting the stored `doc` is permitted.
    pub fn delete(&self, doc: &Document) -> WriteOutcome {
        reference::write::delete(self.policy, self.context, doc, self.explain)
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
