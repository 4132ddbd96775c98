//! Stage: filter planning, once per request, before any document is read (spec §4). Input: the
//! collection's filters and [`RuleFields`], the client's query and projection, the
//! [`RequestContext`]. Output: a [`QueryPlan`] — what to send to the database
//! ([`QueryPlan::store_query`], [`QueryPlan::store_projection`]) and, private to the plan, what
//! [`PreparedRequest::read_for`](crate::PreparedRequest::read_for) applies to each stored document
//! — or a [`PlanError`] (the request fails).
//!
//! **Order of a read** (a security decision, not App Services' order; issue 9 findings 1 and 5):
//! the filters' queries select stored documents; roles, document filters and field rules decide
//! on the *stored* document; the client query is evaluated on the *redacted* document (the role's
//! readable view: a field the role cannot read behaves as missing, so predicates on hidden fields
//! cannot probe their values — Stitch's documented behaviour); only then is the output
//! projection applied. App Services sent the client's query and projection to MongoDB, so a
//! client could probe hidden fields (`{"salary": {"$gt": 100000}}`) and choose the role by
//! projecting away what `apply_when` reads. The plan therefore keeps the client's query and the
//! merged projection private: the only way to apply them is `read_for`, which takes the stored
//! document.
//!
//! * **What the user may see** (the client query's view): the redacted document narrowed by
//!   the applied filters' projections. A filter projection hides fields as surely as a rule (an
//!   anonymizing filter that projects away `name` must not let `{"name": "sarah"}` select
//!   Sarah's vote), so the client query is evaluated on this view.
//! * **Store query** ([`QueryPlan::store_query`]): the client query's top-level clauses whose
//!   every field every role shows whole ([`RuleFields::always_shown`]) and the filters'
//!   projections keep whole (for such fields the stored value is the value in the view, so the
//!   database may evaluate them), then each applied filter's query, merged like the canonical
//!   query below. For the system user the whole client query. With pushdown (the default),
//!   the read residual joins it ([`QueryPlan::residual`], `query/residual/`): the documents
//!   some role could show.
//! * **Store projection** ([`QueryPlan::store_projection`]): none (`{}`) when the output
//!   projection is none or some rule reads the whole document; otherwise a projection that keeps
//!   every top-level field the rules read ([`RuleFields::read_by_rules`]), the client query
//!   reads and the filters' queries read, and what the output projection needs: inclusive (those
//!   fields plus the included ones, `_id` kept) when the output projection is inclusive, exclusive
//!   (the excluded paths that none of those fields covers; `_id` never excluded) when it is
//!   exclusive. With pushdown, the projection residual narrows it to the fields some role
//!   could show and the fields the rules and queries read.
//! * **Output projection** (private; [`QueryPlan::output_projection`]): the applied filters'
//!   projections and the client's, merged in the canonical form below, applied to the redacted
//!   document. Filter projections are part of the app's semantics and narrow the output exactly
//!   like the client's; they no longer hide fields from the rules.
//! * **Refused client input** (checked first, before any filter is evaluated): the query
//!   operators App Services refused to app users — `$where`, `$expr` (so `$function` in it),
//!   `$jsonSchema`, `$text`, `$regex` (and `$options`, and BSON regular-expression values, which
//!   MongoDB matches as `$regex`), geospatial (`$geoIntersects`, `$geoWithin`, `$near`,
//!   `$nearSphere` and their shape operators), bitwise (`$bitsAllClear`, `$bitsAllSet`,
//!   `$bitsAnyClear`, `$bitsAnySet`), `$function` and `$accumulator` anywhere — and any other
//!   `$` key except the allowed comparison, logical, array, `$exists`, `$type` and `$mod`
//!   operators ([`PlanError::OperatorNotAllowed`], code `operator-not-allowed`); JavaScript code
//!   values; queries nested deeper than `max_document_depth` ([`PlanError::ClientQueryTooDeep`]).
//!   `$regex` is refused although the in-memory evaluation on the redacted document could not
//!   probe with it: App Services refused it, and a client pattern is work the client chooses.
//!   Client projections accept only `0`/`1`/`true`/`false`/`null` values on plain paths:
//!   projection operators (`$slice`, `$elemMatch`, `$meta`, positional `$`) and expressions are
//!   refused ([`PlanError::InvalidProjection`]).
//!
//! Canonical forms (conformance cases compare them; [`QueryPlan::merged_query`],
//! [`QueryPlan::output_projection`]):
//!
//! * **Applied filters**: those whose `apply_when` evaluates to true with request-only bindings,
//!   in filter order. An `apply_when` that fails to evaluate fails the request
//!   ([`PlanError::Eval`], fail closed).
//! * **Query**: the client query, then each applied filter's `query` with its expansions
//!   substituted, in filter order; empty documents dropped; none left → `{}`; one → that document
//!   itself; more → `{"$and": [..]}` in that order (U16). A filter query whose expansion has no
//!   value fails the request ([`PlanError::MissingExpansion`]): sending the query with a hole in
//!   it (or without the clause) could widen it. Substituted values are sent as literal values,
//!   never as operators or patterns: a substituted document or regex as a field's value becomes
//!   `{"$eq": <value>}`, plain scalars are sent as they are, and where no literal form exists
//!   (a substituted regex in `$in`, a substituted query) the request fails (`filter_query`).
//!   This merged query is what App Services sent to MongoDB; rolegate keeps it as a description
//!   of the request and never sends it (the filters' queries go into the store query, built the
//!   same way).
//! * **Projection**: the applied filters' non-empty projections in filter order, then the
//!   client's. A value of `0`/`false` (any numeric type; also `null`) excludes, anything else
//!   includes. `_id` does not decide a projection's kind: `{"_id": 0}` alone excludes only `_id`
//!   and combines with either kind; `{"_id": 1}` alone is inclusive (only `_id`). Inclusive and
//!   exclusive projections together → [`PlanError::ProjectionConflict`]; one projection mixing
//!   both (other than `_id`) → [`PlanError::MixedProjection`].
//!   * exclusive → every excluded path (union), each `0`; a path below another excluded path is
//!     dropped (MongoDB rejects such path collisions, and the parent already removes it);
//!   * inclusive → the paths every inclusive projection includes (U17: never widen), each `1`,
//!     plus `"_id": 0` if any projection excluded `_id`. The intersection is path-aware: `a.b`
//!     is kept when another projection includes its parent `a` (same result as the literal key
//!     intersection when no path is a prefix of another); a path below another kept path is
//!     dropped. When nothing is in common the result is `{"_id": 1}` (documents keep only `_id`);
//!     if `_id` is excluded too, nothing could be returned and no MongoDB projection says so:
//!     [`PlanError::EmptyProjection`].
//!   * no projection → `{}`.
//!
//!   Inclusive keys come out in the order they first appear, `_id` first.

use std::collections::BTreeSet;

use bson::{Bson, Document};

