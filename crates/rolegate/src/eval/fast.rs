//! Stage: per-document read decisions, fast path. Input: a [`Program`] and its [`Prepared`]
//! request, when role selection and the read levels have the most common shape of real rules:
//! every role of the request's plan is chosen by one equality test of a top-level field against
//! a string or a boolean known for the request (`{"owner_id": "%%user.id"}`,
//! `{"public": true}`) or always applies, and each role's document-level read is settled by the
//! request. Output: a [`FastRead`] plan (built once per request, on first use), which decides a
//! raw document — role and visibility, no output — with one forward scan for the tested fields
//! ([`Probe`]), without the node evaluator; or [`FastDecision::General`] for a document it does not settle,
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

#[cfg(doc)]
use super::doc::raw_field_eq;
use super::doc::{Action, DocEval, KeyCache};
use super::prepare::{Prepared, SlotVal, Step};
use super::raw::{self, Elements, Malformed, Spans, bytes_eq, key_tag, tag_is_whole_key};
use super::read::{Inherited, Level};
use crate::compile::ir::{KeyId, Node, Opnd};
use crate::compile::{CPerms, Program, RoleProg, RuleRef};

/// A request's read-decision plan for the fast path.
#[derive(Debug, Clone)]
pub(crate) struct FastRead {
    /// The roles of the plan, in order.
    roles: Box<[FastRole]>,
    /// The distinct top-level fields the roles test (at most [`MAX_PROBED`]).
    probed: Box<[ProbedKey]>,
}

#[derive(Debug, Clone)]
struct FastRole {
    /// Index in the policy's roles.
    role: u32,
    /// The tested field (index in [`FastRead::probed`]) and the value wanted; `None`: the role
    /// always applies.
    test: Option<(usize, Want)>,
    read: Read,
}

/// Most distinct fields the role tests of a plan may read: a [`Probe`] keeps what it found in a
/// fixed array (no allocation, no per-document reset of a cache); plans testing more fields
/// take the general path.
const MAX_PROBED: usize = 8;

/// A field some role tests.
#[derive(Debug, Clone)]
struct ProbedKey {
    /// [`key_tag`] of the name.
    tag: u64,
    name: Box<[u8]>,
}

impl ProbedKey {
    /// Whether an element with this key tag and key is this field.
    #[inline]
    fn is(&self, tag: u64, key: &[u8]) -> bool {
        // INVARIANT: equal tags are equal keys only when the tag holds the whole key
        // (`tag_is_whole_key`); longer keys compare their bytes.
        self.tag == tag && (tag_is_whole_key(tag) || bytes_eq(&self.name, key))
    }
}

