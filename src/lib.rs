#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod case;
mod compile;
pub mod config;
pub mod context;
pub mod engine;
pub mod error;
mod eval;
pub mod expr;
pub mod limits;
pub mod lint;
pub mod outcome;
pub mod query;
pub mod reference;
pub mod rules;
pub mod schema;
pub mod steps;
pub mod value;

pub use context::{FunctionHost, RequestContext};
pub use engine::{
    Collection, ContextBuilder, EngineKind, PlannedRead, PreparedRequest, RawDecision, Rules,
    Scratch,
};
pub use error::{Diagnostic, LoadError};
pub use outcome::{ReadOutcome, WriteOutcome};
pub use query::QueryPlan;
