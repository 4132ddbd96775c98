//! Stage: running cases. Input: a [`Case`] and an [`EngineChoice`]. Output: a [`CaseResult`]
//! (passed or not, the expected and actual answers as JSON, and a message naming every
//! mismatch or the reason the case could not run).
//!
//! ```text
//! Case ──load::rule_set──▶ RuleSet ──policy(db, coll)──▶ CollectionPolicy
//!   └─context::request_context──▶ RequestContext          │
//!                                        engine.<action>(policy, ctx, docs) ──▶ Actual
//!                                                           compare(expected, actual) ──▶ CaseResult
//! ```
//!
//! How actions are answered (decisions of the runner, where `case-format.md` is silent):
//!
//! * `expression`: `rules.expression` is parsed with the service dialect in `service` mode and the
//!   MongoDB dialect otherwise, at [`Site::Any`]; `%%root` is `document`, `%%prevRoot` is
//!   `prevDocument` when given, else absent for an `insert` operation, else `document`. An
//!   evaluation error is the result `false` (fail closed) and is reported under `error`.
//! * `role_selection`: the role of the stored document (`prevDocument` when given: updates select
//!   roles on the pre-image, U5); for an insert operation, the role the insert decision selects.
//! * `update`: `prevDocument` is the pre-image and `document` the post-image; an upsert operation
//!   (`upsert: true` or kind `upsert`) without `prevDocument` is an insert.
//! * A case whose `user.type` is `"system"` is a system-user request: the runner sets the
//!   bypass explicitly ([`RequestContext::with_system`]); the engines never infer it.
//! * `sync_write`: `prevDocument` absent is a create; a `delete` operation deletes
//!   `prevDocument` (or `document`).
//! * `filters`: the client query is `operation.query` (or the first `$match` of the pipeline),
//!   the client projection `client_projection` (or `operation.projection`).
//! * A case whose rules do not load fails with the load errors, unless it is a
//!   `validate_config` case, where that is the answer (`valid: false`).
//! * `call`: the operation body `call` runs on an in-memory store holding `documents`
//!   ([`super::call`]); a key that only `call` cases read, given to another action (or a key a
//!   `call` case does not read, such as `document`), is an error, never ignored.
//! * The namespace is `collection_rules`' `database`/`collection`, else `rules.collection`, else
//!   the only collection the rules define, else any (the data source's default rule applies;
//!   with several data sources that could govern it, the case fails: namespaces are never
//!   guessed).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bson::Document;
use serde::Serialize;
use serde_json::Value;

use super::compare::{Actual, compare};
use super::context::{
    InputError, add_app_values, case_is_system, later_context, request_context, to_document,
    to_document_opt,
};
use super::engine::{CaseEngine, EngineChoice};
use super::load;
use super::model::{Action, Case, Mode, OperationKind};
use crate::context::{RequestContext, RuleObserver};
use crate::error::{Diagnostics, LoadError, Place, Severity};
use crate::expr::{Dialect, Site, parse_expr};
use crate::outcome::{ReadOutcome, WriteOutcome};
use crate::rules::{CollectionPolicy, RoleSource, RolesKey, RuleSet};
use crate::value::{Bindings, eval_expr};

/// The outcome of running one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    /// The case's `name`.
    pub name: String,
    /// True when every key of `expected` matches the engine's answer.
    pub passed: bool,
    /// The case's `expected` object.
    pub expected: Value,
    /// The engine's answer: every key the action produces (or `{}` when the case could not run).
    pub actual: Value,
    /// Empty when passed; else every mismatch, or why the case could not run.
    pub message: String,
}

/// A case file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum CaseFileError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The case file's path, as given.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not a JSON array of cases: bad JSON, a missing required key, or a key the
    /// case format does not know (every level refuses unknown keys), with its line and column.
    #[error("`{path}` is not a valid case file: {source}")]
    Json {
        /// The case file's path, as given (empty when parsed from text).
        path: String,
        /// The parser's error, with line and column.
        source: serde_json::Error,
    },
    /// Two cases of the file have the same `name`.
    #[error("`{path}`: case names must be unique; `{name}` appears twice")]
    DuplicateName {
        /// The case file's path, as given (empty when parsed from text).
        path: String,
        /// The repeated name.
        name: String,
    },
}

