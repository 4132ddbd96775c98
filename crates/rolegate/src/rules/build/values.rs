//! Values (`values/<name>.json`, plain or from a secret) and environments
//! (`environments/<tag>.json`).
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet).
//! Input: one value or environment file.
//! Output: a named [`ValueDef`]; an environment's `values` document. Extended JSON is converted
//! to BSON.

use bson::{Bson, Document};
use serde_json::Value;

use super::shared::{as_object, name_or_hint};
use crate::error::{Diagnostics, Place, json_kind};
use crate::rules::model::ValueDef;

/// Builds a value (`values/<name>.json`: `{name, value, from_secret}`); `name_hint` is the file
/// name. Extended JSON in `value` is converted.
pub fn build_value(
    json: &Value,
    name_hint: Option<&str>,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<(String, ValueDef)> {
    let m = as_object(json, "a value file", place, diags)?;
    let name = name_or_hint(m, name_hint, "value", place, diags)?;
    let from_secret = matches!(m.get("from_secret"), Some(Value::Bool(true)));
    let value = m.get("value").cloned().unwrap_or(Value::Null);
    if from_secret {
        return match value {
            Value::String(secret_name) => Some((name, ValueDef::Secret { secret_name })),
            other => {
                diags.error(
                    "invalid-type",
                    place.key("value"),
                    format!(
                        "the `value` of a value from a secret must name the secret, not be {}",
                        json_kind(&other)
                    ),
                );
                None
            }
        };
    }
    match Bson::try_from(value) {
        Ok(b) => Some((name, ValueDef::Plain(b))),
        Err(e) => {
            diags.error(
                "invalid-extended-json",
                place.key("value"),
                format!("invalid Extended JSON: {e}"),
            );
            None
        }
    }
}

/// Builds an environment (`environments/<tag>.json`: `{values: {...}}`) → its `values` document.
pub fn build_environment(json: &Value, place: &Place, diags: &mut Diagnostics) -> Document {
    let Some(m) = as_object(json, "an environment file", place, diags) else {
        return Document::new();
    };
    match m.get("values") {
        None | Some(Value::Null) => Document::new(),
        Some(v) => {
            let p = place.key("values");
            if as_object(v, "`values`", &p, diags).is_none() {
                return Document::new();
            }
            match Bson::try_from(v.clone()) {
                Ok(Bson::Document(d)) => d,
                Ok(_) => Document::new(),
                Err(e) => {
                    diags.error(
                        "invalid-extended-json",
                        p,
                        format!("invalid Extended JSON: {e}"),
                    );
                    Document::new()
                }
            }
        }
    }
}
