//! Stage: update parsing. Input: an update document (operators, or a replacement) and the
//! update's `arrayFilters`. Output: the compiled [`Compiled`] update, or MongoDB's error for the
//! update document (unknown operators, operators whose argument is not a document, bad operands,
//! conflicting paths, unused or undefined array filters, dollar-prefixed fields of a
//! replacement).
//!
//! Since MongoDB 5.0 an operator with an empty document (`{$set: {}}`) is accepted and does
//! nothing, and `{}` is an (empty) replacement document.

use bson::{Bson, Document};

use super::error::{ErrorKind, UpdateError};
use super::filters::ArrayFilters;
use super::numeric::{BitOp, is_numeric};
use super::path::{Segment, parse_path};
use super::tree::{Op, Pull, Push, PushSort, Tree};
use crate::limits::Limits;
use crate::mql::compile_query;
use crate::value::ejson::type_name;

/// A `$rename`: from one path to another (plain fields only).
#[derive(Debug, Clone)]
pub(crate) struct Rename {
    pub(crate) from: Vec<String>,
    pub(crate) to: Vec<String>,
}

/// What an update document compiles to.
#[derive(Debug, Clone)]
pub(crate) enum Compiled {
    /// A replacement document.
    Replacement(Document),
    /// An operator update.
    Operators {
        tree: Tree,
        renames: Vec<Rename>,
        filters: ArrayFilters,
        positional: bool,
        /// The first path whose first component starts with `$` (refused when updating a
        /// stored document, accepted by an upsert's insert).
        top_dollar: Option<String>,
        /// The update writes `$ref`, `$id` or `$db` fields: the result's DBRefs are checked.
        dbref: bool,
    },
}

const OPERATORS: &[&str] = &[
    "$set",
    "$setOnInsert",
    "$unset",
    "$inc",
    "$mul",
    "$min",
    "$max",
    "$rename",
    "$currentDate",
    "$push",
    "$addToSet",
    "$pop",
    "$pull",
    "$pullAll",
    "$bit",
];

/// Compiles `update` with its `arrayFilters`.
pub(crate) fn parse(
    update: &Document,
    array_filters: &[Document],
) -> Result<Compiled, UpdateError> {
    Limits::DEFAULT.check_document_as("the update", update)?;
    for f in array_filters {
        Limits::DEFAULT.check_document_as("an array filter", f)?;
    }
    let mut filters = ArrayFilters::parse(array_filters)?;
    let operator_style = update.keys().next().is_some_and(|k| k.starts_with('$'));
    if !operator_style {
        if let Some(k) = update.keys().find(|k| k.starts_with('$')) {
            return Err(UpdateError::new(
                ErrorKind::DollarPrefixedFieldName,
                format!(
                    "The dollar ($) prefixed field '{k}' in '{k}' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith."
                ),
            ));
        }
        if !array_filters.is_empty() {
            return Err(UpdateError::parse(
                "arrayFilters may not be specified for replacement-style updates",
            ));
        }
        return Ok(Compiled::Replacement(update.clone()));
    }
    let mut tree = Tree::default();
    let mut renames = Vec::new();
    let mut positional = false;
    let mut top_dollar = None;
    let mut dbref = false;
    for (op, arg) in update {
        if !OPERATORS.contains(&op.as_str()) {
            return Err(UpdateError::parse(format!(
                "Unknown modifier: {op}. Expected a valid update modifier or pipeline-style update specified as an array"
            )));
        }
        let Bson::Document(fields) = arg else {
            return Err(UpdateError::parse(format!(
                "Modifiers operate on fields but we found type {} instead. For example: {{$mod: {{<field>: ...}}}} not {{{op}: {arg}}}",
                type_name(arg)
            )));
        };
        for (path, value) in fields {
            crate::steps::charge(1)?;
            if op == "$rename" {
                parse_rename(&mut tree, &mut renames, path, value)?;
                continue;
            }
            let segments = parse_path(path)?;
            if top_dollar.is_none() && path.starts_with('$') {
                top_dollar = Some(path.clone());
            }
            dbref |= path.split('.').any(is_dbref_name) || mentions_dbref(value)?;
            for s in &segments {
                match s {
                    Segment::Positional => positional = true,
                    Segment::Filtered(id) => filters.use_identifier(id, path)?,
                    _ => {}
                }
            }
            let leaf = parse_op(op, path, value)?;
            tree.insert(&segments, leaf)?;
        }
    }
    filters.check_all_used(update)?;
    Ok(Compiled::Operators {
        tree,
        renames,
        filters,
        positional,
        top_dollar,
        dbref,
    })
}

