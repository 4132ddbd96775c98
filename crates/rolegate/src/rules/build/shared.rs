//! Helpers every builder of this folder uses: typed reads of JSON values, the required `name`
//! of roles and filters, and the [`Rule`] of an expression slot.
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet).
//! Input: one JSON value and the [`Place`] it came from.
//! Output: the typed value (an object, a list, a string, a name, a parsed [`Rule`]), or a
//! fallback with an error (`invalid-type`, `missing-key`, `invalid-name`, `name-too-long`) in
//! [`Diagnostics`]. A `null` list reads as empty (so `"roles": null` and `"filters": null` are
//! empty lists).

use serde_json::{Map, Value};

use crate::error::{Diagnostics, Place, json_kind};
use crate::expr::{Dialect, Expr, Site, parse_expr};
use crate::rules::model::Rule;

/// Longest role or filter name App Services accepts.
pub const MAX_NAME_CHARS: usize = 100;

/// `value` as an object; an `invalid-type` error naming `what` otherwise.
pub(super) fn as_object<'a>(
    value: &'a Value,
    what: &str,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<&'a Map<String, Value>> {
    match value {
        Value::Object(m) => Some(m),
        other => {
            diags.error(
                "invalid-type",
                place.clone(),
                format!("{what} must be a JSON object, not {}", json_kind(other)),
            );
            None
        }
    }
}

/// `value` as a list (`null` is the empty list); an `invalid-type` error naming `what`
/// otherwise.
pub(super) fn as_array<'a>(
    value: &'a Value,
    what: &str,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<&'a [Value]> {
    match value {
        Value::Array(v) => Some(v.as_slice()),
        Value::Null => Some(&[]),
        other => {
            diags.error(
                "invalid-type",
                place.clone(),
                format!("{what} must be a JSON array, not {}", json_kind(other)),
            );
            None
        }
    }
}

/// The string at `key` of `map`: `None` when absent, or (with an `invalid-type` error) when it
/// is not a string.
pub(super) fn optional_string(
    map: &Map<String, Value>,
    key: &str,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<String> {
    match map.get(key)? {
        Value::String(s) => Some(s.clone()),
        other => {
            diags.error(
                "invalid-type",
                place.key(key),
                format!("`{key}` must be a string, not {}", json_kind(other)),
            );
            None
        }
    }
}

/// The `name` of `map`, or else `name_hint` (the file or directory name); `None` with a
/// `missing-key` error (`{what} has no `name``) when there is neither.
pub(super) fn name_or_hint(
    map: &Map<String, Value>,
    name_hint: Option<&str>,
    what: &str,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<String> {
    match (optional_string(map, "name", place, diags), name_hint) {
        (Some(n), _) => Some(n),
        (None, Some(h)) => Some(h.to_string()),
        (None, None) => {
            diags.error(
                "missing-key",
                place.clone(),
                format!("{what} has no `name`"),
            );
            None
        }
    }
}

/// The required `name` of a role or filter (`what`), ≤ 100 characters.
pub(super) fn required_name(
    map: &Map<String, Value>,
    what: &str,
    place: &Place,
    diags: &mut Diagnostics,
) -> String {
    match map.get("name") {
        None => {
            diags.error(
                "missing-key",
                place.clone(),
                format!("{what} has no `name`"),
            );
            String::new()
        }
        Some(Value::String(s)) => {
            if s.is_empty() {
                diags.error(
                    "invalid-name",
                    place.key("name"),
                    format!("{what} name cannot be empty"),
                );
            } else if s.chars().count() > MAX_NAME_CHARS {
                diags.error(
                    "name-too-long",
                    place.key("name"),
                    format!("{what} name limited to {MAX_NAME_CHARS} characters"),
                );
            }
            s.clone()
        }
        Some(other) => {
            diags.error(
                "invalid-type",
                place.key("name"),
                format!("{what} `name` must be a string, not {}", json_kind(other)),
            );
            String::new()
        }
    }
}

/// Parses the expression slot `value` into a [`Rule`] at `place`.
pub(super) fn rule(
    value: &Value,
    dialect: Dialect,
    site: Site,
    place: Place,
    diags: &mut Diagnostics,
) -> Rule {
    let expr = parse_expr(value, dialect, site, &place, diags);
    Rule { expr, place }
}

/// A rule that is always `value` (slots the spec gives a default).
pub(super) fn literal(value: bool, place: Place) -> Rule {
    Rule {
        expr: Expr::Bool(value),
        place,
    }
}

/// The rule `{}` (true), for a missing `apply_when` or `when`.
pub(super) fn literal_always(place: Place) -> Rule {
    Rule {
        expr: Expr::always(),
        place,
    }
}

/// `value` as a list of strings; every other element is an `invalid-type` error and left out.
pub(super) fn string_list(
    value: &Value,
    what: &str,
    place: &Place,
    diags: &mut Diagnostics,
) -> Vec<String> {
    let Some(items) = as_array(value, what, place, diags) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => out.push(s.clone()),
            other => diags.error(
                "invalid-type",
                place.index(i),
                format!("{what} must hold strings, not {}", json_kind(other)),
            ),
        }
    }
    out
}
