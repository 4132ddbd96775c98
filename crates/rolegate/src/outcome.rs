//! Stage: results. The outcomes that evaluators return per document ([`ReadOutcome`],
//! [`WriteOutcome`]) and per Sync session, with an optional [`Explanation`] that names the rule
//! (file and JSON path) behind each step of the decision.
//!
//! Every refusal has a detailed view, for operators, and a client-safe one, [`ClientError`],
//! whose documentation says which is which.

use std::fmt;

use bson::{Bson, Document};

use crate::error::Place;

/// One step of a decision: what was checked, where the rule is, and what it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The rule behind this step, when there is one.
    pub place: Option<Place>,
    /// What was checked and what it gave: ``apply_when of role `owner` is false``,
    /// ``field `salary` is not readable; removed``. May quote values the user cannot see.
    pub message: String,
}

/// Why a decision came out as it did, in order. Empty unless explanations were asked for.
///
/// Each rule evaluated is a step at its place (`apply_when of role `owner` is false`); a rule
/// that is false or fails is followed by one step per test it evaluated, with the values
/// compared (`values compared: owner_id: "u2" (document) vs "u1" (%%user.id) => false`; at
/// most eight, then a count of the rest); the steps that deny (a field removed, `read` false,
/// document filters, no role) carry the place of the rule that denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    /// The steps, in the order the rules were evaluated.
    pub steps: Vec<Step>,
}

impl Explanation {
    /// Adds a step saying `message`, at the place of the rule behind it when there is one.
    pub fn push(&mut self, place: Option<&Place>, message: impl Into<String>) {
        self.steps.push(Step {
            place: place.cloned(),
            message: message.into(),
        });
    }

    /// True when there is no step: explanations were not asked for, or nothing was evaluated.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            match &step.place {
                Some(p) => writeln!(f, "  - {} [{p}]", step.message)?,
                None => writeln!(f, "  - {}", step.message)?,
            }
        }
        Ok(())
    }
}

/// Server error codes a write can fail with (App Services' names for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The role does not permit the insert (`insert not permitted`).
    InsertNotPermitted,
    /// The role does not permit the update (`update not permitted`).
    UpdateNotPermitted,
    /// The role does not permit the delete (`delete not permitted`).
    DeleteNotPermitted,
    /// No role applies to the document.
    NoMatchingRole,
    /// No rules at all govern the namespace.
    NoMatchingRuleFound,
    /// The result of the write does not conform to the collection schema.
    SchemaValidationFailedWrite,
    /// Evaluating a rule failed (host function error, limit, bad argument): denied, fail closed.
    RuleEvaluationFailed,
    /// A Device Sync write was rejected (compensating write).
    CompensatingWrite,
}

impl ErrorCode {
    /// The code's name as conformance cases and JSON output spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InsertNotPermitted => "InsertNotPermitted",
            ErrorCode::UpdateNotPermitted => "UpdateNotPermitted",
            ErrorCode::DeleteNotPermitted => "DeleteNotPermitted",
            ErrorCode::NoMatchingRole => "NoMatchingRole",
            ErrorCode::NoMatchingRuleFound => "NoMatchingRuleFound",
            ErrorCode::SchemaValidationFailedWrite => "SchemaValidationFailedWrite",
            ErrorCode::RuleEvaluationFailed => "RuleEvaluationFailed",
            ErrorCode::CompensatingWrite => "CompensatingWrite",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a write was refused (the detailed view; [`WriteError::client_error`] is the client's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError {
    /// The App Services error code of the refusal (`NoMatchingRuleFound`,
    /// `SchemaValidationFailedWrite`, ...), safe to show a client.
    pub code: ErrorCode,
    /// Lowercase message, e.g. `insert not permitted`. **Detailed view**: an evaluation failure
    /// or a schema violation quotes rule internals and document values; never send it to a
    /// client ([`WriteError::client_error`] is the client's view).
    pub message: String,
}

impl WriteError {
    /// The detailed message, for logs and operators only: it may quote document values the
    /// user's role hides ([`ClientError`]).
    pub fn detail(&self) -> &str {
        &self.message
    }

