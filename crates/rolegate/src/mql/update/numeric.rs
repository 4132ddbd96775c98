//! Stage: update application. Arithmetic for `$inc`, `$mul` and `$bit`, with MongoDB's type
//! rules (its `SafeNum`). Input: two numeric BSON values. Output: the result, or why there is
//! none.
//!
//! * int32 with int32 gives an int32, or an int64 when the result does not fit in an int32;
//! * int32 or int64 with int64 gives an int64; past the int64 range there is no result (MongoDB
//!   fails the update with `BadValue`, "Failed to apply $inc operations to current value");
//! * a double with an integer or a double gives a double (IEEE 754);
//! * decimal128 with an integer or a decimal128 gives a decimal128, computed exactly: rolegate
//!   has no decimal rounding, so a result that needs more than 34 significant digits, that
//!   or that involves NaN or an infinity is refused; a double meeting a decimal is first widened
//!   as MongoDB does (15 significant digits, `Decimal128(double)`) ([`NumError::Inexact`], reported as
//!   `NotImplemented`). Decision `M31` in `docs/semantics.md`.

use bson::{Bson, Decimal128};

/// Why an arithmetic update has no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumError {
    /// An int64 result past the int64 range.
    Overflow,
    /// Decimal arithmetic rolegate cannot do exactly.
    Inexact,
}

/// The arithmetic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Mul,
}

/// A finite decimal: `(-1)^neg × coeff × 10^exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dec {
    neg: bool,
    coeff: u128,
    exp: i32,
}

const MAX_COEFF: u128 = 10u128.pow(34) - 1;
const EXP_BIAS: i32 = 6176;
const EXP_MIN: i32 = -6176;
const EXP_MAX: i32 = 6111;

fn decode(d: &Decimal128) -> Option<Dec> {
    let v = u128::from_le_bytes(d.bytes());
    let neg = (v >> 127) & 1 == 1;
    if (v >> 123) & 0xF == 0xF {
        return None; // NaN or infinity
    }
    let (exp_bits, coeff) = if (v >> 125) & 0b11 == 0b11 {
        ((v >> 111) & 0x3FFF, 0)
    } else {
        let c = v & ((1u128 << 113) - 1);
        ((v >> 113) & 0x3FFF, if c > MAX_COEFF { 0 } else { c })
    };
    let exp = i32::try_from(exp_bits).ok()? - EXP_BIAS;
    Some(Dec { neg, coeff, exp })
}

fn encode(d: Dec) -> Option<Decimal128> {
    if d.coeff > MAX_COEFF || d.exp < EXP_MIN || d.exp > EXP_MAX {
        return None;
    }
    let exp_bits = u128::try_from(d.exp + EXP_BIAS).ok()?;
    let v = (u128::from(d.neg) << 127) | (exp_bits << 113) | d.coeff;
    Some(Decimal128::from_bytes(v.to_le_bytes()))
}

fn dec_of(v: &Bson) -> Option<Result<Dec, NumError>> {
    match v {
        Bson::Int32(i) => Some(Ok(dec_int(i64::from(*i)))),
        Bson::Int64(i) => Some(Ok(dec_int(*i))),
        Bson::Decimal128(d) => Some(decode(d).ok_or(NumError::Inexact)),
        Bson::Double(d) => Some(dec_from_double(*d).ok_or(NumError::Inexact)),
        _ => None,
    }
}

/// A double as MongoDB widens it for decimal arithmetic (`Decimal128(double)`): rounded to 15
/// significant digits, keeping all 15 (`5.25` is `5.25000000000000`). `None` for NaN and
/// infinities.
fn dec_from_double(d: f64) -> Option<Dec> {
    if !d.is_finite() {
        return None;
    }
    if d == 0.0 {
        return Some(Dec {
            neg: d.is_sign_negative(),
            coeff: 0,
            exp: 0,
        });
    }
    let text = format!("{:.14e}", d.abs());
    let (mantissa, exp) = text.split_once('e')?;
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let coeff = digits.parse::<u128>().ok()?;
    let exp = exp.parse::<i32>().ok()? - 14;
    Some(Dec {
        neg: d < 0.0,
        coeff,
        exp,
    })
}

fn dec_int(i: i64) -> Dec {
    Dec {
        neg: i < 0,
        coeff: u128::from(i.unsigned_abs()),
        exp: 0,
    }
}

