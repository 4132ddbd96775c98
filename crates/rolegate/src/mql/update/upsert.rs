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

fn not_single(message: String) -> UpdateError {
    UpdateError::new(ErrorKind::NotSingleValueField, message)
}

/// The equality value of a query condition, when it is one.
fn equality(value: &Bson) -> Option<&Bson> {
    match value {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => d.get("$eq"),
        Bson::RegularExpression(_) => None,
        other => Some(other),
    }
}

fn collect<'q>(
    query: &'q Document,
    out: &mut BTreeMap<&'q str, &'q Bson>,
) -> Result<(), UpdateError> {
    for (key, value) in query {
        charge(1)?;
        if key == "$and" {
            if let Bson::Array(members) = value {
                for m in members {
                    if let Bson::Document(d) = m {
                        collect(d, out)?;
                    }
                }
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        if let Some(v) = equality(value) {
            if out.insert(key.as_str(), v).is_some() {
                return Err(not_single(format!(
                    "cannot infer query fields to set, path '{key}' is matched twice"
                )));
            }
        }
    }
    Ok(())
}

/// The document an upsert starts from.
pub(crate) fn seed(query: &Document) -> Result<Document, UpdateError> {
    let mut equalities = BTreeMap::new();
    collect(query, &mut equalities)?;
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
        let q = doc! {"b": 1, "a.c": {"$eq": 2}, "x": {"$gt": 1}, "$and": [{"d": 3}], "$or": [{"e": 1}]};
        assert_eq!(seed(&q).unwrap(), doc! {"a": {"c": 2}, "b": 1, "d": 3});
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
