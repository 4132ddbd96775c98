//! Stage: per-document read decisions, fast path. Input: a [`Program`] and its [`Prepared`]
//! request, when role selection has the most common shape of real rules: every role of the
//! request's plan is chosen by one equality test of a top-level field against a string or a
//! boolean known for the request (`{"owner_id": "%%user.id"}`, `{"public": true}`; a
//! conjunction whose other clauses hold for the request, `{"kind": "k0",
//! "%%user.custom_data.clearance": {"$gte": 1}}`; the live roles of a short indexed run,
//! `{"kind": "k1"}`, `{"kind": "k2"}`, ...) or always applies. Output: a [`FastRead`] plan
//! (built once per request, on first use), which selects the role of a raw document with one
//! forward scan for the tested fields ([`Probe`]), without the node evaluator, and, when that
//! role's document-level read and field actions are settled by the request, decides the
//! document — role and visibility, no output; otherwise [`FastDecision::General`] carries the
//! role to the general path, which decides the rest, with the values of the role's memoized
//! per-document field rules that are such equality tests (`{"%%root.owner": "%%user.id"}`),
//! settled from the same scan ([`Seeds`]) and taken by the evaluator as its memos.
//!
//! Equal to the general path (`doc.rs` `select`, then `read.rs` `read_level` and `redact_raw`
//! without output) on valid BSON, by construction: the same tests on the same bytes in the same
//! role order ([`Want::matches`], held equal to [`raw_field_eq`] by a property test), the read
//! level and the per-field actions computed once by the same code (`read_level`, `action_of`)
//! from rules that read only the request, and a stop at the first readable field only where the
//! general path stops too (field trees that cannot fail). Whatever it cannot settle without the
//! evaluator — a field rule that reads the document, a nested level — goes to the general path
//! with the role; a malformed element sends the document there from the start. Rules that call
//! a host `%function` are never evaluated here (the general path calls hosts only when a
//! document reaches them).
//!
//! Keys are matched in place: each name the plan reads (a tested field, or a top-level field
//! whose action differs from `additional_fields`', [`FieldScan`]) is compared with the 8 or 16
//! bytes at the key as masked words ([`ProbedKey`]), with no key tag and no hash.
//!
//! Its work per document is a scan of the document's top-level elements, linear in the
//! document: it is not charged to the step budget ([`crate::steps`]).

use bson::{Bson, RawDocument};

#[cfg(doc)]
use super::doc::raw_field_eq;
use super::doc::{Action, DocEval, Inherited, KeyCache};
use super::prepare::{Live, Partial, Prepared, SlotVal, Step};
use super::raw::{self, Elements, Malformed, bytes_eq, find_nul, value_size};
use super::read::Level;
use crate::compile::ir::{KeyId, Node, Opnd};
use crate::compile::{CPerms, CTree, NO_MEMO, Program, RoleProg, RuleRef};

/// A request's read-decision plan for the fast path.
#[derive(Debug, Clone)]
pub(crate) struct FastRead {
    /// The roles of the plan, in order.
    roles: Box<[FastRole]>,
    /// The distinct top-level fields the roles test (at most [`MAX_PROBED`]).
    probed: Box<[ProbedKey]>,
    /// No role tests `_id`: the probe steps over a first element that is an ObjectId `_id`
    /// without matching its key ([`Probe::new`]).
    skips_id: bool,
}

#[derive(Debug, Clone)]
struct FastRole {
    /// Index in the policy's roles.
    role: u32,
    /// The tested field (index in [`FastRead::probed`]) and the value wanted; `None`: the role
    /// always applies.
    test: Option<(usize, Want)>,
    read: Read,
    /// The role's document-level read decision when the request alone makes it and leaves the
    /// document to the field rules (`Level::Fields`): the permissions the top-level field rules
    /// inherit. `None` when it is another decision or needs the document.
    level: Option<Inherited>,
    /// The role's memoized per-document field rules that are equality tests of a top-level
    /// field (`{"%%root.owner": "%%user.id"}`): settled from the probe for the general path.
    seeds: Box<[Seed]>,
}

/// A memoized field rule the probe settles: [`RuleRef::memo`], the field (index in
/// [`FastRead::probed`]) and the value wanted.
#[derive(Debug, Clone)]
struct Seed {
    memo: u32,
    key: usize,
    want: Want,
}

/// Most seeds per role.
const MAX_SEEDS: usize = 4;

/// The values of the selected role's [`Seed`]s for one document: `(memo, value)`, to be
/// remembered by the general path's evaluator ([`DocEval::seed_memo`]) before it decides.
// PERF: packed (the values as bits), so that the decision carrying it moves in a few words
// (W1 decision: the tuple array with its padding was copied byte by byte).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Seeds {
    memos: [u32; MAX_SEEDS],
    len: u8,
    /// Bit `i`: the value of `memos[i]`.
    values: u8,
}

impl Seeds {
    /// The settled memos.
    pub fn iter(&self) -> impl Iterator<Item = (u32, bool)> + '_ {
        let values = self.values;
        self.memos
            .iter()
            .take(usize::from(self.len))
            .enumerate()
            .map(move |(i, memo)| (*memo, values & (1 << i) != 0))
    }

    /// Adds a settled memo (at most [`MAX_SEEDS`]; more are left to the evaluator).
    fn push(&mut self, memo: u32, value: bool) {
        let i = usize::from(self.len);
        if let Some(slot) = self.memos.get_mut(i) {
            *slot = memo;
            self.values |= u8::from(value) << i;
            self.len += 1;
        }
    }
}

/// Most distinct fields the role tests of a plan may read: a [`Probe`] keeps what it found in a
/// fixed array (no allocation, no per-document reset of a cache); plans testing more fields
/// take the general path.
const MAX_PROBED: usize = 8;

