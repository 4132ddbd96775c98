//! Stage: raw BSON access for the per-document path. Input: the bytes of a `&bson::RawDocument`.
//! Output: its elements one at a time ([`Elements`]: type, key, value bytes and the whole
//! element's bytes, for byte-for-byte copies) and their values ([`Val`], borrowed, never
//! allocated for scalars and strings).
//!
//! Why not `bson::RawIter`: redaction copies elements byte-for-byte and so needs each element's
//! byte range, which `RawIter` does not expose; and the field scan only compares key bytes, so
//! keys need no UTF-8 validation. Values are decoded exactly as the `bson` crate converts them to
//! `bson::Bson`; shapes this module does not decode itself (binary, regex, JavaScript, DBPointer,
//! embedded documents and arrays when an owned value is needed) go through the `bson` crate
//! ([`Val::to_bson`]), so an owned value is always the one the reference evaluator would see.
//!
//! Malformed input (a length that runs past the end, an unknown type byte, invalid UTF-8 in a
//! string that is read) is reported as [`Malformed`] where it is met; elements that are never
//! read are not validated (as with `bson::RawDocument`).

use bson::{Bson, Document, RawDocument};

/// The raw input is not valid BSON where it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// BSON element type bytes.
pub(crate) mod kind {
    pub const DOUBLE: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const DOCUMENT: u8 = 0x03;
    pub const ARRAY: u8 = 0x04;
    pub const BINARY: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const OBJECT_ID: u8 = 0x07;
    pub const BOOLEAN: u8 = 0x08;
    pub const DATE_TIME: u8 = 0x09;
    pub const NULL: u8 = 0x0A;
    pub const REGEX: u8 = 0x0B;
    pub const DB_POINTER: u8 = 0x0C;
    pub const JAVASCRIPT: u8 = 0x0D;
    pub const SYMBOL: u8 = 0x0E;
    pub const JAVASCRIPT_WITH_SCOPE: u8 = 0x0F;
    pub const INT32: u8 = 0x10;
    pub const TIMESTAMP: u8 = 0x11;
    pub const INT64: u8 = 0x12;
    pub const DECIMAL128: u8 = 0x13;
    pub const MIN_KEY: u8 = 0xFF;
    pub const MAX_KEY: u8 = 0x7F;
}

/// One element of a raw document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Elem<'a> {
    pub kind: u8,
    pub key: &'a [u8],
    /// [`key_tag`] of the key.
    pub tag: u64,
    /// The value's bytes (after the key's NUL).
    pub value: &'a [u8],
    /// The whole element: type byte, key, NUL, value.
    pub whole: &'a [u8],
    /// Offset of the element in the document's bytes.
    pub start: usize,
}

impl<'a> Elem<'a> {
    /// The element's value.
    pub fn val(&self) -> Result<Val<'a>, Malformed> {
        Val::decode(self.kind, self.value)
    }
}

/// A key packed in a word, to find it in a [`crate::compile::KeyTable`] without comparing
/// bytes. A key of at most seven bytes and no NUL (every key of a BSON document) is its own
/// tag: its bytes, little-endian, with the top byte zero; the tag holds the whole key, and
/// equal such tags are equal keys ([`tag_is_whole_key`]). Any other key (longer, or a rule's
/// field name holding a NUL) has its length saturated at 255 (at least 8) in the top byte and
/// its first seven bytes below: such a tag only selects candidates, whose bytes are then
/// compared. Two keys with different tags differ.
///
/// SECURITY (issue 9, finding 2): the length used to be kept modulo 256, so the 7-byte key
/// `abcdefg` and a 263-byte key starting with it had the same tag, and trusting the tag for
/// short keys read one as the other. The top byte of a long key's tag is never zero, so no
/// long key's tag is a short key's. A short name holding a NUL (`"a\u0000"`, which only a
/// rule can hold) is tagged as a long key, so that it is compared byte for byte and matches no
/// document key: as its own tag it would be `"a"`'s.
///
/// PERF (issue 16): without a length byte, a short key's tag is one masked word
/// ([`short_key_in_word`]).
#[inline]
pub(crate) fn key_tag(key: &[u8]) -> u64 {
    let whole = key.len() <= 7 && !key.contains(&0);
    let mut w = if whole {
        0
    } else {
        length_byte(key.len()).max(8) << 56
    };
    for (i, b) in key.iter().take(7).enumerate() {
        w |= u64::from(*b) << (8 * i);
    }
    w
}

/// A key's length as a tag keeps it: exact below 255, 255 for every longer key.
#[inline]
fn length_byte(len: usize) -> u64 {
    len.min(255) as u64
}

/// Whether a tag holds its whole key (a key of at most seven bytes without a NUL: its top byte
/// is zero), so that two equal such tags are two equal keys.
#[inline]
pub(crate) fn tag_is_whole_key(tag: u64) -> bool {
    tag >> 56 == 0
}

/// [`key_tag`] of the key of length `len` at `at` in `bytes`, with one word read when the
/// buffer allows it.
#[inline]
pub(crate) fn key_tag_at(bytes: &[u8], at: usize, len: usize) -> u64 {
    match bytes.get(at..at + 8) {
        // INVARIANT: the key is a document's (`len` is the offset of its NUL), so it holds no
        // NUL, and a short one is its own tag.
        Some(word) if len >= 8 || !word.iter().take(len).any(|&b| b == 0) => {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            let keep = len.min(7) * 8;
            let length = if len <= 7 { 0 } else { length_byte(len) << 56 };
            (u64::from_le_bytes(w) & ((1u64 << keep) - 1)) | length
        }
        _ => key_tag(bytes.get(at..at + len).unwrap_or(&[])),
    }
}

/// The length and [`key_tag`] of the NUL-terminated key at `at` in `bytes`.
///
/// PERF (issue 16): a key shorter than eight bytes (most keys) with eight bytes readable at `at`
/// is measured and tagged from one word: its NUL is the lowest zero byte of the word, and the
/// bytes below it are the tag. Longer keys, and keys near the end of the buffer, take the
/// general [`find_nul`] and [`key_tag_at`].
#[inline(always)]
pub(crate) fn key_len_tag(bytes: &[u8], at: usize) -> Result<(usize, u64), Malformed> {
    if let Some(&word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>)
        && let Some(short) = short_key_in_word(u64::from_le_bytes(word))
    {
        return Ok(short);
    }
    let len = find_nul(bytes.get(at..).ok_or(Malformed)?).ok_or(Malformed)?;
    Ok((len, key_tag_at(bytes, at, len)))
}

/// The zero bytes of the word `w`: the lowest set bit is the high bit of the first zero byte
/// (higher bits may be false positives after it, never before it); 0 when there is none.
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(NUL_LO) & !w & NUL_HI
}

/// The offset of the first NUL byte of the little-endian word `w` (its bytes in memory
/// order), if it holds one.
#[inline(always)]
pub(crate) fn nul_in_word(w: u64) -> Option<usize> {
    let zero = zero_bytes(w);
    (zero != 0).then_some((zero.trailing_zeros() / 8) as usize)
}