    /// The client-safe view: the code and its fixed message.
    pub fn client_error(&self) -> ClientError {
        self.code.client_error()
    }
}

/// The client-safe view of a refusal: an error code and a fixed generic message per code. Both
/// are static text: no document value, rule name, file or JSON path can be in it. Send this,
/// not the detailed view, to clients.
///
/// A refusal has two views, and the API names which is which:
///
/// * the **detailed view**, for logs, `--explain` and the people who run the app: the
///   `error` fields of [`ReadOutcome`] and [`WriteError`] (also [`ReadOutcome::detail`],
///   [`WriteError::detail`]), the [`Explanation`], and the `Display` text of
///   [`PlanError`](crate::PlanError) and [`EvalError`](crate::EvalError). They name rule files
///   and JSON paths and may quote the values compared — document values the user's role hides
///   (a `%stringToOid` failure quotes
///   the field's text; an explanation names every field it hides and quotes the values a false
///   rule compared; a function mock's error quotes its arguments). Quoted values are cut short
///   (`...(truncated)`). **Never send them to a client.**
/// * the **client-safe view**, [`ClientError`] (`client_error()` on every outcome and error):
///   an error code and a fixed generic message per code. Both are `&'static str`, so a client
///   error cannot carry a document value, a rule name or any other runtime text — by
///   construction, not by filtering.
///
/// The codes are App Services' own (`InsertNotPermitted`, `SchemaValidationFailedWrite`, ...),
/// plus `InvalidProjection` for a client projection the plan refuses. What a code still tells
/// a client (that a schema exists, that some role applied or none did) is what App Services
/// tells it too. A withheld document has no client error: it is simply not returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientError {
    /// The error code, e.g. `InsertNotPermitted`.
    pub code: &'static str,
    /// The generic message of the code, e.g. `insert not permitted`.
    pub message: &'static str,
}

impl ClientError {
    /// A rule could not be evaluated (or a limit was reached): the request is denied.
    pub const RULE_EVALUATION_FAILED: ClientError = ClientError {
        code: "RuleEvaluationFailed",
        message: "the request was denied by the rules",
    };

    /// The client's projection cannot be used with the rules' projections.
    pub const INVALID_PROJECTION: ClientError = ClientError {
        code: "InvalidProjection",
        message: "the projection is not permitted",
    };
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ErrorCode {
    /// The fixed client-safe message of the code.
    pub fn client_message(self) -> &'static str {
        match self {
            ErrorCode::InsertNotPermitted => "insert not permitted",
            ErrorCode::UpdateNotPermitted => "update not permitted",
            ErrorCode::DeleteNotPermitted => "delete not permitted",
            ErrorCode::NoMatchingRole => "no role permits this operation",
            ErrorCode::NoMatchingRuleFound => "no rules govern this collection",
            ErrorCode::SchemaValidationFailedWrite => {
                "the document does not conform to the collection schema"
            }
            ErrorCode::RuleEvaluationFailed => ClientError::RULE_EVALUATION_FAILED.message,
            ErrorCode::CompensatingWrite => "the write was rejected",
        }
    }

    /// The client-safe view of the code.
    pub fn client_error(self) -> ClientError {
        ClientError {
            code: self.as_str(),
            message: self.client_message(),
        }
    }
}

impl crate::query::PlanError {
    /// The client-safe view of a failed query plan: `InvalidProjection` when the projections
    /// cannot be combined, `RuleEvaluationFailed` otherwise (a filter failed). The detailed
    /// view is the error's `Display` text (it names filters and may quote values).
    pub fn client_error(&self) -> ClientError {
        use crate::query::PlanError;
        match self {
            PlanError::ProjectionConflict { .. }
            | PlanError::MixedProjection { .. }
            | PlanError::EmptyProjection => ClientError::INVALID_PROJECTION,
            _ => ClientError::RULE_EVALUATION_FAILED,
        }
    }
}

impl crate::value::EvalError {
    /// The client-safe view of an evaluation failure: always `RuleEvaluationFailed`. The
    /// detailed view is the error's `Display` text (it may quote the values evaluated).
    pub fn client_error(&self) -> ClientError {
        ClientError::RULE_EVALUATION_FAILED
    }
}

/// The decision for one document of a read (or Atlas Search) request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOutcome {
    /// The role applied to the document, if any.
    pub role: Option<String>,
    /// False when the document is withheld from the results.
    pub visible: bool,
    /// The redacted document (unreadable fields removed) when visible.
    pub document: Option<Document>,
    /// Set when the document was withheld because evaluating a rule failed (fail closed).
    /// **Detailed view**: names the rule and may quote document values the role hides; never
    /// send it to a client ([`ReadOutcome::client_error`] is the client's view).
    pub error: Option<String>,
    /// **Detailed view**: the steps of the decision (empty unless asked for); names rules and
    /// hidden fields. For operators only.
    pub explanation: Explanation,
}

