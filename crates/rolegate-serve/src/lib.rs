//! `rolegate serve`: the HTTP server that MongoDB Atlas App Services clients (Realm Web, the
//! Node / React Native / Swift / Kotlin SDKs) point their `baseUrl` at. Stage: hosting. Input:
//! an app directory, a data folder and a [`ServeConfig`]. Output: the client API of App
//! Services (`/api/client/v2.0`) on the embedded store or a store the host supplies (a MongoDB
//! deployment): location; `local-userpass`, `anon-user`, `custom-token` and `api-key` logins;
//! sessions and user API keys; the MongoDB service's actions and `watch` under the app's rules.
//!
//! ```text
//! ServeConfig ──AppState::open──▶ AppState (Rules, AppSettings, accounts store, data store,
//!                                   │        Tokens, ChangeFeed, Streams)
//!                                   └─ router ─▶ axum Router ─ serve(listener, shutdown)
//! ```
//!
//! Modules: [`settings`] (the app's id, origins and providers), [`data`] (the app's data
//! store), [`keys`] (the signing key), [`tokens`] (JWTs), [`accounts`] (users, passwords,
//! devices, sessions in the reserved database), [`custom_token`] (JWT logins), [`api_keys`]
//! (user API keys), [`error`] (the error body), [`http`] (bearer tokens, bodies, blocking
//! work), [`routes`] (the handlers, CORS and the request log), [`state`] (the shared state),
//! [`feed`] (the committed changes, in order), [`watch`] (change streams as server-sent
//! events), [`function_uses`] (the rules that call `%function`, listed at startup).
//!
//! Not served yet: the other providers (OAuth, custom function), email confirmation and
//! password reset, identity linking, user deletion, the app's own functions.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accounts;
pub mod api_keys;
pub mod custom_token;
pub mod data;
pub mod error;
pub mod feed;
pub mod function_uses;
pub mod http;
pub mod keys;
pub mod routes;
pub mod settings;
pub mod state;
pub mod tokens;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use routes::router;
pub use state::{AppState, ServeConfig, ServeError};

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in
/// flight (graceful shutdown). Open `watch` streams never finish by themselves: `shutdown`
/// should end them with [`AppState`]'s `streams.close()` (as [`run`] does).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Opens the app and serves it on `listen` until ctrl-c (or SIGTERM), on a new tokio runtime.
pub fn run(config: &ServeConfig, listen: SocketAddr) -> Result<(), ServeError> {
    let state = AppState::open(config)?;
    for name in &state.settings.unsupported_providers {
        tracing::warn!(provider = %name, "provider enabled by the app but not served: its logins are refused");
    }
    for warning in &state.settings.warnings {
        tracing::warn!("{warning}");
    }
    for (namespace, functions) in function_uses::rules_calling_functions(state.rules.rule_set()) {
        tracing::warn!(
            collection = %namespace,
            functions = %functions.join(", "),
            "rules call %function, which this server does not run: those expressions deny"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        tracing::info!(
            listen = %listener.local_addr()?,
            public_url = %state.public_url,
            app_id = %state.settings.app_id,
            data = %state.data.describe(),
            "serving"
        );
        let streams = Arc::clone(&state);
        let shutdown = async move {
            shutdown_signal().await;
            streams.streams.close();
        };
        serve(listener, router(state), shutdown).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Completes on ctrl-c, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Logs to stderr, one line per event (`RUST_LOG` filters; default `info`). Does nothing when
/// a subscriber is already installed.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