/// A field some role tests, matched against an element's key bytes in place.
#[derive(Debug, Clone)]
struct ProbedKey {
    name: Box<[u8]>,
    /// The name followed by its terminating NUL, as little-endian words: the first 8 bytes in
    /// `word` (with `mask` selecting the bytes that count), the next 8 in `word2` / `mask2`
    /// (`mask2` is 0 for names shorter than 8 bytes). A name holding a NUL, which no BSON key
    /// is, has `word` 1 under a zero `mask`: it matches nothing.
    word: u64,
    mask: u64,
    word2: u64,
    mask2: u64,
    /// The name and its NUL from the 9th byte on, for names of 8 bytes or more.
    rest: Box<[u8]>,
}

/// A word of the bytes of `bytes` (at most 8) and the mask of the bytes it holds.
fn word_of(bytes: &[u8]) -> (u64, u64) {
    let mut word = [0u8; 8];
    let mut n = 0;
    for (w, b) in word.iter_mut().zip(bytes) {
        *w = *b;
        n += 1;
    }
    let mask = if n == 8 {
        u64::MAX
    } else {
        (1u64 << (n * 8)) - 1
    };
    (u64::from_le_bytes(word), mask)
}

/// The 8 bytes at `at` in `bytes` as a little-endian word, when there are 8.
#[inline(always)]
fn load_word(bytes: &[u8], at: usize) -> Option<u64> {
    bytes
        .get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map(u64::from_le_bytes)
}

impl ProbedKey {
    fn new(name: &[u8]) -> ProbedKey {
        let mut terminated = name.to_vec();
        terminated.push(0);
        let (word, mask) = word_of(&terminated);
        let rest = terminated.get(8..).unwrap_or_default();
        let (word2, mask2) = word_of(rest);
        // A name holding a NUL matches no key: its first word is one no masked word equals
        // (a bit outside the mask), so the test of the first word says so alone.
        let (word, mask) = if name.contains(&0) {
            (1, 0)
        } else {
            (word, mask)
        };
        ProbedKey {
            name: name.into(),
            word,
            mask,
            word2,
            mask2,
            rest: rest.into(),
        }
    }

    /// Whether the key at `at` in `bytes` is this name, given `word`, the 8 bytes at `at`.
    #[inline(always)]
    fn at(&self, bytes: &[u8], at: usize, word: u64) -> bool {
        // INVARIANT: the compared bytes include the NUL that ends the name, so a match is the
        // whole key: the element's key ends where the name does (at its first NUL).
        if word & self.mask != self.word {
            return false;
        }
        if self.rest.is_empty() {
            return true;
        }
        // PERF: names of up to 15 bytes compare a second word, not a slice (a `memcmp` call).
        match load_word(bytes, at + 8) {
            Some(word2) if self.rest.len() <= 8 => word2 & self.mask2 == self.word2,
            _ => bytes.get(at + 8..at + 8 + self.rest.len()) == Some(&self.rest),
        }
    }
}

/// The index of the first of `keys` that the key at `at` in `bytes` (whose first 8 bytes are
/// `word`) is.
// PERF: a plain loop, always inlined: `Iterator::position` was at times left out of line, a
// call per element (W2-20 redact 6,951 -> 6,779 instructions per document).
#[inline(always)]
fn match_key(keys: &[ProbedKey], bytes: &[u8], at: usize, word: u64) -> Option<usize> {
    for (i, k) in keys.iter().enumerate() {
        if k.at(bytes, at, word) {
            return Some(i);
        }
    }
    None
}

/// One element of a raw document, as [`next_element`] parsed it.
struct Element {
    kind: u8,
    /// The index of the name in the keys it was matched against.
    hit: Option<usize>,
    value_start: usize,
    /// Offset of the next element.
    end: usize,
}

impl Element {
    /// The element's value bytes.
    #[inline(always)]
    fn value<'d>(&self, bytes: &'d [u8]) -> &'d [u8] {
        bytes.get(self.value_start..self.end).unwrap_or_default()
    }
}

/// The element at `start` of the raw document `bytes` (checked by `RawDocument::from_bytes`),
/// its key matched against `keys` in place; `None` at the NUL that ends the document.
// PERF: the key is matched in place, 8 bytes at a time against each name and its NUL (no key
// tag, no hash, no search for the NUL of a name); only other keys are measured, to be skipped.
#[inline(always)]
fn next_element(
    bytes: &[u8],
    start: usize,
    keys: &[ProbedKey],
) -> Result<Option<Element>, Malformed> {
    let kind = *bytes.get(start).ok_or(Malformed)?;
    if kind == 0 {
        // INVARIANT: `RawDocument::from_bytes` checked that the last byte is the NUL that ends
        // the document; a NUL type byte anywhere else is malformed.
        return if start + 1 == bytes.len() {
            Ok(None)
        } else {
            Err(Malformed)
        };
    }
    let key_start = start + 1;
    let word = load_word(bytes, key_start);
    let hit = match word {
        Some(word) => match_key(keys, bytes, key_start, word),
        None => None,
    };
    // PERF: a key of up to seven bytes other than the names (W1's `_id`) is measured in the
    // word already read (W1 decision 585 -> 570 instructions per document).
    let key_len = match hit.and_then(|i| keys.get(i)) {
        Some(k) => k.name.len(),
        None => match word.and_then(raw::nul_in_word) {
            Some(len) => len,
            None => find_nul(bytes.get(key_start..).ok_or(Malformed)?).ok_or(Malformed)?,
        },
    };
    // Near the end of the document the word cannot be read: compare the key itself.
    let hit = match (word, hit) {
        (None, _) => {
            let key = bytes
                .get(key_start..key_start + key_len)
                .unwrap_or_default();
            keys.iter().position(|k| *k.name == *key)
        }
        (Some(_), hit) => hit,
    };
    let value_start = key_start + key_len + 1;
    let tail = bytes.get(value_start..).ok_or(Malformed)?;
    let end = value_start + value_size(kind, tail)?;
    // INVARIANT: an element ends before the document's closing NUL (the last byte).
    if end >= bytes.len() {
        return Err(Malformed);
    }
    Ok(Some(Element {
        kind,
        hit,
        value_start,
        end,
    }))
}

