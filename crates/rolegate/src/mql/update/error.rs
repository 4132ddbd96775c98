//! Stage: update parsing and application (both). Input: what went wrong. Output: an
//! [`UpdateError`], MongoDB's error class (code name and number) with a message that gives the
//! gist of MongoDB's.

use std::fmt;

use crate::value::EvalError;

/// The class of an update error: MongoDB's error code, or one of rolegate's own refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// MongoDB `BadValue` (2): an operand or a document value is not acceptable.
    BadValue,
    /// MongoDB `FailedToParse` (9): the update document is malformed (unknown operator, an
    /// operator whose argument is not a document, an unused array filter, ...).
    FailedToParse,
    /// MongoDB `TypeMismatch` (14): an operator met a value of the wrong type (`$inc` on a
    /// string, `$pop` on a non-array).
    TypeMismatch,
    /// MongoDB `PathNotViable` (28): a path runs through a scalar or names a field of an array.
    PathNotViable,
    /// MongoDB `CannotBackfillArray` (34): an index more than 1,500,000 past an array's end.
    CannotBackfillArray,
    /// MongoDB `ConflictingUpdateOperators` (40): two operators update the same path, or one
    /// updates a prefix of another's.
    ConflictingUpdateOperators,
    /// MongoDB `DollarPrefixedFieldName` (52): a field name starts with `$` where MongoDB
    /// refuses it.
    DollarPrefixedFieldName,
    /// MongoDB `InvalidIdField` (53): an `_id` of a type MongoDB does not store (array, regex,
    /// undefined).
    InvalidIdField,
    /// MongoDB `NotSingleValueField` (54): an upsert's query gives one path two values.
    NotSingleValueField,
    /// MongoDB `InvalidDBRef` (55): `$ref`, `$id`, `$db` fields that do not form a DBRef.
    InvalidDBRef,
    /// MongoDB `EmptyFieldName` (56): an update path with an empty component.
    EmptyFieldName,
    /// MongoDB `ImmutableField` (66): the update would change `_id`.
    ImmutableField,
    /// MongoDB `NotExactValueField` (111): an upsert's query gives `_id` by sub-paths.
    NotExactValueField,
    /// MongoDB `QueryFeatureNotAllowed` (224): `$expr`, `$jsonSchema`, `$where` or `$text` where
    /// an update reads a query (`$pull`, `arrayFilters`).
    QueryFeatureNotAllowed,
    /// MongoDB `NotImplemented` (238), used by rolegate for what it refuses on purpose
    /// (pipeline-style updates, decimal128 arithmetic that would round): see `docs/semantics.md`.
    NotImplemented,
    /// rolegate's own limits (step budget, nesting depth); no MongoDB code.
    LimitExceeded,
}

impl ErrorKind {
    /// MongoDB's code name (`"ConflictingUpdateOperators"`), or `"LimitExceeded"`.
    pub fn code_name(self) -> &'static str {
        match self {
            ErrorKind::BadValue => "BadValue",
            ErrorKind::FailedToParse => "FailedToParse",
            ErrorKind::TypeMismatch => "TypeMismatch",
            ErrorKind::PathNotViable => "PathNotViable",
            ErrorKind::CannotBackfillArray => "CannotBackfillArray",
            ErrorKind::ConflictingUpdateOperators => "ConflictingUpdateOperators",
            ErrorKind::InvalidDBRef => "InvalidDBRef",
            ErrorKind::NotExactValueField => "NotExactValueField",
            ErrorKind::QueryFeatureNotAllowed => "QueryFeatureNotAllowed",
            ErrorKind::DollarPrefixedFieldName => "DollarPrefixedFieldName",
            ErrorKind::InvalidIdField => "InvalidIdField",
            ErrorKind::NotSingleValueField => "NotSingleValueField",
            ErrorKind::EmptyFieldName => "EmptyFieldName",
            ErrorKind::ImmutableField => "ImmutableField",
            ErrorKind::NotImplemented => "NotImplemented",
            ErrorKind::LimitExceeded => "LimitExceeded",
        }
    }

    /// MongoDB's numeric error code; `None` for rolegate's own [`ErrorKind::LimitExceeded`].
    pub fn code(self) -> Option<i32> {
        Some(match self {
            ErrorKind::BadValue => 2,
            ErrorKind::FailedToParse => 9,
            ErrorKind::TypeMismatch => 14,
            ErrorKind::PathNotViable => 28,
            ErrorKind::CannotBackfillArray => 34,
            ErrorKind::ConflictingUpdateOperators => 40,
            ErrorKind::InvalidDBRef => 55,
            ErrorKind::NotExactValueField => 111,
            ErrorKind::QueryFeatureNotAllowed => 224,
            ErrorKind::DollarPrefixedFieldName => 52,
            ErrorKind::InvalidIdField => 53,
            ErrorKind::NotSingleValueField => 54,
            ErrorKind::EmptyFieldName => 56,
            ErrorKind::ImmutableField => 66,
            ErrorKind::NotImplemented => 238,
            ErrorKind::LimitExceeded => return None,
        })
    }
}

/// An update MongoDB would refuse (or rolegate refuses on purpose), with MongoDB's error class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateError {
    kind: ErrorKind,
    message: String,
}

impl UpdateError {
    /// An error of class `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> UpdateError {
        UpdateError {
            kind,
            message: message.into(),
        }
    }

    /// The error class.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// MongoDB's code name, such as `"ConflictingUpdateOperators"`.
    pub fn code_name(&self) -> &'static str {
        self.kind.code_name()
    }

    /// MongoDB's numeric code, such as 40 (`None` for rolegate's own limits).
    pub fn code(&self) -> Option<i32> {
        self.kind.code()
    }

    /// The message, in the words of MongoDB's where rolegate knows them.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn bad_value(message: impl Into<String>) -> UpdateError {
        UpdateError::new(ErrorKind::BadValue, message)
    }

    pub(crate) fn parse(message: impl Into<String>) -> UpdateError {
        UpdateError::new(ErrorKind::FailedToParse, message)
    }

    pub(crate) fn type_mismatch(message: impl Into<String>) -> UpdateError {
        UpdateError::new(ErrorKind::TypeMismatch, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> UpdateError {
        UpdateError::new(ErrorKind::ConflictingUpdateOperators, message)
    }

    pub(crate) fn not_viable(message: impl Into<String>) -> UpdateError {
        UpdateError::new(ErrorKind::PathNotViable, message)
    }

    pub(crate) fn limit(message: impl Into<String>) -> UpdateError {
        UpdateError::new(ErrorKind::LimitExceeded, message)
    }
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.kind.code_name(),
            self.code_or_dash(),
            self.message
        )
    }
}

impl UpdateError {
    fn code_or_dash(&self) -> String {
        self.kind
            .code()
            .map_or_else(|| "-".to_string(), |c| c.to_string())
    }
}

impl std::error::Error for UpdateError {}

impl From<EvalError> for UpdateError {
    fn from(e: EvalError) -> UpdateError {
        match e {
            EvalError::Limit(m) => UpdateError::limit(m),
            other => UpdateError::bad_value(other.to_string()),
        }
    }
}

impl From<crate::limits::LimitExceeded> for UpdateError {
    fn from(e: crate::limits::LimitExceeded) -> UpdateError {
        UpdateError::limit(e.to_string())
    }
}
