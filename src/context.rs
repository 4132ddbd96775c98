//! Stage: per-request input. A [`RequestContext`] holds everything an expression may expand that
//! does not come from the document: `%%user`, `%%request`, `%%values`, `%%environment`, `%%args`,
//! `%%partition`, and the host's `%function` implementations ([`FunctionHost`]).
//!
//! Built once per request by the host (or from a conformance case / CLI flags) and shared by every
//! document of the request.

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::{Bson, Document};

/// Serves `%function` calls from rule expressions. Implementations must be `Send + Sync`; a call
/// that returns `Err` (or that the host cannot serve) denies, with the message as the reason.
pub trait FunctionHost: Send + Sync {
    /// Calls function `name` with the expanded `arguments`.
    fn call(&self, name: &str, arguments: &[Bson]) -> Result<Bson, String>;
}

impl<F> FunctionHost for F
where
    F: Fn(&str, &[Bson]) -> Result<Bson, String> + Send + Sync,
{
    fn call(&self, name: &str, arguments: &[Bson]) -> Result<Bson, String> {
        self(name, arguments)
    }
}

/// A host with no functions: every call is an error (denies).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFunctions;

impl FunctionHost for NoFunctions {
    fn call(&self, name: &str, _arguments: &[Bson]) -> Result<Bson, String> {
        Err(format!(
            "no implementation of function `{name}` was supplied by the host"
        ))
    }
}

/// Mocked functions as conformance cases describe them: a call returns `returns` when its
/// expanded arguments equal `args`; anything else is an error.
#[derive(Debug, Default, Clone)]
pub struct MockFunctions {
    pub calls: BTreeMap<String, Vec<(Vec<Bson>, Bson)>>,
}

impl MockFunctions {
    pub fn add(&mut self, name: impl Into<String>, args: Vec<Bson>, returns: Bson) {
        self.calls
            .entry(name.into())
            .or_default()
            .push((args, returns));
    }
}

impl FunctionHost for MockFunctions {
    fn call(&self, name: &str, arguments: &[Bson]) -> Result<Bson, String> {
        let Some(list) = self.calls.get(name) else {
            return Err(format!("function `{name}` is not defined by the host"));
        };
        list.iter()
            .find(|(args, _)| crate::value::bson_equal_args(args, arguments))
            .map(|(_, r)| r.clone())
            .ok_or_else(|| format!("function `{name}` has no result for these arguments"))
    }
}

/// Everything an expression may expand apart from the document.
#[derive(Clone)]
pub struct RequestContext {
    /// `%%user`: `{id, type, data, custom_data, identities}`; `None` for no user.
    pub user: Option<Bson>,
    /// `%%request` (a document)
    pub request: Bson,
    /// `%%values` (a document: name → value)
    pub values: Bson,
    /// `%%environment` (a document: `{tag, values}`)
    pub environment: Bson,
    /// `%%args` (service rules)
    pub args: Option<Bson>,
    /// `%%partition` (Partition-Based Sync)
    pub partition: Option<Bson>,
    /// `%function` implementations.
    pub functions: Arc<dyn FunctionHost>,
    /// True for an Atlas Search (`$search`) request (role `search` gate applies).
    pub search: bool,
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("user", &self.user)
            .field("request", &self.request)
            .field("values", &self.values)
            .field("environment", &self.environment)
            .field("args", &self.args)
            .field("partition", &self.partition)
            .field("search", &self.search)
            .finish_non_exhaustive()
    }
}

impl Default for RequestContext {
    fn default() -> Self {
        RequestContext {
            user: None,
            request: Bson::Document(Document::new()),
            values: Bson::Document(Document::new()),
            environment: Bson::Document(Document::new()),
            args: None,
            partition: None,
            functions: Arc::new(NoFunctions),
            search: false,
        }
    }
}

impl RequestContext {
    /// A context for `user` (the `%%user` object) with nothing else set.
    pub fn for_user(user: Document) -> Self {
        RequestContext {
            user: Some(Bson::Document(user)),
            ..Default::default()
        }
    }

    /// True when the user is the system user (`type: "system"`), which bypasses all rules,
    /// filters and schema validation (spec §2.5).
    pub fn is_system(&self) -> bool {
        self.user
            .as_ref()
            .and_then(|u| u.as_document())
            .and_then(|u| u.get_str("type").ok())
            .is_some_and(|t| t == "system")
    }

    /// The value of a request-level root (`%%user`, `%%request`, ...), or `None` when absent or
    /// when `root` is bound per document (`%%root`, `%%prevRoot`, `%%this`, `%%prev`).
    pub fn root_value(&self, root: crate::expr::Root) -> Option<&Bson> {
        use crate::expr::Root;
        static TRUE: Bson = Bson::Boolean(true);
        static FALSE: Bson = Bson::Boolean(false);
        match root {
            Root::True => Some(&TRUE),
            Root::False => Some(&FALSE),
            Root::User => self.user.as_ref(),
            Root::Request => Some(&self.request),
            Root::Values => Some(&self.values),
            Root::Environment => Some(&self.environment),
            Root::Args => self.args.as_ref(),
            Root::Partition => self.partition.as_ref(),
            Root::Root | Root::PrevRoot | Root::This | Root::Prev => None,
        }
    }
}
