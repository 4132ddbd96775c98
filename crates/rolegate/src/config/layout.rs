//! Stage: load, step 1. Input: an app-relative file path (`data_sources/mongodb-atlas/app/items/rules.json`).
//! Output: the [`FileKind`] the path says the file is, from the App Services app layouts (spec §1.2,
//! §1.3, §1.5). For a file whose path says nothing, [`sniff`] decides from its content.

use serde_json::Value;

/// What kind of App Services file a path names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `app_config.json` at the app root: the single-file Stitch app format (2017), refused.
    LegacyAppConfig,
    /// `data_sources/<ds>/config.json`
    DataSourceConfig { data_source: String },
    /// `data_sources/<ds>/default_rule.json`
    DefaultRule { data_source: String },
    /// `data_sources/<ds>/<db>/<coll>/rules.json`
    CollectionRules {
        data_source: String,
        database: String,
        collection: String,
    },
    /// `data_sources/<ds>/<db>/<coll>/schema.json`
    CollectionSchema {
        data_source: String,
        database: String,
        collection: String,
    },
    /// `data_sources/<ds>/<db>/<coll>/relationships.json` (not used for permissions).
    CollectionRelationships {
        data_source: String,
        database: String,
        collection: String,
    },
    /// `services/<svc>/config.json`
    ServiceConfig { service: String },
    /// `services/<svc>/default_rule.json`
    ServiceDefaultRule { service: String },
    /// `services/<svc>/rules/<stem>.json`: a collection rule file of a MongoDB service or a
    /// third-party service rule, decided by content ([`route_service_rules_file`]).
    ServiceRules { service: String, stem: String },
    /// `sync/config.json`
    SyncConfig,
    /// `values/<name>.json`
    Value { name: String },
    /// `environments/<tag>.json`
    Environment { tag: String },
    /// `functions/config.json` (an array of function configurations)
    FunctionsConfig,
    /// `functions/<name>/config.json`
    FunctionConfig { name: String },
    /// `functions/<name>.js` or `functions/<name>/source.js`: the function exists.
    FunctionSource { name: String },
    /// The root configuration: `realm_config.json`, `root_config.json` or `config.json` at the
    /// app's root.
    AppConfig,
    /// `auth/custom_user_data.json`
    CustomUserData,
    /// Anything else (auth providers, triggers, hosting, GraphQL, ...).
    Other,
}

/// Directory names that start an app-relative path.
const ANCHORS: [&str; 6] = [
    "data_sources",
    "services",
    "sync",
    "values",
    "environments",
    "functions",
];

/// Classifies an app-relative path (`/`-separated; a leading `./` is ignored).
pub fn classify(path: &str) -> FileKind {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let s = |p: &&str| (*p).to_string();
    match parts.as_slice() {
        ["app_config.json"] => FileKind::LegacyAppConfig,
        ["realm_config.json" | "root_config.json" | "config.json"] => FileKind::AppConfig,
        ["auth", "custom_user_data.json"] => FileKind::CustomUserData,
        ["data_sources", ds, "config.json"] => FileKind::DataSourceConfig { data_source: s(ds) },
        ["data_sources", ds, "default_rule.json"] => FileKind::DefaultRule { data_source: s(ds) },
        ["data_sources", ds, db, coll, file] => {
            let (data_source, database, collection) = (s(ds), s(db), s(coll));
            match *file {
                "rules.json" => FileKind::CollectionRules {
                    data_source,
                    database,
                    collection,
                },
                "schema.json" => FileKind::CollectionSchema {
                    data_source,
                    database,
                    collection,
                },
                "relationships.json" => FileKind::CollectionRelationships {
                    data_source,
                    database,
                    collection,
                },
                _ => FileKind::Other,
            }
        }
        ["services", svc, "config.json"] => FileKind::ServiceConfig { service: s(svc) },
        ["services", svc, "default_rule.json"] => FileKind::ServiceDefaultRule { service: s(svc) },
        ["services", svc, "rules", file] => match file.strip_suffix(".json") {
            Some(stem) if !stem.is_empty() => FileKind::ServiceRules {
                service: s(svc),
                stem: stem.to_string(),
            },
            _ => FileKind::Other,
        },
        ["sync", "config.json"] => FileKind::SyncConfig,
        ["values", file] => match file.strip_suffix(".json") {
            Some(name) if !name.is_empty() => FileKind::Value {
                name: name.to_string(),
            },
            _ => FileKind::Other,
        },
        ["environments", file] => match file.strip_suffix(".json") {
            Some(tag) if !tag.is_empty() => FileKind::Environment {
                tag: tag.to_string(),
            },
            _ => FileKind::Other,
        },
        ["functions", "config.json"] => FileKind::FunctionsConfig,
        ["functions", middle @ .., last] if !middle.is_empty() && *last == "config.json" => {
            FileKind::FunctionConfig {
                name: middle.join("/"),
            }
        }
        ["functions", middle @ .., last] if !middle.is_empty() && *last == "source.js" => {
            FileKind::FunctionSource {
                name: middle.join("/"),
            }
        }
        ["functions", middle @ .., last] => match last.strip_suffix(".js") {
            Some(stem) if !stem.is_empty() => {
                let mut name: Vec<&str> = middle.to_vec();
                name.push(stem);
                FileKind::FunctionSource {
                    name: name.join("/"),
                }
            }
            _ => FileKind::Other,
        },
        _ => FileKind::Other,
    }
}

