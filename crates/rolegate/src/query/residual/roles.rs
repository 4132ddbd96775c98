//! Stage: which documents any role could make visible, for one request. Input: the
//! collection's roles and a [`Translator`] bound to the request. Output: the [`Approx`] of
//! "the read decision makes the document visible".
//!
//! The read decision (`reference/read.rs`), term by term: role *i* is assigned where its
//! `apply_when` holds and every earlier one does not (first match); then the read gate of
//! `document_filters` (`read`, or a defined `write`); `search: false` withholds from search
//! requests; the document-level `read` and `write` (either true: the whole document; `read`
//! false: withheld); otherwise the field rules, which withhold a document with no readable
//! field. Every stored document has `_id`, so a role whose rules always let `_id` (or any
//! field) be read shows every document it reaches; a named field that is readable whatever
//! its value shows the documents that have it.

use std::collections::{BTreeSet, VecDeque};

use super::approx::{Approx, Q};
use super::translate::{Judged, Translator};
use crate::rules::{FieldPermissions, FieldTree, Role, Rule};

/// How many earlier `apply_when`s a role's term excludes at most. Role *i* applies only where
/// every earlier `apply_when` is false; spelling that out for every role makes the residual
/// grow with the square of the number of roles (200 roles that each show only some of what
/// they get made a residual of 850 KB, built in seconds, on every request). Past this many,
/// a term keeps the exclusions of the roles just before it (`over` stays a superset: it only
/// drops conditions) and adds nothing to `under`.
pub(crate) const MAX_EXCLUDED: usize = 16;

/// The documents the read decision may (`over`) and surely does (`under`) make visible.
///
/// A rule that may fail to evaluate denies where it fails (an `apply_when` stops the role
/// search; any other rule withholds the document), which its bounds do not say: a role whose
/// path holds such a rule adds nothing to `under`, and neither does any later role once such
/// an `apply_when` was passed.
pub(crate) fn visible(roles: &[Role], search: bool, t: &Translator<'_>) -> Approx {
    // Where the roles so far do not apply: the `over` of the last `MAX_EXCLUDED` negated
    // `apply_when`s, and the `under` of all of them (false once one may fail or is dropped).
    let mut excluded: VecDeque<Q> = VecDeque::new();
    let mut reached_under = Q::True;
    let mut visible = Approx::constant(false);
    // The encoded sizes of the terms of `over` and `under` so far.
    let mut sizes = (0usize, 0usize);
    for role in roles {
        let Judged {
            approx: applies,
            may_fail: applies_fail,
        } = t.rule(&role.apply_when.expr);
        let Judged {
            approx: shows,
            may_fail: shows_fail,
        } = role_shows(role, search, t);
        // A role that surely shows everything it gets: `A or (not A and rest)` is `A or rest`
        // (sound only when `A` is exact and cannot fail to evaluate).
        let shows_all =
            !applies_fail && !shows_fail && shows == Approx::constant(true) && applies.is_exact();
        let reached_over = excluded.iter().cloned().fold(Q::True, Q::and);
        let mut term = Approx {
            over: reached_over,
            under: reached_under.clone(),
        }
        .and(applies.clone())
        .and(shows);
        if applies_fail || shows_fail {
            term.under = Q::False;
        }
        // Many roles negating one another: past the size the residual may have, widen rather
        // than grow (a superset is sound). Each term is measured once: linear in the roles.
        for (size, q) in [(&mut sizes.0, &term.over), (&mut sizes.1, &term.under)] {
            if let Q::Query(d) = q {
                *size = size.saturating_add(super::encoded_len(d));
            }
        }
        if sizes.0.max(sizes.1) > super::MAX_QUERY_BYTES {
            return Approx::unknown();
        }
        visible = visible.or(term);
        if shows_all {
            continue;
        }
        let passed = applies.not();
        if passed.over == Q::False {
            break;
        }
        reached_under = if applies_fail {
            Q::False
        } else {
            reached_under.and(passed.under)
        };
        if passed.over != Q::True {
            if excluded.len() == MAX_EXCLUDED {
                excluded.pop_front();
                reached_under = Q::False;
            }
            excluded.push_back(passed.over);
        }
    }
    visible
}

/// The top-level fields some role that can apply to some document may let the user read
/// (`None`: any field may be). A role is live unless its `apply_when` is false for the request
/// or an earlier role surely takes every document. (Only whether the earlier roles' negations
/// are false matters, so none is built: linear in the roles.)
pub(crate) fn readable_fields(roles: &[Role], t: &Translator<'_>) -> Option<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for role in roles {
        let applies = t.rule(&role.apply_when.expr).approx;
        if applies.over != Q::False {
            names.extend(role_readable(role, t)?);
        }
        // It surely applies (or fails, which denies): no later role is reached.
        if applies.under == Q::True {
            break;
        }
    }
    Some(names)
}