/// The tested fields of one document, found by one forward scan that every role's test resumes
/// (each element is parsed at most once; the scan stops as soon as the field asked for is
/// found). The first element with a key wins, as in `RawDocument::get` and `KeyCache`.
struct Probe<'d> {
    bytes: &'d [u8],
    /// Offset of the next element to read.
    pos: usize,
    /// Type and value bytes of each probed field met so far.
    found: [Option<(u8, &'d [u8])>; MAX_PROBED],
}

/// The first five bytes of an element `_id` holding an ObjectId (type 7, key, NUL), as the
/// low bytes of a little-endian word, and the mask selecting them.
const OBJECT_ID_HEAD: u64 = u64::from_le_bytes([7, b'_', b'i', b'd', 0, 0, 0, 0]);
const OBJECT_ID_HEAD_MASK: u64 = 0xff_ffff_ffff;
/// Where the element after a first ObjectId `_id` starts: length prefix (4), type, key and
/// NUL (5), the ObjectId (12).
const AFTER_OBJECT_ID: usize = 21;

impl<'d> Probe<'d> {
    /// A probe of `doc` from its first element; with `skips_id` (no probed name is `_id`), from
    /// the second when the first is an ObjectId `_id`.
    // PERF: MongoDB stores `_id` first, an ObjectId unless the application chose otherwise; an
    // element of fixed size that no role tests needs no key match (W1 decision: one element
    // of three or four).
    #[inline(always)]
    fn new(doc: &'d RawDocument, skips_id: bool) -> Self {
        let bytes = doc.as_bytes();
        // INVARIANT: the skipped element is well formed: its type's size is fixed and its 12
        // bytes lie before the document's last byte (its NUL, which `RawDocument` checked).
        let first_is_object_id = skips_id
            && bytes.len() > AFTER_OBJECT_ID
            && load_word(bytes, 4).is_some_and(|w| w & OBJECT_ID_HEAD_MASK == OBJECT_ID_HEAD);
        Probe {
            bytes,
            pos: if first_is_object_id {
                AFTER_OBJECT_ID
            } else {
                4
            },
            found: [None; MAX_PROBED],
        }
    }

    /// Whether the probe has read the document's first element (and found it well formed).
    #[inline(always)]
    fn past_first(&self) -> bool {
        self.pos > 4
    }

    /// The type and value bytes of probed field `want` (index in `probed`).
    #[inline(always)]
    fn field(
        &mut self,
        probed: &[ProbedKey],
        want: usize,
    ) -> Result<Option<(u8, &'d [u8])>, Malformed> {
        if let Some(Some(hit)) = self.found.get(want) {
            return Ok(Some(*hit));
        }
        let bytes = self.bytes;
        loop {
            let Some(elem) = next_element(bytes, self.pos, probed)? else {
                return Ok(None);
            };
            self.pos = elem.end;
            let hit = elem.hit;
            let (kind, value) = (elem.kind, elem.value(bytes));
            let Some(i) = hit else { continue };
            if let Some(slot @ None) = self.found.get_mut(i) {
                *slot = Some((kind, value));
                if i == want {
                    return Ok(*slot);
                }
            }
        }
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

/// Is the string value `value` (its i32 length, bytes, NUL, as [`Probe`] sliced it) the string
/// `s`? The length prefix says how long the value is (`value_size`), so a value of `s.len() + 5`
/// bytes has the prefix `s.len() + 1`, which is what `raw_field_eq` tests, and then the bytes.
#[inline(always)]
fn str_is(value: &[u8], s: &[u8]) -> bool {
    value.len() == s.len() + 5 && bytes_eq(value.get(4..4 + s.len()).unwrap_or_default(), s)
}

/// A role's read decision when it is selected.
// PERF: an explicit tag, so that the decision's `match` loads one byte instead of deriving
// the variant from a niche in `FieldScan` (W1 decision 569 -> 561 instructions per document).
#[derive(Debug, Clone)]
#[repr(u8)]
enum Read {
    Whole,
    Hidden,
    /// Field rules decide; the action of each field (in `CTree::fields` order, then
    /// `additional_fields`).
    Fields(Box<[Field]>),
    /// Field rules decide, and few fields act otherwise than `additional_fields`: their keys
    /// are matched in place.
    Scan(FieldScan),
    /// Only the general path can decide.
    General,
}

/// The top-level fields of a role whose action is not that of `additional_fields`, with their
/// actions, and the action of every other field.
#[derive(Debug, Clone)]
struct FieldScan {
    keys: Box<[ProbedKey]>,
    actions: Box<[Field]>,
    additional: Field,
    /// The role keeps a top-level `_id`: a document whose first element is `_id` (as MongoDB
    /// stores every document) is visible, once that element is known to be well formed.
    keeps_id: bool,
}

/// Most fields a [`FieldScan`] matches (each element's key is compared with each).
const MAX_SCANNED: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Keep,
    Drop,
    General,
}

/// The role [`FastRead::select`] found for a document.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Selected {
    /// The role, by policy index (`None`: no role applies).
    pub role: Option<u32>,
    /// The role's per-document rules the selection's scan settled.
    pub seeds: Seeds,
    /// The role's document-level decision when the request alone makes it and it leaves the
    /// document to the field rules: the permissions those inherit ([`FastRole::level`]).
    pub level: Option<Inherited>,
}

/// What the fast path made of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FastDecision {
    /// The role (by policy index) and whether the document is visible.
    Decided { role: Option<u32>, visible: bool },
    /// Decide it on the general path; the role it gets when the plan could tell
    /// (`Some(None)`: no role applies), else `None`; and the rules the probe settled.
    General(Option<Option<u32>>, Seeds),
}

impl FastRead {
    /// The plan for `prepared`, or `None` when its role selection does not have the shape.
    pub fn build(program: &Program, prepared: &Prepared<'_>) -> Option<FastRead> {
        let mut plan = PlanBuilder::default();
        for step in &prepared.plan {
            let stop = match step {
                Step::Always(i) => plan.role(program, prepared, *i, None)?,
                Step::Role(i) => {
                    let aw = program.roles.get(*i as usize)?.apply_when?;
                    let (key, want) = equality_test(program, prepared, aw)?;
                    let name = program.keys.name(key).as_bytes();
                    plan.role(program, prepared, *i, Some((name, want)))?
                }
                Step::Run { run, live } => plan.run(program, prepared, *run, live)?,
                Step::Fail { .. } => return None,
            };
            if stop {
                break;
            }
        }
        let skips_id = !plan.probed.iter().any(|k| *k.name == *b"_id");
        Some(FastRead {
            roles: plan.roles.into_boxed_slice(),
            probed: plan.probed.into_boxed_slice(),
            skips_id,
        })
    }