/// The length and [`key_tag`] of a key of at most seven bytes whose first eight bytes (the key,
/// its NUL, whatever follows) are the little-endian word `w`; `None` when `w` holds no NUL.
#[inline(always)]
fn short_key_in_word(w: u64) -> Option<(usize, u64)> {
    let zero = zero_bytes(w);
    if zero == 0 {
        return None;
    }
    let len = (zero.trailing_zeros() / 8) as usize;
    // The bits below the first zero byte: `zero ^ (zero - 1)` sets every bit up to that byte's
    // high bit (bit `8 * len + 7`), and the shift drops that byte.
    Some((len, w & ((zero ^ (zero - 1)) >> 8)))
}

/// Where one element lies in its document's bytes: offsets only, so that the hot loops slice
/// out just what they use ([`Span::key`], [`Span::value`]).
///
/// INVARIANT: made only by [`Spans`], which checked `start < start + 1 + key_len < end <=
/// bytes.len()` for the document's `bytes`; the slices below therefore never fall back to
/// empty.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub kind: u8,
    /// [`key_tag`] of the key.
    pub tag: u64,
    /// Offset of the element (its type byte).
    pub start: usize,
    pub key_len: usize,
    /// Offset just past the element.
    pub end: usize,
}

impl Span {
    /// Offset of the value.
    #[inline(always)]
    pub fn value_start(&self) -> usize {
        self.start + 1 + self.key_len + 1
    }

    /// The element's key, from its document's `bytes`.
    #[inline(always)]
    pub fn key<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        bytes
            .get(self.start + 1..self.start + 1 + self.key_len)
            .unwrap_or_default()
    }

    /// The element's value bytes, from its document's `bytes`.
    #[inline(always)]
    pub fn value<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        bytes.get(self.value_start()..self.end).unwrap_or_default()
    }

    /// The value of an embedded document or array element as a document: what [`checked_doc`]
    /// of [`Span::value`] gives.
    ///
    /// PERF (issue 16): [`Spans`] sized such a value by its length prefix, required at least 5
    /// ([`value_size`]), and bounds-checked the element, so the value is exactly as long as its
    /// prefix says; only its last byte is left to check (a unit test holds the two equal).
    #[inline(always)]
    pub fn embedded<'a>(&self, bytes: &'a [u8]) -> Result<CheckedDoc<'a>, Malformed> {
        let value = self.value(bytes);
        if matches!(self.kind, kind::DOCUMENT | kind::ARRAY) && value.len() >= 5 {
            match value.last() {
                Some(0) => Ok(CheckedDoc(value)),
                _ => Err(Malformed),
            }
        } else {
            checked_doc(value)
        }
    }
}

/// Iterates the elements of a raw document (or array) in order, as [`Span`]s.
#[derive(Debug, Clone)]
pub(crate) struct Spans<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Spans<'a> {
    /// The elements of the document `doc`, checked by [`checked_doc`].
    #[inline(always)]
    pub fn over(doc: CheckedDoc<'a>) -> Self {
        Spans {
            bytes: doc.0,
            pos: 4,
        }
    }

    /// The next element and its whole bytes (type byte, key, NUL, value).
    // PERF: always inlined, so that the element's fields stay in registers instead of being
    // returned through memory.
    #[inline(always)]
    fn next_span(&mut self) -> Result<Option<(Span, &'a [u8])>, Malformed> {
        let bytes = self.bytes;
        let start = self.pos;
        let kind = *bytes.get(start).ok_or(Malformed)?;
        if kind == 0 {
            // INVARIANT: `RawDocument::from_bytes` checked that the last byte is the NUL that
            // ends the document; a NUL type byte anywhere else is malformed.
            return if start + 1 == bytes.len() {
                Ok(None)
            } else {
                Err(Malformed)
            };
        }
        let key_start = start + 1;
        let (key_len, tag) = key_len_tag(bytes, key_start)?;
        let value_start = key_start + key_len + 1;
        let tail = bytes.get(value_start..).ok_or(Malformed)?;
        let end = value_start + value_size(kind, tail)?;
        // PERF: one bounds check for the whole element; its key and value lie inside it.
        let whole = bytes.get(start..end).ok_or(Malformed)?;
        self.pos = end;
        let span = Span {
            kind,
            tag,
            start,
            key_len,
            end,
        };
        Ok(Some((span, whole)))
    }
}

impl Spans<'_> {
    /// Offset of the next element.
    #[inline(always)]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Moves to the element at `pos`, an offset where an element of the document starts (or
    /// its closing NUL): one past elements already handled.
    #[inline(always)]
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos;
    }
}

impl<'a> Spans<'a> {
    /// [`Iterator::next`], with the element's whole bytes.
    // PERF: slicing the whole element (a bounds check the walk's callers need not repeat)
    // measured better than an explicit `end > len` test: W1 decision 945 against 1,006
    // instructions per document, when the fast path's probe still used it.
    #[inline(always)]
    fn next_with_bytes(&mut self) -> Option<Result<(Span, &'a [u8]), Malformed>> {
        match self.next_span() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(m) => {
                // Stop after the error: the last byte is the document's closing NUL.
                self.pos = self.bytes.len().saturating_sub(1);
                Some(Err(m))
            }
        }
    }
}

impl Iterator for Spans<'_> {
    type Item = Result<Span, Malformed>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_with_bytes()?.map(|(span, _)| span))
    }
}

/// Iterates the elements of a raw document (or array) in order.
#[derive(Debug, Clone)]
pub(crate) struct Elements<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Elements<'a> {
    pub fn new(doc: &'a RawDocument) -> Self {
        Elements {
            bytes: doc.as_bytes(),
            pos: 4,
        }
    }

    /// The elements of the document `bytes`, checked by [`checked_doc`].
    #[inline(always)]
    pub fn over(bytes: CheckedDoc<'a>) -> Self {
        Elements {
            bytes: bytes.0,
            pos: 4,
        }
    }

    // PERF: always inlined, so that the element's fields stay in registers instead of being
    // returned through memory.
    #[inline(always)]
    fn next_elem(&mut self) -> Result<Option<Elem<'a>>, Malformed> {
        let bytes = self.bytes;
        let start = self.pos;
        let kind = *bytes.get(start).ok_or(Malformed)?;
        if kind == 0 {
            // INVARIANT: `RawDocument::from_bytes` checked that the last byte is the NUL that
            // ends the document; a NUL type byte anywhere else is malformed.
            return if start + 1 == bytes.len() {
                Ok(None)
            } else {
                Err(Malformed)
            };
        }
        let key_start = start + 1;
        let (key_len, tag) = key_len_tag(bytes, key_start)?;
        let value_start = key_start + key_len + 1;
        let tail = bytes.get(value_start..).ok_or(Malformed)?;
        let end = value_start + value_size(kind, tail)?;
        // PERF: one bounds check for the whole element; its key and value lie inside it (so
        // the two sub-slices below cannot fall back to empty).
        let whole = bytes.get(start..end).ok_or(Malformed)?;
        let key = whole.get(1..1 + key_len).unwrap_or_default();
        let value = whole.get(value_start - start..).unwrap_or_default();
        self.pos = end;
        Ok(Some(Elem {
            kind,
            key,
            tag,
            value,
            whole,
            start,
        }))
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Elem<'a>, Malformed>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_elem() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(m) => {
                // Stop after the error: the last byte is the document's closing NUL.
                self.pos = self.bytes.len().saturating_sub(1);
                Some(Err(m))
            }
        }
    }
}

