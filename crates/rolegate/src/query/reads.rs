//! Stage: rule analysis for query planning, once per collection when the rules are compiled.
//! Input: the roles of one collection. Output: [`RuleFields`] — the top-level fields the roles
//! read (the store projection must keep them, so that rules decide on the stored document), and
//! the top-level fields that every role shows whole whenever it shows a document (client
//! predicates on them may be sent to the database without exposing anything hidden).
//!
//! Decisions (conservative: a wrong answer here may only widen the store projection or keep a
//! client predicate out of the store query):
//!
//! * **Fields the rules read**: the first segment of every `%%root.x...`/`%%prevRoot.x...`
//!   expansion (bare field names included) in every expression of every role — `apply_when`,
//!   `document_filters`, `read`, `write`, `insert`, `delete`, field rules at every level,
//!   `$elemMatch` bodies and `%function` arguments; plus the top-level name of every field rule
//!   (a field rule is evaluated only when its field is present, so dropping the field could
//!   change the decision). A bare `%%root`/`%%prevRoot` (anywhere, including as a `%function`
//!   argument), or an `additional_fields` rule that is not a literal `true`/`false`/`{}`
//!   (it is evaluated on every unlisted field), reads the whole document: [`FieldSet::All`].
//! * **Fields always shown whole**: a role with a `read` rule (whatever it is) or a literal
//!   `write: true` shows a document whole or not at all (spec §3.2: a defined document-level
//!   `read` either grants the document or, false with no `write`, withholds it), so every field
//!   qualifies; otherwise only fields whose own field rule has a literal `read: true` (parent
//!   overrides child, so their whole value is shown). The collection's set is the intersection
//!   over its roles; a collection without roles shows nothing, so every field qualifies.

use std::collections::BTreeSet;

use crate::expr::{Expr, Root};
use crate::rules::{FieldTree, Role, Rule};

/// A set of top-level field names, or every field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSet {
    /// Every field of the document.
    All,
    /// Only these top-level names.
    Only(BTreeSet<String>),
}

impl Default for FieldSet {
    fn default() -> Self {
        FieldSet::Only(BTreeSet::new())
    }
}

impl FieldSet {
    /// Whether the top-level field `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            FieldSet::All => true,
            FieldSet::Only(names) => names.contains(name),
        }
    }

    fn insert(&mut self, name: &str) {
        if let FieldSet::Only(names) = self {
            names.insert(name.to_string());
        }
    }

    fn intersect(self, other: FieldSet) -> FieldSet {
        match (self, other) {
            (FieldSet::All, x) | (x, FieldSet::All) => x,
            (FieldSet::Only(a), FieldSet::Only(b)) => {
                FieldSet::Only(a.intersection(&b).cloned().collect())
            }
        }
    }
}

/// What the query planner needs to know about a collection's roles (module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleFields {
    /// The top-level fields some rule reads ([`FieldSet::All`]: the whole document).
    pub read_by_rules: FieldSet,
    /// The top-level fields every role shows whole whenever it shows the document.
    pub always_shown: FieldSet,
}

/// What the system user's plans use: rules read nothing, every field is shown.
pub(crate) static SYSTEM_FIELDS: RuleFields = RuleFields {
    read_by_rules: FieldSet::Only(BTreeSet::new()),
    always_shown: FieldSet::All,
};

impl RuleFields {
    /// Analyses the roles of one collection.
    pub fn of_roles(roles: &[Role]) -> RuleFields {
        let mut read_by_rules = FieldSet::default();
        let mut always_shown = FieldSet::All;
        for role in roles {
            role.visit_rules(&mut |rule: &Rule| add_reads(&rule.expr, &mut read_by_rules));
            for (name, _) in &role.fields.fields {
                read_by_rules.insert(name);
            }
            if reads_every_field(&role.fields) {
                read_by_rules = FieldSet::All;
            }
            always_shown = always_shown.intersect(shown_whole(role));
        }
        RuleFields {
            read_by_rules,
            always_shown,
        }
    }
}

/// Adds the top-level document fields `expr` reads.
fn add_reads(expr: &Expr, set: &mut FieldSet) {
    expr.visit_expansions(&mut |e| {
        if matches!(e.root, Root::Root | Root::PrevRoot) {
            match e.path.first() {
                Some(first) => set.insert(first),
                None => *set = FieldSet::All,
            }
        }
    });
}

/// A literal `true`, `false` or `{}`.
fn is_literal(rule: &Rule) -> bool {
    match &rule.expr {
        Expr::Bool(_) => true,
        Expr::All(clauses) => clauses.is_empty(),
        _ => false,
    }
}

/// A literal `true` or `{}`.
fn is_literal_true(rule: &Rule) -> bool {
    match &rule.expr {
        Expr::Bool(b) => *b,
        Expr::All(clauses) => clauses.is_empty(),
        _ => false,
    }
}

/// Whether some `additional_fields` rule, at any level, is evaluated per field with a value that
/// could differ from field to field (or fail).
fn reads_every_field(tree: &FieldTree) -> bool {
    let additional = tree.additional.as_ref().is_some_and(|perms| {
        perms
            .read
            .iter()
            .chain(&perms.write)
            .any(|rule| !is_literal(rule))
    });
    additional
        || tree
            .fields
            .iter()
            .any(|(_, rule)| reads_every_field(&rule.nested))
}

/// The top-level fields `role` shows whole whenever it shows the document.
fn shown_whole(role: &Role) -> FieldSet {
    if role.read.is_some() || role.write.as_ref().is_some_and(is_literal_true) {
        return FieldSet::All;
    }
    FieldSet::Only(
        role.fields
            .fields
            .iter()
            .filter(|(_, rule)| rule.permissions.read.as_ref().is_some_and(is_literal_true))
            .map(|(name, _)| name.clone())
            .collect(),
    )
}
