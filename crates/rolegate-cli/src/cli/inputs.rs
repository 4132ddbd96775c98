//! Stage: command-line input shared by `eval`, `bench` and `test`. Input: the paths they are
//! given (`-` is stdin, for one of them at a time). Output: the file contents checked and parsed
//! — UTF-8 (an error names the byte offset and line), JSON (line and column), JSON Lines (every
//! bad line, not only the first), the request's shape (every bad key with its JSON path, such as
//! `request.functions.f[0].returns`); the user and request ([`Inputs`]) with their warnings (a
//! user without `id`); the documents to decide ([`read_items`]); the rule set with its load time
//! ([`load_app`]); and the collection with the rules that apply to it ([`collection`]: a
//! collection that no rule file names is a warning saying which default rule applies, or an error
//! with `--strict`).
//!
//! Problems with these files are exit 3 (input), with the rules exit 4, with the command line
//! exit 2 ([`super::exit`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bson::Document;
use rolegate::{
    Collection, RequestContext, RuleSet, Rules,
    testing::{
        CaseRequest, InputError, add_app_values, did_you_mean, request_context, to_document,
    },
};
use serde_json::{Map, Value};

use super::report::{Problem, plain_serde_message};
use super::{CliError, Exit};

/// The file argument that means stdin.
pub const STDIN: &str = "-";

/// How messages name `path`: `<stdin>` for `-`.
pub fn shown(path: &Path) -> String {
    if is_stdin(path) {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN
}

/// Refuses `-` (stdin) for more than one of `args` (`--user`, `--request`, ...): exit 2.
pub fn one_stdin(args: &[(&str, Option<&Path>)]) -> Result<(), CliError> {
    let given: Vec<&str> = args
        .iter()
        .filter(|(_, p)| p.is_some_and(is_stdin))
        .map(|(name, _)| *name)
        .collect();
    if given.len() > 1 {
        return Err(CliError::usage(
            "stdin-twice",
            format!(
                "`-` (stdin) is given for {}; stdin can be read for one of them only",
                given.join(" and ")
            ),
        ));
    }
    Ok(())
}

/// The bytes of `path` (stdin for `-`).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, CliError> {
    let file = shown(path);
    let result = if is_stdin(path) {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map(|_| bytes)
    } else {
        std::fs::read(path)
    };
    result.map_err(|e| {
        CliError::input(Problem::error("io", format!("cannot read: {e}")).in_file(file))
    })
}

/// `bytes` as text; invalid UTF-8 is an error naming the byte offset (counted from
/// `offset`, the position of `bytes` in the file) and the line.
fn utf8<'a>(
    bytes: &'a [u8],
    file: &str,
    offset: usize,
    line: usize,
) -> Result<&'a str, Box<Problem>> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = line
            + bytes
                .get(..at)
                .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        Box::new(
            Problem::error(
                "invalid-utf8",
                format!("not valid UTF-8 at byte {}", offset + at),
            )
            .in_file(file)
            .at_line(line)
            .with_hint("input files are UTF-8 JSON; re-save the file as UTF-8"),
        )
    })
}

/// Reads a whole text file (stdin for `-`); invalid UTF-8 is an error with its byte offset.
pub fn read_text(path: &Path) -> Result<String, CliError> {
    let bytes = read_bytes(path)?;
    let text = utf8(&bytes, &shown(path), 0, 1).map_err(|p| CliError::input(*p))?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text).to_string())
}

/// A JSON syntax error of `file` as a problem with its line and column.
fn json_problem(e: &serde_json::Error, file: &str, line: Option<usize>) -> Problem {
    let detail = plain_serde_message(&e.to_string(), "");
    let problem = Problem::error("invalid-json", format!("not valid JSON: {detail}")).in_file(file);
    match line {
        Some(n) => problem.at_line(n),
        None => Problem {
            message: format!(
                "not valid JSON at line {} column {}: {detail}",
                e.line(),
                e.column()
            ),
            ..problem.at_line(e.line())
        },
    }
}

/// Reads a JSON file holding one value (an empty file is an error).
pub fn read_json(path: &Path) -> Result<Value, CliError> {
    let text = read_text(path)?;
    read_json_text(&text, &shown(path))
}

