//! Stage: the "make it tidy" pass of `rolegate check`. Input: a validated [`RuleSet`] (loading
//! already refused what the spec makes invalid, such as duplicate role names or names over 100
//! characters). Output: warnings ([`Diagnostics`]) for rules that are valid but almost certainly
//! not what their author meant. `rolegate check` prints them after the warnings of loading
//! ([`check_warnings`]); with `--deny-warnings` they fail the check.
//!
//! Every warning has a stable code, a message, the place (file and JSON path) and a one-line
//! hint:
//!
//! | code | found by | what |
//! |------|----------|------|
//! | `unreachable-role` | [`lint`] | a role that can never apply: a role before it always applies (`apply_when` `{}`, missing, `true`, `{"%%true": true}`, ...) or has the same `apply_when`, or its own `apply_when` is always false |
//! | `role-grants-nothing` | [`lint`] | no field of a document can be read or written under the role (`read`/`write` absent or false, no field-level rule that can grant, or document filters that are always false) |
//! | `write-false-overrides-fields` | [`lint`] | `write: false` beside field-level `write` rules, which it overrides (spec U11: the fields are not writable) |
//! | `read-false-overrides-fields` | [`lint`] | `read: false` beside field-level `read` rules, which it overrides (the fields are not readable) |
//! | `field-rules-overridden` | [`lint`] | `read: true` / `write: true` beside field-level rules that try to restrict it (a field-level `read: false` does not hide a field when the role reads everything) |
//! | `filter-projection-conflict` | [`lint`] | two filters of one collection with inclusive and exclusive projections: a request both apply to fails |
//! | `field-not-in-schema` | [`lint`] | a field rule names a field the collection's schema does not declare (with a did-you-mean hint); a schema that declares nothing but `_id` is not compared |
//! | `unknown-key` | loading | a key rolegate does not know (with a did-you-mean hint or the known keys) |
//! | `duplicate-key` | loading | a key given twice in one object of a rule file, with the lines of both (the last one is used) |
//! | `undefined-function` | loading | a `%function` no function of the app defines (a warning for a lone file, an error for an app) |
//! | `sync-incompatible-role` | loading | a role that is not Sync-compatible while Sync is configured |
//!
//! Loading has more warnings of its own (`missing-apply-when`, `legacy-key`,
//! `namespace-mismatch`, ...), which [`RuleSet::warnings`](crate::RuleSet::warnings) holds.
//!
//! "Always true" and "always false" are decided exactly, not guessed: an expression that reads
//! nothing but `%%true`/`%%false` and literals (no document field, no user, no `%function`) is
//! evaluated once with the reference evaluator.

use std::collections::HashMap;

use crate::context::RequestContext;
use crate::error::{Diagnostic, Diagnostics, did_you_mean};
use crate::expr::{Expr, Root};
use crate::rules::{FieldPermissions, FieldTree, Filter, Role, Rule, RuleSet};
use crate::schema::Schema;
use crate::value::{Bindings, eval_expr};

/// A role that can never apply.
pub const UNREACHABLE_ROLE: &str = "unreachable-role";
/// A role under which nothing can be read or written.
pub const ROLE_GRANTS_NOTHING: &str = "role-grants-nothing";
/// `write: false` beside field-level `write` rules, which it overrides (U11).
pub const WRITE_FALSE_OVERRIDES_FIELDS: &str = "write-false-overrides-fields";
/// `read: false` beside field-level `read` rules.
pub const READ_FALSE_OVERRIDES_FIELDS: &str = "read-false-overrides-fields";
/// `read: true` / `write: true` beside field-level rules that try to restrict them.
pub const FIELD_RULES_OVERRIDDEN: &str = "field-rules-overridden";
/// Filters of one collection with projections of both kinds.
pub const FILTER_PROJECTION_CONFLICT: &str = "filter-projection-conflict";
/// A field rule for a field the collection's schema does not declare.
pub const FIELD_NOT_IN_SCHEMA: &str = "field-not-in-schema";

/// Every code [`lint`] emits.
pub const LINT_CODES: &[&str] = &[
    UNREACHABLE_ROLE,
    ROLE_GRANTS_NOTHING,
    WRITE_FALSE_OVERRIDES_FIELDS,
    READ_FALSE_OVERRIDES_FIELDS,
    FIELD_RULES_OVERRIDDEN,
    FILTER_PROJECTION_CONFLICT,
    FIELD_NOT_IN_SCHEMA,
];

