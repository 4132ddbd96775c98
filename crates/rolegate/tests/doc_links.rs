//! The repository stands on its own: its documentation links resolve inside it, and no file
//! refers to a path outside it.
//!
//! * Every relative Markdown link (`[text](path)`, `[text](path#anchor)`, `[label]: path`) of
//!   `README.md`, `ARCHITECTURE.md`, `docs/*.md`, `benches/**/*.md`, `fuzz/README.md` and `examples/**/*.md` names a
//!   file or folder of the repository, and an anchor into a Markdown file names one of its
//!   headings.
//! * Every path the same documents quote in backticks that starts with a folder of the
//!   repository's layout (`crates/`, `src/`, `tests/`, `benches/`, `docs/`, `examples/`,
//!   `proptest-regressions/`) exists, from the repository root or from the document's folder
//!   (so `src/...` left over from before the move to `crates/` is caught).
//! * No file of the repository (the files `git ls-files` lists, or every file outside `target/`
//!   and `.git/` when git is not available) mentions the shared checkout beside the repository
//!   or the machine's work folder, except the code that reads the real-rules corpus from there
//!   ([`ALLOWED`]).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files that may name the outside checkout: the code that reads the corpus from it, and the CI
/// script that checks the checkout is there.
const ALLOWED: &[&str] = &[
    "crates/rolegate/tests/corpus_support/mod.rs",
    "crates/rolegate/benches/workloads/mod.rs",
    ".ci/run",
];

/// What no other file may mention (built so that this file does not mention them itself).
fn outside_needles() -> [String; 2] {
    [format!("..{}shared", '/'), format!("{}work{}", '/', '/')]
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The Markdown documents whose links are checked, relative to the root.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![
        PathBuf::from("README.md"),
        PathBuf::from("ARCHITECTURE.md"),
        PathBuf::from("fuzz/README.md"),
    ];
    for (folder, deep) in [("docs", false), ("benches", true), ("examples", true)] {
        walk(root, &root.join(folder), deep, &mut |rel| {
            if rel.extension().is_some_and(|e| e == "md") {
                out.push(rel.to_path_buf());
            }
        });
    }
    out.sort();
    out.dedup();
    out
}

/// Calls `f` with the root-relative path of every file under `dir` (recursively when `deep`),
/// skipping `target` and hidden folders.
fn walk(root: &Path, dir: &Path, deep: bool, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if deep && name != "target" && !name.starts_with('.') {
                walk(root, &path, deep, f);
            }
        } else {
            f(path.strip_prefix(root).unwrap());
        }
    }
}

/// The text of a Markdown document outside fenced code blocks, line by line (fenced lines are
/// blank, so line numbers stay right).
fn prose(text: &str) -> Vec<String> {
    let mut fenced = false;
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                String::new()
            } else if fenced {
                String::new()
            } else {
                line.to_string()
            }
        })
        .collect()
}

/// `line` with its inline code spans removed (links inside them are not links).
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// The inline code spans of `line`.
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// The link targets of one line of prose: `](target)` and `[label]: target`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code(line);
    let mut out = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end].split_whitespace().next().unwrap_or("");
        out.push(target.trim_matches(['<', '>']).to_string());
        rest = &after[end..];
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[')
        && let Some((_, target)) = trimmed.split_once("]: ")
    {
        out.push(target.split_whitespace().next().unwrap_or("").to_string());
    }
    out
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation other than `-` and `_`
/// dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown document's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .iter()
        .filter_map(|l| {
            let t = l.trim_start();
            t.starts_with('#').then(|| slug(t.trim_start_matches('#')))
        })
        .collect()
}