/// The bytes of a document that passed [`checked_doc`]: what [`RawDocument::from_bytes`] would
/// have accepted, without building the `RawDocument`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckedDoc<'a>(&'a [u8]);

impl<'a> CheckedDoc<'a> {
    /// A document already checked by `RawDocument::from_bytes`.
    #[inline(always)]
    pub fn of(doc: &'a RawDocument) -> Self {
        CheckedDoc(doc.as_bytes())
    }

    /// The document's bytes.
    #[inline(always)]
    pub fn bytes(self) -> &'a [u8] {
        self.0
    }
}

/// `bytes` as a document, with exactly the checks of [`RawDocument::from_bytes`]: at least 5
/// bytes, the length prefix equal to the length, the last byte NUL.
// PERF: the redaction walk recurses on embedded documents and arrays as checked byte ranges
// (issue 16): no `Val::decode` and `RawDocument::from_bytes` call per nested level.
#[inline(always)]
pub(crate) fn checked_doc(bytes: &[u8]) -> Result<CheckedDoc<'_>, Malformed> {
    let Some(&[a, b, c, d]) = bytes.first_chunk::<4>() else {
        return Err(Malformed);
    };
    let len = i32::from_le_bytes([a, b, c, d]);
    if bytes.len() < 5 || i64::from(len) != bytes.len() as i64 || bytes.last() != Some(&0) {
        return Err(Malformed);
    }
    Ok(CheckedDoc(bytes))
}

/// Byte equality without a `memcmp` call for the short slices that keys and rule strings
/// usually are (8 to 16 bytes: two overlapping words; fewer: byte by byte).
#[inline(always)]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    if n <= 16 {
        let word = |s: &[u8], at: usize| {
            s.get(at..at + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
                .map(u64::from_ne_bytes)
        };
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    a == b
}

/// `0x01` in every byte (the zero-byte test of [`zero_bytes`]).
const NUL_LO: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte.
const NUL_HI: u64 = 0x8080_8080_8080_8080;

/// Position of the first NUL byte of `bytes`.
#[inline]
pub(crate) fn find_nul(bytes: &[u8]) -> Option<usize> {
    // PERF: eight bytes at a time ([`nul_in_word`]).
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        if let Some(at) = nul_in_word(u64::from_le_bytes(w)) {
            return Some(offset + at);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == 0)
        .map(|p| offset + p)
}

/// Calls `f(type, value bytes)` on each element of the raw document `bytes` (keys skipped)
/// until it returns true.
#[inline(always)]
pub(crate) fn any_value(
    bytes: &[u8],
    mut f: impl FnMut(u8, &[u8]) -> bool,
) -> Result<bool, Malformed> {
    let mut pos = 4;
    loop {
        let kind = *bytes.get(pos).ok_or(Malformed)?;
        if kind == 0 {
            return if pos + 1 == bytes.len() {
                Ok(false)
            } else {
                Err(Malformed)
            };
        }
        let rest = bytes.get(pos + 1..).ok_or(Malformed)?;
        // PERF: array keys are indexes, mostly one digit: a one-byte key is seen at once (W1
        // decision 790 -> 779 instructions per document).
        let key_len = match rest {
            [k, 0, ..] if *k != 0 => 1,
            _ => find_nul(rest).ok_or(Malformed)?,
        };
        let value_start = pos + 1 + key_len + 1;
        let tail = bytes.get(value_start..).ok_or(Malformed)?;
        // PERF: a string's size is read from its prefix here, without `value_size`'s dispatch
        // on the type (W1 decision: the `shared_with` list, 561 -> 552 instructions per
        // document).
        let size = match tail.first_chunk::<4>() {
            Some(&prefix) if matches!(kind, kind::STRING | kind::SYMBOL) => {
                match usize::try_from(i32::from_le_bytes(prefix)) {
                    // At least 1: the string's NUL.
                    Ok(n) if n >= 1 => 4 + n,
                    _ => return Err(Malformed),
                }
            }
            _ => value_size(kind, tail)?,
        };
        let value = bytes
            .get(value_start..value_start + size)
            .ok_or(Malformed)?;
        if f(kind, value) {
            return Ok(true);
        }
        pos = value_start + size;
    }
}

/// Calls `f` on the bytes of each string a value holds as a match sees it: a string or symbol
/// value itself, or each string or symbol element of an array; stops when `f` returns true.
#[inline]
pub(crate) fn any_string(
    kind: u8,
    bytes: &[u8],
    mut f: impl FnMut(&[u8]) -> bool,
) -> Result<bool, Malformed> {
    fn body(b: &[u8]) -> Option<&[u8]> {
        let n = usize::try_from(read_i32(b).ok()?).ok()?;
        b.get(4..4 + n.checked_sub(1)?)
    }
    match kind {
        kind::STRING | kind::SYMBOL => Ok(f(body(bytes).ok_or(Malformed)?)),
        kind::ARRAY => {
            let mut bad = false;
            let hit = any_value(bytes, |k, v| match k {
                kind::STRING | kind::SYMBOL => match body(v) {
                    Some(s) => f(s),
                    None => {
                        bad = true;
                        true
                    }
                },
                _ => false,
            })?;
            if bad { Err(Malformed) } else { Ok(hit) }
        }
        _ => Ok(false),
    }
}

fn read_i32(bytes: &[u8]) -> Result<i32, Malformed> {
    let b: [u8; 4] = bytes
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or(Malformed)?;
    Ok(i32::from_le_bytes(b))
}

fn read_8(bytes: &[u8]) -> Result<[u8; 8], Malformed> {
    bytes
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .ok_or(Malformed)
}

fn len_of(bytes: &[u8]) -> Result<usize, Malformed> {
    usize::try_from(read_i32(bytes)?).map_err(|_| Malformed)
}

fn cstring_len(bytes: &[u8]) -> Result<usize, Malformed> {
    bytes.iter().position(|&b| b == 0).ok_or(Malformed)
}

/// [`FIXED_SIZE`]'s mark of a type whose size is read from the value (or an unknown type).
const VARIABLE: u8 = u8::MAX;

