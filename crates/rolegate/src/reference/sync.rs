//! Device Sync (spec §2.3, §2.4, §3.6, S22, U26), Partition-Based Sync (§3.7), third-party service
//! rules (§1.5, D7) and function `can_evaluate` (S16).
//!
//! Flexible Sync assigns one role per session and collection, from `apply_when` evaluated without
//! a document (expansions frozen at session start); filters are ignored. Writes are checked with
//! the write filter on both the pre-image and the post-image, and a pre-image outside the read
//! view is refused (`object is outside of the current query view`).

use bson::{Bson, Document};

use super::read::read_gate;
use super::write::{WriteKind, permitted};
use super::{Failure, Trace, roles};
use crate::context::RequestContext;
use crate::outcome::{ErrorCode, PartitionAccess, SyncSessionOutcome, WriteError, WriteOutcome};
use crate::rules::{CollectionPolicy, FunctionConfig, PartitionPermissions, Role, ServiceRule};
use crate::value::Bindings;

/// The session role for `policy`'s collection, and what it grants `doc` (when given).
/// `later` is the request context of the next session (changed custom data): when its role
/// differs, the client is reset at the next session.
pub fn session(
    policy: &CollectionPolicy<'_>,
    request: &RequestContext,
    doc: Option<&Document>,
    later: Option<&RequestContext>,
    explain: bool,
) -> SyncSessionOutcome {
    if let Some(reason) = too_deep(&[Some(request), later], &[doc]) {
        // Fail closed: the collection is inaccessible for the session, with the reason.
        return SyncSessionOutcome {
            role: None,
            incompatible: Some(reason),
            readable: false,
            writable: false,
            client_reset_on_next_session: false,
            explanation: Default::default(),
        };
    }
    let mut trace = Trace::new(request, explain);
    // A failing apply_when denies the whole collection for the session (fail closed).
    let role = match roles::select(policy.roles, &mut trace, &Bindings::request_only(request)) {
        Ok(role) => role,
        Err(failure) => {
            trace.note(Some(&failure.place), || {
                format!("role selection failed: {}; no access", failure.error)
            });
            None
        }
    };
    let incompatible = role.and_then(|r| r.sync_incompatible.clone());
    if let Some(reason) = &incompatible {
        trace.note(role.map(|r| &r.place), || {
            format!("the role is not Sync-compatible ({reason}); the collection is inaccessible")
        });
    }
    let usable = if incompatible.is_some() { None } else { role };
    let (readable, writable) = match (usable, doc) {
        (Some(role), Some(doc)) => (
            readable_in_session(role, doc, &mut trace).unwrap_or(false),
            writable_in_session(role, doc, &mut trace).unwrap_or(false),
        ),
        _ => (false, false),
    };
    let client_reset_on_next_session = later.is_some_and(|later| {
        let mut quiet = Trace::new(later, false);
        let next = roles::select(policy.roles, &mut quiet, &Bindings::request_only(later))
            .ok()
            .flatten();
        next.map(|r| &r.name) != role.map(|r| &r.name)
    });
    SyncSessionOutcome {
        role: role.map(|r| r.name.clone()),
        incompatible,
        readable,
        writable,
        client_reset_on_next_session,
        explanation: trace.explanation,
    }
}

fn readable_in_session(
    role: &Role,
    doc: &Document,
    trace: &mut Trace<'_>,
) -> Result<bool, Failure> {
    let request = trace.request;
    let b = Bindings::stored(request, doc, None);
    if !read_gate(role.document_filters.as_ref(), &b, trace)? {
        return Ok(false);
    }
    Ok(trace.eval_or(role.read.as_ref(), false, &b, "read")?
        || trace.eval_or(role.write.as_ref(), false, &b, "write")?)
}

fn writable_in_session(
    role: &Role,
    doc: &Document,
    trace: &mut Trace<'_>,
) -> Result<bool, Failure> {
    permitted(role, WriteKind::Update, Some(doc), Some(doc), trace)
}

