//! Rule files: a collection's rule object (`rules.json`, or a legacy `<db>.<coll>.json`), a data
//! source's `default_rule.json`, and a collection's schema.
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet).
//! Input: the JSON of one rule file, the names in its path, and the data source's Flexible Sync
//! settings (they decide how the roles are built).
//! Output: [`CollectionRules`], [`DefaultRule`], [`Schema`], with their roles
//! ([`super::roles`]) and filters ([`super::filters`]).
//!
//! Decisions where the spec is silent:
//!
//! * A rule file's `database`/`collection` keys win over the names in its path; a mismatch is a
//!   warning (`namespace-mismatch`). When the keys are absent the path names are used.
//! * An empty rule file and a 2017 Stitch rules file (`namespace`, `valid`, `other_fields`, ...)
//!   are errors (`empty-rules`, `legacy-format`).

use serde_json::{Map, Value};

use super::filters::build_filters;
use super::keys::unknown_keys;
use super::roles::{RoleContext, build_roles};
use super::shared::{as_object, optional_string};
use crate::error::{Diagnostic, Diagnostics, Place};
use crate::rules::model::{CollectionRules, DefaultRule, SyncConfig};
use crate::schema::Schema;

const RULES_FILE_KEYS: &[&str] = &[
    "database",
    "collection",
    "roles",
    "filters",
    "schema",
    "relationships",
    "id",
];
const DEFAULT_RULE_KEYS: &[&str] = &["roles", "filters", "id"];

/// The 2017 Stitch rule-file markers present in `map`, if it is such a file.
fn stitch_2017_markers(map: &Map<String, Value>) -> Option<String> {
    let mut markers: Vec<&str> = ["namespace", "valid", "other_fields"]
        .into_iter()
        .filter(|k| map.contains_key(*k))
        .collect();
    if !map.contains_key("roles") {
        markers.extend(
            ["read", "write"]
                .into_iter()
                .filter(|k| map.contains_key(*k)),
        );
    }
    let old_filters = map
        .get("filters")
        .and_then(Value::as_array)
        .is_some_and(|fs| {
            fs.iter().any(|f| {
                f.get("match_expression").is_some()
                    || (f.get("when").is_some() && f.get("apply_when").is_none())
            })
        });
    if old_filters {
        markers.push("filters with `match_expression`/`when`");
    }
    if markers.is_empty() {
        return None;
    }
    let shown: Vec<String> = markers
        .iter()
        .map(|m| {
            if m.contains(' ') {
                (*m).to_string()
            } else {
                format!("`{m}`")
            }
        })
        .collect();
    Some(format!(
        "this is a 2017 Stitch rules file ({}), which rolegate does not run; convert it to roles",
        shown.join("/")
    ))
}

/// Builds a collection's rule object (`rules.json`, or a legacy `<db>.<coll>.json`).
///
/// `namespace` is `(database, collection)` from the file's path; the file's own `database` /
/// `collection` keys win. `None` when the file is not a usable rule object (not an object,
/// empty, or a 2017 Stitch rules file — each an error).
pub fn build_collection_rules(
    json: &Value,
    data_source: &str,
    namespace: Option<(&str, &str)>,
    place: &Place,
    sync: Option<&SyncConfig>,
    diags: &mut Diagnostics,
) -> Option<CollectionRules> {
    let m = as_object(json, "a rules file", place, diags)?;
    if m.is_empty() {
        diags.error("empty-rules", place.clone(), "rules file cannot be empty");
        return None;
    }
    if let Some(message) = stitch_2017_markers(m) {
        diags.error("legacy-format", place.clone(), message);
        return None;
    }
    unknown_keys(m, RULES_FILE_KEYS, &[], "a rules file", place, diags);
    let database = optional_string(m, "database", place, diags);
    let collection = optional_string(m, "collection", place, diags);
    let (database, collection) = match (database, collection, namespace) {
        (Some(d), Some(c), Some((pd, pc))) => {
            if d != pd || c != pc {
                diags.push(Diagnostic::warning(
                    "namespace-mismatch",
                    place.clone(),
                    format!(
                        "the rules are for `{d}.{c}` but the file's path names `{pd}.{pc}`; \
                         the file's `database` and `collection` are used"
                    ),
                ));
            }
            (d, c)
        }
        (Some(d), Some(c), None) => (d, c),
        (d, c, Some((pd, pc))) => (
            d.unwrap_or_else(|| pd.to_string()),
            c.unwrap_or_else(|| pc.to_string()),
        ),
        (d, c, None) => {
            diags.error(
                "missing-key",
                place.clone(),
                "a rules file needs `database` and `collection`",
            );
            (d.unwrap_or_default(), c.unwrap_or_default())
        }
    };
    let ctx = RoleContext {
        sync,
        collection: Some(&collection),
    };
    let roles = m
        .get("roles")
        .map(|v| build_roles(v, ctx, &place.key("roles"), diags))
        .unwrap_or_default();
    let filters = m
        .get("filters")
        .map(|v| build_filters(v, &place.key("filters"), diags))
        .unwrap_or_default();
    let schema = m
        .get("schema")
        .map(|v| build_schema(v, &place.key("schema"), diags));
    Some(CollectionRules {
        data_source: data_source.to_string(),
        database,
        collection,
        roles,
        filters,
        schema,
        place: place.clone(),
    })
}

/// Builds a data source's `default_rule.json` (`{roles, filters}`).
pub fn build_default_rule(
    json: &Value,
    place: &Place,
    sync: Option<&SyncConfig>,
    diags: &mut Diagnostics,
) -> Option<DefaultRule> {
    let m = as_object(json, "a default rule file", place, diags)?;
    if let Some(message) = stitch_2017_markers(m) {
        diags.error("legacy-format", place.clone(), message);
        return None;
    }
    unknown_keys(
        m,
        DEFAULT_RULE_KEYS,
        &[],
        "a default rule file",
        place,
        diags,
    );
    let ctx = RoleContext {
        sync,
        collection: None,
    };
    Some(DefaultRule {
        roles: m
            .get("roles")
            .map(|v| build_roles(v, ctx, &place.key("roles"), diags))
            .unwrap_or_default(),
        filters: m
            .get("filters")
            .map(|v| build_filters(v, &place.key("filters"), diags))
            .unwrap_or_default(),
        place: place.clone(),
    })
}

/// Builds a collection schema (`schema.json` or a rule file's `schema` key).
pub fn build_schema(json: &Value, place: &Place, diags: &mut Diagnostics) -> Schema {
    Schema::parse(json, place, diags)
}
