//! Stage: path lookup (expansion paths and query field paths). Input: a BSON value or document
//! and the path segments of an [`crate::expr::Expansion`] (or a dotted query field). Output: what
//! the path reaches, MongoDB style ([`Resolved`]), or collapsed to one value ([`lookup`]).
//!
//! Rules, applied one segment at a time (iteratively: no recursion on document depth):
//!
//! * a **document** is indexed by key (exact, case-sensitive);
//! * an **array** with a numeric segment (`0`, `12`; no sign, no leading zeros) is indexed by
//!   position (spec D4); when the array has no such position, or the segment is not numeric, the
//!   path **maps over the elements that are documents** (MongoDB traversal): each element gives
//!   the value of the segment in it, or *missing* when it lacks the key or is not a document
//!   (scalars, nested arrays: MongoDB's `{"a.b": null}` matches `{a: [5, {b: 1}]}`); an empty
//!   array gives missing;
//! * anything else (a scalar) gives missing.
//!
//! [`Resolved`] keeps every value reached (and where a document lacked the key), which is what
//! MongoDB matching needs (`{"a.b": 1}` matches `{a: [{b: [1, 2]}]}`, `{"a.b": null}` matches
//! `{a: [{b: 1}, {c: 1}]}`). [`lookup`] collapses it into one value for use as an operand: a path
//! that never crossed an array gives the value itself; a path that crossed an array gives the
//! array of the values found (missing ones skipped), or missing when none was found.
//!
//! `%%request.requestHeaders.<Name>` is looked up case-insensitively (spec U25): exact key first,
//! else the first key equal ignoring ASCII case ([`resolve_request`]).

use std::borrow::Cow;

use bson::{Bson, Document};

/// Everything a path reaches, MongoDB style.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved<'a> {
    /// One entry per position the path reached: the value there, or `None` where a document on
    /// the way lacked the key (missing). Never empty: a plain missing value is `[None]`.
    pub values: Vec<Option<Cow<'a, Bson>>>,
    /// True when the path mapped over the elements of an array.
    pub traversed: bool,
    /// The positions (indexes into `values`) whose value is matched as a whole: an array there
    /// is not expanded into its elements (a query path whose last segment indexed an array,
    /// MongoDB's rule: `{"a.0": 42}` does not match `{a: [[42]]}`). Empty almost always.
    pub whole: Vec<usize>,
}

impl<'a> Resolved<'a> {
    /// Nothing there.
    pub fn missing() -> Self {
        Resolved {
            values: vec![None],
            traversed: false,
            whole: Vec::new(),
        }
    }

    /// Exactly `value` (no traversal).
    pub fn single(value: Cow<'a, Bson>) -> Self {
        Resolved {
            values: vec![Some(value)],
            traversed: false,
            whole: Vec::new(),
        }
    }

    /// Exactly `value`, matched as a whole (an array is not expanded into its elements: an
    /// element of an array tested by `$elemMatch`).
    pub fn single_whole(value: Cow<'a, Bson>) -> Self {
        Resolved {
            values: vec![Some(value)],
            traversed: false,
            whole: vec![0],
        }
    }

    /// Every position with whether an array there is expanded into its elements when it is
    /// matched (false for the positions in [`Resolved::whole`]).
    pub fn positions(&self) -> impl Iterator<Item = (Option<&Bson>, bool)> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_deref(), !self.whole.contains(&i)))
    }

    /// The values reached, without the missing positions, each with whether an array there is
    /// expanded into its elements.
    pub fn present_expanding(&self) -> impl Iterator<Item = (&Bson, bool)> {
        self.positions().filter_map(|(v, e)| v.map(|v| (v, e)))
    }

    /// True when no value was reached at all.
    pub fn is_missing(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }

    /// The values reached, without the missing positions.
    pub fn present(&self) -> impl Iterator<Item = &Bson> {
        self.values.iter().flatten().map(|c| c.as_ref())
    }

    /// Collapses to one value: the value itself when no array was traversed; the array of the
    /// values found when one was (missing when none was found).
    pub fn into_value(self) -> Option<Cow<'a, Bson>> {
        if self.traversed {
            let found: Vec<Bson> = self
                .values
                .into_iter()
                .flatten()
                .map(Cow::into_owned)
                .collect();
            if found.is_empty() {
                None
            } else {
                Some(Cow::Owned(Bson::Array(found)))
            }
        } else {
            self.values.into_iter().flatten().next()
        }
    }
}

/// Resolves `path` in `value`.
pub fn resolve<'a>(value: &'a Bson, path: &[String]) -> Resolved<'a> {
    walk(vec![Some(value)], path, None)
}

/// Resolves `path` in a document (`%%root.<path>`, a bare field name). An empty path gives the
/// document itself (cloned).
pub fn resolve_in_document<'a>(doc: &'a Document, path: &[String]) -> Resolved<'a> {
    match path.split_first() {
        None => Resolved::single(Cow::Owned(Bson::Document(doc.clone()))),
        Some((first, rest)) => match doc.get(first) {
            Some(v) => walk(vec![Some(v)], rest, None),
            None => Resolved::missing(),
        },
    }
}

