//! Stage: per-document read decisions, fast path. Input: a [`Program`] and its [`Prepared`]
//! request, when role selection and the read levels have the most common shape of real rules:
//! every role of the request's plan is chosen by one equality test of a top-level field against
//! a string or a boolean known for the request (`{"owner_id": "%%user.id"}`,
//! `{"public": true}`) or always applies, and each role's document-level read is settled by the
//! request. Output: a [`FastRead`] plan (built once per request, on first use), which decides a
//! raw document — role and visibility, no output — with the key cache and one forward scan,
//! without the node evaluator; or [`FastDecision::General`] for a document it does not settle,
//! which then takes the general path.
//!
//! Equal to the general path (`doc.rs` `select`, then `read.rs` `read_level` and `redact_raw`
//! without output) on valid BSON, by construction: the same tests on the same bytes in the same
//! role order ([`raw_field_eq`]), the read level and the per-field actions computed once by the
//! same code (`read_level`, `action_of`) from rules that read only the request, and a stop at
//! the first readable field only where the general path stops too (field trees that cannot
//! fail). Whatever it cannot settle without the evaluator — a field rule that reads the
//! document, a nested level, a malformed element — hands the document to the general path,
//! which then decides it from the start. Rules that call a host `%function` are never
//! evaluated here (the general path calls hosts only when a document reaches them).
//!
//! Its work per document is a scan of the document's top-level elements, linear in the
//! document: it is not charged to the step budget ([`crate::steps`]).

use bson::{Bson, RawDocument};

use super::doc::{Action, DocEval, FastOperand, KeyCache, raw_field_eq};
use super::prepare::{Prepared, SlotVal, Step};
use super::raw::Elements;
use super::read::{Inherited, Level};
use crate::compile::ir::{KeyId, Node, Opnd};
use crate::compile::{CPerms, Program, RoleProg, RuleRef};

/// A request's read-decision plan for the fast path.
#[derive(Debug, Clone)]
pub(crate) struct FastRead {
    /// The roles of the plan, in order.
    roles: Box<[FastRole]>,
}

#[derive(Debug, Clone)]
struct FastRole {
    /// Index in the policy's roles.
    role: u32,
    /// The top-level field tested and the value wanted; `None`: the role always applies.
    test: Option<(KeyId, Want)>,
    read: Read,
}

/// The operand of a role's equality test, known for the request.
#[derive(Debug, Clone)]
enum Want {
    Str(Box<str>),
    Bool(bool),
    /// The operand is missing: the test matches nothing.
    Nothing,
}

/// A role's read decision when it is selected.
#[derive(Debug, Clone)]
enum Read {
    Whole,
    Hidden,
    /// Field rules decide; the action of each field (in `CTree::fields` order, then
    /// `additional_fields`).
    Fields(Box<[Field]>),
    /// Only the general path can decide.
    General,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Keep,
    Drop,
    General,
}

/// What the fast path made of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FastDecision {
    /// The role (by policy index) and whether the document is visible.
    Decided { role: Option<u32>, visible: bool },
    /// Decide it on the general path.
    General,
}

impl FastRead {
    /// The plan for `prepared`, or `None` when its role selection does not have the shape.
    pub fn build(program: &Program, prepared: &Prepared<'_>) -> Option<FastRead> {
        let mut roles = Vec::with_capacity(prepared.plan.len());
        for step in &prepared.plan {
            let (role, test) = match step {
                Step::Always(i) => (*i, None),
                Step::Role(i) => {
                    let aw = program.roles.get(*i as usize)?.apply_when?;
                    (*i, Some(equality_test(program, prepared, aw)?))
                }
                Step::Fail { .. } | Step::Run { .. } => return None,
            };
            let read = read_of(program, prepared, program.roles.get(role as usize)?);
            let always = test.is_none();
            roles.push(FastRole { role, test, read });
            if always {
                break;
            }
        }
        Some(FastRead {
            roles: roles.into_boxed_slice(),
        })
    }

    /// The read decision of `doc` (no output), or [`FastDecision::General`].
    pub fn decide(
        &self,
        program: &Program,
        doc: &RawDocument,
        cache: &mut KeyCache,
    ) -> FastDecision {
        cache.reset(program.keys.len(), program.memos);
        for r in self.roles.iter() {
            if let Some((key, want)) = &r.test {
                let operand = match want {
                    Want::Str(s) => FastOperand::Str(s),
                    Want::Bool(b) => FastOperand::Bool(*b),
                    Want::Nothing => continue,
                };
                let hit = match cache.lookup(doc, *key, program) {
                    Ok(Some((kind, bytes))) => raw_field_eq(kind, bytes, &operand),
                    Ok(None) => Ok(false),
                    Err(fault) => Err(fault),
                };
                match hit {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => return FastDecision::General,
                }
            }
            let role = Some(r.role);
            return match &r.read {
                Read::Whole => FastDecision::Decided {
                    role,
                    visible: true,
                },
                Read::Hidden => FastDecision::Decided {
                    role,
                    visible: false,
                },
                Read::General => FastDecision::General,
                Read::Fields(actions) => {
                    let Some(prog_role) = program.roles.get(r.role as usize) else {
                        return FastDecision::General;
                    };
                    match any_kept(prog_role, actions, doc) {
                        Some(visible) => FastDecision::Decided { role, visible },
                        None => FastDecision::General,
                    }
                }
            };
        }
        FastDecision::Decided {
            role: None,
            visible: false,
        }
    }
}

