//! Stage: the errors of operations. Input: whatever refused an operation (a malformed body, a
//! rule, the MongoDB language, the store). Output: an [`OpError`] with two views, the
//! client-safe code and fixed message (App Services' codes where known) and the detailed
//! message for logs and `--explain`.

use std::fmt;

use crate::outcome::{ClientError, WriteOutcome};
use crate::query::PlanError;

use super::store::StoreError;

/// Why an operation failed. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    client: ClientError,
    detail: String,
    explanation: Vec<String>,
}

impl OpError {
    fn new(code: &'static str, message: &'static str, detail: impl Into<String>) -> OpError {
        OpError {
            client: ClientError { code, message },
            detail: detail.into(),
            explanation: Vec::new(),
        }
    }

    /// The body or an argument is malformed (a missing or mistyped field, an unknown action or
    /// argument, an invalid update, sort or projection).
    pub(crate) fn invalid(detail: impl Into<String>) -> OpError {
        OpError::new("InvalidParameter", "invalid parameter", detail)
    }

    /// No rules govern the namespace.
    pub(crate) fn no_rule(namespace: &str) -> OpError {
        OpError::new(
            "NoMatchingRuleFound",
            "no rules govern this collection",
            format!("no rule exists for namespace '{namespace}'"),
        )
    }

    /// The MongoDB language refused the operation on a stored document (an update operator on
    /// a value of the wrong type, a sort over parallel arrays, ...). The detail may quote
    /// stored values, so the client gets a fixed message.
    pub(crate) fn mongodb(detail: impl Into<String>) -> OpError {
        OpError::new(
            "MongoDBError",
            "the operation failed in the database",
            detail,
        )
    }

    /// The rules refused a write.
    pub(crate) fn refused(outcome: &WriteOutcome, id_note: &str) -> OpError {
        let client = outcome
            .client_error()
            .unwrap_or(ClientError::RULE_EVALUATION_FAILED);
        let detail = format!(
            "{}{id_note}",
            outcome.detail().unwrap_or("refused by the rules")
        );
        OpError {
            client,
            detail,
            explanation: Vec::new(),
        }
    }

    /// A read of the operation failed closed (a rule could not be evaluated).
    pub(crate) fn rule_failed(detail: impl Into<String>) -> OpError {
        OpError {
            client: ClientError::RULE_EVALUATION_FAILED,
            detail: detail.into(),
            explanation: Vec::new(),
        }
    }

    /// The store refused or failed.
    pub(crate) fn store(error: &StoreError) -> OpError {
        match error {
            StoreError::DuplicateKey { .. } => {
                OpError::new("MongoDBError", "duplicate key error", error.to_string())
            }
            StoreError::Conflict { .. } => OpError::conflict(error.to_string()),
            StoreError::Failed(_) => OpError::new(
                "InternalServerError",
                "the data store failed",
                error.to_string(),
            ),
        }
    }

    /// The documents kept changing between the read and the write.
    pub(crate) fn conflict(detail: impl Into<String>) -> OpError {
        OpError::new(
            "WriteConflict",
            "the documents changed during the operation; retry",
            detail,
        )
    }

    /// Attaches the decision's explanation lines (when the request explains).
    pub(crate) fn with_explanation(mut self, lines: Vec<String>) -> OpError {
        self.explanation = lines;
        self
    }

    /// **Detailed view** (empty unless the request explains): the store query, the documents
    /// it returned and the decisions made before the operation failed.
    pub fn explanation(&self) -> &[String] {
        &self.explanation
    }

    /// Appends to the detailed view.
    pub(crate) fn add_detail(&mut self, more: &str) {
        self.detail.push_str(": ");
        self.detail.push_str(more);
    }

    /// A request the host could not make sense of before any rule ran (no credentials, a body
    /// that is not Extended JSON): `BadRequest`.
    pub fn bad_request(detail: impl Into<String>) -> OpError {
        OpError::new("BadRequest", "bad request", detail)
    }

    /// The error of a store that refused or failed (for hosts that drive the store
    /// themselves): `MongoDBError` for a duplicate key, `WriteConflict`, or
    /// `InternalServerError`.
    pub fn from_store(error: &StoreError) -> OpError {
        OpError::store(error)
    }

    /// The client-safe view: a code and its fixed message.
    pub fn client_error(&self) -> ClientError {
        self.client
    }

    /// The code (`InvalidParameter`, `UpdateNotPermitted`, `NoMatchingRuleFound`, ...).
    pub fn code(&self) -> &'static str {
        self.client.code
    }

    /// **Detailed view**, for logs and operators only: may name rules and quote document values
    /// the user cannot read.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl From<PlanError> for OpError {
    fn from(e: PlanError) -> OpError {
        match e {
            PlanError::OperatorNotAllowed { .. }
            | PlanError::InvalidClientQuery { .. }
            | PlanError::InvalidProjection { .. }
            | PlanError::ProjectionConflict { .. }
            | PlanError::MixedProjection { .. }
            | PlanError::EmptyProjection
            | PlanError::ClientQueryTooDeep { .. } => OpError::invalid(e.to_string()),
            PlanError::Eval { .. }
            | PlanError::MissingExpansion { .. }
            | PlanError::QueryNotDocument { .. }
            | PlanError::Limit(_) => OpError::rule_failed(e.to_string()),
        }
    }
}

impl fmt::Display for OpError {
    /// The detailed view (for logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.client.code, self.detail)
    }
}

impl std::error::Error for OpError {}
