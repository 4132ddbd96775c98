//! The lint pass over every file of the real-rules corpus (where it is found: [`corpus_support`]), each
//! loaded on its own with `load_single` as `tests/corpus.rs` does: it runs over the whole corpus,
//! the number of warnings of each code is stable (the table in `docs/corpus-lints.md`), and no
//! real app comes near a load-time limit.
//!
//! `ROLEGATE_CORPUS_LINTS=1 cargo test --test lint_corpus -- --nocapture` prints the table (and
//! every warning with `ROLEGATE_CORPUS_VERBOSE=1`). When the corpus folder is missing the tests
//! print a visible `SKIPPED:` line and pass, except under `CI=true`, where they fail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rolegate::{
    Limits, LoadOptions, Measures, RuleSet,
    lint::{LINT_CODES, check_warnings},
};

mod corpus_support;
use corpus_support::{check_skip_is_visible, corpus_or_skip};

/// Warnings per code over the corpus files: `(code, warnings, files with one)`, by code. The
/// codes of the lint pass and the three load-time codes the issue names are listed even when no
/// file trips them.
const EXPECTED: &[(&str, usize, usize)] = &[
    ("bson-type-alias", 6, 5),
    ("field-not-in-schema", 6, 3),
    ("field-rules-overridden", 3, 3),
    ("filter-projection-conflict", 0, 0),
    ("legacy-default-role-file", 7, 7),
    ("missing-apply-when", 1, 1),
    ("missing-key", 2, 2),
    ("namespace-mismatch", 8, 8),
    ("read-false-overrides-fields", 0, 0),
    ("role-grants-nothing", 78, 78),
    ("sync-incompatible-role", 0, 0),
    ("undefined-function", 35, 14),
    ("unknown-key", 0, 0),
    ("unreachable-role", 2, 2),
    ("write-false-overrides-fields", 1, 1),
];

/// The same over the corpus files grouped back into apps (as `tests/corpus.rs` does), which
/// brings in each app's Sync configuration: `(code, warnings, apps with one)`. Apps refused as a
/// whole are left out.
const EXPECTED_APPS: &[(&str, usize, usize)] = &[
    ("bson-type-alias", 6, 3),
    ("field-not-in-schema", 6, 2),
    ("field-rules-overridden", 3, 3),
    ("filter-projection-conflict", 0, 0),
    ("legacy-default-role-file", 7, 7),
    ("missing-apply-when", 1, 1),
    ("missing-key", 2, 2),
    ("namespace-mismatch", 6, 5),
    ("read-false-overrides-fields", 0, 0),
    ("role-grants-nothing", 70, 35),
    ("sync-incompatible-role", 0, 0),
    ("undefined-function", 33, 8),
    ("unknown-key", 0, 0),
    ("unreachable-role", 2, 2),
    ("write-false-overrides-fields", 1, 1),
];

/// Load-time codes the issue names, listed in the table even at zero.
const NAMED_LOAD_CODES: &[&str] = &[
    "unknown-key",
    "undefined-function",
    "sync-incompatible-role",
];

struct Tally {
    files: usize,
    loaded: usize,
    /// code → (warnings, files)
    codes: BTreeMap<&'static str, (usize, usize)>,
    most: Measures,
}

fn tally(dir: &Path) -> Tally {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let verbose = std::env::var_os("ROLEGATE_CORPUS_VERBOSE").is_some();
    let mut t = Tally {
        files: 0,
        loaded: 0,
        codes: BTreeMap::new(),
        most: Measures::default(),
    };
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (saved, path) = (cols[0], cols[2]);
        t.files += 1;
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(saved)).unwrap()).unwrap();
        let Ok(set) = RuleSet::from_json(path, &json, &LoadOptions::default()) else {
            continue; // refusals are tests/corpus.rs's business
        };
        t.loaded += 1;
        let m = set.measure();
        t.most = Measures {
            expression_depth: t.most.expression_depth.max(m.expression_depth),
            expression_nodes: t.most.expression_nodes.max(m.expression_nodes),
            path_length: t.most.path_length.max(m.path_length),
            array_operand: t.most.array_operand.max(m.array_operand),
            roles: t.most.roles.max(m.roles),
            filters: t.most.filters.max(m.filters),
        };
        let mut in_file = BTreeSet::new();
        for d in check_warnings(&set).warnings() {
            if verbose {
                println!("  {d}");
            }
            t.codes.entry(d.code).or_default().0 += 1;
            in_file.insert(d.code);
        }
        for code in in_file {
            t.codes.entry(code).or_default().1 += 1;
        }
    }
    for code in LINT_CODES.iter().chain(NAMED_LOAD_CODES) {
        t.codes.entry(code).or_default();
    }
    t
}

