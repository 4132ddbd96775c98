//! Role selection (spec §2.2): candidate roles are tried in array order and the first whose
//! `apply_when` is true is assigned. An `apply_when` that fails to evaluate stops the search and
//! denies (fail closed): trying later roles could grant what the failing role was meant to guard.

use super::{Failure, Trace};
use crate::error::Place;
use crate::rules::Role;
use crate::value::Bindings;

/// The first role of `roles` whose `apply_when` holds under `bindings`, or `None`.
pub(crate) fn select<'r>(
    roles: &'r [Role],
    trace: &mut Trace<'_>,
    bindings: &Bindings<'_>,
) -> Result<Option<&'r Role>, Failure> {
    if roles.is_empty() {
        trace.note(None, || {
            "no roles govern this collection; denied".to_string()
        });
    }
    for role in roles {
        let what = format_args!("apply_when of role `{}`", role.name);
        if trace.eval(&role.apply_when, bindings, what)? {
            trace.note(Some(&role.place), || {
                format!("role `{}` applies", role.name)
            });
            return Ok(Some(role));
        }
    }
    if let Some(first) = roles.first() {
        trace.note_at(|| {
            (
                Some(list_place(&first.place)),
                "no role applies to this document".to_string(),
            )
        });
    }
    Ok(None)
}

/// The place of the role list whose first role is at `first` (`roles[0]` → `roles`).
fn list_place(first: &Place) -> Place {
    let path = first
        .json_path
        .strip_suffix("[0]")
        .unwrap_or(&first.json_path);
    Place {
        file: first.file.clone(),
        json_path: path.to_string(),
        span: None,
    }
}

/// The name of the role assigned to the stored document `doc` under `policy` (bindings as for a
/// read: `%%root` = `%%prevRoot` = `doc`), or `None` when no role applies. The system user gets
/// no role (it bypasses rules). An `apply_when` that fails to evaluate is the error.
pub fn assigned_role(
    policy: &crate::rules::CollectionPolicy<'_>,
    request: &crate::context::RequestContext,
    doc: &bson::Document,
) -> Result<Option<String>, Failure> {
    if request.is_system() {
        return Ok(None);
    }
    let mut trace = Trace::new(request, false);
    let bindings = Bindings::stored(request, doc, None);
    Ok(select(policy.roles, &mut trace, &bindings)?.map(|r| r.name.clone()))
}
