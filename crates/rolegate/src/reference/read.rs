//! Read and Atlas Search decisions for one stored document (spec §3.1, §3.2 flowchart, U8–U10,
//! D1). Reads bind `%%root` and `%%prevRoot` to the stored document, so the insert-only pattern
//! (`write: {"%%prevRoot": {"%exists": false}}`) grants no implicit read.

use bson::Document;

use super::fields::{self, Inherited};
use super::{Failure, Trace, roles};
use crate::context::RequestContext;
use crate::outcome::ReadOutcome;
use crate::rules::{CollectionPolicy, DocumentFilters, Role};
use crate::value::eval::{Bindings, WholeRoots};

/// The read decision for `doc` under `policy` (`request.search` selects the Atlas Search gate).
pub fn read(
    policy: &CollectionPolicy<'_>,
    request: &RequestContext,
    doc: &Document,
    explain: bool,
) -> ReadOutcome {
    let mut trace = Trace::new(request, explain);
    if request.is_system() {
        trace.note(None, || "the system user bypasses all rules".to_string());
        return ReadOutcome {
            role: None,
            visible: true,
            document: Some(doc.clone()),
            error: None,
            explanation: trace.explanation,
        };
    }
    let whole = WholeRoots::new();
    let bindings = Bindings::stored(request, doc, Some(&whole));
    let (role, result) = match roles::select(policy.roles, &mut trace, &bindings) {
        Ok(None) => (None, Ok(None)),
        Ok(Some(role)) => (Some(role), decide(role, doc, &bindings, &mut trace)),
        Err(failure) => (None, Err(failure)),
    };
    let (document, error) = match result {
        Ok(document) => (document, None),
        Err(failure) => (None, Some(failure.to_string())),
    };
    ReadOutcome {
        role: role.map(|r| r.name.clone()),
        visible: document.is_some(),
        document,
        error,
        explanation: trace.explanation,
    }
}

/// Whether the document passes the role's read gate (`document_filters`, D1): an undefined
/// member defaults to true; a defined `write` filter that holds also opens the read gate.
pub(crate) fn read_gate(
    filters: Option<&DocumentFilters>,
    bindings: &Bindings<'_>,
    trace: &mut Trace<'_>,
) -> Result<bool, Failure> {
    let Some(df) = filters else { return Ok(true) };
    let Some(read) = &df.read else {
        return Ok(true);
    };
    if trace.eval(read, bindings, "document_filters.read")? {
        return Ok(true);
    }
    trace.eval_or(df.write.as_ref(), false, bindings, "document_filters.write")
}

/// What the document-level rules of a role decide for a document.
pub(crate) enum DocumentLevel {
    /// Withheld: the read gate, `search` or `read: false`.
    Withheld,
    /// Every field readable (`read` or `write` true).
    Whole,
    /// Field rules decide, with these document-level permissions.
    Fields(Inherited),
}

/// The document-level part of the read decision under `role` (read gate of
/// `document_filters`, `search`, then the role's `read` and `write`).
pub(crate) fn document_level(
    role: &Role,
    bindings: &Bindings<'_>,
    trace: &mut Trace<'_>,
) -> Result<DocumentLevel, Failure> {
    if !read_gate(role.document_filters.as_ref(), bindings, trace)? {
        trace.note_at(|| {
            let place = role.document_filters.as_ref().map(|df| df.place.clone());
            (
                place,
                "document filters exclude this document; withheld".to_string(),
            )
        });
        return Ok(DocumentLevel::Withheld);
    }
    if trace.request.search && role.search == Some(false) {
        trace.note_at(|| {
            (
                Some(role.place.key("search")),
                "search is false for this role; withheld from search".to_string(),
            )
        });
        return Ok(DocumentLevel::Withheld);
    }
    let read = trace.eval_opt(role.read.as_ref(), bindings, "read")?;
    if read == Some(true) {
        return Ok(DocumentLevel::Whole);
    }
    let write = trace.eval_opt(role.write.as_ref(), bindings, "write")?;
    if write == Some(true) {
        trace.note(None, || "write is true, which implies read".to_string());
        return Ok(DocumentLevel::Whole);
    }
    if read == Some(false) {
        trace.note(role.read.as_ref().map(|r| &r.place), || {
            "read is false; field rules cannot override it; withheld".to_string()
        });
        return Ok(DocumentLevel::Withheld);
    }
    trace.note(None, || {
        "read is undefined; field-level rules decide".to_string()
    });
    Ok(DocumentLevel::Fields(Inherited { read: None, write }))
}

/// The redacted document under the assigned `role`, or `None` when withheld.
fn decide(
    role: &Role,
    doc: &Document,
    bindings: &Bindings<'_>,
    trace: &mut Trace<'_>,
) -> Result<Option<Document>, Failure> {
    let inherited = match document_level(role, bindings, trace)? {
        DocumentLevel::Withheld => return Ok(None),
        DocumentLevel::Whole => return Ok(Some(doc.clone())),
        DocumentLevel::Fields(inherited) => inherited,
    };
    let level = fields::Level::role(role);
    let redacted = fields::redact(doc, inherited, bindings, trace, "", level)?;
    if redacted.is_empty() {
        trace.note(Some(&role.place), || {
            "no field is readable; withheld".to_string()
        });
        return Ok(None);
    }
    Ok(Some(redacted))
}