/// Parses the text of `file`, a JSON file holding one value (an empty file is an error).
pub fn read_json_text(text: &str, file: &str) -> Result<Value, CliError> {
    if text.trim().is_empty() {
        return Err(CliError::input(
            Problem::error("empty-input", "the file is empty").in_file(file),
        ));
    }
    serde_json::from_str(text).map_err(|e| CliError::input(json_problem(&e, file, None)))
}

/// Reads a JSON Lines file: one JSON value per non-blank line, with its 1-based line number.
/// Every bad line is reported (invalid UTF-8 with its byte offset, invalid JSON), not only the
/// first.
pub fn read_json_lines(path: &Path) -> Result<Vec<(usize, Value)>, CliError> {
    let bytes = read_bytes(path)?;
    json_lines(&bytes, &shown(path))
}

/// The JSON Lines of `bytes`, the content of `file` (as [`read_json_lines`] reads them).
pub fn json_lines(bytes: &[u8], file: &str) -> Result<Vec<(usize, Value)>, CliError> {
    let (values, problems) = json_lines_and_problems(bytes, file);
    if !problems.is_empty() {
        return Err(CliError::new(Exit::Input, problems));
    }
    if values.is_empty() {
        return Err(CliError::input(
            Problem::error("empty-input", "holds no JSON lines").in_file(file),
        ));
    }
    Ok(values)
}

