//! Stage: value comparison (used by the evaluator, the in-memory query runner and the function
//! mocks). Input: two BSON values. Output: MongoDB equality (`bool`) or MongoDB ordering
//! (`Option<Ordering>`, `None` when the two values are not comparable).
//!
//! Semantics (MongoDB's, spec §5.2.4):
//!
//! * **Numbers** (int32, int64, double, decimal128) compare by numeric value across types and
//!   exactly: `1 == 1.0 == NumberLong(1) == NumberDecimal("1.00")`, `2^53 + 1` (int64) is not equal
//!   to the double `2^53`. A double is compared with a decimal the way MongoDB does it: the double
//!   is widened to a decimal rounded to 34 significant digits, so `NumberDecimal("0.1") != 0.1`
//!   but `NumberDecimal("0.5") == 0.5`.
//! * **NaN** (double or decimal) equals NaN and sorts below every other number (including
//!   -Infinity). The evaluator adds MongoDB's query rule on top: `$gt`/`$lt` with a NaN on either
//!   side are false, `$gte`/`$lte` are true only when both are NaN.
//! * **Strings** (and symbols) compare by their UTF-8 bytes (binary collation).
//! * **Documents** are equal when they have the same keys in the same order with equal values;
//!   they order element by element (type bracket, then key, then value), as `woCompare` does.
//!   **Arrays** compare element-wise, shorter first.
//! * Every other type compares only with itself (ObjectIds by bytes, dates by milliseconds,
//!   timestamps by `(time, increment)`, booleans `false < true`, binary by length, subtype,
//!   bytes). Different type brackets are **not comparable** ([`bson_cmp`] is `None`), so
//!   `{"$gt": 0}` is false for the string `"100"`, and an ObjectId never equals its hex string.
//!
//! [`identical`] is the other equality, the one that answers "did this value change" (the write
//! checks): same type, same bytes, and documents with the same keys **in the same order** (the
//! `bson` crate's `Document` equality ignores key order, so it is never used for that: a
//! reordered embedded document is a changed value, issue 9 finding 9).
//!
//! Nesting is capped at [`MAX_DEPTH`] levels; deeper values are not compared (the `_checked`
//! functions report [`TooDeep`], which the evaluator turns into an evaluation error that denies;
//! the plain functions answer "not equal" / "not comparable").

use std::cmp::Ordering;

use bson::{Bson, Decimal128, Document};

/// How deep documents and arrays may nest before comparison gives up.
pub const MAX_DEPTH: usize = 200;

/// Comparison reached [`MAX_DEPTH`] levels of nesting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("values nested deeper than {MAX_DEPTH} levels")]
pub struct TooDeep;

/// BSON equality with MongoDB numeric semantics (`1`, `1i64` and `1.0` are equal; NaN equals
/// NaN; an ObjectId is not equal to its hex string). Values nested deeper than 200 levels are
/// never equal.
pub fn bson_equal(a: &Bson, b: &Bson) -> bool {
    bson_equal_checked(a, b).unwrap_or(false)
}

/// [`bson_equal`], reporting values nested too deeply to compare.
pub fn bson_equal_checked(a: &Bson, b: &Bson) -> Result<bool, TooDeep> {
    Ok(cmp_at(a, b, 0)? == Some(Ordering::Equal))
}

/// Ordering between comparable values (numbers with numbers, strings with strings, dates with
/// dates, ...); `None` when the types are not comparable or the values nest deeper than 200
/// levels.
pub fn bson_cmp(a: &Bson, b: &Bson) -> Option<Ordering> {
    bson_cmp_checked(a, b).ok().flatten()
}

/// [`bson_cmp`], reporting values nested too deeply to compare.
pub fn bson_cmp_checked(a: &Bson, b: &Bson) -> Result<Option<Ordering>, TooDeep> {
    cmp_at(a, b, 0)
}

/// True when `a` and `b` are the same stored value: same BSON type and the same bytes, so
/// documents must hold the same keys in the same order (`{x: 1, y: 2}` is not identical to
/// `{y: 2, x: 1}`), `1` is not `1.0`, `0.0` is not `-0.0`, and a NaN is identical to the same
/// NaN. This is the equality of "did this field change" (the update diff); MongoDB query
/// equality is [`bson_equal`]. Values nested deeper than [`MAX_DEPTH`] are never identical (a
/// write check then treats them as changed: fail closed).
pub fn identical(a: &Bson, b: &Bson) -> bool {
    identical_at(a, b, 0)
}