/// The value size of every fixed-size type, by type byte; [`VARIABLE`] for the others.
///
/// PERF: one table load instead of a `match` (a jump table) per element: most elements of
/// real documents are numbers, dates, ObjectIds and booleans.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: a `u8` index into 256 entries, and an out-of-range \
              index would stop the build, never a run"
)]
const FIXED_SIZE: [u8; 256] = {
    use kind::*;
    let mut t = [VARIABLE; 256];
    t[DOUBLE as usize] = 8;
    t[DATE_TIME as usize] = 8;
    t[TIMESTAMP as usize] = 8;
    t[INT64 as usize] = 8;
    t[INT32 as usize] = 4;
    t[DECIMAL128 as usize] = 16;
    t[OBJECT_ID as usize] = 12;
    t[BOOLEAN as usize] = 1;
    t[UNDEFINED as usize] = 0;
    t[NULL as usize] = 0;
    t[MIN_KEY as usize] = 0;
    t[MAX_KEY as usize] = 0;
    t
};

/// The byte size of a value of type `kind` starting at `tail`. The caller checks that the
/// value lies within its buffer (a fixed size is not checked against `tail` here).
#[inline(always)]
pub(crate) fn value_size(kind: u8, tail: &[u8]) -> Result<usize, Malformed> {
    match FIXED_SIZE
        .get(usize::from(kind))
        .copied()
        .unwrap_or(VARIABLE)
    {
        VARIABLE => match kind {
            // Strings and embedded documents inline (the common variable-size values); the
            // rare types out of line.
            kind::STRING | kind::JAVASCRIPT | kind::SYMBOL => {
                let n = len_of(tail)?;
                if n == 0 {
                    return Err(Malformed);
                }
                Ok(4 + n)
            }
            kind::DOCUMENT | kind::ARRAY | kind::JAVASCRIPT_WITH_SCOPE => {
                let n = len_of(tail)?;
                if n < 5 {
                    return Err(Malformed);
                }
                Ok(n)
            }
            _ => rare_value_size(kind, tail),
        },
        n => Ok(usize::from(n)),
    }
}

/// The type byte, key length and [`key_tag`] of the element at `pos` of `bytes` when its key
/// is at most seven bytes (one word holds the key and its NUL); `None` otherwise, and when the
/// key's NUL is not in `bytes` (the caller then parses the element in full).
#[inline(always)]
pub(crate) fn short_key_at(bytes: &[u8], pos: usize) -> Option<(u8, usize, u64)> {
    let &kind = bytes.get(pos)?;
    let rest = bytes.get(pos + 1..)?;
    let w = match rest.first_chunk::<8>() {
        Some(&word) => u64::from_le_bytes(word),
        // The document's closing NUL (`rest` empty) is left to the caller at once.
        None if kind == 0 => return None,
        None => return short_key_near_end(kind, rest),
    };
    let (len, tag) = short_key_in_word(w)?;
    Some((kind, len, tag))
}

/// [`short_key_at`] when fewer than eight bytes (`rest`) follow the type byte: the last
/// elements of small documents (`{"a": 1}`).
#[inline(never)]
fn short_key_near_end(kind: u8, rest: &[u8]) -> Option<(u8, usize, u64)> {
    let len = rest.iter().position(|&b| b == 0)?;
    Some((kind, len, key_tag(rest.get(..len)?)))
}

/// [`value_size`] of the value at `at` in `bytes` for the common types (fixed sizes, strings,
/// JavaScript, symbols, documents, arrays, code with scope); `None` for the other types, for
/// an unknown type byte, and for a length prefix that is unreadable or out of range (what
/// [`value_size`] reports as malformed). Where it gives a size, [`value_size`] gives the same.
#[inline(always)]
pub(crate) fn fixed_or_prefixed_size(kind: u8, bytes: &[u8], at: usize) -> Option<usize> {
    match FIXED_SIZE
        .get(usize::from(kind))
        .copied()
        .unwrap_or(VARIABLE)
    {
        VARIABLE => {
            let &prefix = bytes.get(at..)?.first_chunk::<4>()?;
            let n = i32::from_le_bytes(prefix);
            match kind {
                kind::STRING | kind::JAVASCRIPT | kind::SYMBOL if n >= 1 => Some(4 + n as usize),
                kind::DOCUMENT | kind::ARRAY | kind::JAVASCRIPT_WITH_SCOPE if n >= 5 => {
                    Some(n as usize)
                }
                _ => None,
            }
        }
        n => Some(usize::from(n)),
    }
}

/// [`value_size`] of binary, regex and DBPointer values (and unknown types: malformed).
#[inline(never)]
fn rare_value_size(kind: u8, tail: &[u8]) -> Result<usize, Malformed> {
    use kind::*;
    Ok(match kind {
        BINARY => 5 + len_of(tail)?,
        REGEX => {
            let p = cstring_len(tail)?;
            let o = cstring_len(tail.get(p + 1..).ok_or(Malformed)?)?;
            p + 1 + o + 1
        }
        DB_POINTER => 4 + len_of(tail)? + 12,
        _ => return Err(Malformed),
    })
}

