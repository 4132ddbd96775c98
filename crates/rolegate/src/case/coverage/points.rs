//! Stage: the decision points of a rule set. Input: a validated [`RuleSet`]. Output: every
//! [`DecisionPoint`] of it, grouped by the rule file its places name, in file order.
//!
//! A decision point is one outcome of one rule expression that the evaluators decide with:
//! each role's `apply_when`, `document_filters.read` and `.write`, the document-level `read`,
//! `write`, `insert` and `delete`, every field rule's `read` and `write` at every level of
//! `fields` (nested ones included) and every `additional_fields`' `read` and `write`, each
//! filter's `apply_when`, Partition-Based Sync's `read` and `write`, each service rule's `when`
//! and a function's `can_evaluate`. Each has two outcomes (true and false), except a rule
//! written as a constant (`true`, `false`, `{}` and combinations of them), which can take only
//! one: only that one is a point, so full coverage is reachable. A permission the rules leave
//! out (absent, so its default applies) decides nothing and is not a point.
//!
//! The walk covers every [`Rule`] the reference evaluator and the query planner evaluate; the
//! module's tests check it on the conformance corpus (no evaluation outside the points).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{DecisionPoint, PointKind};
use crate::expr::Expr;
use crate::rules::{FieldPermissions, FieldTree, Filter, Role, Rule, RuleSet};

/// The decision points of `set`, by the file their places name.
pub(crate) fn decision_points(set: &RuleSet) -> BTreeMap<Arc<str>, Vec<DecisionPoint>> {
    let mut walk = Walk::default();
    for ds in set.data_sources.values() {
        if let Some(default) = &ds.default_rule {
            walk.roles(&default.roles);
            walk.filters(&default.filters);
        }
        for coll in ds.collections.values() {
            walk.roles(&coll.roles);
            walk.filters(&coll.filters);
        }
        if let Some(pbs) = &ds.partition_sync {
            walk.rule(&pbs.read, PointKind::PartitionRead, None);
            walk.rule(&pbs.write, PointKind::PartitionWrite, None);
        }
    }
    for rule in set.services.values().flatten() {
        walk.rule(&rule.when, PointKind::ServiceWhen, Some(&rule.name));
    }
    for function in set.functions.values() {
        if let Some(rule) = &function.can_evaluate {
            walk.rule(rule, PointKind::CanEvaluate, Some(&function.name));
        }
    }
    walk.found
}

/// The points found so far, without repeats.
#[derive(Default)]
struct Walk {
    found: BTreeMap<Arc<str>, Vec<DecisionPoint>>,
    seen: BTreeSet<(Arc<str>, String, bool)>,
}

impl Walk {
    fn roles(&mut self, roles: &[Role]) {
        for role in roles {
            let name = Some(role.name.as_str());
            self.rule(&role.apply_when, PointKind::ApplyWhen, name);
            if let Some(df) = &role.document_filters {
                self.opt(df.read.as_ref(), PointKind::DocumentFiltersRead, name);
                self.opt(df.write.as_ref(), PointKind::DocumentFiltersWrite, name);
            }
            self.opt(role.read.as_ref(), PointKind::Read, name);
            self.opt(role.write.as_ref(), PointKind::Write, name);
            self.opt(role.insert.as_ref(), PointKind::Insert, name);
            self.opt(role.delete.as_ref(), PointKind::Delete, name);
            self.tree(&role.fields, name);
        }
    }

    fn filters(&mut self, filters: &[Filter]) {
        for filter in filters {
            self.rule(&filter.apply_when, PointKind::Filter, Some(&filter.name));
        }
    }

    /// Every field rule of `tree` and of its nested levels (depth-limited at load time).
    fn tree(&mut self, tree: &FieldTree, role: Option<&str>) {
        for (_, rule) in &tree.fields {
            self.permissions(
                &rule.permissions,
                [PointKind::FieldRead, PointKind::FieldWrite],
                role,
            );
            self.tree(&rule.nested, role);
        }
        if let Some(additional) = &tree.additional {
            self.permissions(
                additional,
                [
                    PointKind::AdditionalFieldsRead,
                    PointKind::AdditionalFieldsWrite,
                ],
                role,
            );
        }
    }

    fn permissions(
        &mut self,
        p: &FieldPermissions,
        [read, write]: [PointKind; 2],
        role: Option<&str>,
    ) {
        self.opt(p.read.as_ref(), read, role);
        self.opt(p.write.as_ref(), write, role);
    }

    fn opt(&mut self, rule: Option<&Rule>, kind: PointKind, name: Option<&str>) {
        if let Some(rule) = rule {
            self.rule(rule, kind, name);
        }
    }

    /// The points of `rule`: both outcomes, or the only one a constant can take.
    fn rule(&mut self, rule: &Rule, kind: PointKind, name: Option<&str>) {
        let outcomes: &[bool] = match constant(&rule.expr) {
            Some(true) => &[true],
            Some(false) => &[false],
            None => &[true, false],
        };
        let file = rule.place.file.clone();
        for &outcome in outcomes {
            let key = (file.clone(), rule.place.json_path.clone(), outcome);
            if !self.seen.insert(key) {
                continue;
            }
            self.found
                .entry(file.clone())
                .or_default()
                .push(DecisionPoint {
                    path: rule.place.json_path.clone(),
                    kind,
                    outcome,
                    name: name.map(str::to_string),
                    hits: 0,
                });
        }
    }
}

/// The value of `expr` when it is written as a constant (literals, and `%and`/`%or`/`%nor`/
/// `%not` of constants), else `None`.
pub(crate) fn constant(expr: &Expr) -> Option<bool> {
    // INVARIANT: expressions are depth-limited at load time, so recursion is bounded.
    match expr {
        Expr::Bool(b) => Some(*b),
        Expr::All(items) => all_constant(items).map(|v| v.iter().all(|b| *b)),
        Expr::Any(items) => all_constant(items).map(|v| v.iter().any(|b| *b)),
        Expr::None(items) => all_constant(items).map(|v| !v.iter().any(|b| *b)),
        Expr::Not(inner) => constant(inner).map(|b| !b),
        Expr::Test { .. } => None,
    }
}

fn all_constant(items: &[Expr]) -> Option<Vec<bool>> {
    items.iter().map(constant).collect()
}
