//! Stage: value semantics of the compiled engine. Input: values from raw documents ([`Val`]),
//! owned documents and request values ([`V`]). Output: MongoDB comparisons and matches, equal to
//! the reference's ([`crate::value::eval`], [`crate::value::compare`]) by construction:
//!
//! - strings (and symbols) are compared here, by bytes, exactly as `compare.rs` does;
//! - scalars that need no allocation (numbers, booleans, dates, ObjectIds, decimals, ...) are
//!   turned into a `Bson` on the stack and compared by `compare.rs` itself — numeric equality
//!   across int32/int64/double/decimal, NaN and type brackets come from the same code;
//! - values of different type brackets are "not comparable" without looking further;
//! - anything else (embedded documents, arrays, binary, regex, JavaScript) is converted to an
//!   owned `Bson` and compared by `compare.rs` (allocates; rare in rules).
//!
//! Path resolution ([`walk`], [`Reached`]) follows `value/path.rs`: documents by key (in raw
//! documents the first element with that key), arrays by numeric segment or by mapping over
//! their document elements; the functions that match a predicate against what a path reached
//! ([`match_one`], [`compare_one`], [`in_list`]) follow `value/eval.rs` line by line.

use std::borrow::Cow;
use std::cmp::Ordering;

use bson::{Bson, Document};

use super::raw::{Elements, Malformed, Val, kind};
use crate::expr::{CmpOp, TypeSpec};
use crate::steps::charge;
use crate::value::EvalError;
use crate::value::compare::{
    bson_cmp_checked, canonical_rank, compile_regex_cached, is_nan, truthy,
};
use crate::value::ejson::type_name;
use crate::value::eval::{cmp_holds, extreme_order};
use crate::value::path::Resolved;

/// Why a compiled evaluation stopped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fault {
    /// The same error the reference evaluator reports (boxed: results stay two words wide on
    /// the hot path).
    Eval(Box<EvalError>),
    /// The raw input is not valid BSON where it was read.
    Malformed,
}

impl From<EvalError> for Fault {
    fn from(e: EvalError) -> Self {
        Fault::Eval(Box::new(e))
    }
}

impl From<Malformed> for Fault {
    fn from(_: Malformed) -> Self {
        Fault::Malformed
    }
}

impl From<crate::value::compare::TooDeep> for Fault {
    fn from(e: crate::value::compare::TooDeep) -> Self {
        Fault::Eval(Box::new(e.into()))
    }
}

