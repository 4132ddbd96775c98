//! Stage: per-document evaluation. Input: a [`Program`], its [`Prepared`] request state and one
//! document (raw or owned) with the bindings of the moment. Output: the value of compiled nodes
//! (`Result<bool, Fault>`) and the selected role.
//!
//! Each top-level field a rule reads is found by **one forward scan** of the raw document that
//! resumes where it stopped ([`KeyCache`], kept in the caller's [`crate::Scratch`]): every
//! element is visited at most once per document and the scan stops as soon as the field asked
//! for is found. The cache stores byte offsets, not references, so the scratch space outlives
//! documents and is reused without allocating.

use bson::{Document, RawDocument};

use super::fast::Seeds;
use super::prepare::{Live, Prepared, SlotVal, Step};
use super::raw::{self, Val};
use super::value::{
    EQ, Fault, IN, MATCH, Mode, OpVal, Reached, RegexHint, V, compare_one, for_each_string,
    match_one, not_an_array, type_is, walk,
};
use crate::compile::index::Run;
use crate::compile::ir::{COp, CPred, DocPath, FieldEq, KeyId, Node, NodeId, Opnd, Subject, Test};
use crate::compile::{CTree, NO_MEMO, Program, RuleRef};
use crate::expr::{CmpOp, Expr};
use crate::reference::Failure;
use crate::value::eval::{array_length_operand, truncated};
use crate::value::{Bindings, EvalError, eval_expr};

/// A document being decided.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DocRef<'a> {
    Raw(&'a RawDocument),
    Own(&'a Document),
}

/// Where each needed top-level field of the current raw document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    NotYet,
    Found { kind: u8, start: usize, end: usize },
}

/// Per-document field cache (byte offsets into the current raw document).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyCache {
    entries: Vec<Entry>,
    cursor: usize,
    done: bool,
    /// Per-document memos of shared field rules ([`RuleRef::memo`]): `(generation, value)`;
    /// a memo is current when its generation is `generation`.
    memos: Vec<(u32, bool)>,
    generation: u32,
}

impl KeyCache {
    /// Forgets the previous document (keeps the allocation).
    pub fn reset(&mut self, keys: usize, memos: u32) {
        self.entries.clear();
        self.entries.resize(keys, Entry::NotYet);
        self.cursor = 4;
        self.done = false;
        if self.memos.len() < memos as usize {
            self.memos.resize(memos as usize, (0, false));
        }
        self.forget_memos();
    }

    /// Forgets every memo (the document bindings changed).
    pub fn forget_memos(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // INVARIANT: after a wrap no stale memo may carry the current generation.
            self.memos.iter_mut().for_each(|m| *m = (0, false));
            self.generation = 1;
        }
    }

    /// The value of per-document memo `index`, when known for the current document.
    #[inline(always)]
    pub(crate) fn memo(&self, index: u32) -> Option<bool> {
        match self.memos.get(index as usize) {
            Some(&(generation, value)) if generation == self.generation => Some(value),
            _ => None,
        }
    }

    /// Starts a document read by the quick scan alone ([`crate::eval::quick`]): forgets the
    /// previous document's memos and takes `seeds` (memos the fast path settled) as this
    /// one's. The field cache is left as it is: the quick scan does not read it, and the
    /// general path resets it ([`DocEval::new`]) before any use.
    #[inline]
    pub(crate) fn seed_quick(&mut self, seeds: &Seeds) {
        self.forget_memos();
        for (memo, value) in seeds.iter() {
            self.remember(memo, value);
        }
    }

    #[inline]
    fn remember(&mut self, index: u32, value: bool) {
        let generation = self.generation;
        if let Some(m) = self.memos.get_mut(index as usize) {
            *m = (generation, value);
        }
    }

    /// The type and value bytes of top-level key `key` in `doc`.
    #[inline]
    pub(crate) fn lookup<'a>(
        &mut self,
        doc: &'a RawDocument,
        key: KeyId,
        program: &Program,
    ) -> Result<Option<(u8, &'a [u8])>, Fault> {
        match self.entries.get(key.0 as usize) {
            Some(Entry::Found { kind, start, end }) => {
                let bytes = doc.as_bytes().get(*start..*end).ok_or(Fault::Malformed)?;
                return Ok(Some((*kind, bytes)));
            }
            Some(Entry::NotYet) if !self.done => {}
            _ => return Ok(None),
        }
        self.scan(doc, key, program)
    }

    /// Scans on from the cursor until `key` is found (recording every needed key met).
    // PERF: out of line, so that `lookup` (mostly a cache hit) stays small where it is inlined:
    // W2-20 redact 7,846 -> 7,817, W2-20 decision 6,597 -> 6,569 instructions per document.
    #[inline(never)]
    fn scan<'a>(
        &mut self,
        doc: &'a RawDocument,
        key: KeyId,
        program: &Program,
    ) -> Result<Option<(u8, &'a [u8])>, Fault> {
        // PERF: a tight loop over the bytes (no element structs): type byte, key up to its NUL,
        // value size; only keys some rule reads are looked at further.
        let bytes = doc.as_bytes();
        let mut pos = self.cursor;
        loop {
            let kind = *bytes.get(pos).ok_or(Fault::Malformed)?;
            if kind == 0 {
                if pos + 1 != bytes.len() {
                    return Err(Fault::Malformed);
                }
                break;
            }
            let key_start = pos + 1;
            let rest = bytes.get(key_start..).ok_or(Fault::Malformed)?;
            // PERF: a short key's length and tag from one word (`raw::key_len_tag`).
            let (key_len, tag) = raw::key_len_tag(bytes, key_start)?;
            let value_start = key_start + key_len + 1;
            let tail = bytes.get(value_start..).ok_or(Fault::Malformed)?;
            let end = value_start + raw::value_size(kind, tail)?;
            let value = bytes.get(value_start..end).ok_or(Fault::Malformed)?;
            pos = end;
            let Some(k) = program.keys.find(tag, rest.get(..key_len).unwrap_or(&[])) else {
                continue;
            };
            if let Some(slot @ Entry::NotYet) = self.entries.get_mut(k as usize) {
                // INVARIANT: the first element with a key wins (like `RawDocument::get`).
                *slot = Entry::Found {
                    kind,
                    start: value_start,
                    end,
                };
                if k == key.0 {
                    self.cursor = pos;
                    return Ok(Some((kind, value)));
                }
            }
        }
        self.cursor = pos;
        self.done = true;
        Ok(None)
    }
}