/// Whether some top-level field of `doc` is kept (the first one ends the scan); `None` when a
/// field only the general path can decide comes first, or an element is malformed.
fn any_kept(role: &RoleProg, actions: &[Field], doc: &RawDocument) -> Option<bool> {
    let tree = &role.fields;
    let additional = actions.last().copied().unwrap_or(Field::General);
    for elem in Elements::new(doc) {
        let elem = elem.ok()?;
        let action = match tree.index.find_tagged(elem.tag, elem.key) {
            Some(i) => actions.get(i as usize).copied().unwrap_or(Field::General),
            None => additional,
        };
        match action {
            Field::Keep => return Some(true),
            Field::Drop => {}
            Field::General => return None,
        }
    }
    Some(false)
}

/// The role's `apply_when` as a fast test: one top-level field equal to a string or boolean
/// that is known for the request without calling a host.
fn equality_test(program: &Program, prepared: &Prepared<'_>, aw: RuleRef) -> Option<(KeyId, Want)> {
    let Some(Node::FieldEq(f)) = program.nodes.get(aw.node) else {
        return None;
    };
    let want = match &f.operand {
        Opnd::Const(c) => want(&c.value)?,
        Opnd::Slot(s) => {
            if program.nodes.slot(*s)?.host {
                return None;
            }
            match prepared.slot(program, *s)? {
                SlotVal::Value(Ok(Some(v))) => want(v)?,
                SlotVal::Value(Ok(None)) => Want::Nothing,
                _ => return None,
            }
        }
        Opnd::Path(_) => return None,
    };
    Some((f.key, want))
}

fn want(v: &Bson) -> Option<Want> {
    match v {
        Bson::String(s) | Bson::Symbol(s) => Some(Want::Str(s.as_str().into())),
        Bson::Boolean(b) => Some(Want::Bool(*b)),
        _ => None,
    }
}

/// Is `rule` (absent, a constant, or a request-only slot that calls no host) settled by the
/// request alone?
fn settled(program: &Program, rule: Option<RuleRef>) -> bool {
    let Some(rule) = rule else { return true };
    match program.nodes.get(rule.node) {
        Some(Node::Const(_)) => true,
        Some(Node::Slot(s)) => program.nodes.slot(*s).is_some_and(|s| !s.host),
        _ => false,
    }
}

fn settled_perms(program: &Program, perms: &CPerms) -> bool {
    settled(program, perms.read) && settled(program, perms.write)
}

/// What `role` does with a document it is selected for, decided on the request alone.
fn read_of(program: &Program, prepared: &Prepared<'_>, role: &RoleProg) -> Read {
    if role.has_doc_filters || !settled(program, role.read) || !settled(program, role.write) {
        return Read::General;
    }
    let mut cache = KeyCache::default();
    let mut eval = DocEval::new(program, prepared, None, None, true, &mut cache, None);
    match eval.read_level(role) {
        Ok(Level::Whole) => Read::Whole,
        Ok(Level::Hidden) => Read::Hidden,
        Ok(Level::Fields(inherited)) if role.fields.infallible => {
            Read::Fields(field_actions(&mut eval, program, role, inherited))
        }
        Ok(Level::Fields(_)) | Err(_) => Read::General,
    }
}

/// The action of every top-level field rule, then of `additional_fields`.
fn field_actions(
    eval: &mut DocEval<'_, '_>,
    program: &Program,
    role: &RoleProg,
    inherited: Inherited,
) -> Box<[Field]> {
    let tree = &role.fields;
    let known = tree.fields.iter().map(|(_, f)| (&f.perms, Some(&f.nested)));
    let additional = std::iter::once((tree.additional_perms(), None));
    known
        .chain(additional)
        .map(|(perms, nested)| {
            if !settled_perms(program, perms) {
                return Field::General;
            }
            match eval.action_of(perms, nested, inherited) {
                Ok(Action::Keep) => Field::Keep,
                Ok(Action::Drop) => Field::Drop,
                _ => Field::General,
            }
        })
        .collect()
}