/// The verdict for one uploaded change: `pre` absent for a create, `post` absent for a delete.
pub fn write(
    policy: &CollectionPolicy<'_>,
    request: &RequestContext,
    pre: Option<&Document>,
    post: Option<&Document>,
    explain: bool,
) -> WriteOutcome {
    if let Some(message) = too_deep(&[Some(request)], &[pre, post]) {
        return WriteOutcome {
            role: None,
            allowed: false,
            error: Some(WriteError {
                code: ErrorCode::RuleEvaluationFailed,
                message,
            }),
            explanation: Default::default(),
        };
    }
    let mut trace = Trace::new(request, explain);
    let role = roles::select(policy.roles, &mut trace, &Bindings::request_only(request))
        .ok()
        .flatten();
    let usable = role.filter(|r| r.sync_incompatible.is_none());
    let kind = match (pre, post) {
        (None, _) => WriteKind::Insert,
        (Some(_), Some(_)) => WriteKind::Update,
        (Some(_), None) => WriteKind::Delete,
    };
    let verdict = match usable {
        None => Ok(false),
        Some(role) => in_view(role, pre, &mut trace).and_then(|in_view| {
            if in_view {
                permitted(role, kind, pre, post, &mut trace)
            } else {
                Ok(false)
            }
        }),
    };
    if verdict == Ok(true) {
        return WriteOutcome {
            role: role.map(|r| r.name.clone()),
            allowed: true,
            error: None,
            explanation: trace.explanation,
        };
    }
    let id = post
        .or(pre)
        .and_then(|d| d.get("_id"))
        .map(describe_id)
        .unwrap_or_else(|| "object".to_string());
    let message = format!(
        "write to {id} in table \"{}\" not allowed",
        policy.collection
    );
    WriteOutcome {
        role: role.map(|r| r.name.clone()),
        allowed: false,
        error: Some(WriteError {
            code: ErrorCode::CompensatingWrite,
            message,
        }),
        explanation: trace.explanation,
    }
}

/// A pre-image must be inside the session's read view.
fn in_view(role: &Role, pre: Option<&Document>, trace: &mut Trace<'_>) -> Result<bool, Failure> {
    let Some(pre) = pre else { return Ok(true) };
    let inside = readable_in_session(role, pre, trace)?;
    if !inside {
        trace.note(None, || {
            "object is outside of the current query view".to_string()
        });
    }
    Ok(inside)
}

fn describe_id(id: &Bson) -> String {
    match id {
        Bson::ObjectId(oid) => format!("ObjectID(\"{oid}\")"),
        Bson::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// Partition-Based Sync access to `request.partition` (write implies read; errors deny).
pub fn partition(perms: &PartitionPermissions, request: &RequestContext) -> PartitionAccess {
    if too_deep(&[Some(request)], &[]).is_some() {
        return PartitionAccess {
            read: false,
            write: false,
        };
    }
    let mut trace = Trace::new(request, false);
    let b = Bindings::request_only(request);
    let write = trace.eval(&perms.write, &b, "write").unwrap_or(false);
    let read = write || trace.eval(&perms.read, &b, "read").unwrap_or(false);
    PartitionAccess { read, write }
}

/// Whether service `action` may run with `request.args` (D7: allowed when any rule listing the
/// action has a true `when`; an evaluation error in any of them denies).
pub fn service_action(
    rules: &[ServiceRule],
    request: &RequestContext,
    action: &str,
) -> Result<bool, Failure> {
    refuse_deep(request)?;
    let mut trace = Trace::new(request, false);
    let b = Bindings::request_only(request);
    let mut allowed = false;
    for rule in rules
        .iter()
        .filter(|r| r.actions.iter().any(|a| a == action))
    {
        allowed |= trace.eval(&rule.when, &b, "when")?;
    }
    Ok(allowed)
}

/// Whether a function may run for this request (`can_evaluate`, missing = true; errors deny).
pub fn can_evaluate(function: &FunctionConfig, request: &RequestContext) -> Result<bool, Failure> {
    refuse_deep(request)?;
    let mut trace = Trace::new(request, false);
    trace.eval_or(
        function.can_evaluate.as_ref(),
        true,
        &Bindings::request_only(request),
        "can_evaluate",
    )
}

/// The depth guard of these per-request entry points (finding 10 of issue 9): why a request
/// context or a document nests deeper than the default
/// [`max_document_depth`](crate::limits::Limits::max_document_depth) (they have no rule set's
/// limits), if one does. The caller denies with that reason before any rule sees them.
fn too_deep(requests: &[Option<&RequestContext>], docs: &[Option<&Document>]) -> Option<String> {
    let limits = crate::limits::Limits::DEFAULT;
    let requests = requests.iter().flatten().map(|r| limits.check_context(r));
    let docs = docs.iter().flatten().map(|d| limits.check_document(d));
    requests
        .chain(docs)
        .find_map(Result::err)
        .map(|e| e.to_string())
}

/// [`too_deep`] of a request, as a [`Failure`].
fn refuse_deep(request: &RequestContext) -> Result<(), Failure> {
    match too_deep(&[Some(request)], &[]) {
        None => Ok(()),
        Some(reason) => Err(Failure {
            place: crate::error::Place::default(),
            error: crate::value::EvalError::Limit(reason),
        }),
    }
}
