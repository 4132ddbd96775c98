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

/// Deepest directory nesting walked.
pub const MAX_DEPTH: usize = 32;

/// A set of app files.
pub trait FileSource {
    /// Every file's app-relative path (`/`-separated), sorted.
    fn paths(&self) -> Vec<String>;
    /// How diagnostics name the file at `path`.
    fn display(&self, path: &str) -> Arc<str>;
    /// The parsed JSON of the file at `path`.
    fn read_json(&self, path: &str) -> Result<Value, Box<Diagnostic>>;
    /// [`read_json`](Self::read_json), with the warnings about the file's text: a key given
    /// twice in one object ([`duplicate_keys`]), which the parsed value cannot show. A source
    /// without text (in-memory JSON) has none.
    fn read_json_checked(&self, path: &str) -> Result<(Value, Vec<Diagnostic>), Box<Diagnostic>> {
        self.read_json(path).map(|v| (v, Vec::new()))
    }
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
///
/// # Hostile directories (the walk and the reads always end)
///
/// * **No directory symlink is followed** (a warning `symlink-not-followed` names it): two
///   links to `.` made the old walk exponential, and a link may lead out of the app. A symlink
///   to a file is listed like a file; whatever it points to is checked when it is read.
/// * **Only regular files are read**: the file type is checked from the metadata *before* the
///   file is opened (opening a FIFO blocks until a writer comes; a device may never end), and
///   again on the open handle; anything else is an `io` error naming the file. Files that no
///   rule reads (hosting assets, ...) are listed but never opened.
/// * **Bounded**: the walk stops after [`Limits::max_files`] entries, and a file larger than
///   [`Limits::max_file_bytes`] is refused before it is read (reading never goes past the
///   limit even if the file grows meanwhile); both are `limit-exceeded` errors naming the
///   entry. Directories nested deeper than [`MAX_DEPTH`] levels are an error too.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
    paths: Vec<String>,
    /// [`Limits::max_file_depth`] (effective) of every file read.
    max_depth: usize,
    /// [`Limits::max_file_bytes`] of every file read.
    max_bytes: u64,
    /// [`Limits::max_files`]: how many entries the walk may meet.
    max_entries: usize,
    /// Entries met so far by the walk.
    entries: usize,
    /// Problems met while walking: unreadable directories, directory symlinks (warnings), a
    /// walk cut short by a limit.
    pub walk_errors: Vec<Diagnostic>,
}

impl DirSource {
    /// Walks `root` once; files are refused when they nest deeper than `limits` allow, when they
    /// are bigger than [`Limits::max_file_bytes`], and the walk stops after
    /// [`Limits::max_files`] entries.
    pub fn with_limits(root: &Path, limits: &Limits) -> Self {
        let mut source = DirSource {
            root: root.to_path_buf(),
            paths: Vec::new(),
            max_depth: limits.effective_file_depth(),
            max_bytes: limits.max_file_bytes,
            max_entries: limits.max_files,
            entries: 0,
            walk_errors: Vec::new(),
        };
        let mut paths = Vec::new();
        // `false`: the walk was cut short (its error is recorded).
        let _complete = source.walk(root, "", 0, &mut paths);
        paths.sort();
        source.paths = paths;
        source
    }

    /// Walks `dir` (app-relative `prefix`); `false` when the walk must stop (too many entries).
    fn walk(&mut self, dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) -> bool {
        let shown = if prefix.is_empty() { "." } else { prefix };
        if depth > MAX_DEPTH {
            self.walk_errors.push(Diagnostic::error(
                LIMIT_EXCEEDED,
                Place::file(shown),
                format!("directories nested more than {MAX_DEPTH} levels deep are not read"),
            ));
            return true;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.walk_errors.push(Diagnostic::error(
                    "io",
                    Place::file(dir.display().to_string()),
                    format!("cannot read directory: {e}"),
                ));
                return true;
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
            self.entries += 1;
            if self.entries > self.max_entries {
                self.walk_errors.push(
                    Diagnostic::error(
                        LIMIT_EXCEEDED,
                        Place::file(rel),
                        format!(
                            "the app directory holds more than {} files and directories; the \
                             walk stopped here",
                            self.max_entries
                        ),
                    )
                    .with_hint("raise `max_files` in the limits if the app is really this big"),
                );
                return false;
            }
            // `file_type` does not follow symlinks.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !self.walk(&entry.path(), &rel, depth + 1, out) {
                    return false;
                }
            } else if kind.is_symlink() && entry.path().is_dir() {
                self.walk_errors.push(Diagnostic::warning(
                    "symlink-not-followed",
                    Place::file(rel),
                    "a symbolic link to a directory is not followed",
                ));
            } else {
                // Regular files, symlinks to anything but a directory, and special files:
                // listed; only the files a rule reads are opened, after their type is checked.
                out.push(rel);
            }
        }
        true
    }
}

