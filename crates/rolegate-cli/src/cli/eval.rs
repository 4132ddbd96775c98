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
//! what an app may pass on to its clients ([`rolegate::outcome`] explains the two views).
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
//! `{message, rule, file, path}`.
//!
//! `%%values` are the app's plain values overlaid with the request's `values`; an `environment`
//! given by tag only takes its values from the app's `environments/<tag>.json`.
//!
//! Exit 0 when every document is visible (reads) or every write allowed, 1 when one is not (or
//! the query plan fails), 2 on unusable input (including rules that do not load).

use std::io::Write;
use std::path::{Path, PathBuf};

use bson::Document;
use clap::{Args, ValueEnum};
use rolegate::{
    ClientError, Explanation, PlanError, PreparedRequest, QueryPlan, ReadOutcome, Rules,
    WriteOutcome, mql,
    mql::document_to_json,
    testing::{CaseRequest, to_document},
};
use serde_json::{Value, json};

use super::inputs::{Inputs, load_app};
use super::{CliError, EngineArg, Exit, Format, emit, read_json, read_json_lines};

/// What is asked for each document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalAction {
    Read,
    Insert,
    Update,
    Delete,
    /// An Atlas Search (`$search`) read.
    Search,
}

/// Arguments of `rolegate eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// An app directory (either layout) or one rule file.
    pub path: PathBuf,
    /// The namespace: `database.collection` (or `data_source/database.collection`).
    #[arg(long, value_name = "DB.COLL")]
    pub collection: String,
    /// The `%%user` object: `{id, type, data, custom_data, identities}`.
    #[arg(long, value_name = "USER.json")]
    pub user: PathBuf,
    /// What to decide for each document.
    #[arg(long, value_enum)]
    pub action: EvalAction,
    /// One document (JSON, Extended JSON allowed): stored, inserted, or the post-image.
    #[arg(
        long,
        value_name = "DOC.json",
        required_unless_present = "documents",
        conflicts_with = "documents"
    )]
    pub document: Option<PathBuf>,
    /// Many documents, one JSON object per line.
    #[arg(long, value_name = "DOCS.jsonl")]
    pub documents: Option<PathBuf>,
    /// Update pre-images: a JSON file with `--document`, JSON Lines paired with `--documents`.
    #[arg(long, value_name = "PREV.json")]
    pub prev: Option<PathBuf>,
    /// The request: the same object as a conformance case's `request`.
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
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// One document to decide, with its label (`DOC.json`, `line 3`).
struct Item {
    label: String,
    doc: Document,
    prev: Option<Document>,
}

/// Runs `eval`.
pub fn run(args: &EvalArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    let inputs = Inputs::read(&args.user, args.request.as_deref())?;
    let items = items(args)?;
    let (set, _) = load_app(&args.path)?;
    let ctx = inputs.context(&set, args.action == EvalAction::Search, args.system)?;
    for w in set.warnings.warnings() {
        eprintln!("{w}");
    }
    let rules = Rules::new(set);
    let collection = rules
        .collection(&args.collection)
        .map_err(|e| CliError::new(e.to_string()))?;
    let engine = collection
        .prepare_with(&ctx, args.engine.into())
        .with_explain(args.explain);

    let mut all_yes = true;
    let mut selection = None;
    if matches!(args.action, EvalAction::Read | EvalAction::Search) {
        match query_plan(&engine, inputs.request())? {
            Ok(plan) => {
                print_plan(&plan, args, out)?;
                let query = mql::compile_query(&plan.store_query).map_err(|e| {
                    CliError::new(format!("the store query is not a valid MongoDB query: {e}"))
                })?;
                selection = Some((query, plan));
            }
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
        }
    }
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let yes = match args.action {
            EvalAction::Read | EvalAction::Search => {
                let Some((query, plan)) = &selection else {
                    continue;
                };
                // The database's part: the store query and the store projection.
                match mql::matches_with(query, &item.doc, &ctx) {
                    Ok(true) => {
                        let stored = mql::project(&plan.store_projection, &item.doc);
                        let planned = engine.read_for(plan, &stored);
                        let o = match planned.selected {
                            true => Ok(&planned.outcome),
                            false => Err(planned.outcome.explanation.clone()),
                        };
                        print_read(n, item, o, args, out)?;
                        planned.selected && planned.outcome.visible
                    }
                    Ok(false) => {
                        let mut why = Explanation::default();
                        if args.explain {
                            why.push(
                                None,
                                format!(
                                    "the store query {} does not select this document",
                                    document_to_json(&plan.store_query)
                                ),
                            );
                            if !plan.applied.is_empty() {
                                why.push(
                                    None,
                                    format!(
                                        "it holds the queries of the applied filters: {}",
                                        plan.applied.join(", ")
                                    ),
                                );
                            }
                        }
                        print_read(n, item, Err(why), args, out)?;
                        false
                    }
                    Err(e) => {
                        return Err(CliError::new(format!(
                            "{}: the query cannot be evaluated: {e}",
                            item.label
                        )));
                    }
                }
            }
            EvalAction::Insert => print_write(n, item, &engine.insert(&item.doc), args, out)?,
            EvalAction::Delete => print_write(n, item, &engine.delete(&item.doc), args, out)?,
            EvalAction::Update => {
                let pre = item
                    .prev
                    .as_ref()
                    .ok_or_else(|| CliError::new("`--action update` needs `--prev`"))?;
                print_write(n, item, &engine.update(pre, &item.doc), args, out)?
            }
        };
        all_yes &= yes;
    }
    Ok(Exit::answer(all_yes || !args.fail_on_deny))
}

