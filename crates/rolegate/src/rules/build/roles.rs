//! Roles (spec §1.6) and their field trees (`fields`, `additional_fields`).
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet).
//! Input: a role list or one role as JSON, and its [`RoleContext`] (the data source's Flexible
//! Sync settings, the collection).
//! Output: [`Role`]s with their [`FieldTree`]s; under Flexible Sync each role is then checked
//! for Sync compatibility ([`super::sync_compat`]).
//!
//! Decisions where the spec is silent:
//!
//! * A missing `apply_when` behaves as `{}` (spec U12) with warning `missing-apply-when`.
//! * `applyWhen` in a current-format role is read as `apply_when` when that key is absent
//!   (warning `legacy-key`): ignoring it would widen access.
//! * Role names are required, non-empty, ≤ 100 characters, and unique within one role list.
//! * `search` must be a JSON boolean (error otherwise).
//! * Dotted keys in `fields` (`"a.b"`) are errors (spec U15); nest with `fields` instead.
//! * Pre-2023 Flexible Sync roles ([`RoleFormat::LegacySync`]) are mapped as documented:
//!   `applyWhen` → `apply_when`, `read`/`write` → `document_filters.read`/`.write` (a missing
//!   one is `false`), and `read`, `write`, `insert`, `delete`, `search` all `true`; their
//!   `fields`/`additional_fields` are kept but have no effect (warning `legacy-sync-fields`).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::keys::{PERMISSION_KEYS, unknown_keys};
use super::shared::{as_array, as_object, literal, literal_always, required_name, rule};
use super::sync_compat::check_sync_role;
use crate::error::{Diagnostic, Diagnostics, Place, json_kind};
use crate::expr::{Dialect, Site};
use crate::rules::model::{
    DocumentFilters, FieldPermissions, FieldRule, FieldTree, Role, SyncConfig,
};

const ROLE_KEYS: &[&str] = &[
    "name",
    "apply_when",
    "document_filters",
    "read",
    "write",
    "insert",
    "delete",
    "search",
    "fields",
    "additional_fields",
];
const LEGACY_SYNC_ROLE_KEYS: &[&str] = &[
    "name",
    "applyWhen",
    "apply_when",
    "read",
    "write",
    "fields",
    "additional_fields",
];
const FIELD_KEYS: &[&str] = &["read", "write", "fields", "additional_fields"];

/// Where a role list is being built: decides the expression sites and the Sync checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoleContext<'a> {
    /// Flexible Sync settings of the data source, when Sync is enabled on it.
    pub sync: Option<&'a SyncConfig>,
    /// The collection the roles belong to; `None` for default roles (they are checked against
    /// the queryable fields of every collection).
    pub collection: Option<&'a str>,
}

/// The two role document formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RoleFormat {
    /// Spec §1.6 (2018 → today).
    Current,
    /// Pre-2023 Flexible Sync `permissions` roles (spec §1.4), mapped as documented.
    LegacySync,
}

/// Builds one role (spec §1.6) in its context; `None` when `json` is not an object.
#[cfg(test)]
pub fn build_role(
    json: &Value,
    ctx: RoleContext<'_>,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<Role> {
    build_role_in(json, ctx, RoleFormat::Current, place, diags)
}

/// Builds a role list (`roles` of a rule file): every role, with unique names.
pub fn build_roles(
    json: &Value,
    ctx: RoleContext<'_>,
    place: &Place,
    diags: &mut Diagnostics,
) -> Vec<Role> {
    build_roles_in(json, ctx, RoleFormat::Current, place, diags)
}

/// [`build_roles`] for either role format.
pub(super) fn build_roles_in(
    json: &Value,
    ctx: RoleContext<'_>,
    format: RoleFormat,
    place: &Place,
    diags: &mut Diagnostics,
) -> Vec<Role> {
    let Some(items) = as_array(json, "`roles`", place, diags) else {
        return Vec::new();
    };
    let mut roles: Vec<Role> = Vec::with_capacity(items.len());
    let mut names: HashSet<String> = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let p = place.index(i);
        let Some(role) = build_role_in(item, ctx, format, &p, diags) else {
            continue;
        };
        if !role.name.is_empty() && !names.insert(role.name.clone()) {
            diags.error(
                "duplicate-role",
                p.key("name"),
                format!(
                    "duplicate role name `{}`; role names are unique within a collection",
                    role.name
                ),
            );
        }
        roles.push(role);
    }
    roles
}