use crate::context::RequestContext;
use crate::expr::{Expansion, Expr, Operand, Root};
use crate::outcome::Explanation;
use crate::query::memory::compile_query;
use crate::query::reads::{FieldSet, RuleFields};
use crate::query::residual::Residual;
use crate::rules::Filter;
use crate::value::compare::truthy;
use crate::value::ejson::type_name;
use crate::value::eval::{
    Bindings, EvalError, eval_expansion, eval_expr, eval_expr_explained, eval_operand,
};
use crate::value::quote::quote_document_within;

/// What to send to the database for one read request, and what
/// [`PreparedRequest::read_for`](crate::PreparedRequest::read_for) applies to each stored
/// document it returns. Made once per request by
/// [`PreparedRequest::query_plan`](crate::PreparedRequest::query_plan).
///
/// **The order of a read.** The applied filters' queries select stored documents; roles,
/// document filters and field rules decide on each *stored* document; the client's query is then
/// evaluated on the *redacted* document narrowed by the applied filters' projections (what the
/// user may see: a field the role hides behaves as missing, so `{"salary": {"$gt": 100000}}`
/// cannot probe a hidden salary); the merged output projection applies last. App Services sent
/// the client's query and projection to MongoDB, which let a client probe hidden fields and
/// choose its role by projecting away what `apply_when` reads. Here the client's query and the
/// output projection are private to the plan: they can only be applied through `read_for`,
/// after the rules have decided on the stored document.
///
/// * [`store_query`](Self::store_query): each applied filter's `query`, its expansions
///   substituted and sent as literal values (a substituted document or regex becomes
///   `{"$eq": value}`), together with the client query's top-level clauses on fields that every
///   role shows whole and no filter projection narrows (the database may evaluate those); for
///   the system user, the whole client query.
/// * [`store_projection`](Self::store_projection): `{}` (none) when there is no output
///   projection or some rule reads the whole document; otherwise a projection that keeps every
///   top-level field the rules, the queries and the output projection read.
/// * Refused client input, checked before any filter is evaluated: the query operators App
///   Services refused to app users (`$where`, `$expr`, `$jsonSchema`, `$text`, `$regex`,
///   geospatial and bitwise operators, `$function`, `$accumulator`) and any `$` key outside the
///   allowed comparison, logical, array, `$exists`, `$type` and `$mod` operators
///   ([`PlanError::OperatorNotAllowed`]); queries nested deeper than `max_document_depth`
///   ([`PlanError::ClientQueryTooDeep`]); projection operators (`$slice`, `$elemMatch`,
///   `$meta`, positional `$`) ([`PlanError::InvalidProjection`]).
///
/// [`merged_query`](Self::merged_query) and [`output_projection`](Self::output_projection) are
/// App Services' canonical merged forms, which conformance cases compare: the client query and
/// then each applied filter's query, joined with `$and`; the filters' projections and then the
/// client's, inclusive ones intersected (never wider than any of them), exclusive ones united,
/// and both kinds together an error ([`PlanError::ProjectionConflict`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryPlan {
    /// Names of the filters that applied, in filter order.
    pub applied: Vec<String>,
    /// The query to send to the database: the applied filters' queries, the client clauses
    /// that cannot depend on hidden fields and, with pushdown, the read residual
    /// ([`QueryPlan::residual`]).
    pub store_query: Document,
    /// The projection to send to the database (`{}`: none); it keeps every field the rules, the
    /// queries and the output projection read.
    pub store_projection: Document,
    /// The canonical merged query (client query, then filter queries).
    merged_query: Document,
    /// The canonical merged projection (filters', then the client's).
    output_projection: Document,
    /// The applied filters' projections alone: with the redacted document, what the user may
    /// see, on which the client query is evaluated.
    view_projection: Document,
    /// The applied filters' queries, parsed, checked again on each stored document (`None`: no
    /// filter query, or one the in-memory evaluator cannot run — the database applies it).
    filter_check: Option<Expr>,
    /// The parsed client query, checked on the redacted document.
    client_check: Option<Expr>,
    /// Which documents the rules could show ([`QueryPlan::residual`]).
    residual: Option<Residual>,
    /// The residual was added to [`QueryPlan::store_query`].
    pushed: bool,
    /// The request that made the plan (set by
    /// [`PreparedRequest::query_plan`](crate::PreparedRequest::query_plan)); `read_for` refuses a
    /// plan made for another collection or request.
    issuer: Option<PlanIssuer>,
    /// **Detailed view** (empty unless explanations were asked for): why each filter applied or
    /// not — its `apply_when` result, the values it compared when false, and for an applied
    /// filter the query (expansions substituted) and projection it adds, each at the filter's
    /// place. It may quote request values; for operators only.
    pub explanation: Explanation,
}

/// Identifies the collection rules and request context a plan was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlanIssuer {
    pub(crate) fields: usize,
    pub(crate) filters: (usize, usize),
    pub(crate) context: usize,
}

impl QueryPlan {
    /// The client query and the applied filters' queries in App Services' canonical merged form
    /// (U16): a description of what the request selects, for display and conformance
    /// cases. **Never send it to a database**: its client part would be evaluated on fields the
    /// user's role hides. Send [`QueryPlan::store_query`] instead.
    pub fn merged_query(&self) -> &Document {
        &self.merged_query
    }

    /// The merged projection of the applied filters and the client (App Services' canonical form),
    /// which [`PreparedRequest::read_for`](crate::PreparedRequest::read_for) applies to the
    /// redacted document.
    pub fn output_projection(&self) -> &Document {
        &self.output_projection
    }

    /// The parsed filter queries, checked on the stored document.
    pub(crate) fn filter_check(&self) -> Option<&Expr> {
        self.filter_check.as_ref()
    }

    /// The parsed client query, checked on the redacted document narrowed by
    /// [`QueryPlan::view_projection`].
    pub(crate) fn client_check(&self) -> Option<&Expr> {
        self.client_check.as_ref()
    }

    /// The applied filters' projections, merged (`{}`: none).
    pub(crate) fn view_projection(&self) -> &Document {
        &self.view_projection
    }

    /// The read residual of the request: which documents any role could make visible
    /// (`None` for a plan not made by
    /// [`PreparedRequest::query_plan`](crate::PreparedRequest::query_plan)).
    pub fn residual(&self) -> Option<&Residual> {
        self.residual.as_ref()
    }

    /// Whether the residual is part of [`QueryPlan::store_query`] (pushdown on).
    pub fn residual_pushed(&self) -> bool {
        self.pushed
    }

    /// True when pushdown is on and the residual is *nothing*: no document can be visible, so
    /// the store need not be read at all.
    pub fn reads_nothing(&self) -> bool {
        self.pushed && matches!(self.residual, Some(Residual::Nothing))
    }