/// Does the raw string value `bytes` (length-prefixed, NUL-terminated) hold exactly `s`?
#[inline]
fn raw_str_eq(bytes: &[u8], s: &str) -> bool {
    let s = s.as_bytes();
    let len = bytes.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok());
    match (len, bytes.get(4..4 + s.len())) {
        (Some(len), Some(body)) => {
            i64::from(i32::from_le_bytes(len)) == s.len() as i64 + 1 && raw::bytes_eq(body, s)
        }
        _ => false,
    }
}

/// Does a raw value (type `kind`, bytes) equal `operand` as a match does — directly or as an
/// element of an array value — when `operand` is a string (`Some(Ok(s))`) or a boolean?
pub(crate) fn raw_field_eq(
    kind: u8,
    bytes: &[u8],
    operand: &FastOperand<'_>,
) -> Result<bool, Fault> {
    let one = |kind: u8, bytes: &[u8]| match (kind, operand) {
        (raw::kind::STRING | raw::kind::SYMBOL, FastOperand::Str(s)) => raw_str_eq(bytes, s),
        (raw::kind::BOOLEAN, FastOperand::Bool(b)) => bytes.first() == Some(&u8::from(*b)),
        _ => false,
    };
    if kind == raw::kind::ARRAY {
        return Ok(raw::any_value(bytes, one)?);
    }
    Ok(one(kind, bytes))
}

/// An operand [`Node::FieldEq`] decides on raw bytes.
pub(crate) enum FastOperand<'a> {
    Str(&'a str),
    Bool(bool),
}

/// Permission results decided by a parent level (`reference/fields.rs` `Inherited`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Inherited {
    pub read: Option<bool>,
    pub write: Option<bool>,
}

impl Inherited {
    /// The key of level `tree` under these permissions in the request's action cache
    /// ([`PlanCache`]: `tree id * 9 + code`).
    #[inline(always)]
    pub(crate) fn level_of(self, tree: &CTree) -> usize {
        tree.id as usize * 9 + self.code()
    }

    /// 0..9: which of the nine combinations this is.
    #[inline(always)]
    fn code(self) -> usize {
        let c = |v: Option<bool>| match v {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        };
        c(self.read) * 3 + c(self.write)
    }
}

/// What field redaction does with one field of one level, when that is the same for every
/// document of the request (the field's rules read only the request).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Action {
    /// Not decided yet for this request.
    Unknown,
    Keep,
    Drop,
    /// Redact the embedded value under the nested rules, with these inherited permissions.
    Nested {
        inherited: Inherited,
        /// The nested level's key in the cache ([`Inherited::level_of`] of the nested rules;
        /// `u32::MAX` past the range): the quick scan finds the level's run without computing
        /// it (issue 16).
        level: u32,
    },
    /// The field's rules read the document or the field: decide per document.
    Dynamic,
    /// Decided per document by one memoized rule alone: `Keep` when per-document memo `m`
    /// ([`crate::compile::RuleRef::memo`]) holds, `Drop` when it does not, as `Dynamic` while
    /// the memo is not yet known for the document ([`DocEval::memo_action`]).
    Memo(u32),
    /// Fails with `PlanCache::fails[i]`.
    Fail(u32),
}

