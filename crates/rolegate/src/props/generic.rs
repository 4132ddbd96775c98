//! Stage: the generic property, "a role without read never reveals a field", for any rule file.
//! Input: the rules of one collection. Output: [`CompiledProperty`]s read from the rules
//! themselves (`rolegate prop --generic`, the corpus test):
//!
//! * for a role that grants no read anywhere — document-level `read` and `write` absent or
//!   literally `false`, and every field rule and `additional_fields` at every level likewise —
//!   "when this role decides, the document is not returned";
//! * for a role whose document-level `read` and `write` are absent or `false`, and a field it
//!   names whose own rule, every ancestor's rule and every rule below it are absent or `false`
//!   ("parent overrides child": an ancestor's grant would show it) — "when this role decides,
//!   the field is not returned".
//!
//! Only literal grants are looked at: an expression could hold, so a rule with one grants.

use super::model::{Claim, CompiledProperty, Expect, OneOrMany, PropAction, Property};
use crate::expr::Expr;
use crate::rules::{FieldPermissions, FieldTree, Role, Rule};

/// At most this many field properties per role.
const MAX_FIELDS_PER_ROLE: usize = 16;

/// True when a permission is absent or literally `false`.
fn never(rule: &Option<Rule>) -> bool {
    match rule {
        None => true,
        Some(r) => matches!(r.expr, Expr::Bool(false)),
    }
}

fn perms_never(p: &FieldPermissions) -> bool {
    never(&p.read) && never(&p.write)
}

/// True when nothing in `tree` (its fields, nested levels and `additional_fields`) grants read
/// or write.
fn tree_never(tree: &FieldTree) -> bool {
    // INVARIANT: field trees are depth-limited by the loader.
    tree.fields
        .iter()
        .all(|(_, r)| perms_never(&r.permissions) && tree_never(&r.nested))
        && tree.additional.as_ref().is_none_or(perms_never)
}

/// The fields of `tree` (dotted, under `prefix`) that nothing grants: their rule, their nested
/// rules, and no ancestor's (the caller walks only through ancestors that grant nothing).
fn hidden_fields(tree: &FieldTree, prefix: &str, out: &mut Vec<String>) {
    for (name, rule) in &tree.fields {
        if out.len() >= MAX_FIELDS_PER_ROLE {
            return;
        }
        if !perms_never(&rule.permissions) {
            continue;
        }
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if tree_never(&rule.nested) {
            out.push(path.clone());
        }
        hidden_fields(&rule.nested, &path, out);
    }
}

/// The generic properties of `namespace` under `roles` (module docs).
pub fn generic_properties(namespace: &str, roles: &[Role]) -> Vec<CompiledProperty> {
    let mut out = Vec::new();
    for role in roles {
        if !(never(&role.read) && never(&role.write)) {
            continue;
        }
        let mut push = |name: String, fields: Vec<String>| {
            let source = Property {
                name: name.clone(),
                collection: Some(namespace.to_string()),
                action: PropAction::Read,
                fields: (!fields.is_empty()).then(|| OneOrMany::Many(fields.clone())),
                where_: None,
                when: None,
                role: Some(OneOrMany::One(role.name.clone())),
                expect: Some(Expect::Denied),
                only_if: None,
                only_roles: None,
            };
            out.push(CompiledProperty {
                name,
                path: role.place.json_path.clone(),
                namespace: namespace.to_string(),
                action: PropAction::Read,
                fields: fields
                    .iter()
                    .map(|f| f.split('.').map(str::to_string).collect())
                    .collect(),
                where_: None,
                when: None,
                roles: Some(vec![role.name.clone()]),
                claim: Claim::Expect(Expect::Denied),
                source,
            });
        };
        if tree_never(&role.fields) {
            push(
                format!(
                    "role `{}` grants no read: it returns no document",
                    role.name
                ),
                Vec::new(),
            );
            continue;
        }
        let mut hidden = Vec::new();
        hidden_fields(&role.fields, "", &mut hidden);
        for f in hidden {
            push(
                format!(
                    "role `{}` grants no read of `{f}`: it never returns it",
                    role.name
                ),
                vec![f],
            );
        }
    }
    out
}