/// Every problem with the links and quoted paths of `doc` (root-relative).
fn link_problems(root: &Path, doc: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join(doc)).unwrap();
    let dir = doc.parent().unwrap_or(Path::new(""));
    let mut problems = Vec::new();
    for (i, line) in prose(&text).iter().enumerate() {
        let at = format!("{}:{}", doc.display(), i + 1);
        for target in link_targets(line) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                root.join(doc)
            } else {
                root.join(dir).join(path)
            };
            if path.starts_with('/') || !file.exists() {
                problems.push(format!("{at}: link `{target}` does not resolve"));
                continue;
            }
            let inside = file.canonicalize().unwrap().starts_with(root);
            if !inside {
                problems.push(format!("{at}: link `{target}` leaves the repository"));
                continue;
            }
            if let Some(anchor) = anchor
                && file.extension().is_some_and(|e| e == "md")
                && !anchors(&std::fs::read_to_string(&file).unwrap()).contains(anchor)
            {
                problems.push(format!("{at}: link `{target}`: no heading `#{anchor}`"));
            }
        }
        for span in code_spans(line) {
            const LAYOUT: &[&str] = &[
                "crates/",
                "src/",
                "tests/",
                "benches/",
                "docs/",
                "examples/",
                "proptest-regressions/",
            ];
            let is_path = LAYOUT.iter().any(|p| span.starts_with(p))
                && span
                    .chars()
                    .all(|c| c.is_alphanumeric() || "/._-*".contains(c));
            if !is_path {
                continue;
            }
            let path = span.split('*').next().unwrap_or(span).trim_end_matches('/');
            if !root.join(path).exists() && !root.join(dir).join(path).exists() {
                problems.push(format!("{at}: `{span}` names no file of the repository"));
            }
        }
    }
    problems
}

#[test]
fn every_relative_link_of_the_docs_resolves() {
    let root = root();
    let docs = documents(&root);
    for needed in ["README.md", "docs/case-format.md", "docs/request-format.md"] {
        assert!(
            docs.contains(&PathBuf::from(needed)),
            "{needed} is not checked"
        );
    }
    let problems: Vec<String> = docs.iter().flat_map(|d| link_problems(&root, d)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The files of the repository: tracked files when git can list them, else every file outside
/// `target/` and hidden folders (a source archive without `.git`).
fn repository_files(root: &Path) -> Vec<PathBuf> {
    let git = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output();
    if let Ok(out) = git
        && out.status.success()
        && !out.stdout.is_empty()
    {
        return out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).to_string()))
            .filter(|p| root.join(p).is_file())
            .collect();
    }
    let mut out = Vec::new();
    walk(root, root, true, &mut |rel| out.push(rel.to_path_buf()));
    out
}

#[test]
fn no_file_refers_to_a_path_outside_the_repository() {
    let root = root();
    let files = repository_files(&root);
    assert!(files.len() > 100, "only {} files found", files.len());
    let needles = outside_needles();
    let mut problems = Vec::new();
    for rel in &files {
        let shown = rel.to_string_lossy().replace('\\', "/");
        if ALLOWED.contains(&shown.as_str()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(rel)) else {
            continue; // not text
        };
        for (i, line) in text.lines().enumerate() {
            for needle in &needles {
                if line.contains(needle.as_str()) {
                    problems.push(format!("{shown}:{}: mentions `{needle}`", i + 1));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checks_catch_what_they_are_for() {
    assert_eq!(
        link_targets("see [a](docs/a.md#x) and [b](<b c.md> \"t\") but not `[c](d)`"),
        ["docs/a.md#x", "b"]
    );
    assert_eq!(link_targets("[label]: ../x.md"), ["../x.md"]);
    assert_eq!(
        slug("The client's query and `projection`"),
        "the-clients-query-and-projection"
    );
    assert_eq!(prose("a\n```\n[x](y)\n```\nb"), ["a", "", "", "", "b"]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/b.md"), "# Title here\n").unwrap();
    std::fs::write(
        root.join("docs/a.md"),
        "[ok](b.md#title-here) [bad](missing.md) [anchor](b.md#nope) [out](../../x.md)\n\
         `src/lib.rs` `docs/b.md`\n",
    )
    .unwrap();
    let problems = link_problems(&root, Path::new("docs/a.md"));
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].contains("missing.md"));
    assert!(problems[1].contains("#nope"));
    assert!(problems[2].contains("../../x.md"));
    assert!(problems[3].contains("src/lib.rs"));
}
