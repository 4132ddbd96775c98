//! The read residual ([`rolegate::Residual`]) over the real-rules corpus (where it is found:
//! [`corpus_support`]): each file loaded on its own (as `tests/corpus_props.rs` does), for
//! every collection it governs (and its data source's default rule), the residual of a typical
//! request by
//!
//! * an ordinary user with an id (an ObjectId's hex string) and empty custom data;
//! * the same user with custom data holding every field the file reads from
//!   `%%user.custom_data` (any depth), each a string.
//!
//! It prints, with `--nocapture`, how many residuals are everything, nothing or a query, and
//! how many are exact; and it checks that every residual query compiles in the in-memory
//! matcher and matches a document without an error. Without the corpus the test prints
//! `SKIPPED:` and passes, except under `CI=true`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;
use std::time::Instant;

use bson::{Bson, Document, doc};
use rolegate::{LoadOptions, Residual, RuleSet, Rules};

mod corpus_support;
use corpus_support::{Row, check_skip_is_visible, corpus_or_skip, manifest};

/// The id of the typical user.
const USER_ID: &str = "66a11ce0000000000000000a";

/// Every collection `set` names, as `data_source/db.coll`, and `data_source/*.*` for each data
/// source with a default rule (the library's `testing::namespaces` of one rule set, which needs
/// the `testing-gen` feature).
fn namespaces(set: &RuleSet) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (name, ds) in &set.data_sources {
        for (db, coll) in ds.collections.keys() {
            out.insert(format!("{name}/{db}.{coll}"));
        }
        if ds.default_rule.is_some() {
            out.insert(format!("{name}/*.*"));
        }
    }
    out.into_iter().collect()
}

