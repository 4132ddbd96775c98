//! Stage: raw rule JSON → validated [`RuleSet`].
//!
//! Input: the `serde_json::Value` of each rule-bearing file as [`crate::config`] reads it (or
//! single objects from a conformance case), with the [`Place`] it came from.
//! Output: the validated model ([`Role`], [`Filter`], [`CollectionRules`], [`DefaultRule`],
//! [`ServiceRule`], [`FunctionConfig`], ...), assembled into a [`RuleSet`] by
//! [`RuleSetBuilder`]. Every problem of every file goes to [`Diagnostics`]; a build with an
//! error fails with [`LoadError`] carrying all of them (errors and warnings).
//!
//! Two levels of API:
//!
//! * `build_*` functions turn one JSON object into one model value, pushing diagnostics.
//! * [`RuleSetBuilder`] collects raw inputs in any order and builds them in [`RuleSetBuilder::finish`],
//!   where the order matters: Sync settings are known before roles are parsed (they pick the
//!   expression [`Site`]s), schemas are attached to their collection, pre-2023 Sync permissions
//!   are mapped, and `%function` uses are checked against the app's functions.
//!
//! ```
//! use rolegate::rules::build::{BuildOptions, RuleSetBuilder};
//! use rolegate::rules::SyncConfig;
//! use rolegate::error::Place;
//! use serde_json::json;
//!
//! let mut b = RuleSetBuilder::new("example", BuildOptions::default());
//! // Flexible Sync on data source `mongodb-atlas`, with `owner_id` queryable.
//! b.set_sync("mongodb-atlas", SyncConfig {
//!     queryable_fields: vec!["owner_id".into()],
//!     ..SyncConfig::default()
//! });
//! b.add_collection_rules(
//!     "mongodb-atlas",
//!     None,
//!     &json!({"database": "app", "collection": "items", "roles": [{
//!         "name": "owner", "apply_when": {},
//!         "document_filters": {"read": {"owner_id": "%%user.id"}, "write": {"owner_id": "%%user.id"}},
//!         "read": true, "write": true
//!     }]}),
//!     Place::file("rules.json"),
//! );
//! let rules = b.finish()?;
//! let policy = rules.policy(None, "app", "items").unwrap();
//! assert_eq!(policy.roles[0].name, "owner");
//! assert!(policy.roles[0].sync_incompatible.is_none());
//! # Ok::<(), rolegate::error::LoadError>(())
//! ```
//!
//! # Decisions where the spec is silent
//!
//! * **Unknown keys** in roles, field rules, filters and rule files are *warnings*
//!   (`unknown-key`, with a did-you-mean hint such as `document_filter` → `document_filters`):
//!   exported apps carry keys rolegate does not use, and they must still load. The key is
//!   ignored, except for two aliases that are used because ignoring them would *widen* access:
//!   `applyWhen` in a current-format role is read as `apply_when` when that key is absent
//!   (warning `legacy-key`), and `project` in a filter is read as `projection` when that key is
//!   absent (warning `unknown-key`, hint `projection`).
//! * A missing role or filter `apply_when` behaves as `{}` (spec U12) with warning
//!   `missing-apply-when`.
//! * Role and filter names are required, non-empty, ≤ 100 characters; role names are unique
//!   within one role list (duplicate filter names are allowed).
//! * `search` must be a JSON boolean (error otherwise).
//! * Dotted keys in `fields` (`"a.b"`) are errors (spec U15); nest with `fields` instead.
//! * Filter `query` must be a document; its keys must not be expansions (Stitch docs). A
//!   `projection` value must be `0`/`1`/`true`/`false` (no `$slice` etc.); `_id` may take
//!   either kind without making the projection mixed (as in MongoDB).
//! * A rule file's `database`/`collection` keys win over the names in its path; a mismatch is a
//!   warning (`namespace-mismatch`). When the keys are absent the path names are used.
//! * `"roles": null` / `"filters": null` are read as empty lists.
//! * **Sync compatibility** (spec §3.6), when Flexible Sync is enabled on the data source:
//!   these are load *errors* (as the conformance cases expect): `apply_when` that reads the
//!   document (reported by the expression parser for [`Site::SyncApplyWhen`]), expansions not
//!   allowed in Sync rules (parser, [`Site::SyncRule`]), field-level permissions on `_id`, and a
//!   document filter / `insert` / `delete` that references a non-queryable field. These mark
//!   the role [`Role::sync_incompatible`] with a reason and give warning
//!   `sync-incompatible-role` (the evaluator denies the collection when that role is the first
//!   match, spec §2.4): `document_filters` absent or missing `read`/`write`, and a top-level or
//!   field-level `read`/`write` (or `additional_fields`) that is not a boolean literal. An
//!   absent top-level `read`/`write` is not a reason.
//! * **Queryable fields** of a collection = `queryable_fields_names` ∪ that collection's
//!   `collection_queryable_fields_names` ∪ `_id` (always queryable). Default roles apply to
//!   many collections; they are checked against the global list ∪ `_id` ∪ every
//!   collection-specific list. A dotted reference `a.b` is queryable when `a.b` or `a` is.
//! * **Pre-2023 Flexible Sync permissions** (`sync/config.json` `permissions`, spec §1.4 + D5):
//!   `defaultRoles` become the data source's default roles and `rules.<collection>` that
//!   collection's roles (in `database_name`), each mapped as documented: `applyWhen` →
//!   `apply_when`, `read`/`write` → `document_filters.read`/`.write` (a missing one is `false`),
//!   and `read`, `write`, `insert`, `delete`, `search` all `true`. Non-empty lists replace roles
//!   from `default_rule.json` / `rules.json` (warning `legacy-sync-permissions`); a role's
//!   `fields`/`additional_fields` are kept but have no effect under the documented mapping
//!   (warning `legacy-sync-fields`).
//! * `%function` names used in any rule (roles, filters, Partition-Based Sync permissions,
//!   service rules, `can_evaluate`, schema `validate` expressions) must be defined by a function
//!   of the app:
//!   an error for an app, a warning for a lone rule file ([`FunctionCheck`]).
//! * Service rules: a missing `when` is `{}` (true); a missing `actions` is an empty list
//!   (exports omit empty arrays; warning), otherwise it must be a list of strings.
//!   `can_evaluate` and service `when` read bare field names as `%%args.<name>`
//!   ([`Dialect::Service`]).
//! * `%function` uses inside a collection schema's `validate` expressions are checked the same
//!   way, at the place of the `validate` ([`Schema::visit_functions`]).
//! * A Sync configuration whose `state` is present and not `"enabled"` (`""`, `"disabled"`)
//!   has no effect; a second Sync configuration for one data source is ignored (warning).
//! * Partition-Based Sync permissions missing `read` or `write` default to `false` (warning).
//! * **Limits** ([`crate::limits`], set with [`RuleSetBuilder::set_limits`]): an input nested
//!   deeper than [`Limits::max_file_depth`] is refused when added (`limit-exceeded` at the JSON
//!   path of the first value too deep), before it is copied or built, so no input can exhaust
//!   the stack; [`RuleSetBuilder::finish`] checks every other load-time limit on the built rule
//!   set ([`check_rule_set`]) and stores the limits in [`RuleSet::limits`]. Unknown keys get a
//!   did-you-mean hint, or the list of known keys when none is close.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use bson::{Bson, Document};
use serde_json::{Map, Value};

