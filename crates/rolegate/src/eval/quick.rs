//! Stage: the inner loop of the raw redaction walk (issue 16). Input: one level's checked bytes,
//! the offset of an element, the level's rules and its run of per-request actions
//! ([`super::doc::PlanCache`]), the document's memos. Output: the elements those actions settle
//! handled — kept ones added to the level's run of kept bytes, dropped ones skipped, an embedded
//! document under nested rules redacted when its own elements are all settled — up to the first
//! element that needs more, which is left, unread, to the general walk of `eval/read.rs`.
//! The fast path also runs it over a whole document ([`redact_document`]: the request settles
//! the selected role's document-level decision), and the general walk resumes where it stops
//! ([`Resume`]).
//!
//! The scan makes exactly the checks of [`super::raw::Spans`] on the elements it passes (a type
//! byte of a known size, a key and its NUL, a length prefix of at least 1 for strings and 5 for
//! documents, the element within the level), and takes nothing on trust from the ones it leaves:
//! the general walk parses those again and reports any malformation. What it handles itself is
//! only the common case, so that its loop keeps few values live: keys of at most seven bytes (one
//! word gives the key's length and its whole tag: no byte comparison), values whose size a table
//! or a length prefix gives, and actions that are `Keep`, `Drop`, a memo already known for the
//! document (`Action::Memo`), or `Nested` on an embedded document. A longer key whose action
//! settles it is taken between two scans of a whole document
//! ([`QuickLevel::long_key_element`]).

use super::doc::{Action, Inherited, KeyCache, PlanCache};
use super::raw::{
    DocWriter, Span, begin_element, find_nul, fixed_or_prefixed_size, key_tag_at, kind,
    short_key_at,
};
use crate::compile::CTree;

/// Kept elements of one level not yet copied to the output: a byte range of the level's
/// document, grown while the kept elements are adjacent.
#[derive(Debug, Default)]
pub(crate) struct KeptRun {
    start: usize,
    end: usize,
}

impl KeptRun {
    /// Adds the element at `start` (of `len` bytes); copies the run so far first when the
    /// element does not follow it.
    #[inline(always)]
    pub fn add(&mut self, doc: &[u8], start: usize, len: usize, out: &mut Vec<u8>) {
        if start != self.end {
            self.flush(doc, out);
            self.start = start;
        }
        self.end = start + len;
    }

    /// Copies the run (if any) to `out` and empties it.
    #[inline(always)]
    pub fn flush(&mut self, doc: &[u8], out: &mut Vec<u8>) {
        if self.end > self.start {
            // INVARIANT: the run is made of whole elements of `doc`, so the range is in it.
            out.extend_from_slice(doc.get(self.start..self.end).unwrap_or_default());
        }
        self.start = self.end;
    }
}

/// One level's quick scan: its rules, the request's cached actions (this level's run of them,
/// one per named field then `additional_fields`), and the document's memos.
#[derive(Clone, Copy)]
pub(crate) struct QuickLevel<'p> {
    pub tree: &'p CTree,
    pub plans: &'p PlanCache,
    pub actions: &'p [Action],
    /// The document's memos, for [`Action::Memo`].
    pub memos: &'p KeyCache,
}

/// Where the quick scan of a whole document ([`redact_document`]) stopped, for the general
/// walk to go on from: the offset of the element it left, its kept run not yet copied,
/// whether it kept an element, and the document's writer (its length placeholder written).
#[derive(Debug)]
pub(crate) struct Resume {
    pub pos: usize,
    pub run: KeptRun,
    pub kept: bool,
    pub writer: DocWriter,
}

/// What [`redact_document`] made of a document.
#[derive(Debug)]
pub(crate) enum QuickDocument {
    /// Redacted whole: whether a field is kept (the document then appended to the output,
    /// else nothing).
    Done(bool),
    /// Redacted up to an element that needs the general walk ([`Resume`]).
    Stopped(Resume),
    /// Not started (the request has not cached the level's actions yet): the output is as it
    /// was.
    NotCached,
}