/// The tested fields of one document, found by one forward scan that every role's test resumes
/// (each element is parsed at most once; the scan stops as soon as the field asked for is
/// found). The first element with a key wins, as in `RawDocument::get` and `KeyCache`.
struct Probe<'d> {
    spans: Spans<'d>,
    /// Type and value bytes of each probed field met so far.
    found: [Option<(u8, &'d [u8])>; MAX_PROBED],
}

impl<'d> Probe<'d> {
    fn new(doc: &'d RawDocument) -> Self {
        Probe {
            spans: Spans::new(doc),
            found: [None; MAX_PROBED],
        }
    }

    /// The type and value bytes of probed field `want` (index in `probed`).
    #[inline]
    fn field(
        &mut self,
        probed: &[ProbedKey],
        want: usize,
    ) -> Result<Option<(u8, &'d [u8])>, Malformed> {
        if let Some(Some(hit)) = self.found.get(want) {
            return Ok(Some(*hit));
        }
        // PERF: a linear pass over the few probed names (one tag compare each) instead of the
        // program-wide key table; no cache to reset per document.
        let bytes = self.spans.bytes();
        for span in &mut self.spans {
            let span = span?;
            let Some(i) = probed.iter().position(|k| k.is(span.tag, span.key(bytes))) else {
                continue;
            };
            if let Some(slot @ None) = self.found.get_mut(i) {
                *slot = Some((span.kind, span.value(bytes)));
                if i == want {
                    return Ok(*slot);
                }
            }
        }
        Ok(None)
    }
}

/// The operand of a role's equality test, known for the request.
#[derive(Debug, Clone)]
enum Want {
    /// A string's UTF-8 bytes.
    Str(Box<[u8]>),
    Bool(bool),
    /// The operand is missing: the test matches nothing.
    Nothing,
}

impl Want {
    /// Does a raw value (type `kind`, value bytes) equal this operand as a match does —
    /// directly or as an element of an array value? The same answer as [`raw_field_eq`] (a
    /// property test holds them together), without its call and operand dispatch per value.
    #[inline(always)]
    fn matches(&self, kind: u8, value: &[u8]) -> Result<bool, Malformed> {
        match self {
            Want::Str(s) => match kind {
                raw::kind::STRING | raw::kind::SYMBOL => Ok(str_is(value, s)),
                raw::kind::ARRAY => raw::any_value(value, |k, v| {
                    matches!(k, raw::kind::STRING | raw::kind::SYMBOL) && str_is(v, s)
                }),
                _ => Ok(false),
            },
            Want::Bool(b) => {
                let byte = u8::from(*b);
                match kind {
                    raw::kind::BOOLEAN => Ok(value.first() == Some(&byte)),
                    raw::kind::ARRAY => raw::any_value(value, |k, v| {
                        k == raw::kind::BOOLEAN && v.first() == Some(&byte)
                    }),
                    _ => Ok(false),
                }
            }
            Want::Nothing => Ok(false),
        }
    }
}

/// Is the string value `value` (its i32 length, bytes, NUL, as [`Spans`] sliced it) the string
/// `s`? The length prefix says how long the value is (`value_size`), so a value of `s.len() + 5`
/// bytes has the prefix `s.len() + 1`, which is what `raw_field_eq` tests, and then the bytes.
#[inline(always)]
fn str_is(value: &[u8], s: &[u8]) -> bool {
    value.len() == s.len() + 5 && bytes_eq(value.get(4..4 + s.len()).unwrap_or_default(), s)
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
        let mut probed: Vec<ProbedKey> = Vec::new();
        for step in &prepared.plan {
            let (role, test) = match step {
                Step::Always(i) => (*i, None),
                Step::Role(i) => {
                    let aw = program.roles.get(*i as usize)?.apply_when?;
                    let (key, want) = equality_test(program, prepared, aw)?;
                    let name = program.keys.name(key).as_bytes();
                    let index = match probed.iter().position(|k| *k.name == *name) {
                        Some(index) => index,
                        None if probed.len() < MAX_PROBED => {
                            probed.push(ProbedKey {
                                tag: key_tag(name),
                                name: name.into(),
                            });
                            probed.len() - 1
                        }
                        None => return None,
                    };
                    (*i, Some((index, want)))
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
            probed: probed.into_boxed_slice(),
        })
    }

    /// The read decision of `doc` (no output), or [`FastDecision::General`].
    pub fn decide(&self, program: &Program, doc: &RawDocument) -> FastDecision {
        let mut probe = Probe::new(doc);
        for r in self.roles.iter() {
            if let Some((key, want)) = &r.test {
                if let Want::Nothing = want {
                    continue;
                }
                let hit = match probe.field(&self.probed, *key) {
                    Ok(Some((kind, bytes))) => want.matches(kind, bytes),
                    Ok(None) => Ok(false),
                    Err(Malformed) => return FastDecision::General,
                };
                match hit {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(Malformed) => return FastDecision::General,
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
        Bson::String(s) | Bson::Symbol(s) => Some(Want::Str(s.as_bytes().into())),
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

#[cfg(test)]
mod tests {
    use bson::{Bson, RawDocumentBuf, doc};
    use proptest::prelude::*;

    use super::{Malformed, Probe, ProbedKey, Want, key_tag};
    use crate::eval::doc::{FastOperand, raw_field_eq};

    /// Values a role's equality test meets: strings near the operand (equal, a prefix, longer,
    /// other lengths), symbols, booleans, other types, and arrays of them.
    fn value() -> impl Strategy<Value = Bson> {
        let scalar = prop_oneof![
            "(u0|u|u00|u1|ü0|)".prop_map(Bson::String),
            "(u0|u1)".prop_map(|s| Bson::Symbol(s)),
            any::<bool>().prop_map(Bson::Boolean),
            any::<i32>().prop_map(Bson::Int32),
            Just(Bson::Null),
            Just(Bson::Document(doc! {"u0": "u0"})),
        ];
        prop_oneof![
            3 => scalar.clone(),
            1 => proptest::collection::vec(scalar, 0..4).prop_map(Bson::Array),
        ]
    }

    /// The type byte and value bytes of `v`, as the element scan slices them out.
    fn raw(v: &Bson) -> (u8, Vec<u8>) {
        let mut one = RawDocumentBuf::new();
        one.append("v", bson::RawBson::try_from(v.clone()).unwrap());
        let bytes = one.as_bytes();
        (bytes[4], bytes[7..bytes.len() - 1].to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::Direct(
                    "proptest-regressions/fast_want.txt"
                ),
            )),
            ..ProptestConfig::default()
        })]

        /// The fast path's operand test answers as `raw_field_eq` does (which the node
        /// evaluator uses), on well-formed values and on values with one byte changed (an
        /// array's elements are parsed only by the test itself).
        #[test]
        fn want_matches_as_raw_field_eq(
            v in value(),
            operand in prop_oneof!["(u0|u1|ü0|)".prop_map(Ok), any::<bool>().prop_map(Err)],
            corrupt in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
        ) {
            let (kind, mut bytes) = raw(&v);
            if let (Some((at, byte)), bson::spec::ElementType::Array) = (corrupt, v.element_type()) {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            let (want, fast) = match &operand {
                Ok(s) => (Want::Str(s.as_bytes().into()), FastOperand::Str(s)),
                Err(b) => (Want::Bool(*b), FastOperand::Bool(*b)),
            };
            let general = raw_field_eq(kind, &bytes, &fast).map_err(|_| Malformed);
            prop_assert_eq!(want.matches(kind, &bytes), general, "{:?} {:?}", v, operand);
        }
    }

    fn probed(names: &[&str]) -> Vec<ProbedKey> {
        names
            .iter()
            .map(|n| ProbedKey {
                tag: key_tag(n.as_bytes()),
                name: n.as_bytes().into(),
            })
            .collect()
    }

    /// What the probe finds for each name, in the order asked, as (type, value bytes).
    fn fields(doc: &RawDocumentBuf, names: &[&str], order: &[usize]) -> Vec<Option<(u8, Vec<u8>)>> {
        let keys = probed(names);
        let mut probe = Probe::new(doc);
        order
            .iter()
            .map(|&i| {
                probe
                    .field(&keys, i)
                    .map(|f| f.map(|(k, v)| (k, v.to_vec())))
                    .unwrap_or_else(|Malformed| panic!("malformed"))
            })
            .collect()
    }

    fn expected(doc: &RawDocumentBuf, name: &str) -> Option<(u8, Vec<u8>)> {
        let v = doc.get(name).ok()??;
        let mut one = RawDocumentBuf::new();
        one.append("", v.to_raw_bson());
        let bytes = one.as_bytes();
        Some((v.element_type() as u8, bytes[6..bytes.len() - 1].to_vec()))
    }

    #[test]
    fn finds_short_and_long_keys_in_any_order() {
        let doc = RawDocumentBuf::from_document(&doc! {
            "_id": 1, "owner_id": "u0", "shared_with": ["u1", "u0"], "public": true,
            "owner_idx": "not the owner", "pub": false,
        })
        .unwrap();
        let names = ["public", "owner_id", "shared_with", "missing", "pub"];
        for order in [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 3, 0, 4, 2]] {
            let got = fields(&doc, &names, &order);
            let want: Vec<_> = order.iter().map(|&i| expected(&doc, names[i])).collect();
            assert_eq!(got, want, "order {order:?}");
        }
    }

    #[test]
    fn the_first_element_of_a_repeated_key_wins() {
        // `doc!` keeps one of each key: write the repeated key by hand.
        let mut raw = RawDocumentBuf::new();
        raw.append("owner_id", "first");
        raw.append("x", 1);
        raw.append("owner_id", "second");
        for order in [[0usize, 1], [1, 0]] {
            let got = fields(&raw, &["owner_id", "y"], &order);
            let first = got.iter().find_map(|f| f.clone()).unwrap();
            assert_eq!(first.1, b"\x06\0\0\0first\0");
        }
    }

    #[test]
    fn a_malformed_element_before_the_field_is_reported() {
        let good = RawDocumentBuf::from_document(&doc! { "a": "xy", "b": 1 }).unwrap();
        let mut bytes = good.as_bytes().to_vec();
        bytes[7] = 0x7f; // the string's length: past the end
        let bad = bson::RawDocument::from_bytes(&bytes).unwrap();
        let keys = probed(&["b"]);
        assert_eq!(Probe::new(bad).field(&keys, 0), Err(Malformed));
    }
}
