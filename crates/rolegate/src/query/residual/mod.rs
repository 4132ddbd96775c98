//! Stage: the read residual, once per request (pushdown). Input: the collection's roles and
//! the [`RequestContext`]. Output: a [`Residual`] — *everything*, *nothing*, or a MongoDB query
//! that every document the user may see matches — marked *exact* when matching it is also
//! enough for the read decision to show the document (which then only redacts).
//!
//! The query joins the store query ([`QueryPlan::store_query`](super::QueryPlan::store_query)),
//! so a user who may see 1% of a collection reads 1% of it (with an index on MongoDB), and
//! `limit`, `skip` and `count` count visible documents without over-fetching. The per-document
//! decision still runs on every document the store returns: a residual only ever removes
//! documents the decision would withhold.
//!
//! - [`approx`]: queries and constants, and their upper and lower bounds;
//! - [`translate`]: rule expressions into queries, request-only parts folded;
//! - [`roles`]: first-match roles, document filters, document-level and field-level reads.

mod approx;
mod roles;
#[cfg(test)]
mod tests;
mod translate;

use bson::Document;

use crate::context::RequestContext;
use crate::rules::Role;
use crate::value::Bindings;

use approx::Q;

/// The largest residual query sent, encoded (larger ones widen to *everything*).
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

fn encoded_len(query: &Document) -> usize {
    bson::to_vec(query).map_or(usize::MAX, |bytes| bytes.len())
}

/// Which documents a read may return, before any is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Residual {
    /// No constraint: every document may be visible.
    Everything {
        /// Every document is visible (only redaction remains).
        exact: bool,
    },
    /// No document can be visible: no query needs to run.
    Nothing,
    /// A document can be visible only if it matches `query`.
    Query {
        /// A MongoDB query; substituted values in it are literals.
        query: Document,
        /// Matching `query` is also sufficient: the decision only redacts.
        exact: bool,
    },
}

impl Residual {
    /// The read residual of `roles` for `request` (the system user: everything, exactly).
    pub fn of(roles: &[Role], request: &RequestContext) -> Residual {
        if request.is_system() {
            return Residual::Everything { exact: true };
        }
        let t = translate::Translator::new(Bindings::request_only(request));
        let approx = roles::visible(roles, request.search, &t);
        let exact = approx.is_exact();
        match approx.over {
            Q::True => Residual::Everything { exact },
            Q::False => Residual::Nothing,
            // Many roles negate one another: past a size, the database's work on the query
            // would outweigh what it saves. Widen (a superset is always sound).
            Q::Query(query) if encoded_len(&query) > MAX_QUERY_BYTES => {
                Residual::Everything { exact: false }
            }
            Q::Query(query) => Residual::Query { query, exact },
        }
    }

    /// The projection residual: the top-level fields any role that can apply may let the user
    /// read (`None`: any field may be; always for the system user). A field outside it is
    /// never shown, so a read need not fetch it unless a rule or a filter reads it.
    pub fn readable_fields(
        roles: &[Role],
        request: &RequestContext,
    ) -> Option<std::collections::BTreeSet<String>> {
        if request.is_system() {
            return None;
        }
        let t = translate::Translator::new(Bindings::request_only(request));
        roles::readable_fields(roles, &t)
    }

    /// The query to add to the store query (`None`: no constraint).
    pub fn query(&self) -> Option<&Document> {
        match self {
            Residual::Query { query, .. } => Some(query),
            _ => None,
        }
    }

    /// Whether matching the residual is also sufficient for visibility.
    pub fn is_exact(&self) -> bool {
        match self {
            Residual::Everything { exact } | Residual::Query { exact, .. } => *exact,
            Residual::Nothing => true,
        }
    }

    /// One line for `--explain`: `everything`, `nothing`, or the query as canonical Extended
    /// JSON, then `exact` or `superset`.
    pub fn describe(&self) -> String {
        let kind = if self.is_exact() { "exact" } else { "superset" };
        match self {
            Residual::Everything { .. } => format!("everything {kind}"),
            Residual::Nothing => "nothing".to_string(),
            Residual::Query { query, .. } => format!(
                "{} {kind}",
                bson::Bson::Document(query.clone()).into_canonical_extjson()
            ),
        }
    }
}