/// Reads a case file: a JSON array of cases (`case-format.md`), with unique names.
pub fn load_case_file(path: impl AsRef<Path>) -> Result<Vec<Case>, CaseFileError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CaseFileError::Io {
        path: shown.clone(),
        source,
    })?;
    parse_cases(&text).map_err(|e| match e {
        CaseFileError::Json { source, .. } => CaseFileError::Json {
            path: shown.clone(),
            source,
        },
        CaseFileError::DuplicateName { name, .. } => CaseFileError::DuplicateName {
            path: shown.clone(),
            name,
        },
        other => other,
    })
}

/// Parses the text of a case file.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, CaseFileError> {
    let cases: Vec<Case> = serde_json::from_str(text).map_err(|source| CaseFileError::Json {
        path: String::new(),
        source,
    })?;
    let mut seen = std::collections::BTreeSet::new();
    for case in &cases {
        if !seen.insert(case.name.as_str()) {
            return Err(CaseFileError::DuplicateName {
                path: String::new(),
                name: case.name.clone(),
            });
        }
    }
    Ok(cases)
}

/// Runs one case through `engine` and judges the answer.
pub fn run_case(case: &Case, engine: EngineChoice) -> CaseResult {
    judged(case, answer(case, engine.engine()))
}

/// The result of `case` given the engine's `answer` (or why it could not run).
pub(crate) fn judged(case: &Case, answer: Result<Actual, CaseError>) -> CaseResult {
    let expected = serde_json::to_value(&case.expected).unwrap_or(Value::Null);
    match answer {
        Ok(actual) => {
            let mismatches = compare(&case.expected, &actual);
            let message = mismatches
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            CaseResult {
                name: case.name.clone(),
                passed: mismatches.is_empty(),
                expected,
                actual: actual.to_json(),
                message,
            }
        }
        Err(error) => CaseResult {
            name: case.name.clone(),
            passed: false,
            expected,
            actual: Value::Object(serde_json::Map::new()),
            message: format!("cannot run: {error}"),
        },
    }
}

/// Why a case could not be run at all.
#[derive(Debug)]
pub enum CaseError {
    /// A value in the case is not valid Extended JSON of the expected shape.
    Input(InputError),
    /// The case's rules do not load.
    Rules(LoadError),
    /// `rules.expression` does not parse.
    Expression(Diagnostics),
    /// The case lacks something its action needs.
    Missing(String),
    /// The case gives a key that its action does not read.
    Misplaced(String),
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseError::Input(e) => write!(f, "{e}"),
            CaseError::Rules(e) => {
                write!(f, "the rules do not load: {}", errors_text(&e.diagnostics))
            }
            CaseError::Expression(d) => {
                write!(f, "`rules.expression` does not parse: {}", errors_text(d))
            }
            CaseError::Missing(m) | CaseError::Misplaced(m) => f.write_str(m),
        }
    }
}

impl From<InputError> for CaseError {
    fn from(e: InputError) -> Self {
        CaseError::Input(e)
    }
}

/// Every error diagnostic, joined by `; `.
fn errors_text(d: &Diagnostics) -> String {
    let errors: Vec<String> =
        d.0.iter()
            .filter(|x| x.severity == Severity::Error)
            .map(ToString::to_string)
            .collect();
    if errors.is_empty() {
        "invalid rules".to_string()
    } else {
        errors.join("; ")
    }
}

/// The engine's answer to `case`.
pub fn answer(case: &Case, engine: &dyn CaseEngine) -> Result<Actual, CaseError> {
    answer_observed(case, engine, None)
}

/// [`answer`], with `observer` (when given) told the outcome of every rule evaluated for the
/// case's request (coverage: [`crate::case::coverage`]).
pub(crate) fn answer_observed(
    case: &Case,
    engine: &dyn CaseEngine,
    observer: Option<Arc<dyn RuleObserver>>,
) -> Result<Actual, CaseError> {
    if let Some(problem) = super::call::misplaced_keys(case) {
        return Err(CaseError::Misplaced(problem));
    }
    super::call::check_after(case)?;
    match case.action {
        Action::Expression => expression(case),
        Action::ValidateConfig => Ok(match load::rule_set(&case.rules) {
            Ok(_) => Actual {
                valid: Some(true),
                ..Default::default()
            },
            Err(e) => Actual {
                valid: Some(false),
                reason: Some(errors_text(&e.diagnostics)),
                ..Default::default()
            },
        }),
        _ => {
            let set = load::rule_set(&case.rules).map_err(CaseError::Rules)?;
            let mut ctx = request_context(
                case.user.as_ref(),
                case.request.as_ref(),
                case.action == Action::Search,
            )?
            .with_system(case_is_system(case.user.as_ref()));
            if let Some(observer) = observer {
                ctx = ctx.with_observer(observer);
            }
            match add_app_values(&set, &mut ctx, case.request.as_ref()) {
                Ok(()) if case.action == Action::Call => {
                    super::call::run(case, set, &ctx, engine.kind())
                }
                Ok(()) => with_rules(case, engine, &set, &ctx),
                Err(error) if case.action == Action::Call => {
                    super::call::denied(case, error.to_string())
                }
                Err(error) => Ok(denied(case.action, error.to_string())),
            }
        }
    }
}