fn identical_docs_at(a: &bson::Document, b: &bson::Document, depth: usize) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && identical_at(va, vb, depth + 1))
}

fn identical_at(a: &Bson, b: &Bson, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => identical_docs_at(x, y, depth),
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| identical_at(p, q, depth + 1))
        }
        (Bson::Double(x), Bson::Double(y)) => x.to_bits() == y.to_bits(),
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => {
            x.code == y.code && identical_docs_at(&x.scope, &y.scope, depth)
        }
        // Every other type holds no document: the derived equality compares its bytes (and a
        // different type is a different value).
        _ => a == b,
    }
}

/// Element-wise [`bson_equal`] of two argument lists.
pub fn bson_equal_args(a: &[Bson], b: &[Bson]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| bson_equal(x, y))
}

/// True for int32, int64, double and decimal128 values.
pub fn is_number(v: &Bson) -> bool {
    matches!(
        v,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_)
    )
}

/// True for a double or decimal NaN.
pub fn is_nan(v: &Bson) -> bool {
    match v {
        Bson::Double(d) => d.is_nan(),
        Bson::Decimal128(d) => matches!(decode_decimal(d), Dec::NaN),
        _ => false,
    }
}

/// MongoDB's truth value of a BSON value (as used by `$exists` operands and projection values):
/// `false`, `null`, undefined and numeric zero are false; everything else (including NaN, strings,
/// documents and arrays) is true.
pub fn truthy(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => *b,
        Bson::Int32(i) => *i != 0,
        Bson::Int64(i) => *i != 0,
        Bson::Double(d) => *d != 0.0,
        Bson::Decimal128(d) => !matches!(decode_decimal(d), Dec::Finite { coeff: 0, .. }),
        Bson::Null | Bson::Undefined => false,
        _ => true,
    }
}

/// The canonical type bracket of a value, in MongoDB's cross-type sort order (MinKey < null <
/// numbers < strings < documents < arrays < binary < ObjectId < booleans < dates < timestamps <
/// regexes < ... < MaxKey). Values of different brackets are not comparable.
pub fn canonical_rank(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => 0,
        Bson::Undefined => 1,
        Bson::Null => 2,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 3,
        Bson::String(_) | Bson::Symbol(_) => 4,
        Bson::Document(_) => 5,
        Bson::Array(_) => 6,
        Bson::Binary(_) => 7,
        Bson::ObjectId(_) => 8,
        Bson::Boolean(_) => 9,
        Bson::DateTime(_) => 10,
        Bson::Timestamp(_) => 11,
        Bson::RegularExpression(_) => 12,
        Bson::DbPointer(_) => 13,
        Bson::JavaScriptCode(_) => 14,
        Bson::JavaScriptCodeWithScope(_) => 15,
        Bson::MaxKey => 16,
    }
}

/// Compiles a BSON regular expression (`pattern`, MongoDB `options`) on the linear-time engine
/// with PCRE2's answers in MongoDB's configuration ([`crate::value::regex`]). Options: `i`
/// case-insensitive, `m` multi-line, `s` dot matches newline, `x` extended, `u` (always on);
/// anything else is an error, and so is a pattern the engine cannot run (with a hint).
pub fn compile_regex(pattern: &str, options: &str) -> Result<regex::Regex, String> {
    crate::value::regex::compile(pattern, options)
        .map_err(|e| format!("invalid regular expression `{pattern}`: {e}"))
}

/// Most compiled regexes [`compile_regex_cached`] keeps per thread (the cache is emptied when
/// it is full).
const REGEX_CACHE_SIZE: usize = 1024;

/// Steps ([`crate::steps`]) one regex compilation costs, besides one per byte of its pattern.
pub const REGEX_COMPILE_STEPS: u64 = 100;

