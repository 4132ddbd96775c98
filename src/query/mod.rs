//! Filters and queries (spec §4): which filters apply to a request, the client query merged with
//! theirs (`$and`, canonical form), the merged projection ([`plan`]), and an in-memory MongoDB
//! query and projection evaluator that runs a merged plan over documents ([`memory`]).
//!
//! Pipeline position: filters + client query/projection + `RequestContext`
//! ──[`plan::plan`]──▶ [`QueryPlan`] ──(database, or [`memory::run`])──▶ documents for the roles.

pub mod memory;
pub mod plan;

pub use memory::{RunError, compile_query, matches, project, run};
pub use plan::{PlanError, QueryPlan, plan};
