//! `rolegate eval PATH --collection DB.COLL --user USER.json --action ACTION`: decide reads or
//! writes of documents for one user.
//!
//! Input: the rules (an app directory or a rule file), the `%%user` object (`USER.json`), the
//! request (`REQ.json`, the same object as a conformance case's `request`: `values`,
//! `environment`, `http`, `args`, `functions`, `operation`, `client_projection`, ...), and the
//! documents: one (`--document DOC.json`) or many (`--documents DOCS.jsonl`, one per line). For
//! `update`, the documents are post-images and `--prev` gives the pre-images (a JSON file with
//! `--document`, a JSON Lines file paired line by line with `--documents`).
//!
//! Output, for `read`/`search`: the query plan once (applied filters; the store query and store
//! projection that would be sent to the database; the canonical merged query and the output
//! projection, which describe the request). Each document plays the stored document: it goes
//! through the database's part of the plan in memory (store query, store projection), then
//! [`rolegate::PreparedRequest::read_for`]: the rules decide on the stored document, the client
//! query is evaluated on the redacted document, and the output projection narrows it. A
//! document that a query does not select is withheld ("not selected by the query plan"). Then
//! one decision per document — human: a block with the role, the verdict, the redacted (and
//! projected) document as relaxed Extended JSON, and the explanation with `--explain`; json: one
//! object per line (`{"plan": ...}` first for reads, then `{"document": N, ...}` per document).
//!
//! Refusals are shown in their **detailed** view (rule, JSON path, values compared: `eval` is an
//! operator's tool). The JSON output labels both views: `error` (and `error_code`) is the
//! detailed one, for operators; `client_error` (`{code, message}`, a fixed message per code) is
//! what an app may pass on to its clients ([`rolegate::ClientError`] explains the two views).
//!
//! `--system` runs the request as the system user (every rule, filter and schema check
//! bypassed); the user file never does, whatever its `type`.
//!
//! `--engine compiled` (the default) or `--engine reference` chooses the evaluator; both give the
//! same decisions (with `--explain`, the steps are recorded by the reference evaluator).
//!
//! `--explain` adds, for operators: under the plan, why each filter applied or not (its
//! `apply_when` result, the values compared when false, the query and projection an applied
//! filter adds); per document, each rule evaluated with its place (file and JSON path), the
//! values compared when a rule is false (`owner_id: "u2" (document) vs "u1" (%%user.id) =>
//! false`, long values cut with `...(truncated)`), the rule that denied each removed field, and
//! why a document the plan does not select is left out. The JSON output gives each step as
//! `{message, file, path}` (`null` file and path for a step without a rule).
//!
//! `%%values` are the app's plain values overlaid with the request's `values`; an `environment`
//! given by tag only takes its values from the app's `environments/<tag>.json`.
//!
//! A collection that no rule file names is a warning saying which rules apply (the data source's
//! default rule, or none: every decision is no), an error with `--strict`. Errors and warnings
//! go to stderr, as JSON objects with `--format json` ([`super::report`]). `-` reads one of
//! `--user`, `--document`, `--documents`, `--request`, `--prev` from stdin.
//!
//! Exit codes ([`super::exit`]): 0 once the decisions are printed (with `--fail-on-deny`: only
//! when every document is visible and every write allowed, else 1); 2 for a wrong command line;
//! 3 for an unusable user, request or document file; 4 for rules that do not load.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use rolegate::{
    ClientError, Explanation, QueryPlan, ReadOutcome, Rules, WriteOutcome, mql::document_to_json,
};
use serde_json::{Value, json};

use super::decide::{Action, Decider, Decision};
use super::inputs::{Inputs, Item, collection, load_app, one_stdin, read_items};
use super::report::{self, Problem};
use super::{CliError, EngineArg, Exit, Format, emit};