/// A raw value, borrowed from the document's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Double(f64),
    Str(&'a str),
    Symbol(&'a str),
    Doc(&'a RawDocument),
    /// An array: a document whose keys are `0`, `1`, ...
    Arr(&'a RawDocument),
    Int32(i32),
    Int64(i64),
    Bool(bool),
    Null,
    Undefined,
    MinKey,
    MaxKey,
    ObjectId(&'a [u8; 12]),
    DateTime(i64),
    Timestamp {
        time: u32,
        increment: u32,
    },
    Decimal(&'a [u8; 16]),
    /// Binary, regex, JavaScript, code with scope, DBPointer: compared through the `bson`
    /// crate's owned value.
    Other {
        kind: u8,
        bytes: &'a [u8],
    },
}

fn string(bytes: &[u8]) -> Result<&str, Malformed> {
    let n = len_of(bytes)?;
    let body = bytes
        .get(4..4 + n.checked_sub(1).ok_or(Malformed)?)
        .ok_or(Malformed)?;
    if bytes.get(4 + n - 1) != Some(&0) {
        return Err(Malformed);
    }
    std::str::from_utf8(body).map_err(|_| Malformed)
}

impl<'a> Val<'a> {
    /// Decodes a value of type `kind` from its bytes.
    pub fn decode(kind: u8, bytes: &'a [u8]) -> Result<Val<'a>, Malformed> {
        use kind::*;
        Ok(match kind {
            DOUBLE => Val::Double(f64::from_le_bytes(read_8(bytes)?)),
            STRING => Val::Str(string(bytes)?),
            SYMBOL => Val::Symbol(string(bytes)?),
            DOCUMENT => Val::Doc(RawDocument::from_bytes(bytes).map_err(|_| Malformed)?),
            ARRAY => Val::Arr(RawDocument::from_bytes(bytes).map_err(|_| Malformed)?),
            INT32 => Val::Int32(read_i32(bytes)?),
            INT64 => Val::Int64(i64::from_le_bytes(read_8(bytes)?)),
            BOOLEAN => match bytes.first() {
                Some(0) => Val::Bool(false),
                Some(1) => Val::Bool(true),
                _ => return Err(Malformed),
            },
            NULL => Val::Null,
            UNDEFINED => Val::Undefined,
            MIN_KEY => Val::MinKey,
            MAX_KEY => Val::MaxKey,
            OBJECT_ID => Val::ObjectId(
                bytes
                    .get(..12)
                    .and_then(|s| s.try_into().ok())
                    .ok_or(Malformed)?,
            ),
            DATE_TIME => Val::DateTime(i64::from_le_bytes(read_8(bytes)?)),
            TIMESTAMP => {
                let b = read_8(bytes)?;
                let increment = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let time = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                Val::Timestamp { time, increment }
            }
            DECIMAL128 => Val::Decimal(
                bytes
                    .get(..16)
                    .and_then(|s| s.try_into().ok())
                    .ok_or(Malformed)?,
            ),
            BINARY | REGEX | JAVASCRIPT | JAVASCRIPT_WITH_SCOPE | DB_POINTER => {
                Val::Other { kind, bytes }
            }
            _ => return Err(Malformed),
        })
    }

    /// The value as an owned `Bson` when that needs no allocation (numbers, booleans, null,
    /// ObjectIds, dates, timestamps, decimals, min/max key, undefined).
    pub fn scalar(&self) -> Option<Bson> {
        Some(match *self {
            Val::Double(d) => Bson::Double(d),
            Val::Int32(i) => Bson::Int32(i),
            Val::Int64(i) => Bson::Int64(i),
            Val::Bool(b) => Bson::Boolean(b),
            Val::Null => Bson::Null,
            Val::Undefined => Bson::Undefined,
            Val::MinKey => Bson::MinKey,
            Val::MaxKey => Bson::MaxKey,
            Val::ObjectId(b) => Bson::ObjectId(bson::oid::ObjectId::from_bytes(*b)),
            Val::DateTime(ms) => Bson::DateTime(bson::DateTime::from_millis(ms)),
            Val::Timestamp { time, increment } => {
                Bson::Timestamp(bson::Timestamp { time, increment })
            }
            Val::Decimal(b) => Bson::Decimal128(bson::Decimal128::from_bytes(*b)),
            Val::Str(_) | Val::Symbol(_) | Val::Doc(_) | Val::Arr(_) | Val::Other { .. } => {
                return None;
            }
        })
    }

    /// The BSON element type byte of this value.
    pub fn kind(&self) -> u8 {
        use kind::*;
        match self {
            Val::Double(_) => DOUBLE,
            Val::Str(_) => STRING,
            Val::Symbol(_) => SYMBOL,
            Val::Doc(_) => DOCUMENT,
            Val::Arr(_) => ARRAY,
            Val::Int32(_) => INT32,
            Val::Int64(_) => INT64,
            Val::Bool(_) => BOOLEAN,
            Val::Null => NULL,
            Val::Undefined => UNDEFINED,
            Val::MinKey => MIN_KEY,
            Val::MaxKey => MAX_KEY,
            Val::ObjectId(_) => OBJECT_ID,
            Val::DateTime(_) => DATE_TIME,
            Val::Timestamp { .. } => TIMESTAMP,
            Val::Decimal(_) => DECIMAL128,
            Val::Other { kind, .. } => *kind,
        }
    }

    /// The owned value, exactly as the `bson` crate converts it (allocates for strings,
    /// documents, arrays and the other non-scalar types).
    pub fn to_bson(self) -> Result<Bson, Malformed> {
        if let Some(b) = self.scalar() {
            return Ok(b);
        }
        match self {
            Val::Str(s) => Ok(Bson::String(s.to_string())),
            Val::Symbol(s) => Ok(Bson::Symbol(s.to_string())),
            Val::Doc(d) => to_document(d).map(Bson::Document),
            Val::Arr(d) => Ok(Bson::Array(
                to_document(d)?.into_iter().map(|(_, v)| v).collect(),
            )),
            Val::Other { kind, bytes } => via_bson_crate(kind, bytes),
            _ => Err(Malformed),
        }
    }
}

/// Deepest nesting [`to_document`] converts: the `bson` crate converts recursively, so hostile
/// input nested deeper is refused (fail closed) rather than allowed to exhaust the stack. The
/// scope of a JavaScript code-with-scope counts as a level (the crate recurses into it too).
const MAX_CONVERT_DEPTH: usize = crate::limits::DOCUMENT_DEPTH_CEILING;

/// A raw document as an owned `Document`, through the `bson` crate.
pub(crate) fn to_document(doc: &RawDocument) -> Result<Document, Malformed> {
    // INVARIANT: checked iteratively before the recursive conversion.
    let mut stack: Vec<(&RawDocument, usize)> = vec![(doc, 1)];
    while let Some((d, depth)) = stack.pop() {
        if depth > MAX_CONVERT_DEPTH {
            return Err(Malformed);
        }
        for e in Elements::new(d) {
            let e = e?;
            let nested = match e.kind {
                kind::DOCUMENT | kind::ARRAY => e.value,
                kind::JAVASCRIPT_WITH_SCOPE => {
                    let code_len = e.value.get(4..).map(len_of).ok_or(Malformed)??;
                    e.value.get(8 + code_len..).ok_or(Malformed)?
                }
                _ => continue,
            };
            let inner = RawDocument::from_bytes(nested).map_err(|_| Malformed)?;
            stack.push((inner, depth + 1));
        }
    }
    Document::try_from(doc).map_err(|_| Malformed)
}

/// Converts one value through the `bson` crate by wrapping it as `{"": value}`.
fn via_bson_crate(kind: u8, bytes: &[u8]) -> Result<Bson, Malformed> {
    let total = 4 + 1 + 1 + bytes.len() + 1;
    let len = i32::try_from(total).map_err(|_| Malformed)?;
    let mut buf = Vec::with_capacity(total);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.push(kind);
    buf.push(0);
    buf.extend_from_slice(bytes);
    buf.push(0);
    let raw = RawDocument::from_bytes(&buf).map_err(|_| Malformed)?;
    let doc = to_document(raw)?;
    doc.into_iter().next().map(|(_, v)| v).ok_or(Malformed)
}

/// The first element of `doc` whose key is `key`.
pub(crate) fn get<'a>(doc: &'a RawDocument, key: &[u8]) -> Result<Option<Val<'a>>, Malformed> {
    for e in Elements::new(doc) {
        let e = e?;
        if e.key == key {
            return e.val().map(Some);
        }
    }
    Ok(None)
}

/// The element at position `index` of a raw array.
pub(crate) fn nth<'a>(arr: &'a RawDocument, index: usize) -> Result<Option<Val<'a>>, Malformed> {
    match Elements::new(arr).nth(index) {
        Some(e) => e?.val().map(Some),
        None => Ok(None),
    }
}

/// Writes BSON documents into a byte buffer: a length placeholder patched at the end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DocWriter {
    start: usize,
}

impl DocWriter {
    #[inline]
    pub fn begin(out: &mut Vec<u8>) -> DocWriter {
        let start = out.len();
        out.extend_from_slice(&[0, 0, 0, 0]);
        DocWriter { start }
    }

    /// Where the document starts in `out`.
    #[inline(always)]
    pub fn start(self) -> usize {
        self.start
    }

    /// Ends the document (NUL, length).
    #[inline]
    pub fn end(self, out: &mut Vec<u8>) -> Result<(), Malformed> {
        out.push(0);
        let len = i32::try_from(out.len() - self.start).map_err(|_| Malformed)?;
        match out.get_mut(self.start..self.start + 4) {
            Some(slot) => {
                slot.copy_from_slice(&len.to_le_bytes());
                Ok(())
            }
            None => Err(Malformed),
        }
    }
}

/// Writes the header (type byte, key, NUL) of the element `span` of `bytes`, an embedded
/// document or array, and the length placeholder of its value: the writer of that value.
///
/// PERF (issue 16): a key its tag holds whole (at most seven bytes, most keys) is written with
/// the type byte, the NUL and the placeholder as one 16-byte copy of a word built from the tag
/// (the bytes after the key are zero in it), then cut to its length: one capacity check instead
/// of four writes.
#[inline(always)]
pub(crate) fn begin_element(out: &mut Vec<u8>, span: &Span, bytes: &[u8]) -> DocWriter {
    if tag_is_whole_key(span.tag) {
        // INVARIANT: at most seven bytes: the tag holds the whole key.
        let key_len = span.key_len;
        let word = u128::from(span.kind) | (u128::from(span.tag) << 8);
        let at = out.len();
        out.extend_from_slice(&word.to_le_bytes());
        out.truncate(at + 1 + key_len + 1 + 4);
        DocWriter {
            start: at + 1 + key_len + 1,
        }
    } else {
        write_header(out, span.kind, span.key(bytes));
        DocWriter::begin(out)
    }
}

/// Writes an element header (type byte, key, NUL).
pub(crate) fn write_header(out: &mut Vec<u8>, kind: u8, key: &[u8]) {
    out.push(kind);
    out.extend_from_slice(key);
    out.push(0);
}

/// The decimal digits of `n` into `buf`, returned as a slice (array keys, without allocating).
pub(crate) fn index_key(n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or(&[])
}

/// What a full check of a raw document found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validity {
    /// Valid BSON with unique keys at every level.
    Valid,
    /// Valid BSON, but some document repeats a key (a `bson::Document` keeps the first
    /// position and the last value).
    RepeatedKeys,
    /// Not convertible to a `bson::Document` (bad lengths, types, or UTF-8).
    Invalid,
    /// Nested deeper than the rule set's `max_document_depth` (counted as
    /// [`crate::limits::document_too_deep`] counts: the document is level 1, every embedded
    /// document, array or JavaScript code-with-scope's scope one more).
    TooDeep,
}

