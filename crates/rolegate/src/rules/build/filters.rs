//! Filters (spec §1.7, §4) and their projections.
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet).
//! Input: a filter list or one filter as JSON.
//! Output: [`Filter`]s (an `apply_when` [`Rule`](crate::rules::Rule), a query operand, a
//! literal projection document).
//!
//! Decisions where the spec is silent:
//!
//! * A missing `apply_when` behaves as `{}` (spec U12) with warning `missing-apply-when`.
//! * Filter names are required, non-empty, ≤ 100 characters; duplicate names are allowed.
//! * `query` must be a document; its keys must not be expansions (Stitch docs).
//! * A `projection` value must be `0`/`1`/`true`/`false` (no `$slice` etc.); `_id` may take
//!   either kind without making the projection mixed (as in MongoDB).
//! * `project` is read as `projection` when that key is absent (warning `unknown-key`, hint
//!   `projection`): ignoring it would widen access.

use bson::{Bson, Document};
use serde_json::{Map, Value};

use super::keys::unknown_keys;
use super::shared::{as_array, as_object, literal_always, required_name, rule};
use crate::error::{Diagnostic, Diagnostics, Place, json_kind};
use crate::expr::{Dialect, Operand, Site, parse_operand};
use crate::rules::model::Filter;

const FILTER_KEYS: &[&str] = &["name", "apply_when", "query", "projection"];

/// Builds one filter; `None` when `json` is not an object.
pub fn build_filter(json: &Value, place: &Place, diags: &mut Diagnostics) -> Option<Filter> {
    let m = as_object(json, "a filter", place, diags)?;
    let name = required_name(m, "filter", place, diags);
    unknown_keys(m, FILTER_KEYS, &["project"], "a filter", place, diags);

    let apply_when = match m.get("apply_when") {
        Some(v) => rule(
            v,
            Dialect::MongoDb,
            Site::FilterApplyWhen,
            place.key("apply_when"),
            diags,
        ),
        None => {
            diags.push(Diagnostic::warning(
                "missing-apply-when",
                place.clone(),
                format!("filter `{name}` has no `apply_when`; it applies to every request"),
            ));
            literal_always(place.key("apply_when"))
        }
    };

    let query = match m.get("query") {
        None => Operand::Literal(Bson::Document(Document::new())),
        Some(v @ Value::Object(q)) => {
            let p = place.key("query");
            check_query_keys(q, &p, diags);
            parse_operand(v, Dialect::MongoDb, Site::FilterQuery, &p, diags)
        }
        Some(other) => {
            diags.error(
                "invalid-type",
                place.key("query"),
                format!(
                    "filter `query` must be a document, not {}",
                    json_kind(other)
                ),
            );
            Operand::Literal(Bson::Document(Document::new()))
        }
    };

    let project_warning = |message: &str| {
        Diagnostic::warning("unknown-key", place.key("project"), message)
            .with_hint("did you mean `projection`?")
    };
    let projection = match (m.get("projection"), m.get("project")) {
        (Some(v), project) => {
            if project.is_some() {
                diags.push(project_warning(
                    "unknown key `project` in a filter is ignored",
                ));
            }
            build_projection(v, &place.key("projection"), diags)
        }
        (None, Some(v)) => {
            diags.push(project_warning(
                "unknown key `project` in a filter is read as `projection`",
            ));
            build_projection(v, &place.key("project"), diags)
        }
        (None, None) => Document::new(),
    };

    Some(Filter {
        name,
        apply_when,
        query,
        projection,
        place: place.clone(),
    })
}

/// Builds a filter list (`filters` of a rule file).
pub fn build_filters(json: &Value, place: &Place, diags: &mut Diagnostics) -> Vec<Filter> {
    let Some(items) = as_array(json, "`filters`", place, diags) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, f)| build_filter(f, &place.index(i), diags))
        .collect()
}

/// Filter query keys cannot be expansions (Stitch docs: "You cannot prefix the field name with
/// an expansion").
fn check_query_keys(map: &Map<String, Value>, place: &Place, diags: &mut Diagnostics) {
    for (key, value) in map {
        let p = place.key(key);
        if key.starts_with("%%") {
            diags.error(
                "expansion-key",
                p.clone(),
                format!("filter query keys cannot be expansions (`{key}`)"),
            );
        }
        check_query_value(value, &p, diags);
    }
}

fn check_query_value(value: &Value, place: &Place, diags: &mut Diagnostics) {
    match value {
        Value::Object(m) => check_query_keys(m, place, diags),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_query_value(v, &place.index(i), diags);
            }
        }
        _ => {}
    }
}

/// A literal projection document: values `0`/`1`/`true`/`false`, one kind (except `_id`).
pub fn build_projection(json: &Value, place: &Place, diags: &mut Diagnostics) -> Document {
    let mut doc = Document::new();
    let Some(m) = as_object(json, "a projection", place, diags) else {
        return doc;
    };
    let mut inclusive: Option<&str> = None;
    let mut exclusive: Option<&str> = None;
    for (key, value) in m {
        let p = place.key(key);
        if key.is_empty() {
            diags.error("invalid-projection", p, "projection keys cannot be empty");
            continue;
        }
        let include = match value {
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            other => {
                diags.error(
                    "invalid-projection",
                    p,
                    format!(
                        "projection value of `{key}` must be 0, 1, true or false, not {}",
                        json_kind(other)
                    ),
                );
                continue;
            }
        };
        if key != "_id" {
            let slot = if include {
                &mut inclusive
            } else {
                &mut exclusive
            };
            slot.get_or_insert(key.as_str());
        }
        let bson = Bson::try_from(value.clone()).unwrap_or(Bson::Boolean(include));
        doc.insert(key.clone(), bson);
    }
    if let (Some(i), Some(e)) = (inclusive, exclusive) {
        diags.push(
            Diagnostic::error(
                "projection-conflict",
                place.clone(),
                format!(
                    "projection mixes inclusion (`{i}`) and exclusion (`{e}`); a projection must \
                     be of one kind"
                ),
            )
            .with_hint("only `_id` may be excluded from an inclusive projection"),
        );
    }
    doc
}
