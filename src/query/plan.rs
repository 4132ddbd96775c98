//! Stage: filter planning, once per request, before any document is read (spec §4). Input: the
//! collection's filters, the client's query and projection, the [`RequestContext`]. Output: a
//! [`QueryPlan`] — the names of the applied filters, the merged query and the merged projection
//! to send to the database — or a [`PlanError`] (the request fails).
//!
//! Canonical forms (conformance cases compare them):
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

use bson::{Bson, Document};

use crate::context::RequestContext;
use crate::expr::{Expansion, Operand, Root};
use crate::rules::Filter;
use crate::value::compare::truthy;
use crate::value::ejson::type_name;
use crate::value::eval::{Bindings, EvalError, eval_expansion, eval_expr, eval_operand};

/// What to send to the database for one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryPlan {
    /// Names of the filters that applied, in filter order.
    pub applied: Vec<String>,
    /// The merged query (canonical form, see the module docs).
    pub query: Document,
    /// The merged projection (canonical form; `{}` is no projection).
    pub projection: Document,
}

/// Planning failed; the request fails.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// A filter's `apply_when` or query could not be evaluated.
    #[error("filter `{filter}`: {error}")]
    Eval { filter: String, error: EvalError },
    /// A filter's query uses an expansion that has no value in this request.
    #[error("filter `{filter}`: query expansion `{expansion}` has no value")]
    MissingExpansion { filter: String, expansion: String },
    /// A filter's query did not evaluate to a document.
    #[error("filter `{filter}`: query must be a document, got {found}")]
    QueryNotDocument { filter: String, found: String },
    /// Inclusive and exclusive projections were combined (spec §4: "the query will fail").
    #[error(
        "projection conflict: {inclusive} is inclusive but {exclusive} is exclusive; all projections must be of one kind"
    )]
    ProjectionConflict {
        inclusive: String,
        exclusive: String,
    },
    /// One projection both includes and excludes fields (other than `_id`).
    #[error("{origin} mixes included and excluded fields")]
    MixedProjection { origin: String },
    /// The inclusive projections have no field in common and `_id` is excluded.
    #[error(
        "the projections have no field in common and `_id` is excluded, so nothing could be returned"
    )]
    EmptyProjection,
}

/// Decides which filters apply to a request and merges their queries and projections with the
/// client's (spec §4; canonical forms in the module docs).
pub fn plan(
    filters: &[Filter],
    client_query: Option<&Document>,
    client_projection: Option<&Document>,
    request: &RequestContext,
) -> Result<QueryPlan, PlanError> {
    let bindings = Bindings::request_only(request);
    let mut applied = Vec::new();
    let mut queries: Vec<Document> = Vec::new();
    let mut projections: Vec<(String, &Document)> = Vec::new();
    if let Some(q) = client_query.filter(|q| !q.is_empty()) {
        queries.push(q.clone());
    }
    for filter in filters {
        let applies =
            eval_expr(&filter.apply_when.expr, &bindings).map_err(|error| PlanError::Eval {
                filter: filter.name.clone(),
                error,
            })?;
        if !applies {
            continue;
        }
        applied.push(filter.name.clone());
        let query = filter_query(filter, &bindings)?;
        if !query.is_empty() {
            queries.push(query);
        }
        if !filter.projection.is_empty() {
            projections.push((format!("filter `{}`", filter.name), &filter.projection));
        }
    }
    if let Some(p) = client_projection.filter(|p| !p.is_empty()) {
        projections.push(("the client projection".to_string(), p));
    }
    Ok(QueryPlan {
        applied,
        query: merge_queries(queries),
        projection: merge_projections(&projections)?,
    })
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
///   rule engines do);
/// * **`$in`, `$nin`, `$all`**: MongoDB reads a regex element as a pattern (and an `$all`
///   element `{"$elemMatch": …}` as a query), and no encoding makes it literal there: a
///   substituted regex element (or `$`-keyed document element of `$all`, or a `null` element
///   of `$in`/`$all`, which would match missing fields) fails the request;
/// * **`$regex` / `$options`**: the rule wrote `$regex`, so a substituted pattern is its choice;
/// * **query positions** (the whole query, the members of `$and`/`$or`/`$nor`, the argument of
///   `$not` and `$elemMatch`, `$where` and other top-level operators): a query has no literal
///   form, so a substituted value there fails the request (inside documents the rule wrote
///   there, each position is judged as above);
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
        Ok(match o {
            Operand::Literal(v) => v.clone(),
            Operand::Array(items) => Bson::Array(
                items
                    .iter()
                    .map(|i| self.literal(i))
                    .collect::<Result<_, _>>()?,
            ),
            Operand::Document(members) => {
                let mut d = Document::new();
                for (k, v) in members {
                    d.insert(k.clone(), self.literal(v)?);
                }
                Bson::Document(d)
            }
            leaf => self.leaf(leaf)?,
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
            "$eq" | "$gte" | "$lte" if substituted(arg) => match self.leaf(arg)? {
                Bson::Null => Err(self.not_literal(arg, &at, "a null that matches missing fields")),
                v => Ok(v),
            },
            "$not" | "$elemMatch" => match arg {
                Operand::Document(members) => {
                    let operators = members.iter().any(|(k, _)| k.starts_with('$'));
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
            _ => None,
        };
        match arg {
            Operand::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
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
        Ok(match o {
            Operand::Literal(v) => v.clone(),
            Operand::Array(items) => Bson::Array(
                items
                    .iter()
                    .map(|i| self.aggregation(i))
                    .collect::<Result<_, _>>()?,
            ),
            Operand::Document(members) => {
                let mut d = Document::new();
                for (k, v) in members {
                    d.insert(k.clone(), self.aggregation(v)?);
                }
                Bson::Document(d)
            }
            leaf => {
                let mut d = Document::new();
                d.insert("$literal", self.leaf(leaf)?);
                Bson::Document(d)
            }
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

/// `path` is `ancestor` or below it.
fn covered_by(path: &str, ancestor: &str) -> bool {
    path == ancestor
        || path
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Drops duplicates and paths below another path of the list, keeping first-appearance order.
fn without_descendants(paths: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in &paths {
        let below_other = paths.iter().any(|q| q != p && covered_by(p, q));
        if !below_other && !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
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
        let common: Vec<String> = candidates
            .into_iter()
            .filter(|k| {
                inclusive
                    .iter()
                    .all(|(_, keys)| keys.iter().any(|a| covered_by(k, a)))
            })
            .collect();
        let common = without_descendants(common);
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