/// The top-level fields `role` may let the user read (`None`: any).
fn role_readable(role: &Role, t: &Translator<'_>) -> Option<BTreeSet<String>> {
    let may = |r: &Option<Rule>| {
        r.as_ref()
            .is_some_and(|r| t.rule(&r.expr).approx.over != Q::False)
    };
    if may(&role.read) {
        return None;
    }
    let write_denied = match &role.write {
        Some(w) if may(&Some(w.clone())) => return None,
        Some(_) => true,
        None => false,
    };
    let tree = &role.fields;
    if let Some(additional) = &tree.additional
        && !matches!(Grant::of(additional, write_denied, t), Grant::Never)
    {
        return None;
    }
    Some(
        tree.fields
            .iter()
            .filter(|(_, rule)| {
                !rule.nested.is_empty()
                    || !matches!(Grant::of(&rule.permissions, write_denied, t), Grant::Never)
            })
            .map(|(name, _)| name.clone())
            .collect(),
    )
}

/// Where `role`, once assigned, shows the document, and whether a rule it evaluates may fail.
fn role_shows(role: &Role, search: bool, t: &Translator<'_>) -> Judged {
    if search && role.search == Some(false) {
        return Judged {
            approx: Approx::constant(false),
            may_fail: false,
        };
    }
    let mut may_fail = false;
    let mut rule = |r: &Rule| {
        let judged = t.rule(&r.expr);
        may_fail |= judged.may_fail;
        judged.approx
    };
    let gate = match role
        .document_filters
        .as_ref()
        .and_then(|df| df.read.as_ref().map(|read| (read, df.write.as_ref())))
    {
        None => Approx::constant(true),
        Some((read, write)) => {
            let read = rule(read);
            read.or(write.map_or(Approx::constant(false), &mut rule))
        }
    };
    let level = match (&role.read, &role.write) {
        (None, None) => fields_show(&role.fields, false, t, &mut may_fail),
        (None, Some(w)) => {
            let write = rule(w);
            write.or(fields_show(&role.fields, true, t, &mut may_fail))
        }
        (Some(r), None) => rule(r),
        (Some(r), Some(w)) => {
            let read = rule(r);
            read.or(rule(w))
        }
    };
    Judged {
        approx: gate.and(level),
        may_fail,
    }
}

/// Where the field rules of the top level leave some field readable (`write_denied`: the
/// document-level `write` is false, so field `write`s grant nothing). Sets `may_fail` when a
/// field rule of the tree (at any depth) may fail to evaluate.
fn fields_show(
    tree: &FieldTree,
    write_denied: bool,
    t: &Translator<'_>,
    may_fail: &mut bool,
) -> Approx {
    *may_fail |= tree_may_fail(tree, write_denied, t);
    let grant = |p: &FieldPermissions| Grant::of(p, write_denied, t);
    let mut over = Q::False;
    let mut under = Q::False;
    let id_named = tree.get("_id").is_some();
    if let Some(additional) = &tree.additional {
        match grant(additional) {
            Grant::Always if !id_named => return Approx::constant(true),
            Grant::Never => {}
            _ => over = Q::True,
        }
    }
    for (name, rule) in &tree.fields {
        let exists = if name == "_id" {
            Q::True
        } else {
            Q::op(name, "$exists", bson::Bson::Boolean(true))
        };
        let nested = !rule.nested.is_empty();
        match grant(&rule.permissions) {
            Grant::Always => {
                under = under.or(exists.clone());
                over = over.or(exists);
            }
            Grant::Never if !nested => {}
            _ => over = over.or(exists),
        }
    }
    Approx { over, under }
}

/// Whether a `read` or `write` of `tree` (nested levels included; `write`s only unless
/// `write_denied`) may fail to evaluate on some document.
fn tree_may_fail(tree: &FieldTree, write_denied: bool, t: &Translator<'_>) -> bool {
    let rule_may_fail = |r: &Option<Rule>| {
        r.as_ref()
            .is_some_and(|r| t.constant(&r.expr).is_none() && t.rule(&r.expr).may_fail)
    };
    let perms_may_fail =
        |p: &FieldPermissions| rule_may_fail(&p.read) || (!write_denied && rule_may_fail(&p.write));
    tree.additional.as_ref().is_some_and(perms_may_fail)
        || tree.fields.iter().any(|(_, rule)| {
            perms_may_fail(&rule.permissions) || tree_may_fail(&rule.nested, write_denied, t)
        })
}

/// What a field's `read`/`write` grant, whatever its value.
enum Grant {
    Always,
    Never,
    Depends,
}

impl Grant {
    fn of(p: &FieldPermissions, write_denied: bool, t: &Translator<'_>) -> Grant {
        let value = |r: &Option<Rule>| match r {
            None => Some(false),
            Some(r) => t.constant(&r.expr),
        };
        let read = value(&p.read);
        let write = if write_denied {
            Some(false)
        } else {
            value(&p.write)
        };
        match (read, write) {
            (Some(true), _) | (_, Some(true)) => Grant::Always,
            (Some(false), Some(false)) => Grant::Never,
            _ => Grant::Depends,
        }
    }
}