    /// The role of the probed document (the first whose test holds; `None` when none does), as
    /// [`DocEval::select`] decides it; `Err` when an element it reads is malformed (the general
    /// path then decides the document from the start).
    // PERF: always inlined, with `raw::any_value`: left to the inliner, one or the other was
    // left out of line once `select` grew (W1 decision 638 -> 655 or 686 instructions per
    // document).
    #[inline(always)]
    fn select_role(&self, probe: &mut Probe<'_>) -> Result<Option<&FastRole>, Malformed> {
        for r in self.roles.iter() {
            if let Some((key, want)) = &r.test {
                if let Want::Nothing = want {
                    continue;
                }
                let hit = match probe.field(&self.probed, *key)? {
                    Some((kind, bytes)) => want.matches(kind, bytes)?,
                    None => false,
                };
                if !hit {
                    continue;
                }
            }
            return Ok(Some(r));
        }
        Ok(None)
    }

    /// The [`Seeds`] of `role` on the probed document (none when it has none).
    // PERF: asked for only where the general path takes over, so that a decided document
    // neither builds nor moves them.
    #[inline(always)]
    fn role_seeds(&self, role: &FastRole, probe: &mut Probe<'_>) -> Seeds {
        if role.seeds.is_empty() {
            Seeds::default()
        } else {
            self.seeds(role, probe)
        }
    }

    /// The values of `role`'s seeds on the probed document, as the evaluator would compute
    /// them (`DocEval::field_eq`: the first element with the key, [`Want::matches`]); stops at
    /// the first it cannot settle (a malformed element), leaving the rest to the evaluator.
    #[inline(never)]
    fn seeds(&self, role: &FastRole, probe: &mut Probe<'_>) -> Seeds {
        self.seeds_inline(role, probe)
    }

    /// [`FastRead::seeds`], inlined: the redaction path's selection (`select`), which asks for
    /// the seeds of every document, takes them in its own frame.
    #[inline(always)]
    fn seeds_inline(&self, role: &FastRole, probe: &mut Probe<'_>) -> Seeds {
        let mut seeds = Seeds::default();
        for seed in role.seeds.iter() {
            let value = match probe.field(&self.probed, seed.key) {
                Ok(Some((kind, bytes))) => seed.want.matches(kind, bytes),
                Ok(None) => Ok(false),
                Err(Malformed) => Err(Malformed),
            };
            let Ok(value) = value else { break };
            seeds.push(seed.memo, value);
        }
        seeds
    }

    /// The roles of the plan, by policy index, in the order they are tested.
    #[cfg(test)]
    pub fn roles(&self) -> impl Iterator<Item = u32> + '_ {
        self.roles.iter().map(|r| r.role)
    }

    /// The number of seeds of each role of the plan.
    #[cfg(test)]
    pub fn seed_counts(&self) -> Vec<usize> {
        self.roles.iter().map(|r| r.seeds.len()).collect()
    }

    /// The role `doc` gets (by policy index; `Ok(None)` when no role applies), as
    /// [`DocEval::select`] decides it, with the role's seeds and its request-only
    /// document-level decision ([`Selected`]); `Err` when only the general path can tell.
    // PERF: always inlined at its one call (`raw_compiled` of `redact_raw`): the inliner
    // left it out of line or not from one change to the next (W1 redact +60 instructions per
    // document out of line).
    #[inline(always)]
    pub fn select(&self, doc: &RawDocument) -> Result<Selected, Malformed> {
        let mut probe = Probe::new(doc, self.skips_id);
        Ok(match self.select_role(&mut probe)? {
            Some(r) => Selected {
                role: Some(r.role),
                seeds: if r.seeds.is_empty() {
                    Seeds::default()
                } else {
                    self.seeds_inline(r, &mut probe)
                },
                level: r.level,
            },
            None => Selected::default(),
        })
    }

    /// The read decision of `doc` (no output), or [`FastDecision::General`].
    // PERF: inlined at its one call (`raw_compiled`): W1 decision 779 -> 764, W2-20 redact
    // 7,822 -> 7,764 instructions per document.
    #[inline(always)]
    pub fn decide(&self, program: &Program, doc: &RawDocument) -> FastDecision {
        let mut probe = Probe::new(doc, self.skips_id);
        let r = match self.select_role(&mut probe) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return FastDecision::Decided {
                    role: None,
                    visible: false,
                };
            }
            Err(Malformed) => return FastDecision::General(None, Seeds::default()),
        };
        let visible = match &r.read {
            Read::Whole => Some(true),
            Read::Hidden => Some(false),
            Read::General => None,
            Read::Fields(actions) => program
                .roles
                .get(r.role as usize)
                .and_then(|prog_role| any_kept(prog_role, actions, doc)),
            Read::Scan(scan) => scan.any_kept(doc, &probe),
        };
        match visible {
            Some(visible) => FastDecision::Decided {
                role: Some(r.role),
                visible,
            },
            None => FastDecision::General(Some(Some(r.role)), self.role_seeds(r, &mut probe)),
        }
    }
}

/// The roles and probed fields of a [`FastRead`] being built.
#[derive(Default)]
struct PlanBuilder {
    roles: Vec<FastRole>,
    probed: Vec<ProbedKey>,
}

/// Most live roles of an indexed run that the plan tests one by one; larger runs keep their
/// index (the general path).
const MAX_RUN_ROLES: usize = 16;