/// Top-level folders of an App Services app (realm-cli and Stitch exports, both layouts).
const APP_DIRS: [&str; 13] = [
    "data_sources",
    "services",
    "sync",
    "values",
    "environments",
    "functions",
    "auth",
    "auth_providers",
    "triggers",
    "http_endpoints",
    "graphql",
    "hosting",
    "log_forwarders",
];

/// Files at the root of an App Services app.
const APP_FILES: [&str; 5] = [
    "realm_config.json",
    "root_config.json",
    "config.json",
    "stitch.json",
    "app_config.json",
];

/// Whether a folder whose files are `paths` (app-relative) is an App Services app: some file is
/// in one of the app's top-level folders (`data_sources/`, `services/`, `auth/`, ...) or is one of
/// its root configuration files (`realm_config.json`, `config.json`, ...).
pub fn looks_like_app(paths: &[String]) -> bool {
    paths.iter().any(|p| match p.split_once('/') {
        Some((dir, _)) => APP_DIRS.contains(&dir),
        None => APP_FILES.contains(&p.as_str()),
    })
}

/// The app-relative part of a longer path, found by trying each app-layout directory name
/// (`data_sources`, `services`, `sync`, ...) from the right, and keeping the first whose rest
/// classifies as a known kind of rule file. `backend/data_sources/mongodb-atlas/sync/Kiosk/rules.json`
/// gives `data_sources/mongodb-atlas/sync/Kiosk/rules.json` (the database named `sync` does not
/// fool it). `None` when no suffix is an app path.
pub fn app_relative(path: &str) -> Option<String> {
    let parts: Vec<&str> = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.last() == Some(&"app_config.json") {
        return Some("app_config.json".to_string());
    }
    for (i, part) in parts.iter().enumerate().rev() {
        if !ANCHORS.contains(part) {
            continue;
        }
        let rel = parts.get(i..).unwrap_or_default().join("/");
        if classify(&rel) != FileKind::Other {
            return Some(rel);
        }
    }
    None
}

/// What a file found at `services/<svc>/rules/<stem>.json` is, by content (the service type
/// is not always known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRulesFile {
    /// A third-party service rule: has `actions` (or `when` without any collection key).
    ServiceRule,
    /// A collection rule file of a MongoDB service (also: an empty object, refused as empty,
    /// and a 2017 Stitch rules file, refused as such).
    CollectionRules,
    /// A legacy file with only `roles` (+ `id`) and a name that is not `<db>.<coll>` (such as
    /// `defaultRole.json`): read as the service's default rule.
    DefaultRole,
}

/// Decides what a `services/<svc>/rules/<stem>.json` file is (see [`ServiceRulesFile`]).
pub fn route_service_rules_file(json: &Value, stem: &str) -> ServiceRulesFile {
    let Some(m) = json.as_object() else {
        return ServiceRulesFile::ServiceRule;
    };
    const COLLECTION_KEYS: [&str; 10] = [
        "database",
        "collection",
        "namespace",
        "schema",
        "filters",
        "relationships",
        "valid",
        "other_fields",
        "read",
        "write",
    ];
    if m.is_empty() {
        return ServiceRulesFile::CollectionRules;
    }
    if m.contains_key("actions") {
        return ServiceRulesFile::ServiceRule;
    }
    if COLLECTION_KEYS.iter().any(|k| m.contains_key(*k)) {
        return ServiceRulesFile::CollectionRules;
    }
    if m.contains_key("roles") {
        return if stem.contains('.') {
            ServiceRulesFile::CollectionRules
        } else {
            ServiceRulesFile::DefaultRole
        };
    }
    ServiceRulesFile::ServiceRule
}