/// The paths below `custom_data` that `text` reads (`%%user.custom_data.a.b` → `a.b`).
fn custom_data_paths(text: &str) -> BTreeSet<String> {
    const PREFIX: &str = "%%user.custom_data.";
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices(PREFIX) {
        let rest = &text[at + PREFIX.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches('.');
        if !path.is_empty() {
            out.insert(path.to_string());
        }
    }
    out
}

/// Custom data with a string at each of `paths` (a path below another one's string is left
/// out: the string is there already).
fn custom_data(paths: &BTreeSet<String>) -> Document {
    let mut data = Document::new();
    for path in paths {
        let parts: Vec<&str> = path.split('.').collect();
        let mut level = &mut data;
        for (i, part) in parts.iter().enumerate() {
            if i + 1 == parts.len() {
                if !level.contains_key(*part) {
                    level.insert(*part, format!("{part}-value"));
                }
                break;
            }
            if !matches!(level.get(*part), Some(Bson::Document(_))) {
                if level.contains_key(*part) {
                    break;
                }
                level.insert(*part, Document::new());
            }
            let Some(Bson::Document(next)) = level.get_mut(*part) else {
                break;
            };
            level = next;
        }
    }
    data
}

fn user(custom_data: Document) -> Document {
    doc! {"id": USER_ID, "type": "normal", "data": {}, "custom_data": custom_data}
}

/// Counts of residual kinds.
#[derive(Default)]
struct Tally {
    residuals: u64,
    everything: u64,
    everything_exact: u64,
    nothing: u64,
    query: u64,
    query_exact: u64,
}

impl Tally {
    fn add(&mut self, r: &Residual) {
        self.residuals += 1;
        match r {
            Residual::Everything { exact } => {
                self.everything += 1;
                self.everything_exact += u64::from(*exact);
            }
            Residual::Nothing => self.nothing += 1,
            Residual::Query { exact, .. } => {
                self.query += 1;
                self.query_exact += u64::from(*exact);
            }
        }
    }

    fn line(&self, who: &str) -> String {
        let exact = self.everything_exact + self.nothing + self.query_exact;
        let pct = |n: u64| 100.0 * n as f64 / self.residuals.max(1) as f64;
        format!(
            "{who}: {} residuals: everything {} ({} exact), nothing {}, query {} ({} exact); \
             exact {exact} ({:.1}%); a query or nothing (the store reads less) {:.1}%",
            self.residuals,
            self.everything,
            self.everything_exact,
            self.nothing,
            self.query,
            self.query_exact,
            pct(exact),
            pct(self.nothing + self.query),
        )
    }
}

#[test]
fn corpus_residuals_compile_and_are_counted() {
    let Some(dir) = corpus_or_skip("corpus_residuals_compile_and_are_counted") else {
        return;
    };
    let started = Instant::now();
    let rows = manifest(&dir);
    let (mut files, mut collections) = (0, 0);
    let mut plain = Tally::default();
    let mut with_data = Tally::default();
    let mut reads_custom_data = 0;
    let mut failures = Vec::new();
    // A document the queries are run on (that they match it or not does not matter).
    let probe = doc! {"_id": 1, "owner_id": USER_ID, "a": [1, "x", {"b": null}]};
    for Row {
        saved_name: saved,
        path,
    } in &rows
    {
        let text = std::fs::read_to_string(dir.join(saved)).unwrap();
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let Ok(set) = RuleSet::from_json(path, &json, &LoadOptions::default()) else {
            continue;
        };
        files += 1;
        let paths = custom_data_paths(&text);
        let rules = Rules::new(set);
        let plain_ctx = rules.context().user(user(Document::new())).build().unwrap();
        let data_ctx = rules
            .context()
            .user(user(custom_data(&paths)))
            .build()
            .unwrap();
        for ns in namespaces(rules.rule_set()) {
            let Ok(coll) = rules.collection(&ns) else {
                continue;
            };
            collections += 1;
            if !paths.is_empty() {
                reads_custom_data += 1;
            }
            for (tally, ctx) in [(&mut plain, &plain_ctx), (&mut with_data, &data_ctx)] {
                let residual = Residual::of(coll.policy().roles, ctx);
                tally.add(&residual);
                // The plan carries the same residual.
                if let Ok(plan) = coll.prepare(ctx).query_plan(None, None)
                    && plan.residual() != Some(&residual)
                {
                    failures.push(format!("{saved} {ns}: the plan's residual differs"));
                }
                let Some(query) = residual.query() else {
                    continue;
                };
                match rolegate::mql::compile_query(query) {
                    Ok(expr) => {
                        if let Err(e) = rolegate::mql::matches(&expr, &probe) {
                            failures.push(format!(
                                "{saved} {ns}: the residual {} fails on a document: {e}",
                                residual.describe()
                            ));
                        }
                    }
                    Err(e) => failures.push(format!(
                        "{saved} {ns}: the residual {} does not compile: {e}",
                        residual.describe()
                    )),
                }
            }
        }
    }
    println!(
        "{files} files, {collections} collections ({reads_custom_data} whose file reads \
         %%user.custom_data), in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("{}", plain.line("user with empty custom data"));
    println!(
        "{}",
        with_data.line("user with string custom data at every path read")
    );
    assert!(files >= 400, "{files} files loaded");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn custom_data_holds_a_string_at_every_path() {
    let paths = custom_data_paths(
        r#"{"a": "%%user.custom_data.team", "b": {"%%user.custom_data.org.id": 1},
            "c": "%%user.custom_data.org.name.", "d": "%%user.custom_data.team.x"}"#,
    );
    assert_eq!(
        paths.iter().map(String::as_str).collect::<Vec<_>>(),
        ["org.id", "org.name", "team", "team.x"]
    );
    assert_eq!(
        custom_data(&paths),
        doc! {"org": {"id": "id-value", "name": "name-value"}, "team": "team-value"}
    );
}

#[test]
fn skips_are_visible_and_fail_under_ci() {
    check_skip_is_visible(&["corpus_residuals_compile_and_are_counted"]);
}
