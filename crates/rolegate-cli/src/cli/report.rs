//! Stage: the command line's errors and warnings. Input: a problem found by a command (its own,
//! such as a bad line of a JSON Lines file, or a rule diagnostic of the library). Output: one
//! line on stderr — text for people, or with `--format json` one JSON object with the same keys
//! for every problem of every command:
//!
//! | key | value |
//! | --- | --- |
//! | `severity` | `"error"` or `"warning"` |
//! | `code` | a stable identifier (`invalid-json`, `unknown-key`, `collection-not-named`, ...) |
//! | `message` | what is wrong, without Rust type names |
//! | `file` | the file it is in (`-` for stdin), or `null` (the command line) |
//! | `line` | the 1-based line, when the problem is one line of a file (JSON Lines) |
//! | `path` | the JSON path inside the file (`request.functions.f[0]`, `roles[1].read`), or `null` |
//! | `span` | `[start, end]` bytes inside the string at `path` (expansion strings), or `null` |
//! | `hint` | what was probably meant, or `null` |
//!
//! `check` prints the rule diagnostics it is asked for on stdout in the same shape.

use std::fmt;

use rolegate::{Diagnostic, Severity as RuleSeverity};
use serde_json::{Value, json};

use super::Format;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The command goes on.
    Warning,
    /// The command stops (or, for rule diagnostics, the rules do not load).
    Error,
}

/// One error or warning, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub code: String,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub path: Option<String>,
    pub span: Option<(usize, usize)>,
    pub hint: Option<String>,
}

impl Problem {
    /// An error with no place (the command line).
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            code: code.to_string(),
            message: message.into(),
            file: None,
            line: None,
            path: None,
            span: None,
            hint: None,
        }
    }

    /// A warning with no place.
    pub fn warning(code: &str, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, message)
        }
    }

    /// In `file`.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// On `line` (1-based) of its file.
    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// At JSON path `path` of its file (nothing when `path` is empty).
    pub fn at_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = (!path.is_empty()).then_some(path);
        self
    }

    /// With a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// A rule diagnostic of the library, with its file, JSON path and span.
    pub fn from_diagnostic(d: &Diagnostic) -> Self {
        Problem {
            severity: match d.severity {
                RuleSeverity::Error => Severity::Error,
                RuleSeverity::Warning => Severity::Warning,
            },
            code: d.code.to_string(),
            message: d.message.clone(),
            file: (!d.place.file.is_empty()).then(|| d.place.file.to_string()),
            line: None,
            path: (!d.place.json_path.is_empty()).then(|| d.place.json_path.clone()),
            span: d.place.span.as_ref().map(|s| (s.start, s.end)),
            hint: d.hint.clone(),
        }
    }

    /// The JSON object (every key always present).
    pub fn to_json(&self) -> Value {
        json!({
            "severity": match self.severity { Severity::Error => "error", Severity::Warning => "warning" },
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "span": self.span.map(|(a, b)| [a, b]),
            "hint": self.hint,
        })
    }

    /// The line to print in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Human => self.to_string(),
            Format::Json => self.to_json().to_string(),
        }
    }
}

/// `error[code]: FILE line N: PATH (bytes a..b): message (hint: ...)`, the shape of the rule
/// diagnostics.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}[{}]: ", self.code)?;
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            if let Some(line) = self.line {
                write!(f, " line {line}")?;
            }
            if let Some(path) = &self.path {
                write!(f, ": {path}")?;
                if let Some((a, b)) = self.span {
                    write!(f, " (bytes {a}..{b})")?;
                }
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// Prints a warning (or any problem) on stderr in `format`.
pub fn warn(problem: &Problem, format: Format) {
    eprintln!("{}", problem.render(format));
}

/// A serde error message without Rust type names: `expected struct Operation` becomes
/// `expected an object`, and an untagged enum's "did not match any variant" says which forms
/// are accepted (`forms`).
pub fn plain_serde_message(message: &str, forms: &str) -> String {
    let message = message
        .rsplit_once(" at line ")
        .map_or(message, |(m, _)| m)
        .to_string();
    if message.contains("untagged enum") {
        return format!("expected {forms}");
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some(i) = rest.find("expected ") {
        let (before, after) = rest.split_at(i + "expected ".len());
        out.push_str(before);
        let (replacement, skip) = if let Some(tail) = after.strip_prefix("struct ") {
            ("an object", "struct ".len() + type_name_len(tail))
        } else if let Some(tail) = after.strip_prefix("enum ") {
            (
                "one of the accepted values",
                "enum ".len() + type_name_len(tail),
            )
        } else {
            ("", 0)
        };
        out.push_str(replacement);
        rest = after.get(skip..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

fn type_name_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_lose_type_names() {
        assert_eq!(
            plain_serde_message(
                "invalid type: string \"x\", expected struct Operation at line 1 column 3",
                "x"
            ),
            "invalid type: string \"x\", expected an object"
        );
        assert_eq!(
            plain_serde_message(
                "data did not match any variant of untagged enum FunctionMocks",
                "a mock"
            ),
            "expected a mock"
        );
        assert_eq!(
            plain_serde_message("missing field `returns`", ""),
            "missing field `returns`"
        );
    }
}