    /// Records the request's residual, and with `pushdown` adds its query to the store query.
    pub(crate) fn set_residual(&mut self, residual: Residual, pushdown: bool) {
        if pushdown && let Some(q) = residual.query() {
            let mut store = std::mem::take(&mut self.store_query);
            let only_and = store.len() == 1;
            self.store_query = match store.get_array_mut("$and") {
                // `{$and: [a, b]}` and the residual: `{$and: [a, b, residual]}`.
                Ok(items) if only_and => {
                    items.push(Bson::Document(q.clone()));
                    store
                }
                _ => merge_queries(vec![store, q.clone()]),
            };
        }
        self.pushed = pushdown;
        self.residual = Some(residual);
    }

    /// The projection residual: the store projection keeps only `readable` fields (those some
    /// live role may show), `_id`, what the rules read (`by_rules`) and what the queries read
    /// (the filters' are checked again on each stored document). An inclusive store projection
    /// is intersected with them; none, or an exclusive one (its exclusions are applied to the
    /// output anyway), becomes the inclusive projection of them. Nothing changes when the rules
    /// read the whole document.
    pub(crate) fn narrow_store_projection(
        &mut self,
        readable: &BTreeSet<String>,
        by_rules: &FieldSet,
    ) {
        let FieldSet::Only(by_rules) = by_rules else {
            return;
        };
        let FieldSet::Only(by_queries) = query_fields(&self.merged_query) else {
            return;
        };
        let mut keep: BTreeSet<&str> = readable.iter().map(String::as_str).collect();
        keep.extend(by_rules.iter().map(String::as_str));
        keep.extend(by_queries.iter().map(String::as_str));
        keep.insert("_id");
        let inclusive = !self.store_projection.is_empty()
            && self
                .store_projection
                .iter()
                .all(|(k, v)| k == "_id" || truthy(v));
        let mut out = Document::new();
        if inclusive {
            for (k, v) in &self.store_projection {
                if keep.contains(top(k)) {
                    out.insert(k.clone(), v.clone());
                }
            }
        } else {
            for name in keep {
                out.insert(name, Bson::Int32(1));
            }
        }
        if out.is_empty() {
            out.insert("_id", Bson::Int32(1));
        }
        self.store_projection = out;
    }

    /// The request that made the plan.
    pub(crate) fn issuer(&self) -> Option<PlanIssuer> {
        self.issuer
    }

    pub(crate) fn set_issuer(&mut self, issuer: PlanIssuer) {
        self.issuer = Some(issuer);
    }
}

/// Planning failed; the request fails.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// A filter's `apply_when` or query could not be evaluated.
    #[error("filter `{filter}`: {error}")]
    Eval {
        /// The filter's `name`.
        filter: String,
        /// Why the evaluation failed.
        error: EvalError,
    },
    /// A filter's query uses an expansion that has no value in this request.
    #[error("filter `{filter}`: query expansion `{expansion}` has no value")]
    MissingExpansion {
        /// The filter's `name`.
        filter: String,
        /// The expansion as written in the query (`%%user.custom_data.orgId`).
        expansion: String,
    },
    /// A filter's query did not evaluate to a document.
    #[error("filter `{filter}`: query must be a document, got {found}")]
    QueryNotDocument {
        /// The filter's `name`.
        filter: String,
        /// The BSON type the query evaluated to (`string`, `array`, ...).
        found: String,
    },
    /// Inclusive and exclusive projections were combined: App Services fails such a query, and so
    /// does rolegate.
    #[error(
        "projection conflict: {inclusive} is inclusive but {exclusive} is exclusive; all projections must be of one kind"
    )]
    ProjectionConflict {
        /// Which projection is inclusive: ``filter `name` `` or `the client projection`.
        inclusive: String,
        /// Which projection is exclusive, named the same way.
        exclusive: String,
    },
    /// One projection both includes and excludes fields (other than `_id`).
    #[error("{origin} mixes included and excluded fields")]
    MixedProjection {
        /// Which projection: ``filter `name` `` or `the client projection`.
        origin: String,
    },
    /// The inclusive projections have no field in common and `_id` is excluded.
    #[error(
        "the projections have no field in common and `_id` is excluded, so nothing could be returned"
    )]
    EmptyProjection,
    /// The client query uses an operator (or a value) that clients may not use.
    #[error("the client query uses `{operator}`, which is not allowed: {reason}")]
    OperatorNotAllowed {
        /// The operator as written (`$where`, `$regex`, ...).
        operator: String,
        /// Why clients may not use it.
        reason: &'static str,
    },
    /// The client query is nested deeper than `max_document_depth`.
    #[error("the client query is nested deeper than {max} levels (limits.max_document_depth)")]
    ClientQueryTooDeep {
        /// The limit: the request's `max_document_depth`.
        max: usize,
    },
    /// The client query is not a valid MongoDB query.
    #[error("the client query is not a valid query: {message}")]
    InvalidClientQuery {
        /// What is wrong with it, and where.
        message: String,
    },
    /// The client projection uses a key or a value rolegate does not support.
    #[error("the client projection `{key}` is not allowed: {reason}")]
    InvalidProjection {
        /// The projection key at fault.
        key: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The request, the client query or the client projection is nested too deeply
    /// ([`Limits::max_document_depth`](crate::limits::Limits::max_document_depth)).
    #[error("{0}")]
    Limit(crate::limits::LimitExceeded),
}

impl PlanError {
    /// A stable code for the error, safe to show a client.
    pub fn code(&self) -> &'static str {
        match self {
            PlanError::Eval { .. }
            | PlanError::MissingExpansion { .. }
            | PlanError::QueryNotDocument { .. } => "filter-failed",
            PlanError::ProjectionConflict { .. }
            | PlanError::MixedProjection { .. }
            | PlanError::EmptyProjection => "projection-conflict",
            PlanError::OperatorNotAllowed { .. } => "operator-not-allowed",
            PlanError::ClientQueryTooDeep { .. } | PlanError::Limit(_) => "limit-exceeded",
            PlanError::InvalidClientQuery { .. } => "invalid-query",
            PlanError::InvalidProjection { .. } => "invalid-projection",
        }
    }
}

/// The query operators a client may use (App Services' allowed list: comparison, logical,
/// array, `$exists`, `$type`, `$mod`).
const ALLOWED_OPERATORS: &[&str] = &[
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$and",
    "$or",
    "$nor",
    "$not",
    "$exists",
    "$type",
    "$mod",
    "$all",
    "$elemMatch",
    "$size",
];

/// Why an operator is refused (module docs).
fn refusal(operator: &str) -> &'static str {
    match operator {
        "$where" | "$function" | "$accumulator" => {
            "server-side JavaScript is never run for clients (App Services refused it to app users)"
        }
        "$expr" => {
            "aggregation expressions in queries are refused to clients (App Services refused `$expr` to app users)"
        }
        "$jsonSchema" => "App Services refused `$jsonSchema` to app users",
        "$text" => "App Services refused `$text` to app users",
        "$regex" | "$options" => "App Services refused `$regex` to app users",
        "$geoIntersects" | "$geoWithin" | "$near" | "$nearSphere" | "$geometry" | "$box"
        | "$center" | "$centerSphere" | "$polygon" | "$maxDistance" | "$minDistance" => {
            "geospatial operators are refused to clients (as App Services refused them to app users)"
        }
        "$bitsAllClear" | "$bitsAllSet" | "$bitsAnyClear" | "$bitsAnySet" => {
            "bitwise operators are refused to clients (as App Services refused them to app users)"
        }
        _ => {
            "not one of the query operators clients may use (comparison, logical, array, `$exists`, `$type`, `$mod`)"
        }
    }
}

