//! MongoDB's query language as rolegate speaks it, for embedders and tests. Input: BSON
//! documents and Extended JSON. Output: query matches, projections, MongoDB comparison order and
//! equality, Extended JSON conversions.
//!
//! The in-memory evaluator plays the database's part: [`run`] applies a [`QueryPlan`]'s store query
//! and store projection to stored documents, as MongoDB would return them; [`compile_query`] and
//! [`matches()`] test one query against one document; [`project`] applies a projection. [`find`]
//! runs a whole find (filter, [`SortSpec`], skip and limit, [`Projection`] with its positional
//! `$` from [`Positional`]) over documents. The rules
//! themselves are evaluated by the engines behind [`PreparedRequest`](crate::PreparedRequest), not
//! here.

mod find;
mod find_error;
mod positional;
mod projection;
mod sort;
mod update;

pub use find::{FindRequest, find};
pub use find_error::FindError;
pub use positional::{Positional, positional_index};
pub use projection::Projection;
pub use sort::{
    SortKey, SortSpec, Window, sort_order, sort_skip_limit, sort_value_cmp, sort_window,
};
pub(crate) use update::array_index;
pub use update::{
    ErrorKind, TargetPart, Update, UpdateContext, UpdateError, Updated, array_filters_from,
};

pub use crate::query::memory::{RunError, compile_query, matches, matches_with, project, run};
/// Checks a query a client wrote (a `find`'s `query`, a change stream's `filter`) before it is
/// matched: only the operators clients may use, no regular expression or JavaScript value, no
/// deeper nesting than `max_depth`.
pub use crate::query::plan::check_client_query;
pub use crate::value::compare::{bson_cmp, bson_equal};
pub use crate::value::ejson::{
    bson_from_json, bson_to_canonical_json, bson_to_json, document_from_json, document_to_json,
    type_name,
};

#[cfg(test)]
mod tests;

#[cfg(doc)]
use crate::QueryPlan;