/// Reads the documents (and pre-images) to decide.
fn items(args: &EvalArgs) -> Result<Vec<Item>, CliError> {
    let doc_of = |value: &Value, path: &Path, label: &str| {
        to_document(value, label)
            .map_err(|e| CliError::new(format!("`{}`: {}", path.display(), e.message)))
    };
    if args.prev.is_some() && args.action != EvalAction::Update {
        return Err(CliError::new("`--prev` is only for `--action update`"));
    }
    if args.action == EvalAction::Update && args.prev.is_none() {
        return Err(CliError::new(
            "`--action update` needs `--prev` (the pre-image of each document)",
        ));
    }
    match (&args.document, &args.documents) {
        (Some(path), None) => {
            let doc = doc_of(&read_json(path)?, path, "document")?;
            let prev = match &args.prev {
                Some(p) => Some(doc_of(&read_json(p)?, p, "prev")?),
                None => None,
            };
            Ok(vec![Item {
                label: path.display().to_string(),
                doc,
                prev,
            }])
        }
        (None, Some(path)) => {
            let lines = read_json_lines(path)?;
            let prevs = match &args.prev {
                Some(p) => {
                    let prevs = read_json_lines(p)?;
                    if prevs.len() != lines.len() {
                        return Err(CliError::new(format!(
                            "`{}` holds {} documents but `{}` holds {} pre-images; they are paired line by line",
                            path.display(),
                            lines.len(),
                            p.display(),
                            prevs.len()
                        )));
                    }
                    prevs
                        .iter()
                        .map(|(line, v)| doc_of(v, p, &format!("line {line}")).map(Some))
                        .collect::<Result<Vec<_>, _>>()?
                }
                None => vec![None; lines.len()],
            };
            lines
                .iter()
                .zip(prevs)
                .map(|((line, v), prev)| {
                    let label = format!("{} line {line}", path.display());
                    Ok(Item {
                        doc: doc_of(v, path, &format!("line {line}"))?,
                        label,
                        prev,
                    })
                })
                .collect()
        }
        _ => Err(CliError::new(
            "give exactly one of `--document` and `--documents`",
        )),
    }
}

/// The query plan of a read: the request's query and projection with the filters.
fn query_plan(
    engine: &PreparedRequest<'_, '_>,
    request: Option<&CaseRequest>,
) -> Result<Result<QueryPlan, PlanError>, CliError> {
    let operation = request.and_then(|r| r.operation.as_ref());
    let doc = |v: Option<&Value>, what: &str| match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => to_document(v, what)
            .map(Some)
            .map_err(|e| CliError::new(format!("request: {e}"))),
    };
    let query = doc(
        operation.and_then(|op| op.client_query()),
        "operation.query",
    )?;
    let projection = match request.and_then(|r| r.client_projection.as_ref()) {
        Some(p) => doc(Some(p), "client_projection")?,
        None => doc(
            operation.and_then(|op| op.projection.as_ref()),
            "operation.projection",
        )?,
    };
    Ok(engine.query_plan(query.as_ref(), projection.as_ref()))
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

fn explanation_json(e: &Explanation) -> Value {
    Value::Array(
        e.steps
            .iter()
            .map(|s| {
                json!({
                    "message": s.message,
                    "rule": s.place.as_ref().map(ToString::to_string),
                    "file": s.place.as_ref().map(|p| p.file.to_string()),
                    "path": s.place.as_ref().map(|p| p.json_path.clone()),
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

/// Prints a read decision; `Err(why)` when the query plan does not select the document (`why`
/// is shown with `--explain`).
fn print_read(
    n: usize,
    item: &Item,
    o: Result<&ReadOutcome, Explanation>,
    args: &EvalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let o = match o {
        Ok(o) => o,
        Err(why) => {
            return match args.format {
                Format::Human => {
                    emit(
                        out,
                        format_args!(
                            "document {n} ({}): not selected by the query plan: withheld",
                            item.label
                        ),
                    )?;
                    if args.explain {
                        print_explanation(&why, out)?;
                    }
                    Ok(())
                }
                Format::Json => {
                    let mut v = json!({"document": n, "source": item.label, "selected": false, "visible": false});
                    if let (true, Some(m)) = (args.explain, v.as_object_mut()) {
                        m.insert("explanation".to_string(), explanation_json(&why));
                    }
                    emit(out, v)
                }
            };
        }
    };
    match args.format {
        Format::Human => {
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
        Format::Json => {
            let mut v = json!({
                "document": n,
                "source": item.label,
                "selected": true,
                "role": o.role,
                "visible": o.visible,
                "fields": o.fields(),
                "redacted": o.document.as_ref().map(document_to_json),
                "error": o.error,
                "client_error": o.client_error().map(client_json),
            });
            if let (true, Some(m)) = (args.explain, v.as_object_mut()) {
                m.insert("explanation".to_string(), explanation_json(&o.explanation));
            }
            emit(out, v)
        }
    }
}

fn print_write(
    n: usize,
    item: &Item,
    o: &WriteOutcome,
    args: &EvalArgs,
    out: &mut dyn Write,
) -> Result<bool, CliError> {
    match args.format {
        Format::Human => {
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
        }
        Format::Json => {
            let mut v = json!({
                "document": n,
                "source": item.label,
                "role": o.role,
                "allowed": o.allowed,
                "error": o.error.as_ref().map(|e| e.message.clone()),
                "error_code": o.error.as_ref().map(|e| e.code.as_str()),
                "client_error": o.client_error().map(client_json),
            });
            if let (true, Some(m)) = (args.explain, v.as_object_mut()) {
                m.insert("explanation".to_string(), explanation_json(&o.explanation));
            }
            emit(out, v)?;
        }
    }
    Ok(o.allowed)
}