/// The answer when the request context cannot be built (a secret the rules read is missing):
/// every decision denies, with the reason (fail closed).
fn denied(action: Action, reason: String) -> Actual {
    let mut actual = Actual {
        error: Some(reason),
        ..Default::default()
    };
    match action {
        Action::Read | Action::Search => actual.visible = Some(false),
        Action::RoleSelection => actual.role = Some(None),
        Action::SyncSession => {
            actual.role = Some(None);
            actual.readable = Some(false);
            actual.writable = Some(false);
        }
        Action::Pbs => {
            actual.read = Some(false);
            actual.write = Some(false);
        }
        Action::Insert
        | Action::Update
        | Action::Delete
        | Action::SyncWrite
        | Action::ServiceRule
        | Action::CanEvaluate => actual.allowed = Some(false),
        Action::Expression | Action::Filters | Action::ValidateConfig | Action::Call => {}
    }
    actual
}

fn missing(case: &Case, what: &str) -> CaseError {
    CaseError::Missing(format!("a `{}` case needs {what}", case.action))
}

fn operation_kind(case: &Case) -> Option<OperationKind> {
    case.request
        .as_ref()
        .and_then(|r| r.operation.as_ref())
        .map(|op| op.kind)
}

fn is_upsert(case: &Case) -> bool {
    case.request
        .as_ref()
        .and_then(|r| r.operation.as_ref())
        .is_some_and(|op| op.upsert == Some(true) || op.kind == OperationKind::Upsert)
}

/// Whether `case` inserts its `document` (an insert operation, or an upsert without pre-image).
fn inserts(case: &Case) -> bool {
    case.prev_document.is_none()
        && (operation_kind(case) == Some(OperationKind::Insert) || is_upsert(case))
}

fn expression(case: &Case) -> Result<Actual, CaseError> {
    let json = case
        .rules
        .expression
        .as_ref()
        .ok_or_else(|| missing(case, "`rules.expression`"))?;
    let dialect = if case.rules.mode == Mode::Service {
        Dialect::Service
    } else {
        Dialect::MongoDb
    };
    let mut diags = Diagnostics::default();
    let expr = parse_expr(
        json,
        dialect,
        Site::Any,
        &Place::file("<case>").key("rules").key("expression"),
        &mut diags,
    );
    if diags.has_errors() {
        return Err(CaseError::Expression(diags));
    }
    let ctx = request_context(
        case.user.as_ref(),
        case.request.as_ref(),
        case.action == Action::Search,
    )?
    .with_system(case_is_system(case.user.as_ref()));
    let doc = to_document_opt(case.document.as_ref(), "document")?;
    let prev = to_document_opt(case.prev_document.as_ref(), "prevDocument")?;
    let insert = operation_kind(case) == Some(OperationKind::Insert);
    let prev_root = match (&prev, insert) {
        (Some(p), _) => Some(p),
        (None, true) => None,
        (None, false) => doc.as_ref(),
    };
    let bindings = Bindings {
        request: &ctx,
        root: doc.as_ref(),
        prev_root,
        this: None,
        prev: None,
        whole: None,
    };
    Ok(match eval_expr(&expr, &bindings) {
        Ok(result) => Actual {
            result: Some(result),
            ..Default::default()
        },
        Err(e) => Actual {
            result: Some(false),
            error: Some(e.to_string()),
            ..Default::default()
        },
    })
}

