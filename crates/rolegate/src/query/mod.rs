//! Filters and queries (spec §4): which filters apply to a request, what to send to the database
//! and what to apply to each stored document it returns ([`mod@plan`]), what a collection's rules
//! read ([`reads`]), and an in-memory MongoDB query and projection evaluator ([`memory`]) that
//! plays the database's part (and evaluates client queries on redacted documents).
//!
//! Pipeline position: filters + client query/projection + `RequestContext`
//! ──[`plan::plan`]──▶ [`QueryPlan`] ──(database, or [`memory::run`]: store query and
//! projection)──▶ stored documents ──[`crate::PreparedRequest::read_for`]──▶ decided, redacted,
//! client-filtered and projected documents.

pub mod memory;
pub mod plan;
pub mod reads;
pub mod residual;
#[cfg(test)]
mod tests;

pub use memory::RunError;
#[cfg(test)]
pub use plan::plan;
pub use plan::{PlanError, QueryPlan};
pub use reads::RuleFields;
pub use residual::Residual;
