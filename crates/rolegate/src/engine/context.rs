//! Stage: the request context. Input: a rule set (its values, secrets, environments) and what the
//! host supplies (the user, values, secrets, functions). Output: a [`RequestContext`] built by
//! [`ContextBuilder`], or a [`ContextError`].

use std::sync::Arc;
use std::time::Duration;

use bson::{Bson, Document};

use crate::context::{FunctionHost, RequestContext};
use crate::rules::{RuleSet, ValueDef};

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

/// Builds a [`RequestContext`] for an app: plain `%%values` come from the app, secret-backed ones
/// from [`ContextBuilder::secret`], `%%environment` from the chosen environment.
pub struct ContextBuilder<'a> {
    pub(super) set: &'a RuleSet,
    pub(super) ctx: RequestContext,
    pub(super) values: Document,
    pub(super) secrets: Vec<(String, Bson)>,
    pub(super) environment: Option<String>,
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
    /// [`Limits::max_function_time`](crate::Limits::max_function_time)); see [`RequestContext::max_function_time`].
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
        // The app's current environment unless the request selects another.
        if let Some(tag) = self.environment.or_else(|| self.set.environment.clone()) {
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