/// What a file whose path says nothing is, by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    LegacyAppConfig,
    CollectionRules,
    DefaultRule,
    ServiceRule,
    SyncConfig,
    FunctionConfig,
    FunctionsConfig,
    Value,
    Unknown,
}

/// Guesses the kind of a lone file from its content.
pub fn sniff(json: &Value) -> Sniffed {
    if let Value::Array(items) = json {
        let functions = !items.is_empty()
            && items.iter().all(|i| {
                i.get("name").is_some()
                    && (i.get("can_evaluate").is_some() || i.get("private").is_some())
            });
        return if functions {
            Sniffed::FunctionsConfig
        } else {
            Sniffed::Unknown
        };
    }
    let Some(m) = json.as_object() else {
        return Sniffed::Unknown;
    };
    let has = |k: &str| m.contains_key(k);
    if has("services") && (has("authProviders") || has("pipelines") || has("values")) {
        return Sniffed::LegacyAppConfig;
    }
    if has("actions") {
        return Sniffed::ServiceRule;
    }
    if [
        "namespace",
        "valid",
        "other_fields",
        "database",
        "collection",
        "schema",
        "relationships",
    ]
    .iter()
    .any(|k| has(k))
        || (!has("roles") && (has("read") || has("write")) && !has("partition"))
    {
        return Sniffed::CollectionRules;
    }
    if has("roles") || has("filters") {
        return Sniffed::DefaultRule;
    }
    if has("partition")
        || has("queryable_fields_names")
        || has("collection_queryable_fields_names")
        || m.get("type").and_then(Value::as_str) == Some("flexible")
    {
        return Sniffed::SyncConfig;
    }
    if has("can_evaluate") {
        return Sniffed::FunctionConfig;
    }
    if has("name") && (has("value") || has("from_secret")) {
        return Sniffed::Value;
    }
    if m.is_empty() {
        // `{}`: an empty rules file, refused as such.
        return Sniffed::CollectionRules;
    }
    Sniffed::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_both_layouts() {
        assert_eq!(
            classify("data_sources/mongodb-atlas/app/items/rules.json"),
            FileKind::CollectionRules {
                data_source: "mongodb-atlas".into(),
                database: "app".into(),
                collection: "items".into()
            }
        );
        assert_eq!(
            classify("services/mongodb-atlas/rules/app.items.json"),
            FileKind::ServiceRules {
                service: "mongodb-atlas".into(),
                stem: "app.items".into()
            }
        );
        assert_eq!(classify("sync/config.json"), FileKind::SyncConfig);
        assert_eq!(
            classify("functions/a/b/config.json"),
            FileKind::FunctionConfig { name: "a/b".into() }
        );
        assert_eq!(
            classify("functions/hello.js"),
            FileKind::FunctionSource {
                name: "hello".into()
            }
        );
        assert_eq!(classify("auth/providers.json"), FileKind::Other);
    }

    #[test]
    fn finds_the_app_relative_part() {
        assert_eq!(
            app_relative("examples/x/backend/data_sources/mongodb-atlas/sync/Kiosk/rules.json")
                .as_deref(),
            Some("data_sources/mongodb-atlas/sync/Kiosk/rules.json")
        );
        assert_eq!(
            app_relative("internal/testdata/data_sources/data_sources/m/default_rule.json")
                .as_deref(),
            Some("data_sources/m/default_rule.json")
        );
        assert_eq!(app_relative("docs/includes/role.json"), None);
        assert_eq!(
            app_relative("todo/app_config.json").as_deref(),
            Some("app_config.json")
        );
    }

    #[test]
    fn routes_legacy_rule_files_by_content() {
        use serde_json::json;
        assert_eq!(
            route_service_rules_file(&json!({"name": "s", "actions": ["get"]}), "s"),
            ServiceRulesFile::ServiceRule
        );
        assert_eq!(
            route_service_rules_file(&json!({"roles": []}), "defaultRole"),
            ServiceRulesFile::DefaultRole
        );
        assert_eq!(
            route_service_rules_file(&json!({"roles": []}), "db.coll"),
            ServiceRulesFile::CollectionRules
        );
        assert_eq!(
            route_service_rules_file(&json!({"namespace": "a.b"}), "a.b"),
            ServiceRulesFile::CollectionRules
        );
    }
}