impl PlanBuilder {
    /// Adds role `role`, tested by `test` (a top-level field's name and the value wanted;
    /// `None`: it always applies). `Some(true)`: the plan ends here (no later role is ever
    /// reached); `None`: the plan cannot have this shape.
    fn role(
        &mut self,
        program: &Program,
        prepared: &Prepared<'_>,
        role: u32,
        test: Option<(&[u8], Want)>,
    ) -> Option<bool> {
        let test = match test {
            Some((name, want)) => Some((self.probe(name)?, want)),
            None => None,
        };
        let prog_role = program.roles.get(role as usize)?;
        let (read, level) = read_of(program, prepared, prog_role);
        let mut seeds = Vec::new();
        self.seeds_of(program, prepared, &prog_role.fields, &mut seeds);
        let always = test.is_none();
        self.roles.push(FastRole {
            role,
            test,
            read,
            level,
            seeds: seeds.into_boxed_slice(),
        });
        Some(always)
    }

    /// Collects the [`Seed`]s of the field rules of `tree` and its nested levels (at most
    /// [`MAX_SEEDS`], each memo once; a rule whose field cannot be probed is left to the
    /// evaluator).
    fn seeds_of(
        &mut self,
        program: &Program,
        prepared: &Prepared<'_>,
        tree: &CTree,
        seeds: &mut Vec<Seed>,
    ) {
        let levels = tree.fields.iter().map(|(_, f)| (&f.perms, Some(&f.nested)));
        let additional = std::iter::once((tree.additional_perms(), None));
        for (perms, nested) in levels.chain(additional) {
            for rule in [perms.read, perms.write].into_iter().flatten() {
                if seeds.len() >= MAX_SEEDS {
                    return;
                }
                if rule.memo == NO_MEMO || seeds.iter().any(|s| s.memo == rule.memo) {
                    continue;
                }
                let Some((key, want)) = equality_test(program, prepared, rule) else {
                    continue;
                };
                let Some(key) = self.probe(program.keys.name(key).as_bytes()) else {
                    continue;
                };
                seeds.push(Seed {
                    memo: rule.memo,
                    key,
                    want,
                });
            }
            if let Some(nested) = nested {
                self.seeds_of(program, prepared, nested, seeds);
            }
        }
    }

    /// The index of probed field `name`, added if new; `None` past [`MAX_PROBED`].
    fn probe(&mut self, name: &[u8]) -> Option<usize> {
        if let Some(index) = self.probed.iter().position(|k| *k.name == *name) {
            return Some(index);
        }
        if self.probed.len() >= MAX_PROBED {
            return None;
        }
        self.probed.push(ProbedKey::new(name));
        Some(self.probed.len() - 1)
    }