/// Checks a client query before anything else looks at it: every `$` key at every level must be
/// an allowed operator, no value may be a regular expression or JavaScript code, and the query
/// may not be nested deeper than `max_depth` levels.
pub fn check_client_query(query: &Document, max_depth: usize) -> Result<(), PlanError> {
    let refuse = |operator: &str| PlanError::OperatorNotAllowed {
        operator: operator.to_string(),
        reason: refusal(operator),
    };
    let too_deep = |depth: usize| {
        if depth > max_depth {
            Err(PlanError::ClientQueryTooDeep { max: max_depth })
        } else {
            Ok(())
        }
    };
    // Explicit stacks: the depth guard bounds them, and hostile nesting cannot overflow.
    let mut docs: Vec<(&Document, usize)> = vec![(query, 1)];
    let mut values: Vec<(&Bson, usize)> = Vec::new();
    loop {
        while let Some((value, depth)) = values.pop() {
            match value {
                Bson::Document(d) => docs.push((d, depth)),
                Bson::Array(items) => {
                    too_deep(depth)?;
                    values.extend(items.iter().map(|i| (i, depth + 1)));
                }
                Bson::RegularExpression(_) => return Err(refuse("$regex")),
                Bson::JavaScriptCode(_) | Bson::JavaScriptCodeWithScope(_) => {
                    return Err(refuse("$where"));
                }
                _ => {}
            }
        }
        let Some((doc, depth)) = docs.pop() else {
            return Ok(());
        };
        too_deep(depth)?;
        for (key, value) in doc {
            if key.starts_with('$') && !ALLOWED_OPERATORS.contains(&key.as_str()) {
                return Err(refuse(key));
            }
            values.push((value, depth + 1));
        }
    }
}

/// Checks a client projection: plain paths (no `$` segment), values `0`/`1`/`true`/`false`/`null`.
pub fn check_client_projection(projection: &Document) -> Result<(), PlanError> {
    for (key, value) in projection {
        if key.is_empty()
            || key
                .split('.')
                .any(|seg| seg.is_empty() || seg.starts_with('$'))
        {
            return Err(PlanError::InvalidProjection {
                key: key.clone(),
                reason: "projection operators and positional paths are not supported; use plain field paths",
            });
        }
        let plain = matches!(
            value,
            Bson::Int32(_)
                | Bson::Int64(_)
                | Bson::Double(_)
                | Bson::Decimal128(_)
                | Bson::Boolean(_)
                | Bson::Null
        );
        if !plain {
            return Err(PlanError::InvalidProjection {
                key: key.clone(),
                reason: "projection values must be 0, 1, true, false or null (projection operators and expressions are not supported)",
            });
        }
    }
    Ok(())
}

/// The top-level fields a query reads; [`FieldSet::All`] when a top-level operator other than
/// `$and`/`$or`/`$nor` could read anything (filter queries are the app's and not restricted).
pub fn query_fields(query: &Document) -> FieldSet {
    let mut names = BTreeSet::new();
    let mut pending = vec![query];
    while let Some(doc) = pending.pop() {
        for (key, value) in doc {
            match key.as_str() {
                "$and" | "$or" | "$nor" => match value {
                    Bson::Array(items) => {
                        for item in items {
                            match item {
                                Bson::Document(d) => pending.push(d),
                                _ => return FieldSet::All,
                            }
                        }
                    }
                    _ => return FieldSet::All,
                },
                "$comment" => {}
                k if k.starts_with('$') => return FieldSet::All,
                k => {
                    names.insert(k.split('.').next().unwrap_or(k).to_string());
                }
            }
        }
    }
    FieldSet::Only(names)
}

/// Whether the filters' merged projection `view` keeps the top-level field `name` whole.
fn kept_whole(name: &str, view: &Document) -> bool {
    if view.is_empty() {
        return true;
    }
    let inclusive =
        view.iter().any(|(k, v)| k != "_id" && truthy(v)) || view.get("_id").is_some_and(truthy);
    if name == "_id" {
        return view.get("_id").is_none_or(truthy);
    }
    if inclusive {
        view.iter().any(|(k, v)| k == name && truthy(v))
    } else {
        !view.keys().any(|k| top(k) == name)
    }
}

/// Whether the store may evaluate the client clause `key: value`: every field it reads is shown
/// whole by every role, and kept whole by the filters' projections.
fn pushable(key: &str, value: &Bson, shown: &FieldSet, view: &Document) -> bool {
    let mut clause = Document::new();
    clause.insert(key, value.clone());
    match query_fields(&clause) {
        FieldSet::All => false,
        FieldSet::Only(names) => names
            .iter()
            .all(|n| shown.contains(n) && kept_whole(n, view)),
    }
}

/// Who a plan is for.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The filters to consider (none for the system user).
    pub filters: &'a [Filter],
    /// What the collection's roles read and always show.
    pub fields: &'a RuleFields,
    /// The depth limit of client queries (`limits.max_document_depth`).
    pub max_depth: usize,
}

/// Decides which filters apply to a request and builds the plan (module docs): the client query
/// and projection are checked first, then the filters' `apply_when`s are evaluated.
#[cfg(test)]
pub fn plan(
    input: PlanInput<'_>,
    client_query: Option<&Document>,
    client_projection: Option<&Document>,
    request: &RequestContext,
) -> Result<QueryPlan, PlanError> {
    plan_explained(input, client_query, client_projection, request, false)
}

/// How many characters of a filter's query or projection an explanation quotes.
const MAX_QUOTED_QUERY: usize = 240;