/// The text of the rule file at `path` (shown as `shown`), read only when it is a regular file
/// (checked before opening it, following symlinks, and again on the open handle) of at most
/// `max_bytes` bytes. Never blocks on a FIFO or reads a device without end.
pub fn read_regular_file(
    path: &Path,
    shown: &str,
    max_bytes: u64,
) -> Result<String, Box<Diagnostic>> {
    use std::io::Read;
    let io_error = |message: String| Box::new(Diagnostic::error("io", Place::file(shown), message));
    let not_regular = || io_error("not a regular file (only regular files are read)".to_string());
    let too_big = |size: String| {
        Box::new(
            Diagnostic::error(
                LIMIT_EXCEEDED,
                Place::file(shown),
                format!("the file is {size} bytes, more than the {max_bytes} allowed"),
            )
            .with_hint(
                "rule files are a few kilobytes; raise `max_file_bytes` in the limits if needed",
            ),
        )
    };
    let metadata =
        std::fs::metadata(path).map_err(|e| io_error(format!("cannot read file: {e}")))?;
    if !metadata.is_file() {
        return Err(not_regular());
    }
    if metadata.len() > max_bytes {
        return Err(too_big(metadata.len().to_string()));
    }
    let file = std::fs::File::open(path).map_err(|e| io_error(format!("cannot read file: {e}")))?;
    // The path may have been swapped between the check and the open.
    match file.metadata() {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(not_regular()),
        Err(e) => return Err(io_error(format!("cannot read file: {e}"))),
    }
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(format!("cannot read file: {e}")))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_big(format!("more than {max_bytes}")));
    }
    String::from_utf8(bytes)
        .map_err(|e| Box::new(invalid_utf8(e.as_bytes(), e.utf8_error(), shown)))
}

/// A file that is not UTF-8: an `invalid-utf8` error naming the byte offset and line of the first
/// bad byte (the same kind of failure as a JSON syntax error: the file is not a rule file).
fn invalid_utf8(bytes: &[u8], e: std::str::Utf8Error, shown: &str) -> Diagnostic {
    let at = e.valid_up_to();
    let line = 1 + bytes
        .get(..at)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
    Diagnostic::error(
        "invalid-utf8",
        Place::file(shown),
        format!("not valid UTF-8 at byte {at} (line {line})"),
    )
    .with_hint("rule files are UTF-8 JSON; re-save the file as UTF-8")
}

impl FileSource for DirSource {
    fn paths(&self) -> Vec<String> {
        self.paths.clone()
    }

    fn display(&self, path: &str) -> Arc<str> {
        Arc::from(path)
    }

    fn read_json(&self, path: &str) -> Result<Value, Box<Diagnostic>> {
        self.read_json_checked(path).map(|(v, _)| v)
    }

    fn read_json_checked(&self, path: &str) -> Result<(Value, Vec<Diagnostic>), Box<Diagnostic>> {
        let text = read_regular_file(&self.root.join(path), path, self.max_bytes)?;
        let value = parse_json_with_depth(&text, path, self.max_depth)?;
        Ok((value, duplicate_keys(&text, path)))
    }
}

/// One open object or array of the duplicate-key scan.
enum Frame {
    /// An object: the keys seen so far (with the line of each), the key whose value is being
    /// read, and whether the next string is a key.
    Object {
        keys: std::collections::HashMap<String, usize>,
        current: Option<String>,
        expect_key: bool,
    },
    /// An array: the index of the element being read.
    Array { index: usize },
}

