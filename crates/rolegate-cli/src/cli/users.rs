//! `rolegate users ACTION APP [--store DIR]`: the users of an app's embedded store, as
//! `rolegate serve` keeps them (the account logic is `rolegate_serve::accounts`, shared with
//! the server).
//!
//! Input: the action (`list`, `create EMAIL`, `disable USER`, `enable USER`, `reset-password
//! EMAIL`), the app directory and its data folder (`APP/.rolegate/data` by default, see
//! [`super::store`]); `USER` is a user id or a `local-userpass` email. `create` and
//! `reset-password` read the password from the first line of stdin (`--password-stdin` says so
//! explicitly): never from the command line, where other users of the machine could read it,
//! and never from a terminal, which would echo it. Output: `list` prints one user per line
//! (`ID TYPE PROVIDERS EMAIL [disabled]`, or JSON lines with `--format json`); the other
//! actions print what they did (never the password). Disabling a user, or resetting its
//! password, closes its sessions: its refresh tokens stop working at once, its access tokens at
//! their next use.
//!
//! Exit codes ([`super::exit`]): 0 done; 3 for an unknown user, an email already registered, a
//! password of the wrong length or a store that cannot be opened — in particular one a running
//! `rolegate serve` holds (the store allows one process at a time: stop the server, or use
//! the server's API).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use rolegate_serve::accounts;
use rolegate_serve::error::ApiError;
use rolegate_store::EmbeddedStore;

use super::report::Problem;
use super::store::data_folder;
use super::{CliError, Format, emit};

/// Where the users are: the app and its data folder.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The App Services app directory.
    pub app: PathBuf,
    /// The embedded store's data folder (default: `APP/.rolegate/data`).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

/// Arguments of `rolegate users`.
#[derive(Debug, Args)]
pub struct UsersArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: UsersAction,
}

/// The actions of `rolegate users`.
#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// List the users: id, type, providers, email, and whether disabled.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Create a confirmed local-userpass user; the password is read from stdin.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// The email (case-sensitive, as App Services compares emails).
        email: String,
        /// Read the password from stdin (the default; no other way is offered).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user (by id or email): no login, sessions closed, tokens refused.
    Disable {
        #[command(flatten)]
        store: StoreArgs,
        /// A user id or a local-userpass email.
        user: String,
    },
    /// Enable a disabled user again (by id or email).
    Enable {
        #[command(flatten)]
        store: StoreArgs,
        /// A user id or a local-userpass email.
        user: String,
    },
    /// Set a local-userpass user's password (read from stdin) and close its sessions.
    ResetPassword {
        #[command(flatten)]
        store: StoreArgs,
        /// The email.
        email: String,
        /// Read the password from stdin (the default; no other way is offered).
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Runs `users`.
pub fn run(args: &UsersArgs, out: &mut dyn Write) -> Result<super::Exit, CliError> {
    match &args.action {
        UsersAction::List { store, format } => {
            let store = open(store)?;
            for user in accounts::list_users(&store).map_err(account_error)? {
                let line = match format {
                    Format::Json => serde_json::json!({
                        "id": user.id,
                        "type": user.kind,
                        "providers": user.providers,
                        "email": user.email,
                        "disabled": user.disabled,
                    })
                    .to_string(),
                    Format::Human => format!(
                        "{}  {}  {}  {}{}",
                        user.id,
                        user.kind,
                        if user.providers.is_empty() {
                            "-".to_string()
                        } else {
                            user.providers.join(",")
                        },
                        user.email.as_deref().unwrap_or("-"),
                        if user.disabled { "  disabled" } else { "" }
                    ),
                };
                emit(out, line)?;
            }
        }
        UsersAction::Create { store, email, .. } => {
            let password = read_password()?;
            accounts::check_credentials(email, &password).map_err(account_error)?;
            let store = open(store)?;
            let id = accounts::register(&store, email, &password).map_err(account_error)?;
            emit(out, format!("created user {id} ({email})"))?;
        }
        UsersAction::Disable { store, user } | UsersAction::Enable { store, user } => {
            let disable = matches!(args.action, UsersAction::Disable { .. });
            let store = open(store)?;
            let id = accounts::find_user(&store, user).map_err(account_error)?;
            let changed = accounts::set_disabled(&store, id, disable).map_err(account_error)?;
            let state = if disable { "disabled" } else { "enabled" };
            let line = if changed {
                format!("user {id} is now {state}")
            } else {
                format!("user {id} was already {state}")
            };
            emit(out, line)?;
        }
        UsersAction::ResetPassword { store, email, .. } => {
            let password = read_password()?;
            accounts::check_credentials(email, &password).map_err(account_error)?;
            let store = open(store)?;
            accounts::reset_password(&store, email, &password).map_err(account_error)?;
            emit(
                out,
                format!("password of {email} reset; its sessions are closed"),
            )?;
        }
    }
    Ok(super::Exit::Yes)
}

/// Opens the store, saying what to do when a running server holds it.
fn open(args: &StoreArgs) -> Result<EmbeddedStore, CliError> {
    let dir = data_folder(&args.app, args.store.as_deref())?;
    EmbeddedStore::open(&dir).map_err(|e| {
        let message = e.to_string();
        let mut problem = Problem::error("store", format!("cannot open the data store: {message}"))
            .in_file(dir.display().to_string());
        if message.contains("already open") {
            problem = problem.with_hint(
                "another process has the store open (a running `rolegate serve`?): the store \
                 allows one process at a time; stop the server, then run this command again",
            );
        }
        CliError::input(problem)
    })
}

/// An account operation's refusal (exit 3), with its client-safe message.
fn account_error(e: ApiError) -> CliError {
    CliError::input(Problem::error("user", e.message))
}

/// The password: the first line of stdin, without its line ending. A terminal is refused (it
/// would echo the password).
fn read_password() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(CliError::new(
            super::Exit::Usage,
            vec![
                Problem::error(
                    "password-stdin",
                    "the password is read from stdin, which is a terminal here (it would be \
                     echoed)",
                )
                .with_hint("pipe it in: `printf '%s\\n' \"$PASSWORD\" | rolegate users ...`"),
            ],
        ));
    }
    let mut text = String::new();
    stdin
        .lock()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| CliError::input(Problem::error("io", format!("cannot read stdin: {e}"))))?;
    let line = text.lines().next().unwrap_or_default().to_string();
    if line.is_empty() {
        return Err(CliError::input(Problem::error(
            "password",
            "no password on stdin",
        )));
    }
    Ok(line)
}
