//! rolegate against Cedar (`cedar-policy`) and Rego (`regorus`) on the same inputs, in the same
//! process: W1 (owner / shared / public, field-level) and W3 (10 to 10,000 roles) of the
//! benchmark workloads, written as each engine's users would write them.
//!
//! - [`workloads`]: the shared generator of `benches/workloads/mod.rs` (included, not copied);
//! - [`data`]: the committed rule files and users, and the generated documents as raw BSON;
//! - [`native`]: rolegate — load and compile a rule file, build the request context;
//! - [`cedar`]: the Cedar policies and the entities and requests built per document;
//! - [`rego`]: the Rego policies and the input built per document;
//! - [`setup`]: the three engines of a workload, ready for one request;
//! - [`agree`]: the equality check — the three engines give the same decision (and the same
//!   readable fields) on every generated input;
//! - [`report`]: the medians from `target/criterion`, as a Markdown table and an SVG chart.
//!
//! The timed loops are in `benches/peers.rs`; the report is `src/bin/peers-report.rs`.

#[path = "../../../crates/rolegate/benches/workloads/mod.rs"]
pub mod workloads;

pub mod agree;
pub mod cedar;
pub mod data;
pub mod native;
pub mod rego;
pub mod report;
pub mod setup;
