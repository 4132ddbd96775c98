//! Third-party service rules (spec §1.5).
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet).
//! Input: one service rule file (`{name, actions, when}`) and its file name.
//! Output: a [`ServiceRule`].
//!
//! Decisions where the spec is silent: a missing `when` is `{}` (true); a missing `actions` is
//! an empty list (exports omit empty arrays; warning), otherwise it must be a list of strings.
//! `when` reads bare field names as `%%args.<name>`
//! ([`Dialect::Service`]).

use serde_json::Value;

use super::keys::unknown_keys;
use super::shared::{as_object, literal_always, name_or_hint, rule, string_list};
use crate::error::{Diagnostics, Place};
use crate::expr::{Dialect, Site};
use crate::rules::model::ServiceRule;

const SERVICE_RULE_KEYS: &[&str] = &["name", "actions", "when", "id"];

/// Builds a third-party service rule `{name, actions, when}` (spec §1.5). `name_hint` (the file
/// name) is used when `name` is absent.
pub fn build_service_rule(
    json: &Value,
    name_hint: Option<&str>,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<ServiceRule> {
    let m = as_object(json, "a service rule", place, diags)?;
    unknown_keys(m, SERVICE_RULE_KEYS, &[], "a service rule", place, diags);
    let name = name_or_hint(m, name_hint, "service rule", place, diags).unwrap_or_default();
    let actions = match m.get("actions") {
        Some(v) => string_list(v, "`actions`", &place.key("actions"), diags),
        None => {
            // Exports omit empty arrays: a rule without `actions` allows nothing.
            diags.warning(
                "missing-key",
                place.clone(),
                format!("service rule `{name}` has no `actions`; it allows no action"),
            );
            Vec::new()
        }
    };
    let when = match m.get("when") {
        Some(v) => rule(
            v,
            Dialect::Service,
            Site::ServiceWhen,
            place.key("when"),
            diags,
        ),
        None => literal_always(place.key("when")),
    };
    Some(ServiceRule {
        name,
        actions,
        when,
    })
}
