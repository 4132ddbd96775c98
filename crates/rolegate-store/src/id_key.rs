//! Stage: the `_id` index key. Input: an `_id` value. Output: its canonical bytes, equal for two
//! values exactly when MongoDB's equality ([`rolegate::mql::bson_equal`]) says they are the same
//! `_id`, so that the unique index refuses `1`, `NumberLong(1)`, `1.0` and `NumberDecimal("1.00")`
//! as one key.
//!
//! The encoding (only equality matters: the index is never scanned in order):
//!
//! * **numbers** (int32, int64, double, decimal128) become one normalised decimal
//!   `sign × coefficient × 10^exponent` with no trailing zero in the coefficient; every zero
//!   (`0`, `-0.0`, `0E-6176`) is one key, every NaN is one key, and each infinity is one key. An
//!   integer or a decimal is exact; a double is its value rounded to 34 significant digits, which
//!   is how MongoDB (and rolegate) compare a double with a decimal (`NumberDecimal("0.1")` is not
//!   the double `0.1`), and which is exact for every double that equals an integer (all integers up
//!   to 10^34), so it agrees with the exact comparison of doubles with integers too;
//! * **strings and symbols** are one type (their UTF-8 bytes);
//! * **documents** keep their key order (`{a: 1, b: 2}` is not `{b: 2, a: 1}`), with each value
//!   encoded by these rules (`{a: 1}` is `{a: 1.0}`); **arrays** likewise, element by element;
//! * **regular expressions** are their pattern and their options sorted;
//! * every other type is its type tag and its bytes (ObjectIds, binaries with their subtype, dates,
//!   timestamps, booleans, code, code with scope, DB pointers, null, undefined, MinKey, MaxKey).
//!
//! Every variable-length part carries its length, so no two encodings run into each other.
//! Values nest at most [`MAX_DEPTH`] levels here (the store refuses deeper documents before).

use bson::{Bson, Decimal128, Document};

/// How deep an `_id` may nest before it is refused (the store's document limit is lower).
pub const MAX_DEPTH: usize = 200;

/// Type tags: one per MongoDB equality class of types.
mod tag {
    pub const MIN_KEY: u8 = 0x01;
    pub const UNDEFINED: u8 = 0x02;
    pub const NULL: u8 = 0x03;
    pub const NAN: u8 = 0x10;
    pub const NEG_INFINITY: u8 = 0x11;
    pub const FINITE: u8 = 0x12;
    pub const ZERO: u8 = 0x13;
    pub const INFINITY: u8 = 0x14;
    pub const STRING: u8 = 0x20;
    pub const DOCUMENT: u8 = 0x30;
    pub const ARRAY: u8 = 0x40;
    pub const BINARY: u8 = 0x50;
    pub const OBJECT_ID: u8 = 0x60;
    pub const BOOLEAN: u8 = 0x70;
    pub const DATE: u8 = 0x80;
    pub const TIMESTAMP: u8 = 0x90;
    pub const REGEX: u8 = 0xA0;
    pub const DB_POINTER: u8 = 0xB0;
    pub const CODE: u8 = 0xC0;
    pub const CODE_WITH_SCOPE: u8 = 0xD0;
    pub const MAX_KEY: u8 = 0xFF;
}

/// The canonical key of an `_id` value, or why it has none (nested too deeply, or a value the
/// encoder cannot read).
pub fn id_key(id: &Bson) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(16);
    encode(id, 0, &mut out)?;
    Ok(out)
}

fn encode(v: &Bson, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("_id nested deeper than {MAX_DEPTH} levels"));
    }
    match v {
        Bson::MinKey => out.push(tag::MIN_KEY),
        Bson::Undefined => out.push(tag::UNDEFINED),
        Bson::Null => out.push(tag::NULL),
        Bson::MaxKey => out.push(tag::MAX_KEY),
        Bson::Int32(i) => number(Number::integer(i64::from(*i)), out),
        Bson::Int64(i) => number(Number::integer(*i), out),
        Bson::Double(d) => number(Number::double(*d)?, out),
        Bson::Decimal128(d) => number(Number::decimal(d), out),
        Bson::String(s) | Bson::Symbol(s) => {
            out.push(tag::STRING);
            bytes(s.as_bytes(), out)?;
        }
        Bson::Document(d) => {
            out.push(tag::DOCUMENT);
            document(d, depth, out)?;
        }
        Bson::Array(items) => {
            out.push(tag::ARRAY);
            length(items.len(), out)?;
            for item in items {
                encode(item, depth + 1, out)?;
            }
        }
        Bson::Binary(b) => {
            out.push(tag::BINARY);
            out.push(u8::from(b.subtype));
            bytes(&b.bytes, out)?;
        }
        Bson::ObjectId(o) => {
            out.push(tag::OBJECT_ID);
            out.extend_from_slice(&o.bytes());
        }
        Bson::Boolean(b) => {
            out.push(tag::BOOLEAN);
            out.push(u8::from(*b));
        }
        Bson::DateTime(d) => {
            out.push(tag::DATE);
            out.extend_from_slice(&d.timestamp_millis().to_be_bytes());
        }
        Bson::Timestamp(t) => {
            out.push(tag::TIMESTAMP);
            out.extend_from_slice(&t.time.to_be_bytes());
            out.extend_from_slice(&t.increment.to_be_bytes());
        }
        Bson::RegularExpression(r) => {
            out.push(tag::REGEX);
            bytes(r.pattern.as_bytes(), out)?;
            let mut options: Vec<char> = r.options.chars().collect();
            options.sort_unstable();
            let options: String = options.into_iter().collect();
            bytes(options.as_bytes(), out)?;
        }
        Bson::JavaScriptCode(code) => {
            out.push(tag::CODE);
            bytes(code.as_bytes(), out)?;
        }
        Bson::JavaScriptCodeWithScope(c) => {
            out.push(tag::CODE_WITH_SCOPE);
            bytes(c.code.as_bytes(), out)?;
            document(&c.scope, depth, out)?;
        }
        Bson::DbPointer(_) => {
            // Its parts are private to the bson crate: its BSON bytes are the value.
            let mut holder = Document::new();
            holder.insert("", v.clone());
            let mut raw = Vec::new();
            holder
                .to_writer(&mut raw)
                .map_err(|e| format!("unreadable DBPointer _id: {e}"))?;
            out.push(tag::DB_POINTER);
            bytes(&raw, out)?;
        }
    }
    Ok(())
}

