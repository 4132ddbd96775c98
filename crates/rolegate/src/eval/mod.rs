//! Stage: the compiled engine's evaluation. Input: a [`crate::compile::Program`], a request
//! context, documents (`&bson::RawDocument` on the fast path, `bson::Document` too). Output:
//! read decisions (role, visibility, the redacted document as raw BSON or as a `Document`) and
//! write outcomes, equal to the reference evaluator's.
//!
//! ```text
//! Program ──prepare::Prepared::new(ctx)──▶ Prepared (lazy request slots, role-selection plan)
//!   per document: doc::DocEval (field cache in Scratch) ──select──▶ role
//!                  ──read::read_level / redact_raw / redact_owned──▶ visible + redacted
//!                  ──write::decide──▶ WriteOutcome
//! ```
//!
//! - [`raw`]: raw BSON elements and values (byte ranges, no allocation).
//! - [`value`]: comparisons, matches and path resolution over raw and owned values.
//! - [`prepare`]: per-request slots and plan.
//! - [`doc`]: node evaluation and role selection for one document.
//! - [`fast`]: read decisions without the node evaluator, for the common shape of role
//!   selection (top-level equality tests) with request-settled read levels.
//! - [`read`]: read decisions and redaction (raw and owned).
//! - [`write`]: write decisions.

pub(crate) mod doc;
pub(crate) mod fast;
pub(crate) mod prepare;
pub(crate) mod raw;
pub(crate) mod read;
pub(crate) mod value;
pub(crate) mod write;
