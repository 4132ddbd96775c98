//! Stage: the app's server settings. Input: an app directory (either layout). Output:
//! [`AppSettings`]: the app id, location and deployment model and the allowed request origins
//! (the root configuration: `realm_config.json`, `root_config.json`, `config.json` or
//! `stitch.json`), and the authentication providers (`auth/providers.json`, an object of
//! provider name → configuration, and `auth_providers/*.json`, one provider each).
//!
//! A provider is enabled unless its `disabled` is `true`. The server speaks `local-userpass`
//! and `anon-user`; the other enabled providers are listed in
//! [`AppSettings::unsupported_providers`] (their logins are refused).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why the settings cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SettingsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// `local-userpass` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserpassSettings {
    /// `config.autoConfirm`: a registered user is confirmed at once. Without it the app
    /// confirms by email or a function, which this server does not do yet: registration is
    /// refused.
    pub auto_confirm: bool,
}

/// What the server reads from the app directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// The client app id (`app_id`), as clients send it in routes.
    pub app_id: String,
    /// `location` (default `US-VA`).
    pub location: String,
    /// `deployment_model` (default `GLOBAL`).
    pub deployment_model: String,
    /// `allowed_request_origins` (empty: every origin).
    pub allowed_origins: Vec<String>,
    /// `local-userpass`, when enabled.
    pub userpass: Option<UserpassSettings>,
    /// Whether `anon-user` is enabled.
    pub anonymous: bool,
    /// Enabled providers of types this server does not speak (their names).
    pub unsupported_providers: Vec<String>,
}

/// The root configuration files, in the order they are looked for.
const ROOT_FILES: [&str; 4] = [
    "realm_config.json",
    "root_config.json",
    "config.json",
    "stitch.json",
];

impl AppSettings {
    /// Reads the settings of the app in `dir`.
    pub fn load(dir: &Path) -> Result<AppSettings, SettingsError> {
        let root = ROOT_FILES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| SettingsError {
                path: dir.to_path_buf(),
                message: "no root configuration (realm_config.json, root_config.json, \
                          config.json): the server needs the app's `app_id`"
                    .to_string(),
            })?;
        let config = read_json(&root)?;
        let text = |key: &str, default: &str| {
            config
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_string()
        };
        let app_id = text("app_id", "");
        if app_id.is_empty() {
            return Err(SettingsError {
                path: root,
                message: "no `app_id` (a string): clients name the app by it".to_string(),
            });
        }
        let allowed_origins = match config.get("allowed_request_origins") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| SettingsError {
                        path: root.clone(),
                        message: "`allowed_request_origins` must hold strings".to_string(),
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(SettingsError {
                    path: root,
                    message: "`allowed_request_origins` must be an array".to_string(),
                });
            }
        };
        let providers = providers(dir)?;
        let mut settings = AppSettings {
            app_id,
            location: text("location", "US-VA"),
            deployment_model: text("deployment_model", "GLOBAL"),
            allowed_origins,
            userpass: None,
            anonymous: false,
            unsupported_providers: Vec::new(),
        };
        for (name, provider) in providers {
            if provider.get("disabled").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let kind = provider
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or(&name);
            match (kind, name.as_str()) {
                ("local-userpass", "local-userpass") => {
                    let auto_confirm = provider
                        .pointer("/config/autoConfirm")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    settings.userpass = Some(UserpassSettings { auto_confirm });
                }
                ("anon-user", "anon-user") => settings.anonymous = true,
                _ => settings.unsupported_providers.push(name),
            }
        }
        Ok(settings)
    }
}

/// Provider name → configuration, from `auth/providers.json` and `auth_providers/*.json`.
fn providers(dir: &Path) -> Result<BTreeMap<String, Value>, SettingsError> {
    let mut out = BTreeMap::new();
    let current = dir.join("auth").join("providers.json");
    if current.is_file() {
        match read_json(&current)? {
            Value::Object(map) => out.extend(map),
            _ => {
                return Err(SettingsError {
                    path: current,
                    message: "expected an object of provider name → configuration".to_string(),
                });
            }
        }
    }
    let legacy = dir.join("auth_providers");
    if legacy.is_dir() {
        let entries = std::fs::read_dir(&legacy).map_err(|e| SettingsError {
            path: legacy.clone(),
            message: e.to_string(),
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let value = read_json(&file)?;
            let name = value
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_default();
            out.insert(name, value);
        }
    }
    Ok(out)
}

fn read_json(path: &Path) -> Result<Value, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|e| SettingsError {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| SettingsError {
        path: path.to_path_buf(),
        message: format!("not JSON: {e}"),
    })
}
