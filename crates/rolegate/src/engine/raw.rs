//! Stage: decide, per raw document. Input: a [`PreparedRequest`] and `&bson::RawDocument`s as
//! the database returns them. Output: a [`RawDecision`] per document and, for `redact_raw`, the
//! redacted document as raw BSON — without allocating per document ([`Scratch`] is reused).

use super::PreparedRequest;

use bson::Document;

use crate::eval::CompiledRequest;
use crate::eval::doc::{DocEval, DocRef, Inherited, KeyCache};
use crate::eval::fast::{FastDecision, Seeds};
use crate::eval::prepare::Prepared;
use crate::eval::quick::{self, QuickDocument, Resume};
use crate::eval::raw::Validity;
use crate::eval::read::Level;
use crate::reference;
use crate::steps::StepBudget;

/// Per-thread scratch space of the raw per-document path ([`PreparedRequest::read_raw`],
/// [`PreparedRequest::redact_raw`]): reuse one across documents; it grows once and then stops
/// allocating.
#[derive(Debug, Default)]
pub struct Scratch {
    cache: KeyCache,
    plans: crate::eval::doc::PlanCache,
    validate: crate::eval::raw::ValidateScratch,
}

impl Scratch {
    /// An empty scratch space (the same as `Scratch::default()`).
    pub fn new() -> Scratch {
        Scratch::default()
    }
}

/// A decision withheld because a rule failed (or the raw input is malformed).
const FAILED: RawDecision = RawDecision {
    role: None,
    visible: false,
    error: true,
};

/// The decision for one raw document: the role applied, whether the document is returned, and
/// whether it was withheld because a rule failed to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawDecision {
    /// Index of the applied role in the policy's roles ([`PreparedRequest::role_name`]).
    pub role: Option<usize>,
    /// True when the document is returned: a role applies, its document filters let it be read,
    /// and some field is readable. False when it is withheld.
    pub visible: bool,
    /// True when the document was withheld because a rule failed to evaluate (or the raw input
    /// is malformed): fail closed. The decoded path ([`PreparedRequest::read`] with explanations)
    /// gives the reason.
    pub error: bool,
}

/// What the fast path hands the general path for one document.
struct Handoff {
    /// The role when the fast plan selected it (`Some(None)`: no role applies).
    selected: Option<Option<u32>>,
    /// The role's per-document rules its scan settled.
    seeds: Seeds,
    /// The quick scan redacted the start of the document under the role's field rules and
    /// these inherited permissions, its output already in the output buffer.
    resumed: Option<(Inherited, Resume)>,
}