/// Arguments of `rolegate eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// An app directory (either layout) or one rule file.
    pub path: PathBuf,
    /// The namespace: `database.collection` (or `data_source/database.collection`).
    #[arg(long, value_name = "DB.COLL")]
    pub collection: String,
    /// Refuse a `--collection` that no rule file names (by default a warning says which
    /// default rule applies).
    #[arg(long)]
    pub strict: bool,
    /// The `%%user` object: `{id, type, data, custom_data, identities}` (`-`: stdin).
    #[arg(long, value_name = "USER.json")]
    pub user: PathBuf,
    /// What to decide for each document.
    #[arg(long, value_enum)]
    pub action: Action,
    /// One document (JSON, Extended JSON allowed): stored, inserted, or the post-image
    /// (`-`: stdin).
    #[arg(
        long,
        value_name = "DOC.json",
        required_unless_present = "documents",
        conflicts_with = "documents"
    )]
    pub document: Option<PathBuf>,
    /// Many documents, one JSON object per line (`-`: stdin).
    #[arg(long, value_name = "DOCS.jsonl")]
    pub documents: Option<PathBuf>,
    /// Update pre-images: a JSON file with `--document`, JSON Lines paired with `--documents`.
    #[arg(long, value_name = "PREV.json")]
    pub prev: Option<PathBuf>,
    /// The request: the same object as a conformance case's `request` (`-`: stdin).
    #[arg(long, value_name = "REQ.json")]
    pub request: Option<PathBuf>,
    /// Explain every decision step by step: each rule with its file and JSON path, the values
    /// a false rule compared, why each filter applied or not. For operators: it quotes
    /// document and user values.
    #[arg(long)]
    pub explain: bool,
    /// Exit with 1 when a document is withheld, a write refused or the request fails
    /// (by default `eval` exits 0 once it has printed the decisions).
    #[arg(long)]
    pub fail_on_deny: bool,
    /// Which engine decides.
    #[arg(long, value_enum, default_value_t = EngineArg::Compiled)]
    pub engine: EngineArg,
    /// Run as the system user: every rule, filter and schema check is bypassed (as for App
    /// Services functions that run as system). A user file with `"type": "system"` does not
    /// do this: it is evaluated like any other user.
    #[arg(long)]
    pub system: bool,
    /// Output format (`json`: decisions, errors and warnings as JSON objects, one per line).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Runs `eval`.
pub fn run(args: &EvalArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    one_stdin(&[
        ("--user", Some(&args.user)),
        ("--document", args.document.as_deref()),
        ("--documents", args.documents.as_deref()),
        ("--request", args.request.as_deref()),
        ("--prev", args.prev.as_deref()),
    ])?;
    if args.prev.is_some() && args.action != Action::Update {
        return Err(CliError::usage(
            "usage",
            "`--prev` is only for `--action update`",
        ));
    }
    if args.action == Action::Update && args.prev.is_none() {
        return Err(CliError::usage(
            "usage",
            "`--action update` needs `--prev` (the pre-image of each document)",
        ));
    }
    let inputs = Inputs::read(&args.user, args.request.as_deref())?;
    let items = read_items(
        args.document.as_deref(),
        args.documents.as_deref(),
        args.prev.as_deref(),
    )?;
    let (set, _) = load_app(&args.path)?;
    let ctx = inputs.context(&set, args.action == Action::Search, args.system)?;
    for w in set.warnings.warnings() {
        report::warn(&Problem::from_diagnostic(w), args.format);
    }
    for w in &inputs.warnings {
        report::warn(w, args.format);
    }
    let rules = Rules::new(set);
    let (collection, _, note) = collection(&rules, &args.collection, args.strict)?;
    if let Some(note) = &note {
        report::warn(note, args.format);
    }
    let engine = collection
        .prepare_with(&ctx, args.engine.into())
        .with_explain(args.explain);
    let decider = match Decider::new(&engine, &ctx, args.action, inputs.request())? {
        Ok(d) => d.explaining(args.explain),
        Err(e) => {
            match args.format {
                Format::Human => emit(out, format_args!("query plan: the request fails: {e}"))?,
                Format::Json => emit(
                    out,
                    json!({"plan": {"error": e.to_string(), "code": e.code(), "client_error": client_json(e.client_error())}}),
                )?,
            }
            return Ok(Exit::answer(!args.fail_on_deny));
        }
    };
    if let Some(plan) = decider.plan() {
        print_plan(plan, args, out)?;
    }
    let mut all_yes = true;
    for (i, item) in items.iter().enumerate() {
        let decision = decider.decide(item)?;
        all_yes &= decision.yes();
        print_decision(i + 1, item, &decision, args, out)?;
    }
    Ok(Exit::answer(all_yes || !args.fail_on_deny))
}

fn print_plan(plan: &QueryPlan, args: &EvalArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let store_query = document_to_json(&plan.store_query);
    let store_projection = document_to_json(&plan.store_projection);
    let query = document_to_json(plan.merged_query());
    let projection = document_to_json(plan.output_projection());
    match args.format {
        Format::Human => {
            let applied = if plan.applied.is_empty() {
                "none".to_string()
            } else {
                plan.applied.join(", ")
            };
            emit(out, "query plan:")?;
            emit(out, format_args!("  filters applied: {applied}"))?;
            emit(out, format_args!("  store query:       {store_query}"))?;
            emit(out, format_args!("  store projection:  {store_projection}"))?;
            emit(out, format_args!("  query:             {query}"))?;
            emit(out, format_args!("  output projection: {projection}"))?;
            if args.explain {
                print_explanation(&plan.explanation, out)?;
            }
            emit(out, "")
        }
        Format::Json => {
            let mut v = json!({
                "applied": plan.applied,
                "store_query": store_query,
                "store_projection": store_projection,
                "query": query,
                "projection": projection,
            });
            if let (true, Some(m)) = (args.explain, v.as_object_mut()) {
                m.insert(
                    "explanation".to_string(),
                    explanation_json(&plan.explanation),
                );
            }
            emit(out, json!({ "plan": v }))
        }
    }
}

