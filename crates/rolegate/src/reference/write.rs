//! Insert, update/replace and delete decisions for one document (spec §3.3 and the write
//! flowchart, U4, U5, U11, U13, U14, D6), followed by schema validation of the result (§7).
//!
//! Bindings: role selection runs on the stored document for updates and deletes (U5) and on the
//! new document for inserts; permission expressions see `%%root` = post-image and `%%prevRoot` =
//! pre-image (absent on insert); deletes bind both to the stored document.

use bson::Document;

use super::fields;
use super::{Failure, Trace, roles};
use crate::context::RequestContext;
use crate::outcome::{ErrorCode, WriteError, WriteOutcome};
use crate::rules::{CollectionPolicy, DocumentFilters, Role};
use crate::value::eval::{Bindings, WholeRoots};

/// Which write is being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Insert,
    /// Update, replace and findAndModify (an upsert that inserts is an [`WriteKind::Insert`]).
    Update,
    Delete,
}

impl WriteKind {
    fn refused(self) -> WriteError {
        let (code, message) = match self {
            WriteKind::Insert => (ErrorCode::InsertNotPermitted, "insert not permitted"),
            WriteKind::Update => (ErrorCode::UpdateNotPermitted, "update not permitted"),
            WriteKind::Delete => (ErrorCode::DeleteNotPermitted, "delete not permitted"),
        };
        WriteError {
            code,
            message: message.to_string(),
        }
    }
}

/// Decides an insert of `doc`.
pub fn insert(
    policy: &CollectionPolicy<'_>,
    request: &RequestContext,
    doc: &Document,
    explain: bool,
) -> WriteOutcome {
    decide(policy, request, WriteKind::Insert, None, Some(doc), explain)
}

/// Decides an update (or replace) from `pre` to `post`.
pub fn update(
    policy: &CollectionPolicy<'_>,
    request: &RequestContext,
    pre: &Document,
    post: &Document,
    explain: bool,
) -> WriteOutcome {
    decide(
        policy,
        request,
        WriteKind::Update,
        Some(pre),
        Some(post),
        explain,
    )
}

/// Decides a delete of the stored `doc`.
pub fn delete(
    policy: &CollectionPolicy<'_>,
    request: &RequestContext,
    doc: &Document,
    explain: bool,
) -> WriteOutcome {
    decide(policy, request, WriteKind::Delete, Some(doc), None, explain)
}

fn decide(
    policy: &CollectionPolicy<'_>,
    request: &RequestContext,
    kind: WriteKind,
    pre: Option<&Document>,
    post: Option<&Document>,
    explain: bool,
) -> WriteOutcome {
    let mut trace = Trace::new(request, explain);
    if request.is_system() {
        trace.note(None, || {
            "the system user bypasses all rules and schema validation".to_string()
        });
        return WriteOutcome {
            role: None,
            allowed: true,
            error: None,
            explanation: trace.explanation,
        };
    }
    // Role selection: the stored document for updates/deletes (U5), the new one for inserts.
    let (select_root, select_prev) = match kind {
        WriteKind::Insert => (post, None),
        WriteKind::Update | WriteKind::Delete => (pre, pre),
    };
    let select_whole = WholeRoots::new();
    let select = Bindings {
        request,
        root: select_root,
        prev_root: select_prev,
        this: None,
        prev: None,
        whole: Some(&select_whole),
    };
    let role = match roles::select(policy.roles, &mut trace, &select) {
        Ok(role) => role,
        Err(failure) => return failed(None, failure, trace),
    };
    let Some(role) = role else {
        let error = if policy.roles.is_empty() {
            WriteError {
                code: ErrorCode::NoMatchingRuleFound,
                message: "no rules govern this collection".to_string(),
            }
        } else {
            kind.refused()
        };
        return WriteOutcome {
            role: None,
            allowed: false,
            error: Some(error),
            explanation: trace.explanation,
        };
    };
    let name = Some(role.name.clone());
    match permitted(role, kind, pre, post, &mut trace) {
        Err(failure) => failed(name, failure, trace),
        Ok(false) => WriteOutcome {
            role: name,
            allowed: false,
            error: Some(kind.refused()),
            explanation: trace.explanation,
        },
        Ok(true) => match (policy.schema, post) {
            (Some(schema), Some(post)) => match schema.validate(post, pre, request) {
                Ok(()) => allowed(name, trace),
                Err(violation) => {
                    trace.note(None, || format!("schema validation failed: {violation}"));
                    let error = WriteError {
                        code: ErrorCode::SchemaValidationFailedWrite,
                        message: violation.to_string(),
                    };
                    WriteOutcome {
                        role: name,
                        allowed: false,
                        error: Some(error),
                        explanation: trace.explanation,
                    }
                }
            },
            _ => allowed(name, trace),
        },
    }
}