/// `coeff × 10^by`, when it stays exact within u128.
fn scale(coeff: u128, by: u32) -> Option<u128> {
    10u128.checked_pow(by).and_then(|p| coeff.checked_mul(p))
}

fn dec_arith(op: Arith, a: Dec, b: Dec) -> Result<Dec, NumError> {
    match op {
        Arith::Mul => {
            let coeff = a.coeff.checked_mul(b.coeff).ok_or(NumError::Inexact)?;
            Ok(Dec {
                neg: a.neg != b.neg && coeff != 0,
                coeff,
                exp: a.exp + b.exp,
            })
        }
        Arith::Add => {
            let exp = a.exp.min(b.exp);
            let ca = scale(a.coeff, (a.exp - exp).unsigned_abs()).ok_or(NumError::Inexact)?;
            let cb = scale(b.coeff, (b.exp - exp).unsigned_abs()).ok_or(NumError::Inexact)?;
            let (neg, coeff) = if a.neg == b.neg {
                (a.neg, ca.checked_add(cb).ok_or(NumError::Inexact)?)
            } else if ca >= cb {
                (a.neg, ca - cb)
            } else {
                (b.neg, cb - ca)
            };
            // IEEE 754-2008: an exact zero sum of operands of opposite signs is +0.
            Ok(Dec {
                neg: neg && coeff != 0,
                coeff,
                exp,
            })
        }
    }
}

/// True for the four numeric BSON types.
pub(crate) fn is_numeric(v: &Bson) -> bool {
    matches!(
        v,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_)
    )
}

fn as_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(f64::from(*i)),
        // PERF: the conversion rounds like MongoDB's (a double is all SafeNum has then).
        #[expect(
            clippy::cast_precision_loss,
            reason = "MongoDB converts int64 to double"
        )]
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

/// `a op b` with MongoDB's types. Both must be numeric ([`is_numeric`]).
pub(crate) fn arith(op: Arith, a: &Bson, b: &Bson) -> Result<Bson, NumError> {
    match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => {
            let r = match op {
                Arith::Add => x.checked_add(*y),
                Arith::Mul => x.checked_mul(*y),
            };
            Ok(match r {
                Some(r) => Bson::Int32(r),
                // Two int32s always fit in an int64.
                None => Bson::Int64(match op {
                    Arith::Add => i64::from(*x) + i64::from(*y),
                    Arith::Mul => i64::from(*x) * i64::from(*y),
                }),
            })
        }
        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
            let x = int64(a);
            let y = int64(b);
            let r = match op {
                Arith::Add => x.checked_add(y),
                Arith::Mul => x.checked_mul(y),
            };
            r.map(Bson::Int64).ok_or(NumError::Overflow)
        }
        (Bson::Decimal128(_), _) | (_, Bson::Decimal128(_)) => {
            let x = dec_of(a).ok_or(NumError::Inexact)??;
            let y = dec_of(b).ok_or(NumError::Inexact)??;
            let r = dec_arith(op, x, y)?;
            encode(r).map(Bson::Decimal128).ok_or(NumError::Inexact)
        }
        _ => {
            let x = as_f64(a).ok_or(NumError::Inexact)?;
            let y = as_f64(b).ok_or(NumError::Inexact)?;
            Ok(Bson::Double(match op {
                Arith::Add => x + y,
                Arith::Mul => x * y,
            }))
        }
    }
}

fn int64(v: &Bson) -> i64 {
    match v {
        Bson::Int32(i) => i64::from(*i),
        Bson::Int64(i) => *i,
        _ => 0,
    }
}

/// Zero of the numeric type of `v` (what `$mul` sets on a missing field).
pub(crate) fn zero_like(v: &Bson) -> Bson {
    match v {
        Bson::Int64(_) => Bson::Int64(0),
        Bson::Double(_) => Bson::Double(0.0),
        Bson::Decimal128(_) => {
            // INVARIANT: 0E+0 is always encodable.
            encode(Dec {
                neg: false,
                coeff: 0,
                exp: 0,
            })
            .map_or(Bson::Int32(0), Bson::Decimal128)
        }
        _ => Bson::Int32(0),
    }
}

/// A bitwise operation of `$bit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BitOp {
    And,
    Or,
    Xor,
}

