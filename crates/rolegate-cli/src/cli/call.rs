//! `rolegate call APP --user USER.json [BODY.json | -]`: run one MongoDB operation under the
//! app's rules on a data store, as an App Services client's call to the MongoDB service would.
//!
//! Input: the rules (an app directory, or a rule file with `--store`), the `%%user` object
//! (`USER.json`, read as `eval` reads it), optionally the request (`--request REQ.json`: its
//! `values`, `environment`, `http` and `functions` mocks), and the body the client sends
//! (`{"name": "find", "arguments": [{"database", "collection", "query", ...}], "service"}`,
//! Extended JSON; a file, or stdin for `-` or when no file is given and stdin is not a
//! terminal). The store: the embedded
//! store in the app's data folder (`APP/.rolegate/data`, see [`super::store`]), another folder
//! with `--store DIR`, or a MongoDB deployment with `--mongodb URI` (builds with the `mongodb`
//! feature only). The request context is built by [`super::call_context`].
//!
//! Output: the operation's result, exactly what the client gets (an array for `find`, a number
//! for `count`, `{"matchedCount", "modifiedCount"}` for updates, ...), as **canonical Extended
//! JSON** on one line of stdout ([`super::ejson`]); the writes are applied all or nothing.
//! `--system` runs it as the system user (every rule bypassed; the user file is still read).
//! `--explain` writes to stderr, each line starting with `explain: `: where the context came
//! from, the read residual (`residual: everything|nothing|<query> exact|superset`), the query
//! sent to the store, `store returned N`, the decision on each document, `visible M`; on
//! failure, the detailed reason (it may quote rules and stored values). The residual joins the
//! store query unless `--no-pushdown`; `--limit-before-rules` applies `limit` as App Services
//! did (decision P3).
//!
//! A failure prints the client-safe code and message on stderr (`error[UpdateNotPermitted]:
//! update not permitted`), with the detailed reason only under `--explain`, except for a body
//! that is not a valid operation: its problems describe only the body, so they are the hint.
//!
//! Exit codes ([`super::exit`]): 0 when the operation ran and its result is printed; 1 when it
//! failed as App Services answers a client (refused by the rules, no rule for the namespace, an
//! operator refused to app users, a duplicate key, a write conflict): nothing was written; 2 for
//! a wrong command line (an unknown `--environment`, `--mongodb` in a build without MongoDB
//! support, a rule file without `--store`); 3 for an unusable user, request or body file (a body
//! that is not JSON or not a valid operation) or a store that cannot be opened or fails; 4 for
//! rules that do not load.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use bson::Bson;
use clap::Args;
use rolegate::Rules;
use rolegate::ops::{OpEnv, OpError, Operation, execute};

use super::call_context::{self, CallSettings};
use super::ejson::canonical;
use super::inputs::{Inputs, STDIN, load_app, one_stdin, read_json, shown};
use super::report::{self, Problem};
use super::store::{check_mongodb_support, open_for_call};
use super::{CliError, Exit, Format, emit};

/// Arguments of `rolegate call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// An app directory (either layout), or one rule file with `--store`.
    pub app: PathBuf,
    /// The `%%user` object: `{id, type, data, custom_data, identities}` (`-`: stdin).
    #[arg(long, value_name = "USER.json")]
    pub user: PathBuf,
    /// The request: `values`, `environment`, `http` (`%%request`) and `functions` mocks, the
    /// object of a conformance case's `request` (`-`: stdin); its `operation` is not used.
    #[arg(long, value_name = "REQ.json")]
    pub request: Option<PathBuf>,
    /// The body of the call: `{"name": ACTION, "arguments": [{"database", "collection", ...}]}`
    /// (`-` or nothing: stdin).
    #[arg(value_name = "BODY.json")]
    pub body: Option<PathBuf>,
    /// The embedded store's data folder (default: `APP/.rolegate/data`).
    #[arg(long, value_name = "DIR", conflicts_with = "mongodb")]
    pub store: Option<PathBuf>,
    /// Run on a MongoDB deployment instead of the embedded store (builds with the `mongodb`
    /// feature only).
    #[arg(long, value_name = "URI")]
    pub mongodb: Option<String>,
    /// Run as the system user: every rule, filter and schema check is bypassed.
    #[arg(long)]
    pub system: bool,
    /// Print on stderr the query sent to the store, the number of documents it returned, the
    /// decision on each, and the detailed reason of a failure. For operators: it quotes rules
    /// and stored values.
    #[arg(long)]
    pub explain: bool,
    /// The environment `%%environment` exposes (default: the request file's, else the app's).
    #[arg(long, value_name = "TAG")]
    pub environment: Option<String>,
    /// Do not push the read residual into the store query: the store returns every document
    /// the filters and the client query select, and the rules withhold (same answer, more
    /// reading).
    #[arg(long)]
    pub no_pushdown: bool,
    /// App Services' order: `limit` counts the documents the filters select before the rules
    /// withhold any (a page may hold fewer); implies `--no-pushdown` (decision P3).
    #[arg(long)]
    pub limit_before_rules: bool,
}