/// A value, wherever it lives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum V<'a> {
    /// In a raw document.
    Raw(Val<'a>),
    /// An owned value (a request value, a literal, a value of an owned document).
    Own(&'a Bson),
    /// A whole owned document (`%%root` of a `bson::Document` input).
    OwnDoc(&'a Document),
}

impl<'a> V<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, V::Raw(Val::Null) | V::Own(Bson::Null))
    }

    /// The string of a string or symbol.
    #[inline]
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            V::Raw(Val::Str(s) | Val::Symbol(s)) => Some(s),
            V::Own(Bson::String(s) | Bson::Symbol(s)) => Some(s),
            _ => None,
        }
    }

    /// The elements of an array value.
    pub fn items(&self) -> Option<Items<'a>> {
        match *self {
            V::Raw(Val::Arr(d)) => Some(Items::Raw(Elements::new(d))),
            V::Own(Bson::Array(items)) => Some(Items::Own(items.iter())),
            _ => None,
        }
    }

    /// The BSON element type byte.
    pub fn kind(&self) -> u8 {
        match self {
            V::Raw(v) => v.kind(),
            V::Own(b) => b.element_type() as u8,
            V::OwnDoc(_) => kind::DOCUMENT,
        }
    }

    /// The value of `key` in a document value (the first such element of a raw document).
    pub fn get(&self, key: &str) -> Result<Option<V<'a>>, Fault> {
        Ok(match *self {
            V::Raw(Val::Doc(d)) => super::raw::get(d, key.as_bytes())?.map(V::Raw),
            V::Own(Bson::Document(d)) => d.get(key).map(V::Own),
            V::OwnDoc(d) => d.get(key).map(V::Own),
            _ => None,
        })
    }

    /// The owned value (borrowed when it already is one). A copy of a document or an array is
    /// charged its size to the step budget (finding 11 of issue 9: a copy costs its size).
    pub fn to_bson(self) -> Result<Cow<'a, Bson>, Fault> {
        Ok(match self {
            V::Own(b) => Cow::Borrowed(b),
            V::Raw(v) => {
                let b = v.to_bson()?;
                if matches!(
                    b,
                    Bson::Document(_) | Bson::Array(_) | Bson::JavaScriptCodeWithScope(_)
                ) {
                    charge(crate::steps::copy_steps(&b))?;
                }
                Cow::Owned(b)
            }
            V::OwnDoc(d) => {
                charge(crate::steps::document_copy_steps(d))?;
                Cow::Owned(Bson::Document(d.clone()))
            }
        })
    }

    fn nan(&self) -> bool {
        match self {
            V::Raw(Val::Double(d)) => d.is_nan(),
            V::Raw(v @ Val::Decimal(_)) => v.scalar().is_some_and(|b| is_nan(&b)),
            V::Own(b) => is_nan(b),
            _ => false,
        }
    }

    /// MongoDB's truth value (`compare::truthy`).
    pub fn truthy(&self) -> bool {
        match self {
            V::Own(b) => truthy(b),
            V::Raw(v) => v.scalar().is_none_or(|b| truthy(&b)),
            V::OwnDoc(_) => true,
        }
    }
}

/// The elements of an array.
#[derive(Debug, Clone)]
pub(crate) enum Items<'a> {
    Raw(Elements<'a>),
    Own(std::slice::Iter<'a, Bson>),
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<V<'a>, Fault>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Items::Raw(e) => e
                .next()
                .map(|r| r.and_then(|e| e.val()).map(V::Raw).map_err(Fault::from)),
            Items::Own(i) => i.next().map(|b| Ok(V::Own(b))),
        }
    }
}

