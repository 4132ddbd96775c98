//! One data source, assembled from the raw inputs the builder collected for it.
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet), run by
//! [`RuleSetBuilder::finish`](super::RuleSetBuilder::finish) once every data source's Sync
//! settings are known.
//! Input: a [`DataSourceInput`]: its Sync settings and its raw rule files and schemas.
//! Output: a [`DataSource`]: default rule, collection rules with their schemas attached, the
//! pre-2023 Sync permissions mapped onto them ([`super::sync`]).
//!
//! Decisions where the spec is silent:
//!
//! * A Data Federation (`datalake`) source has no rules (spec §1.3); rule files found for it
//!   are ignored with warning `datalake-rules-ignored`.
//! * A `schema.json` is attached to the rule object of its namespace, or to a new rule object
//!   without roles; a second schema for one collection replaces the first (warning).
//! * Two rule files for one namespace are an error (`duplicate-rules`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::rule_files::{build_collection_rules, build_default_rule, build_schema};
use super::sync::{LegacySyncInput, apply_legacy_sync};
use crate::error::{Diagnostics, Place};
use crate::rules::model::{CollectionRules, DataSource, PartitionPermissions, SyncConfig};

/// The raw inputs of one data source, kept until
/// [`RuleSetBuilder::finish`](super::RuleSetBuilder::finish).
#[derive(Debug, Default)]
pub(super) struct DataSourceInput {
    pub(super) datalake: Option<Place>,
    pub(super) sync: Option<SyncConfig>,
    pub(super) partition: Option<PartitionPermissions>,
    pub(super) legacy_sync: Option<LegacySyncInput>,
    pub(super) default_rule: Option<(Value, Place)>,
    pub(super) collections: Vec<CollectionInput>,
}

/// One collection's raw rule file and `schema.json`, each optional.
#[derive(Debug)]
pub(super) struct CollectionInput {
    /// `(database, collection)` from the file path (or given by the caller).
    pub(super) namespace: Option<(String, String)>,
    pub(super) rules: Option<(Value, Place)>,
    pub(super) schema: Option<(Value, Place)>,
}

/// Whether a service `type` is a MongoDB data source.
pub(super) fn is_mongodb_type(t: &str) -> bool {
    matches!(t, "mongodb" | "mongodb-atlas")
}

/// Whether a service or data source `type` is a Data Federation source.
pub(super) fn is_datalake_type(t: &str) -> bool {
    matches!(
        t,
        "datalake" | "mongodb-datalake" | "mongodb-datafederation"
    )
}

/// Builds data source `name` from its inputs: default rule, rule files (with the schemas of
/// their directories), schemas without a rule file, then the pre-2023 Sync permissions.
pub(super) fn build_data_source(
    name: &str,
    input: DataSourceInput,
    diags: &mut Diagnostics,
) -> DataSource {
    let mut ds = DataSource {
        name: name.to_string(),
        default_rule: None,
        collections: BTreeMap::new(),
        sync: input.sync,
        partition_sync: input.partition,
    };
    if let Some(place) = &input.datalake {
        let mut ignored: Vec<String> = Vec::new();
        if let Some((_, p)) = &input.default_rule {
            ignored.push(p.to_string());
        }
        for c in &input.collections {
            for (_, p) in c.rules.iter().chain(c.schema.iter()) {
                ignored.push(p.to_string());
            }
        }
        if !ignored.is_empty() {
            diags.warning(
                "datalake-rules-ignored",
                place.clone(),
                format!(
                    "data source `{name}` is a Data Federation source, which has no rules; \
                     ignored: {}",
                    ignored.join(", ")
                ),
            );
        }
        return ds;
    }
    let sync = ds.sync.clone();
    let sync = sync.as_ref();

    if let Some((json, place)) = &input.default_rule {
        ds.default_rule = build_default_rule(json, place, sync, diags);
    }
    // Rule files first (with the schema.json of their own directory), then schemas without a
    // rule file: attached to the rule object of the same namespace, or a rule object without
    // roles (realm-cli).
    let (with_rules, schema_only): (Vec<_>, Vec<_>) = input
        .collections
        .into_iter()
        .partition(|c| c.rules.is_some());
    for c in with_rules {
        let ns = c.namespace.as_ref().map(|(d, c)| (d.as_str(), c.as_str()));
        let Some((json, place)) = &c.rules else {
            continue;
        };
        let Some(mut rules) = build_collection_rules(json, name, ns, place, sync, diags) else {
            continue;
        };
        if let Some((json, place)) = &c.schema {
            attach_schema(&mut rules, json, place, diags);
        }
        let key = (rules.database.clone(), rules.collection.clone());
        if let Some(old) = ds.collections.get(&key) {
            diags.error(
                "duplicate-rules",
                rules.place.clone(),
                format!(
                    "`{}.{}` of data source `{name}` already has rules ({})",
                    key.0, key.1, old.place
                ),
            );
            continue;
        }
        ds.collections.insert(key, rules);
    }
    for c in schema_only {
        let (Some((database, collection)), Some((json, place))) = (c.namespace, &c.schema) else {
            continue;
        };
        let key = (database.clone(), collection.clone());
        let rules = ds
            .collections
            .entry(key)
            .or_insert_with(|| CollectionRules {
                data_source: name.to_string(),
                database,
                collection,
                roles: Vec::new(),
                filters: Vec::new(),
                schema: None,
                place: place.clone(),
            });
        attach_schema(rules, json, place, diags);
    }

    if let Some(legacy) = &input.legacy_sync {
        apply_legacy_sync(&mut ds, legacy, diags);
    }
    ds
}

/// Builds `json` as the schema of `rules` (replacing one the rule file had, with a warning).
fn attach_schema(
    rules: &mut CollectionRules,
    json: &Value,
    place: &Place,
    diags: &mut Diagnostics,
) {
    if rules.schema.is_some() {
        diags.warning(
            "duplicate-schema",
            place.clone(),
            format!(
                "the rules of `{}.{}` also have a `schema`; this schema is used",
                rules.database, rules.collection
            ),
        );
    }
    rules.schema = Some(build_schema(json, place, diags));
}
