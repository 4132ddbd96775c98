//! Functions: their configurations, and the check that every `%function` a rule calls is
//! defined by the app.
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet).
//! Input: `functions/config.json` entries or `functions/<name>/config.json`; for the check, the
//! built rules and the app's functions.
//! Output: [`FunctionConfig`]s (with `can_evaluate`); `undefined-function` diagnostics.
//!
//! Decisions where the spec is silent:
//!
//! * `%function` names used in any rule (roles, filters, Partition-Based Sync permissions,
//!   service rules, `can_evaluate`, schema `validate` expressions) must be defined by a
//!   function of the app: an error for an app, a warning for a lone rule file
//!   ([`FunctionCheck`]). Uses inside a schema's `validate` expressions are reported at the
//!   place of the `validate` ([`Schema::visit_functions`](crate::schema::Schema::visit_functions)).
//! * `can_evaluate` reads bare field names as `%%args.<name>`
//!   ([`Dialect::Service`]).

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::shared::{as_object, name_or_hint, rule};
use crate::error::{Diagnostic, Diagnostics, Place, json_kind};
use crate::expr::{Dialect, Site};
use crate::rules::model::{DataSource, Filter, FunctionConfig, Role, Rule};

/// What an undefined `%function` name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FunctionCheck {
    /// An error (`undefined-function`): the default for an app, whose `functions/` are known.
    #[default]
    Error,
    /// A warning: the default for a lone rule file, whose app is not known.
    Warning,
    /// Not checked (conformance cases mock functions by name).
    Off,
}

/// Builds a function's configuration (`functions/<name>/config.json`, or one entry of
/// `functions/config.json`); `name_hint` (the directory name) is used when `name` is absent.
pub fn build_function_config(
    json: &Value,
    name_hint: Option<&str>,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<FunctionConfig> {
    let m = as_object(json, "a function configuration", place, diags)?;
    let name = name_or_hint(m, name_hint, "function configuration", place, diags)?;
    if let Some(h) = name_hint
        && name != h
    {
        diags.warning(
            "name-mismatch",
            place.key("name"),
            format!("function `{name}` is configured in the directory of `{h}`; `{name}` is used"),
        );
    }
    let private = match m.get("private") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            diags.error(
                "invalid-type",
                place.key("private"),
                format!("`private` must be true or false, not {}", json_kind(other)),
            );
            false
        }
    };
    let can_evaluate = build_can_evaluate(m.get("can_evaluate"), &place.key("can_evaluate"), diags);
    Some(FunctionConfig {
        name,
        private,
        can_evaluate,
    })
}

/// Parses a `can_evaluate` expression (functions, endpoints); absent or `null` is `None` (true).
pub fn build_can_evaluate(
    json: Option<&Value>,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<Rule> {
    match json? {
        Value::Null => None,
        v => Some(rule(
            v,
            Dialect::Service,
            Site::CanEvaluate,
            place.clone(),
            diags,
        )),
    }
}

/// Adds the `%function` names `rule` calls to `out`, at the rule's place.
pub(super) fn rule_functions(rule: &Rule, out: &mut Vec<(String, Place)>) {
    rule.expr
        .visit_functions(&mut |n| out.push((n.to_string(), rule.place.clone())));
}

/// Adds the `%function` names called by the rules of `ds` to `out`: schema `validate`
/// expressions, every expression of every role, filter `apply_when`s and queries.
pub(super) fn collect_data_source_functions(ds: &DataSource, out: &mut Vec<(String, Place)>) {
    let mut roles_filters: Vec<(&[Role], &[Filter])> = Vec::new();
    if let Some(d) = &ds.default_rule {
        roles_filters.push((&d.roles, &d.filters));
    }
    for c in ds.collections.values() {
        roles_filters.push((&c.roles, &c.filters));
        if let Some(schema) = &c.schema {
            schema.visit_functions(&mut |n, place| out.push((n.to_string(), place.clone())));
        }
    }
    for (roles, filters) in roles_filters {
        for role in roles {
            role.visit_rules(&mut |r| rule_functions(r, out));
        }
        for f in filters {
            rule_functions(&f.apply_when, out);
            f.query
                .visit_functions(&mut |n| out.push((n.to_string(), f.place.key("query"))));
        }
    }
}

/// Reports every `%function` of `uses` that `functions` does not define, once per name and
/// place, as `check` says (nothing when it is [`FunctionCheck::Off`]).
pub(super) fn check_function_uses(
    uses: Vec<(String, Place)>,
    functions: &BTreeMap<String, FunctionConfig>,
    check: FunctionCheck,
    diags: &mut Diagnostics,
) {
    if check == FunctionCheck::Off {
        return;
    }
    let mut reported = HashSet::new();
    for (name, place) in uses {
        if functions.contains_key(&name) || !reported.insert((name.clone(), place.clone())) {
            continue;
        }
        let message = format!("function `{name}` is not defined in this app");
        let d = match check {
            FunctionCheck::Error => Diagnostic::error("undefined-function", place, message),
            _ => Diagnostic::warning("undefined-function", place, message),
        };
        diags.push(d.with_hint("define it under `functions/`"));
    }
}
