//! Stage: the decision of one generated case. Input: a collection, a request context, an action
//! and the case's documents. Output: a [`Decision`] — what the client gets: for a read, the
//! query plan's filters and the roles on the stored document (through
//! [`PreparedRequest::read_for`](crate::PreparedRequest::read_for)); for a write, the outcome,
//! and whether the rules alone permit it. Shared by properties and the semantic diff.

use bson::{Bson, Document};

use super::model::PropAction;
use crate::context::RequestContext;
use crate::engine::Collection;
use crate::outcome::{ErrorCode, leaf_paths};

/// What a case's request gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The role that decided (`None`: no role applied, or the filters did not select the
    /// document).
    pub role: Option<String>,
    /// Read: the document is returned. Write: the write goes ahead (rules and schema).
    pub granted: bool,
    /// Write: the rules permit it (it goes ahead, or only the schema refuses it). Read: as
    /// `granted`.
    pub permitted: bool,
    /// Read: the document returned (redacted, projected).
    pub document: Option<Document>,
    /// Read: the filters' queries selected the document.
    pub selected: bool,
    /// Write: the error code of a refusal (`UpdateNotPermitted`, `SchemaValidationFailedWrite`,
    /// ...).
    pub error_code: Option<String>,
    /// The detailed reason of a refusal or of a failed evaluation, if any.
    pub error: Option<String>,
}

impl Decision {
    /// Read: the dotted leaf paths of the returned document (empty when withheld).
    pub fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(d) = &self.document {
            leaf_paths(d, "", &mut out);
        }
        out
    }
}

/// Decides `action` on `document` (the stored document; the new one for an insert) and, for an
/// update, the post-image `post`, for `ctx` under `collection`'s rules.
pub fn decide(
    collection: &Collection,
    ctx: &RequestContext,
    action: PropAction,
    document: &Document,
    post: Option<&Document>,
) -> Decision {
    let request = collection.prepare(ctx);
    let write = |outcome: crate::outcome::WriteOutcome| {
        let code = outcome.error.as_ref().map(|e| e.code);
        Decision {
            role: outcome.role,
            granted: outcome.allowed,
            permitted: outcome.allowed || code == Some(ErrorCode::SchemaValidationFailedWrite),
            document: None,
            selected: true,
            error_code: code.map(|c| c.as_str().to_string()),
            error: outcome.error.map(|e| e.message),
        }
    };
    match action {
        PropAction::Read => match request.query_plan(None, None) {
            Ok(plan) => {
                let read = request.read_for(&plan, document);
                let visible = read.selected && read.outcome.visible;
                Decision {
                    role: read.outcome.role,
                    granted: visible,
                    permitted: visible,
                    document: if visible { read.outcome.document } else { None },
                    selected: read.selected,
                    error_code: None,
                    error: read.outcome.error,
                }
            }
            Err(e) => Decision {
                role: None,
                granted: false,
                permitted: false,
                document: None,
                selected: false,
                error_code: None,
                error: Some(e.to_string()),
            },
        },
        PropAction::Insert => write(request.insert(document)),
        PropAction::Update => write(request.update(document, post.unwrap_or(document))),
        PropAction::Delete => write(request.delete(document)),
    }
}

/// The value at a dotted path (`segments`) of `doc`: through embedded documents, and through
/// arrays into their document elements (every match, as MongoDB's paths do).
pub fn values_at<'d>(doc: &'d Document, segments: &[String]) -> Vec<&'d Bson> {
    let mut out = Vec::new();
    let Some((first, rest)) = segments.split_first() else {
        return out;
    };
    let Some(v) = doc.get(first) else {
        return out;
    };
    // An explicit stack: values are depth-guarded, but no recursion is needed here.
    let mut stack: Vec<(&Bson, &[String])> = vec![(v, rest)];
    while let Some((v, rest)) = stack.pop() {
        let Some((next, tail)) = rest.split_first() else {
            out.push(v);
            continue;
        };
        match v {
            Bson::Document(d) => {
                if let Some(x) = d.get(next) {
                    stack.push((x, tail));
                }
            }
            Bson::Array(items) => {
                for item in items {
                    if let Bson::Document(d) = item
                        && let Some(x) = d.get(next)
                    {
                        stack.push((x, tail));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether `doc` has the dotted path `segments` (see [`values_at`]).
pub fn has_path(doc: &Document, segments: &[String]) -> bool {
    !values_at(doc, segments).is_empty()
}
