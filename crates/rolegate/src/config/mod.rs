//! Stage: load. Input: an app directory (both layouts, spec §1.2 and §1.3), an in-memory app
//! (app-relative path → JSON), or one rule file. Output: the validated [`RuleSet`], built by
//! [`crate::rules::build::RuleSetBuilder`] from the raw JSON of every rule-bearing file, tagged
//! with its kind and app-relative path.
//!
//! ```text
//! app dir / files map / one file ──[source]──▶ (app-relative path, JSON)
//!        ──[layout::classify / sniff]──▶ FileKind ──[load]──▶ RuleSetBuilder ──finish──▶ RuleSet
//! ```
//!
//! Files read (everything else — auth, triggers, hosting, GraphQL, HTTP endpoints — is ignored):
//!
//! | path | becomes |
//! |------|---------|
//! | `data_sources/<ds>/config.json` | data source; `type: "datalake"` has no rules; `config.sync` |
//! | `data_sources/<ds>/default_rule.json` | the data source's default rule |
//! | `data_sources/<ds>/<db>/<coll>/rules.json` (+ `schema.json`) | collection rules (+ `schema`) |
//! | `services/<svc>/config.json` | MongoDB service = data source (`config.sync`: Sync); else a third-party service |
//! | `services/<svc>/default_rule.json` | the data source's default rule |
//! | `services/<svc>/rules/<db>.<coll>.json` | collection rules, or a service rule when it has `actions` (by content) |
//! | `sync/config.json` | Flexible Sync (queryable fields, pre-2023 `permissions`) or Partition-Based Sync of `service_name` |
//! | `values/<name>.json`, `environments/<tag>.json` | values (`from_secret` → a secret the host supplies), environments |
//! | `functions/config.json`, `functions/<name>/config.json`, `functions/**/*.js` | functions and `can_evaluate` |
//! | `app_config.json` | refused: the 2017 single-file Stitch app |
//!
//! A lone rule file ([`load_single`], or [`load_path`] on a file) is loaded as the kind its path
//! says — the app-relative part is found inside longer paths ([`layout::app_relative`]) — or, when
//! the path says nothing, as the kind its content says ([`layout::sniff`]), in data source
//! [`load::DEFAULT_DATA_SOURCE`]. For a lone file an undefined `%function` is a warning, not an
//! error, and the collection-directory completeness check does not apply.
//!
//! Every file is held to [`LoadOptions::limits`] ([`crate::limits`]): JSON text nested deeper
//! than the parser's 127 levels, or a value (text or in memory) nested deeper than
//! `max_file_depth`, is a `limit-exceeded` error naming the file and JSON path, found without
//! recursion and before the value is copied; the other limits are checked on the rule set.
//!
//! A rule file that is not UTF-8 is an `invalid-utf8` error naming the byte offset and line, the
//! same kind of failure as invalid JSON (`invalid-json`, with line and column). A key given twice
//! in one object of a file on disk (`"read": true, "read": false`) is a `duplicate-key` warning
//! at the later key's JSON path naming the lines of both ([`source::duplicate_keys`]; the last
//! one is used). A directory with no file or folder of an app is a `not-an-app` error.
//!
//! Files on disk are read only when they are regular files no bigger than `max_file_bytes`
//! (checked before they are opened: a FIFO named like a rule file would block the load), and
//! the walk of an app directory follows no directory symlink and stops after `max_files`
//! entries ([`source::DirSource`]): loading a hostile directory always ends, with an error
//! naming the file.

pub(crate) mod layout;
pub(crate) mod load;
pub(crate) mod source;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{Diagnostic, Diagnostics, LoadError, Place};
use crate::limits::Limits;
use crate::rules::RuleSet;

pub use crate::rules::build::FunctionCheck;
use layout::app_relative;
use source::parse_json_with_depth;

use load::{Mode, load_source};
use source::{DirSource, FileSource, MemSource};

/// Options of a load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// What an undefined `%function` is; `None`: an error for an app, a warning for a lone file.
    pub function_check: Option<FunctionCheck>,
    /// Limits on the input ([`Limits::default`] unless set); exceeding one is a `limit-exceeded`
    /// error naming the file and JSON path. The loaded [`RuleSet`] keeps them for evaluation.
    pub limits: Limits,
}