/// Redacts the document `doc` (checked bytes) under `tree` and `inherited` by the quick scan,
/// as far as the scan goes ([`QuickDocument`]).
///
/// The caller vouches that `plans` serves this request ([`PlanCache::serves`]) and that
/// `memos` holds this document's memos and no other's ([`KeyCache::seed_quick`]).
// PERF: the fast path's redaction of a document whose role and level the request settles: no
// evaluator, step budget or level walk is set up unless an element needs them (issue 16).
// Out of line, so that its loop's registers are allocated apart from the caller's code:
// inlined, W2-20 redact moved by up to 70 instructions per document with unrelated changes to
// the fast path's selection (3,985 -> 4,053); out of line 3,995, and W2-20 decision 4,555 ->
// 4,486, W1 redact 3,115 -> 3,139.
#[inline(never)]
pub(crate) fn redact_document(
    tree: &CTree,
    inherited: Inherited,
    plans: &PlanCache,
    memos: &KeyCache,
    doc: &[u8],
    out: &mut Vec<u8>,
) -> QuickDocument {
    let Some(level) = QuickLevel::of(tree, inherited, plans, memos) else {
        return QuickDocument::NotCached;
    };
    let writer = DocWriter::begin(out);
    let mut run = KeptRun::default();
    let mut pos = 4;
    let mut kept = false;
    // INVARIANT: a checked document ends with its NUL: a full scan stops there.
    while pos + 1 != doc.len() {
        let (stop, any) = level.keep_and_drop(doc, pos, &mut run, out);
        kept |= any;
        pos = stop;
        if pos + 1 == doc.len() {
            break;
        }
        // PERF: a key longer than seven bytes stops the scan; one whose cached action settles
        // it is taken here, and the scan goes on after it (W1 redact: `owner_id`).
        match level.long_key_element(doc, pos, &mut run, out) {
            Some((end, any)) => {
                kept |= any;
                pos = end;
            }
            None => {
                return QuickDocument::Stopped(Resume {
                    pos,
                    run,
                    kept,
                    writer,
                });
            }
        }
    }
    if !kept {
        out.truncate(writer.start());
        return QuickDocument::Done(false);
    }
    run.flush(doc, out);
    let start = writer.start();
    if writer.end(out).is_err() {
        // Too long a document: the general walk reports it.
        out.truncate(start);
        return QuickDocument::NotCached;
    }
    QuickDocument::Done(true)
}

impl<'p> QuickLevel<'p> {
    /// The quick scan of level `tree` under `inherited`, when the request has cached its
    /// actions (a level the general walk has not entered yet in this request has none).
    #[inline(always)]
    pub fn of(
        tree: &'p CTree,
        inherited: Inherited,
        plans: &'p PlanCache,
        memos: &'p KeyCache,
    ) -> Option<Self> {
        Self::at(tree, inherited.level_of(tree), plans, memos)
    }

    /// [`QuickLevel::of`] the level whose key in the cache is `level` (that of `tree`).
    #[inline(always)]
    fn at(
        tree: &'p CTree,
        level: usize,
        plans: &'p PlanCache,
        memos: &'p KeyCache,
    ) -> Option<Self> {
        let len = tree.fields.len() + 1;
        let base = plans.run_of(level, len)?;
        Some(QuickLevel {
            tree,
            plans,
            actions: plans.actions.get(base..base + len)?,
            memos,
        })
    }

    /// Scans the level `bytes` from the element at `pos`: adds each element whose cached action
    /// is `Keep` (or a memo that holds) to `run`, copying to `out` as runs break, and skips each
    /// whose cached action is `Drop` (or a memo that does not hold); an embedded document under
    /// nested rules is redacted in place when the scan of its own level reaches its end
    /// ([`QuickLevel::nested`]). Returns the offset of the first element it did not handle (the
    /// level's closing NUL included) and whether it kept an element.
    // PERF: always inlined into the level walk, whose loop it is most of the time.
    #[inline(always)]
    pub fn keep_and_drop(
        self,
        bytes: &[u8],
        pos: usize,
        run: &mut KeptRun,
        out: &mut Vec<u8>,
    ) -> (usize, bool) {
        self.scan::<true, true>(bytes, pos, run, out)
    }

    /// [`QuickLevel::keep_and_drop`] without output, for a decision: says whether it passed an
    /// element that would be kept.
    #[inline(always)]
    pub fn pass(self, bytes: &[u8], pos: usize) -> (usize, bool) {
        self.scan::<false, true>(bytes, pos, &mut KeptRun::default(), &mut Vec::new())
    }

