//! Stage: prepare (once per request). Input: a [`Program`] and a [`RequestContext`]. Output:
//! [`Prepared`] — the request-only parts of the program, and the role-selection plan for this
//! request.
//!
//! - **Slots** ([`SlotVal`]): every request-only sub-expression, operand and subject of the
//!   program is computed at most once per request, by the reference evaluator itself
//!   (`eval_expr` / `eval_operand` / `resolve_expansion` with request-only bindings), so its
//!   value and its error are the reference's. Slots are filled **lazily**, on first use (a
//!   per-request cache of `OnceLock`s: `Prepared` may be shared by threads): a document that
//!   never reaches a slot never pays for it, and a host `%function` is called at most once per
//!   request, and only when some document's evaluation reaches the call — functions must be
//!   pure (same arguments, same answer) for this to be unobservable.
//! - **Plan** ([`Step`]): role selection partially evaluated on the request. In policy order,
//!   a role whose `apply_when` is false for this request is dropped; the first one that is true
//!   regardless of the document ends the plan (later roles are unreachable); one that fails
//!   regardless of the document ends it with that failure (the reference stops there too).
//!   Partial evaluation forces non-host slots only (a `%function` slot is treated as unknown).
//!   Indexed runs look up their live roles here (one hash lookup per run).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use bson::Bson;

use crate::compile::index::Run;
use crate::compile::ir::{Node, NodeId, SlotId, SlotKind};
use crate::compile::{Program, Segment};
use crate::context::RequestContext;
use crate::value::eval::resolve_expansion;
use crate::value::path::Resolved;
use crate::value::{Bindings, EvalError, eval_expr, eval_operand};

use super::value::{Reached, for_each_string};

/// The per-request value of a slot.
#[derive(Debug, Clone)]
pub(crate) enum SlotVal<'c> {
    Bool(Result<bool, EvalError>),
    Value(Result<Option<Bson>, EvalError>),
    Subject(Resolved<'c>),
}

/// Which roles of a run may apply for this request.
#[derive(Debug, Clone)]
pub(crate) enum Live {
    /// Every role (the run tests no request path).
    All,
    /// These run positions (ascending).
    Some(Box<[u32]>),
}

impl Live {
    #[inline]
    pub fn contains(&self, pos: u32) -> bool {
        match self {
            Live::All => true,
            Live::Some(list) => list.binary_search(&pos).is_ok(),
        }
    }
}

/// One step of this request's role selection.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Evaluate this role's `apply_when` per document.
    Role(u32),
    /// This role applies to every document that gets here.
    Always(u32),
    /// Role selection fails here for every document that gets here.
    Fail { role: u32, error: EvalError },
    /// An indexed run (by index in `Program::runs`) and its live roles.
    Run { run: u32, live: Live },
}

/// The request-only state of one request.
#[derive(Debug, Clone)]
pub(crate) struct Prepared<'c> {
    /// Unique per prepared request (per-thread caches in `Scratch` are keyed by it).
    pub id: u64,
    pub ctx: &'c RequestContext,
    /// The system user (bypasses every rule), decided once.
    pub system: bool,
    slots: Box<[OnceLock<SlotVal<'c>>]>,
    pub plan: Vec<Step>,
}

/// Partial value of a node on the request alone.
pub(crate) enum Partial {
    Known(Result<bool, EvalError>),
    Unknown,
}

impl<'c> Prepared<'c> {
    pub fn new(program: &Program, ctx: &'c RequestContext) -> Prepared<'c> {
        let slots = (0..program.nodes.slots.len())
            .map(|_| OnceLock::new())
            .collect();
        let system = ctx.is_system();
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let mut prepared = Prepared {
            id: NEXT_ID.fetch_add(1, AtomicOrdering::Relaxed),
            ctx,
            system,
            slots,
            plan: Vec::new(),
        };
        if !system {
            prepared.plan = prepared.plan_roles(program);
        }
        prepared
    }

    /// The value of slot `id`, computed on first use.
    #[inline]
    pub fn slot(&self, program: &Program, id: SlotId) -> Option<&SlotVal<'c>> {
        let cell = self.slots.get(id.0 as usize)?;
        Some(cell.get_or_init(|| {
            let ctx = self.ctx;
            let b = Bindings::request_only(ctx);
            match program.nodes.slot(id).map(|s| &s.kind) {
                Some(SlotKind::Bool(e)) => SlotVal::Bool(eval_expr(e, &b)),
                Some(SlotKind::Operand(o)) => SlotVal::Value(eval_operand(o, &b)),
                Some(SlotKind::Subject(e)) => SlotVal::Subject(resolve_expansion(e, &b)),
                None => SlotVal::Bool(Ok(false)),
            }
        }))
    }

