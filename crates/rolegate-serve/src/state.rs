//! Stage: the server's shared state. Input: a [`ServeConfig`] (the app directory, the data
//! folder, the app's data store if not the embedded one, the public URL, the token and `watch`
//! settings). Output: [`AppState`]: the compiled rules, the app's settings, the open embedded
//! store (the accounts), the app's data store, the token issuer, the change feed and the open
//! `watch` streams, shared by every request.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rolegate::{LoadOptions, RuleSet, Rules};
use rolegate_store::EmbeddedStore;

use crate::accounts::RESERVED_DATABASE;
use crate::custom_token::CustomTokenVerifier;
use crate::data::SharedStore;
use crate::error::ApiError;
use crate::feed::ChangeFeed;
use crate::keys::signing_key;
use crate::settings::AppSettings;
use crate::tokens::Tokens;
use crate::watch::streams::Streams;

/// How the server is configured.
#[derive(Clone)]
pub struct ServeConfig {
    /// The App Services app directory.
    pub app_dir: PathBuf,
    /// The embedded store's data folder: the accounts and the generated signing key, and the
    /// app's data unless [`ServeConfig::data`] names another store.
    pub store_dir: PathBuf,
    /// The store of the app's collections when it is not the data folder's embedded store
    /// (the command line's `--mongodb URI` passes a MongoDB deployment here).
    pub data: Option<Arc<dyn SharedStore>>,
    /// The externally reachable URL (`http(s)://host[:port]`, no trailing slash) that
    /// `/location` returns as `hostname`: clients send every later request there.
    pub public_url: String,
    /// The HS256 signing key (at least 32 bytes); `None`: generated once in the data folder.
    pub signing_key: Option<Vec<u8>>,
    /// How long an access token lives (App Services: 30 minutes).
    pub access_lifetime: Duration,
    /// How long a refresh token lives (App Services' default: 60 days).
    pub refresh_lifetime: Duration,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The most `watch` streams open at once (more are refused with 429).
    pub max_watch_streams: usize,
    /// How many change events the feed keeps for streams that are behind (a stream further
    /// behind ends with `ChangeStreamHistoryLost`).
    pub watch_buffer: usize,
    /// How long a `watch` stream stays silent before a keep-alive comment.
    pub watch_keep_alive: Duration,
    /// The values of the app's secrets, by name (an exported app names its secrets but holds
    /// no values): the `custom-token` signing keys. Never logged.
    pub secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("app_dir", &self.app_dir)
            .field("store_dir", &self.store_dir)
            .field("data", &self.data.as_ref().map(|d| d.describe()))
            .field("public_url", &self.public_url)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "(configured)"),
            )
            .field("access_lifetime", &self.access_lifetime)
            .field("refresh_lifetime", &self.refresh_lifetime)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_watch_streams", &self.max_watch_streams)
            .field("watch_buffer", &self.watch_buffer)
            .field("watch_keep_alive", &self.watch_keep_alive)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ServeConfig {
    /// The defaults for an app and a data folder: access tokens of 30 minutes, refresh tokens
    /// of 60 days, bodies up to 16 MiB, the public URL `http://127.0.0.1:8080`, at most 256
    /// `watch` streams, a feed buffer of 1024 events, keep-alives every 15 seconds.
    pub fn new(app_dir: impl Into<PathBuf>, store_dir: impl Into<PathBuf>) -> ServeConfig {
        ServeConfig {
            app_dir: app_dir.into(),
            store_dir: store_dir.into(),
            data: None,
            public_url: "http://127.0.0.1:8080".to_string(),
            signing_key: None,
            access_lifetime: Duration::from_secs(30 * 60),
            refresh_lifetime: Duration::from_secs(60 * 24 * 3600),
            max_body_bytes: 16 * 1024 * 1024,
            max_watch_streams: 256,
            watch_buffer: 1024,
            watch_keep_alive: Duration::from_secs(15),
            secrets: BTreeMap::new(),
        }
    }
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The app's settings (root configuration, providers) cannot be read.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// The rules do not load.
    #[error("the rules do not load: {0}")]
    Rules(String),
    /// The app's configuration is not one the server can serve.
    #[error("{0}")]
    Config(String),
    /// The store cannot be opened.
    #[error("the store: {0}")]
    Store(String),
    /// No signing key.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// The listener failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Everything a request needs, shared.
pub struct AppState {
    /// The compiled rules.
    pub rules: Rules,
    /// The app's settings.
    pub settings: AppSettings,
    /// The data folder's embedded store, which holds the accounts (shared: each read and write
    /// set is its own transaction).
    pub store: Arc<EmbeddedStore>,
    /// The app's data: the same embedded store, or the store [`ServeConfig::data`] supplied.
    pub data: Arc<dyn SharedStore>,
    /// The token issuer.
    pub tokens: Tokens,
    /// The `custom-token` provider's verifier, when the app enables it.
    pub custom_token: Option<CustomTokenVerifier>,
    /// The public URL (no trailing slash).
    pub public_url: String,
    /// The largest body accepted.
    pub max_body_bytes: usize,
    /// Bounds the password hashes computed at once (argon2 takes 19 MiB and tens of
    /// milliseconds each): twice the available cores.
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// The change feed `functions/call` publishes its committed writes on.
    pub feed: ChangeFeed,
    /// The open `watch` streams.
    pub streams: Streams,
    /// One permit: an operation that writes holds it from before its read until its write is
    /// done (the permit moves into the blocking work, so a client that goes away does not
    /// release it early). Concurrent writes of this server to one document
    /// queue instead of failing with `WriteConflict` after `ops::MAX_ATTEMPTS`
    /// re-reads (MongoDB retries such conflicts itself). Waiting writers are futures, not
    /// blocked threads, so reads never wait for the blocking pool behind them, and reads do
    /// not take it.
    pub writes: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// Loads the app, opens the store and the key.
    pub fn open(config: &ServeConfig) -> Result<Arc<AppState>, ServeError> {
        let settings = AppSettings::load(&config.app_dir)?;
        let set = RuleSet::load(&config.app_dir, &LoadOptions::default())
            .map_err(|e| ServeError::Rules(e.to_string()))?;
        if let Some(cud) = &set.custom_user_data
            && cud.database == RESERVED_DATABASE
        {
            return Err(ServeError::Config(format!(
                "custom user data cannot live in the reserved database `{RESERVED_DATABASE}`"
            )));
        }
        let custom_token = settings
            .custom_token
            .as_ref()
            .map(|c| CustomTokenVerifier::new(c, &settings.app_id, &config.secrets))
            .transpose()
            .map_err(ServeError::Config)?;
        let public_url = config.public_url.trim_end_matches('/').to_string();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ServeError::Config(format!(
                "the public URL `{public_url}` must start with http:// or https://"
            )));
        }
        let store = Arc::new(
            EmbeddedStore::open(&config.store_dir).map_err(|e| ServeError::Store(e.to_string()))?,
        );
        let data: Arc<dyn SharedStore> = match &config.data {
            Some(data) => Arc::clone(data),
            None => Arc::clone(&store) as Arc<dyn SharedStore>,
        };
        let key = signing_key(config.signing_key.as_deref(), &config.store_dir)?;
        let tokens = Tokens::new(
            &key,
            &settings.app_id,
            config.access_lifetime,
            config.refresh_lifetime,
        );
        Ok(Arc::new(AppState {
            rules: Rules::new(set),
            settings,
            store,
            data,
            tokens,
            custom_token,
            public_url,
            max_body_bytes: config.max_body_bytes,
            hashing: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().saturating_mul(2)),
            )),
            feed: ChangeFeed::new(config.watch_buffer),
            streams: Streams::new(config.max_watch_streams, config.watch_keep_alive),
            writes: Arc::new(tokio::sync::Semaphore::new(1)),
        }))
    }

    /// 404 `AppNotFound` unless `app_id` is this app's.
    pub fn check_app(&self, app_id: &str) -> Result<(), ApiError> {
        if app_id == self.settings.app_id {
            Ok(())
        } else {
            Err(ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "AppNotFound",
                "cannot find app using this client app id",
            ))
        }
    }
}