    /// The scan; `WRITE`: copy the kept elements; `NESTED`: redact embedded documents under
    /// nested rules (the scan of a nested level does not, so that no element is scanned more
    /// than a bounded number of times when a scan gives up: see [`QuickLevel::nested`]).
    #[inline(always)]
    fn scan<const WRITE: bool, const NESTED: bool>(
        self,
        bytes: &[u8],
        mut pos: usize,
        run: &mut KeptRun,
        out: &mut Vec<u8>,
    ) -> (usize, bool) {
        let additional = self.actions.len().wrapping_sub(1);
        let mut kept = false;
        loop {
            let Some((kind, key_len, tag)) = short_key_at(bytes, pos) else {
                return (pos, kept);
            };
            let value_start = pos + 2 + key_len;
            let Some(size) = fixed_or_prefixed_size(kind, bytes, value_start) else {
                return (pos, kept);
            };
            let end = value_start + size;
            if end > bytes.len() {
                return (pos, kept);
            }
            let index = self.tree.index.find_whole_or(tag, additional);
            let keep = match self.actions.get(index) {
                Some(Action::Keep) => true,
                Some(Action::Drop) => false,
                Some(&Action::Memo(m)) => match self.memos.memo(m) {
                    Some(value) => value,
                    None => return (pos, kept),
                },
                Some(&Action::Nested { level, .. }) if NESTED && kind == kind::DOCUMENT => {
                    let element = Span {
                        kind,
                        tag,
                        start: pos,
                        key_len,
                        end,
                    };
                    match self.nested::<WRITE>(bytes, element, index, level, run, out) {
                        Some(any) => {
                            kept |= any;
                            pos = end;
                            continue;
                        }
                        None => return (pos, kept),
                    }
                }
                _ => return (pos, kept),
            };
            if keep {
                if WRITE {
                    run.add(bytes, pos, end - pos, out);
                }
                kept = true;
            }
            pos = end;
        }
    }

    /// The scan of one element whose key is longer than seven bytes, at `pos` of `bytes`:
    /// `Some((end, kept))` when its cached action is `Keep`, `Drop` or a known memo (a kept
    /// element added to `run`); `None` for any other element (an embedded document under
    /// nested rules included), at the level's closing NUL, and for a key of seven bytes or
    /// fewer near the level's end ([`short_key_at`] gave up on it): the general walk takes it.
    // PERF: out of line, and outside the scan's loop (`redact_document` calls it where the
    // scan stops): long keys are rarer, and the loop keeps its registers for the short ones
    // (merged into the loop, they cost W2-20 redact 141 instructions per document).
    #[inline(never)]
    fn long_key_element(
        self,
        bytes: &[u8],
        pos: usize,
        run: &mut KeptRun,
        out: &mut Vec<u8>,
    ) -> Option<(usize, bool)> {
        let &kind = bytes.get(pos)?;
        if kind == 0 {
            return None;
        }
        let key_start = pos + 1;
        let key_len = find_nul(bytes.get(key_start..)?)?;
        if key_len <= 7 {
            return None;
        }
        let key = bytes.get(key_start..key_start + key_len)?;
        let value_start = key_start + key_len + 1;
        let end = value_start + fixed_or_prefixed_size(kind, bytes, value_start)?;
        if end > bytes.len() {
            return None;
        }
        let index = match self
            .tree
            .index
            .find_tagged(key_tag_at(bytes, key_start, key_len), key)
        {
            Some(i) => i as usize,
            None => self.actions.len().wrapping_sub(1),
        };
        let keep = match self.actions.get(index)? {
            Action::Keep => true,
            Action::Drop => false,
            &Action::Memo(m) => self.memos.memo(m)?,
            _ => return None,
        };
        if keep {
            run.add(bytes, pos, end - pos, out);
        }
        Some((end, keep))
    }

    /// Redacts the embedded document `element` of `bytes` (its field index `index`; `level`:
    /// its nested level's key in the cache) by a scan of its level that handles no nested
    /// document: `Some(kept)` when that scan reached the document's end, its redaction then
    /// written (nothing when nothing is kept); `None`, with `out` as it was after `run` was
    /// copied, when it did not (the general walk then takes the element).
    // PERF: out of line: the scan's loop keeps its registers for the common elements.
    #[inline(never)]
    fn nested<const WRITE: bool>(
        self,
        bytes: &[u8],
        element: Span,
        index: usize,
        level: u32,
        run: &mut KeptRun,
        out: &mut Vec<u8>,
    ) -> Option<bool> {
        let (_, rule) = self.tree.fields.get(index)?;
        let level = QuickLevel::at(&rule.nested, level as usize, self.plans, self.memos)?;
        let value = element.embedded(bytes).ok()?.bytes();
        // INVARIANT: a checked document ends with its NUL: a full scan stops there.
        let last = value.len() - 1;
        if !WRITE {
            let (pos, any) = level.scan::<false, false>(value, 4, run, out);
            return (pos == last).then_some(any);
        }
        run.flush(bytes, out);
        let mark = out.len();
        let writer = begin_element(out, &element, bytes);
        let mut inner = KeptRun::default();
        let (pos, any) = level.scan::<true, false>(value, 4, &mut inner, out);
        if pos != last {
            out.truncate(mark);
            return None;
        }
        if !any {
            out.truncate(mark);
            return Some(false);
        }
        inner.flush(value, out);
        if writer.end(out).is_err() {
            out.truncate(mark);
            return None;
        }
        Some(true)
    }
}