/// The values of the good lines of `bytes` (the content of `file`), one JSON value per
/// non-blank line with its 1-based line number, and a problem for each bad line (invalid UTF-8
/// with its byte offset, invalid JSON), so that a caller can check the good lines further and
/// report every bad line at once.
pub fn json_lines_and_problems(bytes: &[u8], file: &str) -> (Vec<(usize, Value)>, Vec<Problem>) {
    let bytes = bytes
        .strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(bytes);
    let mut values = Vec::new();
    let mut problems = Vec::new();
    let mut offset = 0;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let start = offset;
        offset += raw.len() + 1;
        let text = match utf8(raw, file, start, line) {
            Ok(t) => t,
            Err(p) => {
                problems.push(*p);
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(text) {
            Ok(v) => values.push((line, v)),
            Err(e) => problems.push(json_problem(&e, file, Some(line))),
        }
    }
    (values, problems)
}

/// The user and the request of one command.
pub struct Inputs {
    user: Value,
    user_path: PathBuf,
    request: Option<CaseRequest>,
    request_path: Option<PathBuf>,
    /// What is suspicious about them (a user without `id`).
    pub warnings: Vec<Problem>,
}

impl Inputs {
    /// Reads the user file and the request file (the same object as a conformance case's
    /// `request`); every bad key of the request is reported with its JSON path.
    pub fn read(user: &Path, request: Option<&Path>) -> Result<Inputs, CliError> {
        let user_value = read_json(user)?;
        let mut warnings = Vec::new();
        match &user_value {
            Value::Object(m) if !m.contains_key("id") => warnings.push(
                Problem::warning(
                    "user-without-id",
                    "the user has no `id`: `%%user.id` is missing, so no rule that compares it \
                     matches",
                )
                .in_file(shown(user))
                .with_hint("add `\"id\": \"...\"` (App Services user ids are strings)"),
            ),
            Value::Object(_) => {}
            other => {
                return Err(CliError::input(
                    Problem::error(
                        "invalid-input",
                        format!("expected the user object, got {}", kind(other)),
                    )
                    .in_file(shown(user))
                    .with_hint(
                        "`{\"id\": ..., \"type\": \"normal\", \"data\": {}, \"custom_data\": {}}`",
                    ),
                ));
            }
        }
        let parsed = match request {
            Some(path) => Some(read_request(path)?),
            None => None,
        };
        Ok(Inputs {
            user: user_value,
            user_path: user.to_path_buf(),
            request: parsed,
            request_path: request.map(Path::to_path_buf),
            warnings,
        })
    }

    /// The request, when a request file was given.
    pub fn request(&self) -> Option<&CaseRequest> {
        self.request.as_ref()
    }

    /// The request context for `set`: the user, the request, and the app's values and
    /// environment; the system user (every rule bypassed) only when `system` (the `--system`
    /// flag), never because the user file says `"type": "system"`. An error names the file and
    /// JSON path it comes from.
    pub fn context(
        &self,
        set: &RuleSet,
        search: bool,
        system: bool,
    ) -> Result<RequestContext, CliError> {
        let mut ctx = request_context(Some(&self.user), self.request.as_ref(), search)
            .map_err(|e| self.input_error(e))?
            .with_system(system);
        add_app_values(set, &mut ctx, self.request.as_ref()).map_err(|e| {
            let mut p = Problem::error("invalid-request", e.to_string());
            if let Some(path) = &self.request_path {
                p = p.in_file(shown(path));
            }
            CliError::input(p)
        })?;
        Ok(ctx)
    }

    fn input_error(&self, e: InputError) -> CliError {
        let file = if e.path == "user" || e.path.starts_with("user.") {
            Some(&self.user_path)
        } else {
            self.request_path.as_ref()
        };
        let mut p = Problem::error("invalid-input", e.message).at_path(e.path);
        if let Some(file) = file {
            p = p.in_file(shown(file));
        }
        CliError::input(p)
    }
}

/// Reads and checks a request file: its shape first (every problem with its JSON path, no Rust
/// type names), then the parse.
fn read_request(path: &Path) -> Result<CaseRequest, CliError> {
    let value = read_json(path)?;
    let file = shown(path);
    let mut problems = Vec::new();
    check_request(&value, "request", &mut problems);
    if !problems.is_empty() {
        return Err(CliError::new(
            Exit::Input,
            problems
                .into_iter()
                .map(|(at, message, hint)| {
                    let p = Problem::error("invalid-request", message)
                        .in_file(file.clone())
                        .at_path(at);
                    match hint {
                        Some(h) => p.with_hint(h),
                        None => p,
                    }
                })
                .collect(),
        ));
    }
    serde_json::from_value::<CaseRequest>(value).map_err(|e| {
        CliError::input(
            Problem::error(
                "invalid-request",
                plain_serde_message(&e.to_string(), "a valid request"),
            )
            .in_file(file)
            .at_path("request"),
        )
    })
}

/// `a string`, `an object`, ... for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A problem found in a request: JSON path, message, hint.
type Found = (String, String, Option<String>);

/// The keys of a request file.
pub const REQUEST_KEYS: [&str; 11] = [
    "operation",
    "values",
    "environment",
    "http",
    "args",
    "action",
    "partition",
    "functions",
    "client_projection",
    "collection_documents",
    "mid_session_custom_data_change",
];

const OPERATION_KEYS: [&str; 6] = [
    "kind",
    "query",
    "update",
    "pipeline",
    "projection",
    "upsert",
];
const OPERATION_KINDS: [&str; 9] = [
    "find",
    "count",
    "aggregate",
    "insert",
    "update",
    "replace",
    "delete",
    "upsert",
    "findOneAndUpdate",
];
const MOCK_FORMS: &str =
    "a mock `{\"args\": [...], \"returns\": ...}` or a list of them (one per argument list)";

/// Every key of `m` not in `known`, with a did-you-mean hint.
fn unknown_keys(m: &Map<String, Value>, known: &[&str], at: &str, out: &mut Vec<Found>) {
    for key in m.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        let hint = match did_you_mean(key, known) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "known keys: {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        out.push((
            format!("{at}.{key}"),
            format!("unknown key `{key}`"),
            Some(hint),
        ));
    }
}

fn expect(v: &Value, ok: bool, what: &str, at: &str, out: &mut Vec<Found>) -> bool {
    if !ok {
        out.push((
            at.to_string(),
            format!("expected {what}, got {}", kind(v)),
            None,
        ));
    }
    ok
}