impl ReadOutcome {
    /// A document withheld before any role was chosen, with the detailed reason when it is
    /// withheld because something failed.
    pub fn withheld(error: Option<String>) -> ReadOutcome {
        ReadOutcome {
            role: None,
            visible: false,
            document: None,
            error,
            explanation: Explanation::default(),
        }
    }

    /// The detailed reason the document was withheld with an error, for logs and operators only:
    /// it may quote document values the user's role hides ([`ClientError`]).
    pub fn detail(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The client-safe view: `RuleEvaluationFailed` when a rule failed, `None` otherwise (a
    /// document that is visible, or withheld by the rules, has nothing to report).
    pub fn client_error(&self) -> Option<ClientError> {
        self.error
            .as_ref()
            .map(|_| ClientError::RULE_EVALUATION_FAILED)
    }

    /// The field paths the redacted document keeps: dotted paths of its leaves (sub-documents
    /// are descended into; arrays and scalars are leaves; an empty sub-document is a leaf).
    pub fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(doc) = &self.document {
            leaf_paths(doc, "", &mut out);
        }
        out
    }
}

/// Appends the dotted leaf paths of `doc` (prefixed by `prefix`) to `out`.
pub fn leaf_paths(doc: &Document, prefix: &str, out: &mut Vec<String>) {
    // INVARIANT: documents reaching here were produced by redaction, whose depth is bounded by the
    // rule tree; an explicit stack keeps hostile input from overflowing anyway.
    let mut stack: Vec<(String, &Document)> = vec![(prefix.to_string(), doc)];
    let mut found = Vec::new();
    while let Some((prefix, doc)) = stack.pop() {
        for (k, v) in doc {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Bson::Document(d) if !d.is_empty() => stack.push((path, d)),
                _ => found.push(path),
            }
        }
    }
    found.sort();
    out.extend(found);
}

/// The decision for one insert, update, replace or delete of one document.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    /// The name of the role chosen for the document (on the stored document for an update or a
    /// delete, on the new document for an insert); `None` when no role's `apply_when` holds.
    pub role: Option<String>,
    /// True when the write may go ahead: the role's document filters, field-level and
    /// document-level `write`, `insert`/`delete`, and the schema all allow it.
    pub allowed: bool,
    /// Why the write was refused (`None` when allowed). Its message is the **detailed view**
    /// ([`WriteOutcome::client_error`] is the client's).
    pub error: Option<WriteError>,
    /// **Detailed view**: the steps of the decision (empty unless asked for). For operators only.
    pub explanation: Explanation,
}

impl WriteOutcome {
    /// The detailed reason the write was refused, for logs and operators only.
    pub fn detail(&self) -> Option<&str> {
        self.error.as_ref().map(WriteError::detail)
    }

    /// The client-safe view of a refusal (`None` when the write is allowed): the code and its
    /// fixed message; `RuleEvaluationFailed` for a refusal without a recorded error.
    pub fn client_error(&self) -> Option<ClientError> {
        match &self.error {
            Some(e) => Some(e.client_error()),
            None if self.allowed => None,
            None => Some(ClientError::RULE_EVALUATION_FAILED),
        }
    }
}

/// The role of a Device Sync session for one collection, and what it grants a document.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSessionOutcome {
    /// The role assigned at session start.
    pub role: Option<String>,
    /// Set when the first matching role is not Sync-compatible: the collection is inaccessible.
    pub incompatible: Option<String>,
    /// True when the session may read the given document: the role's `document_filters.read`
    /// (or `.write`) holds and its `read` or `write` is true. False without a document.
    pub readable: bool,
    /// True when the session may write the given document (document filters and `write`).
    /// False without a document.
    pub writable: bool,
    /// True when the role would change at the next session (custom data changed): client reset.
    pub client_reset_on_next_session: bool,
    /// **Detailed view**: the steps of the decision (empty unless asked for). For operators only.
    pub explanation: Explanation,
}

/// Partition-Based Sync access to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionAccess {
    /// The partition may be read: its `read` or its `write` rule holds for the user.
    pub read: bool,
    /// The partition may be written: its `write` rule holds for the user.
    pub write: bool,
}