/// Whether `doc` nests more than `max_depth` levels, counted as [`validate`] counts (the
/// document is level 1; every embedded document, array, or JavaScript code-with-scope's scope
/// one more): the depth guard of the compiled raw path when full validation is off. Reads only
/// element types and lengths, iteratively (`stack` is reused, so it stops allocating), and
/// skips documents too short to nest that deep (each level takes at least 7 bytes). Bytes it
/// cannot walk are [`Malformed`].
// PERF: the length test inlined at the call, the walk out of line: most documents are too short
// to nest that deep.
#[inline(always)]
pub(crate) fn nests_deeper(
    doc: &RawDocument,
    max_depth: usize,
    stack: &mut Vec<(usize, usize, usize)>,
) -> Result<bool, Malformed> {
    if doc.as_bytes().len() < max_depth.saturating_mul(7).saturating_add(5) {
        return Ok(max_depth == 0);
    }
    walk_depth(doc, max_depth, stack)
}

/// [`nests_deeper`] of a document long enough to nest that deep.
#[inline(never)]
fn walk_depth(
    doc: &RawDocument,
    max_depth: usize,
    stack: &mut Vec<(usize, usize, usize)>,
) -> Result<bool, Malformed> {
    let all = doc.as_bytes();
    stack.clear();
    stack.push((0, all.len(), 1));
    while let Some((start, end, level)) = stack.pop() {
        let bytes = all.get(start..end).ok_or(Malformed)?;
        let inner = RawDocument::from_bytes(bytes).map_err(|_| Malformed)?;
        for e in Elements::new(inner) {
            let e = e?;
            let value_at = start + e.start + e.whole.len() - e.value.len();
            let (from, to) = match e.kind {
                kind::DOCUMENT | kind::ARRAY => (value_at, value_at + e.value.len()),
                kind::JAVASCRIPT_WITH_SCOPE => {
                    let code_len = e.value.get(4..).map(len_of).ok_or(Malformed)??;
                    (value_at + 8 + code_len, value_at + e.value.len())
                }
                _ => continue,
            };
            if level >= max_depth {
                return Ok(true);
            }
            stack.push((from, to, level + 1));
        }
    }
    Ok(false)
}

/// Reusable buffers of [`validate`].
#[derive(Debug, Clone, Default)]
pub(crate) struct ValidateScratch {
    /// Nested documents still to check: (start, end, is an array, nesting level — `None` inside
    /// a JavaScript scope, which the depth limit does not count).
    stack: Vec<(usize, usize, bool, Option<usize>)>,
    /// Key byte ranges of the document being checked.
    keys: Vec<(usize, usize)>,
    /// Nested documents still to measure by [`nests_deeper`]: (start, end, nesting level).
    pub(crate) depth: Vec<(usize, usize, usize)>,
}

fn utf8(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok()
}

