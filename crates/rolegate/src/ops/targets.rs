//! Stage: an update's target paths, checked before it is applied to a stored document
//! (decision O17). Input: the prepared request, the read plan, the stored document and the
//! update's targets ([`Update::targets`]). Output: nothing when every path is readable, or the
//! refusal (`UpdateNotPermitted`; `RuleEvaluationFailed` when a rule fails) that names the
//! first path that is not.
//!
//! A path is readable when the role's field rules let the user read all of it
//! ([`PreparedRequest::unreadable_target`]) and the applied filters' projections keep all of
//! it: a field a filter projects away is hidden like one a role hides (decision O15).

use bson::{Bson, Document};

use crate::engine::PreparedRequest;
use crate::mql::{TargetPart, Update, array_index};
use crate::outcome::{ErrorCode, WriteError, WriteOutcome};
use crate::query::QueryPlan;

/// The refusal of an update of `stored` that names a path the user cannot read, if it does.
/// `role` is the role the read decision assigned (for the refusal's record).
pub(super) fn refusal(
    request: &PreparedRequest<'_, '_>,
    qp: &QueryPlan,
    stored: &Document,
    update: &Update,
    role: Option<&str>,
) -> Option<WriteOutcome> {
    if request.context.is_system() {
        return None;
    }
    let targets = update.targets();
    let refused = |code, message: String| WriteOutcome {
        role: role.map(str::to_string),
        allowed: false,
        error: Some(WriteError { code, message }),
        explanation: Default::default(),
    };
    let hidden = match request.unreadable_target(stored, &targets) {
        Err(reason) => {
            return Some(refused(
                ErrorCode::RuleEvaluationFailed,
                format!("the update's paths could not be checked: {reason}"),
            ));
        }
        Ok(Some(i)) => targets.get(i),
        Ok(None) => targets
            .iter()
            .find(|path| !projection_keeps(qp.view_projection(), path)),
    }?;
    Some(refused(
        ErrorCode::UpdateNotPermitted,
        format!(
            "update not permitted: it writes `{}`, which the user cannot read",
            dotted(hidden)
        ),
    ))
}

/// `path` as written, with `$` for an element.
fn dotted(path: &[TargetPart]) -> String {
    let parts: Vec<&str> = path
        .iter()
        .map(|p| match p {
            TargetPart::Name(n) => n.as_str(),
            TargetPart::Element => "$",
        })
        .collect();
    parts.join(".")
}

/// Whether a (filters') projection keeps all of `path`. Projections see through arrays, so
/// elements are skipped; a numeric name may be an index or a field name, and both readings
/// must be kept.
fn projection_keeps(projection: &Document, path: &[TargetPart]) -> bool {
    if projection.is_empty() {
        return true;
    }
    let mut flat = Vec::new();
    flatten(projection, Vec::new(), &mut flat);
    let names: Vec<&str> = path
        .iter()
        .filter_map(|p| match p {
            TargetPart::Name(n) => Some(n.as_str()),
            TargetPart::Element => None,
        })
        .collect();
    let fields: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| array_index(n).is_none())
        .collect();
    keeps(&flat, &names) && keeps(&flat, &fields)
}

/// A projection's paths with their flag: `Some(true)` includes, `Some(false)` excludes, `None`
/// is anything else (`$slice`, `$elemMatch`, a computed value).
fn flatten(projection: &Document, prefix: Vec<String>, out: &mut Vec<(Vec<String>, Option<bool>)>) {
    for (key, value) in projection {
        let mut path = prefix.clone();
        path.extend(key.split('.').map(str::to_string));
        let flag = match value {
            Bson::Boolean(b) => Some(*b),
            Bson::Int32(n) => Some(*n != 0),
            Bson::Int64(n) => Some(*n != 0),
            Bson::Double(n) => Some(*n != 0.0),
            Bson::Document(d) if d.keys().all(|k| !k.starts_with('$')) && !d.is_empty() => {
                flatten(d, path, out);
                continue;
            }
            _ => None,
        };
        out.push((path, flag));
    }
}

fn keeps(flat: &[(Vec<String>, Option<bool>)], names: &[&str]) -> bool {
    let is_prefix =
        |a: &[String], b: &[&str]| a.len() <= b.len() && a.iter().zip(b).all(|(x, y)| x == y);
    let meets = |k: &[String]| {
        is_prefix(k, names) || (names.len() < k.len() && names.iter().zip(k).all(|(x, y)| x == y))
    };
    if flat.iter().any(|(k, flag)| *flag != Some(true) && meets(k)) {
        return false;
    }
    let inclusive = flat
        .iter()
        .any(|(k, flag)| *flag == Some(true) && k.as_slice() != ["_id"]);
    !inclusive
        || names.first() == Some(&"_id")
        || flat
            .iter()
            .any(|(k, flag)| *flag == Some(true) && is_prefix(k, names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn path(p: &str) -> Vec<TargetPart> {
        p.split('.')
            .map(|s| match s {
                "$" => TargetPart::Element,
                n => TargetPart::Name(n.to_string()),
            })
            .collect()
    }

    #[test]
    fn exclusions_hide_their_paths_their_prefixes_and_below() {
        let p = doc! {"secret": 0, "a.x": 0};
        assert!(!projection_keeps(&p, &path("secret")));
        assert!(!projection_keeps(&p, &path("secret.y")));
        assert!(!projection_keeps(&p, &path("a")));
        assert!(!projection_keeps(&p, &path("a.$.x")));
        assert!(projection_keeps(&p, &path("a.y")));
        assert!(projection_keeps(&p, &path("title")));
    }

    #[test]
    fn inclusions_keep_what_is_under_them_and_id() {
        let p = doc! {"title": 1, "b": {"c": 1}};
        assert!(projection_keeps(&p, &path("title")));
        assert!(projection_keeps(&p, &path("title.z")));
        assert!(projection_keeps(&p, &path("b.c.$")));
        assert!(!projection_keeps(&p, &path("b")));
        assert!(!projection_keeps(&p, &path("other")));
        assert!(projection_keeps(&p, &path("_id")));
        assert!(!projection_keeps(
            &doc! {"title": 1, "_id": 0},
            &path("_id")
        ));
        assert!(projection_keeps(&doc! {}, &path("anything")));
    }

    #[test]
    fn numeric_names_must_be_kept_as_indexes_and_as_names() {
        let p = doc! {"a.b": 0};
        assert!(!projection_keeps(&p, &path("a.0.b")));
        assert!(projection_keeps(&p, &path("a.0.c")));
        assert!(!projection_keeps(&doc! {"a.0": 1}, &path("a.0")));
    }

    #[test]
    fn anything_but_a_flag_hides_what_it_touches() {
        let p = doc! {"tags": {"$slice": 2}};
        assert!(!projection_keeps(&p, &path("tags")));
        assert!(projection_keeps(&p, &path("title")));
    }
}
