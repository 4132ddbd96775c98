//! Stage: update application. The operators: what each does to an existing value
//! ([`apply_existing`]) and what it creates where there is none ([`create`]), with MongoDB's
//! type errors. Input: a leaf of the update tree and the value at its path. Output: the value
//! changed in place, or whether to remove it.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::apply::{Cx, Key};
use super::error::{ErrorKind, UpdateError};
use super::numeric::{Arith, NumError, arith, bit, is_numeric, zero_like};
use super::tree::{Leaf, Op, Pull, Push, PushSort};
use crate::mql::matches;
use crate::steps::{charge, copy_steps};
use crate::value::compare::bson_equal;
use crate::value::ejson::type_name;

/// What the caller does with the value after the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Keep it (perhaps changed in place).
    Keep,
    /// Remove it (a field) or set it to `null` (an array element): `$unset`, `$rename`'s source.
    Remove,
}

/// MongoDB's comparison across types: the canonical type order, then the value (the order of
/// `$min`, `$max` and `$push`'s `$sort`; the sort order of [`crate::mql::sort_value_cmp`]).
use crate::mql::sort_value_cmp as mongo_cmp;

fn copy(v: &Bson) -> Result<Bson, UpdateError> {
    charge(copy_steps(v))?;
    Ok(v.clone())
}

fn arith_error(e: NumError, op: &str, current: &Bson, cx: &Cx<'_>) -> UpdateError {
    match e {
        NumError::Overflow => {
            let shown = match current {
                Bson::Int64(i) => format!("(NumberLong){i}"),
                Bson::Int32(i) => format!("(NumberInt){i}"),
                other => other.to_string(),
            };
            UpdateError::bad_value(format!(
                "Failed to apply {op} operations to current value ({shown}) for document {}",
                cx.doc_id()
            ))
        }
        NumError::Inexact => UpdateError::new(
            ErrorKind::NotImplemented,
            format!(
                "{op} on decimal128 values: rolegate computes decimal arithmetic only when the result is exact (no rounding, no double operand, no NaN or infinity); current value {current}"
            ),
        ),
    }
}

fn timestamp_or_date(timestamp: bool, cx: &Cx<'_>) -> Bson {
    if timestamp {
        Bson::Timestamp(cx.timestamp)
    } else {
        Bson::DateTime(cx.now)
    }
}

