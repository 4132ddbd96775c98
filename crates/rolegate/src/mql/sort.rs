//! Stage: a find's sort, skip and limit (the in-memory runner, and the update engine's `$push`
//! `$sort` through [`sort_value_cmp`]). Input: a sort specification (`{a: 1, "b.c": -1}`) parsed
//! once into a [`SortSpec`], then documents. Output: the documents in MongoDB's order, windowed
//! by `skip` and `limit`.
//!
//! MongoDB's rules, as its manual ("Comparison/Sort Order") and test suite
//! (`jstests/core/query/sort/sort_dotted_paths.js`, `sort_array.js`) state them:
//!
//! * **Values** of different types order by type bracket: MinKey < undefined < null < numbers
//!   < strings and symbols < documents < arrays < binary < ObjectId < booleans < dates <
//!   timestamps < regular expressions < DBPointer < JavaScript < JavaScript with scope <
//!   MaxKey ([`canonical_rank`]); within a bracket by [`bson_cmp`] (numbers by value across
//!   int32, int64, double and decimal, NaN lowest). [`sort_value_cmp`] is that total order.
//! * **A document's sort key** is found the way MongoDB builds index keys: each path yields the
//!   values along it, an array met on the way (or at its end) gives one key per element, a
//!   document element missing the rest of the path gives `null`, a missing field gives `null`,
//!   an empty array at the end of a path gives `undefined` (so `[]` sorts below `null`) and in
//!   the middle of a path `null`. A numeric component after an array picks that element, which
//!   is not expanded further when the path ends there (`"a.0"` of `[[1]]` is the array `[1]`);
//!   an array element that is itself an array is not expanded either. Paths that share an array
//!   take their values from the same element (`{"a.b": 1, "a.c": 1}` pairs the `b` and `c` of
//!   each element of `a`); two different arrays in one document are MongoDB's "parallel arrays"
//!   error (`BadValue`). Of the key tuples a document yields, its sort key is the smallest under
//!   the specification's order: for a single field, the smallest value ascending and the
//!   largest descending.
//! * **Ties**: MongoDB returns documents with equal sort keys in no particular order; rolegate
//!   keeps their input order (a stable sort: decision M21 in `docs/semantics.md`).
//! * `{$natural: 1}` is the input order, `{$natural: -1}` the input backwards; `$natural` cannot be
//!   combined with other fields.
//!
//! Each document's key is computed once (references into the document, no copies), then the
//! keys are sorted; with a limit, only the first `skip + limit` are selected (linear time) and
//! sorted. Comparisons of nested values are charged to the step budget ([`crate::steps`]).

use std::cmp::Ordering;

use bson::{Bson, Document};

use crate::mql::find_error::FindError;
use crate::value::compare::{MAX_DEPTH, bson_cmp, canonical_rank};

/// MongoDB's total sort order over BSON values: type bracket first (MongoDB's canonical type order), then
/// [`bson_cmp`] within the bracket. Values nested deeper than 200 levels compare equal within
/// their bracket.
pub fn sort_value_cmp(a: &Bson, b: &Bson) -> Ordering {
    canonical_rank(a)
        .cmp(&canonical_rank(b))
        .then_with(|| bson_cmp(a, b).unwrap_or(Ordering::Equal))
}

/// One field of a sort specification.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SortField {
    /// The dotted path, split.
    segments: Vec<String>,
    /// `-1`.
    descending: bool,
}

/// A parsed sort specification (`{a: 1, "b.c": -1}`); the empty specification and
/// `{$natural: 1}` keep the natural (input) order, `{$natural: -1}` reverses it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SortSpec {
    fields: Vec<SortField>,
    /// `{$natural: -1}`.
    reversed: bool,
}

/// The sort key of a document: one value per field of the specification, borrowed from the
/// document.
pub type SortKey<'d> = Vec<&'d Bson>;

static NULL: Bson = Bson::Null;
static UNDEFINED: Bson = Bson::Undefined;

/// Where a path led.
enum Walk<'d> {
    /// To one value (`null` for a missing field).
    Value(&'d Bson),
    /// To an array whose elements each give keys; `trailing` when the path ends at it, else the
    /// path goes on at segment `next` in each element.
    Array {
        array: &'d Vec<Bson>,
        trailing: bool,
        next: usize,
    },
}