/// Every key given twice in one object of the JSON `text` (already parsed successfully: the
/// scan trusts its syntax): a `duplicate-key` warning at the JSON path of the later key, naming
/// the lines of both (JSON parsers keep the last one silently; App Services refuses the file).
///
/// One pass over the bytes without recursion (an explicit stack, given up past [`TEXT_DEPTH`]
/// levels, which the parser refuses anyway); each key is decoded and hashed once.
pub fn duplicate_keys(text: &str, file: &str) -> Vec<Diagnostic> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut line = 1usize;
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\n' => line += 1,
            b'{' | b'[' => {
                if stack.len() > TEXT_DEPTH {
                    return found;
                }
                stack.push(if b == b'{' {
                    Frame::Object {
                        keys: std::collections::HashMap::new(),
                        current: None,
                        expect_key: true,
                    }
                } else {
                    Frame::Array { index: 0 }
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b':' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = false;
                }
            }
            b'"' => {
                let start = i;
                let mut escaped = false;
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        b'\\' => {
                            escaped = true;
                            i += 1;
                        }
                        b'"' => break,
                        _ => {}
                    }
                    i += 1;
                }
                let is_key = matches!(
                    stack.last(),
                    Some(Frame::Object {
                        expect_key: true,
                        ..
                    })
                );
                if is_key {
                    let raw = text.get(start + 1..i).unwrap_or_default();
                    let key = if escaped {
                        text.get(start..=i)
                            .and_then(|quoted| serde_json::from_str::<String>(quoted).ok())
                            .unwrap_or_else(|| raw.to_string())
                    } else {
                        raw.to_string()
                    };
                    let first = match stack.last() {
                        Some(Frame::Object { keys, .. }) => keys.get(&key).copied(),
                        _ => None,
                    };
                    if let Some(first) = first {
                        let place = duplicate_place(&stack, file, &key);
                        found.push(
                            Diagnostic::warning(
                                "duplicate-key",
                                place,
                                format!(
                                    "key `{key}` is given twice in this object, at line {first} \
                                     and at line {line}; the last one is used"
                                ),
                            )
                            .with_hint("remove one of them (App Services refuses such a file)"),
                        );
                    }
                    if let Some(Frame::Object { keys, current, .. }) = stack.last_mut() {
                        keys.entry(key.clone()).or_insert(line);
                        *current = Some(key);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The place of the key `key` of the innermost object of `stack`.
fn duplicate_place(stack: &[Frame], file: &str, key: &str) -> Place {
    let mut place = Place::file(file);
    let outer = stack.len().saturating_sub(1);
    for frame in stack.get(..outer).unwrap_or_default() {
        place = match frame {
            Frame::Object {
                current: Some(k), ..
            } => place.key(k),
            Frame::Object { current: None, .. } => place,
            Frame::Array { index } => place.index(*index),
        };
    }
    place.key(key)
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
    fn duplicate_keys_are_found_with_both_lines_and_the_path() {
        let text = "{\n  \"roles\": [\n    {\"name\": \"a\",\n     \"read\": true,\n     \"read\": false}\n  ],\n  \"x\": {\"re\\u0061d\": 1, \"read\": 2, \"s\": \"{\\\"k\\\": [\"}\n}";
        assert!(parse_json(text, "f.json").is_ok());
        let found = duplicate_keys(text, "f.json");
        let paths: Vec<&str> = found.iter().map(|d| d.place.json_path.as_str()).collect();
        assert_eq!(paths, ["roles[0].read", "x.read"], "{found:?}");
        assert!(
            found[0].message.contains("line 4 and at line 5"),
            "{}",
            found[0].message
        );
        assert_eq!(found[0].code, "duplicate-key");
        assert!(
            duplicate_keys("{\"a\": {\"a\": 1}, \"b\": [{\"a\": 1}, {\"a\": 2}]}", "f").is_empty()
        );
    }

    #[test]
    fn duplicate_key_scan_is_iterative_and_linear() {
        // Deep nesting does not recurse; many keys are each hashed once.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(duplicate_keys(&deep, "f").is_empty());
        let wide: Vec<String> = (0..50_000).map(|i| format!("\"k{i}\": {i}")).collect();
        let text = format!("{{{}, \"k7\": 0}}", wide.join(", "));
        let found = duplicate_keys(&text, "f");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].place.json_path, "k7");
    }

    #[test]
    fn json_errors_have_line_and_column() {
        let e = parse_json("{\n  \"a\": 1,\n  \"b\" 2\n}", "x.json").unwrap_err();
        assert_eq!(e.code, "invalid-json");
        assert!(e.message.contains("line 3 column"), "{}", e.message);
        assert_eq!(&*e.place.file, "x.json");
    }
}