/// Applies `leaf` to the existing `value` of field `field`.
pub(crate) fn apply_existing(
    leaf: &Leaf,
    value: &mut Bson,
    field: Key<'_>,
    cx: &Cx<'_>,
) -> Result<Outcome, UpdateError> {
    charge(1)?;
    match &leaf.op {
        Op::Set(v) => *value = copy(v)?,
        Op::SetOnInsert(v) => {
            if cx.inserting {
                *value = copy(v)?;
            }
        }
        Op::Unset => return Ok(Outcome::Remove),
        Op::Inc(by) | Op::Mul(by) => {
            let (name, kind) = match &leaf.op {
                Op::Inc(_) => ("$inc", Arith::Add),
                _ => ("$mul", Arith::Mul),
            };
            if !is_numeric(value) {
                return Err(UpdateError::type_mismatch(format!(
                    "Cannot apply {name} to a value of non-numeric type. {} has the field '{field}' of non-numeric type {}",
                    cx.doc_id(),
                    type_name(value)
                )));
            }
            *value = arith(kind, value, by).map_err(|e| arith_error(e, name, value, cx))?;
        }
        Op::Min(v) => {
            if mongo_cmp(v, value) == Ordering::Less {
                *value = copy(v)?;
            }
        }
        Op::Max(v) => {
            if mongo_cmp(v, value) == Ordering::Greater {
                *value = copy(v)?;
            }
        }
        Op::CurrentDate { timestamp } => *value = timestamp_or_date(*timestamp, cx),
        Op::RenameSource(n) => {
            if cx.renames.get(*n).is_some_and(Option::is_some) {
                return Ok(Outcome::Remove);
            }
        }
        Op::RenameTarget(n) => {
            if let Some(Some(v)) = cx.renames.get(*n) {
                *value = copy(v)?;
            }
        }
        Op::Push(p) => {
            let Bson::Array(items) = value else {
                return Err(UpdateError::bad_value(format!(
                    "The field '{field}' must be an array but is of type {} in document {}",
                    type_name(value),
                    cx.doc_id()
                )));
            };
            if !p.each.is_empty() {
                cx.touched.set(true);
            }
            push(p, items)?;
        }
        Op::AddToSet(each) => {
            let Bson::Array(items) = value else {
                return Err(UpdateError::bad_value(format!(
                    "Cannot apply $addToSet to non-array field. Field named '{field}' has non-array type {}",
                    type_name(value)
                )));
            };
            add_to_set(each, items)?;
        }
        Op::Pop { first } => {
            let Bson::Array(items) = value else {
                return Err(UpdateError::type_mismatch(format!(
                    "Path '{}' contains an element of non-array type '{}'",
                    leaf.path,
                    type_name(value)
                )));
            };
            if *first {
                if !items.is_empty() {
                    items.remove(0);
                    charge(items.len() as u64)?;
                }
            } else {
                items.pop();
            }
        }
        Op::Pull(cond) => {
            let Bson::Array(items) = value else {
                return Err(UpdateError::bad_value(
                    "Cannot apply $pull to a non-array value",
                ));
            };
            pull(cond, items)?;
        }
        Op::PullAll(values) => {
            let Bson::Array(items) = value else {
                return Err(UpdateError::bad_value(
                    "Cannot apply $pullAll to a non-array value",
                ));
            };
            charge((items.len() as u64).saturating_mul(values.len() as u64))?;
            items.retain(|e| !values.iter().any(|v| bson_equal(e, v)));
        }
        Op::Bit(ops) => {
            if !matches!(value, Bson::Int32(_) | Bson::Int64(_)) {
                return Err(UpdateError::bad_value(format!(
                    "Cannot apply $bit to a value of non-integral type.{} has the field {field} of non-integer type {}",
                    cx.doc_id(),
                    type_name(value)
                )));
            }
            let mut current = value.clone();
            for (op, operand) in ops {
                current = bit(*op, &current, operand).unwrap_or(current);
            }
            *value = current;
        }
    }
    Ok(Outcome::Keep)
}

/// The value `leaf` creates at a missing path (`None`: nothing).
pub(crate) fn create(leaf: &Leaf, cx: &Cx<'_>) -> Result<Option<Bson>, UpdateError> {
    charge(1)?;
    Ok(match &leaf.op {
        Op::Set(v) | Op::Min(v) | Op::Max(v) | Op::Inc(v) => Some(copy(v)?),
        Op::SetOnInsert(v) => {
            if cx.inserting {
                Some(copy(v)?)
            } else {
                None
            }
        }
        Op::Mul(v) => Some(zero_like(v)),
        Op::CurrentDate { timestamp } => Some(timestamp_or_date(*timestamp, cx)),
        Op::RenameTarget(n) => match cx.renames.get(*n) {
            Some(Some(v)) => Some(copy(v)?),
            _ => None,
        },
        Op::Push(p) => {
            let mut items = Vec::new();
            push(p, &mut items)?;
            Some(Bson::Array(items))
        }
        Op::AddToSet(each) => {
            let mut items = Vec::new();
            add_to_set(each, &mut items)?;
            Some(Bson::Array(items))
        }
        Op::Bit(ops) => {
            let mut current = Bson::Int32(0);
            for (op, operand) in ops {
                current = bit(*op, &current, operand).unwrap_or(current);
            }
            Some(current)
        }
        Op::Unset | Op::RenameSource(_) | Op::Pop { .. } | Op::Pull(_) | Op::PullAll(_) => None,
    })
}