/// Resolves `path` in the `%%request` value: like [`resolve`], except that the header name after
/// `requestHeaders` is matched exactly first, else ignoring ASCII case (spec U25).
pub fn resolve_request<'a>(request: &'a Bson, path: &[String]) -> Resolved<'a> {
    let header_at = match path.first() {
        Some(first) if first == "requestHeaders" => Some(1),
        _ => None,
    };
    walk(vec![Some(request)], path, header_at)
}

/// The value at `path` in `value`, collapsed as [`Resolved::into_value`] does; `None` is missing.
#[cfg(test)]
pub fn lookup<'a>(value: &'a Bson, path: &[String]) -> Option<Cow<'a, Bson>> {
    resolve(value, path).into_value()
}

/// The value at `path` in `doc` (empty path: the document), collapsed; `None` is missing.
#[cfg(test)]
pub fn lookup_in_document<'a>(doc: &'a Document, path: &[String]) -> Option<Cow<'a, Bson>> {
    resolve_in_document(doc, path).into_value()
}

/// Splits a dotted field path (`"a.b.0"`) into segments.
#[cfg(test)]
pub fn split_dotted(path: &str) -> Vec<String> {
    path.split('.').map(str::to_string).collect()
}

/// A segment that indexes arrays: ASCII digits without a leading zero (or `0` itself).
fn array_index(segment: &str) -> Option<usize> {
    let numeric = !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'));
    if numeric { segment.parse().ok() } else { None }
}

fn get_key<'a>(doc: &'a Document, key: &str, ignore_case: bool) -> Option<&'a Bson> {
    doc.get(key).or_else(|| {
        if ignore_case {
            doc.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        } else {
            None
        }
    })
}

fn walk<'a>(
    start: Vec<Option<&'a Bson>>,
    path: &[String],
    ignore_case_at: Option<usize>,
) -> Resolved<'a> {
    let mut current = start;
    let mut traversed = false;
    for (i, segment) in path.iter().enumerate() {
        let ignore_case = ignore_case_at == Some(i);
        let mut next = Vec::with_capacity(current.len());
        for value in current {
            match value {
                Some(Bson::Document(d)) => next.push(get_key(d, segment, ignore_case)),
                Some(Bson::Array(items)) => {
                    if let Some(item) = array_index(segment).and_then(|ix| items.get(ix)) {
                        next.push(Some(item));
                        continue;
                    }
                    traversed = true;
                    let before = next.len();
                    for item in items {
                        next.push(match item {
                            Bson::Document(d) => get_key(d, segment, ignore_case),
                            // Not a document: no such field there (a missing position).
                            _ => None,
                        });
                    }
                    if next.len() == before {
                        next.push(None);
                    }
                }
                _ => next.push(None),
            }
        }
        current = next;
    }
    Resolved {
        values: current.into_iter().map(|v| v.map(Cow::Borrowed)).collect(),
        traversed,
        whole: Vec::new(),
    }
}

/// Resolves a query field path (the key of a test on the document: `{"a.b.0": ...}`) in a
/// document, MongoDB's way, which differs from an expansion's ([`resolve_in_document`]) at
/// arrays with a numeric segment: the segment is **both** an index and a field name, so the
/// path continues into the element at that position *and* into the value of that key in
/// every document element (`{"a.1": 4}` matches `{a: [{"1": 4}, 5]}`); the element reached
/// through an index by the path's last segment is matched as a whole (listed in
/// [`Resolved::whole`]). Elements that are not documents (scalars, arrays) are not entered by
/// a field name: each is a missing position. Iterative; every position is visited once.
pub fn resolve_query_path<'a>(doc: &'a Document, path: &[String]) -> Resolved<'a> {
    let Some((first, _)) = path.split_first() else {
        return Resolved::single(Cow::Owned(Bson::Document(doc.clone())));
    };
    // (value, index of the next segment, reached through an array index)
    let mut stack: Vec<(Option<&'a Bson>, usize, bool)> = vec![(doc.get(first), 1, false)];
    let mut values = Vec::new();
    let mut whole = Vec::new();
    let mut traversed = false;
    while let Some((value, next, by_index)) = stack.pop() {
        let Some(segment) = path.get(next) else {
            if by_index {
                whole.push(values.len());
            }
            values.push(value.map(Cow::Borrowed));
            continue;
        };
        match value {
            Some(Bson::Document(d)) => stack.push((d.get(segment), next + 1, false)),
            Some(Bson::Array(items)) => {
                traversed = true;
                let before = stack.len();
                // Pushed in reverse so that positions come out in document order.
                for item in items.iter().rev() {
                    match item {
                        Bson::Document(d) => stack.push((d.get(segment), next + 1, false)),
                        // An element that is not a document has no such field: a missing
                        // position (`{"a.b": null}` matches `{a: [5, {b: 1}]}`).
                        _ => stack.push((None, path.len(), false)),
                    }
                }
                if let Some(item) = array_index(segment).and_then(|ix| items.get(ix)) {
                    stack.push((Some(item), next + 1, true));
                }
                if stack.len() == before {
                    values.push(None);
                }
            }
            _ => values.push(None),
        }
    }
    Resolved {
        values,
        traversed,
        whole,
    }
}