/// What `rolegate check` reports for a rule set that loaded: the warnings of loading, then those
/// of [`lint`].
pub fn check_warnings(set: &RuleSet) -> Diagnostics {
    let mut all = set.warnings.clone();
    all.extend(lint(set));
    all
}

/// The lint warnings of a validated rule set (the table of the [module
/// documentation](crate::lint)), in rule-set order: data sources by name, the default rule, then
/// collections by namespace.
pub fn lint(set: &RuleSet) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for ds in set.data_sources.values() {
        if let Some(d) = &ds.default_rule {
            roles(&d.roles, None, &mut diags);
            filters(&d.filters, &mut diags);
        }
        for c in ds.collections.values() {
            roles(&c.roles, c.schema.as_ref(), &mut diags);
            filters(&c.filters, &mut diags);
        }
    }
    diags
}

// ---------------------------------------------------------------------------------------------
// Constant expressions

/// The value of `expr` when it is the same for every request and document: it reads only
/// `%%true`/`%%false` and literals and calls no function. `None` when it depends on anything
/// (or fails to evaluate).
pub fn constant(expr: &Expr) -> Option<bool> {
    if let Expr::Bool(b) = expr {
        return Some(*b);
    }
    let mut depends = false;
    expr.visit_expansions(&mut |e| depends |= !matches!(e.root, Root::True | Root::False));
    expr.visit_functions(&mut |_| depends = true);
    if depends {
        return None;
    }
    let context = RequestContext::default();
    eval_expr(expr, &Bindings::request_only(&context)).ok()
}

/// Whether an optional permission can ever be true (absent: no).
fn may_grant(rule: Option<&Rule>) -> bool {
    rule.is_some_and(|r| constant(&r.expr) != Some(false))
}

fn is_constant(rule: Option<&Rule>, value: bool) -> bool {
    rule.is_some_and(|r| constant(&r.expr) == Some(value))
}

// ---------------------------------------------------------------------------------------------
// Roles

fn roles(roles: &[Role], schema: Option<&Schema>, diags: &mut Diagnostics) {
    let mut always: Option<&Role> = None;
    // Earlier roles by the canonical rendering of their `apply_when` (exact `==` decides).
    let mut seen: HashMap<String, Vec<&Role>> = HashMap::new();
    for (i, role) in roles.iter().enumerate() {
        let last = i + 1 == roles.len();
        if let Some(first) = always {
            diags.push(
                Diagnostic::warning(
                    UNREACHABLE_ROLE,
                    role.place.clone(),
                    format!(
                        "role `{}` can never apply: role `{}` before it always applies",
                        role.name, first.name
                    ),
                )
                .with_hint(format!(
                    "roles are tried in order; move it before `{}`, or remove it",
                    first.name
                )),
            );
            continue;
        }
        let rendered = role.apply_when.expr.to_string();
        let same = seen
            .get(&rendered)
            .and_then(|earlier| {
                earlier
                    .iter()
                    .find(|r| r.apply_when.expr == role.apply_when.expr)
            })
            .copied();
        seen.entry(rendered).or_default().push(role);
        if let Some(same) = same {
            diags.push(
                Diagnostic::warning(
                    UNREACHABLE_ROLE,
                    role.place.clone(),
                    format!(
                        "role `{}` can never apply: role `{}` before it has the same `apply_when`",
                        role.name, same.name
                    ),
                )
                .with_hint(
                    "the first role whose `apply_when` holds is the only one used; merge the two \
                     roles",
                ),
            );
            continue;
        }
        match constant(&role.apply_when.expr) {
            Some(true) => always = Some(role),
            Some(false) => {
                diags.push(
                    Diagnostic::warning(
                        UNREACHABLE_ROLE,
                        role.apply_when.place.clone(),
                        format!(
                            "role `{}` can never apply: its `apply_when` is always false",
                            role.name
                        ),
                    )
                    .with_hint("fix its `apply_when`, or remove the role"),
                );
                continue;
            }
            None => {}
        }
        grants_nothing(role, last, diags);
        overrides(role, diags);
        if let Some(schema) = schema {
            let mut path = Vec::new();
            fields_in_schema(&role.fields, schema, &mut path, diags);
        }
    }
}

/// Whether some field-level rule of `tree` (any level) can grant `read` (or, with `writes`,
/// `write`, which implies read).
fn tree_may(tree: &FieldTree, reads: bool, writes: bool) -> bool {
    let grants = |p: &FieldPermissions| {
        (reads && may_grant(p.read.as_ref())) || (writes && may_grant(p.write.as_ref()))
    };
    tree.fields
        .iter()
        .any(|(_, r)| grants(&r.permissions) || tree_may(&r.nested, reads, writes))
        || tree.additional.as_ref().is_some_and(grants)
}

