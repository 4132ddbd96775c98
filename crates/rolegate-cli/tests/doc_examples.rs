//! Every example of `docs/case-format.md`, `docs/request-format.md`, `docs/coverage.md` and
//! `docs/properties.md` runs, and gives the output the document shows.
//!
//! An example is a set of fenced blocks of one document that share an `example=NAME` tag in
//! their info string:
//!
//! * ```` ```json example=NAME file=PATH ```` — a file the example needs (a case file, a rule
//!   file, a user, a request, documents); written to a fresh temporary folder;
//! * ```` ```sh example=NAME command ```` — one `rolegate ...` command line (a trailing `\`
//!   continues it), run with the temporary folder as its working directory;
//! * ```` ```text example=NAME output exit=N ```` — what the command just before it prints on
//!   stdout (on stderr with `stream=stderr`) and its exit code. A line `...` stands for any
//!   number of lines, and `...` inside a line for any text; every other line must be equal
//!   (trailing spaces aside).
//!
//! Every `json`, `jsonl` and `sh` block of the documents must belong to an example, so no
//! example goes unrun; each document must have examples, each command an output.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One fenced block: its language, its tags (`key=value` or bare), its text and its line.
#[derive(Debug)]
struct Block {
    lang: String,
    tags: BTreeMap<String, String>,
    text: String,
    line: usize,
}

impl Block {
    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// The fenced blocks of a Markdown text.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let mut words = info.split_whitespace();
                    let lang = words.next().unwrap_or("").to_string();
                    let tags = words
                        .map(|w| match w.split_once('=') {
                            Some((k, v)) => (k.to_string(), v.to_string()),
                            None => (w.to_string(), String::new()),
                        })
                        .collect();
                    open = Some(Block {
                        lang,
                        tags,
                        text: String::new(),
                        line: i + 1,
                    });
                }
            }
            Some(mut block) => {
                if trimmed.starts_with("```") {
                    out.push(block);
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                    open = Some(block);
                }
            }
        }
    }
    assert!(open.is_none(), "a fenced block is not closed");
    out
}

/// Whether `line` matches `pattern`, where `...` in the pattern stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || line.len() < first.len() + last.len() || !line.ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `lines` match `patterns`, where a pattern line `...` stands for any number of lines.
fn lines_match(patterns: &[&str], lines: &[&str]) -> bool {
    match patterns.split_first() {
        None => lines.is_empty(),
        Some((&"...", rest)) => (0..=lines.len()).any(|skip| lines_match(rest, &lines[skip..])),
        Some((p, rest)) => lines
            .split_first()
            .is_some_and(|(l, more)| line_matches(p, l) && lines_match(rest, more)),
    }
}

/// The lines of an output, trailing spaces and trailing blank lines removed.
fn output_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last() == Some(&"") {
        lines.pop();
    }
    lines
}

/// One example: its files, and its commands each with the expected output.
#[derive(Default)]
struct Example {
    files: Vec<(String, String)>,
    runs: Vec<Run>,
}

struct Run {
    args: Vec<String>,
    line: usize,
    expected: Option<Expected>,
}

struct Expected {
    exit: i32,
    stderr: bool,
    text: String,
}

fn examples(doc: &str, markdown: &str) -> BTreeMap<String, Example> {
    let mut examples: BTreeMap<String, Example> = BTreeMap::new();
    for block in blocks(markdown) {
        let Some(name) = block.tag("example") else {
            assert!(
                !matches!(block.lang.as_str(), "json" | "jsonl" | "sh"),
                "{doc}:{}: a `{}` block without `example=NAME`: every example must be run",
                block.line,
                block.lang
            );
            continue;
        };
        let example = examples.entry(name.to_string()).or_default();
        if let Some(path) = block.tag("file") {
            example.files.push((path.to_string(), block.text));
        } else if block.tags.contains_key("command") {
            let joined = block.text.replace("\\\n", " ");
            let args: Vec<String> = joined.split_whitespace().map(str::to_string).collect();
            assert_eq!(
                args.first().map(String::as_str),
                Some("rolegate"),
                "{doc}:{}: a command must start with `rolegate`",
                block.line
            );
            example.runs.push(Run {
                args: args[1..].to_vec(),
                line: block.line,
                expected: None,
            });
        } else if block.tags.contains_key("output") {
            let run = example
                .runs
                .last_mut()
                .unwrap_or_else(|| panic!("{doc}:{}: an output before any command", block.line));
            assert!(
                run.expected.is_none(),
                "{doc}:{}: two outputs for one command",
                block.line
            );
            let exit = block
                .tag("exit")
                .unwrap_or_else(|| panic!("{doc}:{}: an output needs `exit=N`", block.line))
                .parse()
                .unwrap();
            run.expected = Some(Expected {
                exit,
                stderr: block.tag("stream") == Some("stderr"),
                text: block.text,
            });
        } else {
            panic!(
                "{doc}:{}: an example block needs `file=PATH`, `command` or `output`",
                block.line
            );
        }
    }
    examples
}

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

