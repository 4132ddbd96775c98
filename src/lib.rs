#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// The library never writes to stdout or stderr (a leftover debug print leaks rule internals into
// a host's logs and costs time on the hot path): what it has to say is in its return values.
// Printing is the binary's business (src/cli, src/main.rs). tests/library_output.rs checks
// the same on the source text.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

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