/// The plan (see `plan`), with [`QueryPlan::explanation`] recorded when `explain` is true (the plan is the
/// same either way).
pub fn plan_explained(
    input: PlanInput<'_>,
    client_query: Option<&Document>,
    client_projection: Option<&Document>,
    request: &RequestContext,
    explain: bool,
) -> Result<QueryPlan, PlanError> {
    let mut explanation = Explanation::default();
    let client_query = client_query.filter(|q| !q.is_empty());
    let client_projection = client_projection.filter(|p| !p.is_empty());
    if let Some(q) = client_query {
        check_client_query(q, input.max_depth)?;
    }
    if let Some(p) = client_projection {
        check_client_projection(p)?;
    }
    let client_check = client_query
        .map(|q| {
            compile_query(q).map_err(|e| PlanError::InvalidClientQuery {
                message: e.to_string(),
            })
        })
        .transpose()?;
    let bindings = Bindings::request_only(request);
    let mut applied = Vec::new();
    let mut filter_queries: Vec<Document> = Vec::new();
    let mut projections: Vec<(String, &Document)> = Vec::new();
    if explain && input.filters.is_empty() {
        explanation.push(None, "no filters govern this collection");
    }
    for filter in input.filters {
        let (result, compared) = if explain {
            eval_expr_explained(&filter.apply_when.expr, &bindings)
        } else {
            (eval_expr(&filter.apply_when.expr, &bindings), Vec::new())
        };
        let applies = result.map_err(|error| PlanError::Eval {
            filter: filter.name.clone(),
            error,
        })?;
        request.observe(&filter.apply_when.place, applies);
        let name = &filter.name;
        if !applies {
            if explain {
                let place = &filter.apply_when.place;
                explanation.push(
                    Some(place),
                    format!("filter `{name}` does not apply: its apply_when is false"),
                );
                for line in compared {
                    explanation.push(Some(place), format!("values compared: {line}"));
                }
            }
            continue;
        }
        applied.push(filter.name.clone());
        let query = filter_query(filter, &bindings)?;
        if explain {
            explanation.push(
                Some(&filter.apply_when.place),
                format!("filter `{name}` applies: its apply_when is true"),
            );
            let quoted = |d: &Document| quote_document_within(d, MAX_QUOTED_QUERY);
            explanation.push(
                Some(&filter.place.key("query")),
                match query.is_empty() {
                    true => format!("filter `{name}` adds no query"),
                    false => format!("filter `{name}` adds the query {}", quoted(&query)),
                },
            );
            explanation.push(
                Some(&filter.place.key("projection")),
                match filter.projection.is_empty() {
                    true => format!("filter `{name}` adds no projection"),
                    false => format!(
                        "filter `{name}` adds the projection {}",
                        quoted(&filter.projection)
                    ),
                },
            );
        }
        if !query.is_empty() {
            filter_queries.push(query);
        }
        if !filter.projection.is_empty() {
            projections.push((format!("filter `{}`", filter.name), &filter.projection));
        }
    }
    let view_projection = merge_projections(&projections)?;
    if let Some(p) = client_projection {
        projections.push(("the client projection".to_string(), p));
    }
    let output_projection = merge_projections(&projections)?;

    let filters_merged = merge_queries(filter_queries.clone());
    // The filters' queries are the app's: when the in-memory evaluator cannot run one, the
    // database alone applies it.
    let filter_check = (!filters_merged.is_empty())
        .then(|| compile_query(&filters_merged).ok())
        .flatten();

    let mut pushed = Document::new();
    if let Some(q) = client_query {
        for (key, value) in q {
            if pushable(key, value, &input.fields.always_shown, &view_projection) {
                pushed.insert(key.clone(), value.clone());
            }
        }
    }
    let mut store_queries = vec![pushed];
    store_queries.extend(filter_queries.iter().cloned());
    let store_query = merge_queries(store_queries);

    let mut merged = Vec::new();
    if let Some(q) = client_query {
        merged.push(q.clone());
    }
    merged.extend(filter_queries);
    let merged_query = merge_queries(merged);

    let mut needed = input.fields.read_by_rules.clone();
    for fields in [
        client_query.map(query_fields),
        Some(query_fields(&filters_merged)),
    ]
    .into_iter()
    .flatten()
    {
        needed = union(needed, fields);
    }
    let store_projection = store_projection(&output_projection, &needed);
    Ok(QueryPlan {
        applied,
        store_query,
        store_projection,
        merged_query,
        output_projection,
        view_projection,
        filter_check,
        client_check,
        residual: None,
        pushed: false,
        issuer: None,
        explanation,
    })
}

fn union(a: FieldSet, b: FieldSet) -> FieldSet {
    match (a, b) {
        (FieldSet::Only(mut a), FieldSet::Only(b)) => {
            a.extend(b);
            FieldSet::Only(a)
        }
        _ => FieldSet::All,
    }
}

