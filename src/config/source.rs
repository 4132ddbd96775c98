//! Stage: load, step 0. Input: where the files are — a directory on disk ([`DirSource`]) or an
//! in-memory map from app-relative path to JSON ([`MemSource`]). Output: the app-relative paths
//! and, on demand, each file's parsed JSON (invalid JSON is a diagnostic with line and column).
//!
//! Loading ([`super::load`]) is written once against [`FileSource`], so an app directory, an
//! in-memory app (conformance `rules.files`) and a single file share all of it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Diagnostic, Place};
use crate::limits::{LIMIT_EXCEEDED, Limits, depth_error, json_too_deep};

/// Deepest directory nesting walked (guards against symlink loops).
const MAX_DEPTH: usize = 32;

/// A set of app files.
pub trait FileSource {
    /// Every file's app-relative path (`/`-separated), sorted.
    fn paths(&self) -> Vec<String>;
    /// How diagnostics name the file at `path`.
    fn display(&self, path: &str) -> Arc<str>;
    /// The parsed JSON of the file at `path`.
    fn read_json(&self, path: &str) -> Result<Value, Box<Diagnostic>>;
}

/// Parses JSON text; an error names the line and column (`invalid-json`). JSON nested deeper
/// than the text parser's recursion limit ([`TEXT_DEPTH`] levels) is a `limit-exceeded` error.
pub fn parse_json(text: &str, file: &str) -> Result<Value, Box<Diagnostic>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str(text).map_err(|e| {
        let detail = e.to_string();
        let detail = detail
            .rsplit_once(" at line ")
            .map(|(d, _)| d.to_string())
            .unwrap_or(detail);
        if detail.contains("recursion limit exceeded") {
            return Box::new(
                Diagnostic::error(
                    LIMIT_EXCEEDED,
                    Place::file(file),
                    format!(
                        "JSON nested too deeply (more than {TEXT_DEPTH} levels) at line {} \
                         column {}",
                        e.line(),
                        e.column()
                    ),
                )
                .with_hint("rule files nest a few levels; this file is corrupt or hostile"),
            );
        }
        let what = match e.classify() {
            serde_json::error::Category::Eof => "unexpected end of file",
            _ => "invalid JSON",
        };
        Box::new(Diagnostic::error(
            "invalid-json",
            Place::file(file),
            format!(
                "{what} at line {} column {}: {detail}",
                e.line(),
                e.column()
            ),
        ))
    })
}

/// The deepest nesting the JSON text parser accepts (serde_json's recursion limit).
pub const TEXT_DEPTH: usize = 127;

/// [`parse_json`], then refuses a value nested more than `max_depth` levels
/// ([`crate::limits::Limits::max_file_depth`]) with a `limit-exceeded` error at its JSON path.
pub fn parse_json_with_depth(
    text: &str,
    file: &str,
    max_depth: usize,
) -> Result<Value, Box<Diagnostic>> {
    let value = parse_json(text, file)?;
    check_depth(&value, file, max_depth)?;
    Ok(value)
}

/// A `limit-exceeded` error when `value` nests more than `max_depth` levels.
pub fn check_depth(value: &Value, file: &str, max_depth: usize) -> Result<(), Box<Diagnostic>> {
    match json_too_deep(value, max_depth, &Place::file(file)) {
        None => Ok(()),
        Some(place) => Err(Box::new(depth_error(place, max_depth))),
    }
}

/// The files of an app directory on disk. Hidden entries (`.git`, `.DS_Store`) and
/// `node_modules` are skipped.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
    paths: Vec<String>,
    /// [`Limits::max_file_depth`] (effective) of every file read.
    max_depth: usize,
    /// Problems met while walking (unreadable directories).
    pub walk_errors: Vec<Diagnostic>,
}

impl DirSource {
    /// Walks `root` once (files are read with the default [`Limits`]).
    pub fn new(root: &Path) -> Self {
        DirSource::with_limits(root, &Limits::default())
    }