use super::model::{
    CollectionRules, DataSource, DefaultRule, DocumentFilters, FieldPermissions, FieldRule,
    FieldTree, Filter, FunctionConfig, PartitionPermissions, Role, Rule, RuleSet, ServiceRule,
    SyncConfig, ValueDef,
};
use crate::error::{Diagnostic, Diagnostics, LoadError, Place, did_you_mean};
use crate::expr::{Dialect, Expr, Operand, Root, Site, parse_expr, parse_operand};
use crate::limits::{Limits, check_rule_set, depth_error, json_too_deep};
use crate::schema::Schema;

/// Longest role or filter name App Services accepts.
pub const MAX_NAME_CHARS: usize = 100;

const ROLE_KEYS: &[&str] = &[
    "name",
    "apply_when",
    "document_filters",
    "read",
    "write",
    "insert",
    "delete",
    "search",
    "fields",
    "additional_fields",
];
const LEGACY_SYNC_ROLE_KEYS: &[&str] = &[
    "name",
    "applyWhen",
    "apply_when",
    "read",
    "write",
    "fields",
    "additional_fields",
];
const FIELD_KEYS: &[&str] = &["read", "write", "fields", "additional_fields"];
const PERMISSION_KEYS: &[&str] = &["read", "write"];
const FILTER_KEYS: &[&str] = &["name", "apply_when", "query", "projection"];
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
const SERVICE_RULE_KEYS: &[&str] = &["name", "actions", "when", "id"];

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

/// Options of one build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub function_check: FunctionCheck,
}

/// Where a role list is being built: decides the expression sites and the Sync checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoleContext<'a> {
    /// Flexible Sync settings of the data source, when Sync is enabled on it.
    pub sync: Option<&'a SyncConfig>,
    /// The collection the roles belong to; `None` for default roles (they are checked against
    /// the queryable fields of every collection).
    pub collection: Option<&'a str>,
}

/// The two role document formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoleFormat {
    /// Spec §1.6 (2018 → today).
    Current,
    /// Pre-2023 Flexible Sync `permissions` roles (spec §1.4), mapped as documented.
    LegacySync,
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn as_object<'a>(
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
                format!("{what} must be a JSON object, not {}", json_type(other)),
            );
            None
        }
    }
}

fn as_array<'a>(
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
                format!("{what} must be a JSON array, not {}", json_type(other)),
            );
            None
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Warns about every key of `map` not in `known` (with a did-you-mean hint). Keys in `skip`
/// are handled by the caller.
fn unknown_keys(
    map: &Map<String, Value>,
    known: &[&str],
    skip: &[&str],
    what: &str,
    place: &Place,
    diags: &mut Diagnostics,
) {
    for key in map.keys() {
        if known.contains(&key.as_str()) || skip.contains(&key.as_str()) {
            continue;
        }
        let mut d = Diagnostic::warning(
            "unknown-key",
            place.key(key),
            format!("unknown key `{key}` in {what} is ignored"),
        );
        d = match did_you_mean(key, known) {
            Some(s) => d.with_hint(format!("did you mean `{s}`?")),
            None => d.with_hint(format!("known keys: {}", known_keys(known))),
        };
        diags.push(d);
    }
}

/// `known` as a hint: `` `a`, `b`, `c` ``.
fn known_keys(known: &[&str]) -> String {
    known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn optional_string(
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
                format!("`{key}` must be a string, not {}", json_type(other)),
            );
            None
        }
    }
}

/// The required `name` of a role or filter (`what`), ≤ 100 characters.
fn required_name(
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
                format!("{what} `name` must be a string, not {}", json_type(other)),
            );
            String::new()
        }
    }
}

fn rule(
    value: &Value,
    dialect: Dialect,
    site: Site,
    place: Place,
    diags: &mut Diagnostics,
) -> Rule {
    let expr = parse_expr(value, dialect, site, &place, diags);
    Rule { expr, place }
}

fn literal(value: bool, place: Place) -> Rule {
    Rule {
        expr: Expr::Bool(value),
        place,
    }
}

// ---------------------------------------------------------------------------------------------
// Roles

/// Builds one role (spec §1.6) in its context; `None` when `json` is not an object.
#[cfg(test)]
pub fn build_role(
    json: &Value,
    ctx: RoleContext<'_>,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<Role> {
    build_role_in(json, ctx, RoleFormat::Current, place, diags)
}

/// Builds a role list (`roles` of a rule file): every role, with unique names.
pub fn build_roles(
    json: &Value,
    ctx: RoleContext<'_>,
    place: &Place,
    diags: &mut Diagnostics,
) -> Vec<Role> {
    build_roles_in(json, ctx, RoleFormat::Current, place, diags)
}

fn build_roles_in(
    json: &Value,
    ctx: RoleContext<'_>,
    format: RoleFormat,
    place: &Place,
    diags: &mut Diagnostics,
) -> Vec<Role> {
    let Some(items) = as_array(json, "`roles`", place, diags) else {
        return Vec::new();
    };
    let mut roles: Vec<Role> = Vec::with_capacity(items.len());
    let mut names: HashSet<String> = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let p = place.index(i);
        let Some(role) = build_role_in(item, ctx, format, &p, diags) else {
            continue;
        };
        if !role.name.is_empty() && !names.insert(role.name.clone()) {
            diags.error(
                "duplicate-role",
                p.key("name"),
                format!(
                    "duplicate role name `{}`; role names are unique within a collection",
                    role.name
                ),
            );
        }
        roles.push(role);
    }
    roles
}