fn allowed(role: Option<String>, trace: Trace<'_>) -> WriteOutcome {
    WriteOutcome {
        role,
        allowed: true,
        error: None,
        explanation: trace.explanation,
    }
}

fn failed(role: Option<String>, failure: Failure, trace: Trace<'_>) -> WriteOutcome {
    let error = WriteError {
        code: ErrorCode::RuleEvaluationFailed,
        message: failure.to_string(),
    };
    WriteOutcome {
        role,
        allowed: false,
        error: Some(error),
        explanation: trace.explanation,
    }
}

/// The write gate of `document_filters` (D1, D6): an undefined `write` member is true; defined,
/// it must hold on the pre-image (updates, deletes) and on the post-image (inserts, updates).
pub(crate) fn write_gate(
    filters: Option<&DocumentFilters>,
    pre: Option<&Document>,
    post: Option<&Document>,
    request: &RequestContext,
    trace: &mut Trace<'_>,
) -> Result<bool, Failure> {
    let Some(rule) = filters.and_then(|df| df.write.as_ref()) else {
        return Ok(true);
    };
    for (image, doc) in [("pre-image", pre), ("post-image", post)] {
        if let Some(doc) = doc {
            let b = Bindings {
                request,
                root: Some(doc),
                prev_root: pre,
                this: None,
                prev: None,
                whole: None,
            };
            if !trace.eval(
                rule,
                &b,
                format_args!("document_filters.write on the {image}"),
            )? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Whether `role` permits the write (before schema validation).
pub(crate) fn permitted(
    role: &Role,
    kind: WriteKind,
    pre: Option<&Document>,
    post: Option<&Document>,
    trace: &mut Trace<'_>,
) -> Result<bool, Failure> {
    let request = trace.request;
    if !write_gate(role.document_filters.as_ref(), pre, post, request, trace)? {
        trace.note_at(|| {
            let place = role.document_filters.as_ref().map(|df| df.place.clone());
            (
                place,
                "document filters do not permit writing this document".to_string(),
            )
        });
        return Ok(false);
    }
    // Permission expressions: %%root = post-image (the stored document for deletes), %%prevRoot = pre-image.
    let root = if kind == WriteKind::Delete { pre } else { post };
    let whole = WholeRoots::new();
    let b = Bindings {
        request,
        root,
        prev_root: pre,
        this: None,
        prev: None,
        whole: Some(&whole),
    };
    let all_fields = match trace.eval_opt(role.write.as_ref(), &b, "write")? {
        Some(true) => true,
        Some(false) => {
            trace.note(role.write.as_ref().map(|r| &r.place), || {
                "write is false; field rules cannot override it (U11)".to_string()
            });
            return Ok(false);
        }
        None => {
            trace.note(None, || {
                "write is undefined; field-level rules decide".to_string()
            });
            let (fp, ft, all) = match kind {
                WriteKind::Insert => (None, post, true),
                WriteKind::Update => (pre, post, false),
                WriteKind::Delete => (pre, pre, true),
            };
            fields::all_writable(fp, ft, all, &b, trace, "", fields::Level::role(role))?
        }
    };
    if !all_fields {
        return Ok(false);
    }
    match kind {
        WriteKind::Insert => trace.eval_or(role.insert.as_ref(), true, &b, "insert"),
        WriteKind::Delete => trace.eval_or(role.delete.as_ref(), true, &b, "delete"),
        WriteKind::Update => Ok(true),
    }
}
