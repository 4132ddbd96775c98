//! Stage: update parsing (compile) and application (match). The two places where an update reads
//! a query: its `arrayFilters` (`$[<identifier>]` selects the elements its filter matches) and
//! the positional `$` (the index of the array element the update's query matched).
//!
//! An array filter is a query whose top-level fields all start with one identifier (`{"x.a":
//! {$gt: 1}}`, `{x: 5}`, `{$or: [{"x.a": 1}, {"x.b": 1}]}`); it is matched against the
//! document `{<identifier>: <element>}`, with the query matcher ([`crate::mql::matches`]).
//!
//! The positional `$` ([`PositionalQuery`]): for each condition of the query (top-level fields
//! and the members of `$and`), the first array met along the condition's path is searched for
//! the first element with which the condition holds (an `$elemMatch` condition: the first element
//! it selects). When several conditions record an index, the last one (in query order) wins, as
//! MongoDB's `$and` overwrites the match details child after child (decision `M-upd-positional`
//! in `docs/semantics.md`). Conditions under `$or`/`$nor`/`$not` record nothing.

use std::collections::BTreeMap;

use bson::{Bson, Document};

use super::error::UpdateError;
use crate::expr::Expr;
use crate::mql::{compile_query, matches};

/// The compiled `arrayFilters` of an update.
#[derive(Debug, Clone, Default)]
pub(crate) struct ArrayFilters {
    filters: BTreeMap<String, Filter>,
}

#[derive(Debug, Clone)]
struct Filter {
    query: Expr,
    used: bool,
}

fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// The identifier a filter's field names start with (recursing into `$and`/`$or`/`$nor`).
fn identifier_of(filter: &Document, found: &mut Option<String>) -> Result<(), UpdateError> {
    for (key, value) in filter {
        crate::steps::charge(1)?;
        if matches!(key.as_str(), "$and" | "$or" | "$nor") {
            if let Bson::Array(members) = value {
                for m in members {
                    if let Bson::Document(d) = m {
                        identifier_of(d, found)?;
                    }
                }
            }
            continue;
        }
        if matches!(key.as_str(), "$comment" | "$alwaysTrue" | "$alwaysFalse") {
            continue;
        }
        if matches!(key.as_str(), "$expr" | "$jsonSchema") {
            return Err(UpdateError::new(
                super::error::ErrorKind::QueryFeatureNotAllowed,
                format!(
                    "Error parsing array filter :: caused by :: {key} is not allowed in the context of an array filter"
                ),
            ));
        }
        if key.starts_with('$') {
            return Err(UpdateError::bad_value(format!(
                "Error parsing array filter :: caused by :: unknown top level operator: {key}"
            )));
        }
        let id = key.split('.').next().unwrap_or_default();
        match found {
            Some(f) if f != id => {
                return Err(UpdateError::parse(format!(
                    "Error parsing array filter :: caused by :: Expected a single top-level field name, found '{f}' and '{id}'"
                )));
            }
            Some(_) => {}
            None => *found = Some(id.to_string()),
        }
    }
    Ok(())
}

impl ArrayFilters {
    /// Compiles the filters, with MongoDB's checks of their identifiers.
    pub(crate) fn parse(filters: &[Document]) -> Result<ArrayFilters, UpdateError> {
        let mut out = ArrayFilters::default();
        for f in filters {
            let mut found = None;
            identifier_of(f, &mut found)?;
            let Some(id) = found else {
                return Err(UpdateError::parse(
                    "Cannot use an expression without a top-level field name in arrayFilters",
                ));
            };
            if !is_identifier(&id) {
                return Err(UpdateError::bad_value(format!(
                    "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string beginning with a lowercase letter, found '{id}'"
                )));
            }
            if out.filters.contains_key(&id) {
                return Err(UpdateError::parse(format!(
                    "Found multiple array filters with the same top-level field name {id}"
                )));
            }
            let query = compile_query(f).map_err(|e| {
                UpdateError::bad_value(format!("Error parsing array filter :: caused by :: {e}"))
            })?;
            out.filters.insert(id, Filter { query, used: false });
        }
        Ok(out)
    }

    /// Records that `path` uses `$[id]`: an error when no filter has that identifier.
    pub(crate) fn use_identifier(&mut self, id: &str, path: &str) -> Result<(), UpdateError> {
        match self.filters.get_mut(id) {
            Some(f) => {
                f.used = true;
                Ok(())
            }
            None => Err(UpdateError::bad_value(format!(
                "No array filter found for identifier '{id}' in path '{path}'"
            ))),
        }
    }

    /// MongoDB refuses a filter that no path uses.
    pub(crate) fn check_all_used(&self, update: &Document) -> Result<(), UpdateError> {
        match self.filters.iter().find(|(_, f)| !f.used) {
            Some((id, _)) => Err(UpdateError::parse(format!(
                "The array filter for identifier '{id}' was not used in the update {update}"
            ))),
            None => Ok(()),
        }
    }

    /// True when the filter of `id` selects `element` (`wrapped` is `{id: element}`).
    pub(crate) fn selects(&self, id: &str, wrapped: &Document) -> Result<bool, UpdateError> {
        match self.filters.get(id) {
            Some(f) => Ok(matches(&f.query, wrapped)?),
            None => Ok(false),
        }
    }
}