/// The namespace a case's rules govern (see the module docs).
fn namespace(case: &Case, set: &RuleSet) -> (String, String) {
    if let Some(ns) = load::collection_namespace(&case.rules) {
        return ns;
    }
    let known = || {
        set.data_sources
            .values()
            .flat_map(|ds| ds.collections.keys())
    };
    if let Some(name) = &case.rules.collection {
        if let Some((db, coll)) = name.split_once('.') {
            return (db.to_string(), coll.to_string());
        }
        if let Some((db, coll)) = known().find(|(_, c)| c == name) {
            return (db.clone(), coll.clone());
        }
        return (String::new(), name.clone());
    }
    let mut all = known();
    match (all.next(), all.next()) {
        (Some((db, coll)), None) => (db.clone(), coll.clone()),
        _ => (
            load::DEFAULT_NAMESPACE.0.to_string(),
            load::DEFAULT_NAMESPACE.1.to_string(),
        ),
    }
}

fn with_rules(
    case: &Case,
    engine: &dyn CaseEngine,
    set: &RuleSet,
    ctx: &RequestContext,
) -> Result<Actual, CaseError> {
    let (db, coll) = namespace(case, set);
    // No data source at all: nothing governs the namespace (the system user still passes).
    // Two data sources that could govern it: the case must say which (never a guess).
    let policy = match set.policy(None, &db, &coll) {
        Ok(policy) => policy,
        Err(crate::rules::NamespaceError::NoDataSource) => CollectionPolicy {
            data_source: "",
            roles: &[],
            role_source: RoleSource::Default,
            filters: &[],
            schema: None,
            sync: None,
            collection: coll.clone(),
            roles_key: RolesKey::None,
        },
        Err(e) => return Err(CaseError::Missing(format!("namespace `{db}.{coll}`: {e}"))),
    };
    let doc = to_document_opt(case.document.as_ref(), "document")?;
    let prev = to_document_opt(case.prev_document.as_ref(), "prevDocument")?;
    let need_doc = || doc.as_ref().ok_or_else(|| missing(case, "`document`"));
    match case.action {
        Action::Expression | Action::ValidateConfig | Action::Call => {
            Err(missing(case, "no rule set"))
        }
        Action::RoleSelection => {
            let role = if inserts(case) {
                Ok(engine.insert(&policy, ctx, need_doc()?, false).role)
            } else {
                let stored = match &prev {
                    Some(pre) => pre,
                    None => need_doc()?,
                };
                engine.role(&policy, ctx, stored)
            };
            Ok(match role {
                Ok(role) => Actual {
                    role: Some(role),
                    ..Default::default()
                },
                Err(e) => Actual {
                    role: Some(None),
                    error: Some(e),
                    ..Default::default()
                },
            })
        }
        Action::Read | Action::Search => {
            Ok(read_actual(engine.read(&policy, ctx, need_doc()?, false)))
        }
        Action::Insert => Ok(write_actual(engine.insert(
            &policy,
            ctx,
            need_doc()?,
            false,
        ))),
        Action::Update => {
            let post = need_doc()?;
            Ok(write_actual(match &prev {
                Some(pre) => engine.update(&policy, ctx, pre, post, false),
                None if is_upsert(case) => engine.insert(&policy, ctx, post, false),
                None => {
                    return Err(missing(
                        case,
                        "`prevDocument` (or an upsert operation, which inserts)",
                    ));
                }
            }))
        }
        Action::Delete => Ok(write_actual(engine.delete(
            &policy,
            ctx,
            need_doc()?,
            false,
        ))),
        Action::SyncSession => {
            let later = later_context(ctx, case.request.as_ref())?;
            let out = engine.sync_session(&policy, ctx, doc.as_ref(), later.as_ref());
            Ok(Actual {
                role: Some(out.role),
                readable: Some(out.readable),
                writable: Some(out.writable),
                client_reset_on_next_session: Some(out.client_reset_on_next_session),
                incompatible: out.incompatible,
                ..Default::default()
            })
        }
        Action::SyncWrite => {
            let (pre, post) = if operation_kind(case) == Some(OperationKind::Delete) {
                (prev.as_ref().or(doc.as_ref()), None)
            } else {
                (prev.as_ref(), doc.as_ref())
            };
            if pre.is_none() && post.is_none() {
                return Err(missing(case, "`document` or `prevDocument`"));
            }
            Ok(write_actual(engine.sync_write(&policy, ctx, pre, post)))
        }
        Action::Pbs => {
            let perms = set
                .data_sources
                .values()
                .find_map(|ds| ds.partition_sync.as_ref())
                .ok_or_else(|| missing(case, "`rules.partition_permissions`"))?;
            let access = engine.partition(perms, ctx);
            Ok(Actual {
                read: Some(access.read),
                write: Some(access.write),
                ..Default::default()
            })
        }
        Action::ServiceRule => {
            let action = case
                .request
                .as_ref()
                .and_then(|r| r.action.as_deref())
                .ok_or_else(|| missing(case, "`request.action`"))?;
            let rules: Vec<_> = set.services.values().flatten().cloned().collect();
            Ok(decision(engine.service_action(&rules, ctx, action)))
        }
        Action::CanEvaluate => {
            let function = set
                .functions
                .values()
                .next()
                .ok_or_else(|| missing(case, "`rules.can_evaluate`"))?;
            Ok(decision(engine.can_evaluate(function, ctx)))
        }
        Action::Filters => super::filters::run(case, &policy, ctx),
    }
}

