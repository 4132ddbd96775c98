//! Stage: property files (`docs/properties.md`). Input: the JSON of a property file. Output: the
//! serde mirror ([`PropertyFile`], [`Property`], `deny_unknown_fields` at every level), then,
//! against the loaded rules, [`CompiledProperty`]s: the namespace resolved, the `where` query
//! and the `when`/`only_if` expressions parsed, the roles named checked — or every problem with
//! its JSON path ([`PropertyError`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::Rules;
use crate::error::{Diagnostics, Place, did_you_mean};
use crate::expr::{Dialect, Expr, Site, parse_expr};
use crate::value::ejson::document_from_json;

/// The most segments a field path of a property may have.
pub const MAX_FIELD_DEPTH: usize = 32;

/// A property file: properties of one or more collections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyFile {
    /// The collection of every property that names none (`db.coll` or `data_source/db.coll`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The properties, checked in order.
    pub properties: Vec<Property>,
}

/// One or several names or paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The names, in order.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// What a property is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropAction {
    /// Reading a stored document (its query plan's filters included).
    Read,
    /// Inserting a new document.
    Insert,
    /// Updating a stored document.
    Update,
    /// Deleting a stored document.
    Delete,
}

impl PropAction {
    /// The spelling of property files (and of `rolegate eval --action`).
    pub fn as_str(self) -> &'static str {
        match self {
            PropAction::Read => "read",
            PropAction::Insert => "insert",
            PropAction::Update => "update",
            PropAction::Delete => "delete",
        }
    }
}

impl fmt::Display for PropAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `expect`: the action is granted, or refused, in every case in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Granted (read: visible, or each of `fields` the document has is shown; write: permitted by
    /// the rules).
    Allowed,
    /// Refused (read: withheld, or none of `fields` is shown; write: refused by the rules).
    Denied,
}

/// One property, as written (`docs/properties.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Property {
    /// Unique in its file.
    pub name: String,
    /// The collection (else the file's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The action.
    pub action: PropAction,
    /// The fields the claim is about (dotted paths): read claims judge these fields; an update
    /// changes exactly these; an insert's document has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<OneOrMany>,
    /// An MQL query over `{"user", "document", "post", "request"}`: the cases it selects are in
    /// scope.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<Value>,
    /// A rule expression (`%%user`, `%%root`, `%%prevRoot`, ...): the cases where it holds are
    /// in scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Value>,
    /// The cases whose deciding role is one of these are in scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<OneOrMany>,
    /// Claim: granted, or refused, in every case in scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// Claim: whenever granted, this rule expression holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_if: Option<Value>,
    /// Claim: whenever granted, the deciding role is one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_roles: Option<OneOrMany>,
}

/// What a property claims of every case in scope.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// `expect`.
    Expect(Expect),
    /// `only_if`: the expression holds whenever the action is granted.
    OnlyIf(Expr),
    /// `only_roles`: the deciding role is one of these whenever the action is granted.
    OnlyRoles(Vec<String>),
}

/// A property ready to check: its collection resolved, its queries and expressions parsed.
#[derive(Debug, Clone)]
pub struct CompiledProperty {
    /// The property's name.
    pub name: String,
    /// Where it is in its file (`properties[2]`).
    pub path: String,
    /// The collection, as written (`db.coll` or `data_source/db.coll`).
    pub namespace: String,
    /// The action.
    pub action: PropAction,
    /// The fields (segments of each dotted path).
    pub fields: Vec<Vec<String>>,
    /// `where`, as BSON, and parsed.
    pub where_: Option<(bson::Document, Expr)>,
    /// `when`, parsed.
    pub when: Option<Expr>,
    /// `role`.
    pub roles: Option<Vec<String>>,
    /// The claim.
    pub claim: Claim,
    /// The property as written.
    pub source: Property,
}

/// A property file that cannot be used: the JSON path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{path}`: {message}")]
pub struct PropertyError {
    /// Where in the file (`properties[1].only_roles[0]`).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// A hint, when one helps (a role name that is close).
    pub hint: Option<String>,
}

impl PropertyError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        PropertyError {
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }
}

/// Parses a property file's JSON (the file must be an object; every key is checked).
pub fn parse_properties(json: &Value) -> Result<PropertyFile, PropertyError> {
    serde_json::from_value(json.clone()).map_err(|e| PropertyError::new("", e.to_string()))
}

