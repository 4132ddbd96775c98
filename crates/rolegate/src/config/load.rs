//! Stage: load, step 2. Input: a [`FileSource`] (app directory, in-memory app, or one file).
//! Output: a [`RuleSet`], by feeding every rule-bearing file to a [`RuleSetBuilder`] as the
//! kind its path says ([`classify`]) — or, for a lone file whose path says nothing, as the kind
//! its content says ([`sniff`]).
//!
//! Checks made here, on the layout rather than on one file's content:
//!
//! * a `data_sources/<ds>/<db>/<coll>/` directory must hold `rules.json`, or both `schema.json`
//!   and `relationships.json` (realm-cli); not checked for a lone file;
//! * `app_config.json` (the 2017 single-file Stitch app) is refused;
//! * a legacy `services/<svc>/rules/<file>.json` is a third-party service rule, a collection
//!   rule file or a default-role file by content ([`route_service_rules_file`]).

use std::collections::BTreeMap;

use serde_json::Value;

use super::LoadOptions;
use super::layout::{
    FileKind, ServiceRulesFile, Sniffed, classify, route_service_rules_file, sniff,
};
use super::source::FileSource;
use crate::error::{Diagnostic, LoadError, Place};
use crate::rules::RuleSet;
use crate::rules::build::{BuildOptions, FunctionCheck, RuleSetBuilder};

/// The data source a lone rule file belongs to when its path does not say.
pub const DEFAULT_DATA_SOURCE: &str = "mongodb-atlas";

/// What is being loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A whole app (directory or in-memory map).
    App,
    /// One file on its own: its app is unknown.
    LoneFile,
}

const LEGACY_APP_CONFIG: &str = "single-file Stitch app_config.json (2017) is not supported";

/// A collection file's directory (data source, database, collection) and the fact it
/// establishes there.
type CollectionFile<'k> = (&'k str, &'k str, &'k str, fn(&mut CollectionDir));

/// The collection directory a collection file belongs to, and the fact it establishes there.
fn collection_file(kind: &FileKind) -> Option<CollectionFile<'_>> {
    match kind {
        FileKind::CollectionRules {
            data_source,
            database,
            collection,
        } => Some((data_source, database, collection, |d| {
            d.rules_present = true
        })),
        FileKind::CollectionSchema {
            data_source,
            database,
            collection,
        } => Some((data_source, database, collection, |d| {
            d.schema_present = true
        })),
        FileKind::CollectionRelationships {
            data_source,
            database,
            collection,
        } => Some((data_source, database, collection, |d| {
            d.relationships = true
        })),
        _ => None,
    }
}

#[derive(Debug, Default)]
struct CollectionDir {
    rules: Option<(Value, Place)>,
    schema: Option<(Value, Place)>,
    relationships: bool,
    /// Some file of the directory was found (even if it was not valid JSON).
    rules_present: bool,
    schema_present: bool,
}