thread_local! {
    /// Compiled regexes by `(pattern, options)` (finding 11 of issue 9: a regex that comes from a
    /// request value was compiled again for every value it was matched with, 10 s for one
    /// `$in`).
    static REGEXES: std::cell::RefCell<RegexCache> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Compiled regexes (or their errors) by pattern, then by options.
type RegexCache = std::collections::HashMap<String, Vec<(String, CachedRegex)>>;

/// A compiled regex shared by its users (one `Regex` keeps the matching caches it builds; a
/// clone would start without them), or why the pattern does not compile.
pub type CachedRegex = Result<std::rc::Rc<regex::Regex>, String>;

/// [`compile_regex`] through a per-thread cache, with the steps the call cost: `0` when the
/// regex was cached, [`REGEX_COMPILE_STEPS`] plus its pattern's length when it was compiled
/// (the evaluators charge them to the decision). The regex's error is cached too.
pub fn compile_regex_cached(pattern: &str, options: &str) -> (CachedRegex, u64) {
    let hit = REGEXES.with_borrow(|cache| {
        cache
            .get(pattern)
            .and_then(|by_options| by_options.iter().find(|(o, _)| o == options))
            .map(|(_, compiled)| compiled.clone())
    });
    if let Some(hit) = hit {
        return (hit, 0);
    }
    let compiled = compile_regex(pattern, options).map(std::rc::Rc::new);
    REGEXES.with_borrow_mut(|cache| {
        if cache.len() >= REGEX_CACHE_SIZE {
            cache.clear();
        }
        let by_options = cache.entry(pattern.to_string()).or_default();
        if by_options.len() >= 8 {
            by_options.clear();
        }
        by_options.push((options.to_string(), compiled.clone()));
    });
    let cost = REGEX_COMPILE_STEPS.saturating_add(pattern.len() as u64);
    (compiled, cost)
}

/// Two documents element by element (type bracket, then key, then value), as `woCompare`
/// does; one step ([`crate::steps::charge_quietly`]) per pair of elements compared.
fn cmp_documents(x: &Document, y: &Document, depth: usize) -> Result<Ordering, TooDeep> {
    if depth > MAX_DEPTH {
        return Err(TooDeep);
    }
    for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
        crate::steps::charge_quietly(1);
        let o = canonical_rank(va)
            .cmp(&canonical_rank(vb))
            .then_with(|| ka.as_bytes().cmp(kb.as_bytes()));
        if o != Ordering::Equal {
            return Ok(o);
        }
        let o = cmp_at(va, vb, depth + 1)?.unwrap_or(Ordering::Equal);
        if o != Ordering::Equal {
            return Ok(o);
        }
    }
    Ok(x.len().cmp(&y.len()))
}