/// Runs `call`.
pub fn run(args: &CallArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    check_mongodb_support(args.mongodb.as_deref())?;
    let stdin = Path::new(STDIN);
    if args.body.is_none() && std::io::stdin().is_terminal() {
        return Err(CliError::new(
            Exit::Usage,
            vec![
                Problem::error(
                    "no-body",
                    "no body: give BODY.json, or `-` and the body on stdin",
                )
                .with_hint(BODY_SHAPE),
            ],
        ));
    }
    let body_path = args.body.as_deref().unwrap_or(stdin);
    one_stdin(&[
        ("--user", Some(&args.user)),
        ("--request", args.request.as_deref()),
        ("BODY", Some(body_path)),
    ])?;
    let inputs = Inputs::read(&args.user, args.request.as_deref())?;
    let op = read_body(body_path)?;
    let (set, _) = load_app(&args.app)?;
    for w in set.warnings.warnings() {
        report::warn(&Problem::from_diagnostic(w), Format::Human);
    }
    for w in &inputs.warnings {
        report::warn(w, Format::Human);
    }
    let rules = Rules::new(set);
    let collection = match rules.operation_collection(&op) {
        Ok(c) => c,
        Err(e) => return Err(failed(&e, args.explain, &mut Explain::new(args.explain))),
    };
    let governed = collection.namespace();
    let policy = collection.policy();
    let data_source = policy.data_source.to_string();
    let rules_text = if policy.roles.is_empty() {
        format!("no rules ({governed} has no roles)")
    } else if policy.role_source == rolegate::rules::RoleSource::Default {
        format!("the default rule of data source `{data_source}`")
    } else {
        format!("the rules of {governed}")
    };
    let mut opened = open_for_call(&args.app, args.store.as_deref(), args.mongodb.as_deref())?;
    if let Some(dir) = &opened.created {
        report::warn(
            &Problem::warning(
                "empty-store",
                format!("{} held no store: created an empty one", dir.display()),
            )
            .with_hint("`rolegate import APP DB.COLL DOCS.jsonl` loads documents into it"),
            Format::Human,
        );
    }
    let settings = CallSettings {
        operation: &op,
        data_source: &data_source,
        environment: args.environment.as_deref(),
        system: args.system,
    };
    let built = call_context::build(&inputs, rules.rule_set(), &settings, opened.store.as_mut())?;
    let mut explain = Explain::new(args.explain);
    explain.line(|| {
        let who = if args.system {
            "the system user".to_string()
        } else {
            user_text(built.context.user.as_ref())
        };
        format!(
            "{} on {} as {who}, under {rules_text}, on {}",
            op.name(),
            op.namespace(),
            opened.description
        )
    });
    for note in &built.notes {
        explain.line(|| note.clone());
    }
    let request = collection
        .prepare(&built.context)
        .with_explain(args.explain)
        .with_pushdown(!args.no_pushdown)
        .with_window_before_rules(args.limit_before_rules);
    match execute(&request, &op, opened.store.as_mut(), &mut OpEnv::new()) {
        Ok(decided) => {
            for line in &decided.explanation {
                explain.line(|| line.clone());
            }
            if let Some(w) = &decided.writes {
                explain.line(|| format!("wrote {} changes to {}", w.changes.len(), w.namespace));
            } else {
                explain.line(|| "wrote nothing".to_string());
            }
            emit(out, canonical(&decided.result)?)?;
            Ok(Exit::Yes)
        }
        Err(e) => {
            // The decisions made before the operation failed (nothing was written).
            for line in e.explanation() {
                explain.line(|| line.clone());
            }
            Err(failed(&e, args.explain, &mut explain))
        }
    }
}

/// Reads and parses the body (exit 3 when it is not JSON, not an object, or not a valid
/// operation; the problems of an invalid operation describe only the body, so they are shown).
fn read_body(path: &Path) -> Result<Operation, CliError> {
    let file = shown(path);
    let value = read_json(path)?;
    let body = rolegate::testing::to_document(&value, "").map_err(|e| {
        CliError::input(
            Problem::error(
                "invalid-body",
                format!("the body is not a document: {}", e.message),
            )
            .in_file(file.clone())
            .with_hint(BODY_SHAPE),
        )
    })?;
    Operation::from_body(&body).map_err(|e| {
        let client = e.client_error();
        CliError::input(
            Problem::error(client.code, client.message)
                .in_file(file)
                .with_hint(e.detail().to_string()),
        )
    })
}

/// The shape of a body, for hints.
const BODY_SHAPE: &str = "a body is `{\"name\": \"find\", \"arguments\": [{\"database\": \"DB\", \
                          \"collection\": \"COLL\", \"query\": {...}}]}`";

/// The error of a failed operation: the client-safe code and message (exit 1; 3 when the
/// store failed), the detailed reason under `--explain`.
fn failed(e: &OpError, explaining: bool, explain: &mut Explain) -> CliError {
    explain.line(|| format!("error detail: {}", e.detail()));
    let client = e.client_error();
    let mut problem = Problem::error(client.code, client.message);
    if !explaining {
        problem = problem.with_hint(
            "`--explain` prints the detailed reason, which may quote rules and stored values",
        );
    }
    let exit = if client.code == "InternalServerError" {
        Exit::Input
    } else {
        Exit::No
    };
    CliError::new(exit, vec![problem])
}

/// `user ID` for the explanation.
fn user_text(user: Option<&Bson>) -> String {
    match user {
        Some(Bson::Document(u)) => match u.get("id") {
            Some(Bson::String(id)) => format!("user {id}"),
            Some(other) => format!("user {other}"),
            None => "a user without id".to_string(),
        },
        _ => "no user".to_string(),
    }
}

/// The `--explain` lines, written to stderr as they come (`explain: ...`).
struct Explain {
    on: bool,
}

impl Explain {
    fn new(on: bool) -> Explain {
        Explain { on }
    }

    fn line(&mut self, text: impl FnOnce() -> String) {
        if self.on {
            let stderr = std::io::stderr();
            let mut err = stderr.lock();
            let _ = writeln!(err, "explain: {}", text());
        }
    }
}