/// [`build_role`] for either role format.
fn build_role_in(
    json: &Value,
    ctx: RoleContext<'_>,
    format: RoleFormat,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<Role> {
    let map = as_object(json, "a role", place, diags)?;
    let name = required_name(map, "role", place, diags);
    let sync = ctx.sync.is_some() || format == RoleFormat::LegacySync;
    let (apply_when_site, gate_site) = if sync {
        (Site::SyncApplyWhen, Site::SyncRule)
    } else {
        (Site::RoleApplyWhen, Site::RolePermission)
    };
    let mongo = Dialect::MongoDb;

    match format {
        RoleFormat::Current => unknown_keys(map, ROLE_KEYS, &["applyWhen"], "a role", place, diags),
        RoleFormat::LegacySync => unknown_keys(
            map,
            LEGACY_SYNC_ROLE_KEYS,
            &[],
            "a pre-2023 Sync role",
            place,
            diags,
        ),
    }

    let apply_when = match (map.get("apply_when"), map.get("applyWhen")) {
        (Some(v), other) => {
            if other.is_some() && format == RoleFormat::Current {
                diags.push(
                    Diagnostic::warning(
                        "legacy-key",
                        place.key("applyWhen"),
                        "`applyWhen` is ignored because the role also has `apply_when`",
                    )
                    .with_hint("remove `applyWhen`"),
                );
            }
            rule(v, mongo, apply_when_site, place.key("apply_when"), diags)
        }
        (None, Some(v)) => {
            if format == RoleFormat::Current {
                diags.push(
                    Diagnostic::warning(
                        "legacy-key",
                        place.key("applyWhen"),
                        "`applyWhen` is the pre-2023 Sync spelling; it is read as `apply_when`",
                    )
                    .with_hint("rename it to `apply_when`"),
                );
            }
            rule(v, mongo, apply_when_site, place.key("applyWhen"), diags)
        }
        (None, None) => {
            diags.push(
                Diagnostic::warning(
                    "missing-apply-when",
                    place.clone(),
                    format!("role `{name}` has no `apply_when`; it applies to every request"),
                )
                .with_hint("add `\"apply_when\": {}` to make this explicit"),
            );
            literal_always(place.key("apply_when"))
        }
    };

    let (document_filters, read, write, insert, delete, search) = match format {
        RoleFormat::Current => {
            let document_filters = map.get("document_filters").and_then(|v| {
                let p = place.key("document_filters");
                let m = as_object(v, "`document_filters`", &p, diags)?;
                unknown_keys(m, PERMISSION_KEYS, &[], "`document_filters`", &p, diags);
                Some(DocumentFilters {
                    read: m
                        .get("read")
                        .map(|v| rule(v, mongo, gate_site, p.key("read"), diags)),
                    write: m
                        .get("write")
                        .map(|v| rule(v, mongo, gate_site, p.key("write"), diags)),
                    place: p,
                })
            });
            let read = map
                .get("read")
                .map(|v| rule(v, mongo, Site::RolePermission, place.key("read"), diags));
            let write = map
                .get("write")
                .map(|v| rule(v, mongo, Site::RolePermission, place.key("write"), diags));
            let insert = map
                .get("insert")
                .map(|v| rule(v, mongo, gate_site, place.key("insert"), diags));
            let delete = map
                .get("delete")
                .map(|v| rule(v, mongo, gate_site, place.key("delete"), diags));
            let search = match map.get("search") {
                None => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(other) => {
                    diags.error(
                        "invalid-type",
                        place.key("search"),
                        format!("`search` must be true or false, not {}", json_kind(other)),
                    );
                    None
                }
            };
            (document_filters, read, write, insert, delete, search)
        }
        RoleFormat::LegacySync => {
            // Spec §1.4 + D5: sync read/write are document filters; a missing one is false.
            let gate = |key: &str, diags: &mut Diagnostics| match map.get(key) {
                Some(v) => rule(v, mongo, Site::SyncRule, place.key(key), diags),
                None => literal(false, place.clone()),
            };
            let document_filters = DocumentFilters {
                read: Some(gate("read", diags)),
                write: Some(gate("write", diags)),
                place: place.clone(),
            };
            (
                Some(document_filters),
                Some(literal(true, place.clone())),
                Some(literal(true, place.clone())),
                Some(literal(true, place.clone())),
                Some(literal(true, place.clone())),
                Some(true),
            )
        }
    };

    let fields = field_tree(
        map.get("fields"),
        map.get("additional_fields"),
        place,
        diags,
    );
    if format == RoleFormat::LegacySync && !fields.is_empty() {
        diags.push(Diagnostic::warning(
            "legacy-sync-fields",
            place.clone(),
            format!(
                "field-level permissions of pre-2023 Sync role `{name}` have no effect after the \
                 documented migration, which makes the role's `read` and `write` true"
            ),
        ));
    }

    let mut role = Role {
        name,
        apply_when,
        document_filters,
        read,
        write,
        insert,
        delete,
        search,
        fields,
        place: place.clone(),
        sync_incompatible: None,
    };
    if let Some(sync) = ctx.sync {
        check_sync_role(&mut role, sync, ctx.collection, diags);
    }
    Some(role)
}

/// The field tree of a role or field rule from its `fields` and `additional_fields`.
fn field_tree(
    fields: Option<&Value>,
    additional: Option<&Value>,
    place: &Place,
    diags: &mut Diagnostics,
) -> FieldTree {
    let mut tree = FieldTree::default();
    if let Some(v) = fields {
        let p = place.key("fields");
        if let Some(m) = as_object(v, "`fields`", &p, diags) {
            for (name, spec) in m {
                let fp = p.key(name);
                if name.is_empty() {
                    diags.error("invalid-field-name", fp, "field names cannot be empty");
                    continue;
                }
                if name.contains('.') {
                    diags.push(
                        Diagnostic::error(
                            "dotted-field-name",
                            fp,
                            format!("dotted field name `{name}` in `fields` is not supported"),
                        )
                        .with_hint("describe embedded fields with a nested `fields` document"),
                    );
                    continue;
                }
                if let Some(rule) = field_rule(spec, &fp, diags) {
                    tree.fields.push((name.clone(), rule));
                }
            }
        }
    }
    if let Some(v) = additional {
        tree.additional = permissions(
            v,
            "`additional_fields`",
            &place.key("additional_fields"),
            diags,
        );
    }
    tree
}

fn field_rule(value: &Value, place: &Place, diags: &mut Diagnostics) -> Option<FieldRule> {
    let m = as_object(value, "a field rule", place, diags)?;
    unknown_keys(m, FIELD_KEYS, &[], "a field rule", place, diags);
    let permissions = permission_pair(m, place, diags);
    let nested = field_tree(m.get("fields"), m.get("additional_fields"), place, diags);
    Some(FieldRule {
        permissions,
        nested,
        place: place.clone(),
    })
}

/// A `{read, write}` object (`additional_fields`) as field permissions.
fn permissions(
    value: &Value,
    what: &str,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<FieldPermissions> {
    let m = as_object(value, what, place, diags)?;
    unknown_keys(m, PERMISSION_KEYS, &[], what, place, diags);
    Some(permission_pair(m, place, diags))
}

fn permission_pair(
    m: &Map<String, Value>,
    place: &Place,
    diags: &mut Diagnostics,
) -> FieldPermissions {
    let get = |key: &str, diags: &mut Diagnostics| {
        m.get(key).map(|v| {
            rule(
                v,
                Dialect::MongoDb,
                Site::FieldPermission,
                place.key(key),
                diags,
            )
        })
    };
    FieldPermissions {
        read: get("read", diags),
        write: get("write", diags),
    }
}