pub(crate) fn load_source(
    source: &dyn FileSource,
    origin: &str,
    mode: Mode,
    options: &LoadOptions,
    mut extra: Vec<Diagnostic>,
) -> Result<RuleSet, LoadError> {
    let function_check = options.function_check.unwrap_or(match mode {
        Mode::App => FunctionCheck::Error,
        Mode::LoneFile => FunctionCheck::Warning,
    });
    let mut b = RuleSetBuilder::new(origin, BuildOptions { function_check });
    b.set_limits(options.limits);
    for d in extra.drain(..) {
        b.push(d);
    }
    let mut dirs: BTreeMap<(String, String, String), CollectionDir> = BTreeMap::new();
    let mut recognized = 0usize;

    for path in source.paths() {
        let mut kind = classify(&path);
        // A lone file named `config.json` is sniffed by its content, not read as an app's root.
        if kind == FileKind::AppConfig && mode == Mode::LoneFile {
            kind = FileKind::Other;
        }
        if kind == FileKind::Other && mode == Mode::App {
            continue;
        }
        if let FileKind::FunctionSource { name } = &kind {
            b.add_function_source(name);
            recognized += 1;
            continue;
        }
        let place = Place::file(source.display(&path));
        let json = source.read_json_checked(&path).map(|(json, warnings)| {
            for w in warnings {
                b.push(w);
            }
            json
        });
        // Layout facts that hold even when the file is not valid JSON.
        if let Some((data_source, database, collection, mark)) = collection_file(&kind) {
            let key = (
                data_source.to_string(),
                database.to_string(),
                collection.to_string(),
            );
            mark(dirs.entry(key).or_default());
        }
        let json = match json {
            Ok(j) => j,
            Err(d) => {
                b.push(*d);
                continue;
            }
        };
        // The root configuration and custom user data settings are not rules: an app with only
        // them is still empty.
        if !matches!(kind, FileKind::AppConfig | FileKind::CustomUserData) {
            recognized += 1;
        }
        match kind {
            FileKind::LegacyAppConfig => {
                b.push(Diagnostic::error("legacy-format", place, LEGACY_APP_CONFIG));
            }
            FileKind::DataSourceConfig { data_source } => {
                b.add_data_source_config(&data_source, &json, place);
            }
            FileKind::DefaultRule { data_source } => b.add_default_rule(&data_source, &json, place),
            FileKind::CollectionRules {
                data_source,
                database,
                collection,
            } => {
                dirs.entry((data_source, database, collection))
                    .or_default()
                    .rules = Some((json, place));
            }
            FileKind::CollectionSchema {
                data_source,
                database,
                collection,
            } => {
                dirs.entry((data_source, database, collection))
                    .or_default()
                    .schema = Some((json, place));
            }
            FileKind::CollectionRelationships { .. } => {}
            FileKind::ServiceConfig { service } => b.add_service_config(&service, &json, place),
            FileKind::ServiceDefaultRule { service } => b.add_default_rule(&service, &json, place),
            FileKind::ServiceRules { service, stem } => {
                add_service_rules_file(&mut b, &service, &stem, &json, place);
            }
            FileKind::AppConfig => b.add_app_config(&json, place),
            FileKind::CustomUserData => b.add_custom_user_data(&json, place),
            FileKind::SyncConfig => b.add_sync_config(&json, DEFAULT_DATA_SOURCE, place),
            FileKind::Value { name } => b.add_value(&json, Some(&name), place),
            FileKind::Environment { tag } => b.add_environment(&tag, &json, place),
            FileKind::FunctionsConfig => b.add_functions_config(&json, place),
            FileKind::FunctionConfig { name } => b.add_function_config(&json, Some(&name), place),
            FileKind::FunctionSource { .. } => {}
            FileKind::Other => add_sniffed(&mut b, &path, &json, place),
        }
    }

    for ((ds, db, coll), dir) in dirs {
        if mode == Mode::App && !dir.rules_present && !(dir.schema_present && dir.relationships) {
            b.push(Diagnostic::error(
                "incomplete-collection-dir",
                Place::file(format!("data_sources/{ds}/{db}/{coll}")),
                "collection dir should contain a rules.json file and/or both schema.json and \
                 relationships.json files",
            ));
            continue;
        }
        if let Some((json, place)) = &dir.rules {
            b.add_collection_rules(&ds, Some((&db, &coll)), json, place.clone());
        }
        // A schema without rules.json is a rule object without roles (realm-cli).
        if let Some((json, place)) = &dir.schema {
            b.add_collection_schema(&ds, &db, &coll, json, place.clone());
        }
    }

    if recognized == 0 && mode == Mode::App && !b.diagnostics().has_errors() {
        b.push(Diagnostic::warning(
            "empty-app",
            Place::file(origin.to_string()),
            "no App Services files found (expected `data_sources/`, `services/`, `sync/`, ...)",
        ));
    }
    b.finish()
}

/// `services/<svc>/rules/<stem>.json`: routed by content.
fn add_service_rules_file(
    b: &mut RuleSetBuilder,
    service: &str,
    stem: &str,
    json: &Value,
    place: Place,
) {
    match route_service_rules_file(json, stem) {
        ServiceRulesFile::ServiceRule => b.add_service_rule(service, json, Some(stem), place),
        ServiceRulesFile::CollectionRules => {
            let ns = stem.split_once('.');
            b.add_collection_rules(service, ns, json, place);
        }
        ServiceRulesFile::DefaultRole => {
            b.push(Diagnostic::warning(
                "legacy-default-role-file",
                place.clone(),
                format!(
                    "`{stem}.json` has roles but no namespace; it is read as the default rule of \
                     data source `{service}`"
                ),
            ));
            b.add_default_rule(service, json, place);
        }
    }
}

/// A lone file whose path is not an app path: its kind comes from its content.
fn add_sniffed(b: &mut RuleSetBuilder, path: &str, json: &Value, place: Place) {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.strip_suffix(".json").unwrap_or(file);
    if file == "app_config.json" {
        b.push(Diagnostic::error("legacy-format", place, LEGACY_APP_CONFIG));
        return;
    }
    match sniff(json) {
        Sniffed::LegacyAppConfig => {
            b.push(Diagnostic::error("legacy-format", place, LEGACY_APP_CONFIG));
        }
        Sniffed::CollectionRules => {
            b.add_collection_rules(DEFAULT_DATA_SOURCE, stem.split_once('.'), json, place);
        }
        Sniffed::DefaultRule => b.add_default_rule(DEFAULT_DATA_SOURCE, json, place),
        Sniffed::ServiceRule => b.add_service_rule("service", json, Some(stem), place),
        Sniffed::SyncConfig => b.add_sync_config(json, DEFAULT_DATA_SOURCE, place),
        Sniffed::FunctionConfig => b.add_function_config(json, None, place),
        Sniffed::FunctionsConfig => b.add_functions_config(json, place),
        Sniffed::Value => b.add_value(json, Some(stem), place),
        Sniffed::Unknown => b.push(
            Diagnostic::error(
                "unknown-file",
                place,
                "cannot tell which App Services file this is",
            )
            .with_hint(
                "give its path inside the app, such as `data_sources/<ds>/<db>/<coll>/rules.json`",
            ),
        ),
    }
}
