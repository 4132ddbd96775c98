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
//! - [`read`]: read decisions and redaction (raw and owned); [`quick`]: the raw redaction
//!   walk's loop over elements whose action the request decided.
//! - [`write`]: write decisions.
//!
//! Dependencies point one way: `value` → `raw`; `prepare` → `value`; `doc` → `prepare`,
//! `value`, `raw`; `quick` → `doc`, `raw`; `read` → `doc`, `quick`; `write` → `doc`; `fast` →
//! `doc`, `prepare`, `read`. One exception: `doc`'s `KeyCache::seed_quick` takes `fast`'s
//! `Seeds`. The request
//! state the engine keeps, [`CompiledRequest`], ties `prepare` and `fast` together here, so that
//! `prepare` needs nothing above it.

pub(crate) mod doc;
pub(crate) mod fast;
pub(crate) mod prepare;
pub(crate) mod quick;
pub(crate) mod raw;
pub(crate) mod read;
pub(crate) mod value;
pub(crate) mod write;

use std::ops::Deref;
use std::sync::OnceLock;

use crate::compile::Program;
use crate::context::RequestContext;
use fast::FastRead;
use prepare::Prepared;

/// One request prepared for the compiled engine: its request-only state ([`Prepared`]) and the
/// fast read-decision plan built from it on first use ([`FastRead`]; `None` when the program
/// lacks the shape).
#[derive(Debug)]
pub(crate) struct CompiledRequest<'c> {
    prepared: Prepared<'c>,
    fast: OnceLock<Option<FastRead>>,
}

impl<'c> CompiledRequest<'c> {
    /// Prepares `ctx` for `program` (see [`Prepared::new`]).
    pub fn new(program: &Program, ctx: &'c RequestContext) -> CompiledRequest<'c> {
        CompiledRequest {
            prepared: Prepared::new(program, ctx),
            fast: OnceLock::new(),
        }
    }

    /// The fast read-decision plan of this request, built on first use. Building it may
    /// evaluate request-only rules; it does so under a step budget of its own, of `max_steps`
    /// ([`crate::steps`]), since the plan serves every document of the request and its
    /// decisions charge nothing.
    pub fn fast(&self, program: &Program, max_steps: u64) -> Option<&FastRead> {
        self.fast
            .get_or_init(|| {
                let _steps = crate::steps::StepBudget::start(max_steps);
                FastRead::build(program, &self.prepared)
            })
            .as_ref()
    }
}

impl<'c> Deref for CompiledRequest<'c> {
    type Target = Prepared<'c>;

    fn deref(&self) -> &Prepared<'c> {
        &self.prepared
    }
}