/// The corpus files grouped into apps (repository, commit, app root) and loaded with
/// `load_files`; undefined functions are warnings (functions are not part of the corpus).
fn tally_apps(dir: &Path) -> Tally {
    use rolegate::FunctionCheck;
    use rolegate::RuleSet;
    use rolegate::testing::app_relative;

    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut apps: BTreeMap<(String, String, String), BTreeMap<String, serde_json::Value>> =
        BTreeMap::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (saved, repo, path, commit) = (cols[0], cols[1], cols[2], cols[3]);
        let Some(rel) = app_relative(path) else {
            continue;
        };
        let prefix = path.strip_suffix(rel.as_str()).unwrap_or("").to_string();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(saved)).unwrap()).unwrap();
        apps.entry((repo.to_string(), commit.to_string(), prefix))
            .or_default()
            .insert(rel, json);
    }
    let options = LoadOptions {
        function_check: Some(FunctionCheck::Warning),
        ..LoadOptions::default()
    };
    let mut t = Tally {
        files: apps.len(),
        loaded: 0,
        codes: BTreeMap::new(),
        most: Measures::default(),
    };
    for files in apps.values() {
        let Ok(set) = RuleSet::from_files(files, &options) else {
            continue;
        };
        t.loaded += 1;
        let mut in_app = BTreeSet::new();
        for d in check_warnings(&set).warnings() {
            t.codes.entry(d.code).or_default().0 += 1;
            in_app.insert(d.code);
        }
        for code in in_app {
            t.codes.entry(code).or_default().1 += 1;
        }
    }
    for code in LINT_CODES.iter().chain(NAMED_LOAD_CODES) {
        t.codes.entry(code).or_default();
    }
    t
}

fn table(t: &Tally) -> String {
    let mut rows: Vec<(&str, usize, usize)> =
        t.codes.iter().map(|(c, (n, f))| (*c, *n, *f)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out = String::from("| code | from | warnings | files |\n| --- | --- | ---: | ---: |\n");
    for (code, n, f) in rows {
        let from = if LINT_CODES.contains(&code) {
            "lint"
        } else {
            "load"
        };
        out.push_str(&format!("| `{code}` | {from} | {n} | {f} |\n"));
    }
    out
}

#[test]
fn the_lint_pass_runs_over_the_whole_corpus_with_stable_counts() {
    let Some(dir) = corpus_or_skip("the_lint_pass_runs_over_the_whole_corpus_with_stable_counts")
    else {
        return;
    };
    let t = tally(&dir);
    if std::env::var_os("ROLEGATE_CORPUS_LINTS").is_some() {
        println!("{} files, {} loaded\n\n{}", t.files, t.loaded, table(&t));
        println!("largest measures: {:?}", t.most);
    }
    assert!(t.loaded >= 400, "only {} files loaded", t.loaded);
    let got: Vec<(&str, usize, usize)> = t.codes.iter().map(|(c, (n, f))| (*c, *n, *f)).collect();
    let expected: Vec<(&str, usize, usize)> = EXPECTED.to_vec();
    assert_eq!(
        got,
        expected,
        "the corpus lint counts changed; update EXPECTED and docs/corpus-lints.md:\n{}",
        table(&t)
    );
}

#[test]
fn the_lint_pass_runs_over_the_corpus_apps_with_stable_counts() {
    let Some(dir) = corpus_or_skip("the_lint_pass_runs_over_the_corpus_apps_with_stable_counts")
    else {
        return;
    };
    let t = tally_apps(&dir);
    if std::env::var_os("ROLEGATE_CORPUS_LINTS").is_some() {
        println!("{} apps, {} loaded\n\n{}", t.files, t.loaded, table(&t));
    }
    let got: Vec<(&str, usize, usize)> = t.codes.iter().map(|(c, (n, f))| (*c, *n, *f)).collect();
    assert_eq!(
        got,
        EXPECTED_APPS.to_vec(),
        "the corpus app lint counts changed; update EXPECTED_APPS and docs/corpus-lints.md:\n{}",
        table(&t)
    );
}

#[test]
fn no_real_app_comes_near_a_limit() {
    let Some(dir) = corpus_or_skip("no_real_app_comes_near_a_limit") else {
        return;
    };
    let m = tally(&dir).most;
    let l = Limits::default();
    // A tenth of each default at most: the defaults leave real apps a wide margin.
    assert!(m.expression_depth * 4 <= l.max_expression_depth, "{m:?}");
    assert!(m.expression_nodes * 10 <= l.max_expression_nodes, "{m:?}");
    assert!(m.path_length * 10 <= l.max_path_length, "{m:?}");
    assert!(m.array_operand * 10 <= l.max_array_operand, "{m:?}");
    assert!(m.roles * 10 <= l.max_roles, "{m:?}");
    assert!(m.filters * 10 <= l.max_filters, "{m:?}");
}

/// Without the corpus, the three tests above pass with a `SKIPPED:` line that the harness does
/// not hide, and fail under `CI=true`.
#[test]
fn skips_are_visible_and_fail_under_ci() {
    check_skip_is_visible(&[
        "the_lint_pass_runs_over_the_whole_corpus_with_stable_counts",
        "the_lint_pass_runs_over_the_corpus_apps_with_stable_counts",
        "no_real_app_comes_near_a_limit",
    ]);
}
