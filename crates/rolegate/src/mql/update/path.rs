//! Stage: update parsing. Update paths: a dotted field path of an update operator (`a.b.0`,
//! `grades.$`, `grades.$[]`, `grades.$[elem].score`) into its [`Segment`]s, with MongoDB's
//! validation; and the order in which MongoDB applies the fields of one level
//! ([`cmp_fields`]).

use std::cmp::Ordering;

use super::error::{ErrorKind, UpdateError};
use crate::limits::Limits;

/// One component of an update path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A field name (or an array index, when it is all digits and meets an array).
    Field(String),
    /// `$`: the array element the update's query matched.
    Positional,
    /// `$[]`: every element of the array.
    All,
    /// `$[<identifier>]`: the elements its array filter selects.
    Filtered(String),
}

/// Parses and validates an update path (MongoDB's `fieldchecker::isUpdatable` and the positional
/// checks of `UpdateObjectNode::parseAndMerge`).
pub(crate) fn parse_path(path: &str) -> Result<Vec<Segment>, UpdateError> {
    if path.is_empty() {
        return Err(UpdateError::new(
            ErrorKind::EmptyFieldName,
            "An empty update path is not valid.",
        ));
    }
    let mut segments = Vec::new();
    let mut positionals = 0usize;
    for (i, part) in path.split('.').enumerate() {
        if segments.len() >= Limits::DEFAULT.max_document_depth {
            return Err(UpdateError::limit(format!(
                "the update path `{}...` has more than {} components",
                path.get(..64).unwrap_or(path),
                Limits::DEFAULT.max_document_depth
            )));
        }
        if part.is_empty() {
            return Err(UpdateError::new(
                ErrorKind::EmptyFieldName,
                format!(
                    "The update path '{path}' contains an empty field name, which is not allowed."
                ),
            ));
        }
        let segment = if part == "$" {
            positionals += 1;
            if i == 0 {
                return Err(UpdateError::bad_value(format!(
                    "Cannot have positional (i.e. '$') element in the first position in path '{path}'"
                )));
            }
            Segment::Positional
        } else if let Some(id) = part.strip_prefix("$[").and_then(|r| r.strip_suffix(']')) {
            if i == 0 {
                return Err(UpdateError::bad_value(format!(
                    "Cannot have array filter identifier (i.e. '$[<id>]') element in the first position in path '{path}'"
                )));
            }
            if id.is_empty() {
                Segment::All
            } else {
                Segment::Filtered(id.to_string())
            }
        } else {
            Segment::Field(part.to_string())
        };
        segments.push(segment);
    }
    if positionals > 1 {
        return Err(UpdateError::bad_value(format!(
            "Too many positional (i.e. '$') elements found in path '{path}'"
        )));
    }
    Ok(segments)
}

/// The array index a path component names: unsigned base-10 digits only (MongoDB's
/// `parseUnsignedBase10Integer`: no sign, no spaces; leading zeros allowed).
pub(crate) fn array_index(part: &str) -> Option<usize> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// The order in which MongoDB (5.0 and later) applies the fields of one level of an update:
/// field names made of digits in numeric order, other names in byte order (so `$set` of `b`
/// then `a` on `{}` gives `{a, b}`, and `a.2` is applied before `a.10`). Names equal as numbers
/// but written differently (`1`, `01`) are ordered by their bytes, so the order is total.
pub(crate) fn cmp_fields(a: &str, b: &str) -> Ordering {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if digits(a) && digits(b) {
        let ta = a.trim_start_matches('0');
        let tb = b.trim_start_matches('0');
        ta.len()
            .cmp(&tb.len())
            .then_with(|| ta.cmp(tb))
            .then_with(|| a.cmp(b))
    } else {
        a.cmp(b)
    }
}

/// A field name ordered by [`cmp_fields`], as the key of an update tree level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldKey(pub(crate) String);

impl Ord for FieldKey {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_fields(&self.0, &other.0)
    }
}

impl PartialOrd for FieldKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_segments() {
        assert_eq!(
            parse_path("a.$.b.$[].c.$[x]").unwrap(),
            vec![
                Segment::Field("a".into()),
                Segment::Positional,
                Segment::Field("b".into()),
                Segment::All,
                Segment::Field("c".into()),
                Segment::Filtered("x".into()),
            ]
        );
    }

    #[test]
    fn invalid_paths_have_mongodb_errors() {
        let code = |p: &str| parse_path(p).unwrap_err().code_name();
        assert_eq!(code(""), "EmptyFieldName");
        assert_eq!(code("a..b"), "EmptyFieldName");
        assert_eq!(code("a."), "EmptyFieldName");
        assert_eq!(code("$"), "BadValue");
        assert_eq!(code("$[]"), "BadValue");
        assert_eq!(code("a.$.b.$"), "BadValue");
        // Other `$` names are field names (MongoDB 5.0+); see `parse` for the first component.
        assert_eq!(
            parse_path("a.$b").unwrap().get(1),
            Some(&Segment::Field("$b".into()))
        );
        assert_eq!(
            parse_path("a.$[i").unwrap().get(1),
            Some(&Segment::Field("$[i".into()))
        );
        let deep = vec!["a"; 101].join(".");
        assert_eq!(code(&deep), "LimitExceeded");
    }

    #[test]
    fn fields_are_ordered_numerically_then_by_bytes() {
        let mut keys = vec!["b", "10", "a", "9", "B", "09"];
        keys.sort_by(|a, b| cmp_fields(a, b));
        assert_eq!(keys, vec!["09", "9", "10", "B", "a", "b"]);
        assert_eq!(array_index("007"), Some(7));
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index("1a"), None);
    }
}