/// A field's state while keys are generated.
#[derive(Debug, Clone, Copy)]
enum Slot<'d> {
    /// Its value is known.
    Fixed(&'d Bson),
    /// Its path goes on at this segment, in the current document.
    Pending(usize),
}

/// `Some(n)` when `segment` is an array index (`"0"`, `"12"`; not `"01"`).
fn positional(segment: &str) -> Option<usize> {
    if segment.is_empty()
        || !segment.bytes().all(|b| b.is_ascii_digit())
        || (segment.len() > 1 && segment.starts_with('0'))
    {
        return None;
    }
    segment.parse().ok()
}

/// Follows `segments[start..]` from `obj` (`None`: an empty document) through sub-documents, up
/// to the first array.
fn walk<'d>(obj: Option<&'d Document>, segments: &[String], start: usize) -> Walk<'d> {
    let mut cur = obj;
    let mut s = start;
    loop {
        let Some(doc) = cur else {
            return Walk::Value(&NULL);
        };
        let Some(v) = segments.get(s).and_then(|seg| doc.get(seg)) else {
            return Walk::Value(&NULL);
        };
        let last = s + 1 >= segments.len();
        match v {
            Bson::Array(array) if last => {
                return Walk::Array {
                    array,
                    trailing: true,
                    next: s + 1,
                };
            }
            _ if last => return Walk::Value(v),
            Bson::Document(sub) => {
                cur = Some(sub);
                s += 1;
            }
            Bson::Array(array) => {
                let Some(n) = segments.get(s + 1).and_then(|seg| positional(seg)) else {
                    return Walk::Array {
                        array,
                        trailing: false,
                        next: s + 1,
                    };
                };
                match array.get(n) {
                    None => return Walk::Value(&NULL),
                    // The element a positional component picks is not expanded.
                    Some(e) if s + 2 >= segments.len() => return Walk::Value(e),
                    Some(Bson::Document(sub)) => {
                        cur = Some(sub);
                        s += 2;
                    }
                    Some(Bson::Array(inner)) => {
                        return Walk::Array {
                            array: inner,
                            trailing: false,
                            next: s + 2,
                        };
                    }
                    Some(_) => return Walk::Value(&NULL),
                }
            }
            _ => return Walk::Value(&NULL),
        }
    }
}

fn parallel_arrays() -> FindError {
    FindError::bad_value("cannot sort with keys that are parallel arrays")
}