fn decision(result: Result<bool, String>) -> Actual {
    match result {
        Ok(allowed) => Actual {
            allowed: Some(allowed),
            ..Default::default()
        },
        Err(e) => Actual {
            allowed: Some(false),
            error: Some(e),
            ..Default::default()
        },
    }
}

/// The answer of a read: role, visibility, kept fields and the redacted document.
pub fn read_actual(out: ReadOutcome) -> Actual {
    Actual {
        role: Some(out.role.clone()),
        visible: Some(out.visible),
        fields: Some(out.fields()),
        document: out.document,
        error: out.error,
        ..Default::default()
    }
}

/// The answer of a write: role, verdict, error message and code.
pub fn write_actual(out: WriteOutcome) -> Actual {
    Actual {
        role: Some(out.role),
        allowed: Some(out.allowed),
        error: out.error.as_ref().map(|e| e.message.clone()),
        error_code: out.error.as_ref().map(|e| e.code.as_str().to_string()),
        ..Default::default()
    }
}

/// Decodes `collection_documents` (for `filters` cases).
pub(super) fn collection_documents(case: &Case) -> Result<Vec<Document>, CaseError> {
    let docs = case
        .request
        .as_ref()
        .and_then(|r| r.collection_documents.as_ref());
    Ok(docs
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, d)| to_document(d, &format!("request.collection_documents[{i}]")))
        .collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn case(v: Value) -> Case {
        serde_json::from_value(v).unwrap()
    }

    fn base(action: &str, expected: Value) -> Value {
        json!({
            "name": "t", "source": "unit test", "notes": "[spec] unit test",
            "rules": {"mode": "mongodb", "collection_rules": {"database": "app", "collection": "items",
                      "roles": [{"name": "rw", "apply_when": {}, "read": true, "write": true, "insert": false}]},
                      "default_rule": null},
            "user": {"id": "u1", "type": "normal", "data": {}, "custom_data": {}, "identities": []},
            "document": {"_id": 1, "a": 2},
            "action": action,
            "expected": expected
        })
    }

    #[test]
    fn rules_that_do_not_load_fail_the_case_with_the_errors() {
        let mut v = base("read", json!({"visible": true}));
        v["rules"]["collection_rules"]["roles"][0]["name"] = json!("r".repeat(101));
        let r = run_case(&case(v), EngineChoice::Reference);
        assert!(!r.passed);
        assert!(
            r.message.contains("do not load") && r.message.contains("roles[0].name"),
            "{}",
            r.message
        );
    }

    #[test]
    fn upsert_without_pre_image_is_an_insert() {
        let mut v = base(
            "update",
            json!({"allowed": false, "error_code": "InsertNotPermitted"}),
        );
        v["request"] = json!({"operation": {"kind": "update", "upsert": true}});
        let r = run_case(&case(v), EngineChoice::Reference);
        assert!(r.passed, "{} {}", r.message, r.actual);
    }

    #[test]
    fn update_without_pre_image_cannot_run() {
        let v = base("update", json!({"allowed": true}));
        let r = run_case(&case(v), EngineChoice::Reference);
        assert!(!r.passed);
        assert!(r.message.contains("prevDocument"), "{}", r.message);
    }

    #[test]
    fn mismatches_name_the_key() {
        let v = base("read", json!({"visible": true, "fields": ["_id"]}));
        let r = run_case(&case(v), EngineChoice::Reference);
        assert!(!r.passed);
        assert!(r.message.starts_with("`fields`"), "{}", r.message);
        assert_eq!(r.actual["visible"], json!(true));
    }

    #[test]
    fn case_files_need_unique_names() {
        let one = base("read", json!({"visible": true}));
        let text = serde_json::to_string(&json!([one.clone(), one])).unwrap();
        assert!(matches!(
            parse_cases(&text),
            Err(CaseFileError::DuplicateName { .. })
        ));
    }
}
