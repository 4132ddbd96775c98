//! Stage: results. The outcomes that evaluators return per document ([`ReadOutcome`],
//! [`WriteOutcome`]) and per Sync session, with an optional [`Explanation`] that names the rule
//! (file and JSON path) behind each step of the decision.

use std::fmt;

use bson::{Bson, Document};

use crate::error::Place;

/// One step of a decision: what was checked, where the rule is, and what it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The rule behind this step, when there is one.
    pub place: Option<Place>,
    pub message: String,
}

/// Why a decision came out as it did, in order. Empty unless explanations were asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    pub steps: Vec<Step>,
}

impl Explanation {
    pub fn push(&mut self, place: Option<&Place>, message: impl Into<String>) {
        self.steps.push(Step {
            place: place.cloned(),
            message: message.into(),
        });
    }

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

/// Server error codes a write can fail with (spec §8; names from the realm-core error map).
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

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError {
    pub code: ErrorCode,
    /// Lowercase message, e.g. `insert not permitted`.
    pub message: String,
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
    pub error: Option<String>,
    pub explanation: Explanation,
}

impl ReadOutcome {
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
    pub role: Option<String>,
    pub allowed: bool,
    /// Why the write was refused (`None` when allowed).
    pub error: Option<WriteError>,
    pub explanation: Explanation,
}

/// The role of a Device Sync session for one collection, and what it grants a document.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSessionOutcome {
    /// The role assigned at session start.
    pub role: Option<String>,
    /// Set when the first matching role is not Sync-compatible: the collection is inaccessible.
    pub incompatible: Option<String>,
    pub readable: bool,
    pub writable: bool,
    /// True when the role would change at the next session (custom data changed): client reset.
    pub client_reset_on_next_session: bool,
    pub explanation: Explanation,
}

/// Partition-Based Sync access to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionAccess {
    pub read: bool,
    pub write: bool,
}