    fn plan_roles(&self, program: &Program) -> Vec<Step> {
        let mut plan = Vec::new();
        for seg in &program.segments {
            match *seg {
                Segment::Single(i) => {
                    let Some(aw) = program.roles.get(i as usize).and_then(|r| r.apply_when) else {
                        continue;
                    };
                    match self.partial(program, aw.node) {
                        Partial::Known(Ok(false)) => {}
                        Partial::Known(Ok(true)) => {
                            plan.push(Step::Always(i));
                            return plan;
                        }
                        Partial::Known(Err(error)) => {
                            plan.push(Step::Fail { role: i, error });
                            return plan;
                        }
                        Partial::Unknown => plan.push(Step::Role(i)),
                    }
                }
                Segment::Run(r) => {
                    let Some(run) = program.runs.get(r as usize) else {
                        continue;
                    };
                    match self.live_roles(run) {
                        None => plan.push(Step::Run {
                            run: r,
                            live: Live::All,
                        }),
                        Some(live) if live.is_empty() => {}
                        Some(live) => {
                            if run.doc_paths.is_empty() {
                                // Request tests only: the first live role applies to every
                                // document.
                                if let Some(first) = live.first() {
                                    plan.push(Step::Always(run.start + first));
                                    return plan;
                                }
                            }
                            plan.push(Step::Run {
                                run: r,
                                live: Live::Some(live.into()),
                            });
                        }
                    }
                }
            }
        }
        plan
    }

    /// The run positions whose request tests hold (ascending); `None` when the run tests no
    /// request path (every role stays live).
    fn live_roles(&self, run: &Run) -> Option<Vec<u32>> {
        let first = run.request_paths.first()?;
        let b = Bindings::request_only(self.ctx);
        // PERF: only the candidates found by the lookup are looked at.
        let resolved0 = resolve_expansion(first, &b);
        let mut candidates: Vec<u32> = Vec::new();
        let reached0 = Reached::Request(&resolved0);
        let _ = for_each_string(&reached0, |s| {
            if let Some(list) = run.request_index.get(s) {
                candidates.extend_from_slice(list);
            }
            Ok(false)
        });
        candidates.sort_unstable();
        candidates.dedup();
        if candidates.is_empty() {
            return Some(candidates);
        }
        let others: Vec<Resolved<'_>> = run
            .request_paths
            .iter()
            .skip(1)
            .map(|e| resolve_expansion(e, &b))
            .collect();
        candidates.retain(|&pos| {
            let Some(tests) = run.tests.get(pos as usize) else {
                return false;
            };
            tests.iter().filter(|t| !t.doc).all(|t| {
                let resolved = if t.path == 0 {
                    Some(&resolved0)
                } else {
                    others.get(t.path as usize - 1)
                };
                resolved.is_some_and(|r| {
                    for_each_string(&Reached::Request(r), |s| Ok(s == &*t.value)).unwrap_or(false)
                })
            })
        });
        Some(candidates)
    }

    /// Partial evaluation on the request alone (with the reference's error order).
    pub(crate) fn partial(&self, program: &Program, id: NodeId) -> Partial {
        match program.nodes.get(id) {
            Some(Node::Const(b)) => Partial::Known(Ok(*b)),
            Some(Node::Error(e)) => Partial::Known(Err(e.clone())),
            Some(Node::Slot(s)) => {
                if program.nodes.slot(*s).is_none_or(|s| s.host) {
                    return Partial::Unknown;
                }
                match self.slot(program, *s) {
                    Some(SlotVal::Bool(r)) => Partial::Known(r.clone()),
                    _ => Partial::Unknown,
                }
            }
            Some(Node::All(children)) => self.junction(program, children, true),
            Some(Node::Any(children)) => self.junction(program, children, false),
            Some(Node::Not(inner)) => match self.partial(program, *inner) {
                Partial::Known(Ok(b)) => Partial::Known(Ok(!b)),
                other => other,
            },
            Some(Node::Test(_) | Node::FieldEq(_) | Node::Fallback(_)) | None => Partial::Unknown,
        }
    }

    fn junction(&self, program: &Program, children: &[NodeId], conj: bool) -> Partial {
        let decisive = !conj;
        let (mut unknown, mut unknown_fallible) = (false, false);
        for &c in children {
            match self.partial(program, c) {
                Partial::Known(Ok(b)) if b == decisive => {
                    // Decides the whole unless an unknown clause before it could fail first.
                    return if unknown_fallible {
                        Partial::Unknown
                    } else {
                        Partial::Known(Ok(decisive))
                    };
                }
                Partial::Known(Ok(_)) => {}
                Partial::Known(Err(e)) => {
                    return if unknown {
                        Partial::Unknown
                    } else {
                        Partial::Known(Err(e))
                    };
                }
                Partial::Unknown => {
                    unknown = true;
                    unknown_fallible |= program.nodes.info(c).fallible;
                }
            }
        }
        if unknown {
            Partial::Unknown
        } else {
            Partial::Known(Ok(!decisive))
        }
    }
}