    /// Walks `root` once; files are refused when they nest deeper than `limits` allow.
    pub fn with_limits(root: &Path, limits: &Limits) -> Self {
        let mut source = DirSource {
            root: root.to_path_buf(),
            paths: Vec::new(),
            max_depth: limits.effective_file_depth(),
            walk_errors: Vec::new(),
        };
        let mut paths = Vec::new();
        source.walk(root, "", 0, &mut paths);
        paths.sort();
        source.paths = paths;
        source
    }

    fn walk(&mut self, dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) {
        if depth > MAX_DEPTH {
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.walk_errors.push(Diagnostic::error(
                    "io",
                    Place::file(dir.display().to_string()),
                    format!("cannot read directory: {e}"),
                ));
                return;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "node_modules" {
                continue;
            }
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            // `metadata` follows symlinks.
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => self.walk(&path, &rel, depth + 1, out),
                Ok(_) => out.push(rel),
                Err(_) => {}
            }
        }
    }
}

impl FileSource for DirSource {
    fn paths(&self) -> Vec<String> {
        self.paths.clone()
    }

    fn display(&self, path: &str) -> Arc<str> {
        Arc::from(path)
    }

    fn read_json(&self, path: &str) -> Result<Value, Box<Diagnostic>> {
        let full = self.root.join(path);
        let text = std::fs::read_to_string(&full).map_err(|e| {
            Box::new(Diagnostic::error(
                "io",
                Place::file(path),
                format!("cannot read file: {e}"),
            ))
        })?;
        parse_json_with_depth(&text, path, self.max_depth)
    }
}

/// An in-memory app: app-relative path → JSON (conformance `rules.files`, tests). Each file
/// may carry its own display name (a lone file keeps the path the user gave). A file nested
/// deeper than the limits allow is held as its `limit-exceeded` error and never copied.
#[derive(Debug, Default)]
pub struct MemSource {
    files: BTreeMap<String, MemFile>,
}

/// One in-memory file: its JSON (or why it is refused) and how diagnostics name it.
type MemFile = (Result<Value, Box<Diagnostic>>, Arc<str>);

impl MemSource {
    /// A source holding `files`, displayed by their app-relative paths (default [`Limits`]).
    pub fn new(files: &BTreeMap<String, Value>) -> Self {
        MemSource::with_limits(files, &Limits::default())
    }

    /// A source holding `files`, displayed by their app-relative paths; files nested deeper
    /// than `limits` allow read as their error.
    pub fn with_limits(files: &BTreeMap<String, Value>, limits: &Limits) -> Self {
        let max = limits.effective_file_depth();
        MemSource {
            files: files
                .iter()
                .map(|(k, v)| {
                    let json = check_depth(v, k, max).map(|()| v.clone());
                    (normalize(k), (json, Arc::from(k.as_str())))
                })
                .collect(),
        }
    }

    /// A source holding one file at app-relative `path`, displayed as `display`.
    pub fn single(path: &str, json: Value, display: &str) -> Self {
        let mut files = BTreeMap::new();
        files.insert(normalize(path), (Ok(json), Arc::from(display)));
        MemSource { files }
    }

    /// [`single`](Self::single) for a borrowed value, refused (not copied) when it nests deeper
    /// than `limits` allow.
    pub fn single_with_limits(path: &str, json: &Value, display: &str, limits: &Limits) -> Self {
        let json = check_depth(json, display, limits.effective_file_depth()).map(|()| json.clone());
        let mut files = BTreeMap::new();
        files.insert(normalize(path), (json, Arc::from(display)));
        MemSource { files }
    }
}

fn normalize(path: &str) -> String {
    path.split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/")
}

impl FileSource for MemSource {
    fn paths(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    fn display(&self, path: &str) -> Arc<str> {
        self.files
            .get(path)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| Arc::from(path))
    }

    fn read_json(&self, path: &str) -> Result<Value, Box<Diagnostic>> {
        match self.files.get(path) {
            Some((json, _)) => json.clone(),
            None => Err(Box::new(Diagnostic::error(
                "io",
                Place::file(path),
                "no such file",
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_have_line_and_column() {
        let e = parse_json("{\n  \"a\": 1,\n  \"b\" 2\n}", "x.json").unwrap_err();
        assert_eq!(e.code, "invalid-json");
        assert!(e.message.contains("line 3 column"), "{}", e.message);
        assert_eq!(&*e.place.file, "x.json");
    }
}