/// `$ref`, `$id` or `$db`.
pub(crate) fn is_dbref_name(name: &str) -> bool {
    matches!(name, "$ref" | "$id" | "$db")
}

/// True when `value` holds a `$ref`, `$id` or `$db` field. Iterative.
fn mentions_dbref(value: &Bson) -> Result<bool, UpdateError> {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        crate::steps::charge(1)?;
        match v {
            Bson::Document(d) => {
                for (k, child) in d {
                    if is_dbref_name(k) {
                        return Ok(true);
                    }
                    stack.push(child);
                }
            }
            Bson::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(false)
}

fn plain_path(path: &str, what: &str) -> Result<Vec<String>, UpdateError> {
    let segments = parse_path(path)?;
    segments
        .into_iter()
        .map(|s| match s {
            Segment::Field(f) => Ok(f),
            _ => Err(UpdateError::bad_value(format!(
                "The {what} field for $rename may not be dynamic: {path}"
            ))),
        })
        .collect()
}

fn parse_rename(
    tree: &mut Tree,
    renames: &mut Vec<Rename>,
    from: &str,
    to: &Bson,
) -> Result<(), UpdateError> {
    let Bson::String(to) = to else {
        return Err(UpdateError::bad_value(format!(
            "The 'to' field for $rename must be a string: {from}: {to}"
        )));
    };
    let from_path = plain_path(from, "source")?;
    let to_path = plain_path(to, "destination")?;
    if from_path == to_path {
        return Err(UpdateError::bad_value(format!(
            "The source and target field for $rename must differ: {from}: \"{to}\""
        )));
    }
    if from_path.starts_with(&to_path) || to_path.starts_with(&from_path) {
        return Err(UpdateError::bad_value(format!(
            "The source and target field for $rename must not be on the same path: {from}: \"{to}\""
        )));
    }
    let n = renames.len();
    let seg = |p: &[String]| p.iter().cloned().map(Segment::Field).collect::<Vec<_>>();
    tree.insert(&seg(&from_path), Op::RenameSource(n))?;
    tree.insert(&seg(&to_path), Op::RenameTarget(n))?;
    renames.push(Rename {
        from: from_path,
        to: to_path,
    });
    Ok(())
}

fn parse_op(op: &str, path: &str, value: &Bson) -> Result<Op, UpdateError> {
    Ok(match op {
        "$set" => Op::Set(value.clone()),
        "$setOnInsert" => Op::SetOnInsert(value.clone()),
        "$min" => Op::Min(value.clone()),
        "$max" => Op::Max(value.clone()),
        "$unset" => Op::Unset,
        "$inc" | "$mul" => {
            if !is_numeric(value) {
                let verb = if op == "$inc" {
                    "increment"
                } else {
                    "multiply"
                };
                return Err(UpdateError::type_mismatch(format!(
                    "Cannot {verb} with non-numeric argument: {{{path}: {value}}}"
                )));
            }
            if op == "$inc" {
                Op::Inc(value.clone())
            } else {
                Op::Mul(value.clone())
            }
        }
        "$currentDate" => parse_current_date(path, value)?,
        "$push" => Op::Push(parse_push(value)?),
        "$addToSet" => Op::AddToSet(parse_add_to_set(value)?),
        "$pop" => match integral(value) {
            Some(1) if is_numeric(value) => Op::Pop { first: false },
            Some(-1) if is_numeric(value) => Op::Pop { first: true },
            _ => {
                return Err(UpdateError::parse(format!(
                    "$pop expects 1 or -1, found: {value}"
                )));
            }
        },
        "$pull" => Op::Pull(parse_pull(value)?),
        "$pullAll" => {
            let Bson::Array(items) = value else {
                return Err(UpdateError::bad_value(format!(
                    "$pullAll requires an array argument but was given a {}",
                    type_name(value)
                )));
            };
            Op::PullAll(items.clone())
        }
        "$bit" => parse_bit(path, value)?,
        _ => {
            return Err(UpdateError::parse(format!("Unknown modifier: {op}")));
        }
    })
}

fn parse_current_date(path: &str, value: &Bson) -> Result<Op, UpdateError> {
    match value {
        Bson::Boolean(_) => Ok(Op::CurrentDate { timestamp: false }),
        Bson::Document(d) => {
            let mut timestamp = None;
            for (k, v) in d {
                if k != "$type" {
                    return Err(UpdateError::bad_value(format!(
                        "Unrecognized $currentDate option: {k}"
                    )));
                }
                timestamp = match v {
                    Bson::String(s) if s == "date" => Some(false),
                    Bson::String(s) if s == "timestamp" => Some(true),
                    _ => {
                        return Err(UpdateError::bad_value(format!(
                            "The '$type' string field is required to be 'date' or 'timestamp': {{$currentDate: {{{path}: {value}}}}}"
                        )));
                    }
                };
            }
            timestamp
                .map(|timestamp| Op::CurrentDate { timestamp })
                .ok_or_else(|| {
                    UpdateError::bad_value(format!(
                        "The '$type' string field is required to be 'date' or 'timestamp': {{$currentDate: {{{path}: {value}}}}}"
                    ))
                })
        }
        _ => Err(UpdateError::bad_value(format!(
            "{} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({{$type: 'timestamp/date'}}).",
            type_name(value)
        ))),
    }
}

/// The integer a number holds exactly (an integral double counts), if any.
fn integral(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(d) if d.fract() == 0.0 && d.abs() < 9.2e18 =>
        {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "checked integral and in range"
            )]
            Some(*d as i64)
        }
        Bson::Decimal128(d) => d.to_string().parse::<i64>().ok(),
        _ => None,
    }
}

