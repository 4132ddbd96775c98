//! Stage: update parsing (compile) and application (match). An update's `arrayFilters`:
//! `$[<identifier>]` selects the elements its filter matches.
//!
//! An array filter is a query whose top-level fields all start with one identifier (`{"x.a":
//! {$gt: 1}}`, `{x: 5}`, `{$or: [{"x.a": 1}, {"x.b": 1}]}`); it is matched against the
//! document `{<identifier>: <element>}`, with the query matcher ([`crate::mql::matches`]).
//!
//! The positional `$` is [`crate::mql::Positional`]'s (decision M24), shared with find
//! projections.

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
}