/// `role-grants-nothing`: no field can be read and none written (spec §3.2, §3.3).
fn grants_nothing(role: &Role, last: bool, diags: &mut Diagnostics) {
    let df = role.document_filters.as_ref();
    // The read gate opens when `read` is undefined, or either filter can hold (D1).
    let read_gate = df.is_none_or(|df| {
        df.read.is_none() || may_grant(df.read.as_ref()) || may_grant(df.write.as_ref())
    });
    let write_gate = df.is_none_or(|df| df.write.is_none() || may_grant(df.write.as_ref()));
    let read = role.read.as_ref();
    let write = role.write.as_ref();
    // Field-level rules decide reads only when `read` is undefined; their `write` implies read
    // only when the role's `write` is undefined too.
    let reads = read_gate
        && (may_grant(read)
            || may_grant(write)
            || (read.is_none() && tree_may(&role.fields, true, write.is_none())));
    let writes = write_gate
        && (may_grant(write) || (write.is_none() && tree_may(&role.fields, false, true)));
    if reads || writes {
        return;
    }
    let hint = if last {
        "grant `read`/`write` or field-level permissions, or remove the role (no role applying \
         already denies)"
    } else {
        "documents it applies to are denied and later roles are not tried; if that is the \
         intent, name the role so"
    };
    diags.push(
        Diagnostic::warning(
            ROLE_GRANTS_NOTHING,
            role.place.clone(),
            format!(
                "role `{}` grants nothing: no field can be read or written under it",
                role.name
            ),
        )
        .with_hint(hint),
    );
}

/// The field-level rules of `tree` whose `read` (or `write`) is defined and not the constant
/// `value`, as `fields.a.fields.b` paths.
fn defined_field_rules(
    tree: &FieldTree,
    write: bool,
    unless: Option<bool>,
    prefix: &str,
    out: &mut Vec<String>,
) {
    let pick = |p: &FieldPermissions| {
        let rule = if write { &p.write } else { &p.read };
        rule.as_ref()
            .is_some_and(|r| unless.is_none_or(|v| constant(&r.expr) != Some(v)))
    };
    for (name, rule) in &tree.fields {
        let here = format!("{prefix}fields.{name}");
        if pick(&rule.permissions) {
            out.push(here.clone());
        }
        defined_field_rules(&rule.nested, write, unless, &format!("{here}."), out);
    }
    if tree.additional.as_ref().is_some_and(pick) {
        out.push(format!("{prefix}additional_fields"));
    }
}

fn listed(paths: &[String]) -> String {
    let shown: Vec<String> = paths.iter().take(3).map(|p| format!("`{p}`")).collect();
    match paths.len() {
        0..=3 => shown.join(", "),
        n => format!("{} and {} more", shown.join(", "), n - 3),
    }
}

