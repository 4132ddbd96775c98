//! Stage: the app's server settings. Input: an app directory (either layout). Output:
//! [`AppSettings`]: the app id, location and deployment model and the allowed request origins
//! (the root configuration: `realm_config.json`, `root_config.json`, `config.json` or
//! `stitch.json`), and the authentication providers (`auth/providers.json`, an object of
//! provider name → configuration, and `auth_providers/*.json`, one provider each).
//!
//! A provider is enabled unless its `disabled` is `true`. The server speaks `local-userpass`,
//! `anon-user`, `api-key` and `custom-token` (signing keys given by the app's configuration, see
//! [`CustomTokenSettings`]); the other enabled providers, and a `custom-token` provider that
//! verifies with a JWK URI (`config.useJWKURI`), are listed in
//! [`AppSettings::unsupported_providers`] with a warning (their logins are refused: fail
//! closed). A `custom-token` configuration the server cannot read is an error.

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

/// The JWT signing algorithm of a `custom-token` provider (`config.signingAlgorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// HMAC SHA-256: each signing key is a shared secret (its UTF-8 bytes).
    Hs256,
    /// RSA SHA-256: each signing key is an RSA public key in PEM (PKCS#1 or SPKI).
    Rs256,
}

/// One `metadata_fields` entry of a `custom-token` provider: a value of the JWT copied into
/// the user's `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataField {
    /// `required`: a login whose JWT lacks the value is refused.
    pub required: bool,
    /// `name`, split into its segments: a dot path into the JWT's payload (`\.` is a dot
    /// inside a segment).
    pub path: Vec<String>,
    /// `field_name` (default: the path's last segment): the key in the user's `data`.
    pub field_name: String,
}

/// The longest `field_name` App Services accepts.
pub const MAX_FIELD_NAME: usize = 64;

/// `custom-token` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomTokenSettings {
    /// `config.signingAlgorithm`.
    pub algorithm: SigningAlgorithm,
    /// The names of the secrets that hold the signing keys (`secret_config.signingKeys`, or
    /// `config.signingKeys`; a single `signingKey` string is read too). An exported app holds
    /// the names only: the server takes the values from its configuration.
    pub signing_key_secrets: Vec<String>,
    /// `config.audience` (a string or a list); empty: the JWT's `aud` must hold the app id.
    pub audience: Vec<String>,
    /// `config.requireAnyAudience`: one listed audience suffices (else all are needed).
    pub require_any_audience: bool,
    /// `metadata_fields`.
    pub metadata_fields: Vec<MetadataField>,
}

impl CustomTokenSettings {
    /// Reads a provider's configuration (the value of `custom-token` in the providers file).
    pub fn read(provider: &Value) -> Result<CustomTokenSettings, String> {
        let algorithm = match provider
            .pointer("/config/signingAlgorithm")
            .and_then(Value::as_str)
        {
            Some("HS256") => SigningAlgorithm::Hs256,
            Some("RS256") => SigningAlgorithm::Rs256,
            Some(other) => {
                return Err(format!(
                    "`config.signingAlgorithm` `{other}` is not HS256 or RS256"
                ));
            }
            None => return Err("`config.signingAlgorithm` (HS256 or RS256) is missing".into()),
        };
        let mut signing_key_secrets = Vec::new();
        for place in ["secret_config", "config"] {
            for key in ["signingKeys", "signingKey"] {
                match provider.get(place).and_then(|c| c.get(key)) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => signing_key_secrets.push(s.clone()),
                    Some(Value::Array(items)) => {
                        for item in items {
                            let name = item.as_str().ok_or_else(|| {
                                format!("`{place}.{key}` must hold secret names (strings)")
                            })?;
                            signing_key_secrets.push(name.to_string());
                        }
                    }
                    Some(_) => return Err(format!("`{place}.{key}` must be a list of names")),
                }
            }
        }
        signing_key_secrets.retain(|n| !n.is_empty());
        signing_key_secrets.dedup();
        if signing_key_secrets.is_empty() {
            return Err("no signing key: `secret_config.signingKeys` names none".into());
        }
        let audience = match provider.pointer("/config/audience") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| "`config.audience` must hold strings".to_string())
                })
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|a| !a.is_empty())
                .collect(),
            Some(_) => return Err("`config.audience` must be a string or a list".into()),
        };
        let require_any_audience = provider
            .pointer("/config/requireAnyAudience")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let metadata_fields = match provider.get("metadata_fields") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                items.iter().map(metadata_field).collect::<Result<_, _>>()?
            }
            Some(_) => return Err("`metadata_fields` must be a list".into()),
        };
        Ok(CustomTokenSettings {
            algorithm,
            signing_key_secrets,
            audience,
            require_any_audience,
            metadata_fields,
        })
    }
}

