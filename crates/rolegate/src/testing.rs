//! Policy tests: the conformance-case format of `rolegate test` (see the repository's
//! `docs/case-format.md`). Input: case files. Output: one [`CaseResult`] per case, judged against
//! its expected outcome through the chosen engine ([`EngineChoice`]).
//!
//! ```text
//! case file ──load_case_file──▶ Vec<Case> ──run_case(engine)──▶ CaseResult
//! ```
//!
//! The request side of a case (`user` + `request`) is also how `rolegate eval` and `bench` read
//! their user and request files: [`request_context`], [`add_app_values`], [`to_document`].
//!
//! With the cargo feature **`testing-gen`** (off by default, so that an embedder's build does
//! not compile proptest; the `rolegate` binary turns it on), this module also holds what
//! `rolegate prop` and `rolegate diff` run:
//!
//! - `Generators`: proptest strategies of `%%user` objects, requests, documents and updates
//!   derived from an app's rules (its paths, the constants its rules compare, its values, its
//!   schema, and edge values), with `ContextTemplate` to make each case's request context —
//!   for Rust users who write their own properties, with shrinking (an example is on
//!   `Generators`);
//! - property files (`docs/properties.md`): `parse_properties`, `PropertyFile::compile`,
//!   `check_property` (a `PropertyReport`: cases, scope, roles reached, and a shrunk
//!   `Counterexample` that prints as a case of this format), and `generic_properties` ("a role
//!   without read never reveals a field");
//! - the semantic diff of two rule sets: `diff_collection`, `namespaces` (a `DiffReport` of
//!   difference classes, each with a minimal example).

pub use crate::case::context::{InputError, add_app_values, request_context, to_document};
pub use crate::case::coverage::{Coverage, CoveredFile, DecisionPoint, PointKind, percent};
pub use crate::case::model::{
    CaseRules, Environment, FunctionMock, FunctionMocks, Mode, Operation, OperationKind,
};
pub use crate::case::{
    Action, Case, CaseError, CaseFileError, CaseRequest, CaseResult, EngineChoice, Expected,
    Mismatch, load_case_file, parse_cases, run_case,
};

pub use crate::config::layout::app_relative;
pub use crate::error::did_you_mean;

#[cfg(feature = "testing-gen")]
pub use crate::generate::{
    Change, ContextTemplate, FunctionCall, GenCase, GenHost, GenRequest, GeneratorBuilder,
    Generators,
};
#[cfg(feature = "testing-gen")]
pub use crate::props::{
    Claim, CompiledProperty, Counterexample, DEFAULT_RULE_COLLECTION, Decision, DiffClass,
    DiffInputs, DiffReport, Difference, Expect, OneOrMany, PropAction, Property, PropertyError,
    PropertyFile, PropertyOutcome, PropertyReport, RunOptions, Side, check_property,
    diff_collection, generic_properties, namespaces, parse_properties,
};