/// Checks every element of `doc` at every level the way `bson::Document::try_from` reads it:
/// lengths, types, UTF-8 of keys and strings, booleans, and repeated keys — and the nesting
/// depth against `max_depth`. Iterative.
pub(crate) fn validate(
    doc: &RawDocument,
    max_depth: usize,
    scratch: &mut ValidateScratch,
) -> Validity {
    if max_depth == 0 {
        return Validity::TooDeep;
    }
    let all = doc.as_bytes();
    scratch.stack.clear();
    scratch.stack.push((0, all.len(), false, Some(1)));
    let mut repeated = false;
    while let Some((start, end, is_array, level)) = scratch.stack.pop() {
        let child_level = level.map(|l| l + 1);
        let too_deep = child_level.is_some_and(|l| l > max_depth);
        let Some(bytes) = all.get(start..end) else {
            return Validity::Invalid;
        };
        let Ok(level) = RawDocument::from_bytes(bytes) else {
            return Validity::Invalid;
        };
        scratch.keys.clear();
        for e in Elements::new(level) {
            let Ok(e) = e else {
                return Validity::Invalid;
            };
            if !utf8(e.key) {
                return Validity::Invalid;
            }
            let value_at = start + e.start + e.whole.len() - e.value.len();
            if !is_array {
                let key_at = start + e.start + 1;
                scratch.keys.push((key_at, key_at + e.key.len()));
            }
            let ok = match e.kind {
                kind::STRING | kind::SYMBOL | kind::JAVASCRIPT => string(e.value).is_ok(),
                kind::DOCUMENT | kind::ARRAY => {
                    if too_deep {
                        return Validity::TooDeep;
                    }
                    scratch.stack.push((
                        value_at,
                        value_at + e.value.len(),
                        e.kind == kind::ARRAY,
                        child_level,
                    ));
                    true
                }
                kind::BOOLEAN => matches!(e.value.first(), Some(0 | 1)),
                kind::REGEX => {
                    let p = cstring_len(e.value).unwrap_or(0);
                    let pattern = e.value.get(..p).unwrap_or(&[]);
                    let options = e.value.get(p + 1..e.value.len().saturating_sub(1));
                    utf8(pattern) && options.is_some_and(utf8)
                }
                kind::DB_POINTER => e
                    .value
                    .get(..e.value.len().saturating_sub(12))
                    .is_some_and(|ns| string(ns).is_ok()),
                kind::BINARY => match (e.value.get(4), e.value.get(5..)) {
                    // The old binary subtype holds its own length, which must agree.
                    (Some(2), Some(data)) => {
                        read_i32(data).is_ok_and(|n| i64::from(n) + 4 == data.len() as i64)
                    }
                    (Some(_), Some(_)) => true,
                    _ => false,
                },
                kind::JAVASCRIPT_WITH_SCOPE => {
                    let code_len = e.value.get(4..).and_then(|t| len_of(t).ok());
                    match code_len {
                        Some(n) if e.value.len() >= 8 + n + 5 => {
                            let code_ok = e.value.get(4..8 + n).is_some_and(|c| string(c).is_ok());
                            if too_deep {
                                return Validity::TooDeep;
                            }
                            let scope_at = value_at + 8 + n;
                            scratch.stack.push((
                                scope_at,
                                value_at + e.value.len(),
                                false,
                                child_level,
                            ));
                            code_ok
                        }
                        _ => false,
                    }
                }
                _ => true,
            };
            if !ok {
                return Validity::Invalid;
            }
        }
        if !is_array && !repeated && scratch.keys.len() > 1 {
            scratch
                .keys
                .sort_unstable_by(|a, b| all.get(a.0..a.1).cmp(&all.get(b.0..b.1)));
            repeated = scratch
                .keys
                .windows(2)
                .any(|w| matches!(w, [a, b] if all.get(a.0..a.1) == all.get(b.0..b.1)));
        }
    }
    if repeated {
        Validity::RepeatedKeys
    } else {
        Validity::Valid
    }
}

#[cfg(test)]
mod tests {
    //! [`checked_doc`] accepts exactly what `RawDocument::from_bytes` accepts; the one-word
    //! key measure and [`any_value`] read what the general readers and the `bson` crate read.

    use bson::{RawBson, RawDocument, RawDocumentBuf};
    use proptest::prelude::*;

    use super::{
        any_value, checked_doc, find_nul, fixed_or_prefixed_size, key_len_tag, key_tag, key_tag_at,
        kind, short_key_at, tag_is_whole_key, value_size,
    };

