//! Stage: expansion strings → [`Expansion`]. Input: one string from a rule file — an expansion
//! such as `"%%user.custom_data.group"` (a key or a value), or a bare field path such as
//! `"owner.id"` (a key in subject position). Output: an [`Expansion`] (root + path segments) or an
//! [`ExpansionError`] with the byte range of the problem inside the string.
//!
//! Grammar (spec §10.1 D4), written with nom 7:
//!
//! ```text
//! expansion := "%%" name ("." segment)*        ; nothing may follow the last segment
//! name      := segment                         ; looked up in `Root::ALL` (case-sensitive)
//! segment   := [^.%]+                          ; hyphens, spaces, `$`, digits allowed
//! field     := fsegment ("." fsegment)*        ; bare field path (subjects)
//! fsegment  := [^.]+
//! ```
//!
//! Decision (spec silent): an expansion segment may not contain `%`. D4 allows "any character
//! other than `.`", but D8 requires `"%%user.id%%"` to be an error, which only works when `%`
//! ends a segment; no documented expansion path contains `%`. Bare field paths have no such
//! restriction (only `.` separates them).

use std::fmt;
use std::ops::Range;

use nom::IResult;
use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::char;
use nom::multi::many0;
use nom::sequence::{pair, preceded};

use crate::error::did_you_mean;
use crate::expr::{Expansion, Root};

/// What went wrong in an expansion string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpansionErrorKind {
    /// The name after `%%` is not a known expansion (`%%ctx`, `%%secrets`).
    UnknownRoot,
    /// The string does not follow the expansion grammar (`%%user..id`, `"%%user.id%%"`, `%%`).
    Malformed,
}

/// An expansion string or bare field path that could not be parsed.
///
/// Triggered by, e.g., `"%%user.id%%"` (malformed, span `9..11`) or `"%%ctx.user"` (unknown root,
/// span `0..5`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpansionError {
    pub kind: ExpansionErrorKind,
    /// Lowercase, no final period, user input in backticks.
    pub message: String,
    /// Byte range of the problem inside the parsed string.
    pub span: Range<usize>,
    /// A "did you mean" or explanatory hint.
    pub hint: Option<String>,
}

impl ExpansionError {
    /// The stable diagnostic code: `unknown-expansion` or `malformed-expansion`.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ExpansionErrorKind::UnknownRoot => "unknown-expansion",
            ExpansionErrorKind::Malformed => "malformed-expansion",
        }
    }

    fn malformed(message: impl Into<String>, span: Range<usize>) -> Self {
        ExpansionError {
            kind: ExpansionErrorKind::Malformed,
            message: message.into(),
            span,
            hint: None,
        }
    }
}

/// True when `s` is written as an expansion (starts with `%%`). Everything else is a literal
/// string in operand position and a bare field path in subject position.
pub fn is_expansion(s: &str) -> bool {
    s.starts_with("%%")
}

/// Looks up the root named `name` (the text after `%%`), e.g. `"prevRoot"` → [`Root::PrevRoot`].
pub fn root_by_name(name: &str) -> Option<Root> {
    Root::ALL.iter().find(|(_, n)| *n == name).map(|(r, _)| *r)
}

fn segment(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c != '.' && c != '%')(i)
}

/// `"%%" name ("." segment)*`, leaving whatever does not fit for the caller to report.
fn expansion_prefix(i: &str) -> IResult<&str, (&str, Vec<&str>)> {
    preceded(
        tag("%%"),
        pair(segment, many0(preceded(char('.'), segment))),
    )(i)
}

/// Parses an expansion string `%%name(.segment)*` into an explicit [`Expansion`].
///
/// Errors: missing name (`"%%"`, `"%%.id"`), unknown name (`"%%ctx"`, with a hint), empty
/// segment (`"%%user..id"`), trailing dot (`"%%user."`), anything after the path (`"%%user.id%%"`).
pub fn parse_expansion(s: &str) -> Result<Expansion, ExpansionError> {
    let offset = |rest: &str| s.len() - rest.len();
    let (rest, (name, segments)) = match expansion_prefix(s) {
        Ok(parsed) => parsed,
        Err(_) => {
            return Err(if is_expansion(s) {
                ExpansionError::malformed(
                    format!("missing expansion name after `%%` in `{s}`"),
                    0..s.len().min(2),
                )
            } else {
                ExpansionError::malformed(format!("`{s}` is not an expansion (no `%%`)"), 0..0)
            });
        }
    };
    let root = root_by_name(name).ok_or_else(|| unknown_root(name))?;
    if !rest.is_empty() {
        return Err(leftover(s, rest, offset(rest)));
    }
    Ok(Expansion {
        root,
        path: segments.into_iter().map(str::to_string).collect(),
        implicit: false,
    })
}