fn build_role_in(
    json: &Value,
    ctx: RoleContext<'_>,
    format: RoleFormat,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<Role> {
    let map = as_object(json, "a role", place, diags)?;
    let name = required_name(map, "role", place, diags);
    let sync = ctx.sync.is_some() || format == RoleFormat::LegacySync;
    let (apply_when_site, gate_site) = if sync {
        (Site::SyncApplyWhen, Site::SyncRule)
    } else {
        (Site::RoleApplyWhen, Site::RolePermission)
    };
    let mongo = Dialect::MongoDb;

    match format {
        RoleFormat::Current => unknown_keys(map, ROLE_KEYS, &["applyWhen"], "a role", place, diags),
        RoleFormat::LegacySync => unknown_keys(
            map,
            LEGACY_SYNC_ROLE_KEYS,
            &[],
            "a pre-2023 Sync role",
            place,
            diags,
        ),
    }

    let apply_when = match (map.get("apply_when"), map.get("applyWhen")) {
        (Some(v), other) => {
            if other.is_some() && format == RoleFormat::Current {
                diags.push(
                    Diagnostic::warning(
                        "legacy-key",
                        place.key("applyWhen"),
                        "`applyWhen` is ignored because the role also has `apply_when`",
                    )
                    .with_hint("remove `applyWhen`"),
                );
            }
            rule(v, mongo, apply_when_site, place.key("apply_when"), diags)
        }
        (None, Some(v)) => {
            if format == RoleFormat::Current {
                diags.push(
                    Diagnostic::warning(
                        "legacy-key",
                        place.key("applyWhen"),
                        "`applyWhen` is the pre-2023 Sync spelling; it is read as `apply_when`",
                    )
                    .with_hint("rename it to `apply_when`"),
                );
            }
            rule(v, mongo, apply_when_site, place.key("applyWhen"), diags)
        }
        (None, None) => {
            diags.push(
                Diagnostic::warning(
                    "missing-apply-when",
                    place.clone(),
                    format!("role `{name}` has no `apply_when`; it applies to every request"),
                )
                .with_hint("add `\"apply_when\": {}` to make this explicit"),
            );
            literal_always(place.key("apply_when"))
        }
    };

    let (document_filters, read, write, insert, delete, search) = match format {
        RoleFormat::Current => {
            let document_filters = map.get("document_filters").and_then(|v| {
                let p = place.key("document_filters");
                let m = as_object(v, "`document_filters`", &p, diags)?;
                unknown_keys(m, PERMISSION_KEYS, &[], "`document_filters`", &p, diags);
                Some(DocumentFilters {
                    read: m
                        .get("read")
                        .map(|v| rule(v, mongo, gate_site, p.key("read"), diags)),
                    write: m
                        .get("write")
                        .map(|v| rule(v, mongo, gate_site, p.key("write"), diags)),
                    place: p,
                })
            });
            let read = map
                .get("read")
                .map(|v| rule(v, mongo, Site::RolePermission, place.key("read"), diags));
            let write = map
                .get("write")
                .map(|v| rule(v, mongo, Site::RolePermission, place.key("write"), diags));
            let insert = map
                .get("insert")
                .map(|v| rule(v, mongo, gate_site, place.key("insert"), diags));
            let delete = map
                .get("delete")
                .map(|v| rule(v, mongo, gate_site, place.key("delete"), diags));
            let search = match map.get("search") {
                None => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(other) => {
                    diags.error(
                        "invalid-type",
                        place.key("search"),
                        format!("`search` must be true or false, not {}", json_type(other)),
                    );
                    None
                }
            };
            (document_filters, read, write, insert, delete, search)
        }
        RoleFormat::LegacySync => {
            // Spec §1.4 + D5: sync read/write are document filters; a missing one is false.
            let gate = |key: &str, diags: &mut Diagnostics| match map.get(key) {
                Some(v) => rule(v, mongo, Site::SyncRule, place.key(key), diags),
                None => literal(false, place.clone()),
            };
            let document_filters = DocumentFilters {
                read: Some(gate("read", diags)),
                write: Some(gate("write", diags)),
                place: place.clone(),
            };
            (
                Some(document_filters),
                Some(literal(true, place.clone())),
                Some(literal(true, place.clone())),
                Some(literal(true, place.clone())),
                Some(literal(true, place.clone())),
                Some(true),
            )
        }
    };

    let fields = field_tree(
        map.get("fields"),
        map.get("additional_fields"),
        place,
        diags,
    );
    if format == RoleFormat::LegacySync && !fields.is_empty() {
        diags.push(Diagnostic::warning(
            "legacy-sync-fields",
            place.clone(),
            format!(
                "field-level permissions of pre-2023 Sync role `{name}` have no effect after the \
                 documented migration, which makes the role's `read` and `write` true"
            ),
        ));
    }

    let mut role = Role {
        name,
        apply_when,
        document_filters,
        read,
        write,
        insert,
        delete,
        search,
        fields,
        place: place.clone(),
        sync_incompatible: None,
    };
    if let Some(sync) = ctx.sync {
        check_sync_role(&mut role, sync, ctx.collection, diags);
    }
    Some(role)
}

fn literal_always(place: Place) -> Rule {
    Rule {
        expr: Expr::always(),
        place,
    }
}

fn field_tree(
    fields: Option<&Value>,
    additional: Option<&Value>,
    place: &Place,
    diags: &mut Diagnostics,
) -> FieldTree {
    let mut tree = FieldTree::default();
    if let Some(v) = fields {
        let p = place.key("fields");
        if let Some(m) = as_object(v, "`fields`", &p, diags) {
            for (name, spec) in m {
                let fp = p.key(name);
                if name.is_empty() {
                    diags.error("invalid-field-name", fp, "field names cannot be empty");
                    continue;
                }
                if name.contains('.') {
                    diags.push(
                        Diagnostic::error(
                            "dotted-field-name",
                            fp,
                            format!("dotted field name `{name}` in `fields` is not supported"),
                        )
                        .with_hint("describe embedded fields with a nested `fields` document"),
                    );
                    continue;
                }
                if let Some(rule) = field_rule(spec, &fp, diags) {
                    tree.fields.push((name.clone(), rule));
                }
            }
        }
    }
    if let Some(v) = additional {
        tree.additional = permissions(
            v,
            "`additional_fields`",
            &place.key("additional_fields"),
            diags,
        );
    }
    tree
}

fn field_rule(value: &Value, place: &Place, diags: &mut Diagnostics) -> Option<FieldRule> {
    let m = as_object(value, "a field rule", place, diags)?;
    unknown_keys(m, FIELD_KEYS, &[], "a field rule", place, diags);
    let permissions = permission_pair(m, place, diags);
    let nested = field_tree(m.get("fields"), m.get("additional_fields"), place, diags);
    Some(FieldRule {
        permissions,
        nested,
        place: place.clone(),
    })
}

fn permissions(
    value: &Value,
    what: &str,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<FieldPermissions> {
    let m = as_object(value, what, place, diags)?;
    unknown_keys(m, PERMISSION_KEYS, &[], what, place, diags);
    Some(permission_pair(m, place, diags))
}

fn permission_pair(
    m: &Map<String, Value>,
    place: &Place,
    diags: &mut Diagnostics,
) -> FieldPermissions {
    let get = |key: &str, diags: &mut Diagnostics| {
        m.get(key).map(|v| {
            rule(
                v,
                Dialect::MongoDb,
                Site::FieldPermission,
                place.key(key),
                diags,
            )
        })
    };
    FieldPermissions {
        read: get("read", diags),
        write: get("write", diags),
    }
}

// ---------------------------------------------------------------------------------------------
// Sync compatibility (spec §3.6)

/// The queryable fields of `collection` (`None`: every collection) under `sync`.
fn queryable_fields<'a>(sync: &'a SyncConfig, collection: Option<&str>) -> BTreeSet<&'a str> {
    let mut set: BTreeSet<&str> = sync.queryable_fields.iter().map(String::as_str).collect();
    set.insert("_id");
    match collection {
        Some(c) => {
            if let Some(list) = sync.collection_queryable_fields.get(c) {
                set.extend(list.iter().map(String::as_str));
            }
        }
        None => {
            for list in sync.collection_queryable_fields.values() {
                set.extend(list.iter().map(String::as_str));
            }
        }
    }
    set
}

