//! Sync settings: Flexible Sync configurations, Partition-Based Sync permissions, and the
//! pre-2023 Flexible Sync `permissions`.
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet).
//! Input: `sync/config.json` or a service's `config.sync` / `config.flexible_sync` (the builder
//! picks the kind), and for the pre-2023 permissions the data source built so far.
//! Output: [`SyncConfig`], [`PartitionPermissions`], and the data source's roles replaced by the
//! mapped pre-2023 roles ([`apply_legacy_sync`]).
//!
//! Decisions where the spec is silent:
//!
//! * Partition-Based Sync permissions missing `read` or `write` default to `false` (warning).
//! * **Pre-2023 Flexible Sync permissions** (`sync/config.json` `permissions`, spec §1.4 + D5):
//!   `defaultRoles` become the data source's default roles and `rules.<collection>` that
//!   collection's roles (in `database_name`), each mapped as [`super::roles`] documents.
//!   Non-empty lists replace roles from `default_rule.json` / `rules.json` (warning
//!   `legacy-sync-permissions`).

use serde_json::{Map, Value};

use super::keys::{PERMISSION_KEYS, unknown_keys};
use super::roles::{RoleContext, RoleFormat, build_roles_in};
use super::shared::{as_object, literal, rule, string_list};
use crate::error::{Diagnostics, Place};
use crate::expr::{Dialect, Site};
use crate::rules::model::{
    CollectionRules, DataSource, DefaultRule, PartitionPermissions, SyncConfig,
};

/// Flexible Sync settings relevant to permissions (`queryable_fields_names`,
/// `collection_queryable_fields_names`, and the indexed queryable field, which is queryable
/// too) from `sync/config.json` or a service's `config.flexible_sync`.
pub fn build_sync_config(json: &Value, place: &Place, diags: &mut Diagnostics) -> SyncConfig {
    let mut sync = SyncConfig {
        place: place.clone(),
        ..SyncConfig::default()
    };
    let Some(m) = as_object(json, "a Sync configuration", place, diags) else {
        return sync;
    };
    if let Some(v) = m.get("queryable_fields_names") {
        sync.queryable_fields = string_list(
            v,
            "`queryable_fields_names`",
            &place.key("queryable_fields_names"),
            diags,
        );
    }
    for key in [
        "indexed_queryable_fields_names",
        "indexed_queryable_field_name",
    ] {
        match m.get(key) {
            Some(Value::String(s)) if !s.is_empty() => sync.queryable_fields.push(s.clone()),
            Some(v @ Value::Array(_)) => sync.queryable_fields.extend(string_list(
                v,
                &format!("`{key}`"),
                &place.key(key),
                diags,
            )),
            _ => {}
        }
    }
    if let Some(v) = m.get("collection_queryable_fields_names") {
        let p = place.key("collection_queryable_fields_names");
        if let Some(cm) = as_object(v, "`collection_queryable_fields_names`", &p, diags) {
            for (coll, list) in cm {
                let fields = string_list(list, "a queryable field list", &p.key(coll), diags);
                sync.collection_queryable_fields
                    .insert(coll.clone(), fields);
            }
        }
    }
    sync
}

/// Partition-Based Sync `permissions` (`{read, write}`, spec §3.7).
pub fn build_partition_permissions(
    json: &Value,
    place: &Place,
    diags: &mut Diagnostics,
) -> PartitionPermissions {
    let get = |m: Option<&Map<String, Value>>, key: &str, diags: &mut Diagnostics| match m
        .and_then(|m| m.get(key))
    {
        Some(v) => rule(
            v,
            Dialect::MongoDb,
            Site::PartitionPermission,
            place.key(key),
            diags,
        ),
        None => {
            if m.is_some() {
                diags.warning(
                    "missing-key",
                    place.clone(),
                    format!("Partition-Based Sync permissions have no `{key}`; it is false"),
                );
            }
            literal(false, place.clone())
        }
    };
    let m = as_object(json, "Partition-Based Sync permissions", place, diags);
    if let Some(m) = m {
        unknown_keys(
            m,
            PERMISSION_KEYS,
            &[],
            "Partition-Based Sync permissions",
            place,
            diags,
        );
    }
    let read = get(m, "read", diags);
    let write = get(m, "write", diags);
    PartitionPermissions { read, write }
}

/// The pre-2023 Flexible Sync `permissions` of a data source, kept raw until the data source's
/// rule files are built (their roles are replaced).
#[derive(Debug)]
pub(super) struct LegacySyncInput {
    pub(super) permissions: Value,
    pub(super) database: Option<String>,
    pub(super) place: Place,
}

/// Maps pre-2023 Flexible Sync `permissions` (spec §1.4, D5) onto the data source.
pub(super) fn apply_legacy_sync(
    ds: &mut DataSource,
    legacy: &LegacySyncInput,
    diags: &mut Diagnostics,
) {
    let place = &legacy.place;
    let Some(m) = as_object(&legacy.permissions, "Sync `permissions`", place, diags) else {
        return;
    };
    unknown_keys(
        m,
        &["rules", "defaultRoles"],
        &[],
        "Sync `permissions`",
        place,
        diags,
    );
    let sync = ds.sync.clone();
    let sync = sync.as_ref();

    if let Some(v) = m.get("defaultRoles") {
        let ctx = RoleContext {
            sync,
            collection: None,
        };
        let roles = build_roles_in(
            v,
            ctx,
            RoleFormat::LegacySync,
            &place.key("defaultRoles"),
            diags,
        );
        if !roles.is_empty() {
            let default = ds.default_rule.get_or_insert_with(|| DefaultRule {
                place: place.key("defaultRoles"),
                ..DefaultRule::default()
            });
            if !default.roles.is_empty() {
                diags.warning(
                    "legacy-sync-permissions",
                    place.key("defaultRoles"),
                    format!(
                        "pre-2023 Sync `defaultRoles` replace the roles of {}",
                        default.place
                    ),
                );
            }
            default.roles = roles;
        }
    }

    let Some(rules) = m.get("rules") else {
        return;
    };
    let rp = place.key("rules");
    let Some(rules) = as_object(rules, "Sync `permissions.rules`", &rp, diags) else {
        return;
    };
    for (collection, list) in rules {
        let cp = rp.key(collection);
        let ctx = RoleContext {
            sync,
            collection: Some(collection),
        };
        let roles = build_roles_in(list, ctx, RoleFormat::LegacySync, &cp, diags);
        if roles.is_empty() {
            continue;
        }
        let Some(database) = &legacy.database else {
            diags.error(
                "missing-key",
                cp,
                "pre-2023 Sync type rules need the Sync configuration's `database_name`",
            );
            continue;
        };
        let key = (database.clone(), collection.clone());
        match ds.collections.get_mut(&key) {
            Some(existing) => {
                if !existing.roles.is_empty() {
                    diags.warning(
                        "legacy-sync-permissions",
                        cp.clone(),
                        format!(
                            "pre-2023 Sync rules for `{collection}` replace the roles of {}",
                            existing.place
                        ),
                    );
                }
                existing.roles = roles;
            }
            None => {
                ds.collections.insert(
                    key,
                    CollectionRules {
                        data_source: ds.name.clone(),
                        database: database.clone(),
                        collection: collection.clone(),
                        roles,
                        filters: Vec::new(),
                        schema: None,
                        place: cp,
                    },
                );
            }
        }
    }
}
