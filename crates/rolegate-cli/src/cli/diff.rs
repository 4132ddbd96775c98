//! `rolegate diff OLD NEW [--collection NS] [--cases N] [--seed S] [--documents DOCS.jsonl]
//! [--users USERS.jsonl]`: the semantic diff of two versions of an app's rules.
//!
//! Input: two apps (directories or rule files), optionally one collection (else every collection
//! either names, and each data source's default rule as `data_source/*.*`), and documents and
//! `%%user` objects to try besides generated ones. Output (human): per collection, each
//! difference class once — a document returned by one side only, a field shown by one side only
//! (or with another value), an insert, update or delete permitted by one side only — with a
//! minimal (shrunk) example: the user, the document (and post-image), the request, and both
//! decisions; then a summary. (json): one object per difference and line, then none when there
//! are none. Decisions are compared, not rules: renamed roles or reordered keys that decide the
//! same are no difference.
//!
//! Exit codes ([`super::exit`]): 0 when no difference was found; 1 when one was; 2 for a wrong
//! command line; 3 for an unusable documents or users file; 4 when either rule set does not
//! load.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use rolegate::Rules;
use rolegate::mql::document_to_json;
use rolegate::testing::{
    Decision, DiffInputs, Difference, RunOptions, diff_collection, namespaces,
};
use serde_json::{Value, json};

use super::inputs::{load_app, read_items};
use super::{CliError, Exit, Format, emit};

/// Arguments of `rolegate diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old rules: an app directory (either layout) or one rule file.
    pub old: PathBuf,
    /// The new rules.
    pub new: PathBuf,
    /// Only this collection (`db.coll` or `data_source/db.coll`).
    #[arg(long, value_name = "DB.COLL")]
    pub collection: Option<String>,
    /// Cases generated per collection.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub cases: u32,
    /// The seed of the generated cases.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Documents to try besides generated ones (JSON Lines).
    #[arg(long, value_name = "DOCS.jsonl")]
    pub documents: Option<PathBuf>,
    /// `%%user` objects to try besides generated ones (JSON Lines).
    #[arg(long, value_name = "USERS.jsonl")]
    pub users: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Runs `diff`.
pub fn run(args: &DiffArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    if args.cases == 0 {
        return Err(CliError::usage("usage", "`--cases` must be at least 1"));
    }
    let mut inputs = DiffInputs::default();
    if let Some(p) = &args.documents {
        inputs.documents = read_items(None, Some(p), None)?
            .into_iter()
            .map(|i| i.doc)
            .collect();
    }
    if let Some(p) = &args.users {
        inputs.users = read_items(None, Some(p), None)?
            .into_iter()
            .map(|i| i.doc)
            .collect();
    }
    let (old_set, _) = load_app(&args.old)?;
    let (new_set, _) = load_app(&args.new)?;
    let (old, new) = (Rules::new(old_set), Rules::new(new_set));
    let list = match &args.collection {
        Some(ns) => {
            if old.collection(ns).is_err() && new.collection(ns).is_err() {
                let e = old
                    .collection(ns)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                return Err(CliError::usage("unknown-collection", e));
            }
            vec![ns.clone()]
        }
        None => namespaces(old.rule_set(), new.rule_set()),
    };
    let options = RunOptions {
        cases: args.cases,
        seed: args.seed,
        ..RunOptions::default()
    };
    let started = Instant::now();
    let (mut total_cases, mut total_diffs) = (0u64, 0usize);
    for ns in &list {
        let report = diff_collection(&old, &new, ns, &inputs, &options);
        total_cases += report.cases;
        total_diffs += report.differences.len();
        for d in &report.differences {
            match args.format {
                Format::Human => human(out, &report.namespace, d)?,
                Format::Json => emit(out, to_json(&report.namespace, d))?,
            }
        }
        if args.format == Format::Human {
            emit(
                out,
                format_args!(
                    "{}: {} difference{} in {} cases",
                    report.namespace,
                    report.differences.len(),
                    if report.differences.len() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    report.cases
                ),
            )?;
        }
    }
    if args.format == Format::Human {
        let secs = started.elapsed().as_secs_f64();
        emit(
            out,
            format_args!(
                "{total_diffs} difference{} in {} collection{}; {total_cases} cases in {secs:.2} s; \
                 seed {}",
                if total_diffs == 1 { "" } else { "s" },
                list.len(),
                if list.len() == 1 { "" } else { "s" },
                args.seed
            ),
        )?;
    }
    Ok(Exit::answer(total_diffs == 0))
}

fn decision_text(d: &Decision, read: bool) -> String {
    let role = d.role.as_deref().unwrap_or("(no role)");
    if read {
        match &d.document {
            Some(doc) => format!("role {role}, returned {}", document_to_json(doc)),
            None => format!("role {role}, withheld"),
        }
    } else if d.granted {
        format!("role {role}, allowed")
    } else {
        format!(
            "role {role}, refused ({})",
            d.error_code.as_deref().unwrap_or("denied")
        )
    }
}

fn human(out: &mut dyn Write, ns: &str, d: &Difference) -> Result<(), CliError> {
    let read = d.class.action() == rolegate::testing::PropAction::Read;
    emit(out, format_args!("DIFF {ns}: {}", d.class))?;
    emit(
        out,
        format_args!("  user:     {}", document_to_json(&d.case.user)),
    )?;
    emit(
        out,
        format_args!("  document: {}", document_to_json(&d.case.document)),
    )?;
    if let Some(post) = &d.post {
        emit(out, format_args!("  post:     {}", document_to_json(post)))?;
    }
    if !d.case.request.http.is_empty() {
        emit(
            out,
            format_args!("  request:  {}", document_to_json(&d.case.request.http)),
        )?;
    }
    let functions: Vec<String> = d
        .case
        .request
        .functions
        .iter()
        .map(|(n, r)| match r {
            Some(v) => format!("{n} returns {}", rolegate::mql::bson_to_json(v)),
            None => format!("{n} fails"),
        })
        .collect();
    if !functions.is_empty() {
        emit(out, format_args!("  functions: {}", functions.join(", ")))?;
    }
    if let Some(env) = &d.case.request.environment {
        emit(out, format_args!("  environment: {env}"))?;
    }
    emit(out, format_args!("  OLD: {}", decision_text(&d.old, read)))?;
    emit(out, format_args!("  NEW: {}", decision_text(&d.new, read)))
}

fn to_json(ns: &str, d: &Difference) -> Value {
    let decision = |x: &Decision| {
        json!({
            "role": x.role,
            "granted": x.granted,
            "returned": x.document.as_ref().map(document_to_json),
            "error_code": x.error_code,
        })
    };
    json!({
        "collection": ns,
        "action": d.class.action().as_str(),
        "difference": d.class.to_string(),
        "user": document_to_json(&d.case.user),
        "document": document_to_json(&d.case.document),
        "post": d.post.as_ref().map(document_to_json),
        "request": document_to_json(&d.case.request.http),
        "environment": d.case.request.environment,
        "old": decision(&d.old),
        "new": decision(&d.new),
    })
}
