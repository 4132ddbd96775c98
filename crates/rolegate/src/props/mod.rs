//! Stage: property-based testing of an app's rules and the semantic diff of two rule sets
//! (feature `testing-gen`; `rolegate prop` and `rolegate diff`). Input: the loaded rules, a
//! property file (`docs/properties.md`) or a second rule set, a number of cases and a seed.
//! Output: per property a [`PropertyReport`] (passed, vacuous, or failed with a shrunk
//! [`Counterexample`], printable as a case for `rolegate test`); per collection a
//! [`DiffReport`] of the difference classes between the two rule sets.
//!
//! ```text
//! property file ──model──▶ CompiledProperty ─┐
//!                                             ├─ run: Generators (crate::generate) → proptest
//! Rules ──────────────────────────────────────┘        → decide → judge → shrink → report
//! old + new Rules ──diff──▶ generated cases → decide under both → difference classes
//! ```
//!
//! - [`model`]: the file format, and its compilation against the rules.
//! - [`decide`]: what one case's request gets (shared by both).
//! - [`run`]: checking a property.
//! - [`emit`]: a counterexample as a case and a request file.
//! - [`diff`]: the semantic diff.
//! - [`generic`]: the generic property, "a role without read never reveals a field".

pub mod decide;
pub mod diff;
pub mod emit;
pub mod generic;
pub mod model;
pub mod run;

pub use decide::Decision;
pub use diff::{
    DEFAULT_RULE_COLLECTION, DiffClass, DiffInputs, DiffReport, Difference, Side, diff_collection,
    namespaces,
};
pub use generic::generic_properties;
pub use model::{
    Claim, CompiledProperty, Expect, OneOrMany, PropAction, Property, PropertyError, PropertyFile,
    parse_properties,
};
pub use run::{Counterexample, PropertyOutcome, PropertyReport, RunOptions, check_property};