/// Per-thread cache of per-request field decisions ([`Action`]), by field level and inherited
/// permissions. Reset when used with another request.
///
/// PERF: every level's actions live in one flat vector ([`PlanCache::actions`]), a level being
/// a run of it found by [`PlanCache::level`]; a level walk indexes into it per element instead
/// of taking a boxed slice out of a per-level vector and putting it back (issue 16, W2 redact).
///
/// INVARIANT: `offsets[level]` is [`NO_LEVEL`] or `(start, len)` with `start + len <=
/// actions.len()`; runs of different levels do not overlap (a run is appended once per request
/// and level, and never moved).
#[derive(Debug, Default)]
pub(crate) struct PlanCache {
    request: u64,
    /// `tree id * 9 + inherited code` → `(start, len)` of the level's run of `actions`: one
    /// action per named field, then `additional_fields`.
    offsets: Vec<(u32, u32)>,
    /// The runs of every level.
    pub actions: Vec<Action>,
    pub fails: Vec<Fail>,
}

/// [`PlanCache::offsets`] of a level not walked yet in this request.
const NO_LEVEL: (u32, u32) = (u32::MAX, 0);

impl PlanCache {
    /// Starts serving request `id` of a program with `trees` field levels.
    fn serve(&mut self, id: u64, trees: u32) {
        if self.request != id {
            self.request = id;
            self.offsets.clear();
            self.actions.clear();
            self.fails.clear();
        }
        let want = trees as usize * 9;
        if self.offsets.len() < want {
            self.offsets.resize(want, NO_LEVEL);
        }
    }

    /// Whether the cache holds request `id`'s actions (a document of it was read on the
    /// general path since the cache last served another request).
    #[inline(always)]
    pub fn serves(&self, id: u64) -> bool {
        self.request == id
    }

    /// Where the `len` actions of `level` start in [`PlanCache::actions`], when this request
    /// has walked the level already (as [`PlanCache::level`], without appending).
    #[inline(always)]
    pub fn run_of(&self, level: usize, len: usize) -> Option<usize> {
        let &(start, n) = self.offsets.get(level)?;
        (start != u32::MAX && n as usize == len).then_some(start as usize)
    }

    /// Where the `len` actions of `level` start in [`PlanCache::actions`] (appended, all
    /// [`Action::Unknown`], on the level's first walk); `None` when `level` is out of range
    /// (then nothing is cached).
    #[inline]
    pub fn level(&mut self, level: usize, len: usize) -> Option<usize> {
        let slot = self.offsets.get_mut(level)?;
        if slot.0 != u32::MAX {
            // A level always has the same tree, so the same length; a mismatch (never seen)
            // is served uncached rather than appended again.
            return (slot.1 as usize == len).then_some(slot.0 as usize);
        }
        let start = self.actions.len();
        let (Ok(s), Ok(n)) = (u32::try_from(start), u32::try_from(len)) else {
            return None;
        };
        if s == u32::MAX {
            return None;
        }
        *slot = (s, n);
        self.actions.resize(start + len, Action::Unknown);
        Some(start)
    }
}

/// A failed decision: a rule that failed (reported like the reference's [`Failure`]), or a
/// malformed raw document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fail {
    Rule { place: u32, error: Box<EvalError> },
    Malformed,
}

impl Fail {
    pub fn at(rule: RuleRef, fault: Fault) -> Fail {
        match fault {
            Fault::Eval(error) => Fail::Rule {
                place: rule.place,
                error,
            },
            Fault::Malformed => Fail::Malformed,
        }
    }

    /// The message the reference gives (`Failure`'s display).
    pub fn message(&self, program: &Program) -> String {
        match self {
            Fail::Rule { place, error } => match program.place(*place) {
                Some(p) => Failure {
                    place: p.clone(),
                    error: (**error).clone(),
                }
                .to_string(),
                None => error.to_string(),
            },
            Fail::Malformed => "malformed BSON document".to_string(),
        }
    }
}

/// Roles of a run checked one by one (no index lookup) when this few are live.
const SMALL_LIVE: usize = 8;

/// The evaluation of one document.
pub(crate) struct DocEval<'a, 'c> {
    pub prog: &'a Program,
    pub prep: &'a Prepared<'c>,
    pub root: Option<DocRef<'a>>,
    pub prev_root: Option<DocRef<'a>>,
    /// `%%prevRoot` is `%%root` (reads): one field cache serves both.
    pub prev_is_root: bool,
    pub this: Option<V<'a>>,
    pub prev: Option<V<'a>>,
    cache: &'a mut KeyCache,
    /// Per-request field decisions (raw path only).
    pub plans: Option<&'a mut PlanCache>,
    /// Owned conversions of raw `%%root` and `%%prevRoot`, made only when a fallback needs
    /// them (boxed: most documents never need them, and the evaluator stays small).
    owned: Option<Box<[Option<Document>; 2]>>,
}

