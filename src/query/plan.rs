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
//!   it (or without the clause) could widen it.
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
use crate::expr::{Expansion, Root};
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
    /// The request, the client query or the client projection is nested too deeply
    /// ([`Limits::max_document_depth`](crate::limits::Limits::max_document_depth)).
    #[error("{0}")]
    Limit(crate::limits::LimitExceeded),
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

/// The filter's query with its expansions substituted.
fn filter_query(filter: &Filter, bindings: &Bindings<'_>) -> Result<Document, PlanError> {
    let value = eval_operand(&filter.query, bindings).map_err(|error| PlanError::Eval {
        filter: filter.name.clone(),
        error,
    })?;
    match value {
        Some(Bson::Document(d)) => Ok(d),
        Some(other) => Err(PlanError::QueryNotDocument {
            filter: filter.name.clone(),
            found: type_name(&other).to_string(),
        }),
        None => {
            let mut missing = None;
            filter.query.visit_expansions(&mut |e| {
                if missing.is_none() && eval_expansion(e, bindings).is_none() {
                    missing = Some(expansion_text(e));
                }
            });
            Err(PlanError::MissingExpansion {
                filter: filter.name.clone(),
                expansion: missing.unwrap_or_else(|| "?".to_string()),
            })
        }
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
#[derive(Debug, Default)]
struct PathTrie<'k> {
    /// Children by segment, and how many paths end at the node; node 0 is the root.
    nodes: Vec<(std::collections::HashMap<&'k str, usize>, usize)>,
}

impl<'k> PathTrie<'k> {
    fn new() -> Self {
        PathTrie {
            nodes: vec![Default::default()],
        }
    }

    /// Counts one more path ending at `path`'s node.
    fn insert(&mut self, path: &'k str) {
        let mut at = 0;
        for segment in path.split('.') {
            let next = self.nodes.len();
            let child = match self.nodes.get_mut(at) {
                Some((children, _)) => *children.entry(segment).or_insert(next),
                None => return,
            };
            if child == next {
                self.nodes.push(Default::default());
            }
            at = child;
        }
        if let Some((_, count)) = self.nodes.get_mut(at) {
            *count += 1;
        }
    }

    /// The counts of the nodes along `path` (its ancestors first, its own last); shorter when
    /// the trie lacks part of it.
    fn counts<'a>(&'a self, path: &'a str) -> impl Iterator<Item = usize> + 'a {
        let mut at = Some(0);
        path.split('.').map_while(move |segment| {
            let node = self.nodes.get(at?)?.0.get(segment).copied();
            at = node;
            self.nodes.get(node?).map(|(_, count)| *count)
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
