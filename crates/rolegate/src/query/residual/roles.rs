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

use std::collections::BTreeSet;

use super::approx::{Approx, Q};
use super::translate::Translator;
use crate::rules::{FieldPermissions, FieldTree, Role, Rule};

/// The documents the read decision may (`over`) and surely does (`under`) make visible.
pub(crate) fn visible(roles: &[Role], search: bool, t: &Translator<'_>) -> Approx {
    let mut reached = Approx::constant(true);
    let mut visible = Approx::constant(false);
    for role in roles {
        let applies = t.rule(&role.apply_when.expr);
        let shows = role_shows(role, search, t);
        // A role that surely shows everything it gets: `A or (not A and rest)` is `A or rest`
        // (sound only when `A` is exact, so that it cannot fail to evaluate).
        let shows_all = shows == Approx::constant(true) && applies.is_exact();
        visible = visible.or(reached.clone().and(applies.clone()).and(shows));
        if shows_all {
            continue;
        }
        reached = reached.and(applies.not());
        if reached.over == Q::False {
            break;
        }
        if too_large(&visible) || too_large(&reached) {
            // Many roles negating one another: widen rather than grow (a superset is sound).
            return Approx::unknown();
        }
    }
    visible
}

/// Whether either bound's query is over [`super::MAX_QUERY_BYTES`] encoded.
fn too_large(a: &Approx) -> bool {
    [&a.over, &a.under]
        .into_iter()
        .any(|q| matches!(q, Q::Query(d) if super::encoded_len(d) > super::MAX_QUERY_BYTES))
}

/// The top-level fields some role that can apply to some document may let the user read
/// (`None`: any field may be). A role is live unless its `apply_when` is false for the request
/// or an earlier role surely takes every document.
pub(crate) fn readable_fields(roles: &[Role], t: &Translator<'_>) -> Option<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let mut reached = Approx::constant(true);
    for role in roles {
        let applies = t.rule(&role.apply_when.expr);
        if reached.over.clone().and(applies.over.clone()) != Q::False {
            names.extend(role_readable(role, t)?);
        }
        reached = reached.and(applies.not());
        if reached.over == Q::False {
            break;
        }
        if too_large(&reached) {
            return None;
        }
    }
    Some(names)
}

/// The top-level fields `role` may let the user read (`None`: any).
fn role_readable(role: &Role, t: &Translator<'_>) -> Option<BTreeSet<String>> {
    let may = |r: &Option<Rule>| r.as_ref().is_some_and(|r| t.rule(&r.expr).over != Q::False);
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

/// Where `role`, once assigned, shows the document.
fn role_shows(role: &Role, search: bool, t: &Translator<'_>) -> Approx {
    if search && role.search == Some(false) {
        return Approx::constant(false);
    }
    let rule = |r: &Rule| t.rule(&r.expr);
    let gate = match role
        .document_filters
        .as_ref()
        .and_then(|df| df.read.as_ref().map(|read| (read, df.write.as_ref())))
    {
        None => Approx::constant(true),
        Some((read, write)) => rule(read).or(write.map_or(Approx::constant(false), rule)),
    };
    let level = match (&role.read, &role.write) {
        (None, None) => fields_show(&role.fields, false, t),
        (None, Some(w)) => rule(w).or(fields_show(&role.fields, true, t)),
        (Some(r), None) => rule(r),
        (Some(r), Some(w)) => rule(r).or(rule(w)),
    };
    gate.and(level)
}

/// Where the field rules of the top level leave some field readable (`write_denied`: the
/// document-level `write` is false, so field `write`s grant nothing).
fn fields_show(tree: &FieldTree, write_denied: bool, t: &Translator<'_>) -> Approx {
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
