//! Finding 13 of the security review: the library writes nothing to stdout or stderr. A leftover
//! `eprintln!("DEBUG miss ...")` in `Programs::get` printed rule-set internals on every cache
//! miss. `src/lib.rs` denies `clippy::print_stdout`, `print_stderr` and `dbg_macro`; this test
//! checks the source text too (it runs without clippy): no `println!`, `eprintln!`, `print!`,
//! `eprint!` or `dbg!` in the library's `src/` (the binary is its own crate, `rolegate-cli`).
//! Unit-test modules (`tests/` folders, `*_tests.rs`, `fuzz_regressions.rs`) may print: they are
//! compiled only for `cargo test`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

const MACROS: [&str; 5] = ["println!", "eprintln!", "print!", "eprint!", "dbg!"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The offending lines of `text`: a macro name not preceded by an identifier character (so
/// `eprintln!` is not also counted as `println!`, nor `writeln!`), outside `//` comments.
fn prints(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for m in MACROS {
            let hit = code.match_indices(m).any(|(at, _)| {
                !code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if hit {
                found.push((i + 1, line.trim().to_string()));
            }
        }
    }
    found
}

#[test]
fn the_checker_finds_prints() {
    assert_eq!(prints("    eprintln!(\"DEBUG miss\");").len(), 1);
    assert_eq!(prints("let x = dbg!(y);").len(), 1);
    assert_eq!(prints("print!(\"a\")").len(), 1);
    assert!(prints("writeln!(out, \"x\")?;").is_empty());
    assert!(prints("// eprintln!(\"x\") in a comment").is_empty());
}

#[test]
fn library_code_does_not_print() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut offenders = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap();
        let test_module = relative.components().any(|c| c.as_os_str() == "tests")
            || relative
                .file_stem()
                .is_some_and(|s| s.to_string_lossy().ends_with("_tests"))
            || relative == Path::new("fuzz_regressions.rs");
        if test_module {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, code) in prints(&text) {
            offenders.push(format!("src/{}:{line}: {code}", relative.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "library code prints (return it to the caller instead):\n{}",
        offenders.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Programs are keyed by the identity of their role list: every namespace finds its program.

use std::collections::BTreeMap;

use bson::doc;
use rolegate::{EngineKind, LoadOptions, RequestContext, RuleSet, Rules};
use serde_json::json;

#[test]
fn every_role_list_has_its_program() {
    let role = |name: &str| json!([{"name": name, "apply_when": {}, "read": true}]);
    let files: BTreeMap<String, serde_json::Value> = [
        (
            "data_sources/one/config.json",
            json!({"name": "one", "type": "mongodb-atlas", "config": {}}),
        ),
        (
            "data_sources/two/config.json",
            json!({"name": "two", "type": "mongodb-atlas", "config": {}}),
        ),
        (
            "data_sources/one/default_rule.json",
            json!({"roles": role("oneDefault")}),
        ),
        (
            "data_sources/two/default_rule.json",
            json!({"roles": role("twoDefault")}),
        ),
        (
            "data_sources/one/db/a/rules.json",
            json!({"database": "db", "collection": "a", "roles": role("oneA")}),
        ),
        (
            "data_sources/two/db/a/rules.json",
            json!({"database": "db", "collection": "a", "roles": role("twoA")}),
        ),
        // Zero roles: falls back to the default rule (U2).
        (
            "data_sources/two/db/empty/rules.json",
            json!({"database": "db", "collection": "empty", "roles": []}),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let rules = Rules::new(RuleSet::from_files(&files, &LoadOptions::default()).unwrap());
    let ctx = RequestContext::for_user(doc! {"id": "u"});
    for (namespace, role) in [
        ("one/db.a", "oneA"),
        ("two/db.a", "twoA"),
        ("two/db.empty", "twoDefault"),
        ("one/db.unnamed", "oneDefault"),
        ("two/db.unnamed", "twoDefault"),
    ] {
        let coll = rules.collection(namespace).unwrap();
        for engine in [EngineKind::Compiled, EngineKind::Reference] {
            let read = coll.prepare_with(&ctx, engine).read(&doc! {"x": 1});
            assert_eq!(read.role.as_deref(), Some(role), "{namespace} {engine:?}");
        }
    }
}