/// Runs every example of `doc`; returns how many commands ran. Every failure is reported.
fn run_doc(doc: &str, min_examples: usize) -> usize {
    let markdown = std::fs::read_to_string(docs_dir().join(doc)).unwrap();
    let examples = examples(doc, &markdown);
    assert!(
        examples.len() >= min_examples,
        "{doc}: {} examples found, expected at least {min_examples}",
        examples.len()
    );
    let mut failures = Vec::new();
    let mut commands = 0;
    for (name, example) in &examples {
        assert!(
            !example.runs.is_empty(),
            "{doc}: example `{name}` has no command"
        );
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in &example.files {
            let target = dir.path().join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(&target, text).unwrap();
        }
        for run in &example.runs {
            commands += 1;
            let expected = run.expected.as_ref().unwrap_or_else(|| {
                panic!(
                    "{doc}:{}: example `{name}`: a command without output",
                    run.line
                )
            });
            let out = Command::new(env!("CARGO_BIN_EXE_rolegate"))
                .args(&run.args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let shown = if expected.stderr { &stderr } else { &stdout };
            let code = out.status.code().unwrap_or(-1);
            let patterns = output_lines(&expected.text);
            let ok = code == expected.exit && lines_match(&patterns, &output_lines(shown));
            if !ok {
                failures.push(format!(
                    "{doc}:{}: example `{name}`: `rolegate {}`\n  exit {code} (documented: {})\n  \
                     documented output:\n{}\n  stdout:\n{stdout}\n  stderr:\n{stderr}",
                    run.line,
                    run.args.join(" "),
                    expected.exit,
                    expected.text
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    commands
}

#[test]
fn case_format_examples_run_as_documented() {
    assert!(run_doc("case-format.md", 5) >= 5);
}

#[test]
fn coverage_examples_run_as_documented() {
    assert!(run_doc("coverage.md", 1) >= 4);
}

#[test]
fn request_format_examples_run_as_documented() {
    assert!(run_doc("request-format.md", 4) >= 4);
}

#[test]
fn properties_examples_run_as_documented() {
    assert!(run_doc("properties.md", 5) >= 6);
}

#[test]
fn the_output_matcher_is_strict_outside_ellipses() {
    assert!(lines_match(&["a", "b"], &["a", "b"]));
    assert!(!lines_match(&["a", "b"], &["a", "b", "c"]));
    assert!(!lines_match(&["a", "b"], &["a", "c"]));
    assert!(lines_match(&["a", "...", "d"], &["a", "b", "c", "d"]));
    assert!(lines_match(&["a", "...", "d"], &["a", "d"]));
    assert!(!lines_match(&["a", "...", "d"], &["a", "b"]));
    assert!(line_matches("x ... z", "x y z"));
    assert!(line_matches("x...z...", "xaaazbb"));
    assert!(!line_matches("x ... z", "x y w"));
    assert!(!line_matches("ab...ba", "aba"));
}

#[test]
fn examples_are_grouped_and_unmarked_json_is_refused() {
    let md = "```json example=e file=a.json\n{}\n```\n```sh example=e command\nrolegate \\\n  test a.json\n```\n```text example=e output exit=1\nx\n```\n";
    let ex = examples("t.md", md);
    let e = &ex["e"];
    assert_eq!(e.files, vec![("a.json".to_string(), "{}\n".to_string())]);
    assert_eq!(e.runs[0].args, ["test", "a.json"]);
    assert_eq!(e.runs[0].expected.as_ref().unwrap().exit, 1);
    let unmarked = std::panic::catch_unwind(|| examples("t.md", "```json\n{}\n```\n"));
    assert!(unmarked.is_err());
}
