//! Stage: case → request context. Input: a case's `user` and `request` ([`CaseRequest`]), in
//! Extended JSON. Output: the [`RequestContext`] the evaluators run in (and, for Sync cases with
//! `mid_session_custom_data_change`, the context of the next session), plus the decoded
//! documents of the case.
//!
//! The CLI's `eval --request REQ.json` reads the same object as a case's `request` and goes
//! through [`request_context`] too.
//!
//! | `request` key | becomes |
//! | --- | --- |
//! | `values` | `%%values` |
//! | `environment` `{tag, values}` | `%%environment` |
//! | `http` | `%%request` |
//! | `args` | `%%args` |
//! | `partition` | `%%partition` |
//! | `functions` | a [`MockFunctions`] host (arguments and results in Extended JSON) |
//! | `operation.pipeline` with `$search`, or `action: "search"` | `search = true` |
//!
//! **The system user.** The case format marks a system-user case by `user.type == "system"`
//! (the `%%user.type` App Services gives system functions). That is a convention of the case
//! *file*, not of the engine: [`request_context`] never grants the bypass; the case runner
//! ([`crate::case::run`]) asks [`case_is_system`] and sets it explicitly with
//! [`RequestContext::with_system`]. The CLI's `eval --user` file does not: there the bypass is
//! the `--system` flag, and a user file with `"type": "system"` is an ordinary user.
//!
//! With a rule set at hand, [`add_app_values`] puts the app's plain values (`values/*.json`)
//! under the request's `values`, and fills an `environment` given by tag only from the app's
//! `environments/<tag>.json`. Secret-backed values are never invented: unless the request gives
//! them, they are missing.

use std::sync::Arc;

use bson::{Bson, Document};
use serde_json::Value;

use super::model::{CaseRequest, Environment};
use crate::context::{MockFunctions, RequestContext};
use crate::engine::{ContextError, resolve_values};
use crate::rules::RuleSet;
use crate::value::ejson::{bson_from_json, document_from_json};

/// A case or request file that cannot be turned into values: the JSON path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{path}`: {message}")]
pub struct InputError {
    /// Where in the case or request file, e.g. `request.values.admins`.
    pub path: String,
    /// What is wrong with the value there (not valid Extended JSON, not an object, ...).
    pub message: String,
}

impl InputError {
    /// An error at the JSON path `path` of the input, saying `message`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        InputError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Converts Extended JSON at `path` to BSON.
pub fn to_bson(value: &Value, path: &str) -> Result<Bson, InputError> {
    bson_from_json(value).map_err(|m| InputError::new(path, m))
}

/// Converts an Extended JSON object at `path` to a BSON document.
pub fn to_document(value: &Value, path: &str) -> Result<Document, InputError> {
    document_from_json(value).map_err(|m| InputError::new(path, m))
}

/// Converts an optional Extended JSON object (absent or `null` → `None`).
pub fn to_document_opt(value: Option<&Value>, path: &str) -> Result<Option<Document>, InputError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => to_document(v, path).map(Some),
    }
}

/// Whether a case describes a system-user request: its `user` is an object whose `type` is
/// exactly `"system"` (the case format's convention; see the module docs). Only the case runner
/// uses it, to call [`RequestContext::with_system`].
pub fn case_is_system(user: Option<&Value>) -> bool {
    user.and_then(|u| u.get("type")).and_then(Value::as_str) == Some("system")
}

/// The request context of `user` (the `%%user` object, `None`/`null` for no user) and `request`;
/// never a system-user context: a `user` whose `type` is `"system"` is an ordinary `%%user` here
/// (only the case runner, following the case format's convention, turns such a case into a
/// system-user request with [`RequestContext::with_system`]).
/// `search` forces an Atlas Search request (the `search` action); a pipeline with a `$search`
/// stage or `request.action == "search"` also makes one.
pub fn request_context(
    user: Option<&Value>,
    request: Option<&CaseRequest>,
    search: bool,
) -> Result<RequestContext, InputError> {
    let user = match user {
        None | Some(Value::Null) => None,
        Some(u) => Some(Bson::Document(to_document(u, "user")?)),
    };
    let mut ctx = RequestContext {
        user,
        search,
        ..RequestContext::default()
    };
    let Some(request) = request else {
        return Ok(ctx);
    };
    if let Some(values) = &request.values {
        ctx.values = to_bson(&Value::Object(values.clone()), "request.values")?;
    }
    if let Some(env) = &request.environment {
        ctx.environment = Bson::Document(environment(env)?);
    }
    if let Some(http) = &request.http {
        ctx.request = Bson::Document(to_document(http, "request.http")?);
    }
    if let Some(args) = &request.args {
        ctx.args = Some(to_bson(args, "request.args")?);
    }
    if let Some(partition) = &request.partition {
        ctx.partition = Some(to_bson(partition, "request.partition")?);
    }
    if let Some(functions) = &request.functions {
        let mut host = MockFunctions::default();
        for (name, mocks) in functions {
            for (i, mock) in mocks.as_slice().iter().enumerate() {
                let path = format!("request.functions.{name}[{i}]");
                let args = mock
                    .args
                    .iter()
                    .map(|a| to_bson(a, &format!("{path}.args")))
                    .collect::<Result<Vec<_>, _>>()?;
                let returns = to_bson(&mock.returns, &format!("{path}.returns"))?;
                host.add(name.clone(), args, returns);
            }
        }
        ctx.functions = Arc::new(host);
    }
    let search_pipeline = request.operation.as_ref().is_some_and(|op| op.is_search());
    ctx.search = search || search_pipeline || request.action.as_deref() == Some("search");
    Ok(ctx)
}

