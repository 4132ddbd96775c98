//! Stage: the `aggregate` action's pipeline. Input: the stages, and the user's visible,
//! redacted documents (the rules have already decided on each stored document). Output: the
//! pipeline's documents. A documented subset of stages runs (`$match`, `$project`, `$unset`,
//! `$sort`, `$skip`, `$limit`, `$count`); the stages App Services refused to app users are
//! refused as such, any other stage by name.

use bson::{Bson, Document, doc};

use crate::engine::PreparedRequest;
use crate::mql::{Projection, SortSpec, Window, compile_query, matches, sort_window};
use crate::query::plan::check_client_query;

use super::error::OpError;

/// Stages App Services did not allow app users to run.
const REFUSED: &[&str] = &[
    "$collStats",
    "$facet",
    "$geoNear",
    "$graphLookup",
    "$indexStats",
    "$lookup",
    "$merge",
    "$out",
    "$unionWith",
];

/// Runs `pipeline` over `docs` (redacted views, in natural order).
pub(crate) fn run(
    request: &PreparedRequest<'_, '_>,
    pipeline: &[Document],
    mut docs: Vec<Document>,
) -> Result<Vec<Document>, OpError> {
    for (i, stage) in pipeline.iter().enumerate() {
        let at = |m: String| OpError::invalid(format!("`pipeline[{i}]`: {m}"));
        let mut keys = stage.iter();
        let (Some((name, arg)), None) = (keys.next(), keys.next()) else {
            return Err(at("a stage is a document with exactly one field".into()));
        };
        docs = match name.as_str() {
            "$match" => {
                let Bson::Document(query) = arg else {
                    return Err(at("`$match` takes a query document".into()));
                };
                check_client_query(query, request.limits().max_document_depth)
                    .map_err(|e| at(e.to_string()))?;
                let expr = compile_query(query).map_err(|e| at(e.to_string()))?;
                let mut kept = Vec::with_capacity(docs.len());
                for d in docs {
                    if matches(&expr, &d).map_err(|e| OpError::rule_failed(e.to_string()))? {
                        kept.push(d);
                    }
                }
                kept
            }
            "$project" | "$unset" => {
                let spec = match (name.as_str(), arg) {
                    ("$project", Bson::Document(p)) => p.clone(),
                    ("$unset", Bson::String(f)) => doc! {f.clone(): 0},
                    ("$unset", Bson::Array(fields)) => {
                        let mut p = Document::new();
                        for f in fields {
                            let Bson::String(f) = f else {
                                return Err(at("`$unset` takes field names".into()));
                            };
                            p.insert(f.clone(), 0);
                        }
                        p
                    }
                    _ => return Err(at(format!("`{name}` takes a projection"))),
                };
                let projection = Projection::compile(&spec).map_err(|e| at(e.to_string()))?;
                let mut out = Vec::with_capacity(docs.len());
                for d in &docs {
                    out.push(
                        projection
                            .apply(d)
                            .map_err(|e| OpError::mongodb(e.to_string()))?,
                    );
                }
                out
            }
            "$sort" => {
                let Bson::Document(spec) = arg else {
                    return Err(at("`$sort` takes a sort document".into()));
                };
                let spec = SortSpec::parse(spec).map_err(|e| at(e.to_string()))?;
                let all = Window::new(0, 0).map_err(|e| at(e.to_string()))?;
                sort_window(docs, &spec, all).map_err(|e| OpError::mongodb(e.to_string()))?
            }
            "$skip" | "$limit" => {
                let n = whole(arg).ok_or_else(|| at(format!("`{name}` takes a whole number")))?;
                if n < 0 || (name == "$limit" && n == 0) {
                    return Err(at(format!("`{name}` must be positive")));
                }
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if name == "$skip" {
                    docs.into_iter().skip(n).collect()
                } else {
                    docs.truncate(n);
                    docs
                }
            }
            "$count" => {
                let Bson::String(field) = arg else {
                    return Err(at("`$count` takes a field name".into()));
                };
                if field.is_empty() || field.starts_with('$') || field.contains('.') {
                    return Err(at(
                        "`$count`'s field name must be non-empty, without `$` or `.`".into(),
                    ));
                }
                if docs.is_empty() {
                    Vec::new()
                } else {
                    let n = i32::try_from(docs.len()).unwrap_or(i32::MAX);
                    vec![doc! {field.clone(): n}]
                }
            }
            refused if REFUSED.contains(&refused) => {
                return Err(at(format!("`{refused}` is not allowed for app users")));
            }
            other => {
                return Err(at(format!(
                    "the stage `{other}` is not supported (rolegate runs $match, $project, \
                     $unset, $sort, $skip, $limit and $count)"
                )));
            }
        };
    }
    Ok(docs)
}

/// A whole number from int32, int64 or a whole double.
fn whole(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
            #[allow(clippy::cast_possible_truncation, reason = "whole and below 2^53")]
            let n = *f as i64;
            Some(n)
        }
        _ => None,
    }
}
