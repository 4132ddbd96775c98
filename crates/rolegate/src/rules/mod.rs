//! The validated rule set: the model of an app's rules after loading ([`RuleSet`]: data
//! sources, collections, roles, field rules, filters, schemas, Sync and service rules, values,
//! functions) with the expression trees of its rules ([`Expr`]); its construction from raw rule
//! JSON, with every validation error and warning, is internal to the loader.
//!
//! Read it to inspect what was loaded ([`Rules::rule_set`](crate::Rules::rule_set)); decisions are
//! made by [`PreparedRequest`](crate::PreparedRequest).

pub(crate) mod build;
mod model;
#[cfg(test)]
mod tests;
pub(crate) mod visit;

pub use crate::expr::{
    CmpOp, Dependency, ElemMatch, Expansion, Expr, Op, Operand, Predicate, RegexSpec, Root,
    TypeSpec,
};
pub use crate::schema::{Schema, SchemaViolation};
pub use model::*;