/// The document fields an expression tests (bare-name subjects), as dotted paths. Subjects inside `$elemMatch` queries are element-relative and not collected.
fn document_fields(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Bool(_) => {}
        Expr::All(v) | Expr::Any(v) | Expr::None(v) => {
            v.iter().for_each(|e| document_fields(e, out))
        }
        Expr::Not(e) => document_fields(e, out),
        Expr::Test { subject, .. } => {
            // Explicit `%%root` is rejected by the parser in Sync rules; count bare names only.
            if subject.root == Root::Root && subject.implicit && !subject.path.is_empty() {
                let path = subject.path.join(".");
                if !out.contains(&path) {
                    out.push(path);
                }
            }
        }
    }
}

fn is_queryable(path: &str, queryable: &BTreeSet<&str>) -> bool {
    let first = path.split('.').next().unwrap_or(path);
    queryable.contains(path) || queryable.contains(first)
}

fn check_sync_role(
    role: &mut Role,
    sync: &SyncConfig,
    collection: Option<&str>,
    diags: &mut Diagnostics,
) {
    // Errors.
    if let Some(rule) = role.fields.get("_id") {
        diags.error(
            "sync-incompatible",
            rule.place.clone(),
            "field-level permissions on _id are not Sync compatible",
        );
    }
    let queryable = queryable_fields(sync, collection);
    let mut gates: Vec<(&str, &Rule)> = Vec::new();
    if let Some(df) = &role.document_filters {
        gates.extend(df.read.iter().map(|r| ("document filter", r)));
        gates.extend(df.write.iter().map(|r| ("document filter", r)));
    }
    gates.extend(role.insert.iter().map(|r| ("`insert` expression", r)));
    gates.extend(role.delete.iter().map(|r| ("`delete` expression", r)));
    for (what, rule) in gates {
        let mut fields = Vec::new();
        document_fields(&rule.expr, &mut fields);
        for field in fields {
            if !is_queryable(&field, &queryable) {
                diags.push(
                    Diagnostic::error(
                        "non-queryable-field",
                        rule.place.clone(),
                        format!("{what} references non-queryable field '{field}'"),
                    )
                    .with_hint(format!(
                        "add `{field}` to the Sync configuration's queryable fields"
                    )),
                );
            }
        }
    }

    // Incompatibilities that deny at runtime.
    let mut reason: Option<String> = match &role.document_filters {
        None => Some("`document_filters` is not defined".to_string()),
        Some(df) if df.read.is_none() => Some("`document_filters.read` is not defined".to_string()),
        Some(df) if df.write.is_none() => {
            Some("`document_filters.write` is not defined".to_string())
        }
        Some(_) => None,
    };
    for (key, rule) in [("read", &role.read), ("write", &role.write)] {
        if reason.is_none()
            && rule
                .as_ref()
                .is_some_and(|r| !matches!(r.expr, Expr::Bool(_)))
        {
            reason = Some(format!("top-level `{key}` is not a boolean"));
        }
    }
    if reason.is_none() {
        reason = non_boolean_field_permission(&role.fields, "fields");
    }
    if let Some(reason) = reason {
        diags.push(Diagnostic::warning(
            "sync-incompatible-role",
            role.place.clone(),
            format!(
                "role `{}` is not Sync compatible ({reason}); a Sync session whose first \
                 matching role is this one cannot access the collection",
                role.name
            ),
        ));
        role.sync_incompatible = Some(reason);
    }
}