/// One `metadata_fields` entry.
fn metadata_field(entry: &Value) -> Result<MetadataField, String> {
    let name = entry
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or("each `metadata_fields` entry needs a `name` (a path in the JWT)")?;
    let path = split_path(name);
    if path.iter().any(String::is_empty) {
        return Err(format!("metadata field `{name}`: an empty path segment"));
    }
    let field_name = match entry.get("field_name").and_then(Value::as_str) {
        Some(f) if !f.is_empty() => f.to_string(),
        _ => path.last().cloned().unwrap_or_default(),
    };
    if field_name.chars().count() > MAX_FIELD_NAME || field_name.starts_with('$') {
        return Err(format!(
            "metadata field `{name}`: `field_name` must be at most {MAX_FIELD_NAME} characters \
             and not start with `$`"
        ));
    }
    Ok(MetadataField {
        required: entry.get("required").and_then(Value::as_bool) == Some(true),
        path,
        field_name,
    })
}

/// Splits a metadata path at the dots that are not escaped (`\.` is a dot in a segment).
fn split_path(name: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                if let Some(last) = out.last_mut() {
                    last.push('.');
                }
            }
            '.' => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
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
    /// Whether `api-key` (user API keys) is enabled.
    pub api_key: bool,
    /// `custom-token`, when enabled with signing keys.
    pub custom_token: Option<CustomTokenSettings>,
    /// Enabled providers of types this server does not speak (their names).
    pub unsupported_providers: Vec<String>,
    /// What the server logs as a warning at startup (why a provider is not served).
    pub warnings: Vec<String>,
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
            api_key: false,
            custom_token: None,
            unsupported_providers: Vec::new(),
            warnings: Vec::new(),
        };
        let providers_file = if dir.join("auth").join("providers.json").is_file() {
            dir.join("auth").join("providers.json")
        } else {
            dir.join("auth_providers")
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
                ("api-key", "api-key") => settings.api_key = true,
                ("custom-token", "custom-token") => {
                    if provider
                        .pointer("/config/useJWKURI")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                    {
                        settings.warnings.push(
                            "provider `custom-token` verifies tokens with a JWK URI \
                             (`config.useJWKURI`), which this server does not support: its \
                             logins are refused"
                                .to_string(),
                        );
                        settings.unsupported_providers.push(name);
                    } else {
                        settings.custom_token =
                            Some(CustomTokenSettings::read(&provider).map_err(|message| {
                                SettingsError {
                                    path: providers_file.clone(),
                                    message: format!("provider `custom-token`: {message}"),
                                }
                            })?);
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_paths_split_at_unescaped_dots() {
        assert_eq!(split_path("a.b"), ["a", "b"]);
        assert_eq!(
            split_path(r"valid\.json\.key.nested"),
            ["valid.json.key", "nested"]
        );
        let field = metadata_field(&serde_json::json!({"name": "user_data.name"})).unwrap();
        assert_eq!((field.field_name.as_str(), field.required), ("name", false));
        assert!(metadata_field(&serde_json::json!({"name": "a..b"})).is_err());
    }

    #[test]
    fn custom_token_settings() {
        let read = |v: Value| CustomTokenSettings::read(&v);
        let ok = read(
            serde_json::json!({"config": {"signingAlgorithm": "RS256", "audience": "a, b",
            "requireAnyAudience": true}, "secret_config": {"signingKeys": ["k1", "k2"]}}),
        )
        .unwrap();
        assert_eq!(ok.algorithm, SigningAlgorithm::Rs256);
        assert_eq!(ok.audience, ["a", "b"]);
        assert_eq!(ok.signing_key_secrets, ["k1", "k2"]);
        assert!(
            read(serde_json::json!({"config": {"signingAlgorithm": "ES256"},
            "secret_config": {"signingKeys": ["k"]}}))
            .is_err()
        );
        assert!(read(serde_json::json!({"config": {"signingAlgorithm": "HS256"}})).is_err());
    }
}
