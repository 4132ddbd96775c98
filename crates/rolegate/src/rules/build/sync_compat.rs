//! Sync compatibility of a role (spec §3.6), when Flexible Sync is enabled on its data source.
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet), right after a
//! role is built ([`super::roles`]).
//! Input: a built [`Role`], the data source's [`SyncConfig`], and the role's collection (`None`
//! for default roles).
//! Output: errors in [`Diagnostics`], and [`Role::sync_incompatible`] set with a reason.
//!
//! Decisions where the spec is silent:
//!
//! * These are load *errors* (as the conformance cases expect): `apply_when` that reads the
//!   document (reported by the expression parser for
//!   [`Site::SyncApplyWhen`](crate::expr::Site::SyncApplyWhen)), expansions not allowed in Sync
//!   rules (parser, [`Site::SyncRule`](crate::expr::Site::SyncRule)), field-level permissions on
//!   `_id`, and a document filter / `insert` / `delete` that references a non-queryable field.
//! * These mark the role [`Role::sync_incompatible`] with a reason and give warning
//!   `sync-incompatible-role` (the evaluator denies the collection when that role is the first
//!   match, spec §2.4): `document_filters` absent or missing `read`/`write`, and a top-level or
//!   field-level `read`/`write` (or `additional_fields`) that is not a boolean literal. An
//!   absent top-level `read`/`write` is not a reason.
//! * **Queryable fields** of a collection = `queryable_fields_names` ∪ that collection's
//!   `collection_queryable_fields_names` ∪ `_id` (always queryable). Default roles apply to
//!   many collections; they are checked against the global list ∪ `_id` ∪ every
//!   collection-specific list. A dotted reference `a.b` is queryable when `a.b` or `a` is.

use std::collections::BTreeSet;

use crate::error::{Diagnostic, Diagnostics};
use crate::expr::{Expr, Root};
use crate::rules::model::{FieldTree, Role, Rule, SyncConfig};

/// The queryable fields of `collection` (`None`: every collection) under `sync`.
fn queryable_fields<'a>(sync: &'a SyncConfig, collection: Option<&str>) -> BTreeSet<&'a str> {
    let mut set: BTreeSet<&str> = sync.queryable_fields.iter().map(String::as_str).collect();
    set.insert("_id");
    match collection {
        Some(c) => {
            if let Some(list) = sync.collection_queryable_fields.get(c) {
                set.extend(list.iter().map(String::as_str));
            }
        }
        None => {
            for list in sync.collection_queryable_fields.values() {
                set.extend(list.iter().map(String::as_str));
            }
        }
    }
    set
}

/// The document fields an expression tests (bare-name subjects), as dotted paths. Subjects
/// inside `$elemMatch` queries are element-relative and not collected.
fn document_fields(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Bool(_) => {}
        Expr::All(v) | Expr::Any(v) | Expr::None(v) => {
            v.iter().for_each(|e| document_fields(e, out))
        }
        Expr::Not(e) => document_fields(e, out),
        Expr::Test { subject, .. } => {
            // Explicit `%%root` is rejected by the parser in Sync rules; count bare names only.
            if subject.root == Root::Root && subject.implicit && !subject.path.is_empty() {
                let path = subject.path.join(".");
                if !out.contains(&path) {
                    out.push(path);
                }
            }
        }
    }
}

/// Whether `path` (or its first segment) is queryable.
fn is_queryable(path: &str, queryable: &BTreeSet<&str>) -> bool {
    let first = path.split('.').next().unwrap_or(path);
    queryable.contains(path) || queryable.contains(first)
}

/// Checks `role` against Flexible Sync `sync` (spec §3.6): errors for what Sync refuses, and
/// [`Role::sync_incompatible`] with warning `sync-incompatible-role` for what denies at runtime.
pub(super) fn check_sync_role(
    role: &mut Role,
    sync: &SyncConfig,
    collection: Option<&str>,
    diags: &mut Diagnostics,
) {
    // Errors.
    if let Some(rule) = role.fields.get("_id") {
        diags.error(
            "sync-incompatible",
            rule.place.clone(),
            "field-level permissions on _id are not Sync compatible",
        );
    }
    let queryable = queryable_fields(sync, collection);
    let mut gates: Vec<(&str, &Rule)> = Vec::new();
    if let Some(df) = &role.document_filters {
        gates.extend(df.read.iter().map(|r| ("document filter", r)));
        gates.extend(df.write.iter().map(|r| ("document filter", r)));
    }
    gates.extend(role.insert.iter().map(|r| ("`insert` expression", r)));
    gates.extend(role.delete.iter().map(|r| ("`delete` expression", r)));
    for (what, rule) in gates {
        let mut fields = Vec::new();
        document_fields(&rule.expr, &mut fields);
        for field in fields {
            if !is_queryable(&field, &queryable) {
                diags.push(
                    Diagnostic::error(
                        "non-queryable-field",
                        rule.place.clone(),
                        format!("{what} references non-queryable field '{field}'"),
                    )
                    .with_hint(format!(
                        "add `{field}` to the Sync configuration's queryable fields"
                    )),
                );
            }
        }
    }

    // Incompatibilities that deny at runtime.
    let mut reason: Option<String> = match &role.document_filters {
        None => Some("`document_filters` is not defined".to_string()),
        Some(df) if df.read.is_none() => Some("`document_filters.read` is not defined".to_string()),
        Some(df) if df.write.is_none() => {
            Some("`document_filters.write` is not defined".to_string())
        }
        Some(_) => None,
    };
    for (key, rule) in [("read", &role.read), ("write", &role.write)] {
        if reason.is_none()
            && rule
                .as_ref()
                .is_some_and(|r| !matches!(r.expr, Expr::Bool(_)))
        {
            reason = Some(format!("top-level `{key}` is not a boolean"));
        }
    }
    if reason.is_none() {
        reason = non_boolean_field_permission(&role.fields, "fields");
    }
    if let Some(reason) = reason {
        diags.push(Diagnostic::warning(
            "sync-incompatible-role",
            role.place.clone(),
            format!(
                "role `{}` is not Sync compatible ({reason}); a Sync session whose first \
                 matching role is this one cannot access the collection",
                role.name
            ),
        ));
        role.sync_incompatible = Some(reason);
    }
}

/// The first field-level permission of `tree` (at JSON path `path`) that is not a boolean
/// literal, as a reason.
fn non_boolean_field_permission(tree: &FieldTree, path: &str) -> Option<String> {
    let is_bool = |r: &Option<Rule>| r.as_ref().is_none_or(|r| matches!(r.expr, Expr::Bool(_)));
    for (name, rule) in &tree.fields {
        let here = format!("{path}.{name}");
        for (key, perm) in [
            ("read", &rule.permissions.read),
            ("write", &rule.permissions.write),
        ] {
            if !is_bool(perm) {
                return Some(format!(
                    "field-level permission `{here}.{key}` is not a boolean"
                ));
            }
        }
        if let Some(r) = non_boolean_field_permission(&rule.nested, &format!("{here}.fields")) {
            return Some(r);
        }
    }
    if let Some(add) = &tree.additional {
        for (key, perm) in [("read", &add.read), ("write", &add.write)] {
            if !is_bool(perm) {
                let base = path.strip_suffix("fields").unwrap_or(path);
                return Some(format!(
                    "field-level permission `{base}additional_fields.{key}` is not a boolean"
                ));
            }
        }
    }
    None
}
