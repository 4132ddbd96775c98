//! `rolegate prop APP PROPS.json [--cases N] [--seed S] [--out DIR]`: check the properties of a
//! property file (`docs/properties.md`) over generated users, requests and documents.
//!
//! Input: the rules (an app directory or a rule file) and a property file. Output (human): one
//! line per property — `PASS`, `WARN` (vacuous: what the property talks about was never
//! reached; a warning, not a pass), `FAIL` or `ERROR` — with the cases run, in scope and
//! exercised, and how many cases in scope each role decided; for a failure, the shrunk user,
//! document (and post-image) and decision, a ready-to-run case for `rolegate test` and an
//! `rolegate eval` command line; then a summary with the cases per second and the seed.
//! (json): one object per property and line.
//!
//! With `--out DIR`, each counterexample is also written to `DIR/<n>-<name>/` (`case.json`,
//! `user.json`, `request.json`, `document.json`, `prev.json` for an update), and its eval command
//! line reads those files; without it, the command line passes them inline (bash process
//! substitution).
//!
//! Exit codes ([`super::exit`]): 0 when every property passed; 1 when one failed or was vacuous;
//! 2 for a wrong command line; 3 for a property file that cannot be read or used (every problem
//! is printed, with its JSON path); 4 for rules that do not load.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use rolegate::testing::{
    CaseRules, CompiledProperty, ContextTemplate, Counterexample, Mode, PropertyFile,
    PropertyOutcome, PropertyReport, RunOptions, app_relative, check_property, generic_properties,
    namespaces,
};
use rolegate::{Rules, mql::document_to_json};
use serde_json::{Map, Value, json};

use super::inputs::{load_app, read_json_text, read_text, shown};
use super::report::{Problem, plain_serde_message};
use super::{CliError, Exit, Format, emit};