impl SortSpec {
    /// Parses a sort specification. Each value must be `1` or `-1` (any numeric type);
    /// `{$meta: ...}` sorts are refused (rolegate has no text or search scores, decision M22);
    /// paths may not be empty, have empty components or components starting with `$`. The
    /// empty specification is the natural order.
    pub fn parse(spec: &Document) -> Result<SortSpec, FindError> {
        if let Some(order) = spec.get("$natural") {
            if spec.len() != 1 {
                return Err(FindError::bad_value(
                    "a $natural sort cannot be combined with other sort fields",
                ));
            }
            let reversed = match order {
                Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_)
                    if bson_cmp(order, &Bson::Int32(1)) == Some(Ordering::Equal) =>
                {
                    false
                }
                Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_)
                    if bson_cmp(order, &Bson::Int32(-1)) == Some(Ordering::Equal) =>
                {
                    true
                }
                _ => {
                    return Err(FindError::bad_value(format!(
                        "$natural takes 1 or -1, not {order}"
                    )));
                }
            };
            return Ok(SortSpec {
                fields: Vec::new(),
                reversed,
            });
        }
        let mut fields = Vec::with_capacity(spec.len());
        for (path, order) in spec {
            let descending = match order {
                Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_)
                    if bson_cmp(order, &Bson::Int32(1)) == Some(Ordering::Equal) =>
                {
                    false
                }
                Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_)
                    if bson_cmp(order, &Bson::Int32(-1)) == Some(Ordering::Equal) =>
                {
                    true
                }
                Bson::Document(d) if d.contains_key("$meta") => {
                    return Err(FindError::bad_value(format!(
                        "sort by {{$meta: ...}} on `{path}` is not supported: rolegate has no \
                         text or search scores"
                    )));
                }
                _ => {
                    return Err(FindError::bad_value(format!(
                        "$sort key ordering must be 1 (for ascending) or -1 (for descending); \
                         `{path}` has {order}"
                    )));
                }
            };
            fields.push(SortField {
                segments: parse_path(path)?,
                descending,
            });
        }
        Ok(SortSpec {
            fields,
            reversed: false,
        })
    }

    /// True for the empty specification (natural order).
    pub fn is_natural(&self) -> bool {
        self.fields.is_empty() && !self.reversed
    }

    /// The sort key of `doc` (see the module documentation), or MongoDB's parallel-arrays
    /// error.
    pub fn key<'d>(&self, doc: &'d Document) -> Result<SortKey<'d>, FindError> {
        let mut slots: Vec<Slot<'d>> = vec![Slot::Pending(0); self.fields.len()];
        let mut best: Option<SortKey<'d>> = None;
        self.generate(Some(doc), &mut slots, &mut best, 0)?;
        Ok(best.unwrap_or_default())
    }

    /// Compares two sort keys of this specification.
    pub fn compare_keys(&self, a: &[&Bson], b: &[&Bson]) -> Ordering {
        for ((field, x), y) in self.fields.iter().zip(a).zip(b) {
            let o = sort_value_cmp(x, y);
            let o = if field.descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// Compares two documents by this specification. A document whose key is MongoDB's
    /// parallel-arrays error sorts after every other, and equal to another such document
    /// ([`sort_skip_limit`] reports the error instead).
    pub fn compare(&self, a: &Document, b: &Document) -> Ordering {
        match (self.key(a), self.key(b)) {
            (Ok(x), Ok(y)) => self.compare_keys(&x, &y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => Ordering::Equal,
        }
    }

    /// Generates the key tuples of the fields still pending in `slots`, from `obj`, keeping the
    /// smallest in `best`. Each level expands one array; the recursion is as deep as the
    /// document's arrays of documents nest (capped at [`MAX_DEPTH`]).
    fn generate<'d>(
        &self,
        obj: Option<&'d Document>,
        slots: &mut [Slot<'d>],
        best: &mut Option<SortKey<'d>>,
        depth: usize,
    ) -> Result<(), FindError> {
        let mut array: Option<&'d Vec<Bson>> = None;
        let mut hits: Vec<(usize, bool, usize)> = Vec::new();
        for (i, (slot, field)) in slots.iter_mut().zip(&self.fields).enumerate() {
            let Slot::Pending(start) = *slot else {
                continue;
            };
            match walk(obj, &field.segments, start) {
                Walk::Value(v) => *slot = Slot::Fixed(v),
                Walk::Array {
                    array: found,
                    trailing,
                    next,
                } => {
                    match array {
                        None => array = Some(found),
                        Some(seen) if std::ptr::eq(seen, found) => {}
                        Some(_) => return Err(parallel_arrays()),
                    }
                    hits.push((i, trailing, next));
                }
            }
        }
        let Some(array) = array else {
            self.offer(slots, best);
            return Ok(());
        };
        if array.is_empty() || depth >= MAX_DEPTH {
            for &(i, trailing, _) in &hits {
                if let Some(slot) = slots.get_mut(i) {
                    *slot = Slot::Fixed(if trailing && array.is_empty() {
                        &UNDEFINED
                    } else {
                        &NULL
                    });
                }
            }
            self.offer(slots, best);
            return Ok(());
        }
        let mut next_slots = slots.to_vec();
        for e in array {
            crate::steps::charge_quietly(1);
            next_slots.copy_from_slice(slots);
            for &(i, trailing, next) in &hits {
                if let Some(slot) = next_slots.get_mut(i) {
                    *slot = if trailing {
                        Slot::Fixed(e)
                    } else {
                        Slot::Pending(next)
                    };
                }
            }
            let sub = match e {
                Bson::Document(d) => Some(d),
                _ => None,
            };
            self.generate(sub, &mut next_slots, best, depth + 1)?;
        }
        Ok(())
    }

    /// Keeps the tuple of `slots` (all fixed) in `best` when it is smaller.
    fn offer<'d>(&self, slots: &[Slot<'d>], best: &mut Option<SortKey<'d>>) {
        let value = |s: &Slot<'d>| match *s {
            Slot::Fixed(v) => v,
            Slot::Pending(_) => &NULL,
        };
        if let Some(current) = best {
            let mut smaller = false;
            for ((field, s), c) in self.fields.iter().zip(slots).zip(current.iter()) {
                let o = sort_value_cmp(value(s), c);
                let o = if field.descending { o.reverse() } else { o };
                if o != Ordering::Equal {
                    smaller = o == Ordering::Less;
                    break;
                }
            }
            if !smaller {
                return;
            }
        }
        *best = Some(slots.iter().map(value).collect());
    }
}