impl<'c> PreparedRequest<'_, 'c> {
    /// The roles of this request's fast read plan, by policy index; `None` without one.
    #[cfg(test)]
    pub(crate) fn fast_plan_roles(&self) -> Option<Vec<u32>> {
        let prepared = self.prepared.as_deref()?;
        let fast = prepared.fast(self.program, self.limits.max_eval_steps)?;
        Some(fast.roles().collect())
    }

    /// The number of seeds of each role of this request's fast read plan.
    #[cfg(test)]
    pub(crate) fn fast_plan_seed_counts(&self) -> Option<Vec<usize>> {
        let prepared = self.prepared.as_deref()?;
        Some(
            prepared
                .fast(self.program, self.limits.max_eval_steps)?
                .seed_counts(),
        )
    }

    /// The reference engine's raw path: the document is converted and read by the reference.
    fn raw_via_reference(&self, doc: &bson::RawDocument) -> (RawDecision, Option<Document>) {
        // The depth guard comes first: converting a deeply nested document recurses.
        let mut check = crate::eval::raw::ValidateScratch::default();
        let max_depth = self.limits.effective_document_depth();
        if let Validity::Invalid | Validity::TooDeep =
            crate::eval::raw::validate(doc, max_depth, &mut check)
        {
            return (FAILED, None);
        }
        let Ok(owned) = Document::try_from(doc) else {
            return (FAILED, None);
        };
        let outcome = reference::read::read(&self.policy, self.context, &owned, false);
        let role = outcome
            .role
            .as_deref()
            .and_then(|name| self.policy.roles.iter().position(|r| r.name == name));
        let decision = RawDecision {
            role,
            visible: outcome.visible,
            error: outcome.error.is_some(),
        };
        (decision, outcome.document)
    }

    /// The compiled read decision of a raw document; writes the redacted document to `out`
    /// when given (nothing when withheld).
    // PERF: inlined into `read_raw` and `redact_raw` (one frame per document).
    #[inline(always)]
    fn raw_compiled(
        &self,
        prepared: &CompiledRequest<'_>,
        doc: &bson::RawDocument,
        scratch: &mut Scratch,
        mut out: Option<&mut Vec<u8>>,
    ) -> RawDecision {
        if self.validate_raw {
            let max_depth = self.limits.effective_document_depth();
            match crate::eval::raw::validate(doc, max_depth, &mut scratch.validate) {
                Validity::Valid => {}
                Validity::Invalid | Validity::TooDeep => return FAILED,
                Validity::RepeatedKeys => {
                    let _steps = StepBudget::start(self.limits.max_eval_steps);
                    return self.raw_via_document(prepared, doc, out);
                }
            }
        } else {
            // The depth guard (finding 10 of issue 9): even without full validation, a
            // document nested deeper than the limit is withheld, as the other paths do.
            let max_depth = self.limits.effective_document_depth();
            match crate::eval::raw::nests_deeper(doc, max_depth, &mut scratch.validate.depth) {
                Ok(false) => {}
                Ok(true) | Err(_) => return FAILED,
            }
        }
        if prepared.system {
            if let Some(out) = out {
                out.extend_from_slice(doc.as_bytes());
            }
            return RawDecision {
                role: None,
                visible: true,
                error: false,
            };
        }
        let program = self.program;
        // PERF: the fast path evaluates no rule (its plan was built under a budget of its
        // own), so the step budget starts only after it: W1 decision 939 -> 880 instructions
        // per document.
        // PERF: a plan with the fast path's shape also selects the role of a document whose
        // fields need the general path, without the node evaluator (W1 redact 4,005 -> 3,605
        // instructions per document).
        // PERF: and settles the role's per-document equality rules from the same scan
        // (`Seeds`), so the evaluator neither scans for their fields nor evaluates them
        // (W2-20 redact 6,920 -> 6,741, decision 5,648 -> 5,326 instructions per document).
        let mut resumed = None;
        let (selected, seeds) = match prepared.fast(program, self.limits.max_eval_steps) {
            None => (None, Seeds::default()),
            Some(fast) if out.is_some() => match fast.select(doc) {
                Ok(selected) => {
                    // PERF: a role whose document-level decision the request makes redacts
                    // by the quick scan alone once the request has cached the level's
                    // actions: no evaluator, no step budget (issue 16).
                    if let (Some(out), Some(role), Some(inherited)) =
                        (out.as_deref_mut(), selected.role, selected.level)
                        && scratch.plans.serves(prepared.id)
                        && let Some(prog_role) = program.roles.get(role as usize)
                    {
                        scratch.cache.seed_quick(&selected.seeds);
                        match quick::redact_document(
                            &prog_role.fields,
                            inherited,
                            &scratch.plans,
                            &scratch.cache,
                            doc.as_bytes(),
                            out,
                        ) {
                            QuickDocument::Done(visible) => {
                                return RawDecision {
                                    role: Some(role as usize),
                                    visible,
                                    error: false,
                                };
                            }
                            QuickDocument::Stopped(resume) => {
                                resumed = Some((inherited, resume));
                            }
                            QuickDocument::NotCached => {}
                        }
                    }
                    (Some(selected.role), selected.seeds)
                }
                Err(_) => (None, Seeds::default()),
            },
            Some(fast) => match fast.decide(program, doc) {
                FastDecision::Decided { role, visible } => {
                    return RawDecision {
                        role: role.map(|i| i as usize),
                        visible,
                        error: false,
                    };
                }
                FastDecision::General(selected, seeds) => (selected, seeds),
            },
        };
        let handoff = Handoff {
            selected,
            seeds,
            resumed,
        };
        self.raw_general(prepared, doc, scratch, out, handoff)
    }

    /// [`PreparedRequest::raw_compiled`] of a document the fast path did not decide, on the
    /// node evaluator, from what the fast path found ([`Handoff`]).
    // PERF: out of line, so that the fast path's frame holds only what the fast path uses.
    #[inline(never)]
    fn raw_general(
        &self,
        prepared: &CompiledRequest<'_>,
        doc: &bson::RawDocument,
        scratch: &mut Scratch,
        out: Option<&mut Vec<u8>>,
        handoff: Handoff,
    ) -> RawDecision {
        let Some(out) = out else {
            return self.raw_walk(prepared, doc, scratch, None, handoff);
        };
        // INVARIANT: the output of a withheld document is nothing, whatever the quick scan
        // had written of it.
        let mark = match &handoff.resumed {
            Some((_, resume)) => resume.writer.start(),
            None => out.len(),
        };
        let decision = self.raw_walk(prepared, doc, scratch, Some(out), handoff);
        if !decision.visible {
            out.truncate(mark);
        }
        decision
    }

    /// [`PreparedRequest::raw_general`] but for the output of a withheld document, which may
    /// hold anything.
    #[inline(always)]
    fn raw_walk(
        &self,
        prepared: &CompiledRequest<'_>,
        doc: &bson::RawDocument,
        scratch: &mut Scratch,
        mut out: Option<&mut Vec<u8>>,
        handoff: Handoff,
    ) -> RawDecision {
        let Handoff {
            selected,
            seeds,
            resumed,
        } = handoff;
        let program = self.program;
        let _steps = StepBudget::start(self.limits.max_eval_steps);
        let mut eval = DocEval::new(
            program,
            prepared,
            Some(DocRef::Raw(doc)),
            Some(DocRef::Raw(doc)),
            true,
            &mut scratch.cache,
            Some(&mut scratch.plans),
        );
        for (memo, value) in seeds.iter() {
            eval.seed_memo(memo, value);
        }
        let index = match selected.map_or_else(|| eval.select(), Ok) {
            Ok(Some(i)) => i,
            Ok(None) => return RawDecision::default(),
            Err(_) => return FAILED,
        };
        let role = Some(index as usize);
        let Some(prog_role) = program.roles.get(index as usize) else {
            return RawDecision::default();
        };
        let failed = RawDecision {
            role,
            visible: false,
            error: true,
        };
        let visible = match eval.read_level(prog_role) {
            Err(_) => return failed,
            Ok(Level::Hidden) => false,
            Ok(Level::Whole) => {
                if let Some(out) = out {
                    if let Some((_, resume)) = resumed {
                        out.truncate(resume.writer.start());
                    }
                    out.extend_from_slice(doc.as_bytes());
                }
                true
            }
            Ok(Level::Fields(inherited)) => {
                // The quick scan's start is taken when it walked this very level (it did: the
                // request's level decision is the one the fast plan made).
                let resume = match resumed {
                    Some((quick, resume)) if quick == inherited => Some(resume),
                    Some((_, resume)) => {
                        if let Some(out) = out.as_deref_mut() {
                            out.truncate(resume.writer.start());
                        }
                        None
                    }
                    None => None,
                };
                match eval.redact_raw(&prog_role.fields, doc, inherited, out, resume) {
                    Ok(kept) => kept,
                    Err(_) => return failed,
                }
            }
        };
        RawDecision {
            role,
            visible,
            error: false,
        }
    }

    /// A valid raw document with repeated keys: decided on its `Document` conversion (first
    /// position, last value), as the reference sees it.
    fn raw_via_document(
        &self,
        prepared: &Prepared<'_>,
        doc: &bson::RawDocument,
        out: Option<&mut Vec<u8>>,
    ) -> RawDecision {
        let Ok(owned) = Document::try_from(doc) else {
            return FAILED;
        };
        let outcome = self.read_compiled(prepared, &owned);
        let role = outcome
            .role
            .as_deref()
            .and_then(|name| self.policy.roles.iter().position(|r| r.name == name));
        if let (Some(out), Some(redacted)) = (out, &outcome.document) {
            let mark = out.len();
            if redacted.to_writer(&mut *out).is_err() {
                out.truncate(mark);
                return RawDecision {
                    role,
                    visible: false,
                    error: true,
                };
            }
        }
        RawDecision {
            role,
            visible: outcome.visible,
            error: outcome.error.is_some(),
        }
    }

    /// The read decision for a raw document: role, visibility and field mask, no output. Like
    /// [`PreparedRequest::read`], it decides on the stored document and applies no client query
    /// or projection.
    /// The compiled engine reads only the fields the rules need, once each, without allocating
    /// in the common cases.
    pub fn read_raw(&self, doc: &bson::RawDocument, scratch: &mut Scratch) -> RawDecision {
        if self.refused.is_some() {
            return FAILED;
        }
        match &self.prepared {
            // The compiled path starts the step budget itself, where it evaluates rules.
            Some(prepared) => self.raw_compiled(prepared, doc, scratch, None),
            None => {
                let _steps = StepBudget::start(self.limits.max_eval_steps);
                self.raw_via_reference(doc).0
            }
        }
    }

    /// The read decision for a raw document, appending the redacted document as BSON bytes to
    /// `out` when visible (nothing is written when withheld). Readable elements are copied
    /// byte-for-byte, in document order.
    pub fn redact_raw(
        &self,
        doc: &bson::RawDocument,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> RawDecision {
        if self.refused.is_some() {
            return FAILED;
        }
        if let Some(prepared) = &self.prepared {
            return self.raw_compiled(prepared, doc, scratch, Some(out));
        }
        let _steps = StepBudget::start(self.limits.max_eval_steps);
        let (decision, redacted) = self.raw_via_reference(doc);
        if let Some(redacted) = redacted {
            let mark = out.len();
            if redacted.to_writer(&mut *out).is_err() {
                out.truncate(mark);
                return RawDecision {
                    role: decision.role,
                    visible: false,
                    error: true,
                };
            }
        }
        decision
    }
}