impl PropertyFile {
    /// Checks every property against `rules` and compiles it; every problem is returned, each
    /// with its JSON path.
    pub fn compile(&self, rules: &Rules) -> Result<Vec<CompiledProperty>, Vec<PropertyError>> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for (i, p) in self.properties.iter().enumerate() {
            let at = format!("properties[{i}]");
            if names.contains(&p.name.as_str()) {
                errors.push(PropertyError::new(
                    format!("{at}.name"),
                    format!("the name `{}` is used twice", p.name),
                ));
            }
            names.push(&p.name);
            match compile_one(p, &at, self.collection.as_deref(), rules) {
                Ok(c) => out.push(c),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

fn compile_one(
    p: &Property,
    at: &str,
    default_collection: Option<&str>,
    rules: &Rules,
) -> Result<CompiledProperty, Vec<PropertyError>> {
    let mut errors = Vec::new();
    let namespace = match p.collection.as_deref().or(default_collection) {
        Some(ns) => ns.to_string(),
        None => {
            errors.push(PropertyError::new(
                format!("{at}.collection"),
                "no collection: give `collection` here or at the top of the file",
            ));
            String::new()
        }
    };
    let mut role_names: Vec<String> = Vec::new();
    if !namespace.is_empty() {
        match rules.collection(&namespace) {
            Ok(c) => role_names = c.policy().roles.iter().map(|r| r.name.clone()).collect(),
            Err(e) => errors.push(PropertyError::new(
                format!("{at}.collection"),
                e.to_string(),
            )),
        }
    }
    let check_roles = |key: &str, names: &[String], errors: &mut Vec<PropertyError>| {
        for (j, n) in names.iter().enumerate() {
            if !namespace.is_empty() && !role_names.contains(n) && !role_names.is_empty() {
                let mut e = PropertyError::new(
                    format!("{at}.{key}[{j}]"),
                    format!("no role `{n}` governs `{namespace}`"),
                );
                let candidates: Vec<&str> = role_names.iter().map(String::as_str).collect();
                e.hint = did_you_mean(n, &candidates).map(|s| format!("did you mean `{s}`?"));
                errors.push(e);
            }
        }
    };
    let fields: Vec<Vec<String>> = p
        .fields
        .as_ref()
        .map(OneOrMany::to_vec)
        .unwrap_or_default()
        .iter()
        .map(|f| f.split('.').map(str::to_string).collect())
        .collect();
    for (j, f) in fields.iter().enumerate() {
        if f.iter().any(String::is_empty) || f.len() > MAX_FIELD_DEPTH {
            errors.push(PropertyError::new(
                format!("{at}.fields[{j}]"),
                format!("a field is a dotted path of at most {MAX_FIELD_DEPTH} non-empty names"),
            ));
        }
    }
    if p.action == PropAction::Delete && !fields.is_empty() {
        errors.push(PropertyError::new(
            format!("{at}.fields"),
            "`fields` is not used by `delete`",
        ));
    }
    let where_ = match &p.where_ {
        None => None,
        Some(v) => match document_from_json(v) {
            Ok(doc) => match crate::query::memory::compile_query(&doc) {
                Ok(expr) => Some((doc, expr)),
                Err(e) => {
                    errors.push(PropertyError::new(
                        format!("{at}.where"),
                        format!("not a MongoDB query: {e}"),
                    ));
                    None
                }
            },
            Err(m) => {
                errors.push(PropertyError::new(format!("{at}.where"), m));
                None
            }
        },
    };
    let when = p
        .when
        .as_ref()
        .and_then(|v| expression(v, &format!("{at}.when"), &mut errors));
    let roles = p.role.as_ref().map(OneOrMany::to_vec);
    if let Some(r) = &roles {
        check_roles("role", r, &mut errors);
    }
    let claims = [
        p.expect.is_some(),
        p.only_if.is_some(),
        p.only_roles.is_some(),
    ];
    let claim = match claims.iter().filter(|c| **c).count() {
        1 => {
            if let Some(e) = p.expect {
                Some(Claim::Expect(e))
            } else if let Some(v) = &p.only_if {
                expression(v, &format!("{at}.only_if"), &mut errors).map(Claim::OnlyIf)
            } else {
                let names = p
                    .only_roles
                    .as_ref()
                    .map(OneOrMany::to_vec)
                    .unwrap_or_default();
                check_roles("only_roles", &names, &mut errors);
                Some(Claim::OnlyRoles(names))
            }
        }
        0 => {
            errors.push(PropertyError::new(
                at,
                "no claim: give one of `expect`, `only_if`, `only_roles`",
            ));
            None
        }
        _ => {
            errors.push(PropertyError::new(
                at,
                "more than one claim: give only one of `expect`, `only_if`, `only_roles`",
            ));
            None
        }
    };
    match claim {
        Some(claim) if errors.is_empty() => Ok(CompiledProperty {
            name: p.name.clone(),
            path: at.to_string(),
            namespace,
            action: p.action,
            fields,
            where_,
            when,
            roles,
            claim,
            source: p.clone(),
        }),
        _ => Err(errors),
    }
}

/// Parses a rule expression of a property (as a role's permission: `%%user`, `%%root`,
/// `%%prevRoot`, `%%request`, `%%values`, `%%environment`, `%function`).
fn expression(v: &Value, at: &str, errors: &mut Vec<PropertyError>) -> Option<Expr> {
    let mut diags = Diagnostics::default();
    let expr = parse_expr(
        v,
        Dialect::MongoDb,
        Site::RolePermission,
        &Place::file(at.to_string()),
        &mut diags,
    );
    let mut bad = false;
    for d in diags.errors() {
        bad = true;
        let path = if d.place.json_path.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{}", d.place.json_path)
        };
        errors.push(PropertyError::new(path, d.message.clone()));
    }
    (!bad).then_some(expr)
}
