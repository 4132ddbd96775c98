//! Stage: the errors of a find's sort, skip, limit and projection (parsing them, or applying
//! them to a document). Input: none. Output: [`FindError`], MongoDB's error code name with a
//! clear message.

/// MongoDB refuses a find's sort, skip, limit or projection, or cannot apply it to a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct FindError {
    /// MongoDB's error code name (`BadValue`, `Location31254`, ...).
    pub code: &'static str,
    /// What is wrong, in MongoDB's words where it has some.
    pub message: String,
}

impl FindError {
    /// A `BadValue` error.
    pub(crate) fn bad_value(message: impl Into<String>) -> FindError {
        FindError {
            code: "BadValue",
            message: message.into(),
        }
    }

    /// An error with the given code name.
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> FindError {
        FindError {
            code,
            message: message.into(),
        }
    }
}
