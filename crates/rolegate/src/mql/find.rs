//! Stage: an in-memory `find` (tests, the case runner, hosts without a database). Input:
//! documents and a find request (filter, sort, skip, limit, projection). Output: what MongoDB's
//! `find` returns, in order, or its error.
//!
//! Everything is parsed first (as MongoDB does, so a bad sort or projection fails even when no
//! document matches), then the filter selects ([`matches()`](crate::mql::matches)), the sort
//! orders, skip and limit window, and the projection shapes each returned document, its
//! positional `$` reading the filter's match.

use bson::Document;

use crate::mql::find_error::FindError;
use crate::mql::positional::Positional;
use crate::mql::projection::Projection;
use crate::mql::sort::{SortSpec, Window, sort_window};
use crate::query::memory::{compile_query, matches};

/// A find request's parts; `Default` is `find({})`.
#[derive(Debug, Clone, Default)]
pub struct FindRequest {
    /// The query (`{}`: every document).
    pub filter: Document,
    /// The sort specification (`{}`: natural order).
    pub sort: Document,
    /// Documents skipped (negative: `BadValue`).
    pub skip: i64,
    /// Most documents returned (0: no limit; negative: as the positive one, decision M23).
    pub limit: i64,
    /// The projection (`{}`: whole documents).
    pub projection: Document,
}

/// Runs `request` over `docs` as MongoDB's `find` would.
pub fn find(docs: &[Document], request: &FindRequest) -> Result<Vec<Document>, FindError> {
    let query = compile_query(&request.filter)
        .map_err(|e| FindError::bad_value(format!("invalid query: {e}")))?;
    let sort = SortSpec::parse(&request.sort)?;
    let window = Window::new(request.skip, request.limit)?;
    let projection = Projection::compile(&request.projection)?;
    let positional = if projection.is_positional() {
        Positional::new(&query)
    } else {
        Positional::default()
    };
    let mut selected = Vec::new();
    for doc in docs {
        let holds = matches(&query, doc)
            .map_err(|e| FindError::bad_value(format!("query evaluation failed: {e}")))?;
        if holds {
            selected.push(doc.clone());
        }
    }
    let ordered = sort_window(selected, &sort, window)?;
    ordered
        .iter()
        .map(|doc| projection.apply_matched(doc, &positional))
        .collect()
}