impl<'a, 'c: 'a> DocEval<'a, 'c> {
    pub fn new(
        prog: &'a Program,
        prep: &'a Prepared<'c>,
        root: Option<DocRef<'a>>,
        prev_root: Option<DocRef<'a>>,
        prev_is_root: bool,
        cache: &'a mut KeyCache,
        mut plans: Option<&'a mut PlanCache>,
    ) -> Self {
        cache.reset(prog.keys.len(), prog.memos);
        if let Some(p) = plans.as_deref_mut() {
            p.serve(prep.id, prog.trees);
        }
        DocEval {
            prog,
            prep,
            root,
            prev_root,
            prev_is_root,
            this: None,
            prev: None,
            cache,
            plans,
            owned: None,
        }
    }

    /// The document's field cache and memos, to read.
    #[inline(always)]
    pub fn memos(&self) -> &KeyCache {
        self.cache
    }

    /// Remembers `value` as this document's memo `memo`: a shared field rule the fast path
    /// settled (`fast::Seeds`) with the value its evaluation here would give.
    pub fn seed_memo(&mut self, memo: u32, value: bool) {
        self.cache.remember(memo, value);
    }

    /// Forgets the per-document memos: `%%root` / `%%prevRoot` are bound to other documents.
    pub fn forget_memos(&mut self) {
        self.cache.forget_memos();
    }

    /// Evaluates a compiled rule (memoized per document when [`RuleRef::memo`] says so).
    #[inline]
    pub fn rule(&mut self, rule: RuleRef) -> Result<bool, Fail> {
        if rule.memo == NO_MEMO {
            return self.eval(rule.node).map_err(|f| Fail::at(rule, f));
        }
        if let Some(value) = self.cache.memo(rule.memo) {
            return Ok(value);
        }
        // Only successes are remembered: a failure is reported at each rule's own place.
        let value = self.eval(rule.node).map_err(|f| Fail::at(rule, f))?;
        self.cache.remember(rule.memo, value);
        Ok(value)
    }

    /// Evaluates an optional rule (`None`: undefined).
    #[inline]
    pub fn rule_opt(&mut self, rule: Option<RuleRef>) -> Result<Option<bool>, Fail> {
        rule.map(|r| self.rule(r)).transpose()
    }

    /// The first role (by policy index) whose `apply_when` holds, following the request's plan.
    pub fn select(&mut self) -> Result<Option<u32>, Fail> {
        let prep = self.prep;
        let prog = self.prog;
        for step in &prep.plan {
            match step {
                Step::Role(i) => {
                    let Some(aw) = prog.roles.get(*i as usize).and_then(|r| r.apply_when) else {
                        continue;
                    };
                    if self.rule(aw)? {
                        return Ok(Some(*i));
                    }
                }
                Step::Always(i) => return Ok(Some(*i)),
                Step::Fail { role, error } => {
                    let place = prog
                        .roles
                        .get(*role as usize)
                        .and_then(|r| r.apply_when)
                        .map_or(u32::MAX, |r| r.place);
                    return Err(Fail::Rule {
                        place,
                        error: Box::new(error.clone()),
                    });
                }
                Step::Run { run, live } => {
                    let Some(run) = prog.runs.get(*run as usize) else {
                        continue;
                    };
                    // INVARIANT: run tests never fail; only malformed input can stop here.
                    match self.run_select(run, live) {
                        Ok(Some(pos)) => return Ok(Some(run.start + pos)),
                        Ok(None) => {}
                        Err(_) => return Err(Fail::Malformed),
                    }
                }
            }
        }
        Ok(None)
    }

    fn run_select(&mut self, run: &'a Run, live: &'a Live) -> Result<Option<u32>, Fault> {
        if let Live::Some(list) = live
            && list.len() <= SMALL_LIVE
        {
            for &pos in list.iter() {
                if self.run_doc_tests(run, pos)? {
                    return Ok(Some(pos));
                }
            }
            return Ok(None);
        }
        let Some(path0) = run.doc_paths.first() else {
            return Ok(None);
        };
        let mut best: Option<u32> = None;
        let mut failed: Option<Fault> = None;
        // PERF: one hash lookup per string the document's path holds; candidates are in
        // ascending order, so the first live one whose other tests hold is the run's answer
        // for that string, and the smallest over all strings is the first match.
        let mut visit = |this: &mut Self, s: &[u8]| -> bool {
            let Some(list) = run.doc_index.get(s) else {
                return false;
            };
            for &pos in list.iter() {
                if best.is_some_and(|b| pos >= b) {
                    break;
                }
                if live.contains(pos) {
                    if run.doc_index_proves {
                        best = Some(pos);
                        break;
                    }
                    match this.run_doc_tests(run, pos) {
                        Ok(true) => {
                            best = Some(pos);
                            break;
                        }
                        Ok(false) => {}
                        Err(f) => {
                            failed = Some(f);
                            return true;
                        }
                    }
                }
            }
            false
        };
        if let Some((kind, bytes)) = self.raw_top(path0)? {
            // A top-level field of a raw document: its strings as raw bytes.
            raw::any_string(kind, bytes, |s| visit(self, s))?;
        } else {
            let reached = self.reach_doc(false, path0)?;
            for_each_string(&reached, |s| Ok(visit(self, s.as_bytes())))?;
        }
        match failed {
            Some(f) => Err(f),
            None => Ok(best),
        }
    }

    /// The raw type and bytes of `path` when it is a top-level field of a raw `%%root` (`None`
    /// when it is not such a path, or the field is missing — then `Ok(None)` too; callers
    /// that must tell them apart check the path shape first).
    #[inline]
    fn raw_top(&mut self, path: &DocPath) -> Result<Option<(u8, &'a [u8])>, Fault> {
        match (self.root, path.key) {
            (Some(DocRef::Raw(d)), Some(key)) if path.rest.is_empty() => {
                self.cache.lookup(d, key, self.prog)
            }
            _ => Ok(None),
        }
    }

    /// The document tests of run position `pos` all hold.
    fn run_doc_tests(&mut self, run: &'a Run, pos: u32) -> Result<bool, Fault> {
        let Some(tests) = run.tests.get(pos as usize) else {
            return Ok(false);
        };
        for t in tests.iter().filter(|t| t.doc) {
            let Some(path) = run.doc_paths.get(t.path as usize) else {
                return Ok(false);
            };
            let raw_top = matches!(self.root, Some(DocRef::Raw(_)))
                && path.key.is_some()
                && path.rest.is_empty();
            let holds = if raw_top {
                match self.raw_top(path)? {
                    Some((kind, bytes)) => raw_field_eq(kind, bytes, &FastOperand::Str(&t.value))?,
                    None => false,
                }
            } else {
                let reached = self.reach_doc(false, path)?;
                for_each_string(&reached, |s| Ok(s == &*t.value))?
            };
            if !holds {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Evaluates node `id`.
    pub fn eval(&mut self, id: NodeId) -> Result<bool, Fault> {
        crate::steps::charge(1)?;
        let prog = self.prog;
        match prog.nodes.get(id) {
            Some(Node::Const(b)) => Ok(*b),
            Some(Node::Error(e)) => Err(Fault::from(e.clone())),
            Some(Node::All(children)) => {
                for &c in children.iter() {
                    if !self.eval(c)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Some(Node::Any(children)) => {
                for &c in children.iter() {
                    if self.eval(c)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Some(Node::Not(c)) => Ok(!self.eval(*c)?),
            Some(Node::Slot(s)) => match self.prep.slot(prog, *s) {
                Some(SlotVal::Bool(Ok(b))) => Ok(*b),
                Some(SlotVal::Bool(Err(e))) => Err(Fault::from(e.clone())),
                _ => Ok(false),
            },
            Some(Node::Test(t)) => self.test(t),
            Some(Node::FieldEq(f)) => self.field_eq(f),
            Some(Node::Fallback(e)) => self.fallback(e),
            None => Ok(false),
        }
    }

    #[inline]
    fn test(&mut self, t: &'a Test) -> Result<bool, Fault> {
        let s = self.reach(&t.subject)?;
        self.pred(&t.pred, &s)
    }

    /// A [`Node::FieldEq`]: string and boolean operands on raw bytes, others by the test.
    fn field_eq(&mut self, f: &'a FieldEq) -> Result<bool, Fault> {
        let operand = match &f.operand {
            Opnd::Const(c) => &c.value,
            Opnd::Slot(s) => {
                let prep = self.prep;
                match prep.slot(self.prog, *s) {
                    Some(SlotVal::Value(Ok(Some(b)))) => b,
                    // A missing operand matches nothing (match and `$eq` alike).
                    Some(SlotVal::Value(Ok(None))) => return Ok(false),
                    Some(SlotVal::Value(Err(e))) => return Err(Fault::from(e.clone())),
                    _ => return self.test(&f.test),
                }
            }
            Opnd::Path(_) => return self.test(&f.test),
        };
        let fast = match operand {
            bson::Bson::String(s) | bson::Bson::Symbol(s) => FastOperand::Str(s),
            bson::Bson::Boolean(b) => FastOperand::Bool(*b),
            _ => return self.test(&f.test),
        };
        match self.root {
            Some(DocRef::Raw(d)) => match self.cache.lookup(d, f.key, self.prog)? {
                None => Ok(false),
                Some((kind, bytes)) => raw_field_eq(kind, bytes, &fast),
            },
            _ => self.test(&f.test),
        }
    }

    /// The value of top-level field `key` of `%%root` (or `%%prevRoot`).
    fn top(&mut self, prev: bool, key: KeyId) -> Result<Option<V<'a>>, Fault> {
        let doc = if prev { self.prev_root } else { self.root };
        match doc {
            None => Ok(None),
            Some(DocRef::Own(d)) => Ok(d.get(self.prog.keys.name(key)).map(V::Own)),
            Some(DocRef::Raw(d)) if !prev || self.prev_is_root => {
                match self.cache.lookup(d, key, self.prog)? {
                    None => Ok(None),
                    Some((kind, bytes)) => Ok(Some(V::Raw(Val::decode(kind, bytes)?))),
                }
            }
            Some(DocRef::Raw(d)) => {
                Ok(super::raw::get(d, self.prog.keys.name(key).as_bytes())?.map(V::Raw))
            }
        }
    }

    pub fn reach_doc(&mut self, prev: bool, path: &'a DocPath) -> Result<Reached<'a>, Fault> {
        let doc = if prev { self.prev_root } else { self.root };
        let Some(doc) = doc else {
            return Ok(Reached::missing());
        };
        match path.key {
            None => Ok(Reached::One(Some(match doc {
                DocRef::Raw(d) => V::Raw(Val::Doc(d)),
                DocRef::Own(d) => V::OwnDoc(d),
            }))),
            Some(k) => match self.top(prev, k)? {
                None => Ok(Reached::missing()),
                Some(v) if path.rest.is_empty() => Ok(Reached::One(Some(v))),
                Some(v) => walk(v, &path.rest),
            },
        }
    }

    fn reach(&mut self, s: &'a Subject) -> Result<Reached<'a>, Fault> {
        match s {
            Subject::Doc { prev, path } => self.reach_doc(*prev, path),
            Subject::Field { prev, path } => {
                let v = if *prev { self.prev } else { self.this };
                match v {
                    None => Ok(Reached::missing()),
                    Some(v) => walk(v, path),
                }
            }
            Subject::Request(slot) => {
                let prep = self.prep;
                match prep.slot(self.prog, *slot) {
                    Some(SlotVal::Subject(r)) => Ok(Reached::Request(r)),
                    _ => Ok(Reached::missing()),
                }
            }
        }
    }

    /// An operand's value (`None`: missing) and its precompiled regexes.
    fn operand(&mut self, o: &'a Opnd) -> Result<Option<Operand<'a>>, Fault> {
        match o {
            Opnd::Const(c) => Ok(Some(Operand {
                value: OpVal::V(V::Own(&c.value)),
                regex: c.regex.as_ref(),
                items: &c.items,
            })),
            Opnd::Slot(s) => {
                let prep = self.prep;
                match prep.slot(self.prog, *s) {
                    Some(SlotVal::Value(Ok(Some(b)))) => {
                        Ok(Some(Operand::plain(OpVal::V(V::Own(b)))))
                    }
                    Some(SlotVal::Value(Ok(None))) => Ok(None),
                    Some(SlotVal::Value(Err(e))) => Err(Fault::from(e.clone())),
                    _ => Ok(None),
                }
            }
            Opnd::Path(subject) => Ok(self.reach(subject)?.into_value()?.map(Operand::plain)),
        }
    }

    fn match_any(
        &self,
        s: &Reached<'_>,
        operand: V<'_>,
        mode: Mode,
        hint: RegexHint<'_>,
    ) -> Result<bool, Fault> {
        let expand = s.expands();
        for v in s.iter() {
            if match_one(v, expand, operand, mode, hint)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn pred(&mut self, p: &'a CPred, s: &Reached<'_>) -> Result<bool, Fault> {
        match p {
            CPred::Matches(o) => match self.operand(o)? {
                None => Ok(false),
                Some(_) if undecided(o, s) => Ok(false),
                Some(op) => self.match_any(s, op.value.v(), MATCH.literal(literal(o)), op.regex),
            },
            CPred::Ops(ops) => {
                for op in ops.iter() {
                    if !self.op(op, s)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    fn in_list(
        &mut self,
        s: &Reached<'_>,
        o: &'a Opnd,
        operator: &'static str,
    ) -> Result<Option<bool>, Fault> {
        let Some(list) = self.operand(o)? else {
            return Ok(None);
        };
        if undecided(o, s) {
            return Ok(None);
        }
        let v = list.value.v();
        let Some(items) = v.items() else {
            return Err(not_an_array(operator, v));
        };
        // INVARIANT: an array operand mixing literal null or regex elements with expansions is
        // never lowered (it falls back), so every element here is as literal as the operand.
        let mode = IN.literal(literal(o));
        for (i, item) in items.enumerate() {
            let hint = list.items.get(i).and_then(Option::as_ref);
            if self.match_any(s, item?, mode, hint)? {
                return Ok(Some(true));
            }
        }
        Ok(Some(false))
    }

    fn op(&mut self, op: &'a COp, s: &Reached<'_>) -> Result<bool, Fault> {
        match op {
            COp::Cmp(CmpOp::Eq, o) => match self.operand(o)? {
                None => Ok(false),
                Some(_) if undecided(o, s) => Ok(false),
                Some(v) => self.match_any(s, v.value.v(), EQ.literal(literal(o)), None),
            },
            COp::Cmp(CmpOp::Ne, o) => match self.operand(o)? {
                None => Ok(false),
                Some(_) if undecided(o, s) => Ok(false),
                Some(v) => Ok(!self.match_any(s, v.value.v(), EQ.literal(literal(o)), None)?),
            },
            COp::Cmp(cmp, o) => match self.operand(o)? {
                None => Ok(false),
                Some(_) if undecided(o, s) => Ok(false),
                Some(v) => {
                    let operand = v.value.v();
                    for c in s.iter() {
                        if compare_one(c, s.expands(), *cmp, operand, literal(o))? {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                }
            },
            COp::In(o) => Ok(self.in_list(s, o, "$in")?.unwrap_or(false)),
            // A missing or undecided operand makes `$nin` false too (`value/eval.rs`).
            COp::Nin(o) => Ok(self.in_list(s, o, "$nin")?.is_some_and(|found| !found)),
            COp::Exists(o) => match self.operand(o)? {
                None => Ok(false),
                Some(v) => Ok(s.is_missing() != v.value.v().truthy()),
            },
            COp::All(ps) => {
                for p in ps.iter() {
                    if !self.pred(p, s)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            COp::Any(ps) => {
                for p in ps.iter() {
                    if self.pred(p, s)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            COp::None(ps) => {
                for p in ps.iter() {
                    if self.pred(p, s)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            COp::Not(p) => Ok(!self.pred(p, s)?),
            COp::AllOf(o) => {
                let Some(list) = self.operand(o)? else {
                    return Ok(false);
                };
                if undecided(o, s) {
                    return Ok(false);
                }
                let v = list.value.v();
                let Some(items) = v.items() else {
                    return Err(not_an_array("$all", v));
                };
                let mode = IN.literal(literal(o));
                let mut any = false;
                for (i, item) in items.enumerate() {
                    any = true;
                    let hint = list.items.get(i).and_then(Option::as_ref);
                    if !self.match_any(s, item?, mode, hint)? {
                        return Ok(false);
                    }
                }
                Ok(any)
            }
            COp::Size(o) => {
                let Some(n) = self.operand(o)? else {
                    return Ok(false);
                };
                let Some(len) = array_length_operand(n.value.v().to_bson()?.as_ref())? else {
                    return Ok(false);
                };
                for v in s.present() {
                    if let Some(items) = v.items() {
                        let mut count = 0usize;
                        for i in items {
                            i?;
                            count += 1;
                        }
                        if count == len {
                            return Ok(true);
                        }
                    }
                }
                Ok(false)
            }
            COp::ElemMatch(ops) => {
                for v in s.present() {
                    let Some(items) = v.items() else { continue };
                    for item in items {
                        let single = Reached::Whole(item?);
                        let mut all = true;
                        for op in ops.iter() {
                            if !self.op(op, &single)? {
                                all = false;
                                break;
                            }
                        }
                        if all {
                            return Ok(true);
                        }
                    }
                }
                Ok(false)
            }
            COp::Type(specs) => {
                for v in s.present() {
                    if type_is(v, specs) {
                        return Ok(true);
                    }
                    if let (true, Some(items)) = (s.expands(), v.items()) {
                        for i in items {
                            if type_is(i?, specs) {
                                return Ok(true);
                            }
                        }
                    }
                }
                Ok(false)
            }
            COp::Regex(spec) => {
                let one = |x: V<'_>| -> Result<bool, Fault> {
                    if let Some(t) = x.as_str() {
                        return Ok(spec.regex.is_match(t));
                    }
                    if x.kind() == super::raw::kind::REGEX
                        && let bson::Bson::RegularExpression(r) = x.to_bson()?.as_ref()
                    {
                        return Ok(r.pattern == spec.pattern
                            && sorted(&r.options) == sorted(&spec.options));
                    }
                    Ok(false)
                };
                for v in s.present() {
                    if one(v)? {
                        return Ok(true);
                    }
                    if let (true, Some(items)) = (s.expands(), v.items()) {
                        for i in items {
                            if one(i?)? {
                                return Ok(true);
                            }
                        }
                    }
                }
                Ok(false)
            }
            COp::Mod { divisor, remainder } => {
                if *divisor == 0 {
                    return Err(Fault::from(EvalError::BadArgument {
                        operator: "$mod",
                        message: "divisor must not be 0".into(),
                    }));
                }
                let one = |x: V<'_>| -> bool {
                    let n = match x {
                        V::Own(b) => truncated(b),
                        V::Raw(r) => r.scalar().and_then(|b| truncated(&b)),
                        V::OwnDoc(_) => None,
                    };
                    n.is_some_and(|i| i.wrapping_rem(*divisor) == *remainder)
                };
                for v in s.present() {
                    if one(v) {
                        return Ok(true);
                    }
                    if let (true, Some(items)) = (s.expands(), v.items()) {
                        for i in items {
                            if one(i?) {
                                return Ok(true);
                            }
                        }
                    }
                }
                Ok(false)
            }
        }
    }

    /// A shape the native evaluator does not cover: the reference evaluator on owned values.
    fn fallback(&mut self, e: &Expr) -> Result<bool, Fault> {
        // PERF: converts the raw document once per document, only when a fallback is reached.
        let owned = self.owned.get_or_insert_with(Box::default);
        let [owned_root, owned_prev] = &mut **owned;
        if let (Some(DocRef::Raw(d)), None) = (self.root, &owned_root) {
            *owned_root = Some(super::raw::to_document(d)?);
        }
        if !self.prev_is_root
            && let (Some(DocRef::Raw(d)), None) = (self.prev_root, &owned_prev)
        {
            *owned_prev = Some(super::raw::to_document(d)?);
        }
        let (owned_root, owned_prev) = (&*owned_root, &*owned_prev);
        let root = match self.root {
            Some(DocRef::Own(d)) => Some(d),
            Some(DocRef::Raw(_)) => owned_root.as_ref(),
            None => None,
        };
        let prev_root = if self.prev_is_root {
            root
        } else {
            match self.prev_root {
                Some(DocRef::Own(d)) => Some(d),
                Some(DocRef::Raw(_)) => owned_prev.as_ref(),
                None => None,
            }
        };
        let this = self.this.map(|v| v.to_bson()).transpose()?;
        let prev = self.prev.map(|v| v.to_bson()).transpose()?;
        let b = Bindings {
            request: self.prep.ctx,
            root,
            prev_root,
            this: this.as_deref(),
            prev: prev.as_deref(),
            whole: None,
        };
        Ok(eval_expr(e, &b)?)
    }
}

/// An operand value with its precompiled regexes.
struct Operand<'a> {
    value: OpVal<'a>,
    regex: RegexHint<'a>,
    items: &'a [Option<Result<regex::Regex, String>>],
}

impl<'a> Operand<'a> {
    fn plain(value: OpVal<'a>) -> Self {
        Operand {
            value,
            regex: None,
            items: &[],
        }
    }
}

fn sorted(s: &str) -> Vec<char> {
    let mut v: Vec<char> = s.chars().collect();
    v.sort_unstable();
    v
}

/// True when the rule wrote the operand's value (`value/eval.rs` `is_literal`).
fn literal(o: &Opnd) -> bool {
    matches!(o, Opnd::Const(_))
}

/// A substituted operand against a subject that reaches nothing: the test is false, negated
/// forms included (`value/eval.rs`, issue 9 finding 7).
fn undecided(o: &Opnd, s: &Reached<'_>) -> bool {
    !literal(o) && s.is_missing()
}

#[cfg(test)]
mod tests {
    //! The flat plan cache's invariant: each level's run is its own, stable within a request,
    //! and found again (`run_of`) only in the request that appended it.

    use super::{Action, PlanCache};

    #[test]
    fn levels_get_disjoint_stable_runs() {
        let mut cache = PlanCache::default();
        cache.serve(1, 3);
        // `run_of` finds only the runs `level` appended, never appends.
        assert_eq!(cache.run_of(0, 4), None);
        assert!(cache.actions.is_empty());
        let a = cache.level(0, 4).unwrap();
        let b = cache.level(5, 2).unwrap();
        let c = cache.level(26, 1).unwrap();
        // Disjoint, in order of first use, all `Unknown` at first.
        assert_eq!((a, b, c), (0, 4, 6));
        assert_eq!(cache.actions.len(), 7);
        assert!(cache.actions.iter().all(|x| matches!(x, Action::Unknown)));
        // A decision written into one level's run is seen there again, not elsewhere.
        cache.actions[b + 1] = Action::Keep;
        assert_eq!(cache.level(5, 2), Some(b));
        assert_eq!(cache.level(0, 4), Some(a));
        assert_eq!(cache.actions.len(), 7);
        assert_eq!(
            cache
                .actions
                .iter()
                .filter(|x| matches!(x, Action::Keep))
                .count(),
            1
        );
        assert_eq!((cache.run_of(0, 4), cache.run_of(5, 2)), (Some(a), Some(b)));
        assert_eq!((cache.run_of(5, 3), cache.run_of(6, 1)), (None, None));
        // Out of range or of another length: served uncached, nothing appended.
        assert_eq!(cache.run_of(27, 1), None);
        assert_eq!(cache.level(27, 1), None);
        assert_eq!(cache.level(5, 3), None);
        assert_eq!(cache.actions.len(), 7);
        // The same request keeps its runs; another request starts afresh.
        cache.serve(1, 3);
        assert_eq!(cache.level(5, 2), Some(b));
        cache.serve(2, 3);
        assert!(cache.actions.is_empty());
        assert_eq!(cache.run_of(5, 2), None);
        assert_eq!(cache.level(5, 2), Some(0));
        assert!(matches!(cache.actions[1], Action::Unknown));
    }
}