fn top(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

/// The projection to send to the database (module docs): the output projection widened to the
/// fields in `needed`.
fn store_projection(output: &Document, needed: &FieldSet) -> Document {
    let FieldSet::Only(needed) = needed else {
        return Document::new();
    };
    let inclusive = output.iter().any(|(k, v)| k != "_id" && truthy(v))
        || (output.len() == 1 && output.get("_id").is_some_and(truthy));
    let mut out = Document::new();
    if inclusive {
        let mut names: Vec<&str> = needed.iter().map(String::as_str).collect();
        for (k, v) in output {
            if k != "_id" && truthy(v) {
                names.push(top(k));
            }
        }
        for name in names {
            if name != "_id" && !out.contains_key(name) {
                out.insert(name, Bson::Int32(1));
            }
        }
        if out.is_empty() {
            // Only `_id` is needed; an inclusive projection of `_id` says so.
            out.insert("_id", Bson::Int32(1));
        }
    } else {
        for (k, v) in output {
            if k != "_id" && !truthy(v) && !needed.contains(top(k)) {
                out.insert(k.clone(), Bson::Int32(0));
            }
        }
    }
    out
}

/// The filter's query with its expansions substituted — as literal values (issue 9, finding 4).
///
/// A substituted value (an expansion, a `%function` result, a conversion) must reach the
/// database as the value it is, never as query syntax: custom data and user data are often
/// editable by the user, so `{"team": "%%user.custom_data.team"}` with a team of `{"$ne": "x"}`
/// would otherwise select every team, and a regex would match any string. So, position by
/// position (the rule author's keys decide what a position is; substituted values never do):
///
/// * **the value of a field** (`{"team": <value>}`): a substituted document or regex is sent as
///   `{"$eq": <value>}` (MongoDB compares `$eq`'s argument as a value, documents and regexes
///   included); a substituted `null` as `{"$type": "null"}` (MongoDB's `null` also matches a
///   missing field, a substituted one must not: `value/eval.rs`, finding 7); any other
///   substituted value is sent as is, so plain scalar substitutions keep their canonical form
///   (`{"team": "red"}`). Inside a document or array the rule wrote as a
///   value (exact equality), substituted members are values already;
/// * **arguments of value operators** (`$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$exists`,
///   `$size`, `$type`, `$mod`, …): sent as is, MongoDB reads them as values — except a
///   substituted `null` under `$eq`, `$gte` or `$lte`, which MongoDB would match against
///   missing fields: the request fails (`$ne: null` already excludes missing fields, as the
///   rule engines do); so does a substituted regex under `$ne`, `$gt`, `$gte`, `$lt`, `$lte`
///   and a substituted `undefined` under any of them, which MongoDB refuses;
/// * **`$in`, `$nin`, `$all`**: MongoDB reads a regex element as a pattern (and an `$all`
///   element `{"$elemMatch": …}` as a query), and no encoding makes it literal there: a
///   substituted regex element (or `$`-keyed document element, which MongoDB reads as query
///   syntax in `$all` and refuses in `$in`/`$nin`, or a `null` element of `$in`/`$all`, which
///   would match missing fields, or `undefined`) fails the request. An `$all` element
///   the rule wrote as `{"$elemMatch": …}` is query syntax: its members are judged as operator
///   arguments (red team R7);
/// * **`$regex` / `$options`**: the rule wrote `$regex`, so a substituted pattern is its choice;
/// * **query positions** (the whole query, the members of `$and`/`$or`/`$nor`, the argument of
///   `$not` and `$elemMatch`, `$where` and other top-level operators): a query has no literal
///   form, so a substituted value there fails the request (inside documents the rule wrote
///   there, each position is judged as above). An `$elemMatch` argument is an operator
///   document only when every key is a value operator; one with a field name or a query-level
///   operator (`$and`, `$or`, `$nor`, ...) is a query on the element, whose fields' values are
///   judged as above (red team R2: copying its members as written let a substituted
///   `{"$ne": ..}` through). `$and`/`$or`/`$nor` inside an operator document are query syntax;
/// * **`$expr`**: a substituted value is wrapped as `{"$literal": <value>}` (an aggregation
///   expression would read a string `"$field"` as a field path).
///
/// Failures are [`PlanError::Eval`] with an [`EvalError::BadArgument`] that names the
/// expansion and the position. A missing expansion fails as before
/// ([`PlanError::MissingExpansion`]).
fn filter_query(filter: &Filter, bindings: &Bindings<'_>) -> Result<Document, PlanError> {
    let subst = Substitution { filter, bindings };
    match &filter.query {
        Operand::Literal(Bson::Document(d)) => Ok(d.clone()),
        Operand::Document(members) => subst.query_document(members, ""),
        Operand::Literal(other) => Err(PlanError::QueryNotDocument {
            filter: filter.name.clone(),
            found: type_name(other).to_string(),
        }),
        other => match subst.leaf(other)? {
            Bson::Document(_) => Err(subst.not_literal(other, "the query", "a query")),
            v => Err(PlanError::QueryNotDocument {
                filter: filter.name.clone(),
                found: type_name(&v).to_string(),
            }),
        },
    }
}

/// Operators that MongoDB reads only at the level of a query document (never as an operator on a
/// value): an `$elemMatch` argument holding one is a query on the element.
const QUERY_LEVEL: &[&str] = &[
    "$and",
    "$or",
    "$nor",
    "$expr",
    "$where",
    "$text",
    "$comment",
    "$jsonSchema",
];

/// Builds one filter's query with its substituted values as literals ([`filter_query`]).
struct Substitution<'f, 'b> {
    filter: &'f Filter,
    bindings: &'f Bindings<'b>,
}

/// A value the rule did not write: an expansion, a function result, a conversion.
fn substituted(o: &Operand) -> bool {
    !matches!(
        o,
        Operand::Literal(_) | Operand::Array(_) | Operand::Document(_)
    )
}

fn dotted(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Substitution<'_, '_> {
    /// The value of a substituted operand; a missing one fails the request.
    fn leaf(&self, o: &Operand) -> Result<Bson, PlanError> {
        let value = eval_operand(o, self.bindings).map_err(|error| PlanError::Eval {
            filter: self.filter.name.clone(),
            error,
        })?;
        value.ok_or_else(|| {
            let mut missing = None;
            o.visit_expansions(&mut |e| {
                if missing.is_none() && eval_expansion(e, self.bindings).is_none() {
                    missing = Some(expansion_text(e));
                }
            });
            PlanError::MissingExpansion {
                filter: self.filter.name.clone(),
                expansion: missing.unwrap_or_else(|| "?".to_string()),
            }
        })
    }

    /// The request fails: the substituted `o` at `at` would be read as `what`.
    fn not_literal(&self, o: &Operand, at: &str, what: &str) -> PlanError {
        let mut source = None;
        o.visit_expansions(&mut |e| {
            if source.is_none() {
                source = Some(expansion_text(e));
            }
        });
        let source = match (source, o) {
            (Some(s), _) => format!("`{s}`"),
            (None, Operand::Function { name, .. }) => format!("the result of `{name}`"),
            (None, _) => "a substituted value".to_string(),
        };
        let at = if at.is_empty() { "the query" } else { at };
        PlanError::Eval {
            filter: self.filter.name.clone(),
            error: EvalError::BadArgument {
                operator: "filter query",
                message: format!(
                    "{source} at `{at}` would be read as {what}, which has no literal form there; \
                     substituted values are sent only as literal values"
                ),
            },
        }
    }

    /// A value the rule wrote (or the inside of one): substituted members are values already.
    fn literal(&self, o: &Operand) -> Result<Bson, PlanError> {
        self.rebuild(o, &|this, leaf| this.leaf(leaf))
    }

    /// `o` as written, its substituted parts (expansions, function results, conversions) given
    /// by `substituted`: the walk that [`Substitution::literal`] and
    /// [`Substitution::aggregation`] share.
    fn rebuild(
        &self,
        o: &Operand,
        substituted: &dyn Fn(&Self, &Operand) -> Result<Bson, PlanError>,
    ) -> Result<Bson, PlanError> {
        Ok(match o {
            Operand::Literal(v) => v.clone(),
            Operand::Array(items) => Bson::Array(
                items
                    .iter()
                    .map(|i| self.rebuild(i, substituted))
                    .collect::<Result<_, _>>()?,
            ),
            Operand::Document(members) => {
                let mut d = Document::new();
                for (k, v) in members {
                    d.insert(k.clone(), self.rebuild(v, substituted)?);
                }
                Bson::Document(d)
            }
            leaf => substituted(self, leaf)?,
        })
    }

    /// A query document the rule wrote, at `path`.
    fn query_document(
        &self,
        members: &[(String, Operand)],
        path: &str,
    ) -> Result<Document, PlanError> {
        let mut out = Document::new();
        for (k, v) in members {
            let at = dotted(path, k);
            let value = match k.as_str() {
                "$and" | "$or" | "$nor" => self.query_list(v, &at)?,
                "$expr" => self.aggregation(v)?,
                "$comment" => self.literal(v)?,
                key if key.starts_with('$') => self.query_operand(v, &at)?,
                _ => self.field_value(v, &at)?,
            };
            out.insert(k.clone(), value);
        }
        Ok(out)
    }

    /// A position that holds a query (or query syntax the rule wrote): no substitution there.
    fn query_operand(&self, o: &Operand, at: &str) -> Result<Bson, PlanError> {
        match o {
            Operand::Literal(v) => Ok(v.clone()),
            Operand::Document(members) => Ok(Bson::Document(self.query_document(members, at)?)),
            Operand::Array(items) => Ok(Bson::Array(
                items
                    .iter()
                    .map(|i| self.query_operand(i, at))
                    .collect::<Result<_, _>>()?,
            )),
            leaf => {
                // Evaluate first: a missing expansion fails as such.
                self.leaf(leaf)?;
                Err(self.not_literal(leaf, at, "query syntax"))
            }
        }
    }

    /// The list of `$and`/`$or`/`$nor`.
    fn query_list(&self, o: &Operand, at: &str) -> Result<Bson, PlanError> {
        self.query_operand(o, at)
    }

    /// The value of field `at` (`{"team": <value>}`).
    fn field_value(&self, o: &Operand, at: &str) -> Result<Bson, PlanError> {
        match o {
            Operand::Document(members) if members.iter().any(|(k, _)| k.starts_with('$')) => {
                let mut out = Document::new();
                for (op, arg) in members {
                    out.insert(op.clone(), self.operator_argument(op, arg, at)?);
                }
                Ok(Bson::Document(out))
            }
            Operand::Literal(_) | Operand::Document(_) | Operand::Array(_) => self.literal(o),
            leaf => Ok(match self.leaf(leaf)? {
                v @ (Bson::Document(_) | Bson::RegularExpression(_)) => {
                    let mut eq = Document::new();
                    eq.insert("$eq", v);
                    Bson::Document(eq)
                }
                // MongoDB's `null` also matches missing fields; a substituted null matches only
                // a present one (`value/eval.rs`, issue 9 finding 7).
                Bson::Null => {
                    let mut present_null = Document::new();
                    present_null.insert("$type", "null");
                    Bson::Document(present_null)
                }
                v => v,
            }),
        }
    }

    /// The argument of operator `op` on field `at`.
    fn operator_argument(&self, op: &str, arg: &Operand, at: &str) -> Result<Bson, PlanError> {
        let at = dotted(at, op);
        match op {
            "$in" | "$nin" | "$all" => self.list_argument(op, arg, &at),
            "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" if substituted(arg) => {
                match self.leaf(arg)? {
                    Bson::Null if matches!(op, "$eq" | "$gte" | "$lte") => {
                        Err(self.not_literal(arg, &at, "a null that matches missing fields"))
                    }
                    // MongoDB refuses a regex operand of `$ne` and of the ordering comparisons,
                    // and `undefined` as any operand (decision M6): no literal form exists.
                    Bson::RegularExpression(_) if op != "$eq" => {
                        Err(self.not_literal(arg, &at, "a pattern, which MongoDB refuses there"))
                    }
                    Bson::Undefined => {
                        Err(self.not_literal(arg, &at, "`undefined`, which MongoDB refuses there"))
                    }
                    v => Ok(v),
                }
            }
            // Query syntax, wherever it sits (MongoDB reads these only as query positions).
            "$and" | "$or" | "$nor" => self.query_operand(arg, &at),
            "$not" | "$elemMatch" => match arg {
                Operand::Document(members) => {
                    // An `$elemMatch` argument is an operator document only when every key is
                    // a value operator; with a field name or a query-level operator (`$and`,
                    // `$or`, `$nor`, `$expr`, ...) MongoDB reads it as a query on the element,
                    // where a substituted member is the value of a field (red team R2).
                    let operators = !members.is_empty()
                        && members
                            .iter()
                            .all(|(k, _)| k.starts_with('$') && !QUERY_LEVEL.contains(&k.as_str()));
                    if op == "$elemMatch" && !operators {
                        return Ok(Bson::Document(self.query_document(members, &at)?));
                    }
                    let mut out = Document::new();
                    for (inner, a) in members {
                        out.insert(inner.clone(), self.operator_argument(inner, a, &at)?);
                    }
                    Ok(Bson::Document(out))
                }
                other => self.query_operand(other, &at),
            },
            _ => self.literal(arg),
        }
    }

    /// `$in`/`$nin`/`$all`: the elements a substitution put there must read as values.
    fn list_argument(&self, op: &str, arg: &Operand, at: &str) -> Result<Bson, PlanError> {
        let hostile = |v: &Bson| match v {
            Bson::RegularExpression(_) => Some("a pattern"),
            Bson::Null if op != "$nin" => Some("a null that matches missing fields"),
            Bson::Document(d)
                if op == "$all" && d.keys().next().is_some_and(|k| k.starts_with('$')) =>
            {
                Some("query syntax")
            }
            // MongoDB refuses operator objects and `undefined` inside `$in`/`$nin`.
            Bson::Document(d)
                if d.keys().next().is_some_and(|k| {
                    k.starts_with('$') && !matches!(k.as_str(), "$ref" | "$id" | "$db")
                }) =>
            {
                Some("an operator object, which MongoDB refuses there")
            }
            Bson::Undefined => Some("`undefined`, which MongoDB refuses there"),
            _ => None,
        };
        match arg {
            Operand::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    // MongoDB reads an `$all` element whose first key is an operator
                    // (`{"$elemMatch": …}`) as a query: its members are judged as operator
                    // arguments, never copied as written (red team R7).
                    if op == "$all"
                        && let Operand::Document(members) = item
                        && members.first().is_some_and(|(k, _)| k.starts_with('$'))
                    {
                        let mut element = Document::new();
                        for (inner, a) in members {
                            element.insert(inner.clone(), self.operator_argument(inner, a, at)?);
                        }
                        out.push(Bson::Document(element));
                        continue;
                    }
                    let v = self.literal(item)?;
                    if substituted(item)
                        && let Some(what) = hostile(&v)
                    {
                        return Err(self.not_literal(item, at, what));
                    }
                    out.push(v);
                }
                Ok(Bson::Array(out))
            }
            Operand::Literal(v) => Ok(v.clone()),
            Operand::Document(_) => self.literal(arg),
            leaf => {
                let v = self.leaf(leaf)?;
                if let Bson::Array(items) = &v
                    && let Some(what) = items.iter().find_map(hostile)
                {
                    return Err(self.not_literal(leaf, at, what));
                }
                Ok(v)
            }
        }
    }

    /// An aggregation expression (`$expr`): substituted values become `{"$literal": v}`.
    fn aggregation(&self, o: &Operand) -> Result<Bson, PlanError> {
        self.rebuild(o, &|this, leaf| {
            let mut d = Document::new();
            d.insert("$literal", this.leaf(leaf)?);
            Ok(Bson::Document(d))
        })
    }
}