fn push(p: &Push, items: &mut Vec<Bson>) -> Result<(), UpdateError> {
    let mut steps = 0u64;
    for v in &p.each {
        steps = steps.saturating_add(copy_steps(v));
    }
    charge(steps)?;
    let at = match p.position {
        None => items.len(),
        Some(pos) if pos < 0 => {
            let back = usize::try_from(pos.unsigned_abs()).unwrap_or(usize::MAX);
            items.len().saturating_sub(back)
        }
        Some(pos) => usize::try_from(pos).unwrap_or(usize::MAX).min(items.len()),
    };
    if at < items.len() {
        charge((items.len() - at) as u64)?;
    }
    items.splice(at..at, p.each.iter().cloned());
    if let Some(sort) = &p.sort {
        let n = items.len() as u64;
        charge(n.saturating_mul(u64::from(64 - n.leading_zeros()).max(1)))?;
        match sort {
            PushSort::Whole(asc) => items.sort_by(|a, b| {
                let o = mongo_cmp(a, b);
                if *asc { o } else { o.reverse() }
            }),
            PushSort::Pattern(pattern) => items.sort_by(|a, b| {
                for (path, asc) in pattern {
                    let o = mongo_cmp(
                        field_at(a, path).unwrap_or(&Bson::Null),
                        field_at(b, path).unwrap_or(&Bson::Null),
                    );
                    let o = if *asc { o } else { o.reverse() };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            }),
        }
    }
    if let Some(slice) = p.slice {
        let keep = usize::try_from(slice.unsigned_abs()).unwrap_or(usize::MAX);
        if slice >= 0 {
            items.truncate(keep);
        } else if keep < items.len() {
            let drop = items.len() - keep;
            items.drain(..drop);
        }
    }
    Ok(())
}

/// The value at a dotted path of a document element (sub-documents only).
fn field_at<'a>(v: &'a Bson, path: &[String]) -> Option<&'a Bson> {
    let mut current = v;
    for part in path {
        match current {
            Bson::Document(d) => current = d.get(part)?,
            _ => return None,
        }
    }
    Some(current)
}

fn add_to_set(each: &[Bson], items: &mut Vec<Bson>) -> Result<(), UpdateError> {
    for v in each {
        // PERF: MongoDB equality (1 == 1.0, key order of documents matters) has no cheap hash;
        // each candidate is compared with the array, charged to the step budget.
        charge(items.len() as u64 + 1)?;
        if !items.iter().any(|e| bson_equal(e, v)) {
            items.push(copy(v)?);
        }
    }
    Ok(())
}

fn pull(cond: &Pull, items: &mut Vec<Bson>) -> Result<(), UpdateError> {
    charge(items.len() as u64)?;
    // For operator conditions, one `{v: element}` document reused for every element: the
    // element is swapped in for the match and back out.
    let mut wrapper = match cond {
        Pull::Value(_) => {
            let mut w = Document::new();
            w.insert("v", Bson::Null);
            Some(w)
        }
        _ => None,
    };
    let mut error = None;
    items.retain_mut(|e| {
        if error.is_some() {
            return true;
        }
        let hit = match (cond, wrapper.as_mut()) {
            (Pull::Equal(v), _) => Ok(bson_equal(e, v)),
            (Pull::Query(q), _) => match e {
                Bson::Document(d) => matches(q, d).map_err(UpdateError::from),
                _ => Ok(false),
            },
            (Pull::Value(q), Some(w)) => match w.get_mut("v") {
                Some(slot) => {
                    std::mem::swap(e, slot);
                    let hit = matches(q, w).map_err(UpdateError::from);
                    if let Some(slot) = w.get_mut("v") {
                        std::mem::swap(e, slot);
                    }
                    hit
                }
                None => Ok(false),
            },
            (Pull::Value(_), None) => Ok(false),
        };
        match hit {
            Ok(h) => !h,
            Err(err) => {
                error = Some(err);
                true
            }
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