fn unknown_root(name: &str) -> ExpansionError {
    let names: Vec<&str> = Root::ALL.iter().map(|(_, n)| *n).collect();
    let hint = match name {
        "vars" | "item" | "pipelines" | "pipeline" => Some(format!(
            "`%%{name}` is an obsolete Stitch pipeline expansion; rules cannot use it"
        )),
        "secrets" => Some(
            "secrets are read through `%%values.<name>` with a value that has `from_secret: true`"
                .to_string(),
        ),
        _ => did_you_mean(name, &names).map(|n| format!("did you mean `%%{n}`?")),
    }
    .or_else(|| {
        let all: Vec<String> = names.iter().map(|n| format!("%%{n}")).collect();
        Some(format!("known expansions: {}", all.join(", ")))
    });
    ExpansionError {
        kind: ExpansionErrorKind::UnknownRoot,
        message: format!("unknown expansion `%%{name}`"),
        span: 0..2 + name.len(),
        hint,
    }
}

/// Classifies what is left after the longest valid expansion prefix of `s`.
fn leftover(s: &str, rest: &str, at: usize) -> ExpansionError {
    if rest == "." {
        return ExpansionError::malformed(format!("expansion `{s}` ends with `.`"), at..at + 1);
    }
    if let Some(after_dot) = rest.strip_prefix('.') {
        // The next segment is empty: `..`, or `.%...`.
        let len = if after_dot.starts_with('.') { 2 } else { 1 };
        return ExpansionError::malformed(
            format!("empty path segment in expansion `{s}`"),
            at..at + len,
        );
    }
    let mut err = ExpansionError::malformed(
        format!(
            "unexpected `{rest}` after expansion `{}`",
            s.get(..at).unwrap_or(s)
        ),
        at..s.len(),
    );
    if rest.starts_with('%') {
        err.hint = Some(
            "an expansion is the whole string: `%%name.path`, with no `%%` at the end".to_string(),
        );
    }
    err
}

/// Splits a bare field path (`"owner.id"`) into its segments. Every segment must be non-empty;
/// the error span covers the offending `.` (or the whole string when it is empty).
pub fn parse_field_path(s: &str) -> Result<Vec<String>, ExpansionError> {
    if s.is_empty() {
        return Err(ExpansionError::malformed("empty field name", 0..0));
    }
    let mut segments = Vec::new();
    let mut start = 0;
    for part in s.split('.') {
        if part.is_empty() {
            // `start` is the byte where this empty segment begins: just after a `.` (or 0).
            let span = if start == 0 {
                0..1
            } else {
                start - 1..(start + 1).min(s.len())
            };
            let message = if start == s.len() {
                format!("field path `{s}` ends with `.`")
            } else if start == 0 {
                format!("field path `{s}` starts with `.`")
            } else {
                format!("empty segment in field path `{s}`")
            };
            return Err(ExpansionError::malformed(message, span));
        }
        segments.push(part.to_string());
        start += part.len() + 1;
    }
    Ok(segments)
}

/// Parses a subject key: an expansion when it starts with `%%`, otherwise a bare field path
/// bound to `implicit_root` (`Root::Root` in MongoDB rules, `Root::Args` in service rules).
pub fn parse_subject(s: &str, implicit_root: Root) -> Result<Expansion, ExpansionError> {
    if is_expansion(s) {
        parse_expansion(s)
    } else {
        Ok(Expansion {
            root: implicit_root,
            path: parse_field_path(s)?,
            implicit: true,
        })
    }
}

