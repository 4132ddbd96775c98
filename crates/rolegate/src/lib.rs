//! rolegate runs MongoDB Atlas App Services (Realm / Stitch) data-access rules — roles chosen
//! per document by `apply_when`, field-level `read`/`write`, filters merged into every request,
//! `%%user`/`%%root`/`%%prevRoot` expressions, schema validation — and gives, per request and per
//! document, the decisions App Services made.
//!
//! # The pipeline
//!
//! 1. **Load**: [`Rules::load`] reads an exported app directory (or one rule file), validates it
//!    into a [`RuleSet`] and compiles it; [`Rules::load_with`] takes
//!    [`LoadOptions`] (limits, strictness). [`Rules`] is immutable, `Send + Sync` and cheap to
//!    clone: keep one in your application state.
//! 2. **Collection**: [`Rules::collection`] resolves `"db.coll"` (or `"data_source/db.coll"`) once
//!    into a [`Collection`] handle.
//! 3. **Request**: [`Collection::prepare`] takes the [`RequestContext`] of one request (built with
//!    [`Rules::context`]: the `%%user` object from verified credentials, values, environment,
//!    host functions) and returns a [`PreparedRequest`]; everything that depends only on the
//!    request is evaluated here, once.
//! 4. **Decide**: a read goes [`PreparedRequest::query_plan`] → the database ([`QueryPlan`]'s
//!    `store_query` and `store_projection`) → [`PreparedRequest::read_for`] per stored document
//!    ([`PlannedRead`]); writes are [`PreparedRequest::insert`], [`update`](PreparedRequest::update)
//!    and [`delete`](PreparedRequest::delete) ([`WriteOutcome`]); the raw-BSON fast path is
//!    [`PreparedRequest::read_raw`] / [`redact_raw`](PreparedRequest::redact_raw); Device Sync
//!    sessions and uploads are [`PreparedRequest::sync_session`] and
//!    [`sync_write`](PreparedRequest::sync_write).
//!
//! Every refusal has two views: the detailed one (the outcome's `error` and `explanation`, the
//! `Display` text of errors), for logs — it may quote values the user cannot see — and the
//! client-safe one, [`ClientError`] from `client_error()`, a code and a fixed message.
//!
//! # Example
//!
//! The example app of the repository (`examples/tasks-app`), as Alice, a team member:
//!
//! ```rust
//! use bson::doc;
//! use rolegate::Rules;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Load and compile once; `Rules` is immutable, Send + Sync, and cheap to clone.
//! # let app = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/tasks-app");
//! # let rules = Rules::load(app)?;
//! # /*
//! let rules = Rules::load("examples/tasks-app")?;
//! # */
//! let tasks = rules.collection("taskboard.tasks")?;
//!
//! // Per request: the %%user object (values, environment, secrets and host functions go here too).
//! let alice = rules
//!     .context()
//!     .user(doc! { "id": "66a11ce0000000000000000a", "type": "normal",
//!                  "data": {}, "custom_data": { "isAdmin": false, "team": "platform" } })
//!     .build()?;
//! let request = tasks.prepare(&alice);
//!
//! // The plan of a read: what to send to MongoDB — every applicable filter's query, and the client
//! // clauses on fields that every role shows whole (`status` here; a clause on a field some role
//! // hides is only ever evaluated on what the role may see) — and a projection that keeps every
//! // field the rules read. The client's query and projection stay inside the plan.
//! let plan = request.query_plan(Some(&doc! { "status": "todo" }), Some(&doc! { "title": 1 }))?;
//! assert_eq!(plan.applied, ["hideArchivedFromNonAdmins"]);
//! // With pushdown (the default) the read residual joins it: the documents one of Alice's roles
//! // could show (hers, those she collaborates on, her team's), exact here.
//! let residual = plan.residual().ok_or("no residual")?;
//! assert!(residual.is_exact());
//! let shown = residual.query().ok_or("no residual query")?.clone();
//! assert_eq!(plan.store_query,
//!            doc! { "$and": [{ "status": "todo" }, { "archived": { "$ne": true } }, shown] });
//!
//! // Per stored document: the rules decide on the document as stored, then the client's query
//! // and projection apply to the redacted document. This is the only way to apply them.
//! let stored = doc! { "_id": 7, "owner_id": "66b0b000000000000000000b", "title": "Tune alerts",
//!                     "status": "todo", "team": "platform", "details": { "internalNotes": "x" } };
//! let answer = request.read_for(&plan, &stored);
//! assert!(answer.selected);
//! assert_eq!(answer.outcome.document, Some(doc! { "_id": 7, "title": "Tune alerts" }));
//!
//! // Without a client query or projection: the first role whose apply_when holds, and what it may see.
//! let read = request.with_explain(true).read(&stored);
//! assert_eq!(read.role.as_deref(), Some("teamViewer"));
//! assert_eq!(read.document, Some(doc! { "_id": 7, "title": "Tune alerts", "status": "todo",
//!                                       "team": "platform" }));
//! println!("{}", read.explanation); // which rule removed each field, with its file and JSON path
//!
//! // Writes: %%root is the post-image, %%prevRoot the pre-image; schema validation runs last.
//! let mut done = stored.clone();
//! done.insert("status", "done");
//! let update = request.update(&stored, &done);
//! assert!(!update.allowed); // teamViewer may read some fields but write none
//! # Ok(())
//! # }
//! ```
//!
//! # Modules
//!
//! The crate root holds what an embedder needs. The modules with a job of their own: [`rules`] (the
//! validated rule model), [`mql`] (MongoDB query matching, projection and Extended JSON), [`lint`]
//! (the `check` lints), [`testing`] (the conformance-case runner of `rolegate test`; with the
//! cargo feature `testing-gen`, also the generators, properties and semantic diff of
//! `rolegate prop` and `rolegate diff`). The project's
//! documentation — the semantics, the security model, the input formats — is in the repository's
//! `docs/` folder. Ids such as U11 or D2 in these pages name rows of the decision table at the end
//! of `docs/semantics.md`: a question the App Services documentation leaves open, the answer
//! rolegate follows, and the test that shows it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The library never writes to stdout or stderr (a leftover debug print leaks rule internals into
// a host's logs and costs time on the hot path): what it has to say is in its return values.
// Printing is the binary's business (crates/rolegate-cli). tests/library_output.rs checks the
// same on the source text.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