fn expansion_text(e: &Expansion) -> String {
    let mut s = if e.implicit {
        String::new()
    } else {
        format!("%%{}", e.root.name())
    };
    for (i, seg) in e.path.iter().enumerate() {
        if i > 0 || !e.implicit {
            s.push('.');
        }
        s.push_str(seg);
    }
    if s.is_empty() && e.root == Root::Root {
        s.push_str("%%root");
    }
    s
}

/// Canonical query merge: none → `{}`, one → itself, more → `{"$and": [..]}`.
pub fn merge_queries(mut queries: Vec<Document>) -> Document {
    queries.retain(|q| !q.is_empty());
    match queries.len() {
        0 => Document::new(),
        1 => queries.pop().unwrap_or_default(),
        _ => {
            let mut d = Document::new();
            d.insert(
                "$and",
                Bson::Array(queries.into_iter().map(Bson::Document).collect()),
            );
            d
        }
    }
}

/// The kind of one projection, `_id` aside.
#[derive(Debug)]
enum Kind {
    /// Included paths (other than `_id`); empty for `{"_id": 1}`.
    Inclusive(Vec<String>),
    /// Excluded paths (other than `_id`); never empty.
    Exclusive(Vec<String>),
    /// `{"_id": 0}` alone.
    IdOnly,
}

