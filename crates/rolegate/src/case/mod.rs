//! Conformance cases (`case-format.md`): parsing them, turning them into request contexts,
//! running them through an engine and judging the answers.
//!
//! ```text
//! case file ──load_case_file──▶ Vec<Case> ──run_case(engine)──▶ CaseResult
//!              (model)                       (load → context → engine → compare)
//! ```
//!
//! - [`model`]: the serde mirror of a case (`deny_unknown_fields`).
//! - [`context`]: `user` + `request` → [`RequestContext`](crate::context::RequestContext).
//! - [`load`]: `rules` → [`RuleSet`](crate::rules::RuleSet).
//! - [`engine`]: the engine seam ([`EngineChoice`], [`CaseEngine`]).
//! - [`run`]: one case → [`CaseResult`].
//! - [`filters`]: `filters` cases (query plan and in-memory run).
//! - [`call`]: `call` cases (a whole operation on an in-memory store).
//! - [`compare`](mod@compare): expected vs actual.
//! - [`coverage`]: which decision points of the rules the cases reached (`test --coverage`).

pub mod call;
pub mod compare;
pub mod context;
pub mod coverage;
pub mod engine;
pub mod filters;
pub mod load;
pub mod model;
pub mod run;

pub use compare::Mismatch;
pub use engine::EngineChoice;
pub use model::{Action, Case, CaseRequest, Expected};
pub use run::{CaseError, CaseFileError, CaseResult, load_case_file, parse_cases, run_case};