/// `write-false-overrides-fields`, `read-false-overrides-fields`, `field-rules-overridden`.
fn overrides(role: &Role, diags: &mut Diagnostics) {
    let name = &role.name;
    let read = role.read.as_ref();
    let write = role.write.as_ref();
    // U11: `write: false` overrides every field-level `write` that could grant.
    if let Some(w) = write.filter(|w| constant(&w.expr) == Some(false)) {
        let mut paths = Vec::new();
        defined_field_rules(&role.fields, true, Some(false), "", &mut paths);
        if !paths.is_empty() {
            diags.push(
                Diagnostic::warning(
                    WRITE_FALSE_OVERRIDES_FIELDS,
                    w.place.clone(),
                    format!(
                        "role `{name}` has `write: false`, which overrides its field-level \
                         `write` rules ({}): those fields are not writable (spec U11)",
                        listed(&paths)
                    ),
                )
                .with_hint("remove `write: false` to let the field-level rules decide"),
            );
        }
    }
    // `read: false` overrides every field-level `read` (only `write: true` still shows fields).
    if let Some(r) = read.filter(|r| constant(&r.expr) == Some(false)) {
        let mut paths = Vec::new();
        defined_field_rules(&role.fields, false, Some(false), "", &mut paths);
        if !paths.is_empty() {
            diags.push(
                Diagnostic::warning(
                    READ_FALSE_OVERRIDES_FIELDS,
                    r.place.clone(),
                    format!(
                        "role `{name}` has `read: false`, which overrides its field-level \
                         `read` rules ({}): those fields are not readable",
                        listed(&paths)
                    ),
                )
                .with_hint("remove `read: false` to let the field-level rules decide"),
            );
        }
    }
    // `write: true` shows and lets write every field; `read: true` shows every field.
    let (what, restricted) = if is_constant(write, true) {
        let mut paths = Vec::new();
        defined_field_rules(&role.fields, false, Some(true), "", &mut paths);
        defined_field_rules(&role.fields, true, Some(true), "", &mut paths);
        ("write", paths)
    } else if is_constant(read, true) {
        let mut paths = Vec::new();
        defined_field_rules(&role.fields, false, Some(true), "", &mut paths);
        ("read", paths)
    } else {
        return;
    };
    if restricted.is_empty() {
        return;
    }
    let mut paths = restricted;
    paths.dedup();
    let place = if what == "write" { write } else { read };
    let place = place.map_or_else(|| role.place.clone(), |r| r.place.clone());
    diags.push(
        Diagnostic::warning(
            FIELD_RULES_OVERRIDDEN,
            place,
            format!(
                "role `{name}` has `{what}: true`, so its field-level rules ({}) restrict \
                 nothing: every field is {}",
                listed(&paths),
                if what == "write" {
                    "readable and writable"
                } else {
                    "readable"
                }
            ),
        )
        .with_hint(format!(
            "remove `{what}: true` (leave it undefined) to let the field-level rules decide"
        )),
    );
}

/// `field-not-in-schema`: field rules naming fields the schema does not declare.
fn fields_in_schema<'t>(
    tree: &'t FieldTree,
    schema: &Schema,
    path: &mut Vec<&'t str>,
    diags: &mut Diagnostics,
) {
    let Some(members) = schema.members_at(path) else {
        return;
    };
    // A schema that lists no property but `_id` (the stub App Services generates) describes
    // nothing yet.
    let known: Vec<&str> = members.names().filter(|n| *n != "_id").collect();
    if known.is_empty() {
        return;
    }
    for (name, rule) in &tree.fields {
        if name == "_id" && path.is_empty() {
            continue;
        }
        if !members.declares(name) {
            let shown = if path.is_empty() {
                name.clone()
            } else {
                format!("{}.{name}", path.join("."))
            };
            let hint = match did_you_mean(name, &known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "add it to the schema's `properties`, or fix the field name".to_string(),
            };
            diags.push(
                Diagnostic::warning(
                    FIELD_NOT_IN_SCHEMA,
                    rule.place.clone(),
                    format!(
                        "field `{shown}` has a rule, but the collection's schema does not declare it"
                    ),
                )
                .with_hint(hint),
            );
            continue;
        }
        path.push(name);
        fields_in_schema(&rule.nested, schema, path, diags);
        path.pop();
    }
}

// ---------------------------------------------------------------------------------------------
// Filters

/// The kind of a projection, ignoring `_id` (which may be excluded from an inclusive one):
/// `Some(true)` inclusive, `Some(false)` exclusive, `None` empty or only `_id`.
fn projection_kind(filter: &Filter) -> Option<bool> {
    filter
        .projection
        .iter()
        .find(|(k, _)| k.as_str() != "_id")
        .map(|(_, v)| crate::value::compare::truthy(v))
}

fn kind_name(inclusive: bool) -> &'static str {
    if inclusive { "inclusive" } else { "exclusive" }
}

/// `filter-projection-conflict`: each filter whose projection kind differs from the first
/// non-empty projection of the collection's filters (filters that can never apply are skipped).
fn filters(filters: &[Filter], diags: &mut Diagnostics) {
    let mut first: Option<(&Filter, bool)> = None;
    for f in filters {
        if constant(&f.apply_when.expr) == Some(false) {
            continue;
        }
        let Some(kind) = projection_kind(f) else {
            continue;
        };
        match first {
            None => first = Some((f, kind)),
            Some((other, k)) if k != kind => diags.push(
                Diagnostic::warning(
                    FILTER_PROJECTION_CONFLICT,
                    f.place.key("projection"),
                    format!(
                        "filter `{}` has an {} projection but filter `{}` has an {} one: a \
                         request both apply to fails",
                        f.name,
                        kind_name(kind),
                        other.name,
                        kind_name(k)
                    ),
                )
                .with_hint("give every filter of a collection the same kind of projection"),
            ),
            Some(_) => {}
        }
    }
}
