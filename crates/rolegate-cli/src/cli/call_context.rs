//! Stage: the request context of one `call`. Input: the user and request files ([`Inputs`], read
//! as `eval` reads them), the app's rule set, the parsed operation, the data source whose rules
//! govern it, `--environment`, `--system`, and the store. Output: the [`RequestContext`] the
//! operation runs in, and notes for `--explain` saying where its parts came from.
//!
//! What `call` adds to what `eval` builds:
//!
//! * **`%%request`**: the request file's `http` object (empty without one) with `service` (the
//!   body's `service`, else the data source whose rules govern the namespace) and `action` (the
//!   body's `name`) set from the body, as App Services sets them for a call to its MongoDB
//!   service.
//! * **`%%environment`**: `--environment TAG`, else the request file's `environment`, else the
//!   app's own (the root configuration's `environment`), with the values of
//!   `environments/<tag>.json`.
//! * **`%%user.custom_data`**: when the app enables custom user data
//!   (`auth/custom_user_data.json`) and the user file has no `custom_data`, the document of the
//!   configured collection whose `user_id_field` is the user's id
//!   ([`rolegate::ops::attach_custom_data`], shared with `rolegate serve`), or `{}` when there
//!   is none. A user file that has `custom_data` keeps it (it plays a user whose data is
//!   already known).
//!
//! The request file's `operation`, `client_projection`, `action`, `partition`, `args`,
//! `collection_documents` and `mid_session_custom_data_change` are not used: the body is the
//! operation.

use bson::{Bson, Document};
use rolegate::ops::{CustomDataSource, Operation, Store, attach_custom_data, call_request};
use rolegate::{RequestContext, RuleSet};

use super::inputs::Inputs;
use super::report::Problem;
use super::{CliError, Exit};

/// The context of a `call` and where its parts came from.
pub struct CallContext {
    /// The request context.
    pub context: RequestContext,
    /// For `--explain`: the environment, the `%%request` and the custom user data.
    pub notes: Vec<String>,
}

/// What a `call` needs to build its context besides the files.
pub struct CallSettings<'a> {
    /// The parsed body.
    pub operation: &'a Operation,
    /// The data source whose rules govern the namespace.
    pub data_source: &'a str,
    /// `--environment TAG`.
    pub environment: Option<&'a str>,
    /// `--system`.
    pub system: bool,
}

/// Builds the request context of a `call`. Exit 2 for an `--environment` the app does not
/// define, 3 for unusable files or a store that fails while custom user data is read, 4 when
/// the app's own environment has no `environments/<tag>.json`.
pub fn build(
    inputs: &Inputs,
    set: &RuleSet,
    settings: &CallSettings<'_>,
    store: &mut dyn Store,
) -> Result<CallContext, CliError> {
    let mut ctx = inputs.context(set, false, settings.system)?;
    // A call is the operation its body names (an Atlas Search request is an aggregation with
    // `$search`, which `call` does not run).
    ctx.search = false;
    let mut notes = Vec::new();
    environment(&mut ctx, inputs, set, settings.environment, &mut notes)?;
    request(&mut ctx, settings, &mut notes);
    if !settings.system {
        custom_data(&mut ctx, set, store, &mut notes)?;
    }
    Ok(CallContext {
        context: ctx,
        notes,
    })
}

/// `%%environment`: `--environment`, else the request file's, else the app's own.
fn environment(
    ctx: &mut RequestContext,
    inputs: &Inputs,
    set: &RuleSet,
    flag: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<(), CliError> {
    let from_request = inputs.request().and_then(|r| r.environment.as_ref());
    let tag = match (flag, from_request) {
        (Some(tag), _) => tag.to_string(),
        (None, Some(_)) => {
            notes.push("%%environment: from the request file".to_string());
            return Ok(());
        }
        (None, None) => match &set.environment {
            Some(tag) => tag.clone(),
            None => {
                notes.push("%%environment: none (the app names no environment)".to_string());
                return Ok(());
            }
        },
    };
    let Some(values) = set.environments.get(&tag) else {
        let known: Vec<String> = set.environments.keys().map(|k| format!("`{k}`")).collect();
        let hint = if known.is_empty() {
            "the app has no `environments/*.json`".to_string()
        } else {
            format!("the app defines {}", known.join(", "))
        };
        let (exit, message) = if flag.is_some() {
            (
                Exit::Usage,
                format!("--environment `{tag}`: the app does not define this environment"),
            )
        } else {
            (
                Exit::Rules,
                format!(
                    "the app's environment `{tag}` (its root configuration) has no \
                     `environments/{tag}.json`"
                ),
            )
        };
        return Err(CliError::new(
            exit,
            vec![Problem::error("unknown-environment", message).with_hint(hint)],
        ));
    };
    let mut env = Document::new();
    env.insert("tag", tag.clone());
    env.insert("values", values.clone());
    ctx.environment = Bson::Document(env);
    let source = if flag.is_some() {
        "--environment"
    } else {
        "the app's root configuration"
    };
    notes.push(format!("%%environment: `{tag}` ({source})"));
    Ok(())
}

/// `%%request.service` and `%%request.action` from the body
/// ([`rolegate::ops::call_request`]).
fn request(ctx: &mut RequestContext, settings: &CallSettings<'_>, notes: &mut Vec<String>) {
    let base = match &ctx.request {
        Bson::Document(d) => Some(d),
        _ => None,
    };
    let request = call_request(base, settings.operation, settings.data_source);
    notes.push(format!(
        "%%request.service: `{}`, %%request.action: `{}`",
        request.get_str("service").unwrap_or_default(),
        settings.operation.name()
    ));
    ctx.request = Bson::Document(request);
}

/// `%%user.custom_data` from the store, when the app enables it and the user file has none
/// ([`rolegate::ops::attach_custom_data`]).
fn custom_data(
    ctx: &mut RequestContext,
    set: &RuleSet,
    store: &mut dyn Store,
    notes: &mut Vec<String>,
) -> Result<(), CliError> {
    let Some(config) = &set.custom_user_data else {
        return Ok(());
    };
    let Some(Bson::Document(user)) = &mut ctx.user else {
        return Ok(());
    };
    let found = attach_custom_data(set, store, user).map_err(|e| {
        CliError::input(Problem::error(
            "store",
            format!("cannot read the custom user data: {e}"),
        ))
    })?;
    let place = format!(
        "{}.{} (`{}` = the user's id)",
        config.database, config.collection, config.user_id_field
    );
    match found {
        CustomDataSource::NotEnabled => {}
        CustomDataSource::Given => {
            notes.push("%%user.custom_data: from the user file".to_string());
        }
        CustomDataSource::NoStringId => notes
            .push("%%user.custom_data: not looked up (the user has no string `id`)".to_string()),
        CustomDataSource::Found(doc_id) => notes.push(format!(
            "%%user.custom_data: the document with _id {doc_id} of {place}"
        )),
        CustomDataSource::Missing => {
            notes.push(format!("%%user.custom_data: {{}} (no document of {place})"));
        }
    }
    Ok(())
}