/// Checks the shape of a request object at JSON path `at`, collecting every problem.
pub fn check_request(v: &Value, at: &str, out: &mut Vec<Found>) {
    let Some(m) = v.as_object() else {
        expect(v, false, "an object (the request)", at, out);
        return;
    };
    unknown_keys(m, &REQUEST_KEYS, at, out);
    let path = |k: &str| format!("{at}.{k}");
    let object_or_null = |v: &Value| v.is_object() || v.is_null();
    for (key, value) in m {
        match key.as_str() {
            "operation" => check_operation(value, &path(key), out),
            "values" | "http" => {
                expect(value, value.is_object(), "an object", &path(key), out);
            }
            "client_projection" => {
                expect(value, object_or_null(value), "an object", &path(key), out);
            }
            "action" => {
                expect(value, value.is_string(), "a string", &path(key), out);
            }
            "collection_documents" => {
                expect(
                    value,
                    value.is_array(),
                    "an array of documents",
                    &path(key),
                    out,
                );
            }
            "environment" => {
                let at = path(key);
                if let Some(env) = value.as_object() {
                    unknown_keys(env, &["tag", "values"], &at, out);
                    if let Some(tag) = env.get("tag") {
                        expect(
                            tag,
                            tag.is_string() || tag.is_null(),
                            "a string",
                            &format!("{at}.tag"),
                            out,
                        );
                    }
                } else {
                    expect(
                        value,
                        false,
                        "an object `{\"tag\": ..., \"values\": {...}}`",
                        &at,
                        out,
                    );
                }
            }
            "functions" => check_functions(value, &path(key), out),
            _ => {}
        }
    }
}

fn check_operation(v: &Value, at: &str, out: &mut Vec<Found>) {
    let Some(m) = v.as_object() else {
        expect(v, false, "an object `{\"kind\": \"find\", ...}`", at, out);
        return;
    };
    unknown_keys(m, &OPERATION_KEYS, at, out);
    match m.get("kind") {
        None => out.push((
            format!("{at}.kind"),
            "missing key `kind`".to_string(),
            Some(format!("one of: {}", OPERATION_KINDS.join(", "))),
        )),
        Some(Value::String(s)) if OPERATION_KINDS.contains(&s.as_str()) => {}
        Some(Value::String(s)) => out.push((
            format!("{at}.kind"),
            format!("unknown operation kind `{s}`"),
            Some(match did_you_mean(s, &OPERATION_KINDS) {
                Some(k) => format!("did you mean `{k}`?"),
                None => format!("one of: {}", OPERATION_KINDS.join(", ")),
            }),
        )),
        Some(other) => {
            expect(other, false, "a string", &format!("{at}.kind"), out);
        }
    }
    for key in ["query", "projection"] {
        if let Some(q) = m.get(key) {
            expect(
                q,
                q.is_object() || q.is_null(),
                "an object",
                &format!("{at}.{key}"),
                out,
            );
        }
    }
    if let Some(u) = m.get("update") {
        let ok = u.is_object() || u.is_array() || u.is_null();
        expect(
            u,
            ok,
            "an object or a pipeline",
            &format!("{at}.update"),
            out,
        );
    }
    if let Some(u) = m.get("upsert") {
        expect(u, u.is_boolean(), "a boolean", &format!("{at}.upsert"), out);
    }
    if let Some(p) = m.get("pipeline") {
        let at = format!("{at}.pipeline");
        if let Some(stages) = p.as_array() {
            for (i, stage) in stages.iter().enumerate() {
                expect(
                    stage,
                    stage.is_object(),
                    "a stage object",
                    &format!("{at}[{i}]"),
                    out,
                );
            }
        } else {
            expect(p, false, "an array of stages", &at, out);
        }
    }
}

fn check_functions(v: &Value, at: &str, out: &mut Vec<Found>) {
    let Some(m) = v.as_object() else {
        expect(v, false, "an object: function name → mocks", at, out);
        return;
    };
    for (name, mocks) in m {
        let at = if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            format!("{at}.{name}")
        } else {
            format!("{at}[{name:?}]")
        };
        match mocks {
            Value::Array(list) => {
                for (i, mock) in list.iter().enumerate() {
                    check_mock(mock, &format!("{at}[{i}]"), out);
                }
            }
            Value::Object(_) => check_mock(mocks, &at, out),
            other => out.push((
                at,
                format!("expected {MOCK_FORMS}, got {}", kind(other)),
                None,
            )),
        }
    }
}