fn document(d: &Document, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    length(d.len(), out)?;
    for (key, value) in d {
        bytes(key.as_bytes(), out)?;
        encode(value, depth + 1, out)?;
    }
    Ok(())
}

fn length(n: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let n = u32::try_from(n).map_err(|_| "an _id part longer than 4 GiB".to_string())?;
    out.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

fn bytes(b: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    length(b.len(), out)?;
    out.extend_from_slice(b);
    Ok(())
}

/// A number as MongoDB's equality sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Number {
    NaN,
    Infinity {
        negative: bool,
    },
    /// `(-1)^negative × coefficient × 10^exponent`; a zero coefficient is zero whatever the rest.
    Finite {
        negative: bool,
        coefficient: u128,
        exponent: i32,
    },
}

/// Largest valid decimal128 coefficient (34 nines).
const MAX_COEFFICIENT: u128 = 9_999_999_999_999_999_999_999_999_999_999_999;

impl Number {
    fn integer(i: i64) -> Number {
        Number::Finite {
            negative: i < 0,
            coefficient: u128::from(i.unsigned_abs()),
            exponent: 0,
        }
    }

    /// A double rounded to 34 significant digits (exact for every double with at most 34).
    fn double(d: f64) -> Result<Number, String> {
        if d.is_nan() {
            return Ok(Number::NaN);
        }
        if d.is_infinite() {
            return Ok(Number::Infinity { negative: d < 0.0 });
        }
        // Rust's formatting with a precision is correctly rounded from the binary value.
        let shown = format!("{d:.33e}");
        let unreadable = || format!("unreadable double _id {shown}");
        let (mantissa, exponent) = shown.split_once('e').ok_or_else(unreadable)?;
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let coefficient = digits.parse::<u128>().map_err(|_| unreadable())?;
        let exponent = exponent.parse::<i32>().map_err(|_| unreadable())?;
        Ok(Number::Finite {
            negative: mantissa.starts_with('-'),
            coefficient,
            exponent: exponent.saturating_sub(33),
        })
    }

    /// The IEEE 754-2008 BID encoding BSON uses; a non-canonical coefficient (above 34 digits)
    /// reads as zero, as the BSON specification says.
    fn decimal(d: &Decimal128) -> Number {
        let v = u128::from_le_bytes(d.bytes());
        let negative = (v >> 127) & 1 == 1;
        if (v >> 123) & 0xF == 0xF {
            return if (v >> 122) & 1 == 1 {
                Number::NaN
            } else {
                Number::Infinity { negative }
            };
        }
        let (exponent_bits, coefficient) = if (v >> 125) & 0b11 == 0b11 {
            // The "11" form's implicit 100 prefix puts the coefficient above 2^113: non-canonical.
            ((v >> 111) & 0x3FFF, 0)
        } else {
            let c = v & ((1u128 << 113) - 1);
            ((v >> 113) & 0x3FFF, if c > MAX_COEFFICIENT { 0 } else { c })
        };
        // 14 bits always fit an i32.
        let exponent = i32::try_from(exponent_bits).unwrap_or(0) - 6176;
        Number::Finite {
            negative,
            coefficient,
            exponent,
        }
    }
}

fn number(n: Number, out: &mut Vec<u8>) {
    match n {
        Number::NaN => out.push(tag::NAN),
        Number::Infinity { negative: true } => out.push(tag::NEG_INFINITY),
        Number::Infinity { negative: false } => out.push(tag::INFINITY),
        Number::Finite { coefficient: 0, .. } => out.push(tag::ZERO),
        Number::Finite {
            negative,
            mut coefficient,
            exponent,
        } => {
            let mut exponent = i64::from(exponent);
            while coefficient % 10 == 0 {
                coefficient /= 10;
                exponent += 1;
            }
            out.push(tag::FINITE);
            out.push(u8::from(negative));
            out.extend_from_slice(&exponent.to_be_bytes());
            out.extend_from_slice(&coefficient.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests;
