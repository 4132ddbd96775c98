//! Stage: startup report. Input: the app's rule set. Output: each collection (and each data
//! source's default rule) whose rules call `%function`, with the function names: the server
//! supplies no function host, so those expressions fail and deny. `serve` logs one warning per
//! collection.

use std::collections::BTreeSet;

use rolegate::RuleSet;
use rolegate::rules::{Filter, Role};

/// Each `data_source/database.collection` (or `data_source/(default rule)`) whose roles,
/// filters or schema call `%function`, with the sorted function names.
pub fn rules_calling_functions(set: &RuleSet) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (name, ds) in &set.data_sources {
        if let Some(d) = &ds.default_rule {
            let mut names = BTreeSet::new();
            walk(&d.roles, &d.filters, &mut names);
            if !names.is_empty() {
                out.push((
                    format!("{name}/(default rule)"),
                    names.into_iter().collect(),
                ));
            }
        }
        for c in ds.collections.values() {
            let mut names = BTreeSet::new();
            walk(&c.roles, &c.filters, &mut names);
            if let Some(schema) = &c.schema {
                schema.visit_functions(&mut |n, _| {
                    names.insert(n.to_string());
                });
            }
            if !names.is_empty() {
                out.push((
                    format!("{name}/{}.{}", c.database, c.collection),
                    names.into_iter().collect(),
                ));
            }
        }
    }
    out
}

fn walk(roles: &[Role], filters: &[Filter], names: &mut BTreeSet<String>) {
    for role in roles {
        role.visit_rules(&mut |rule| {
            rule.expr.visit_functions(&mut |n| {
                names.insert(n.to_string());
            });
        });
    }
    for filter in filters {
        filter.apply_when.expr.visit_functions(&mut |n| {
            names.insert(n.to_string());
        });
        filter.query.visit_functions(&mut |n| {
            names.insert(n.to_string());
        });
    }
}