fn check_mock(v: &Value, at: &str, out: &mut Vec<Found>) {
    let Some(m) = v.as_object() else {
        out.push((
            at.to_string(),
            format!("expected {MOCK_FORMS}, got {}", kind(v)),
            None,
        ));
        return;
    };
    unknown_keys(m, &["args", "returns"], at, out);
    if !m.contains_key("returns") {
        out.push((
            format!("{at}.returns"),
            "missing key `returns` (the result of the call)".to_string(),
            None,
        ));
    }
    if let Some(args) = m.get("args") {
        expect(
            args,
            args.is_array(),
            "an array (the arguments)",
            &format!("{at}.args"),
            out,
        );
    }
}

/// One document to decide, with its label (`DOC.json`, `DOCS.jsonl line 3`).
pub struct Item {
    pub label: String,
    pub doc: Document,
    /// The update pre-image, when one was given.
    pub prev: Option<Document>,
}

/// Reads the documents to decide: one (`one`, a JSON file) or many (`many`, JSON Lines), and the
/// update pre-images (`prev`: a JSON file with `one`, JSON Lines paired line by line with
/// `many`). Every line that is not a document is reported, not only the first.
pub fn read_items(
    one: Option<&Path>,
    many: Option<&Path>,
    prev: Option<&Path>,
) -> Result<Vec<Item>, CliError> {
    match (one, many) {
        (Some(path), None) => {
            let file = shown(path);
            let doc = document(&read_json(path)?, &file, None).map_err(|p| CliError::input(*p))?;
            let prev = match prev {
                Some(p) => Some(
                    document(&read_json(p)?, &shown(p), None).map_err(|p| CliError::input(*p))?,
                ),
                None => None,
            };
            Ok(vec![Item {
                label: file,
                doc,
                prev,
            }])
        }
        (None, Some(path)) => {
            let file = shown(path);
            let lines = read_json_lines(path)?;
            let prevs = match prev {
                Some(p) => {
                    let prevs = read_json_lines(p)?;
                    if prevs.len() != lines.len() {
                        return Err(CliError::input(
                            Problem::error(
                                "unpaired-pre-images",
                                format!(
                                    "`{file}` holds {} documents but `{}` holds {} pre-images; \
                                     they are paired line by line",
                                    lines.len(),
                                    shown(p),
                                    prevs.len()
                                ),
                            )
                            .in_file(shown(p)),
                        ));
                    }
                    Some((shown(p), prevs))
                }
                None => None,
            };
            let mut problems = Vec::new();
            let mut items = Vec::with_capacity(lines.len());
            for (i, (line, v)) in lines.iter().enumerate() {
                let doc = document(v, &file, Some(*line));
                let prev = prevs.as_ref().and_then(|(pfile, prevs)| {
                    prevs
                        .get(i)
                        .map(|(pline, pv)| document(pv, pfile, Some(*pline)))
                });
                match (doc, prev) {
                    (Ok(doc), None) => items.push(Item {
                        label: format!("{file} line {line}"),
                        doc,
                        prev: None,
                    }),
                    (Ok(doc), Some(Ok(prev))) => items.push(Item {
                        label: format!("{file} line {line}"),
                        doc,
                        prev: Some(prev),
                    }),
                    (doc, prev) => {
                        problems.extend(doc.err().map(|p| *p));
                        problems.extend(prev.and_then(Result::err).map(|p| *p));
                    }
                }
            }
            if problems.is_empty() {
                Ok(items)
            } else {
                Err(CliError::new(Exit::Input, problems))
            }
        }
        _ => Err(CliError::usage(
            "usage",
            "give exactly one of `--document` and `--documents`",
        )),
    }
}

/// One document (Extended JSON allowed) of `file`, on `line` for JSON Lines.
fn document(v: &Value, file: &str, line: Option<usize>) -> Result<Document, Box<Problem>> {
    to_document(v, "").map_err(|e| {
        let p = Problem::error("invalid-document", e.message).in_file(file);
        Box::new(match line {
            Some(n) => p.at_line(n),
            None => p,
        })
    })
}

