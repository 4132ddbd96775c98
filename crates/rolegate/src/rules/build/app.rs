//! The app's own settings that requests need: the root configuration (`realm_config.json`,
//! `config.json`, `root_config.json`: the app's current `environment`) and custom user data
//! (`auth/custom_user_data.json`).
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet).
//! Input: one of those files. Output: the environment tag; a [`CustomUserData`] configuration.
//! A malformed custom user data file is an error (rules read `%%user.custom_data`: guessing
//! its collection would widen or narrow access).

use serde_json::Value;

use super::shared::as_object;
use crate::error::{Diagnostics, Place, json_kind};
use crate::rules::model::CustomUserData;

/// The `environment` of a root configuration file (`None` when it names none).
pub fn build_app_environment(
    json: &Value,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<String> {
    let m = as_object(json, "the app configuration", place, diags)?;
    match m.get("environment") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            diags.error(
                "invalid-type",
                place.key("environment"),
                format!("`environment` must be a string, not {}", json_kind(other)),
            );
            None
        }
    }
}

/// Keys of `auth/custom_user_data.json`.
const KEYS: [&str; 6] = [
    "enabled",
    "mongo_service_name",
    "database_name",
    "collection_name",
    "user_id_field",
    "on_user_creation_function_name",
];

/// Builds the custom user data configuration; `None` when the file is malformed (with
/// errors) or disabled.
pub fn build_custom_user_data(
    json: &Value,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<CustomUserData> {
    let m = as_object(json, "the custom user data configuration", place, diags)?;
    for key in m.keys() {
        if !KEYS.contains(&key.as_str()) {
            diags.warning(
                "unknown-key",
                place.key(key),
                format!(
                    "unknown key `{key}` in auth/custom_user_data.json (expected one of {})",
                    KEYS.join(", ")
                ),
            );
        }
    }
    let enabled = match m.get("enabled") {
        Some(Value::Bool(b)) => *b,
        None => false,
        Some(other) => {
            diags.error(
                "invalid-type",
                place.key("enabled"),
                format!("`enabled` must be a boolean, not {}", json_kind(other)),
            );
            return None;
        }
    };
    let mut text = |key: &str, required: bool| -> Option<String> {
        match m.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            None | Some(Value::Null) if !required => None,
            Some(other) => {
                diags.error(
                    "invalid-type",
                    place.key(key),
                    format!(
                        "`{key}` must be a non-empty string, not {}",
                        json_kind(other)
                    ),
                );
                None
            }
            None => {
                diags.error(
                    "missing-key",
                    place.key(key),
                    format!("`{key}` is required when custom user data is enabled"),
                );
                None
            }
        }
    };
    if !enabled {
        return None;
    }
    let data_source = text("mongo_service_name", true);
    let database = text("database_name", true);
    let collection = text("collection_name", true);
    let user_id_field = text("user_id_field", true);
    let on_user_creation = text("on_user_creation_function_name", false);
    Some(CustomUserData {
        data_source: data_source?,
        database: database?,
        collection: collection?,
        user_id_field: user_id_field?,
        on_user_creation,
    })
}