/// The context of the next Sync session when `request.mid_session_custom_data_change` is given:
/// `ctx` with `%%user.custom_data` replaced. `None` when the case has no such change.
pub fn later_context(
    ctx: &RequestContext,
    request: Option<&CaseRequest>,
) -> Result<Option<RequestContext>, InputError> {
    let Some(change) = request.and_then(|r| r.mid_session_custom_data_change.as_ref()) else {
        return Ok(None);
    };
    let custom_data = to_bson(change, "request.mid_session_custom_data_change")?;
    let mut later = ctx.clone();
    let mut user = match &ctx.user {
        Some(Bson::Document(u)) => u.clone(),
        _ => Document::new(),
    };
    user.insert("custom_data", custom_data);
    later.user = Some(Bson::Document(user));
    Ok(Some(later))
}

/// `%%values`: the app's plain values overlaid with the request's (a secret-backed value that a
/// rule reads must be given by the request, else an error naming it; one that no rule reads is
/// left out);
/// `%%environment` values from the app when the request names only the tag.
pub fn add_app_values(
    set: &RuleSet,
    ctx: &mut RequestContext,
    request: Option<&CaseRequest>,
) -> Result<(), ContextError> {
    let supplied = match &ctx.values {
        Bson::Document(given) => given.clone(),
        _ => Document::new(),
    };
    ctx.values = Bson::Document(resolve_values(set, &supplied, &[])?);
    let env = request.and_then(|r| r.environment.as_ref());
    if let Some(env) = env.filter(|e| e.values.is_none())
        && let Some(tag) = &env.tag
        && let Some(app_values) = set.environments.get(tag)
        && let Bson::Document(doc) = &mut ctx.environment
    {
        doc.insert("values", app_values.clone());
    }
    Ok(())
}

fn environment(env: &Environment) -> Result<Document, InputError> {
    let mut doc = Document::new();
    if let Some(tag) = &env.tag {
        doc.insert("tag", tag.clone());
    }
    let values = match &env.values {
        Some(v) => to_bson(v, "request.environment.values")?,
        None => Bson::Document(Document::new()),
    };
    doc.insert("values", values);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(v: Value) -> CaseRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn builds_every_part() {
        let req = request(json!({
            "values": {"admins": ["a"]},
            "environment": {"tag": "production", "values": {"x": 1}},
            "http": {"remoteIPAddress": "203.0.113.7"},
            "args": {"n": 42},
            "partition": {"$oid": "5f4863e4d49bd2191ff1e623"},
            "functions": {"f": {"args": [42], "returns": true}},
            "operation": {"kind": "aggregate", "pipeline": [{"$search": {}}]}
        }));
        let user = json!({"id": "u1", "type": "normal", "custom_data": {"a": 1}});
        let ctx = request_context(Some(&user), Some(&req), false).unwrap();
        assert!(ctx.search);
        assert_eq!(ctx.values, Bson::Document(bson::doc! {"admins": ["a"]}));
        assert_eq!(
            ctx.environment,
            Bson::Document(bson::doc! {"tag": "production", "values": {"x": 1}})
        );
        assert!(matches!(ctx.partition, Some(Bson::ObjectId(_))));
        assert_eq!(
            ctx.functions.call("f", &[Bson::Int32(42)]),
            Ok(Bson::Boolean(true))
        );
        assert!(ctx.functions.call("f", &[Bson::Int32(1)]).is_err());
        assert!(ctx.functions.call("g", &[]).is_err());
        let later = later_context(&ctx, Some(&req)).unwrap();
        assert!(later.is_none());
    }

    #[test]
    fn later_session_replaces_custom_data() {
        let req = request(json!({"mid_session_custom_data_change": {"isAdmin": false}}));
        let user = json!({"id": "u1", "custom_data": {"isAdmin": true}});
        let ctx = request_context(Some(&user), Some(&req), false).unwrap();
        let later = later_context(&ctx, Some(&req)).unwrap().unwrap();
        assert_eq!(
            later.user,
            Some(Bson::Document(
                bson::doc! {"id": "u1", "custom_data": {"isAdmin": false}}
            ))
        );
    }

    #[test]
    fn bad_values_name_their_place() {
        let user = json!("not an object");
        let err = request_context(Some(&user), None, false).unwrap_err();
        assert_eq!(err.path, "user");
    }
}
