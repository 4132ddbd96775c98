//! Stage: update application, for an upsert that inserts. Input: the update's query. Output:
//! the document the upsert starts from, seeded from the query's equality conditions as MongoDB
//! does (`extractFullEqualityMatches`): plain equalities (`{a: 1}`, `{"a.b": 1}`, `{a: {b: 1}}`),
//! `$eq`, and the members of `$and`; not `$or`, `$nor`, ranges, `$in`, `$elemMatch` or regular
//! expressions. Dotted paths create sub-documents. A path given two values, or a path and one of
//! its prefixes, is MongoDB's `NotSingleValueField`. The seeded fields are laid out in path
//! order (MongoDB collects them in an ordered map), `_id` being moved first afterwards.

use std::collections::BTreeMap;

use bson::{Bson, Document};

use super::error::{ErrorKind, UpdateError};
use crate::steps::charge;
use crate::value::compare::identical;

fn not_single(message: String) -> UpdateError {
    UpdateError::new(ErrorKind::NotSingleValueField, message)
}

/// The equality values of one field condition: a plain value (not a regular expression),
/// `$eq`, `$in` of one value, and each value of `$all` (MongoDB's optimizer turns the last two
/// into equalities).
fn equalities_of<'q>(value: &'q Bson, out: &mut Vec<&'q Bson>) {
    match value {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
            for (op, operand) in d {
                match (op.as_str(), operand) {
                    ("$eq", v) => out.push(v),
                    ("$in", Bson::Array(items)) if items.len() == 1 => {
                        if let Some(v) = items.first()
                            && !matches!(v, Bson::RegularExpression(_))
                        {
                            out.push(v);
                        }
                    }
                    ("$all", Bson::Array(items)) => {
                        for v in items {
                            let elem_match = matches!(v, Bson::Document(e)
                                if e.keys().next().is_some_and(|k| k == "$elemMatch"));
                            if !elem_match && !matches!(v, Bson::RegularExpression(_)) {
                                out.push(v);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Bson::RegularExpression(_) => {}
        other => out.push(other),
    }
}

/// The equality conditions of a query, in query order, with their paths: top-level fields, the
/// members of `$and`, and a `$or` of one branch (or of identical branches, which MongoDB's
/// optimizer reduces to one).
fn collect<'q>(query: &'q Document, out: &mut Vec<(&'q str, &'q Bson)>) -> Result<(), UpdateError> {
    for (key, value) in query {
        charge(1)?;
        match (key.as_str(), value) {
            ("$and", Bson::Array(members)) => {
                for m in members {
                    if let Bson::Document(d) = m {
                        collect(d, out)?;
                    }
                }
            }
            ("$or", Bson::Array(members)) => {
                let first = members.first();
                let single = members
                    .iter()
                    .all(|m| first.is_some_and(|f| identical(f, m)));
                if let (true, Some(Bson::Document(d))) = (single, first) {
                    collect(d, out)?;
                }
            }
            _ if key.starts_with('$') => {}
            _ => {
                let mut values = Vec::new();
                equalities_of(value, &mut values);
                out.extend(values.into_iter().map(|v| (key.as_str(), v)));
            }
        }
    }
    Ok(())
}

/// A replacement upsert's checks of `_id`: given twice, or with a sub-path, is
/// `NotSingleValueField`; given only by sub-paths, `NotExactValueField` (an operator upsert
/// builds `_id` from them).
fn check_id_paths(equalities: &[(&str, &Bson)]) -> Result<(), UpdateError> {
    let whole = equalities.iter().filter(|(p, _)| *p == "_id").count();
    let sub = equalities.iter().find(|(p, _)| p.starts_with("_id."));
    match (whole, sub) {
        (0 | 1, None) => Ok(()),
        (0, Some((p, _))) => Err(UpdateError::new(
            ErrorKind::NotExactValueField,
            format!("field at '_id' must be exactly specified, field at sub-path '{p}' found"),
        )),
        (_, Some((p, _))) => Err(not_single(format!(
            "cannot infer query fields to set, both paths '_id' and '{p}' are matched"
        ))),
        (_, None) => Err(not_single(
            "cannot infer query fields to set, path '_id' is matched twice".to_string(),
        )),
    }
}

/// The `_id` a replacement upsert takes from its query (only `_id` counts; its conflicts are
/// errors, other fields' are not).
pub(crate) fn seed_id(query: &Document) -> Result<Option<Bson>, UpdateError> {
    let mut equalities = Vec::new();
    collect(query, &mut equalities)?;
    check_id_paths(&equalities)?;
    Ok(equalities
        .into_iter()
        .find(|(p, _)| *p == "_id")
        .map(|(_, v)| v.clone()))
}

/// The document an operator upsert starts from.
pub(crate) fn seed(query: &Document) -> Result<Document, UpdateError> {
    let mut list = Vec::new();
    collect(query, &mut list)?;
    let mut equalities = BTreeMap::new();
    for (path, value) in list {
        if equalities.insert(path, value).is_some() {
            return Err(not_single(format!(
                "cannot infer query fields to set, path '{path}' is matched twice"
            )));
        }
    }
    // A path and a prefix of it: look each proper prefix of each path up.
    for p in equalities.keys() {
        for (i, b) in p.bytes().enumerate() {
            if b == b'.' {
                charge(1)?;
                let q = p.get(..i).unwrap_or_default();
                if equalities.contains_key(q) {
                    return Err(not_single(format!(
                        "cannot infer query fields to set, both paths '{q}' and '{p}' are matched"
                    )));
                }
            }
        }
    }
    let mut doc = Document::new();
    for (path, value) in equalities {
        charge(crate::steps::copy_steps(value))?;
        set_path(&mut doc, path, value.clone())?;
    }
    Ok(doc)
}

/// Sets `value` at the dotted `path` of `doc`, creating sub-documents.
fn set_path(doc: &mut Document, path: &str, value: Bson) -> Result<(), UpdateError> {
    let mut parts = path.split('.').peekable();
    let mut current = doc;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part, value);
            return Ok(());
        }
        let next = current
            .entry(part.to_string())
            .or_insert_with(|| Bson::Document(Document::new()));
        match next {
            Bson::Document(d) => current = d,
            _ => {
                return Err(not_single(format!(
                    "cannot infer query fields to set, path '{path}' runs through a value"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn equalities_seed_the_document() {
        let q = doc! {"b": 1, "a.c": {"$eq": 2}, "x": {"$gt": 1}, "$and": [{"d": 3}], "$or": [{"e": 1}, {"f": 1}]};
        assert_eq!(seed(&q).unwrap(), doc! {"a": {"c": 2}, "b": 1, "d": 3});
        let q =
            doc! {"$or": [{"e": 1}], "i": {"$in": [2]}, "j": {"$all": [3]}, "k": {"$in": [1, 2]}};
        assert_eq!(seed(&q).unwrap(), doc! {"e": 1, "i": 2, "j": 3});
        let q = doc! {"a": {"b": 1}, "r": {"$regex": "x"}};
        assert_eq!(seed(&q).unwrap(), doc! {"a": {"b": 1}});
    }

    #[test]
    fn conflicting_equalities_are_errors() {
        let e = seed(&doc! {"a": 1, "$and": [{"a": 2}]}).unwrap_err();
        assert_eq!(e.code_name(), "NotSingleValueField");
        let e = seed(&doc! {"a": 1, "a.b": 2}).unwrap_err();
        assert_eq!(e.code_name(), "NotSingleValueField");
        assert!(seed(&doc! {"a": 1, "ab": 2}).is_ok());
    }
}
