//! `rolegate serve APP [--store DIR] [--mongodb URI] [--listen ADDR] [--public-url URL]`: serve
//! the app to MongoDB Atlas App Services clients (Realm Web, the Realm SDKs: they take a
//! `baseUrl`), on its embedded store or, with `--mongodb` (builds with the `mongodb` feature),
//! on a MongoDB deployment. The server itself is the `rolegate-serve` crate.
//!
//! Input: an app directory (its rules, `app_id`, `allowed_request_origins` and authentication
//! providers), the data folder (`APP/.rolegate/data` by default, see [`super::store`]; it holds
//! the accounts and the signing key, and the app's data unless `--mongodb` names a deployment),
//! the
//! address to listen on (default `127.0.0.1:8080`) and the URL clients reach the server at
//! (`--public-url`, default `http://` + the listen address; behind a proxy, the proxy's URL),
//! which `/location` hands to clients. The token signing key: the environment variable
//! `ROLEGATE_SIGNING_KEY` (at least 32 bytes), else one generated once in the data folder
//! (`serve-signing-key`, mode 0600). `--access-token-seconds` and `--refresh-token-days` set
//! the token lifetimes (30 minutes and 60 days by default).
//!
//! The app's secrets, which an exported app names but does not hold (the `custom-token`
//! provider's signing keys): each environment variable `ROLEGATE_SECRET_<NAME>` gives the
//! secret `<NAME>`, and `--secret NAME=VALUE` (repeatable; it wins over the environment) too.
//! The environment is the safer of the two: a command line is visible to other users of the
//! machine (`ps`). Values are never printed or logged.
//!
//! Output: one log line per request on stderr (`RUST_LOG` filters; default `info`); the
//! server stops gracefully on ctrl-c or SIGTERM. Exit codes ([`super::exit`]): 0 after a
//! graceful stop; 2 for `--mongodb` in a build without MongoDB support; 4 when the app does not
//! load (rules, root configuration, providers); 3 when the store, the MongoDB deployment or the
//! key cannot be opened or the address cannot be bound.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use rolegate_serve::{ServeConfig, ServeError};

use super::report::Problem;
use super::store::{check_mongodb_support, data_folder, mongodb_for_serve};
use super::{CliError, Exit};

/// The environment variable that holds the signing key.
pub const SIGNING_KEY_VAR: &str = "ROLEGATE_SIGNING_KEY";

/// The prefix of the environment variables that hold the app's secrets.
pub const SECRET_VAR_PREFIX: &str = "ROLEGATE_SECRET_";

/// Arguments of `rolegate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The App Services app directory.
    pub app: PathBuf,
    /// The data folder (default: `APP/.rolegate/data`): the accounts, the signing key and,
    /// without `--mongodb`, the app's data.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Keep the app's data on this MongoDB deployment (a replica set or sharded cluster;
    /// builds with the `mongodb` feature). The URI is never printed.
    #[arg(long, value_name = "URI")]
    pub mongodb: Option<String>,
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The URL clients reach the server at, returned by `/location` (default: `http://` and
    /// the listen address).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// How long an access token lives, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub access_token_seconds: u64,
    /// How long a refresh token (a session) lives, in days.
    #[arg(long, value_name = "DAYS", default_value_t = 60)]
    pub refresh_token_days: u64,
    /// A secret of the app (a `custom-token` signing key), `NAME=VALUE`; repeatable. Prefer
    /// the environment variable `ROLEGATE_SECRET_<NAME>`: a command line is visible to others.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    pub secrets: Vec<SecretArg>,
}

/// A `--secret` argument, kept whole until [`secrets`] splits it: neither its `Debug` nor any
/// error shows the value.
#[derive(Clone)]
pub struct SecretArg(String);

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg(..)")
    }
}

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretArg(s.to_string()))
    }
}

/// The app's secrets: `ROLEGATE_SECRET_<NAME>` variables, then `--secret` (which wins). A
/// `--secret` without `NAME=` is a usage error that does not repeat the argument.
fn secrets(args: &ServeArgs) -> Result<BTreeMap<String, String>, CliError> {
    let mut out: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let name = k.to_str()?.strip_prefix(SECRET_VAR_PREFIX)?.to_string();
            Some((name, v.into_string().ok()?))
        })
        .filter(|(name, _)| !name.is_empty())
        .collect();
    for (i, SecretArg(arg)) in args.secrets.iter().enumerate() {
        match arg.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                out.insert(name.to_string(), value.to_string());
            }
            _ => {
                return Err(CliError::usage(
                    "secret",
                    format!(
                        "--secret number {} is not NAME=VALUE (its value is not shown)",
                        i + 1
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Runs `serve` until ctrl-c.
pub fn run(args: &ServeArgs) -> Result<Exit, CliError> {
    check_mongodb_support(args.mongodb.as_deref())?;
    let dir = data_folder(&args.app, args.store.as_deref())?;
    let mut config = ServeConfig::new(&args.app, dir);
    if let Some(uri) = &args.mongodb {
        config.data = Some(mongodb_for_serve(uri)?);
    }
    config.public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen));
    config.access_lifetime = Duration::from_secs(args.access_token_seconds);
    config.refresh_lifetime =
        Duration::from_secs(args.refresh_token_days.saturating_mul(24 * 3600));
    config.signing_key = std::env::var(SIGNING_KEY_VAR).ok().map(String::into_bytes);
    config.secrets = secrets(args)?;
    rolegate_serve::init_logging();
    rolegate_serve::run(&config, args.listen).map_err(|e| {
        let exit = match e {
            ServeError::Settings(_) | ServeError::Rules(_) | ServeError::Config(_) => Exit::Rules,
            ServeError::Store(_) | ServeError::Key(_) | ServeError::Io(_) => Exit::Input,
        };
        CliError::new(exit, vec![Problem::error("serve", e.to_string())])
    })?;
    Ok(Exit::Yes)
}