    /// Bytes near a document's shape: a length prefix that is right, off by a little, or
    /// arbitrary; a body; a last byte that is or is not NUL.
    fn near_documents() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(any::<u8>(), 0..12),
            -2i64..=2,
            any::<bool>(),
            any::<bool>(),
            any::<i32>(),
        )
            .prop_map(|(body, off, nul, exact, prefix)| {
                let mut b = body;
                if nul {
                    b.push(0);
                }
                let total = b.len() as i64 + 4;
                let len = if exact {
                    i32::try_from(total + off).unwrap_or(0)
                } else {
                    prefix
                };
                let mut out = len.to_le_bytes().to_vec();
                out.extend(b);
                out
            })
    }

    proptest! {
        #![proptest_config(crate::test_support::persisted(
            "proptest-regressions/raw_checked_doc.txt"
        ))]

        #[test]
        fn checked_doc_agrees_with_from_bytes(bytes in prop_oneof![
            near_documents(),
            proptest::collection::vec(any::<u8>(), 0..8),
        ]) {
            prop_assert_eq!(checked_doc(&bytes).is_ok(), RawDocument::from_bytes(&bytes).is_ok());
        }
    }

    proptest! {
        #![proptest_config(crate::test_support::persisted(
            "proptest-regressions/raw_key_len_tag.txt"
        ))]

        /// The one-word key measure gives the general one's length and tag, and fails where it
        /// fails (no NUL after `at`, or `at` past the end).
        #[test]
        fn key_len_tag_agrees_with_find_nul(
            bytes in proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>(), 1u8..4], 0..24),
            at in 0usize..26,
        ) {
            let general = bytes
                .get(at..)
                .and_then(find_nul)
                .map(|len| (len, key_tag_at(&bytes, at, len)));
            prop_assert_eq!(key_len_tag(&bytes, at).ok(), general);
            if let Some((len, tag)) = general {
                prop_assert_eq!(tag, key_tag(&bytes[at..at + len]));
            }
        }
    }

    proptest! {
        #![proptest_config(crate::test_support::persisted(
            "proptest-regressions/raw_quick_parse.txt"
        ))]

        /// The quick scan's element parse (`eval/quick.rs`) agrees with the general one: where
        /// `short_key_at` gives a key, `key_len_tag` gives the same length and tag and the key
        /// is at most seven bytes; where `fixed_or_prefixed_size` gives a size, `value_size`
        /// gives the same. Anywhere in the buffer, near its end included.
        #[test]
        fn quick_parse_agrees_with_the_general_parse(
            bytes in proptest::collection::vec(
                prop_oneof![Just(0u8), any::<u8>(), 1u8..20, Just(0xFF), Just(0x7F)],
                0..24,
            ),
            at in 0usize..26,
        ) {
            if let Some((kind, len, tag)) = short_key_at(&bytes, at) {
                prop_assert_eq!(Some(&kind), bytes.get(at));
                prop_assert!(len <= 7);
                prop_assert_eq!(key_len_tag(&bytes, at + 1).ok(), Some((len, tag)));
            }
        }

        /// Where `fixed_or_prefixed_size` sizes a value, `value_size` gives the same size, for
        /// every type byte and length prefixes around the limits (negative, 0, 1, 4, 5, ...).
        #[test]
        fn quick_size_agrees_with_value_size(
            kind in prop_oneof![
                4 => prop::sample::select(&[
                    kind::STRING, kind::JAVASCRIPT, kind::SYMBOL, kind::DOCUMENT, kind::ARRAY,
                    kind::JAVASCRIPT_WITH_SCOPE, kind::BINARY, kind::REGEX, kind::DB_POINTER,
                ][..]),
                1 => any::<u8>(),
            ],
            prefix in -2i32..12,
            extra in proptest::collection::vec(any::<u8>(), 0..6),
            cut in 0usize..5,
        ) {
            let mut tail = prefix.to_le_bytes().to_vec();
            tail.extend(extra);
            // Also a prefix cut short by the end of the buffer.
            let tail = if cut == 0 { &tail[..tail.len().min(3)] } else { &tail[..] };
            if let Some(size) = fixed_or_prefixed_size(kind, tail, 0) {
                prop_assert_eq!(value_size(kind, tail).ok(), Some(size));
            }
        }
    }

    proptest! {
        #![proptest_config(crate::test_support::persisted(
            "proptest-regressions/raw_key_tag.txt"
        ))]

        /// A tag holds its whole key exactly for keys of at most seven bytes without a NUL (every
        /// such document key), and equal whole tags are equal keys: a rule's name holding a NUL
        /// (`"a\0"`) or longer than seven bytes is never taken for a document key on its tag.
        #[test]
        fn equal_whole_key_tags_are_equal_keys(
            a in proptest::collection::vec(prop_oneof![Just(0u8), Just(b'a'), Just(0xFF)], 0..10),
            b in proptest::collection::vec(prop_oneof![Just(0u8), Just(b'a'), Just(0xFF)], 0..10),
        ) {
            let (ta, tb) = (key_tag(&a), key_tag(&b));
            prop_assert_eq!(tag_is_whole_key(ta), a.len() <= 7 && !a.contains(&0));
            if ta == tb && tag_is_whole_key(ta) {
                prop_assert_eq!(&a, &b);
            }
        }
    }

    #[test]
    fn key_len_tag_edges() {
        // Key lengths 0 to 9 with eight bytes readable, and at the end of the buffer.
        for len in 0..10 {
            let mut b: Vec<u8> = (1..=len as u8).collect();
            b.push(0);
            let short = b.clone();
            b.extend([0xFF; 8]);
            for bytes in [&b, &short] {
                assert_eq!(key_len_tag(bytes, 0).ok(), Some((len, key_tag(&b[..len]))));
            }
        }
        assert!(key_len_tag(&[1, 2, 3], 0).is_err());
        assert!(key_len_tag(&[0], 1).is_err());
    }

    /// The one-copy header of a nested element writes the bytes (and leaves the writer where)
    /// `write_header` and `DocWriter::begin` do, for keys of every length up to past a word,
    /// embedded documents and arrays, at the end of the buffer and after other output.
    #[test]
    fn begin_element_agrees_with_write_header() {
        for len in 0..13 {
            let key: String = "kabcdefghijklmn".chars().take(len).collect();
            for (value, kind) in [
                (
                    bson::Bson::Document(bson::doc! { "x": 1 }),
                    super::kind::DOCUMENT,
                ),
                (
                    bson::Bson::Array(vec![bson::Bson::Int32(1)]),
                    super::kind::ARRAY,
                ),
            ] {
                let mut owned = bson::Document::new();
                owned.insert(key.clone(), value);
                let d = RawDocumentBuf::from_document(&owned).unwrap();
                let checked = super::CheckedDoc::of(&d);
                let span = super::Spans::over(checked).next().unwrap().unwrap();
                for prefix in [&[][..], &[7u8, 8, 9][..]] {
                    let mut a = prefix.to_vec();
                    let wa = super::begin_element(&mut a, &span, checked.bytes());
                    let mut b = prefix.to_vec();
                    super::write_header(&mut b, kind, key.as_bytes());
                    let wb = super::DocWriter::begin(&mut b);
                    assert_eq!(a, b, "key length {len}");
                    a.push(1);
                    b.push(1);
                    wa.end(&mut a).unwrap();
                    wb.end(&mut b).unwrap();
                    assert_eq!(a, b, "key length {len}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(crate::test_support::persisted(
            "proptest-regressions/raw_span_embedded.txt"
        ))]

        /// The shortened check of an embedded document or array (`Span::embedded`) agrees with
        /// the full one on every element `Spans` yields, whatever the value's bytes.
        #[test]
        fn span_embedded_agrees_with_checked_doc(
            kinds in proptest::collection::vec(prop_oneof![Just(3u8), Just(4u8), Just(2u8)], 1..4),
            values in proptest::collection::vec(near_documents(), 1..4),
        ) {
            let mut body = Vec::new();
            for (i, (kind, value)) in kinds.iter().zip(&values).enumerate() {
                body.push(*kind);
                body.push(b'a' + i as u8);
                body.push(0);
                body.extend_from_slice(value);
            }
            body.push(0);
            let mut bytes = ((body.len() + 4) as i32).to_le_bytes().to_vec();
            bytes.extend(body);
            if let Ok(doc) = checked_doc(&bytes) {
                for span in super::Spans::over(doc) {
                    let Ok(span) = span else { break };
                    prop_assert_eq!(
                        span.embedded(&bytes).map(super::CheckedDoc::bytes).ok(),
                        checked_doc(span.value(&bytes)).map(super::CheckedDoc::bytes).ok()
                    );
                }
            }
        }
    }

    #[test]
    fn checked_doc_edges() {
        for (bytes, ok) in [
            (&[5u8, 0, 0, 0, 0][..], true),
            (&[5, 0, 0, 0, 1][..], false),
            (&[4, 0, 0, 0][..], false),
            (&[6, 0, 0, 0, 0][..], false),
            (&[][..], false),
        ] {
            assert_eq!(checked_doc(bytes).is_ok(), ok, "{bytes:?}");
            assert_eq!(RawDocument::from_bytes(bytes).is_ok(), ok, "{bytes:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            ..crate::test_support::persisted("proptest-regressions/raw_any_value.txt")
        })]

        /// `any_value` visits each element's type and value bytes in order, whatever the keys
        /// (array indexes of one or more digits, empty keys, any bytes), as the `bson` crate
        /// reads them; values starting with a zero byte follow empty keys.
        #[test]
        fn any_value_visits_every_value_as_bson_reads_it(
            elements in proptest::collection::vec(
                ("(|0|7|12|a|abcdefghij)", prop_oneof![
                    any::<i32>().prop_map(RawBson::Int32),
                    Just(RawBson::Int32(0)),
                    "[a-z]{0,3}".prop_map(RawBson::String),
                    any::<bool>().prop_map(RawBson::Boolean),
                ]),
                0..6,
            ),
        ) {
            let mut doc = RawDocumentBuf::new();
            for (k, v) in &elements {
                doc.append(k.as_str(), v.clone());
            }
            let mut seen = Vec::new();
            let found = any_value(doc.as_bytes(), |kind, value| {
                seen.push((kind, value.to_vec()));
                false
            });
            prop_assert_eq!(found, Ok(false));
            let want: Vec<(u8, Vec<u8>)> = doc
                .iter_elements()
                .map(|e| {
                    let e = e.unwrap();
                    let mut one = RawDocumentBuf::new();
                    one.append("", e.value().unwrap().to_raw_bson());
                    let bytes = one.as_bytes();
                    (e.element_type() as u8, bytes[6..bytes.len() - 1].to_vec())
                })
                .collect();
            prop_assert_eq!(seen, want);
        }
    }
}