/// A value classified for comparison.
enum Cmp<'a> {
    Str(&'a str),
    Scalar(Bson),
    Owned(&'a Bson),
    Complex(V<'a>),
}

fn classify(v: V<'_>) -> Cmp<'_> {
    if let Some(s) = v.as_str() {
        return Cmp::Str(s);
    }
    match v {
        V::Own(b) => Cmp::Owned(b),
        V::Raw(r) => match r.scalar() {
            Some(b) => Cmp::Scalar(b),
            None => Cmp::Complex(v),
        },
        V::OwnDoc(_) => Cmp::Complex(v),
    }
}

fn rank(c: &Cmp<'_>) -> u8 {
    match c {
        Cmp::Str(_) => 4,
        Cmp::Scalar(b) => canonical_rank(b),
        Cmp::Owned(b) => canonical_rank(b),
        Cmp::Complex(V::Own(b)) => canonical_rank(b),
        Cmp::Complex(V::OwnDoc(_)) => 5,
        Cmp::Complex(V::Raw(r)) => match r.kind() {
            kind::DOCUMENT => 5,
            kind::ARRAY => 6,
            kind::BINARY => 7,
            kind::REGEX => 12,
            kind::DB_POINTER => 13,
            kind::JAVASCRIPT => 14,
            kind::JAVASCRIPT_WITH_SCOPE => 15,
            _ => r.scalar().map_or(255, |b| canonical_rank(&b)),
        },
    }
}

/// MongoDB ordering of two values (`compare::bson_cmp_checked`); `None`: not comparable.
pub(crate) fn cmp(a: V<'_>, b: V<'_>) -> Result<Option<Ordering>, Fault> {
    let (ca, cb) = (classify(a), classify(b));
    if let (Cmp::Str(x), Cmp::Str(y)) = (&ca, &cb) {
        return Ok(Some(x.as_bytes().cmp(y.as_bytes())));
    }
    if rank(&ca) != rank(&cb) {
        return Ok(None);
    }
    let as_ref = |c: &Cmp<'_>| -> Option<Bson> {
        match c {
            Cmp::Scalar(b) => Some(b.clone()),
            _ => None,
        }
    };
    match (&ca, &cb) {
        (Cmp::Scalar(x), Cmp::Scalar(y)) => Ok(bson_cmp_checked(x, y)?),
        (Cmp::Scalar(x), Cmp::Owned(y)) => Ok(bson_cmp_checked(x, y)?),
        (Cmp::Owned(x), Cmp::Scalar(y)) => Ok(bson_cmp_checked(x, y)?),
        (Cmp::Owned(x), Cmp::Owned(y)) => Ok(bson_cmp_checked(x, y)?),
        _ => {
            // PERF: embedded documents, arrays and rare types: compared on owned values.
            let x = match as_ref(&ca) {
                Some(b) => Cow::Owned(b),
                None => a.to_bson()?,
            };
            let y = match as_ref(&cb) {
                Some(b) => Cow::Owned(b),
                None => b.to_bson()?,
            };
            Ok(bson_cmp_checked(&x, &y)?)
        }
    }
}

/// MongoDB equality (`compare::bson_equal_checked`).
#[inline]
pub(crate) fn equal(a: V<'_>, b: V<'_>) -> Result<bool, Fault> {
    // PERF: common cases without classification. A string equals only a string (the string
    // bracket holds strings and symbols alone); booleans equal only booleans.
    match (a.as_str(), b.as_str()) {
        (Some(x), Some(y)) => return Ok(x.as_bytes() == y.as_bytes()),
        (Some(_), None) | (None, Some(_)) => return Ok(false),
        (None, None) => {}
    }
    match (a, b) {
        (V::Raw(Val::Bool(x)), V::Own(Bson::Boolean(y)))
        | (V::Own(Bson::Boolean(y)), V::Raw(Val::Bool(x))) => return Ok(x == *y),
        (V::Raw(Val::Int32(x)), V::Own(Bson::Int32(y)))
        | (V::Own(Bson::Int32(y)), V::Raw(Val::Int32(x))) => return Ok(x == *y),
        (V::Raw(Val::Int64(x)), V::Own(Bson::Int64(y)))
        | (V::Own(Bson::Int64(y)), V::Raw(Val::Int64(x))) => return Ok(x == *y),
        _ => {}
    }
    Ok(cmp(a, b)? == Some(Ordering::Equal))
}

/// How a value operand matches (`value/eval.rs` `Mode`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mode {
    pub regex: bool,
    pub contains: bool,
    /// The operand is a constant the rule wrote (`value/eval.rs`: a literal `null` matches
    /// missing and a literal regex is a pattern; substituted values do neither).
    pub literal: bool,
}

pub(crate) const EQ: Mode = Mode {
    regex: false,
    contains: false,
    literal: true,
};
pub(crate) const IN: Mode = Mode {
    regex: true,
    contains: false,
    literal: true,
};
pub(crate) const MATCH: Mode = Mode {
    regex: true,
    contains: true,
    literal: true,
};

impl Mode {
    /// This mode for an operand that is (`true`) or is not a constant the rule wrote.
    pub fn literal(self, literal: bool) -> Mode {
        Mode { literal, ..self }
    }
}

/// A regex compiled ahead (literal operands), if any.
pub(crate) type RegexHint<'a> = Option<&'a Result<regex::Regex, String>>;

fn bad_regex(message: String) -> Fault {
    Fault::from(EvalError::BadArgument {
        operator: "$regex",
        message,
    })
}

/// `value/eval.rs` `match_one`: does `subject` (missing: `None`) match `operand`?
///
/// `expand`: an array subject also matches through its elements (false for a value matched
/// as a whole, [`Reached::Whole`]).
pub(crate) fn match_one(
    subject: Option<V<'_>>,
    expand: bool,
    operand: V<'_>,
    mode: Mode,
    hint: RegexHint<'_>,
) -> Result<bool, Fault> {
    charge(1)?;
    if let Some(s) = operand.as_str() {
        // PERF: a string operand (`{"owner_id": "%%user.id"}`) equals only strings and symbols
        // with the same bytes, directly or as an array element; no null, regex or
        // containment rule applies to it.
        let Some(v) = subject else {
            return Ok(false);
        };
        if let Some(t) = v.as_str() {
            return Ok(t.as_bytes() == s.as_bytes());
        }
        if let (true, Some(items)) = (expand, v.items()) {
            for i in items {
                charge(1)?;
                if i?.as_str().is_some_and(|t| t.as_bytes() == s.as_bytes()) {
                    return Ok(true);
                }
            }
        }
        return Ok(false);
    }
    if operand.is_null() {
        return Ok(match subject {
            None => mode.literal,
            Some(s) if s.is_null() => true,
            Some(s) => match s.items().filter(|_| expand) {
                Some(items) => {
                    for i in items {
                        if i?.is_null() {
                            return Ok(true);
                        }
                    }
                    false
                }
                None => false,
            },
        });
    }
    let Some(v) = subject else {
        return Ok(false);
    };
    if mode.regex && mode.literal && operand.kind() == kind::REGEX {
        let owned = operand.to_bson()?;
        let Bson::RegularExpression(re) = owned.as_ref() else {
            return Ok(false);
        };
        let cached;
        let compiled: &regex::Regex = match hint {
            Some(Ok(r)) => r,
            Some(Err(m)) => return Err(bad_regex(m.clone())),
            None => {
                let (compiled, cost) = compile_regex_cached(&re.pattern, &re.options);
                charge(cost)?;
                cached = compiled.map_err(bad_regex)?;
                &cached
            }
        };
        let one = |x: V<'_>| -> Result<bool, Fault> {
            if let Some(t) = x.as_str() {
                return Ok(compiled.is_match(t));
            }
            if x.kind() == kind::REGEX {
                return equal(x, operand);
            }
            Ok(false)
        };
        if one(v)? {
            return Ok(true);
        }
        if let (true, Some(items)) = (expand, v.items()) {
            for i in items {
                charge(1)?;
                if one(i?)? {
                    return Ok(true);
                }
            }
        }
        return Ok(false);
    }
    if equal(v, operand)? {
        return Ok(true);
    }
    if let Some(items) = v.items() {
        if !expand {
            return Ok(false);
        }
        for i in items {
            charge(1)?;
            if equal(i?, operand)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if mode.contains
        && let Some(items) = operand.items()
    {
        for i in items {
            charge(1)?;
            if equal(v, i?)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `value/eval.rs` `compare_one` (`$gt` `$gte` `$lt` `$lte`, and `$eq`/`$ne` there).
pub(crate) fn compare_one(
    subject: Option<V<'_>>,
    expand: bool,
    op: CmpOp,
    operand: V<'_>,
    literal: bool,
) -> Result<bool, Fault> {
    charge(1)?;
    let Some(v) = subject else {
        // A missing value compares as null with a literal null, MinKey or MaxKey.
        if let Some(ord) = extreme_order(kind::NULL, operand.kind()) {
            return Ok(literal && cmp_holds(op, ord));
        }
        return Ok(literal && operand.is_null() && matches!(op, CmpOp::Gte | CmpOp::Lte));
    };
    if compare_single(v, op, operand)? {
        return Ok(true);
    }
    if let (true, Some(items)) = (expand, v.items()) {
        for i in items {
            charge(1)?;
            if compare_single(i?, op, operand)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn compare_single(v: V<'_>, op: CmpOp, operand: V<'_>) -> Result<bool, Fault> {
    if let Some(ord) = extreme_order(v.kind(), operand.kind()) {
        return Ok(cmp_holds(op, ord));
    }
    let (nan_v, nan_o) = (v.nan(), operand.nan());
    if nan_v || nan_o {
        let both = nan_v && nan_o;
        return Ok(match op {
            CmpOp::Gte | CmpOp::Lte | CmpOp::Eq => both,
            CmpOp::Gt | CmpOp::Lt => false,
            CmpOp::Ne => !both,
        });
    }
    let Some(ord) = cmp(v, operand)? else {
        return Ok(false);
    };
    Ok(cmp_holds(op, ord))
}

/// `EvalError::NotAnArray` for `found`.
pub(crate) fn not_an_array(operator: &'static str, found: V<'_>) -> Fault {
    match found.to_bson() {
        Ok(b) => Fault::from(EvalError::NotAnArray {
            operator,
            found: type_name(&b).to_string(),
        }),
        Err(f) => f,
    }
}

/// `$type`: `value/eval.rs` `type_is`.
pub(crate) fn type_is(v: V<'_>, specs: &[TypeSpec]) -> bool {
    let k = v.kind();
    specs.iter().any(|t| match t {
        TypeSpec::Exact(et) => k == *et as u8,
        TypeSpec::Number => matches!(
            k,
            kind::DOUBLE | kind::INT32 | kind::INT64 | kind::DECIMAL128
        ),
    })
}

/// An array segment (`value/path.rs`): ASCII digits without a leading zero (or `0`).
pub(crate) fn array_index(segment: &str) -> Option<usize> {
    let numeric = !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'));
    if numeric { segment.parse().ok() } else { None }
}

/// What a path reached (`value/path.rs` `Resolved`), without allocating in the common case.
#[derive(Debug, Clone)]
pub(crate) enum Reached<'a> {
    /// One position (the path crossed no array by mapping).
    One(Option<V<'a>>),
    /// Several positions (the path mapped over array elements).
    Many(Vec<Option<V<'a>>>),
    /// A request value resolved once per request.
    Request(&'a Resolved<'a>),
    /// One value matched as a whole: an array is not expanded into its elements (an element
    /// tested by `$elemMatch`'s operators).
    Whole(V<'a>),
}

/// Iterates the positions of a [`Reached`].
pub(crate) enum ReachedIter<'r, 'a> {
    One(Option<Option<V<'a>>>),
    Many(std::slice::Iter<'r, Option<V<'a>>>),
    Request(std::slice::Iter<'r, Option<Cow<'a, Bson>>>),
}

impl<'r, 'a: 'r> Iterator for ReachedIter<'r, 'a> {
    type Item = Option<V<'r>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ReachedIter::One(o) => o.take(),
            ReachedIter::Many(i) => i.next().copied(),
            ReachedIter::Request(i) => i.next().map(|v| v.as_deref().map(V::Own)),
        }
    }
}

impl<'a> Reached<'a> {
    pub fn missing() -> Self {
        Reached::One(None)
    }

    /// Every position (missing ones as `None`).
    #[inline]
    pub fn iter(&self) -> ReachedIter<'_, 'a> {
        match self {
            Reached::One(v) => ReachedIter::One(Some(*v)),
            Reached::Whole(v) => ReachedIter::One(Some(Some(*v))),
            Reached::Many(vs) => ReachedIter::Many(vs.iter()),
            Reached::Request(r) => ReachedIter::Request(r.values.iter()),
        }
    }

    /// Whether an array among the values is also matched through its elements (false for
    /// [`Reached::Whole`]).
    #[inline]
    pub fn expands(&self) -> bool {
        !matches!(self, Reached::Whole(_))
    }

    /// The values reached.
    pub fn present(&self) -> impl Iterator<Item = V<'_>> {
        self.iter().flatten()
    }

    /// True when no value was reached.
    pub fn is_missing(&self) -> bool {
        self.iter().all(|v| v.is_none())
    }

    /// Collapses to one operand value (`Resolved::into_value`).
    pub fn into_value(self) -> Result<Option<OpVal<'a>>, Fault> {
        match self {
            Reached::One(v) => Ok(v.map(OpVal::V)),
            Reached::Whole(v) => Ok(Some(OpVal::V(v))),
            Reached::Many(vs) => {
                let mut found = Vec::new();
                for v in vs.into_iter().flatten() {
                    found.push(v.to_bson()?.into_owned());
                }
                Ok((!found.is_empty()).then_some(OpVal::Owned(Bson::Array(found))))
            }
            Reached::Request(r) => Ok(r.clone().into_value().map(|c| OpVal::Owned(c.into_owned()))),
        }
    }
}

/// An operand value: borrowed, or built for this evaluation.
#[derive(Debug, Clone)]
pub(crate) enum OpVal<'a> {
    V(V<'a>),
    Owned(Bson),
}

impl OpVal<'_> {
    #[inline]
    pub fn v(&self) -> V<'_> {
        match self {
            OpVal::V(v) => *v,
            OpVal::Owned(b) => V::Own(b),
        }
    }
}

/// Resolves `path` from `start` (`value/path.rs` `walk`; `traversed` is implied by `Many`).
pub(crate) fn walk<'a>(start: V<'a>, path: &[String]) -> Result<Reached<'a>, Fault> {
    let mut one = Some(start);
    let mut segments = path.iter();
    // PERF: stay on one value (no allocation) until the path maps over an array.
    for segment in segments.by_ref() {
        let Some(v) = one else {
            return Ok(Reached::One(None));
        };
        if let Some(items) = v.items() {
            if let Some(item) = nth(&v, segment)? {
                one = Some(item);
                continue;
            }
            let mut next = Vec::new();
            map_over(items, segment, &mut next)?;
            return many(next, segments.as_slice());
        }
        one = v.get(segment)?;
    }
    Ok(Reached::One(one))
}

/// `items[segment]` when `segment` is an index the array has.
fn nth<'a>(array: &V<'a>, segment: &str) -> Result<Option<V<'a>>, Fault> {
    let Some(ix) = array_index(segment) else {
        return Ok(None);
    };
    Ok(match *array {
        V::Raw(Val::Arr(d)) => super::raw::nth(d, ix)?.map(V::Raw),
        V::Own(Bson::Array(items)) => items.get(ix).map(V::Own),
        _ => None,
    })
}