/// Splits and checks a sort path.
fn parse_path(path: &str) -> Result<Vec<String>, FindError> {
    if path.is_empty() {
        return Err(FindError::bad_value("a sort field name may not be empty"));
    }
    let mut segments = Vec::new();
    for segment in path.split('.') {
        if segment.is_empty() {
            return Err(FindError::new(
                "Location15998",
                format!("sort field `{path}`: field names may not be empty strings"),
            ));
        }
        if segment.starts_with('$') {
            return Err(FindError::new(
                "Location16410",
                format!("sort field `{path}`: field names may not start with '$'"),
            ));
        }
        segments.push(segment.to_string());
    }
    Ok(segments)
}

/// How many documents a find skips and returns, read as MongoDB's drivers and shell read them:
/// a negative `skip` is an error (`BadValue`); a negative `limit` returns as many documents as
/// the positive one (the shell's `limit(-n)`: one batch of `n`; decision M23); `limit` 0 means no
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Documents skipped.
    pub skip: u64,
    /// Most documents returned (`None`: all).
    pub limit: Option<u64>,
}

impl Window {
    /// Reads `skip` and `limit` (see [`Window`]).
    pub fn new(skip: i64, limit: i64) -> Result<Window, FindError> {
        let skip = u64::try_from(skip).map_err(|_| {
            FindError::bad_value(format!("skip value must be non-negative, not {skip}"))
        })?;
        let limit = match limit.unsigned_abs() {
            0 => None,
            n => Some(n),
        };
        Ok(Window { skip, limit })
    }
}

/// Sorts `docs` by `spec` (stable: ties keep their input order), then skips `skip` documents
/// and keeps at most `limit` (as [`Window::new`] reads them). Each document's key is computed
/// once; with a limit, the first `skip + limit` documents are selected in linear time before
/// only they are sorted. MongoDB's parallel-arrays error for any document fails the whole sort,
/// as MongoDB fails the find.
pub fn sort_skip_limit(
    docs: Vec<Document>,
    spec: &SortSpec,
    skip: i64,
    limit: i64,
) -> Result<Vec<Document>, FindError> {
    let window = Window::new(skip, limit)?;
    sort_window(docs, spec, window)
}

/// [`sort_skip_limit`] with a [`Window`].
pub fn sort_window(
    docs: Vec<Document>,
    spec: &SortSpec,
    window: Window,
) -> Result<Vec<Document>, FindError> {
    let order = sort_order(&docs, spec, window)?;
    let mut slots: Vec<Option<Document>> = docs.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect())
}

/// The positions in `docs` of the documents [`sort_window`] returns, in order, without moving
/// or copying a document (a caller holding references copies only the window).
pub fn sort_order<D: std::borrow::Borrow<Document>>(
    docs: &[D],
    spec: &SortSpec,
    window: Window,
) -> Result<Vec<usize>, FindError> {
    let n = docs.len();
    let skip = usize::try_from(window.skip).unwrap_or(usize::MAX).min(n);
    let end = match window.limit {
        None => n,
        Some(l) => skip
            .saturating_add(usize::try_from(l).unwrap_or(usize::MAX))
            .min(n),
    };
    if spec.is_natural() {
        return Ok((skip..end).collect());
    }
    if spec.fields.is_empty() {
        // `{$natural: -1}`: the input backwards.
        return Ok((0..n).rev().skip(skip).take(end - skip).collect());
    }
    let mut keyed: Vec<(SortKey<'_>, usize)> = Vec::with_capacity(n);
    for (i, doc) in docs.iter().enumerate() {
        keyed.push((spec.key(doc.borrow())?, i));
    }
    // The index breaks ties: the order is total, so selecting then sorting gives exactly the
    // first `end` of the full sort.
    let cmp = |a: &(SortKey<'_>, usize), b: &(SortKey<'_>, usize)| {
        spec.compare_keys(&a.0, &b.0).then(a.1.cmp(&b.1))
    };
    if end == 0 {
        keyed.clear();
    } else if end < n {
        keyed.select_nth_unstable_by(end - 1, cmp);
        keyed.truncate(end);
    }
    keyed.sort_unstable_by(cmp);
    Ok(keyed.into_iter().skip(skip).map(|(_, i)| i).collect())
}
