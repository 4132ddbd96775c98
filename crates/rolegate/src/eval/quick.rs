//! Stage: the inner loop of the raw redaction walk (issue 16). Input: one level's checked bytes,
//! the offset of an element, the level's key table and its run of per-request actions. Output:
//! the elements whose cached action is `Keep` (or a memo that holds) added to the level's run of
//! kept bytes, those whose cached action is `Drop` (or a memo that does not hold) skipped, up to the first element that needs more — which is
//! left, unread, to the general walk of `eval/read.rs`.
//!
//! The scan makes exactly the checks of [`super::raw::Spans`] on the elements it passes (a type
//! byte of a known size, a key and its NUL, a length prefix of at least 1 for strings and 5 for
//! documents, the element within the level), and takes nothing on trust from the ones it leaves:
//! the general walk parses those again and reports any malformation. What it handles itself is
//! only the common case, so that its loop keeps its few values in registers: keys of at most
//! seven bytes with eight bytes readable after their type byte (one word gives the key's length
//! and its whole tag: no byte comparison), values whose size a table or a length prefix gives,
//! and actions decided for the whole request.

use super::doc::{Action, KeyCache};
use super::raw::{fixed_or_prefixed_size, short_key_at};
use crate::compile::KeyTable;

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

/// One level's quick scan: its key table and its run of cached actions (one per named field,
/// then `additional_fields`).
#[derive(Clone, Copy)]
pub(crate) struct QuickLevel<'p> {
    pub table: &'p KeyTable,
    pub actions: &'p [Action],
    /// The document's memos, for [`Action::Memo`].
    pub memos: &'p KeyCache,
}

impl QuickLevel<'_> {
    /// Scans the level `bytes` from the element at `pos`: adds each element whose cached action
    /// is `Keep` to `run` (copying to `out` as runs break) and skips each whose cached action
    /// is `Drop`. Returns the offset of the first element it did not handle (the level's
    /// closing NUL included) and whether it kept an element.
    // PERF: always inlined into the level walk, whose loop it is most of the time.
    #[inline(always)]
    pub fn keep_and_drop(
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
            let index = match self.table.find_whole(tag) {
                Some(i) => i as usize,
                None => additional,
            };
            match self.actions.get(index) {
                Some(Action::Keep) => {
                    run.add(bytes, pos, end - pos, out);
                    kept = true;
                }
                Some(Action::Drop) => {}
                Some(&Action::Memo(m)) => match self.memos.memo(m) {
                    Some(true) => {
                        run.add(bytes, pos, end - pos, out);
                        kept = true;
                    }
                    Some(false) => {}
                    None => return (pos, kept),
                },
                _ => return (pos, kept),
            }
            pos = end;
        }
    }

    /// [`QuickLevel::keep_and_drop`] without output, for a decision: passes the `Keep` and
    /// `Drop` elements alike, and says whether it passed a `Keep` one.
    #[inline(always)]
    pub fn pass(self, bytes: &[u8], mut pos: usize) -> (usize, bool) {
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
            let index = match self.table.find_whole(tag) {
                Some(i) => i as usize,
                None => additional,
            };
            match self.actions.get(index) {
                Some(Action::Keep) => kept = true,
                Some(Action::Drop) => {}
                Some(&Action::Memo(m)) => match self.memos.memo(m) {
                    Some(value) => kept |= value,
                    None => return (pos, kept),
                },
                _ => return (pos, kept),
            }
            pos = end;
        }
    }
}