fn cmp_at(a: &Bson, b: &Bson, depth: usize) -> Result<Option<Ordering>, TooDeep> {
    if depth > MAX_DEPTH {
        return Err(TooDeep);
    }
    if canonical_rank(a) != canonical_rank(b) {
        return Ok(None);
    }
    let ord = match (a, b) {
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => {
            x.as_bytes().cmp(y.as_bytes())
        }
        (Bson::Document(x), Bson::Document(y)) => cmp_documents(x, y, depth)?,
        (Bson::Array(x), Bson::Array(y)) => {
            for (va, vb) in x.iter().zip(y.iter()) {
                crate::steps::charge_quietly(1);
                let o = match canonical_rank(va).cmp(&canonical_rank(vb)) {
                    Ordering::Equal => cmp_at(va, vb, depth + 1)?.unwrap_or(Ordering::Equal),
                    o => o,
                };
                if o != Ordering::Equal {
                    return Ok(Some(o));
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => x
            .pattern
            .cmp(&y.pattern)
            .then_with(|| sorted_chars(&x.options).cmp(&sorted_chars(&y.options))),
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.cmp(y),
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => {
            match x.code.cmp(&y.code) {
                // The scopes are compared in place (copying them cost their size each time).
                Ordering::Equal => cmp_documents(&x.scope, &y.scope, depth + 1)?,
                o => o,
            }
        }
        (Bson::DbPointer(x), Bson::DbPointer(y)) => {
            if x == y {
                Ordering::Equal
            } else {
                format!("{x:?}").cmp(&format!("{y:?}"))
            }
        }
        (Bson::Null, Bson::Null)
        | (Bson::Undefined, Bson::Undefined)
        | (Bson::MinKey, Bson::MinKey)
        | (Bson::MaxKey, Bson::MaxKey) => Ordering::Equal,
        _ => match (Num::of(a), Num::of(b)) {
            (Some(x), Some(y)) => num_cmp(&x, &y),
            _ => return Ok(None),
        },
    };
    Ok(Some(ord))
}

fn sorted_chars(s: &str) -> Vec<char> {
    let mut v: Vec<char> = s.chars().collect();
    v.sort_unstable();
    v
}

/// A number of any BSON numeric type.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Double(f64),
    Dec(Dec),
}

/// A decoded decimal128: `(-1)^neg × coeff × 10^exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dec {
    NaN,
    Inf { neg: bool },
    Finite { neg: bool, coeff: u128, exp: i32 },
}

impl Num {
    fn of(v: &Bson) -> Option<Num> {
        match v {
            Bson::Int32(i) => Some(Num::Int(i64::from(*i))),
            Bson::Int64(i) => Some(Num::Int(*i)),
            Bson::Double(d) => Some(Num::Double(*d)),
            Bson::Decimal128(d) => Some(Num::Dec(decode_decimal(d))),
            _ => None,
        }
    }

    fn is_nan(&self) -> bool {
        match self {
            Num::Int(_) => false,
            Num::Double(d) => d.is_nan(),
            Num::Dec(d) => *d == Dec::NaN,
        }
    }
}

/// Largest valid decimal128 coefficient (34 nines).
const MAX_COEFF: u128 = 9_999_999_999_999_999_999_999_999_999_999_999;

/// Decodes the IEEE 754-2008 BID encoding that BSON uses for decimal128. Non-canonical
/// coefficients (above 34 digits) read as zero, as the specification and the bson crate do.
fn decode_decimal(d: &Decimal128) -> Dec {
    let v = u128::from_le_bytes(d.bytes());
    let neg = (v >> 127) & 1 == 1;
    if (v >> 123) & 0xF == 0xF {
        return if (v >> 122) & 1 == 1 {
            Dec::NaN
        } else {
            Dec::Inf { neg }
        };
    }
    let (exp_bits, coeff) = if (v >> 125) & 0b11 == 0b11 {
        // "11" form: the implicit coefficient prefix 100 makes it > 2^113, always non-canonical.
        ((v >> 111) & 0x3FFF, 0)
    } else {
        let c = v & ((1u128 << 113) - 1);
        ((v >> 113) & 0x3FFF, if c > MAX_COEFF { 0 } else { c })
    };
    let exp = i32::try_from(exp_bits).unwrap_or(0) - 6176;
    Dec::Finite { neg, coeff, exp }
}

fn dec_from_i64(i: i64) -> Dec {
    Dec::Finite {
        neg: i < 0,
        coeff: u128::from(i.unsigned_abs()),
        exp: 0,
    }
}

/// Widens a double to a decimal rounded to 34 significant digits (MongoDB's
/// `Decimal128(double, kRoundTo34Digits)` used when comparing doubles with decimals).
fn dec_from_f64(f: f64) -> Dec {
    if f.is_nan() {
        return Dec::NaN;
    }
    if f.is_infinite() {
        return Dec::Inf { neg: f < 0.0 };
    }
    // Rust's precision formatting is exact (correctly rounded from the binary value).
    let s = format!("{f:.33e}");
    let (mantissa, exponent) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let coeff = digits.parse::<u128>().unwrap_or(0);
    let exp = exponent.parse::<i32>().unwrap_or(0) - 33;
    Dec::Finite { neg, coeff, exp }
}

fn num_cmp(a: &Num, b: &Num) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (false, false) => {}
    }
    match (*a, *b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Double(x), Num::Double(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Num::Int(x), Num::Double(y)) => cmp_i64_f64(x, y),
        (Num::Double(x), Num::Int(y)) => cmp_i64_f64(y, x).reverse(),
        (Num::Dec(x), Num::Dec(y)) => dec_cmp(x, y),
        (Num::Int(x), Num::Dec(y)) => dec_cmp(dec_from_i64(x), y),
        (Num::Dec(x), Num::Int(y)) => dec_cmp(x, dec_from_i64(y)),
        (Num::Double(x), Num::Dec(y)) => dec_cmp(dec_from_f64(x), y),
        (Num::Dec(x), Num::Double(y)) => dec_cmp(x, dec_from_f64(y)),
    }
}