/// Renders an expansion the way it is written: `%%root.a.b`, or `a.b` when implicit.
pub(crate) fn write_expansion(e: &Expansion, f: &mut dyn fmt::Write) -> fmt::Result {
    if e.implicit {
        let mut first = true;
        for s in &e.path {
            if !first {
                f.write_char('.')?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    } else {
        write!(f, "%%{}", e.root.name())?;
        for s in &e.path {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(root: Root, path: &[&str]) -> Expansion {
        Expansion {
            root,
            path: path.iter().map(|s| s.to_string()).collect(),
            implicit: false,
        }
    }

    #[test]
    fn parses_roots_and_paths() {
        assert_eq!(parse_expansion("%%user.id"), Ok(exp(Root::User, &["id"])));
        assert_eq!(parse_expansion("%%true"), Ok(exp(Root::True, &[])));
        assert_eq!(parse_expansion("%%prevRoot"), Ok(exp(Root::PrevRoot, &[])));
        assert_eq!(
            parse_expansion("%%user.custom_data.group"),
            Ok(exp(Root::User, &["custom_data", "group"]))
        );
        for (root, name) in Root::ALL {
            assert_eq!(parse_expansion(&format!("%%{name}")), Ok(exp(root, &[])));
        }
    }

    #[test]
    fn segments_allow_hyphens_spaces_dollars_digits() {
        assert_eq!(
            parse_expansion("%%request.requestHeaders.X-Api-Version"),
            Ok(exp(Root::Request, &["requestHeaders", "X-Api-Version"]))
        );
        assert_eq!(
            parse_expansion("%%values.my value.$x.0"),
            Ok(exp(Root::Values, &["my value", "$x", "0"]))
        );
    }

    #[test]
    fn unknown_roots_have_hints() {
        let e = parse_expansion("%%ctx.user").unwrap_err();
        assert_eq!(e.kind, ExpansionErrorKind::UnknownRoot);
        assert_eq!(e.code(), "unknown-expansion");
        assert_eq!(e.span, 0..5);
        assert!(e.message.contains("`%%ctx`"));
        assert!(e.hint.is_some());
        let e = parse_expansion("%%prevroot").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `%%prevRoot`?"));
        let e = parse_expansion("%%secrets.key").unwrap_err();
        assert!(e.hint.unwrap().contains("%%values"));
        let e = parse_expansion("%%vars.x").unwrap_err();
        assert!(e.hint.unwrap().contains("obsolete"));
        let e = parse_expansion("%%item").unwrap_err();
        assert_eq!(e.kind, ExpansionErrorKind::UnknownRoot);
    }

    #[test]
    fn malformed_strings_have_spans() {
        let e = parse_expansion("%%user.id%%").unwrap_err();
        assert_eq!(e.kind, ExpansionErrorKind::Malformed);
        assert_eq!(e.code(), "malformed-expansion");
        assert_eq!(e.span, 9..11);
        let e = parse_expansion("%%user..id").unwrap_err();
        assert_eq!(e.span, 6..8);
        let e = parse_expansion("%%user.").unwrap_err();
        assert_eq!(e.span, 6..7);
        let e = parse_expansion("%%").unwrap_err();
        assert_eq!(e.span, 0..2);
        let e = parse_expansion("%%.id").unwrap_err();
        assert_eq!(e.kind, ExpansionErrorKind::Malformed);
        let e = parse_expansion("%%user.%%").unwrap_err();
        assert_eq!(e.span, 6..7);
        let e = parse_expansion("%%user%x").unwrap_err();
        assert_eq!(e.span, 6..8);
        assert!(parse_expansion("user.id").is_err());
    }

    #[test]
    fn field_paths() {
        assert_eq!(parse_field_path("owner.id").unwrap(), vec!["owner", "id"]);
        assert_eq!(parse_field_path("a").unwrap(), vec!["a"]);
        assert_eq!(parse_field_path("a..b").unwrap_err().span, 1..3);
        assert_eq!(parse_field_path("a.").unwrap_err().span, 1..2);
        assert_eq!(parse_field_path(".a").unwrap_err().span, 0..1);
        assert!(parse_field_path("").is_err());
        let s = parse_subject("owner_id", Root::Args).unwrap();
        assert_eq!(s.root, Root::Args);
        assert!(s.implicit);
        assert!(!parse_subject("%%args.x", Root::Root).unwrap().implicit);
    }

    #[test]
    fn renders_back() {
        for s in [
            "%%user.id",
            "%%true",
            "%%request.requestHeaders.X-Api-Version",
        ] {
            let mut out = String::new();
            write_expansion(&parse_expansion(s).unwrap(), &mut out).unwrap();
            assert_eq!(out, s);
        }
        let mut out = String::new();
        write_expansion(&parse_subject("a.b", Root::Root).unwrap(), &mut out).unwrap();
        assert_eq!(out, "a.b");
    }
}