fn non_boolean_field_permission(tree: &FieldTree, path: &str) -> Option<String> {
    let is_bool = |r: &Option<Rule>| r.as_ref().is_none_or(|r| matches!(r.expr, Expr::Bool(_)));
    for (name, rule) in &tree.fields {
        let here = format!("{path}.{name}");
        for (key, perm) in [
            ("read", &rule.permissions.read),
            ("write", &rule.permissions.write),
        ] {
            if !is_bool(perm) {
                return Some(format!(
                    "field-level permission `{here}.{key}` is not a boolean"
                ));
            }
        }
        if let Some(r) = non_boolean_field_permission(&rule.nested, &format!("{here}.fields")) {
            return Some(r);
        }
    }
    if let Some(add) = &tree.additional {
        for (key, perm) in [("read", &add.read), ("write", &add.write)] {
            if !is_bool(perm) {
                let base = path.strip_suffix("fields").unwrap_or(path);
                return Some(format!(
                    "field-level permission `{base}additional_fields.{key}` is not a boolean"
                ));
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Filters (spec §1.7, §4)

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
                    json_type(other)
                ),
            );
            Operand::Literal(Bson::Document(Document::new()))
        }
    };

    let projection = match (m.get("projection"), m.get("project")) {
        (Some(v), project) => {
            if project.is_some() {
                diags.push(
                    Diagnostic::warning(
                        "unknown-key",
                        place.key("project"),
                        "unknown key `project` in a filter is ignored",
                    )
                    .with_hint("did you mean `projection`?"),
                );
            }
            build_projection(v, &place.key("projection"), diags)
        }
        (None, Some(v)) => {
            diags.push(
                Diagnostic::warning(
                    "unknown-key",
                    place.key("project"),
                    "unknown key `project` in a filter is read as `projection`",
                )
                .with_hint("did you mean `projection`?"),
            );
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
                        json_type(other)
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

// ---------------------------------------------------------------------------------------------
// Rule files

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

// ---------------------------------------------------------------------------------------------
// Sync configuration

/// Flexible Sync settings relevant to permissions (`queryable_fields_names`,
/// `collection_queryable_fields_names`, and the indexed queryable field, which is queryable
/// too) from `sync/config.json` or a service's `config.flexible_sync`.
pub fn build_sync_config(json: &Value, place: &Place, diags: &mut Diagnostics) -> SyncConfig {
    let mut sync = SyncConfig {
        place: place.clone(),
        ..SyncConfig::default()
    };
    let Some(m) = as_object(json, "a Sync configuration", place, diags) else {
        return sync;
    };
    if let Some(v) = m.get("queryable_fields_names") {
        sync.queryable_fields = string_list(
            v,
            "`queryable_fields_names`",
            &place.key("queryable_fields_names"),
            diags,
        );
    }
    for key in [
        "indexed_queryable_fields_names",
        "indexed_queryable_field_name",
    ] {
        match m.get(key) {
            Some(Value::String(s)) if !s.is_empty() => sync.queryable_fields.push(s.clone()),
            Some(v @ Value::Array(_)) => sync.queryable_fields.extend(string_list(
                v,
                &format!("`{key}`"),
                &place.key(key),
                diags,
            )),
            _ => {}
        }
    }
    if let Some(v) = m.get("collection_queryable_fields_names") {
        let p = place.key("collection_queryable_fields_names");
        if let Some(cm) = as_object(v, "`collection_queryable_fields_names`", &p, diags) {
            for (coll, list) in cm {
                let fields = string_list(list, "a queryable field list", &p.key(coll), diags);
                sync.collection_queryable_fields
                    .insert(coll.clone(), fields);
            }
        }
    }
    sync
}

fn string_list(value: &Value, what: &str, place: &Place, diags: &mut Diagnostics) -> Vec<String> {
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
                format!("{what} must hold strings, not {}", json_type(other)),
            ),
        }
    }
    out
}

/// Partition-Based Sync `permissions` (`{read, write}`, spec §3.7).
pub fn build_partition_permissions(
    json: &Value,
    place: &Place,
    diags: &mut Diagnostics,
) -> PartitionPermissions {
    let get = |m: Option<&Map<String, Value>>, key: &str, diags: &mut Diagnostics| match m
        .and_then(|m| m.get(key))
    {
        Some(v) => rule(
            v,
            Dialect::MongoDb,
            Site::PartitionPermission,
            place.key(key),
            diags,
        ),
        None => {
            if m.is_some() {
                diags.warning(
                    "missing-key",
                    place.clone(),
                    format!("Partition-Based Sync permissions have no `{key}`; it is false"),
                );
            }
            literal(false, place.clone())
        }
    };
    let m = as_object(json, "Partition-Based Sync permissions", place, diags);
    if let Some(m) = m {
        unknown_keys(
            m,
            PERMISSION_KEYS,
            &[],
            "Partition-Based Sync permissions",
            place,
            diags,
        );
    }
    let read = get(m, "read", diags);
    let write = get(m, "write", diags);
    PartitionPermissions { read, write }
}

// ---------------------------------------------------------------------------------------------
// Services, functions, values, environments

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
    let name = match (optional_string(m, "name", place, diags), name_hint) {
        (Some(n), _) => n,
        (None, Some(h)) => h.to_string(),
        (None, None) => {
            diags.error("missing-key", place.clone(), "service rule has no `name`");
            String::new()
        }
    };
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