#[derive(Debug)]
struct Analyzed {
    origin: String,
    kind: Kind,
    id_excluded: bool,
}

fn analyze(origin: &str, p: &Document) -> Result<Analyzed, PlanError> {
    let mut included = Vec::new();
    let mut excluded = Vec::new();
    let mut id: Option<bool> = None;
    for (k, v) in p {
        let on = truthy(v);
        if k == "_id" {
            id = Some(on);
        } else if on {
            included.push(k.clone());
        } else {
            excluded.push(k.clone());
        }
    }
    let kind = match (included.is_empty(), excluded.is_empty()) {
        (false, false) => {
            return Err(PlanError::MixedProjection {
                origin: origin.to_string(),
            });
        }
        (false, true) => Kind::Inclusive(included),
        (true, false) => Kind::Exclusive(excluded),
        (true, true) => match id {
            Some(true) => Kind::Inclusive(Vec::new()),
            _ => Kind::IdOnly,
        },
    };
    Ok(Analyzed {
        origin: origin.to_string(),
        kind,
        id_excluded: id == Some(false),
    })
}

/// Dotted paths by segment (`a.b` is below `a`), each node counting the paths that end there:
/// what the projection merge needs in time linear in the total length of the paths (finding 11
/// of issue 9: the pairwise `covered_by` checks it replaces were quadratic, 20 s for a
/// 40,000-key client projection).
#[derive(Debug)]
struct PathTrie<'k> {
    /// The child of a node by segment; node 0 is the root. One map for the whole trie (a map
    /// per node cost an allocation per path segment). Keys come from clients, so the hasher is
    /// the standard library's keyed one, not a fast unkeyed hash an attacker could collide.
    children: std::collections::HashMap<(usize, &'k str), usize>,
    /// How many paths end at each node.
    ends: Vec<usize>,
}

impl<'k> PathTrie<'k> {
    fn new() -> Self {
        PathTrie {
            children: std::collections::HashMap::new(),
            ends: vec![0],
        }
    }

    /// Counts one more path ending at `path`'s node.
    fn insert(&mut self, path: &'k str) {
        let mut at = 0;
        for segment in path.split('.') {
            let next = self.ends.len();
            let child = *self.children.entry((at, segment)).or_insert(next);
            if child == next {
                self.ends.push(0);
            }
            at = child;
        }
        if let Some(count) = self.ends.get_mut(at) {
            *count += 1;
        }
    }

    /// The counts of the nodes along `path` (its ancestors first, its own last); shorter when
    /// the trie lacks part of it.
    fn counts<'a>(&'a self, path: &'a str) -> impl Iterator<Item = usize> + 'a {
        let mut at = 0;
        path.split('.').map_while(move |segment| {
            at = *self.children.get(&(at, segment))?;
            self.ends.get(at).copied()
        })
    }
}

/// Drops duplicates and paths below another path of the list, keeping first-appearance order.
/// Linear in the total length of the paths.
fn without_descendants(paths: Vec<String>) -> Vec<String> {
    let mut trie = PathTrie::new();
    for p in &paths {
        trie.insert(p);
    }
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut keep = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        let segments = p.split('.').count();
        let below_other = trie
            .counts(p)
            .take(segments.saturating_sub(1))
            .any(|count| count > 0);
        if !below_other && seen.insert(p.as_str()) {
            keep.push(i);
        }
    }
    let mut keep = keep.into_iter().peekable();
    paths
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.next_if_eq(i).is_some())
        .map(|(_, p)| p)
        .collect()
}

/// The candidate paths that every one of `projections` includes (a path counts as included
/// when it or one of its ancestors is listed), in order. Linear in the total length of the
/// paths: each projection is first reduced to paths none of which is below another, so that
/// along any path each projection is counted at most once.
fn included_by_all(candidates: Vec<String>, projections: &[&Vec<String>]) -> Vec<String> {
    let reduced: Vec<Vec<String>> = projections
        .iter()
        .map(|keys| without_descendants(keys.to_vec()))
        .collect();
    let mut trie = PathTrie::new();
    for keys in &reduced {
        for k in keys {
            trie.insert(k);
        }
    }
    let all = projections.len();
    candidates
        .into_iter()
        .filter(|k| trie.counts(k).sum::<usize>() == all)
        .collect()
}

/// Canonical projection merge (module docs). `projections` are `(origin, projection)` in order.
pub fn merge_projections(projections: &[(String, &Document)]) -> Result<Document, PlanError> {
    let analyzed = projections
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(origin, p)| analyze(origin, p))
        .collect::<Result<Vec<_>, _>>()?;
    let inclusive: Vec<(&Analyzed, &Vec<String>)> = analyzed
        .iter()
        .filter_map(|a| match &a.kind {
            Kind::Inclusive(keys) => Some((a, keys)),
            _ => None,
        })
        .collect();
    let exclusive: Vec<(&Analyzed, &Vec<String>)> = analyzed
        .iter()
        .filter_map(|a| match &a.kind {
            Kind::Exclusive(keys) => Some((a, keys)),
            _ => None,
        })
        .collect();
    if let (Some((inc, _)), Some((exc, _))) = (inclusive.first(), exclusive.first()) {
        return Err(PlanError::ProjectionConflict {
            inclusive: inc.origin.clone(),
            exclusive: exc.origin.clone(),
        });
    }
    let id_excluded = analyzed.iter().any(|a| a.id_excluded);
    let mut out = Document::new();
    if !inclusive.is_empty() {
        let candidates: Vec<String> = inclusive
            .iter()
            .flat_map(|(_, keys)| keys.iter().cloned())
            .collect();
        let keys: Vec<&Vec<String>> = inclusive.iter().map(|(_, keys)| *keys).collect();
        let common = without_descendants(included_by_all(candidates, &keys));
        if common.is_empty() {
            if id_excluded {
                return Err(PlanError::EmptyProjection);
            }
            out.insert("_id", Bson::Int32(1));
            return Ok(out);
        }
        if id_excluded {
            out.insert("_id", Bson::Int32(0));
        }
        for k in common {
            out.insert(k, Bson::Int32(1));
        }
        return Ok(out);
    }
    if id_excluded {
        out.insert("_id", Bson::Int32(0));
    }
    let all: Vec<String> = exclusive
        .iter()
        .flat_map(|(_, keys)| keys.iter().cloned())
        .collect();
    for k in without_descendants(all) {
        out.insert(k, Bson::Int32(0));
    }
    Ok(out)
}