fn parse_push(value: &Bson) -> Result<Push, UpdateError> {
    let modifiers = match value {
        Bson::Document(d) if d.contains_key("$each") => d,
        other => {
            return Ok(Push {
                each: vec![other.clone()],
                position: None,
                slice: None,
                sort: None,
            });
        }
    };
    let mut push = Push {
        each: Vec::new(),
        position: None,
        slice: None,
        sort: None,
    };
    for (k, v) in modifiers {
        match k.as_str() {
            "$each" => {
                let Bson::Array(items) = v else {
                    return Err(UpdateError::bad_value(format!(
                        "The argument to $each in $push must be an array but it was of type: {}",
                        type_name(v)
                    )));
                };
                push.each = items.clone();
            }
            "$slice" => {
                push.slice = Some(integral(v).ok_or_else(|| {
                    UpdateError::bad_value(format!(
                        "The value for $slice must be an integral value but was given type: {}",
                        type_name(v)
                    ))
                })?);
            }
            "$position" => {
                push.position = Some(integral(v).ok_or_else(|| {
                    UpdateError::bad_value(format!(
                        "The value for $position must be an integer value, not of type: {}",
                        type_name(v)
                    ))
                })?);
            }
            "$sort" => push.sort = Some(parse_sort(v)?),
            other => {
                return Err(UpdateError::bad_value(format!(
                    "Unrecognized clause in $push: {other}"
                )));
            }
        }
    }
    Ok(push)
}

fn sort_direction(v: &Bson) -> Option<bool> {
    match integral(v) {
        Some(1) => Some(true),
        Some(-1) => Some(false),
        _ => None,
    }
}

