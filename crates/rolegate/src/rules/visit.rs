//! Walks every expression of a validated rule set: role slots at every field level, filters
//! (`apply_when` and query operands), Partition-Based Sync permissions, service rules and
//! `can_evaluate`. Used to find what a rule set refers to (for example which `%%values` it reads,
//! so that only referenced secrets must be supplied).
//!
//! Not covered: schema `validate` expressions, which the schema keeps private.

use std::collections::BTreeSet;

use super::model::{DocumentFilters, FieldPermissions, FieldTree, Role, Rule, RuleSet};
use crate::expr::{Expansion, Root};

impl FieldPermissions {
    fn visit_rules<'a>(&'a self, f: &mut dyn FnMut(&'a Rule)) {
        self.read.iter().chain(&self.write).for_each(f);
    }
}

impl DocumentFilters {
    fn visit_rules<'a>(&'a self, f: &mut dyn FnMut(&'a Rule)) {
        self.read.iter().chain(&self.write).for_each(f);
    }
}

impl FieldTree {
    /// Calls `f` on every rule of this level and of every nested level.
    pub fn visit_rules<'a>(&'a self, f: &mut dyn FnMut(&'a Rule)) {
        // INVARIANT: field trees are depth-limited at load time, so recursion is bounded.
        for (_, rule) in &self.fields {
            rule.permissions.visit_rules(f);
            rule.nested.visit_rules(f);
        }
        if let Some(additional) = &self.additional {
            additional.visit_rules(f);
        }
    }
}

impl Role {
    /// Calls `f` on every expression of the role.
    pub fn visit_rules<'a>(&'a self, f: &mut dyn FnMut(&'a Rule)) {
        f(&self.apply_when);
        if let Some(df) = &self.document_filters {
            df.visit_rules(f);
        }
        for rule in [&self.read, &self.write, &self.insert, &self.delete]
            .into_iter()
            .flatten()
        {
            f(rule);
        }
        self.fields.visit_rules(f);
    }
}

/// Which `%%values` a rule set reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueRefs {
    /// Some expression reads `%%values` as a whole.
    All,
    /// The names read as `%%values.<name>...`.
    Names(BTreeSet<String>),
}

impl ValueRefs {
    pub fn contains(&self, name: &str) -> bool {
        match self {
            ValueRefs::All => true,
            ValueRefs::Names(names) => names.contains(name),
        }
    }
}

impl RuleSet {
    /// Calls `f` on every expansion of every expression (roles, filters, PBS, services, functions).
    pub fn visit_expansions<'a>(&'a self, f: &mut dyn FnMut(&'a Expansion)) {
        let mut on_rule = |rule: &'a Rule| rule.expr.visit_expansions(f);
        for ds in self.data_sources.values() {
            let default = ds.default_rule.iter().map(|d| (&d.roles, &d.filters));
            let collections = ds.collections.values().map(|c| (&c.roles, &c.filters));
            for (roles, filters) in default.chain(collections) {
                roles.iter().for_each(|r| r.visit_rules(&mut on_rule));
                for filter in filters {
                    on_rule(&filter.apply_when);
                }
            }
            if let Some(pbs) = &ds.partition_sync {
                on_rule(&pbs.read);
                on_rule(&pbs.write);
            }
        }
        self.services
            .values()
            .flatten()
            .for_each(|s| on_rule(&s.when));
        self.functions
            .values()
            .filter_map(|c| c.can_evaluate.as_ref())
            .for_each(&mut on_rule);
        for ds in self.data_sources.values() {
            let default = ds.default_rule.iter().flat_map(|d| &d.filters);
            for filter in default.chain(ds.collections.values().flat_map(|c| &c.filters)) {
                filter.query.visit_expansions(f);
            }
        }
    }

    /// The `%%values` this rule set reads.
    pub fn referenced_values(&self) -> ValueRefs {
        let mut names = BTreeSet::new();
        let mut all = false;
        self.visit_expansions(&mut |e| {
            if e.root == Root::Values {
                match e.path.first() {
                    Some(name) => {
                        names.insert(name.clone());
                    }
                    None => all = true,
                }
            }
        });
        if all {
            ValueRefs::All
        } else {
            ValueRefs::Names(names)
        }
    }
}