/// The conditions of an update's query that can record the positional `$` index.
#[derive(Debug, Clone, Default)]
pub struct PositionalQuery {
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
struct Condition {
    path: Vec<String>,
    /// `checks[k]`: the condition on the rest of the path after `k + 1` components, as a query
    /// on `{"v": <element>}`.
    checks: Vec<Expr>,
    /// An `$elemMatch` on the whole path: matched against `{"v": [<element>]}`.
    elem_match: Option<Expr>,
}

fn collect(query: &Document, out: &mut Vec<Condition>) -> Result<(), UpdateError> {
    let load = |e: crate::error::LoadError| UpdateError::bad_value(format!("invalid query: {e}"));
    for (key, value) in query {
        crate::steps::charge(1)?;
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
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        let elem_match = match value {
            Bson::Document(d) if d.keys().next().map(String::as_str) == Some("$elemMatch") => {
                let mut q = Document::new();
                q.insert("v", value.clone());
                Some(compile_query(&q).map_err(load)?)
            }
            _ => None,
        };
        let mut checks = Vec::with_capacity(path.len());
        for k in 1..=path.len() {
            let rest = path.get(k..).unwrap_or_default();
            let field = if rest.is_empty() {
                "v".to_string()
            } else {
                format!("v.{}", rest.join("."))
            };
            let mut q = Document::new();
            q.insert(field, value.clone());
            checks.push(compile_query(&q).map_err(load)?);
        }
        out.push(Condition {
            path,
            checks,
            elem_match,
        });
    }
    Ok(())
}

impl PositionalQuery {
    /// Compiles the conditions of `query` that can record a positional index.
    pub fn compile(query: &Document) -> Result<PositionalQuery, UpdateError> {
        let mut conditions = Vec::new();
        collect(query, &mut conditions)?;
        Ok(PositionalQuery { conditions })
    }

    /// The index of the array element the query matched in `doc`, as a field name.
    pub(crate) fn matched_index(&self, doc: &Document) -> Result<Option<String>, UpdateError> {
        let mut found = None;
        for c in &self.conditions {
            if let Some(i) = c.position(doc)? {
                found = Some(i.to_string());
            }
        }
        Ok(found)
    }
}

impl Condition {
    fn position(&self, doc: &Document) -> Result<Option<usize>, UpdateError> {
        let mut current: Option<&Bson> = None;
        let mut skip = false;
        for (k, part) in self.path.iter().enumerate() {
            if std::mem::take(&mut skip) {
                continue;
            }
            let next = match current {
                None => doc.get(part),
                Some(Bson::Document(d)) => d.get(part),
                _ => None,
            };
            let Some(value) = next else {
                return Ok(None);
            };
            if let Bson::Array(items) = value {
                // An index into the array is a step of the path, not a match position.
                if let Some(i) = self
                    .path
                    .get(k + 1)
                    .and_then(|p| super::path::array_index(p))
                    && let Some(element) = items.get(i)
                {
                    current = Some(element);
                    skip = true;
                    continue;
                }
                let at_end = k + 1 == self.path.len();
                for (i, item) in items.iter().enumerate() {
                    crate::steps::charge(1)?;
                    let hit = match (&self.elem_match, at_end) {
                        (Some(q), true) => {
                            let mut w = Document::new();
                            w.insert("v", Bson::Array(vec![item.clone()]));
                            matches(q, &w)?
                        }
                        _ => match self.checks.get(k) {
                            Some(q) => {
                                let mut w = Document::new();
                                w.insert("v", item.clone());
                                matches(q, &w)?
                            }
                            None => false,
                        },
                    };
                    if hit {
                        return Ok(Some(i));
                    }
                }
                return Ok(None);
            }
            current = Some(value);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn identifiers_are_validated() {
        let code = |f: Document| ArrayFilters::parse(&[f]).unwrap_err().code_name();
        assert_eq!(code(doc! {"X": 1}), "BadValue");
        assert_eq!(code(doc! {"a-b": 1}), "BadValue");
        assert_eq!(code(doc! {"a": 1, "b": 1}), "FailedToParse");
        assert_eq!(code(doc! {}), "FailedToParse");
        let dup = ArrayFilters::parse(&[doc! {"x": 1}, doc! {"x.a": 2}]).unwrap_err();
        assert_eq!(dup.code_name(), "FailedToParse");
        assert!(ArrayFilters::parse(&[doc! {"$or": [{"x.a": 1}, {"x.b": 2}]}]).is_ok());
        assert!(ArrayFilters::parse(&[doc! {"elem1": {"$gte": 85}}]).is_ok());
    }

    #[test]
    fn positional_index_is_the_first_matching_element() {
        let q = PositionalQuery::compile(&doc! {"grades": 85}).unwrap();
        let d = doc! {"grades": [80, 85, 85]};
        assert_eq!(q.matched_index(&d).unwrap(), Some("1".into()));
        let q = PositionalQuery::compile(&doc! {"a.b": {"$gt": 1}}).unwrap();
        let d = doc! {"a": [{"b": 1}, {"b": 2}]};
        assert_eq!(q.matched_index(&d).unwrap(), Some("1".into()));
        let q = PositionalQuery::compile(&doc! {"a": {"$elemMatch": {"b": 1, "c": 2}}}).unwrap();
        let d = doc! {"a": [{"b": 1, "c": 1}, {"b": 1, "c": 2}]};
        assert_eq!(q.matched_index(&d).unwrap(), Some("1".into()));
        let q = PositionalQuery::compile(&doc! {"a": [1, 2]}).unwrap();
        assert_eq!(q.matched_index(&doc! {"a": [1, 2]}).unwrap(), None);
    }
}
