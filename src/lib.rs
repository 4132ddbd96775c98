#![doc = include_str!("../README.md")]

pub mod case;
pub mod config;
pub mod context;
pub mod engine;
pub mod error;
pub mod expr;
pub mod outcome;
pub mod query;
pub mod reference;
pub mod rules;
pub mod schema;
pub mod value;

pub use context::{FunctionHost, RequestContext};
pub use engine::{Collection, ContextBuilder, PreparedRequest, Rules};
pub use error::{Diagnostic, LoadError};
pub use outcome::{ReadOutcome, WriteOutcome};
pub use query::QueryPlan;