/// Arguments of `rolegate prop`.
#[derive(Debug, Args)]
pub struct PropArgs {
    /// An app directory (either layout) or one rule file.
    pub path: PathBuf,
    /// The property file (`docs/properties.md`); optional with `--generic`.
    #[arg(required_unless_present = "generic")]
    pub properties: Option<PathBuf>,
    /// Also check the generic property of every collection: a role without read never
    /// reveals a field (read from the rules: roles and fields that nothing grants).
    #[arg(long)]
    pub generic: bool,
    /// Cases generated per property.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub cases: u32,
    /// The seed of the generated cases (the same seed gives the same cases).
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Write each counterexample's case and input files under this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Runs `prop`.
pub fn run(args: &PropArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    if args.cases == 0 {
        return Err(CliError::usage("usage", "`--cases` must be at least 1"));
    }
    let file = match &args.properties {
        Some(path) => Some((path, read_properties(path)?)),
        None => None,
    };
    let (set, _) = load_app(&args.path)?;
    let rules = Rules::new(set);
    let mut props = match &file {
        Some((path, file)) => file.compile(&rules).map_err(|errors| {
            CliError::new(
                Exit::Input,
                errors
                    .into_iter()
                    .map(|e| {
                        let p = Problem::error("invalid-property", e.message)
                            .in_file(shown(path))
                            .at_path(e.path);
                        match e.hint {
                            Some(h) => p.with_hint(h),
                            None => p,
                        }
                    })
                    .collect(),
            )
        })?,
        None => Vec::new(),
    };
    if args.generic {
        for ns in namespaces(rules.rule_set(), rules.rule_set()) {
            if let Ok(c) = rules.collection(&ns) {
                props.extend(generic_properties(&ns, c.policy().roles));
            }
        }
    }
    let template = ContextTemplate::new(&rules).map_err(|e| {
        CliError::input(Problem::error("context", e.to_string()).in_file(shown(&args.path)))
    })?;
    let options = RunOptions {
        cases: args.cases,
        seed: args.seed,
        ..RunOptions::default()
    };
    let started = Instant::now();
    let (mut passed, mut failed, mut vacuous, mut total) = (0usize, 0usize, 0usize, 0u64);
    for (i, prop) in props.iter().enumerate() {
        let report = check_property(&rules, &template, prop, &options);
        total += report.cases;
        match &report.outcome {
            PropertyOutcome::Passed => passed += 1,
            PropertyOutcome::Vacuous(_) => vacuous += 1,
            PropertyOutcome::Failed(_) | PropertyOutcome::Aborted(_) => failed += 1,
        }
        let saved = match (&report.outcome, &args.out) {
            (PropertyOutcome::Failed(cx), Some(dir)) => {
                Some(save(dir, i, prop, cx, &template, &args.path, &rules)?)
            }
            _ => None,
        };
        match args.format {
            Format::Human => human(out, &report, prop, &template, args, &rules, saved.as_ref())?,
            Format::Json => emit(out, to_json(&report, prop, &template, args, &rules))?,
        }
    }
    if args.format == Format::Human {
        let secs = started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { total as f64 / secs } else { 0.0 };
        emit(
            out,
            format_args!(
                "{} properties: {passed} passed, {failed} failed, {vacuous} vacuous; {total} cases \
                 in {secs:.2} s ({rate:.0} cases/s); seed {}",
                props.len(),
                args.seed
            ),
        )?;
    }
    Ok(Exit::answer(failed == 0 && vacuous == 0))
}

/// Reads the property file: UTF-8, JSON (with the line of an error), then the format (with the
/// line of an unknown key or a bad value).
fn read_properties(path: &Path) -> Result<PropertyFile, CliError> {
    let text = read_text(path)?;
    let file = shown(path);
    read_json_text(&text, &file)?;
    serde_json::from_str::<PropertyFile>(&text).map_err(|e| {
        let mut p = Problem::error(
            "invalid-property",
            format!(
                "not a valid property file: {}",
                plain_serde_message(&e.to_string(), "one of the accepted forms")
            ),
        )
        .in_file(file)
        .with_hint("the format of a property file: docs/properties.md");
        p.line = Some(e.line());
        CliError::input(p)
    })
}

/// The roles line: `admin 2874, owner 2034, ..., (no role) 3784`.
fn roles_line(report: &PropertyReport) -> String {
    report
        .roles
        .iter()
        .map(|(r, n)| format!("{} {n}", r.as_deref().unwrap_or("(no role)")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn counts(report: &PropertyReport) -> String {
    let mut s = format!(
        "{} cases, {} in scope, {} exercised",
        report.cases, report.in_scope, report.exercised
    );
    if report.schema_refused > 0 {
        s.push_str(&format!(
            ", {} permitted by the rules but refused by the schema",
            report.schema_refused
        ));
    }
    s
}

fn human(
    out: &mut dyn Write,
    report: &PropertyReport,
    prop: &CompiledProperty,
    template: &ContextTemplate,
    args: &PropArgs,
    rules: &Rules,
    saved: Option<&Saved>,
) -> Result<(), CliError> {
    let head = format!("{} ({}, {})", report.name, report.namespace, report.action);
    match &report.outcome {
        PropertyOutcome::Passed => emit(
            out,
            format_args!(
                "PASS {head}: {}; roles: {}",
                counts(report),
                roles_line(report)
            ),
        ),
        PropertyOutcome::Vacuous(why) => emit(
            out,
            format_args!(
                "WARN {head}: vacuous, {why}; {}; roles: {}",
                counts(report),
                roles_line(report)
            ),
        ),
        PropertyOutcome::Aborted(why) => emit(out, format_args!("ERROR {head}: {why}")),
        PropertyOutcome::Failed(cx) => {
            emit(
                out,
                format_args!(
                    "FAIL {head}: {} (case {} of {}, shrunk: {} simpler cases tried)",
                    cx.reason, report.cases, args.cases, cx.shrink_runs
                ),
            )?;
            emit(out, format_args!("  roles so far: {}", roles_line(report)))?;
            emit(
                out,
                format_args!("  user:     {}", document_to_json(&cx.case.user)),
            )?;
            emit(
                out,
                format_args!("  document: {}", document_to_json(&cx.case.document)),
            )?;
            if let Some(post) = &cx.post {
                emit(out, format_args!("  post:     {}", document_to_json(post)))?;
            }
            let request = cx.request(prop, template);
            if let Some(http) = &request.http {
                emit(out, format_args!("  request:  {http}"))?;
            }
            if let Some(f) = &request.functions {
                emit(out, format_args!("  functions: {}", json!(f)))?;
            }
            emit(out, format_args!("  decision: {}", decision_line(cx)))?;
            let case = cx.to_case(prop, template, case_rules(&args.path, prop, rules));
            let case_json = json!([case]);
            match saved {
                Some(s) => {
                    emit(
                        out,
                        format_args!(
                            "  case: {} (run `rolegate test {}`)",
                            s.case.display(),
                            s.case.display()
                        ),
                    )?;
                }
                None => emit(
                    out,
                    format_args!(
                        "  case (save it as FILE.json, run `rolegate test FILE.json`): {case_json}"
                    ),
                )?,
            }
            emit(
                out,
                format_args!("  eval: {}", eval_line(cx, prop, template, args, saved)),
            )
        }
    }
}

fn decision_line(cx: &Counterexample) -> String {
    let d = &cx.decision;
    let role = d.role.as_deref().unwrap_or("(no role)");
    match &d.document {
        Some(doc) => format!("role {role}, returned {}", document_to_json(doc)),
        None if d.error_code.is_some() || d.granted || d.permitted => format!(
            "role {role}, {}{}",
            if d.granted {
                "allowed".to_string()
            } else {
                format!("refused ({})", d.error_code.as_deref().unwrap_or("denied"))
            },
            if d.permitted && !d.granted {
                ": the rules permit it, the schema refuses it"
            } else {
                ""
            }
        ),
        None => format!("role {role}, withheld"),
    }
}

/// The `rules` of a printed case: the app's files that decide for the property's collection
/// (its data source's configuration and default rule, the collection's rules and schema, the
/// Sync configuration), or a lone rule file as `collection_rules` / `default_rule`. Values,
/// the environment and function results are in the case's request.
fn case_rules(app: &Path, prop: &CompiledProperty, rules: &Rules) -> CaseRules {
    let ns = prop
        .namespace
        .split_once('/')
        .map_or(prop.namespace.as_str(), |(_, n)| n);
    let (db, coll) = ns.split_once('.').unwrap_or((ns, ""));
    if app.is_dir() {
        let mut files = Map::new();
        let mut stack = vec![app.to_path_buf()];
        let mut seen = 0usize;
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                seen += 1;
                if seen > 10_000 {
                    break;
                }
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(app) else {
                    continue;
                };
                let rel = rel.to_string_lossy().replace('\\', "/");
                if !keep_file(&rel, db, coll) || app_relative(&rel).as_deref() != Some(&rel) {
                    continue;
                }
                if let Ok(text) = std::fs::read_to_string(&path)
                    && let Ok(json) = serde_json::from_str::<Value>(&text)
                {
                    files.insert(rel, json);
                }
            }
        }
        return CaseRules {
            mode: Mode::MongoDb,
            files: Some(files),
            collection: Some(ns.to_string()),
            ..CaseRules::default()
        };
    }
    let json = std::fs::read_to_string(app)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let from_default = rules
        .collection(&prop.namespace)
        .is_ok_and(|c| c.policy().role_source == rolegate::rules::RoleSource::Default);
    if from_default {
        CaseRules {
            mode: Mode::MongoDb,
            default_rule: json,
            collection: Some(ns.to_string()),
            ..CaseRules::default()
        }
    } else {
        CaseRules {
            mode: Mode::MongoDb,
            collection_rules: json,
            ..CaseRules::default()
        }
    }
}

/// Whether an app file decides for collection `db.coll`: not values, environments, functions or
/// other collections' rules.
fn keep_file(rel: &str, db: &str, coll: &str) -> bool {
    if !rel.ends_with(".json") {
        return false;
    }
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        ["data_sources", _, "config.json" | "default_rule.json"] => true,
        ["data_sources", _, d, c, _] => *d == db && *c == coll,
        ["services", _, "config.json" | "default_rule.json"] => true,
        ["services", _, "rules", name] => *name == format!("{db}.{coll}.json"),
        ["sync", "config.json"] => true,
        _ => false,
    }
}

/// Where a counterexample was saved.
struct Saved {
    case: PathBuf,
    user: PathBuf,
    request: PathBuf,
    document: PathBuf,
    prev: Option<PathBuf>,
}

fn save(
    dir: &Path,
    index: usize,
    prop: &CompiledProperty,
    cx: &Counterexample,
    template: &ContextTemplate,
    app: &Path,
    rules: &Rules,
) -> Result<Saved, CliError> {
    let slug: String = prop
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .take(8)
        .collect::<Vec<_>>()
        .join("-");
    let folder = dir.join(format!("{:02}-{slug}", index + 1));
    let io = |e: std::io::Error, p: &Path| {
        CliError::new(
            Exit::Input,
            vec![
                Problem::error("io", format!("cannot write: {e}")).in_file(p.display().to_string()),
            ],
        )
    };
    std::fs::create_dir_all(&folder).map_err(|e| io(e, &folder))?;
    let write = |name: &str, v: &Value| -> Result<PathBuf, CliError> {
        let p = folder.join(name);
        let text = serde_json::to_string_pretty(v).unwrap_or_default();
        std::fs::write(&p, format!("{text}\n")).map_err(|e| io(e, &p))?;
        Ok(p)
    };
    let case = cx.to_case(prop, template, case_rules(app, prop, rules));
    let (document, prev) = cx.eval_documents(prop);
    let request = serde_json::to_value(cx.request(prop, template)).unwrap_or(Value::Null);
    Ok(Saved {
        case: write("case.json", &json!([case]))?,
        user: write("user.json", &document_to_json(&cx.case.user))?,
        request: write("request.json", &request)?,
        document: write("document.json", &document_to_json(&document))?,
        prev: match prev {
            Some(p) => Some(write("prev.json", &document_to_json(&p))?),
            None => None,
        },
    })
}

/// A word for a POSIX shell: single-quoted unless plain.
fn sh(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The `rolegate eval` command line of a counterexample: reading the saved files, or (without
/// `--out`) the inputs inline through bash process substitution.
fn eval_line(
    cx: &Counterexample,
    prop: &CompiledProperty,
    template: &ContextTemplate,
    args: &PropArgs,
    saved: Option<&Saved>,
) -> String {
    let (document, prev) = cx.eval_documents(prop);
    let inline = |v: &Value| format!("<(printf '%s' {})", sh(&v.to_string()));
    let (user, request, doc, prev) = match saved {
        Some(s) => (
            sh(&s.user.display().to_string()),
            sh(&s.request.display().to_string()),
            sh(&s.document.display().to_string()),
            s.prev.as_ref().map(|p| sh(&p.display().to_string())),
        ),
        None => (
            inline(&document_to_json(&cx.case.user)),
            inline(&serde_json::to_value(cx.request(prop, template)).unwrap_or(Value::Null)),
            inline(&document_to_json(&document)),
            prev.as_ref().map(|p| inline(&document_to_json(p))),
        ),
    };
    let mut line = format!(
        "rolegate eval {} --collection {} --action {} --user {user} --request {request} \
         --document {doc}",
        sh(&args.path.display().to_string()),
        sh(&prop.namespace),
        prop.action,
    );
    if let Some(p) = prev {
        line.push_str(&format!(" --prev {p}"));
    }
    line.push_str(" --explain");
    line
}

fn to_json(
    report: &PropertyReport,
    prop: &CompiledProperty,
    template: &ContextTemplate,
    args: &PropArgs,
    rules: &Rules,
) -> Value {
    let (outcome, reason) = match &report.outcome {
        PropertyOutcome::Passed => ("passed", None),
        PropertyOutcome::Vacuous(w) => ("vacuous", Some(w.clone())),
        PropertyOutcome::Failed(cx) => ("failed", Some(cx.reason.clone())),
        PropertyOutcome::Aborted(w) => ("error", Some(w.clone())),
    };
    let roles: Map<String, Value> = report
        .roles
        .iter()
        .map(|(r, n)| {
            (
                r.clone().unwrap_or_else(|| "(no role)".to_string()),
                json!(n),
            )
        })
        .collect();
    let counterexample = match &report.outcome {
        PropertyOutcome::Failed(cx) => json!({
            "user": document_to_json(&cx.case.user),
            "document": document_to_json(&cx.case.document),
            "post": cx.post.as_ref().map(document_to_json),
            "request": serde_json::to_value(cx.request(prop, template)).unwrap_or(Value::Null),
            "decision": {
                "role": cx.decision.role,
                "granted": cx.decision.granted,
                "permitted": cx.decision.permitted,
                "returned": cx.decision.document.as_ref().map(document_to_json),
                "error_code": cx.decision.error_code,
            },
            "shrink_runs": cx.shrink_runs,
            "case": cx.to_case(prop, template, case_rules(&args.path, prop, rules)),
            "eval": eval_line(cx, prop, template, args, None),
        }),
        _ => Value::Null,
    };
    json!({
        "name": report.name,
        "collection": report.namespace,
        "action": report.action.as_str(),
        "outcome": outcome,
        "reason": reason,
        "cases": report.cases,
        "in_scope": report.in_scope,
        "exercised": report.exercised,
        "schema_refused": report.schema_refused,
        "roles": roles,
        "seconds": report.elapsed.as_secs_f64(),
        "counterexample": counterexample,
    })
}
