//! Stage: case rules → rule set. Input: a case's [`CaseRules`]. Output: the validated
//! [`RuleSet`] the case runs against, or the [`LoadError`] with every diagnostic.
//!
//! This is the only place where the case runner meets [`crate::rules::build`] and
//! [`crate::config`]:
//!
//! * `files` is an in-memory app directory, loaded by [`crate::config::load_files`]; it cannot be
//!   combined with the other rule keys (except `collection`, which only names the namespace).
//! * Otherwise everything goes into data source [`DATA_SOURCE`] of a
//!   [`RuleSetBuilder`]: `collection_rules` (its `database`/`collection` name the namespace;
//!   `schema` joins it), `default_rule`, Sync (`mode: sync`: `queryable_fields`,
//!   `collection_queryable_fields`), `partition_permissions`; `service_rules` become the rules
//!   of service [`SERVICE`]; `can_evaluate` the configuration of function [`FUNCTION`].
//! * Conformance cases mock `%function`s by name, so undefined functions are not checked.
//!
//! Places in diagnostics name the case key: `collection_rules: roles[0].apply_when`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::model::{CaseRules, Mode};
use crate::config::{LoadOptions, load_files};
use crate::error::{Diagnostic, Diagnostics, LoadError, Place};
use crate::rules::build::{BuildOptions, FunctionCheck, RuleSetBuilder};
use crate::rules::{RuleSet, SyncConfig};

/// The data source that a case's rules belong to.
pub const DATA_SOURCE: &str = "mongodb-atlas";
/// The third-party service that a case's `service_rules` belong to.
pub const SERVICE: &str = "service";
/// The function whose `can_evaluate` a case gives.
pub const FUNCTION: &str = "function";
/// The namespace of a `schema` when `collection_rules` names none.
pub const DEFAULT_NAMESPACE: (&str, &str) = ("app", "items");

/// Builds the rule set that a case's `rules` describe.
pub fn rule_set(rules: &CaseRules) -> Result<RuleSet, LoadError> {
    let options = BuildOptions {
        function_check: FunctionCheck::Off,
    };
    if let Some(files) = &rules.files {
        let others = [
            ("collection_rules", rules.collection_rules.is_some()),
            ("default_rule", rules.default_rule.is_some()),
            ("schema", rules.schema.is_some()),
            (
                "partition_permissions",
                rules.partition_permissions.is_some(),
            ),
            ("service_rules", rules.service_rules.is_some()),
            ("can_evaluate", rules.can_evaluate.is_some()),
        ];
        if let Some((key, _)) = others.iter().find(|(_, given)| *given) {
            return Err(single_error(
                "case-rules",
                Place::file("rules"),
                format!(
                    "`rules.files` cannot be combined with `rules.{key}`; put that file into `files`"
                ),
            ));
        }
        let files: BTreeMap<String, Value> =
            files.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        return load_files(
            &files,
            &LoadOptions {
                function_check: Some(options.function_check),
                ..LoadOptions::default()
            },
        );
    }

    let mut b = RuleSetBuilder::new("<case>", options);
    b.add_data_source(DATA_SOURCE);
    if rules.mode == Mode::Sync {
        b.set_sync(
            DATA_SOURCE,
            SyncConfig {
                queryable_fields: rules.queryable_fields.clone().unwrap_or_default(),
                collection_queryable_fields: rules
                    .collection_queryable_fields
                    .clone()
                    .unwrap_or_default(),
                place: Place::file("queryable_fields"),
            },
        );
    }
    let namespace = collection_namespace(rules);
    let ns = namespace.as_ref().map(|(d, c)| (d.as_str(), c.as_str()));
    if let Some(json) = non_null(&rules.collection_rules) {
        b.add_collection_rules(DATA_SOURCE, ns, json, Place::file("collection_rules"));
    }
    if let Some(json) = non_null(&rules.schema) {
        let (db, coll) = ns.unwrap_or(DEFAULT_NAMESPACE);
        b.add_collection_schema(DATA_SOURCE, db, coll, json, Place::file("schema"));
    }
    if let Some(json) = non_null(&rules.default_rule) {
        b.add_default_rule(DATA_SOURCE, json, Place::file("default_rule"));
    }
    if let Some(json) = non_null(&rules.partition_permissions) {
        b.set_partition_permissions(DATA_SOURCE, json, Place::file("partition_permissions"));
    }
    match non_null(&rules.service_rules) {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                b.add_service_rule(SERVICE, item, None, Place::file("service_rules").index(i));
            }
        }
        Some(_) => b.push(Diagnostic::error(
            "invalid-case-rules",
            Place::file("service_rules"),
            "`service_rules` must be an array of `{name, actions, when}`",
        )),
        None => {}
    }
    if let Some(json) = &rules.can_evaluate {
        b.add_function_config(
            &json!({"name": FUNCTION, "can_evaluate": json}),
            None,
            Place::file("function"),
        );
    }
    b.finish()
}

/// The rule files [`rule_set`] makes of `rules`, each with the name its places carry
/// ([`Place::file`]) and its JSON: the files of `files` under their paths, else each piece under
/// its key (`collection_rules`, `default_rule`, `schema`, `partition_permissions`,
/// `service_rules`, and `function` for `can_evaluate`, as the function configuration built from
/// it). The coverage of `rolegate test --coverage` identifies a rule file by this name and
/// content.
pub(crate) fn rule_files(rules: &CaseRules) -> Vec<(String, Value)> {
    if let Some(files) = &rules.files {
        return files.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    let pieces = [
        ("collection_rules", &rules.collection_rules),
        ("default_rule", &rules.default_rule),
        ("schema", &rules.schema),
        ("partition_permissions", &rules.partition_permissions),
        ("service_rules", &rules.service_rules),
    ];
    let mut out: Vec<(String, Value)> = pieces
        .into_iter()
        .filter_map(|(name, value)| non_null(value).map(|v| (name.to_string(), v.clone())))
        .collect();
    if let Some(json) = &rules.can_evaluate {
        out.push((
            "function".to_string(),
            json!({"name": FUNCTION, "can_evaluate": json}),
        ));
    }
    out
}

/// `(database, collection)` of `collection_rules`, when it names both.
pub fn collection_namespace(rules: &CaseRules) -> Option<(String, String)> {
    let field = |key: &str| {
        rules
            .collection_rules
            .as_ref()
            .and_then(|r| r.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Some((field("database")?, field("collection")?))
}

fn non_null(value: &Option<Value>) -> Option<&Value> {
    value.as_ref().filter(|v| !v.is_null())
}

fn single_error(code: &'static str, place: Place, message: String) -> LoadError {
    LoadError {
        diagnostics: Diagnostics(vec![Diagnostic::error(code, place, message)]),
    }
}