fn parse_sort(v: &Bson) -> Result<PushSort, UpdateError> {
    let invalid = || {
        UpdateError::bad_value(
            "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields",
        )
    };
    match v {
        Bson::Document(d) => {
            if d.is_empty() {
                return Err(invalid());
            }
            let mut pattern = Vec::new();
            for (k, dir) in d {
                if k.is_empty() || k.split('.').any(str::is_empty) || k.starts_with('$') {
                    return Err(UpdateError::bad_value(format!(
                        "The $sort field is a dotted field but has an empty part: {k}"
                    )));
                }
                let asc = sort_direction(dir).ok_or_else(|| {
                    UpdateError::bad_value("The $sort element value must be either 1 or -1")
                })?;
                pattern.push((k.split('.').map(str::to_string).collect(), asc));
            }
            Ok(PushSort::Pattern(pattern))
        }
        _ if is_numeric(v) => sort_direction(v).map(PushSort::Whole).ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

fn parse_add_to_set(value: &Bson) -> Result<Vec<Bson>, UpdateError> {
    match value {
        Bson::Document(d) if d.keys().next().map(String::as_str) == Some("$each") => {
            if d.len() > 1 {
                return Err(UpdateError::bad_value(format!(
                    "Found unexpected fields after $each in $addToSet: {value}"
                )));
            }
            match d.get("$each") {
                Some(Bson::Array(items)) => Ok(items.clone()),
                Some(other) => Err(UpdateError::type_mismatch(format!(
                    "The argument to $each in $addToSet must be an array but it was of type {}",
                    type_name(other)
                ))),
                None => Ok(Vec::new()),
            }
        }
        other => Ok(vec![other.clone()]),
    }
}

/// Operators that make a `$pull` document a condition on the element itself.
fn is_value_operator(key: &str) -> bool {
    key.starts_with('$')
        && !matches!(
            key,
            "$and" | "$or" | "$nor" | "$expr" | "$where" | "$text" | "$comment"
        )
}

/// Query features MongoDB refuses where an update reads a query.
pub(crate) fn refused_feature(query: &Document) -> Option<&str> {
    query
        .keys()
        .map(String::as_str)
        .find(|k| matches!(*k, "$expr" | "$jsonSchema"))
}

fn parse_pull(value: &Bson) -> Result<Pull, UpdateError> {
    if let Bson::Document(d) = value {
        if let Some(k) = d.keys().find(|k| matches!(k.as_str(), "$where" | "$text")) {
            return Err(UpdateError::bad_value(format!(
                "{k} is not allowed in the context of an update's $pull condition"
            )));
        }
        if let Some(k) = refused_feature(d) {
            return Err(UpdateError::new(
                ErrorKind::QueryFeatureNotAllowed,
                format!("{k} is not allowed in the context of an update's $pull condition"),
            ));
        }
    }
    let load = |e: crate::error::LoadError| {
        UpdateError::bad_value(format!("invalid $pull condition: {e}"))
    };
    match value {
        Bson::Document(d) if d.keys().next().is_some_and(|k| is_value_operator(k)) => {
            let mut q = Document::new();
            q.insert("v", value.clone());
            Ok(Pull::Value(compile_query(&q).map_err(load)?))
        }
        Bson::Document(d) => Ok(Pull::Query(compile_query(d).map_err(load)?)),
        // A regular expression removes the strings it matches.
        Bson::RegularExpression(_) => {
            let mut q = Document::new();
            q.insert("v", value.clone());
            Ok(Pull::Value(compile_query(&q).map_err(load)?))
        }
        other => Ok(Pull::Equal(other.clone())),
    }
}

fn parse_bit(path: &str, value: &Bson) -> Result<Op, UpdateError> {
    let Bson::Document(d) = value else {
        return Err(UpdateError::bad_value(format!(
            "The $bit modifier is not compatible with a {}. You must pass in an embedded document: {{$bit: {{field: {{and/or/xor: #}}}}",
            type_name(value)
        )));
    };
    if d.is_empty() {
        return Err(UpdateError::bad_value(
            "You must pass in at least one bitwise operation. The format is: {$bit: {field: {and/or/xor: #}}",
        ));
    }
    let mut ops = Vec::new();
    for (k, v) in d {
        let op = match k.as_str() {
            "and" => BitOp::And,
            "or" => BitOp::Or,
            "xor" => BitOp::Xor,
            other => {
                return Err(UpdateError::bad_value(format!(
                    "The $bit modifier only supports 'and', 'or', and 'xor', not '{other}' which is an unknown operator: {{{other}: {v}}}"
                )));
            }
        };
        if !matches!(v, Bson::Int32(_) | Bson::Int64(_)) {
            return Err(UpdateError::bad_value(format!(
                "The $bit modifier field must be an Integer(32/64 bit); a '{}' is not supported here: {{{k}: {v}}}",
                type_name(v)
            )));
        }
        ops.push((op, v.clone()));
    }
    let _ = path;
    Ok(Op::Bit(ops))
}