/// Loads `path`: a directory is an app directory; a file is a single rule file. A directory
/// holding no file or folder of an App Services app ([`layout::looks_like_app`]) is not an app:
/// a `not-an-app` error (an app with such folders but no rules loads, with an `empty-app`
/// warning).
pub fn load_path(path: &Path, options: &LoadOptions) -> Result<RuleSet, LoadError> {
    let shown = path.display().to_string();
    if path.is_dir() {
        let mut source = DirSource::with_limits(path, &options.limits);
        let walk_errors = std::mem::take(&mut source.walk_errors);
        if walk_errors.is_empty() && !layout::looks_like_app(&source.paths()) {
            return Err(LoadError {
                diagnostics: Diagnostics(vec![
                    Diagnostic::error(
                        "not-an-app",
                        Place::file(shown),
                        "not an App Services app: no `data_sources/`, `services/`, `sync/`, \
                         `values/`, `environments/`, `functions/`, `auth/`, `triggers/` or \
                         `realm_config.json` in this folder",
                    )
                    .with_hint(
                        "give the app's root folder (the one holding `data_sources/`), or one \
                         rule file",
                    ),
                ]),
            });
        }
        return load_source(&source, &shown, Mode::App, options, walk_errors);
    }
    let text =
        source::read_regular_file(path, &shown, options.limits.max_file_bytes).map_err(|d| {
            LoadError {
                diagnostics: Diagnostics(vec![*d]),
            }
        })?;
    let json = parse_json_with_depth(&text, &shown, options.limits.effective_file_depth())
        .map_err(|d| LoadError {
            diagnostics: Diagnostics(vec![*d]),
        })?;
    let normalized = shown.replace('\\', "/");
    let rel = app_relative(&normalized).unwrap_or_else(|| {
        path.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let source = MemSource::single(&rel, json, &shown);
    let warnings = source::duplicate_keys(&text, &shown);
    load_source(&source, &shown, Mode::LoneFile, options, warnings)
}

/// Loads an in-memory app: app-relative path → JSON content (a `.js` function source may map
/// to any value). Used for conformance `rules.files` and tests.
pub fn load_files(
    files: &BTreeMap<String, Value>,
    options: &LoadOptions,
) -> Result<RuleSet, LoadError> {
    let source = MemSource::with_limits(files, &options.limits);
    load_source(&source, "<files>", Mode::App, options, Vec::new())
}

/// Loads one file's JSON given its path: app-relative (`data_sources/ds/db/coll/rules.json`),
/// a longer path that contains one (`backend/services/mongodb-atlas/rules/db.coll.json`), or
/// any other name (the kind then comes from the content).
pub fn load_single(path: &str, json: &Value, options: &LoadOptions) -> Result<RuleSet, LoadError> {
    let normalized = path.replace('\\', "/");
    let rel = app_relative(&normalized).unwrap_or_else(|| {
        normalized
            .rsplit('/')
            .next()
            .unwrap_or(normalized.as_str())
            .to_string()
    });
    let source = MemSource::single_with_limits(&rel, json, path, &options.limits);
    load_source(&source, path, Mode::LoneFile, options, Vec::new())
}

impl RuleSet {
    /// Loads and validates `path`: a directory is an app directory, a file a single rule file.
    /// Every error and warning of every file is in the [`LoadError`] (or, for warnings, in
    /// [`RuleSet::warnings`]), each with its file and JSON path.
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<RuleSet, LoadError> {
        load_path(path.as_ref(), options)
    }

    /// Loads an app held in memory: app-relative path (`data_sources/ds/db/coll/rules.json`,
    /// `values/v.json`, ...) → the file's JSON.
    pub fn from_files(
        files: &BTreeMap<String, Value>,
        options: &LoadOptions,
    ) -> Result<RuleSet, LoadError> {
        load_files(files, options)
    }

    /// Loads one rule file's JSON given its path: app-relative, a longer path that contains
    /// an app-relative one, or any other name (the file's kind then comes from its content).
    pub fn from_json(
        path: &str,
        json: &Value,
        options: &LoadOptions,
    ) -> Result<RuleSet, LoadError> {
        load_single(path, json, options)
    }
}
