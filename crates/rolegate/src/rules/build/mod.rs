//! Stage: raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet).
//!
//! Input: the `serde_json::Value` of each rule-bearing file as [`crate::config`] reads it (or
//! single objects from a conformance case), with the [`Place`](crate::error::Place) it came
//! from.
//! Output: the validated model ([`Role`](crate::rules::Role), [`Filter`](crate::rules::Filter),
//! [`CollectionRules`](crate::rules::CollectionRules), [`DefaultRule`](crate::rules::DefaultRule),
//! [`ServiceRule`](crate::rules::ServiceRule), [`FunctionConfig`](crate::rules::FunctionConfig),
//! ...), assembled into a [`RuleSet`](crate::rules::RuleSet) by [`RuleSetBuilder`]. Every problem of every file goes to
//! [`Diagnostics`](crate::error::Diagnostics); a build with an error fails with
//! [`LoadError`](crate::error::LoadError) carrying all of them (errors and warnings).
//!
//! Two levels of API:
//!
//! * `build_*` functions turn one JSON object into one model value, pushing diagnostics.
//! * [`RuleSetBuilder`] collects raw inputs in any order and builds them in [`RuleSetBuilder::finish`],
//!   where the order matters: Sync settings are known before roles are parsed (they pick the
//!   expression [`Site`](crate::expr::Site)s), schemas are attached to their collection,
//!   pre-2023 Sync permissions are mapped, and `%function` uses are checked against the app's
//!   functions.
//!
//! (The unit test `the_builder_assembles_sync_before_roles` in `rules/tests/validation.rs` shows
//! the builder on a Flexible Sync collection.)
//!
//! # The files of this folder, by what they build
//!
//! | file | builds |
//! | --- | --- |
//! | `builder.rs` | the app assembly: [`RuleSetBuilder`] and [`BuildOptions`] |
//! | `data_source.rs` | one data source from its collected inputs (rule files, schemas, Sync) |
//! | `rule_files.rs` | a collection's rule object, a `default_rule.json`, a schema |
//! | `roles.rs` | roles and their field trees |
//! | `sync_compat.rs` | the Sync-compatibility check of a role (spec §3.6) |
//! | `filters.rs` | filters and projections |
//! | `sync.rs` | Flexible Sync settings, Partition-Based Sync permissions, pre-2023 Sync permissions |
//! | `services.rs` | third-party service rules |
//! | `functions.rs` | function configurations, `can_evaluate`, the `%function` check |
//! | `values.rs` | values, secrets and environments |
//! | `keys.rs` | unknown-key warnings with their did-you-mean hints |
//! | `shared.rs` | typed reads of JSON values and names, used by every builder |
//!
//! Dependencies point one way: `builder` → `data_source` → `rule_files` / `sync` → `roles` →
//! `sync_compat`, and every builder → `keys`, `shared`. Each file's docs list the decisions it
//! takes where the spec is silent.

mod app;
mod builder;
mod data_source;
mod filters;
mod functions;
mod keys;
mod roles;
mod rule_files;
mod services;
mod shared;
mod sync;
mod sync_compat;
mod values;

pub use builder::{BuildOptions, RuleSetBuilder};
pub use functions::FunctionCheck;

// The single-object builders, for the unit tests of `rules/tests/`.
#[cfg(test)]
pub use filters::build_filter;
#[cfg(test)]
pub use functions::build_function_config;
#[cfg(test)]
pub use roles::{RoleContext, build_role};
#[cfg(test)]
pub use rule_files::{build_collection_rules, build_default_rule};
#[cfg(test)]
pub use services::build_service_rule;
#[cfg(test)]
pub use values::build_value;