    /// Adds the live roles of indexed run `run`, in order, each tested by its one document
    /// test (a top-level field equal to a string: what `DocEval::run_doc_tests` checks; the
    /// request tests were settled when `live` was computed). `None` when a role has more than
    /// one document test or a nested path, or the run has more than [`MAX_RUN_ROLES`] live
    /// roles.
    fn run(
        &mut self,
        program: &Program,
        prepared: &Prepared<'_>,
        run: u32,
        live: &Live,
    ) -> Option<bool> {
        let run = program.runs.get(run as usize)?;
        let positions: Vec<u32> = (0..run.len).filter(|p| live.contains(*p)).collect();
        if positions.len() > MAX_RUN_ROLES {
            return None;
        }
        for pos in positions {
            let mut doc_tests = run.tests.get(pos as usize)?.iter().filter(|t| t.doc);
            let test = match (doc_tests.next(), doc_tests.next()) {
                (None, _) => None,
                (Some(t), None) => {
                    let path = run.doc_paths.get(t.path as usize)?;
                    if !path.rest.is_empty() {
                        return None;
                    }
                    let name = program.keys.name(path.key?).as_bytes();
                    Some((name, Want::Str(t.value.as_bytes().into())))
                }
                (Some(_), Some(_)) => return None,
            };
            if self.role(program, prepared, run.start + pos, test)? {
                return Some(true);
            }
        }
        Some(false)
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

impl FieldScan {
    /// The scan of `role`'s top-level fields, whose actions are `actions` (in `CTree::fields`
    /// order, then `additional_fields`); `None` when more than [`MAX_SCANNED`] fields act
    /// otherwise than `additional_fields`, or a name is given twice.
    fn new(role: &RoleProg, actions: &[Field]) -> Option<FieldScan> {
        let additional = *actions.last()?;
        let mut keys = Vec::new();
        let mut scanned = Vec::new();
        for ((name, _), action) in role.fields.fields.iter().zip(actions) {
            if *action != additional {
                if keys.len() == MAX_SCANNED {
                    return None;
                }
                keys.push(ProbedKey::new(name.as_bytes()));
                scanned.push(*action);
            }
        }
        // The field index answers one rule per name (the first of a name given twice): a
        // repeated name is seen as a field the index does not answer with its own position.
        let tree = &role.fields;
        let unique = tree.fields.iter().enumerate().all(|(i, (name, _))| {
            let name = name.as_bytes();
            tree.index.find_tagged(raw::key_tag(name), name) == Some(i as u32)
        });
        if !unique {
            return None;
        }
        let id_action = match keys.iter().position(|k| *k.name == *b"_id") {
            Some(i) => scanned.get(i).copied().unwrap_or(Field::General),
            None => additional,
        };
        Some(FieldScan {
            keys: keys.into_boxed_slice(),
            actions: scanned.into_boxed_slice(),
            additional,
            keeps_id: id_action == Field::Keep,
        })
    }

    /// What [`any_kept`] answers, with each key matched in place; `probe` is the role
    /// selection's probe of the same document.
    #[inline(always)]
    fn any_kept(&self, doc: &RawDocument, probe: &Probe<'_>) -> Option<bool> {
        let bytes = doc.as_bytes();
        // PERF: the scan would stop at its first element when that is a kept `_id`, and the
        // probe has checked that element if it went past it (W1 decision: the `shared` and
        // `public` roles, 634 -> 586 instructions per document).
        if self.keeps_id && probe.past_first() && bytes.get(5..9) == Some(b"_id\0") {
            return Some(true);
        }
        let mut pos = 4;
        while let Some(elem) = next_element(bytes, pos, &self.keys).ok()? {
            pos = elem.end;
            let action = match elem.hit {
                Some(i) => self.actions.get(i).copied().unwrap_or(Field::General),
                None => self.additional,
            };
            match action {
                Field::Keep => return Some(true),
                Field::Drop => {}
                Field::General => return None,
            }
        }
        Some(false)
    }
}

/// The role's `apply_when` as a fast test: one top-level field equal to a string or boolean
/// that is known for the request without calling a host.
///
/// A conjunction qualifies when all its clauses but one such test hold for the request
/// (`{"kind": "k0", "%%user.custom_data.clearance": {"$gte": 1}}` for a user it admits): the
/// conjunction is then that test.
fn equality_test(program: &Program, prepared: &Prepared<'_>, aw: RuleRef) -> Option<(KeyId, Want)> {
    let f = match program.nodes.get(aw.node) {
        Some(Node::FieldEq(f)) => f,
        Some(Node::All(clauses)) => {
            let mut tests = clauses
                .iter()
                .filter(|c| !matches!(prepared.partial(program, **c), Partial::Known(Ok(true))));
            let (Some(only), None) = (tests.next(), tests.next()) else {
                return None;
            };
            let Some(Node::FieldEq(f)) = program.nodes.get(*only) else {
                return None;
            };
            f
        }
        _ => return None,
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

/// What `role` does with a document it is selected for, decided on the request alone, and
/// its document-level decision when that is `Level::Fields` ([`FastRole::level`]).
fn read_of(
    program: &Program,
    prepared: &Prepared<'_>,
    role: &RoleProg,
) -> (Read, Option<Inherited>) {
    if role.has_doc_filters || !settled(program, role.read) || !settled(program, role.write) {
        return (Read::General, None);
    }
    let mut cache = KeyCache::default();
    let mut eval = DocEval::new(program, prepared, None, None, true, &mut cache, None);
    match eval.read_level(role) {
        Ok(Level::Whole) => (Read::Whole, None),
        Ok(Level::Hidden) => (Read::Hidden, None),
        Ok(Level::Fields(inherited)) if role.fields.infallible => {
            let actions = field_actions(&mut eval, program, role, inherited);
            let read = match FieldScan::new(role, &actions) {
                Some(scan) => Read::Scan(scan),
                None => Read::Fields(actions),
            };
            (read, Some(inherited))
        }
        Ok(Level::Fields(inherited)) => (Read::General, Some(inherited)),
        Err(_) => (Read::General, None),
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

    use super::{Malformed, Probe, ProbedKey, Want};
    use crate::eval::doc::{FastOperand, raw_field_eq};

    /// Values a role's equality test meets: strings near the operand (equal, a prefix, longer,
    /// other lengths), symbols, booleans, other types, and arrays of them.
    fn value() -> impl Strategy<Value = Bson> {
        let scalar = prop_oneof![
            "(u0|u|u00|u1|ü0|)".prop_map(Bson::String),
            "(u0|u1)".prop_map(Bson::Symbol),
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
            ..crate::test_support::persisted("proptest-regressions/fast_want.txt")
        })]

        /// The fast path's operand test answers as `raw_field_eq` does (which the node
        /// evaluator uses), on well-formed values and on values with one byte changed (an
        /// array's elements are parsed only by the test itself).
        #[test]
        fn want_matches_as_raw_field_eq(
            v in value(),
            operand in prop_oneof!["(u0|u1|ü0|)".prop_map(Ok), any::<bool>().prop_map(Err)],
            corrupt in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
            small_prefix in proptest::option::of((any::<prop::sample::Index>(), -1..6i32)),
        ) {
            let (kind, mut bytes) = raw(&v);
            if let (Some((at, byte)), bson::spec::ElementType::Array) = (corrupt, v.element_type()) {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            // A length prefix near its least valid value (a string's 1, a document's 5),
            // written anywhere in an array.
            if let (Some((at, n)), bson::spec::ElementType::Array) = (small_prefix, v.element_type())
            {
                let at = at.index(bytes.len());
                if let Some(word) = bytes.get_mut(at..at + 4) {
                    word.copy_from_slice(&n.to_le_bytes());
                }
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
        names.iter().map(|n| ProbedKey::new(n.as_bytes())).collect()
    }

    /// What the probe finds for each name, in the order asked, as (type, value bytes); it
    /// steps over a first ObjectId `_id` unless `_id` is among the names, as a plan's does.
    fn fields(doc: &RawDocumentBuf, names: &[&str], order: &[usize]) -> Vec<Option<(u8, Vec<u8>)>> {
        let keys = probed(names);
        let mut probe = Probe::new(doc, !names.contains(&"_id"));
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

    /// Keys around the probed names: equal, one byte shorter or longer, differing in the last
    /// byte, across the 8- and 16-byte word boundaries of [`ProbedKey`], and with a NUL inside.
    fn key() -> impl Strategy<Value = String> {
        let stems = vec![
            "a",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmno",
            "abcdefghijklmnop",
        ];
        (prop::sample::select(stems), 0..4usize).prop_map(|(stem, edit)| match edit {
            0 => stem.to_owned(),
            1 => stem[..stem.len() - 1].to_owned(),
            2 => format!("{stem}x"),
            _ => format!("{}z", &stem[..stem.len() - 1]),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            ..crate::test_support::persisted("proptest-regressions/fast_probe.txt")
        })]

        /// The probe finds what `RawDocument::get` finds (the first element with the key), for
        /// names of every length class, in any order of asking, with the probed element last
        /// (where fewer than 8 bytes follow its key) or anywhere; after a first `_id` that is
        /// an ObjectId (stepped over unless probed), another value, or none, or after an
        /// ObjectId under a key that is nearly `_id`; and with `_id` again later.
        #[test]
        fn probe_finds_what_get_finds(
            first_id in 0..5u8,
            probe_first in any::<bool>(),
            keys in proptest::collection::vec((key(), any::<i32>()), 0..8),
            names in proptest::collection::vec(key(), 1..5),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 1..6),
        ) {
            let mut raw = RawDocumentBuf::new();
            let oid = bson::RawBson::ObjectId(bson::oid::ObjectId::from_bytes([0; 12]));
            let first = match first_id {
                0 => None,
                1 => Some(("_id", oid)),
                2 => Some(("_id", bson::RawBson::Int32(7))),
                3 => Some(("_idx", oid)),
                _ => Some(("_i", oid)),
            };
            if let Some((k, v)) = &first {
                raw.append(*k, v.clone());
            }
            for (k, v) in &keys {
                raw.append(k.as_str(), *v);
            }
            raw.append("_id", "again");
            // The plan probes each name once (`PlanBuilder::probe`).
            let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
            if let (true, Some((k, _))) = (probe_first, &first) {
                names.push(*k);
            }
            names.sort_unstable();
            names.dedup();
            let order: Vec<usize> = order.iter().map(|i| i.index(names.len())).collect();
            let got = fields(&raw, &names, &order);
            let want: Vec<_> = order.iter().map(|&i| expected(&raw, names[i])).collect();
            prop_assert_eq!(got, want);
        }
    }

    /// The fast plan of `roles` for a user with `custom` data (`None`: no plan).
    fn plan_of(roles: serde_json::Value, custom: bson::Document) -> Option<Vec<u32>> {
        let file = serde_json::json!({"database": "app", "collection": "items", "roles": roles});
        let set =
            crate::RuleSet::from_json("rules.json", &file, &crate::LoadOptions::default()).unwrap();
        let rules = crate::Rules::new(set);
        let coll = rules.collection("app.items").unwrap();
        let ctx = crate::RequestContext::for_user(
            doc! {"id": "alice", "type": "normal", "data": {}, "custom_data": custom},
        );
        let prepared = coll.prepare_with(&ctx, crate::EngineKind::Compiled);
        prepared.fast_plan_roles()
    }

    /// Four roles tested on `kind` (and on `%%user.custom_data.region` with `region`), from
    /// policy index `first`: an indexed run (`compile::index::MIN_RUN` is 4).
    fn run_of(first: usize, region: bool) -> Vec<serde_json::Value> {
        (first..first + 4)
            .map(|i| {
                let mut aw = serde_json::json!({"kind": format!("k{i}")});
                if region {
                    aw["%%user.custom_data.region"] = (if i % 2 == 0 { "eu" } else { "us" }).into();
                }
                serde_json::json!({"name": format!("t{i}"), "apply_when": aw})
            })
            .collect()
    }

    #[test]
    fn conjunctions_and_indexed_runs_make_fast_plans() {
        let tiers = |extra: Vec<serde_json::Value>| {
            let mut roles = vec![serde_json::json!(
                {"name": "t0", "apply_when": {"kind": "k0", "%%user.custom_data.level": {"$gte": 1}}}
            )];
            roles.extend(run_of(1, false));
            roles.extend(run_of(5, true));
            roles.extend(extra);
            roles.push(serde_json::json!({"name": "last", "apply_when": {"public": true}}));
            serde_json::Value::Array(roles)
        };
        // The second run keeps the roles of the user's region.
        let eu = doc! {"level": 2, "region": "eu"};
        assert_eq!(
            plan_of(tiers(vec![]), eu.clone()),
            Some(vec![0, 1, 2, 3, 4, 6, 8, 9])
        );
        // The request clause fails: t0 is dropped.
        let us = doc! {"level": 0, "region": "us"};
        assert_eq!(plan_of(tiers(vec![]), us), Some(vec![1, 2, 3, 4, 5, 7, 9]));
        // Shapes the plan does not take: two document tests, a nested path.
        let two: Vec<_> = (9..13)
            .map(|i| {
                serde_json::json!({"name": format!("s{i}"),
                                        "apply_when": {"kind": format!("k{i}"), "sub": "x"}})
            })
            .collect();
        assert_eq!(plan_of(tiers(two), eu.clone()), None);
        let nested = serde_json::json!({"name": "n", "apply_when": {"m.a": "x"}});
        assert_eq!(plan_of(tiers(vec![nested]), eu.clone()), None);
        // A run longer than the plan tests one by one.
        let long: Vec<serde_json::Value> = (0..=super::MAX_RUN_ROLES)
            .map(|i| serde_json::json!({"name": format!("r{i}"), "apply_when": {"kind": format!("k{i}")}}))
            .collect();
        assert_eq!(
            plan_of(serde_json::Value::Array(long.clone()), eu.clone()),
            None
        );
        let fits = serde_json::Value::Array(long[1..].to_vec());
        assert_eq!(
            plan_of(fits, eu).map(|p| p.len()),
            Some(super::MAX_RUN_ROLES)
        );
    }

    #[test]
    fn memoized_equality_field_rules_become_seeds() {
        let file = serde_json::json!({"database": "app", "collection": "items", "roles": [
            {"name": "a", "apply_when": {"kind": "a"}, "fields": {
                "x": {"read": {"%%root.owner": "%%user.id"}},
                "y": {"read": {"%%root.owner": "%%user.id"}},
                "n": {"fields": {"z": {"read": {"%%root.team": "red"}}}},
                "w": {"read": {"%%root.owner": {"$in": ["a", "b"]}}},
                "v": {"read": {"%%this": "x"}}
            }},
            {"name": "b", "apply_when": {"kind": "b"}, "read": true}
        ]});
        let set =
            crate::RuleSet::from_json("rules.json", &file, &crate::LoadOptions::default()).unwrap();
        let rules = crate::Rules::new(set);
        let coll = rules.collection("app.items").unwrap();
        let ctx = crate::RequestContext::for_user(
            doc! {"id": "alice", "type": "normal", "data": {}, "custom_data": {}},
        );
        let prepared = coll.prepare_with(&ctx, crate::EngineKind::Compiled);
        // `owner` once (two fields share the rule), the nested level's `team`; not `$in`,
        // not `%%this`.
        assert_eq!(prepared.fast_plan_seed_counts(), Some(vec![2, 0]));
    }

    #[test]
    fn a_name_holding_a_nul_matches_no_key() {
        let mut raw = RawDocumentBuf::new();
        raw.append("a", "x");
        raw.append("b", 1);
        assert_eq!(fields(&raw, &["a\0b", "b"], &[0, 1])[0], None);
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
        assert_eq!(Probe::new(bad, true).field(&keys, 0), Err(Malformed));
    }

    /// The probe steps over a first ObjectId `_id` only when its 12 bytes come before the
    /// document's final NUL: a document cut inside it is reported malformed.
    #[test]
    fn a_first_object_id_is_stepped_over_only_when_whole() {
        let keys = probed(&["b"]);
        let mut bytes = vec![0, 0, 0, 0, 7, b'_', b'i', b'd', 0];
        bytes.extend([0xab; 12]);
        bytes.push(0);
        for len in [bytes.len(), bytes.len() - 1] {
            let mut cut = bytes[..len - 1].to_vec();
            cut.push(0);
            cut[..4].copy_from_slice(&(len as i32).to_le_bytes());
            let doc = bson::RawDocument::from_bytes(&cut).unwrap();
            let mut probe = Probe::new(doc, true);
            let whole = len == bytes.len();
            assert_eq!(
                probe.field(&keys, 0),
                if whole { Ok(None) } else { Err(Malformed) }
            );
            assert_eq!(probe.past_first(), whole);
        }
    }

    /// A name given twice (which JSON loading never yields, so the list is edited here): the
    /// field index keeps its first rule, and the scan is not built.
    #[test]
    fn a_repeated_field_name_takes_the_indexed_scan() {
        use super::Field::{Drop, Keep};
        let file = serde_json::json!({"database": "app", "collection": "items", "roles": [
            {"name": "r", "apply_when": {}, "fields": {"a": {"read": true}, "b": {}},
             "additional_fields": {}}
        ]});
        let set =
            crate::RuleSet::from_json("rules.json", &file, &crate::LoadOptions::default()).unwrap();
        let mut role = set.policy(None, "app", "items").unwrap().roles[0].clone();
        let program = crate::compile::compile(std::slice::from_ref(&role));
        assert!(super::FieldScan::new(&program.roles[0], &[Keep, Drop, Drop]).is_some());
        // `b` again, after `a` and `b`, whichever of the two acts otherwise.
        let again = role.fields.fields[1].clone();
        role.fields.fields.push(again);
        let program = crate::compile::compile(std::slice::from_ref(&role));
        let role = &program.roles[0];
        assert!(super::FieldScan::new(role, &[Keep, Drop, Keep, Drop]).is_none());
        assert!(super::FieldScan::new(role, &[Keep, Keep, Drop, Drop]).is_none());
        assert!(super::FieldScan::new(role, &[Keep, Drop, Drop, Drop]).is_none());
    }

    /// The names of the role `scan_agrees_with_any_kept` compiles: short and long, sharing
    /// prefixes, one past a word.
    const SCAN_NAMES: [&str; 6] = ["_id", "a", "ab", "abcdefgh", "abcdefghijklmnopq", "owner"];

    fn field_action() -> impl Strategy<Value = super::Field> {
        prop_oneof![
            Just(super::Field::Keep),
            Just(super::Field::Drop),
            Just(super::Field::General)
        ]
    }

    proptest! {
        #![proptest_config(crate::test_support::persisted(
            "proptest-regressions/fast_field_scan.txt"
        ))]

        /// The in-place field scan answers what the indexed one (`any_kept`) does, whatever the
        /// actions, the keys (the role's names, near misses, repeats) and the value types.
        #[test]
        fn scan_agrees_with_any_kept(
            actions in proptest::collection::vec(field_action(), SCAN_NAMES.len() + 1),
            elements in proptest::collection::vec((key(), 0..4u8), 0..10),
            named in proptest::collection::vec(prop::sample::select(&SCAN_NAMES[..]), 0..4),
            id_first in 0..3u8,
            probe_first in any::<bool>(),
            cut in 0..40usize,
        ) {
            let fields: serde_json::Map<String, serde_json::Value> = SCAN_NAMES
                .iter()
                .map(|n| (n.to_string(), serde_json::json!({"read": true})))
                .collect();
            let file = serde_json::json!({"database": "app", "collection": "items", "roles": [
                {"name": "r", "apply_when": {}, "fields": fields, "additional_fields": {}}
            ]});
            let set = crate::RuleSet::from_json("rules.json", &file, &crate::LoadOptions::default())
                .unwrap();
            let program = crate::compile::compile(set.policy(None, "app", "items").unwrap().roles);
            let role = &program.roles[0];
            let mut raw = RawDocumentBuf::new();
            // A first `_id`: none, a string, or an ObjectId (which the probe steps over).
            let id = match id_first {
                0 => None,
                1 => Some(("_id".to_string(), 1)),
                _ => Some(("_id".to_string(), 4)),
            };
            let keys = id.into_iter().chain(elements.iter().map(|(k, t)| (k.clone(), *t)));
            let named = named.iter().map(|n| (n.to_string(), 0));
            for (i, (k, t)) in keys.chain(named).enumerate() {
                match t {
                    0 => raw.append(k, i as i32),
                    1 => raw.append(k, "value"),
                    2 => raw.append(k, RawDocumentBuf::from_document(&doc! {"x": 1}).unwrap()),
                    3 => raw.append(k, true),
                    _ => raw.append(k, bson::oid::ObjectId::from_bytes([1; 12])),
                }
            }
            let Some(scan) = super::FieldScan::new(role, &actions) else {
                return Err(TestCaseError::fail("six fields fit a scan"));
            };
            // The role selection's probe, before or after it read up to a field "a".
            let probed = probed(&["a"]);
            let probe = |doc| {
                let mut probe = Probe::new(doc, true);
                if probe_first {
                    let _ = probe.field(&probed, 0);
                }
                probe
            };
            prop_assert_eq!(
                scan.any_kept(&raw, &probe(&raw)),
                super::any_kept(role, &actions, &raw)
            );
            // A malformed document: the same answer (the scan may only give up more often).
            let mut bytes = raw.as_bytes().to_vec();
            if let Some(b) = bytes.get_mut(4 + cut) {
                *b = 0x7f;
            }
            if let Ok(bad) = bson::RawDocument::from_bytes(&bytes) {
                let got = scan.any_kept(bad, &probe(bad));
                let want = super::any_kept(role, &actions, bad);
                prop_assert!(got == want || got.is_none(), "{got:?} vs {want:?}");
            }
        }
    }
}