fn role_text(role: &Option<String>) -> String {
    role.as_ref()
        .map_or_else(|| "no role".to_string(), |r| format!("role `{r}`"))
}

/// The client-safe view of a refusal, labelled apart from the detailed `error`.
fn client_json(e: ClientError) -> Value {
    json!({"code": e.code, "message": e.message})
}

/// The steps of an explanation: `{message, file, path}`, the place of the rule behind a step
/// split into its file and JSON path (`null` when the step has no rule).
fn explanation_json(e: &Explanation) -> Value {
    Value::Array(
        e.steps
            .iter()
            .map(|s| {
                let place = s.place.as_ref();
                json!({
                    "message": s.message,
                    "file": place.map(|p| p.file.to_string()),
                    "path": place.map(|p| p.json_path.clone()),
                })
            })
            .collect(),
    )
}

fn print_explanation(e: &Explanation, out: &mut dyn Write) -> Result<(), CliError> {
    emit(out, "  explanation:")?;
    for line in e.to_string().lines() {
        emit(out, format_args!("  {line}"))?;
    }
    Ok(())
}

/// Prints one decision: a block of text, or one JSON object whose keys are the same for every
/// action.
fn print_decision(
    n: usize,
    item: &Item,
    decision: &Decision,
    args: &EvalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match args.format {
        Format::Human => match decision {
            Decision::Read { selected, outcome } => {
                print_read(n, item, *selected, outcome, args, out)
            }
            Decision::Write(o) => print_write(n, item, o, args, out),
        },
        Format::Json => {
            let explanation = match decision {
                Decision::Read { outcome, .. } => &outcome.explanation,
                Decision::Write(o) => &o.explanation,
            };
            let mut v = decision_json(n, item, args.action, decision);
            if let (true, Some(m)) = (args.explain, v.as_object_mut()) {
                m.insert("explanation".to_string(), explanation_json(explanation));
            }
            emit(out, v)
        }
    }
}

/// One decision as JSON: the same keys for every action (`null` where a key does not apply).
fn decision_json(n: usize, item: &Item, action: Action, decision: &Decision) -> Value {
    match decision {
        Decision::Read { selected, outcome } => {
            let shown = selected.then_some(outcome);
            json!({
                "document": n,
                "source": item.label,
                "action": action.as_str(),
                "selected": selected,
                "role": shown.and_then(|o| o.role.clone()),
                "allowed": decision.yes(),
                "visible": decision.yes(),
                "fields": shown.map(ReadOutcome::fields),
                "redacted": shown.and_then(|o| o.document.as_ref().map(document_to_json)),
                "error": shown.and_then(|o| o.error.clone()),
                "error_code": shown.and_then(ReadOutcome::client_error).map(|c| c.code),
                "client_error": shown.and_then(ReadOutcome::client_error).map(client_json),
            })
        }
        Decision::Write(o) => json!({
            "document": n,
            "source": item.label,
            "action": action.as_str(),
            "selected": null,
            "role": o.role,
            "allowed": o.allowed,
            "visible": null,
            "fields": null,
            "redacted": null,
            "error": o.error.as_ref().map(|e| e.message.clone()),
            "error_code": o.error.as_ref().map(|e| e.code.as_str()),
            "client_error": o.client_error().map(client_json),
        }),
    }
}

/// Prints a read decision (text); `selected: false` when the query plan does not select the
/// document.
fn print_read(
    n: usize,
    item: &Item,
    selected: bool,
    o: &ReadOutcome,
    args: &EvalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if !selected {
        emit(
            out,
            format_args!(
                "document {n} ({}): not selected by the query plan: withheld",
                item.label
            ),
        )?;
        if args.explain && !o.explanation.is_empty() {
            print_explanation(&o.explanation, out)?;
        }
        return Ok(());
    }
    let verdict = if o.visible { "visible" } else { "withheld" };
    emit(
        out,
        format_args!(
            "document {n} ({}): {}: {verdict}",
            item.label,
            role_text(&o.role)
        ),
    )?;
    if let Some(doc) = &o.document {
        emit(out, format_args!("  {}", document_to_json(doc)))?;
    }
    if let Some(e) = &o.error {
        emit(out, format_args!("  error: {e}"))?;
    }
    if args.explain {
        print_explanation(&o.explanation, out)?;
    }
    Ok(())
}

/// Prints a write decision (text).
fn print_write(
    n: usize,
    item: &Item,
    o: &WriteOutcome,
    args: &EvalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let verdict = match &o.error {
        None if o.allowed => "allowed".to_string(),
        None => "refused".to_string(),
        Some(e) => format!("refused ({}: {})", e.code, e.message),
    };
    emit(
        out,
        format_args!(
            "document {n} ({}): {}: {verdict}",
            item.label,
            role_text(&o.role)
        ),
    )?;
    if args.explain {
        print_explanation(&o.explanation, out)?;
    }
    Ok(())
}