/// `a op b` for int32/int64 operands: int32 with int32 stays int32, anything with an int64 is an
/// int64 (the int32 sign-extended). `None` when either is not an integer.
pub(crate) fn bit(op: BitOp, a: &Bson, b: &Bson) -> Option<Bson> {
    let f = |x: i64, y: i64| match op {
        BitOp::And => x & y,
        BitOp::Or => x | y,
        BitOp::Xor => x ^ y,
    };
    match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => {
            let r = f(i64::from(*x), i64::from(*y));
            Some(Bson::Int32(i32::try_from(r).ok()?))
        }
        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
            Some(Bson::Int64(f(int64(a), int64(b))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse().unwrap())
    }

    #[test]
    fn int32_overflow_becomes_int64() {
        assert_eq!(
            arith(Arith::Add, &Bson::Int32(i32::MAX), &Bson::Int32(1)),
            Ok(Bson::Int64(i64::from(i32::MAX) + 1))
        );
        assert_eq!(
            arith(Arith::Mul, &Bson::Int32(1 << 20), &Bson::Int32(1 << 20)),
            Ok(Bson::Int64(1 << 40))
        );
        assert_eq!(
            arith(Arith::Add, &Bson::Int32(1), &Bson::Int32(2)),
            Ok(Bson::Int32(3))
        );
    }

    #[test]
    fn int64_overflow_is_an_error() {
        assert_eq!(
            arith(Arith::Add, &Bson::Int64(i64::MAX), &Bson::Int32(1)),
            Err(NumError::Overflow)
        );
        assert_eq!(
            arith(Arith::Mul, &Bson::Int32(2), &Bson::Int64(i64::MAX)),
            Err(NumError::Overflow)
        );
        assert_eq!(
            arith(Arith::Add, &Bson::Int32(1), &Bson::Int64(2)),
            Ok(Bson::Int64(3))
        );
    }

    #[test]
    fn doubles_win_over_integers() {
        assert_eq!(
            arith(Arith::Mul, &Bson::Int32(3), &Bson::Double(0.5)),
            Ok(Bson::Double(1.5))
        );
        assert_eq!(
            arith(Arith::Add, &Bson::Int64(1), &Bson::Double(0.5)),
            Ok(Bson::Double(1.5))
        );
    }

    #[test]
    fn decimals_are_exact_or_refused() {
        assert_eq!(
            arith(Arith::Add, &dec("1.5"), &Bson::Int32(2)),
            Ok(dec("3.5"))
        );
        assert_eq!(
            arith(Arith::Add, &dec("0.1"), &dec("0.20")),
            Ok(dec("0.30"))
        );
        assert_eq!(arith(Arith::Mul, &dec("1.5"), &dec("-2")), Ok(dec("-3.0")));
        assert_eq!(arith(Arith::Add, &dec("1"), &dec("-1")), Ok(dec("0")));
        assert_eq!(
            arith(Arith::Add, &dec("1.5"), &Bson::Double(1.0)),
            Ok(dec("2.50000000000000"))
        );
        assert_eq!(
            arith(Arith::Add, &dec("0"), &Bson::Double(0.1)),
            Ok(dec("0.100000000000000"))
        );
        assert_eq!(
            arith(Arith::Add, &dec("1"), &Bson::Double(f64::NAN)),
            Err(NumError::Inexact)
        );
        assert_eq!(
            arith(
                Arith::Mul,
                &dec("9999999999999999999999999999999999"),
                &dec("9999999999999999999999999999999999")
            ),
            Err(NumError::Inexact)
        );
        assert_eq!(
            arith(Arith::Add, &dec("NaN"), &Bson::Int32(1)),
            Err(NumError::Inexact)
        );
        assert_eq!(zero_like(&dec("5")), dec("0"));
    }

    #[test]
    fn bitwise_keeps_the_integer_width() {
        assert_eq!(
            bit(BitOp::And, &Bson::Int32(13), &Bson::Int32(10)),
            Some(Bson::Int32(8))
        );
        assert_eq!(
            bit(BitOp::Or, &Bson::Int32(13), &Bson::Int64(2)),
            Some(Bson::Int64(15))
        );
        assert_eq!(
            bit(BitOp::Xor, &Bson::Int32(-1), &Bson::Int32(1)),
            Some(Bson::Int32(-2))
        );
        assert_eq!(bit(BitOp::And, &Bson::Double(1.0), &Bson::Int32(1)), None);
    }
}