/// Exact comparison of an integer with a (non-NaN) double.
fn cmp_i64_f64(i: i64, f: f64) -> Ordering {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    // |t| < 2^63, so the conversion is exact.
    let ti = t as i64;
    match i.cmp(&ti) {
        Ordering::Equal => {
            let frac = f - t;
            if frac > 0.0 {
                Ordering::Less
            } else if frac < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        o => o,
    }
}

/// Sign class: -inf < negative < zero < positive < +inf.
fn dec_class(d: Dec) -> u8 {
    match d {
        Dec::Inf { neg: true } => 0,
        Dec::Finite { coeff: 0, .. } => 2,
        Dec::Finite { neg: true, .. } => 1,
        Dec::Finite { neg: false, .. } => 3,
        Dec::Inf { neg: false } | Dec::NaN => 4,
    }
}

fn dec_cmp(a: Dec, b: Dec) -> Ordering {
    let (ca, cb) = (dec_class(a), dec_class(b));
    if ca != cb {
        return ca.cmp(&cb);
    }
    match (a, b) {
        (
            Dec::Finite {
                neg,
                coeff: c1,
                exp: e1,
            },
            Dec::Finite {
                coeff: c2, exp: e2, ..
            },
        ) if c1 != 0 => {
            let m = magnitude_cmp(c1, e1, c2, e2);
            if neg { m.reverse() } else { m }
        }
        _ => Ordering::Equal,
    }
}

fn digit_count(mut c: u128) -> u32 {
    let mut n = 0;
    while c > 0 {
        c /= 10;
        n += 1;
    }
    n
}

/// Compares `c1 × 10^e1` with `c2 × 10^e2` for non-zero coefficients of at most 38 digits.
fn magnitude_cmp(mut c1: u128, e1: i32, mut c2: u128, e2: i32) -> Ordering {
    let (mut e1, mut e2) = (i64::from(e1), i64::from(e2));
    while c1.is_multiple_of(10) && c1 != 0 {
        c1 /= 10;
        e1 += 1;
    }
    while c2.is_multiple_of(10) && c2 != 0 {
        c2 /= 10;
        e2 += 1;
    }
    let (d1, d2) = (digit_count(c1), digit_count(c2));
    let (adj1, adj2) = (i64::from(d1) + e1, i64::from(d2) + e2);
    if adj1 != adj2 {
        return adj1.cmp(&adj2);
    }
    // Same order of magnitude: align the digit strings (at most 38 digits fit in a u128).
    if d1 < d2 {
        c1 = c1.saturating_mul(10u128.saturating_pow(d2 - d1));
    } else {
        c2 = c2.saturating_mul(10u128.saturating_pow(d1 - d2));
    }
    c1.cmp(&c2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(
            Decimal128::from_str(s).unwrap_or_else(|_| Decimal128::from_bytes([0; 16])),
        )
    }

    #[test]
    fn decodes_decimals_like_the_bson_crate() {
        for s in [
            "1.5",
            "-0.001",
            "12345678901234567890123456789012E+100",
            "0E-6176",
            "7",
        ] {
            let Bson::Decimal128(d) = dec(s) else {
                continue;
            };
            let Dec::Finite { coeff, exp, neg } = decode_decimal(&d) else {
                panic!("{s} decoded as special")
            };
            let shown = d.to_string();
            let back = format!("{}{}E{}", if neg { "-" } else { "" }, coeff, exp);
            assert_eq!(
                Decimal128::from_str(&back).map(|x| x.to_string()).ok(),
                Some(shown),
                "{s}"
            );
        }
        let Bson::Decimal128(n) = dec("NaN") else {
            return;
        };
        assert_eq!(decode_decimal(&n), Dec::NaN);
        let Bson::Decimal128(i) = dec("-Infinity") else {
            return;
        };
        assert_eq!(decode_decimal(&i), Dec::Inf { neg: true });
    }

    #[test]
    fn doubles_widen_to_34_digits() {
        assert_eq!(
            dec_from_f64(0.1),
            Dec::Finite {
                neg: false,
                coeff: 1_000_000_000_000_000_055_511_151_231_257_827,
                exp: -34
            }
        );
        assert_eq!(cmp_i64_f64(3, 2.5), Ordering::Greater);
        assert_eq!(cmp_i64_f64(-3, -2.5), Ordering::Less);
        assert_eq!(cmp_i64_f64(i64::MAX, 9.3e18), Ordering::Less);
    }
}