/// Builds a function's configuration (`functions/<name>/config.json`, or one entry of
/// `functions/config.json`); `name_hint` (the directory name) is used when `name` is absent.
pub fn build_function_config(
    json: &Value,
    name_hint: Option<&str>,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<FunctionConfig> {
    let m = as_object(json, "a function configuration", place, diags)?;
    let name = match (optional_string(m, "name", place, diags), name_hint) {
        (Some(n), Some(h)) if n != h => {
            diags.warning(
                "name-mismatch",
                place.key("name"),
                format!("function `{n}` is configured in the directory of `{h}`; `{n}` is used"),
            );
            n
        }
        (Some(n), _) => n,
        (None, Some(h)) => h.to_string(),
        (None, None) => {
            diags.error(
                "missing-key",
                place.clone(),
                "function configuration has no `name`",
            );
            return None;
        }
    };
    let private = match m.get("private") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            diags.error(
                "invalid-type",
                place.key("private"),
                format!("`private` must be true or false, not {}", json_type(other)),
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

/// Builds a value (`values/<name>.json`: `{name, value, from_secret}`); `name_hint` is the file
/// name. Extended JSON in `value` is converted.
pub fn build_value(
    json: &Value,
    name_hint: Option<&str>,
    place: &Place,
    diags: &mut Diagnostics,
) -> Option<(String, ValueDef)> {
    let m = as_object(json, "a value file", place, diags)?;
    let name = match (optional_string(m, "name", place, diags), name_hint) {
        (Some(n), _) => n,
        (None, Some(h)) => h.to_string(),
        (None, None) => {
            diags.error("missing-key", place.clone(), "value has no `name`");
            return None;
        }
    };
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
                        json_type(&other)
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

// ---------------------------------------------------------------------------------------------
// The builder

#[derive(Debug, Default)]
struct DataSourceInput {
    datalake: Option<Place>,
    sync: Option<SyncConfig>,
    partition: Option<PartitionPermissions>,
    legacy_sync: Option<LegacySyncInput>,
    default_rule: Option<(Value, Place)>,
    collections: Vec<CollectionInput>,
}

#[derive(Debug)]
struct LegacySyncInput {
    permissions: Value,
    database: Option<String>,
    place: Place,
}

#[derive(Debug)]
struct CollectionInput {
    /// `(database, collection)` from the file path (or given by the caller).
    namespace: Option<(String, String)>,
    rules: Option<(Value, Place)>,
    schema: Option<(Value, Place)>,
}

/// Assembles a [`RuleSet`] from raw JSON inputs given in any order; see the module example.
///
/// Rule files (collection rules, default rules, schemas) are kept raw and built in
/// [`finish`](Self::finish), once every data source's Sync settings are known. Everything else
/// is built when added. Diagnostics of every input are collected; `finish` fails when any is an
/// error.
#[derive(Debug)]
pub struct RuleSetBuilder {
    origin: Arc<str>,
    options: BuildOptions,
    data_sources: BTreeMap<String, DataSourceInput>,
    services: BTreeMap<String, Vec<ServiceRule>>,
    functions: BTreeMap<String, FunctionConfig>,
    values: BTreeMap<String, ValueDef>,
    environments: BTreeMap<String, Document>,
    /// `%function` uses outside rule files (PBS permissions, service rules, `can_evaluate`).
    function_uses: Vec<(String, Place)>,
    limits: Limits,
    diags: Diagnostics,
}

impl RuleSetBuilder {
    /// A builder for a rule set loaded from `origin` (a path, or a name for inline input).
    pub fn new(origin: impl Into<Arc<str>>, options: BuildOptions) -> Self {
        RuleSetBuilder {
            origin: origin.into(),
            options,
            data_sources: BTreeMap::new(),
            services: BTreeMap::new(),
            functions: BTreeMap::new(),
            values: BTreeMap::new(),
            environments: BTreeMap::new(),
            function_uses: Vec::new(),
            limits: Limits::default(),
            diags: Diagnostics::default(),
        }
    }

    /// Sets the limits the inputs are checked against ([`Limits::default`] unless set); call it
    /// before adding inputs. An input nested deeper than [`Limits::max_file_depth`] is refused
    /// when added (never copied or built); every other limit is checked by
    /// [`finish`](Self::finish).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// False (with a `limit-exceeded` error) when `json` nests deeper than the limits allow.
    fn admit(&mut self, json: &Value, place: &Place) -> bool {
        let max = self.limits.effective_file_depth();
        match json_too_deep(json, max, place) {
            None => true,
            Some(at) => {
                self.diags.push(depth_error(at, max));
                false
            }
        }
    }

    /// Adds a diagnostic found outside the builder (e.g. a file that is not valid JSON).
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    /// Diagnostics collected so far.
    pub fn diagnostics(&self) -> &Diagnostics {
        &self.diags
    }

    fn ds(&mut self, name: &str) -> &mut DataSourceInput {
        self.data_sources.entry(name.to_string()).or_default()
    }

    /// Declares data source `name` (so that it exists even without rules).
    pub fn add_data_source(&mut self, name: &str) {
        self.ds(name);
    }

    /// Marks data source `name` as a Data Federation (`datalake`) source: it has no rules
    /// (spec §1.3); rule files found for it are ignored with a warning.
    pub fn mark_datalake(&mut self, name: &str, place: Place) {
        self.ds(name).datalake = Some(place);
    }

    /// Enables Flexible Sync on data source `data_source` with these settings (roles of that
    /// data source are then parsed with the Sync sites and checked for Sync compatibility).
    pub fn set_sync(&mut self, data_source: &str, sync: SyncConfig) {
        self.try_set_sync(data_source, sync);
    }

    /// [`set_sync`](Self::set_sync); false (with a warning) when the data source already has one.
    fn try_set_sync(&mut self, data_source: &str, sync: SyncConfig) -> bool {
        let ds = self.ds(data_source);
        if let Some(old) = &ds.sync {
            let place = sync.place.clone();
            let old_place = old.place.clone();
            self.diags.warning(
                "duplicate-sync-config",
                place,
                format!(
                    "data source `{data_source}` already has a Sync configuration ({old_place}); \
                     this one is ignored"
                ),
            );
            return false;
        }
        ds.sync = Some(sync);
        true
    }

    /// Enables Partition-Based Sync on `data_source` with `permissions` (`{read, write}`).
    pub fn set_partition_permissions(
        &mut self,
        data_source: &str,
        permissions: &Value,
        place: Place,
    ) {
        if !self.admit(permissions, &place) {
            return;
        }
        let perms = build_partition_permissions(permissions, &place, &mut self.diags);
        self.note_functions(&perms.read);
        self.note_functions(&perms.write);
        let ds = self.ds(data_source);
        if ds.partition.is_some() {
            self.diags.warning(
                "duplicate-sync-config",
                place,
                format!(
                    "data source `{data_source}` already has Partition-Based Sync permissions; \
                     these are ignored"
                ),
            );
            return;
        }
        ds.partition = Some(perms);
    }

    /// Adds a Sync configuration as `sync/config.json` holds it: `service_name` names the data
    /// source (`default_data_source` when absent). Flexible (`type: "flexible"`, queryable
    /// fields, pre-2023 `permissions`) or Partition-Based (`partition.permissions`). A sync
    /// whose `state` is present and not `"enabled"` has no effect.
    pub fn add_sync_config(&mut self, json: &Value, default_data_source: &str, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        let Some(m) = as_object(json, "a Sync configuration", &place, &mut self.diags) else {
            return;
        };
        let data_source = match optional_string(m, "service_name", &place, &mut self.diags) {
            Some(s) if !s.is_empty() => s,
            _ => default_data_source.to_string(),
        };
        self.add_sync_for(&data_source, m, place);
    }

    fn add_sync_for(&mut self, data_source: &str, m: &Map<String, Value>, place: Place) {
        let enabled = match m.get("state") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s == "enabled",
            Some(_) => false,
        };
        if !enabled {
            return;
        }
        let kind = m.get("type").and_then(Value::as_str);
        if let Some(partition) = m.get("partition").filter(|_| kind != Some("flexible")) {
            let p = place.key("partition");
            match partition.get("permissions") {
                Some(perms) => {
                    self.set_partition_permissions(data_source, perms, p.key("permissions"))
                }
                None => self.diags.warning(
                    "missing-key",
                    p,
                    "Partition-Based Sync has no `permissions`; every partition is denied",
                ),
            }
            return;
        }
        let flexible = kind == Some("flexible")
            || [
                "queryable_fields_names",
                "collection_queryable_fields_names",
                "permissions",
            ]
            .iter()
            .any(|k| m.contains_key(*k));
        if !flexible {
            return;
        }
        let sync = build_sync_config(&Value::Object(m.clone()), &place, &mut self.diags);
        if !self.try_set_sync(data_source, sync) {
            return;
        }
        if let Some(perms) = m.get("permissions") {
            let database = optional_string(m, "database_name", &place, &mut self.diags)
                .filter(|s| !s.is_empty());
            self.ds(data_source).legacy_sync = Some(LegacySyncInput {
                permissions: perms.clone(),
                database,
                place: place.key("permissions"),
            });
        }
    }

    /// Adds a data source's `config.json` (`data_sources/<ds>/config.json`): `type: "datalake"`
    /// marks a source without rules; `config.sync` / `config.flexible_sync` enable Sync.
    pub fn add_data_source_config(&mut self, data_source: &str, json: &Value, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        self.ds(data_source);
        let Some(m) = as_object(json, "a data source configuration", &place, &mut self.diags)
        else {
            return;
        };
        if let Some(t) = m.get("type").and_then(Value::as_str)
            && is_datalake_type(t)
        {
            self.mark_datalake(data_source, place.clone());
        }
        self.embedded_sync(data_source, m, &place);
    }

    /// Adds a legacy service's `config.json` (`services/<svc>/config.json`). A MongoDB service
    /// (`type` `mongodb`, `mongodb-atlas`, `mongodb-datalake`) is a data source, with optional
    /// `config.sync` (Partition-Based Sync) or `config.flexible_sync`; any other `type` is a
    /// third-party service (whose rules are added with [`add_service_rule`](Self::add_service_rule)).
    pub fn add_service_config(&mut self, service: &str, json: &Value, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        let Some(m) = as_object(json, "a service configuration", &place, &mut self.diags) else {
            return;
        };
        match m.get("type").and_then(Value::as_str) {
            Some(t) if is_datalake_type(t) => self.mark_datalake(service, place.clone()),
            Some(t) if is_mongodb_type(t) => self.add_data_source(service),
            Some(_) => {
                self.services.entry(service.to_string()).or_default();
                return;
            }
            None => {}
        }
        self.embedded_sync(service, m, &place);
    }

    fn embedded_sync(&mut self, data_source: &str, m: &Map<String, Value>, place: &Place) {
        let Some(config) = m.get("config").and_then(Value::as_object) else {
            return;
        };
        let p = place.key("config");
        for key in ["sync", "flexible_sync"] {
            if let Some(Value::Object(sync)) = config.get(key) {
                let mut sync = sync.clone();
                if key == "flexible_sync" && !sync.contains_key("type") {
                    sync.insert("type".into(), Value::String("flexible".into()));
                }
                self.add_sync_for(data_source, &sync, p.key(key));
            }
        }
    }

    /// Adds a collection rule file (`rules.json` or a legacy `<db>.<coll>.json`) of
    /// `data_source`; `namespace` is `(database, collection)` from its path, if known.
    pub fn add_collection_rules(
        &mut self,
        data_source: &str,
        namespace: Option<(&str, &str)>,
        json: &Value,
        place: Place,
    ) {
        if !self.admit(json, &place) {
            return;
        }
        if let Some(entry) = self.collection_entry(data_source, namespace, |c| c.rules.is_none()) {
            entry.rules = Some((json.clone(), place));
        }
    }

    /// Adds a collection's `schema.json` (merged into its rule object as `schema`; a collection
    /// with a schema and no rule file has a rule object without roles).
    pub fn add_collection_schema(
        &mut self,
        data_source: &str,
        database: &str,
        collection: &str,
        json: &Value,
        place: Place,
    ) {
        if !self.admit(json, &place) {
            return;
        }
        let ns = Some((database, collection));
        if let Some(entry) = self.collection_entry(data_source, ns, |c| c.schema.is_none()) {
            entry.schema = Some((json.clone(), place));
        }
    }

    /// The pending collection with this path namespace whose slot is `free`, or a new one.
    /// Inputs without a path namespace never merge.
    fn collection_entry(
        &mut self,
        data_source: &str,
        namespace: Option<(&str, &str)>,
        free: fn(&CollectionInput) -> bool,
    ) -> Option<&mut CollectionInput> {
        let ns = namespace.map(|(d, c)| (d.to_string(), c.to_string()));
        let ds = self.ds(data_source);
        let existing = ds
            .collections
            .iter()
            .position(|c| ns.is_some() && c.namespace == ns && free(c));
        let index = match existing {
            Some(i) => i,
            None => {
                ds.collections.push(CollectionInput {
                    namespace: ns,
                    rules: None,
                    schema: None,
                });
                ds.collections.len().saturating_sub(1)
            }
        };
        ds.collections.get_mut(index)
    }

    /// Adds a data source's `default_rule.json` (a second one for the same data source is an
    /// error).
    pub fn add_default_rule(&mut self, data_source: &str, json: &Value, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        let ds = self.ds(data_source);
        if let Some((_, old)) = &ds.default_rule {
            let old = old.clone();
            self.diags.error(
                "duplicate-default-rule",
                place,
                format!("data source `{data_source}` already has a default rule ({old})"),
            );
            return;
        }
        ds.default_rule = Some((json.clone(), place));
    }

    /// Adds a third-party service rule of `service`.
    pub fn add_service_rule(
        &mut self,
        service: &str,
        json: &Value,
        name_hint: Option<&str>,
        place: Place,
    ) {
        if !self.admit(json, &place) {
            return;
        }
        if let Some(rule) = build_service_rule(json, name_hint, &place, &mut self.diags) {
            self.note_functions(&rule.when);
            self.services
                .entry(service.to_string())
                .or_default()
                .push(rule);
        }
    }

    /// Adds one function configuration (`functions/<name>/config.json`).
    pub fn add_function_config(&mut self, json: &Value, name_hint: Option<&str>, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        if let Some(f) = build_function_config(json, name_hint, &place, &mut self.diags) {
            self.add_function(f);
        }
    }

    /// Adds `functions/config.json` (an array of function configurations).
    pub fn add_functions_config(&mut self, json: &Value, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        let Some(items) = as_array(json, "`functions/config.json`", &place, &mut self.diags) else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            self.add_function_config(item, None, place.index(i));
        }
    }

    /// Adds a validated function configuration (replacing one of the same name).
    pub fn add_function(&mut self, function: FunctionConfig) {
        if let Some(r) = &function.can_evaluate {
            self.note_functions(r);
        }
        self.functions.insert(function.name.clone(), function);
    }

    /// Declares that function `name` exists (its source was found) without a configuration.
    pub fn add_function_source(&mut self, name: &str) {
        self.functions
            .entry(name.to_string())
            .or_insert_with(|| FunctionConfig {
                name: name.to_string(),
                private: false,
                can_evaluate: None,
            });
    }

    /// Adds a value file; `name_hint` is its file name.
    pub fn add_value(&mut self, json: &Value, name_hint: Option<&str>, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        if let Some((name, def)) = build_value(json, name_hint, &place, &mut self.diags) {
            self.values.insert(name, def);
        }
    }

    /// Adds an environment file for environment `tag`.
    pub fn add_environment(&mut self, tag: &str, json: &Value, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        let values = build_environment(json, &place, &mut self.diags);
        self.environments.insert(tag.to_string(), values);
    }

    fn note_functions(&mut self, rule: &Rule) {
        let mut names = Vec::new();
        rule.expr
            .visit_functions(&mut |n| names.push(n.to_string()));
        for n in names {
            self.function_uses.push((n, rule.place.clone()));
        }
    }

    /// Builds everything added and returns the rule set, or every diagnostic when any is an
    /// error.
    pub fn finish(mut self) -> Result<RuleSet, LoadError> {
        let mut diags = std::mem::take(&mut self.diags);
        let mut data_sources = BTreeMap::new();
        for (name, input) in std::mem::take(&mut self.data_sources) {
            let ds = build_data_source(&name, input, &mut diags);
            data_sources.insert(name, ds);
        }

        // %function uses must name functions of the app.
        let mut uses = std::mem::take(&mut self.function_uses);
        for ds in data_sources.values() {
            collect_data_source_functions(ds, &mut uses);
        }
        if self.options.function_check != FunctionCheck::Off {
            let mut reported = HashSet::new();
            for (name, place) in uses {
                if self.functions.contains_key(&name)
                    || !reported.insert((name.clone(), place.clone()))
                {
                    continue;
                }
                let message = format!("function `{name}` is not defined in this app");
                let d = match self.options.function_check {
                    FunctionCheck::Error => Diagnostic::error("undefined-function", place, message),
                    _ => Diagnostic::warning("undefined-function", place, message),
                };
                diags.push(d.with_hint("define it under `functions/`"));
            }
        }

        let set = RuleSet {
            data_sources,
            services: self.services,
            functions: self.functions,
            values: self.values,
            environments: self.environments,
            warnings: Diagnostics::default(),
            origin: self.origin,
            limits: self.limits,
        };
        diags.extend(check_rule_set(&set, &self.limits));
        if diags.has_errors() {
            return Err(LoadError { diagnostics: diags });
        }
        Ok(RuleSet {
            warnings: diags,
            ..set
        })
    }
}

fn is_mongodb_type(t: &str) -> bool {
    matches!(t, "mongodb" | "mongodb-atlas")
}

fn is_datalake_type(t: &str) -> bool {
    matches!(
        t,
        "datalake" | "mongodb-datalake" | "mongodb-datafederation"
    )
}

fn build_data_source(name: &str, input: DataSourceInput, diags: &mut Diagnostics) -> DataSource {
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

/// Maps pre-2023 Flexible Sync `permissions` (spec §1.4, D5) onto the data source.
fn apply_legacy_sync(ds: &mut DataSource, legacy: &LegacySyncInput, diags: &mut Diagnostics) {
    let place = &legacy.place;
    let Some(m) = as_object(&legacy.permissions, "Sync `permissions`", place, diags) else {
        return;
    };
    unknown_keys(
        m,
        &["rules", "defaultRoles"],
        &[],
        "Sync `permissions`",
        place,
        diags,
    );
    let sync = ds.sync.clone();
    let sync = sync.as_ref();

    if let Some(v) = m.get("defaultRoles") {
        let ctx = RoleContext {
            sync,
            collection: None,
        };
        let roles = build_roles_in(
            v,
            ctx,
            RoleFormat::LegacySync,
            &place.key("defaultRoles"),
            diags,
        );
        if !roles.is_empty() {
            let default = ds.default_rule.get_or_insert_with(|| DefaultRule {
                place: place.key("defaultRoles"),
                ..DefaultRule::default()
            });
            if !default.roles.is_empty() {
                diags.warning(
                    "legacy-sync-permissions",
                    place.key("defaultRoles"),
                    format!(
                        "pre-2023 Sync `defaultRoles` replace the roles of {}",
                        default.place
                    ),
                );
            }
            default.roles = roles;
        }
    }

    let Some(rules) = m.get("rules") else {
        return;
    };
    let rp = place.key("rules");
    let Some(rules) = as_object(rules, "Sync `permissions.rules`", &rp, diags) else {
        return;
    };
    for (collection, list) in rules {
        let cp = rp.key(collection);
        let ctx = RoleContext {
            sync,
            collection: Some(collection),
        };
        let roles = build_roles_in(list, ctx, RoleFormat::LegacySync, &cp, diags);
        if roles.is_empty() {
            continue;
        }
        let Some(database) = &legacy.database else {
            diags.error(
                "missing-key",
                cp,
                "pre-2023 Sync type rules need the Sync configuration's `database_name`",
            );
            continue;
        };
        let key = (database.clone(), collection.clone());
        match ds.collections.get_mut(&key) {
            Some(existing) => {
                if !existing.roles.is_empty() {
                    diags.warning(
                        "legacy-sync-permissions",
                        cp.clone(),
                        format!(
                            "pre-2023 Sync rules for `{collection}` replace the roles of {}",
                            existing.place
                        ),
                    );
                }
                existing.roles = roles;
            }
            None => {
                ds.collections.insert(
                    key,
                    CollectionRules {
                        data_source: ds.name.clone(),
                        database: database.clone(),
                        collection: collection.clone(),
                        roles,
                        filters: Vec::new(),
                        schema: None,
                        place: cp,
                    },
                );
            }
        }
    }
}

fn collect_data_source_functions(ds: &DataSource, out: &mut Vec<(String, Place)>) {
    let mut roles_filters: Vec<(&[Role], &[super::model::Filter])> = Vec::new();
    if let Some(d) = &ds.default_rule {
        roles_filters.push((&d.roles, &d.filters));
    }
    for c in ds.collections.values() {
        roles_filters.push((&c.roles, &c.filters));
        if let Some(schema) = &c.schema {
            schema.visit_functions(&mut |n, place| out.push((n.to_string(), place.clone())));
        }
    }
    let push_rule = |r: &Rule, out: &mut Vec<(String, Place)>| {
        r.expr
            .visit_functions(&mut |n| out.push((n.to_string(), r.place.clone())));
    };
    for (roles, filters) in roles_filters {
        for role in roles {
            push_rule(&role.apply_when, out);
            if let Some(df) = &role.document_filters {
                df.read
                    .iter()
                    .chain(df.write.iter())
                    .for_each(|r| push_rule(r, out));
            }
            for r in [&role.read, &role.write, &role.insert, &role.delete]
                .into_iter()
                .flatten()
            {
                push_rule(r, out);
            }
            field_tree_functions(&role.fields, out);
        }
        for f in filters {
            push_rule(&f.apply_when, out);
            f.query
                .visit_functions(&mut |n| out.push((n.to_string(), f.place.key("query"))));
        }
    }
}

fn field_tree_functions(tree: &FieldTree, out: &mut Vec<(String, Place)>) {
    for (_, rule) in &tree.fields {
        for r in [&rule.permissions.read, &rule.permissions.write]
            .into_iter()
            .flatten()
        {
            r.expr
                .visit_functions(&mut |n| out.push((n.to_string(), r.place.clone())));
        }
        field_tree_functions(&rule.nested, out);
    }
    if let Some(add) = &tree.additional {
        for r in [&add.read, &add.write].into_iter().flatten() {
            r.expr
                .visit_functions(&mut |n| out.push((n.to_string(), r.place.clone())));
        }
    }
}