/// Maps `segment` over the elements of an array: the value in each document element, a
/// missing position for every other element (and for an empty array).
fn map_over<'a>(
    items: Items<'a>,
    segment: &str,
    next: &mut Vec<Option<V<'a>>>,
) -> Result<(), Fault> {
    let before = next.len();
    for item in items {
        let item = item?;
        // A non-document element is a missing position (`value/path.rs`).
        next.push(if item.kind() == kind::DOCUMENT {
            item.get(segment)?
        } else {
            None
        });
    }
    if next.len() == before {
        next.push(None);
    }
    Ok(())
}

fn many<'a>(mut current: Vec<Option<V<'a>>>, rest: &[String]) -> Result<Reached<'a>, Fault> {
    for segment in rest {
        let mut next = Vec::with_capacity(current.len());
        for value in current {
            match value {
                Some(v) if v.kind() == kind::DOCUMENT => next.push(v.get(segment)?),
                Some(v) => match v.items() {
                    Some(items) => {
                        if let Some(item) = nth(&v, segment)? {
                            next.push(Some(item));
                            continue;
                        }
                        map_over(items, segment, &mut next)?;
                    }
                    None => next.push(None),
                },
                None => next.push(None),
            }
        }
        current = next;
    }
    Ok(Reached::Many(current))
}

/// The strings an indexed `path == "constant"` test can match among what a path reached: each
/// string (or symbol) value, and each string element of an array value.
pub(crate) fn for_each_string<'a>(
    reached: &Reached<'a>,
    mut f: impl FnMut(&str) -> Result<bool, Fault>,
) -> Result<bool, Fault> {
    for v in reached.present() {
        if let Some(s) = v.as_str() {
            if f(s)? {
                return Ok(true);
            }
        } else if let Some(items) = v.items() {
            for i in items {
                if let Some(s) = i?.as_str()
                    && f(s)?
                {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}