// The crate's own unit tests name it `rolegate`, as the fuzz checks they include do.
#[cfg(test)]
extern crate self as rolegate;

mod case;
mod compile;
mod config;
mod context;
mod engine;
mod error;
mod eval;
mod expr;
#[cfg(feature = "testing-gen")]
mod generate;
mod limits;
pub mod lint;
pub mod mql;
pub mod ops;
mod outcome;
#[cfg(feature = "testing-gen")]
mod props;
mod query;
mod reference;
pub mod rules;
mod schema;
mod steps;
pub mod testing;
mod value;

/// Internals that the fuzz targets (`fuzz/`) drive directly: the expression and expansion
/// parsers and the loader's JSON text parser. Compiled only for the crate's own tests and with
/// the `fuzzing` feature, which the fuzz workspace turns on; not part of the API.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::config::source::parse_json;
    pub use crate::expr::expansion::{parse_expansion, parse_field_path, parse_subject};
    pub use crate::expr::{Dialect, Site, parse_expr};
}

#[cfg(test)]
mod fuzz_regressions;
#[cfg(test)]
mod test_support;

pub use config::{FunctionCheck, LoadOptions};
pub use context::{Deadline, FunctionHost, MockFunctions, NoFunctions, RequestContext};
pub use engine::{
    Collection, ContextBuilder, ContextError, EngineKind, PlannedRead, PreparedRequest,
    RawDecision, RequestInfo, Rules, Scratch, UnknownNamespace,
};
pub use error::{Diagnostic, Diagnostics, LoadError, Place, Severity};
pub use limits::{LimitExceeded, Limits, Measures};
pub use outcome::{
    ClientError, ErrorCode, Explanation, PartitionAccess, ReadOutcome, Step, SyncSessionOutcome,
    WriteError, WriteOutcome,
};
pub use query::{PlanError, QueryPlan, Residual};
pub use rules::{NamespaceError, RuleSet};
pub use value::EvalError;