/// Loads and validates the app directory or rule file at `path`, with the time it took; every
/// diagnostic of a set that does not load is in the error (exit 4).
pub fn load_app(path: &Path) -> Result<(RuleSet, Duration), CliError> {
    if !path.exists() {
        return Err(CliError::new(
            Exit::Rules,
            vec![
                Problem::error("io", "cannot read: no such file or directory")
                    .in_file(path.display().to_string()),
            ],
        ));
    }
    let started = Instant::now();
    let set = rolegate::RuleSet::load(path, &rolegate::LoadOptions::default()).map_err(|e| {
        let mut err = CliError::rules(&e.diagnostics.0);
        err.problems.push(
            Problem::error(
                "rules-do-not-load",
                format!(
                    "the rules do not load ({} errors)",
                    e.diagnostics.errors().count()
                ),
            )
            .in_file(path.display().to_string())
            .with_hint(format!(
                "`rolegate check {}` lists every problem",
                path.display()
            )),
        );
        err
    })?;
    Ok((set, started.elapsed()))
}

/// Which rules govern a collection (printed by `bench`, and said by the warning of a collection
/// that no rule file names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesSource {
    /// The collection's own rule file.
    Collection,
    /// The data source's default rule.
    Default,
    /// No role at all: every read and write is denied.
    None,
}

impl RulesSource {
    /// `collection`, `default`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            RulesSource::Collection => "collection",
            RulesSource::Default => "default",
            RulesSource::None => "none",
        }
    }
}

/// The collection `namespace` (`db.coll` or `data_source/db.coll`) of `rules`, the rules that
/// govern it, and, when no rule file names it, a warning saying which rules apply (the default
/// rule of its data source, or none: everything denied) — an error (exit 2) with `strict`. A
/// namespace that names no data source, or could be in several, is exit 2.
pub fn collection(
    rules: &Rules,
    namespace: &str,
    strict: bool,
) -> Result<(Collection, RulesSource, Option<Problem>), CliError> {
    let coll = rules
        .collection(namespace)
        .map_err(|e| CliError::usage("unknown-collection", e.to_string()))?;
    let set = rules.rule_set();
    let (ds_name, ns) = match namespace.split_once('/') {
        Some((ds, ns)) => (Some(ds), ns),
        None => (None, namespace),
    };
    let (db, name) = ns.split_once('.').unwrap_or((ns, ""));
    let key = (db.to_string(), name.to_string());
    let ds = match ds_name {
        Some(d) => set.data_sources.get(d),
        None => set
            .data_sources
            .values()
            .find(|d| d.collections.contains_key(&key))
            .or_else(|| set.data_sources.values().next()),
    };
    let policy = coll.policy();
    let source = if policy.roles.is_empty() {
        RulesSource::None
    } else if policy.role_source == rolegate::rules::RoleSource::Default {
        RulesSource::Default
    } else {
        RulesSource::Collection
    };
    let Some(ds) = ds.filter(|d| !d.collections.contains_key(&key)) else {
        return Ok((coll, source, None));
    };
    let named: Vec<String> = ds
        .collections
        .keys()
        .map(|(d, c)| format!("{d}.{c}"))
        .collect();
    let named_refs: Vec<&str> = named.iter().map(String::as_str).collect();
    let hint = match did_you_mean(ns, &named_refs) {
        Some(n) => format!("did you mean `{n}`?"),
        None if named.is_empty() => "no rule file names any collection".to_string(),
        None => format!("the rule files name {}", named_refs.join(", ")),
    };
    let (message, file) = match &ds.default_rule {
        Some(d) if !d.roles.is_empty() => (
            format!(
                "no rule file names `{ns}`: the default rule of data source `{}` applies",
                ds.name
            ),
            Some(d.place.file.to_string()),
        ),
        Some(d) => (
            format!(
                "no rule file names `{ns}`, and the default rule of data source `{}` has no \
                 roles: no role applies, every read and write is denied",
                ds.name
            ),
            Some(d.place.file.to_string()),
        ),
        None => (
            format!(
                "no rule file names `{ns}`, and data source `{}` has no default rule: no role \
                 applies, every read and write is denied",
                ds.name
            ),
            None,
        ),
    };
    let mut problem = Problem::warning("collection-not-named", message).with_hint(hint);
    if let Some(f) = file.filter(|f| !f.is_empty()) {
        problem = problem.in_file(f);
    }
    if strict {
        problem.severity = super::report::Severity::Error;
        problem.message.push_str(" (refused by `--strict`)");
        return Err(CliError::new(Exit::Usage, vec![problem]));
    }
    Ok((coll, source, Some(problem)))
}
