//! Diagnostics shared by every stage: where a problem is (`Place`: file, JSON path, byte range
//! inside an expansion string), how bad it is (`Severity`), and a stable `code`.
//!
//! Loading and validation collect *all* diagnostics of a file into a [`Diagnostics`] list rather
//! than stopping at the first; a stage fails with [`LoadError`] when the list holds an error.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// Where a value came from: the app-relative file and the JSON path of the value inside it
/// (`roles[1].apply_when`), plus a byte range when the problem is inside an expansion string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Place {
    /// App-relative (or user-given) path of the file; empty for inline input.
    pub file: Arc<str>,
    /// JSON path of the value inside the file, `$`-less: `roles[0].fields.name.read`.
    pub json_path: String,
    /// Byte range inside the string value at `json_path` (expansion-string errors).
    pub span: Option<Range<usize>>,
}

impl Place {
    /// A place at the root of `file`.
    pub fn file(file: impl Into<Arc<str>>) -> Self {
        Place {
            file: file.into(),
            json_path: String::new(),
            span: None,
        }
    }

    /// The place of the member `key` of the object at this place.
    pub fn key(&self, key: &str) -> Self {
        let simple = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let json_path = match (self.json_path.is_empty(), simple) {
            (true, true) => key.to_string(),
            (false, true) => format!("{}.{key}", self.json_path),
            (_, false) => format!("{}[{key:?}]", self.json_path),
        };
        Place {
            file: self.file.clone(),
            json_path,
            span: None,
        }
    }

    /// The place of element `index` of the array at this place.
    pub fn index(&self, index: usize) -> Self {
        Place {
            file: self.file.clone(),
            json_path: format!("{}[{index}]", self.json_path),
            span: None,
        }
    }

    /// This place narrowed to a byte range of its string value.
    pub fn with_span(&self, span: Range<usize>) -> Self {
        Place {
            span: Some(span),
            ..self.clone()
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = if self.file.is_empty() {
            "<input>"
        } else {
            &self.file
        };
        match (self.json_path.is_empty(), &self.span) {
            (true, _) => write!(f, "{file}"),
            (false, None) => write!(f, "{file}: {}", self.json_path),
            (false, Some(s)) => write!(
                f,
                "{file}: {} (bytes {}..{})",
                self.json_path, s.start, s.end
            ),
        }
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Suspicious but valid; `rolegate check` prints it and still exits 0.
    Warning,
    /// The input is invalid; loading fails.
    Error,
}

/// One problem found in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Whether loading fails because of it ([`Severity::Error`]) or only warns.
    pub severity: Severity,
    /// Stable identifier, such as `unknown-key` or `unknown-expansion`.
    pub code: &'static str,
    /// The file and JSON path (and, inside an expansion string, the byte range) of the value at
    /// fault: `data_sources/mongodb-atlas/app/items/rules.json: roles[1].apply_when`.
    pub place: Place,
    /// Lowercase message without final period; user input in backticks.
    pub message: String,
    /// One-line hint, such as the key that was probably meant.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error (loading fails) with the stable `code`, at `place`, without a hint.
    pub fn error(code: &'static str, place: Place, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            place,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning (loading goes on) with the stable `code`, at `place`, without a hint.
    pub fn warning(code: &'static str, place: Place, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            code,
            place,
            message: message.into(),
            hint: None,
        }
    }

    /// The same diagnostic with a one-line hint, such as ``did you mean `apply_when`?``.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}]: {}: {}", self.code, self.place, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// An ordered collection of diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds `d` after the diagnostics already found.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// Adds an error ([`Diagnostic::error`]).
    pub fn error(&mut self, code: &'static str, place: Place, message: impl Into<String>) {
        self.push(Diagnostic::error(code, place, message));
    }

    /// Adds a warning ([`Diagnostic::warning`]).
    pub fn warning(&mut self, code: &'static str, place: Place, message: impl Into<String>) {
        self.push(Diagnostic::warning(code, place, message));
    }

    /// True when some diagnostic is an error: the rules do not load.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// The errors, in the order they were found.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings, in the order they were found.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Warning)
    }

    /// Adds every diagnostic of `other` after these.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
}

/// Loading or validating rules failed; holds every diagnostic found (errors and warnings).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", summarize(.diagnostics))]
pub struct LoadError {
    /// Every error found, and the warnings found beside them, each with its file and JSON path.
    pub diagnostics: Diagnostics,
}

fn summarize(d: &Diagnostics) -> String {
    let mut errors = d.errors();
    match (errors.next(), d.errors().count()) {
        (Some(first), 1) => first.to_string(),
        (Some(first), n) => format!("{first} (and {} more errors)", n - 1),
        (None, _) => "invalid rules".to_string(),
    }
}

/// The kind of a JSON value as messages name it: `null`, `a boolean`, `a number`, `a string`,
/// `an array`, `an object`.
pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Suggests the candidate closest to `input` (edit distance ≤ 1/3 of the length, at least 1 and
/// at most 3, where swapping two neighbouring characters is one edit: `raed` → `read`), for "did
/// you mean" hints on unknown keys and operators.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (input.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(input, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let at = |row: &[usize], j: usize| row.get(j).copied().unwrap_or(usize::MAX);
    let mut before: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let (ca, cb) = (a.get(i - 1), b.get(j - 1));
            let cost = usize::from(ca != cb);
            let mut value = (at(&prev, j - 1).saturating_add(cost))
                .min(at(&prev, j).saturating_add(1))
                .min(at(&row, j - 1).saturating_add(1));
            if i > 1 && j > 1 && ca == b.get(j - 2) && a.get(i - 2) == cb {
                value = value.min(at(&before, j - 2).saturating_add(1));
            }
            if let Some(cell) = row.get_mut(j) {
                *cell = value;
            }
        }
        before = std::mem::replace(&mut prev, row);
    }
    at(&prev, b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_of_two_letters_is_one_edit() {
        assert_eq!(edit_distance("raed", "read"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(did_you_mean("raed", &["read", "write"]), Some("read"));
        assert_eq!(did_you_mean("wirte", &["read", "write"]), Some("write"));
    }

    #[test]
    fn suggests_close_keys() {
        let keys = ["document_filters", "apply_when", "read", "write"];
        assert_eq!(
            did_you_mean("document_filter", &keys),
            Some("document_filters")
        );
        assert_eq!(did_you_mean("applyWhen", &keys), Some("apply_when"));
        assert_eq!(did_you_mean("$exist", &["$exists", "$eq"]), Some("$exists"));
        assert_eq!(did_you_mean("zzzzzz", &keys), None);
    }

    #[test]
    fn places_render_paths() {
        let p = Place::file("rules.json")
            .key("roles")
            .index(1)
            .key("apply_when");
        assert_eq!(p.to_string(), "rules.json: roles[1].apply_when");
        assert_eq!(
            Place::file("a.json").key("%%user.id").json_path,
            "[\"%%user.id\"]"
        );
    }
}
