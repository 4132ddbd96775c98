//! Stage: MongoDB's update language (`mql::update`). Input: an update document (operators such
//! as `{$set: {...}, $inc: {...}}`, or a replacement document) with its `arrayFilters`, then
//! documents. Output: the updated document (and whether it changed), the document an upsert
//! inserts, or MongoDB's error ([`UpdateError`]: its code name and number, and the gist of its
//! message).
//!
//! ```text
//! update document ──Update::parse──▶ Update (tree of paths and operations, filters compiled)
//!                                       ├─ apply(&doc, &UpdateContext) ─▶ Updated { document, modified }
//!                                       └─ upsert(&query, &UpdateContext) ─▶ the inserted document
//! ```
//!
//! Compile once, apply many: [`Update::parse`] validates the whole update (MongoDB refuses a bad
//! update before touching any document) and builds the tree; [`Update::apply`] copies the
//! document (the output) and changes the copy; the input is never changed, and an update that
//! fails returns no document.
//!
//! What MongoDB does, and rolegate with it:
//!
//! * **Operators**: `$set`, `$unset`, `$inc`, `$mul`, `$min`, `$max`, `$rename`, `$currentDate`,
//!   `$setOnInsert`, `$push` (`$each`, `$position`, `$sort`, `$slice`), `$addToSet` (`$each`),
//!   `$pop`, `$pull` (a value, an operator condition on the element, or a query on document
//!   elements), `$pullAll`, `$bit` (`and`/`or`/`xor`). An operator with an empty document does
//!   nothing (MongoDB 5.0+).
//! * **Paths**: dotted paths create sub-documents, an index past the end of an array pads it
//!   with `null`s; positional `$` (the array element the query matched, from
//!   [`UpdateContext::with_query`]), `$[]` (every element), `$[<id>]` (the elements its array
//!   filter selects).
//! * **Order**: the fields of each level are applied in MongoDB's order (5.0+: names of digits
//!   numerically, other names by bytes), so an existing field changes in place and new fields
//!   are appended in that order, whatever the order of the update document.
//! * **Errors** at parse: unknown operators and plain fields among operators
//!   (`FailedToParse`), an operator argument that is not a document (`FailedToParse`), two
//!   operations on one path or on a path and its prefix (`ConflictingUpdateOperators`), bad
//!   operands (`BadValue`, `TypeMismatch`), empty path components (`EmptyFieldName`),
//!   dollar-prefixed fields (`DollarPrefixedFieldName`), array filters (undefined, unused,
//!   duplicated, badly named). At application: `$inc` on a string (`TypeMismatch`), `$push` on a
//!   non-array (`BadValue`), a path through a scalar (`PathNotViable`), int64 overflow
//!   (`BadValue`), a changed `_id` (`ImmutableField`), an `_id` that is an array
//!   (`InvalidIdField`).
//! * **Replacement**: a document without `$` keys replaces the document; without `_id` it keeps
//!   the old `_id`, first.
//! * **Upsert** ([`Update::upsert`]): the document is seeded from the query's equality
//!   conditions, the update applied with `$setOnInsert`, then `_id` is put first (the query's,
//!   the update's, or [`UpdateContext`]'s generated one).
//!
//! Decisions (`docs/semantics.md`, section 4.3): field order (M30), decimal128 arithmetic exact
//! or refused with `NotImplemented` (M31), pipeline-style updates refused
//! ([`Update::parse_value`], M32), dotted `_id` in upserts (M33), `modified` (M34), cost (M35),
//! dollar-prefixed names and DBRefs (M36), upsert seeding (M37), merged `$[<id>]` children
//! (M38); the positional `$` is [`Positional`]'s (M24).
//!
//! Work that grows with the input (copies, `$each`, `$[]` over an array, `$addToSet`'s
//! comparisons, sorting, padding) is charged to the step budget ([`crate::steps`]; each call
//! has [`Limits::max_eval_steps`](crate::limits::Limits::max_eval_steps), capped by an enclosing
//! decision's); documents and updates nested deeper than
//! [`max_document_depth`](crate::limits::Limits::max_document_depth) are refused
//! ([`ErrorKind::LimitExceeded`]).

mod apply;
mod error;
mod filters;
mod numeric;
mod ops;
mod parse;
mod path;
mod tree;
mod upsert;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, Timestamp};

pub use error::{ErrorKind, UpdateError};
pub(crate) use path::array_index;

use apply::Cx;
use parse::{Compiled, Rename};

use crate::limits::Limits;
use crate::mql::{Positional, compile_query};
use crate::steps::StepBudget;
use crate::value::compare::{bson_equal, identical};

/// A compiled MongoDB update: parse once with [`Update::parse`], apply to many documents.
#[derive(Debug, Clone)]
pub struct Update {
    compiled: Compiled,
}

/// What one update needs besides the document: the positional `$`'s query, the time
/// `$currentDate` uses, and the `_id` an upsert generates. Built once per update request.
#[derive(Debug, Clone)]
pub struct UpdateContext {
    positional: Option<Positional>,
    /// The positional match, when the caller computed it on another view of the document
    /// ([`UpdateContext::with_matched_index`]).
    matched: Option<Option<usize>>,
    now: DateTime,
    timestamp: Timestamp,
    generated_id: Bson,
}

impl Default for UpdateContext {
    /// No query, the time 0 (1970-01-01), the `_id` [`UpdateContext::default_generated_id`].
    fn default() -> UpdateContext {
        UpdateContext::new(
            DateTime::from_millis(0),
            UpdateContext::default_generated_id(),
        )
    }
}

impl UpdateContext {
    /// The `_id` of [`UpdateContext::default`]: `ObjectId("000000000000000000000000")`.
    pub fn default_generated_id() -> Bson {
        Bson::ObjectId(ObjectId::from_bytes([0; 12]))
    }

    /// A context whose `$currentDate` is `now` (a timestamp `$currentDate` gets `now`'s seconds
    /// and increment 1, unless [`with_timestamp`](Self::with_timestamp) says otherwise) and
    /// whose upserts without an `_id` get `generated_id`.
    pub fn new(now: DateTime, generated_id: Bson) -> UpdateContext {
        let secs = u32::try_from(now.timestamp_millis().div_euclid(1000)).unwrap_or(0);
        UpdateContext {
            positional: None,
            matched: None,
            now,
            timestamp: Timestamp {
                time: secs,
                increment: 1,
            },
            generated_id,
        }
    }

    /// The update's query, for the positional `$` (compiled here, once, into the
    /// [`Positional`] that find projections use too).
    pub fn with_query(mut self, query: &Document) -> Result<UpdateContext, UpdateError> {
        Limits::DEFAULT.check_document_as("the query", query)?;
        // Operators rolegate does not run (`$expr`, `$where`, ...) record no position: the
        // positional match reads the rest of the query.
        let expr = match compile_query(query) {
            Ok(expr) => expr,
            Err(_) => {
                let recording: Document = query
                    .iter()
                    .filter(|(k, _)| !k.starts_with('$') || matches!(k.as_str(), "$and" | "$or"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                compile_query(&recording)
                    .map_err(|e| UpdateError::bad_value(format!("invalid query: {e}")))?
            }
        };
        self.positional = Some(Positional::new(&expr));
        Ok(self)
    }

    /// The position the update's positional `$` uses, computed by the caller (`None`: the
    /// query recorded none, MongoDB's "did not find the match needed from the query"), instead
    /// of the query's match on the document being updated. Operations under rules compute it
    /// on the document as the user may read it, so that fields the user cannot read never
    /// choose the element an update changes.
    pub fn with_matched_index(mut self, index: Option<usize>) -> UpdateContext {
        self.matched = Some(index);
        self
    }

    /// The position the query's positional match records in `doc` (`None` without a query or
    /// when it records none).
    pub fn matched_index_in(&self, doc: &Document) -> Result<Option<usize>, UpdateError> {
        match &self.positional {
            Some(q) => q
                .position(doc)
                .map_err(|e| UpdateError::bad_value(e.message)),
            None => Ok(None),
        }
    }

    /// The timestamp `$currentDate: {$type: "timestamp"}` writes.
    pub fn with_timestamp(mut self, timestamp: Timestamp) -> UpdateContext {
        self.timestamp = timestamp;
        self
    }
}

/// One component of a path an update writes ([`Update::targets`]), as field rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPart {
    /// A field name — or an array index, when it is all digits and meets an array.
    Name(String),
    /// Some element of an array: the positional `$`, `$[]` or `$[<identifier>]` (which
    /// elements depends on the document, the query and the array filters).
    Element,
}

/// The result of [`Update::apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Updated {
    /// The document after the update.
    pub document: Document,
    /// Whether it differs from the input (MongoDB's `nModified`): any field not identical in
    /// type, bytes and key order.
    pub modified: bool,
}

fn immutable(message: String) -> UpdateError {
    UpdateError::new(ErrorKind::ImmutableField, message)
}

/// MongoDB refuses to store an `_id` that is an array, a regex or undefined.
fn check_id(doc: &Document) -> Result<(), UpdateError> {
    let kind = match doc.get("_id") {
        Some(Bson::Array(_)) => "array",
        Some(Bson::RegularExpression(_)) => "regex",
        Some(Bson::Undefined) => "undefined",
        _ => return Ok(()),
    };
    Err(UpdateError::new(
        ErrorKind::InvalidIdField,
        format!("The '_id' value cannot be of type {kind}"),
    ))
}

/// `doc` with `_id` (its own, or `id`) first.
fn id_first(doc: Document, id: Option<Bson>) -> Document {
    let mut doc = doc;
    let id = doc.remove("_id").or(id);
    let mut out = Document::new();
    if let Some(id) = id {
        out.insert("_id", id);
    }
    out.extend(doc);
    out
}

fn identical_docs(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && identical(va, vb))
}

/// Walks a `$rename` path in `doc`: the value there (`None`: missing), or MongoDB's error for a
/// path inside an array (`BadValue` through an index, `PathNotViable` through a field name of
/// an array or through a scalar).
fn rename_walk<'a>(
    doc: &'a Document,
    path: &[String],
    what: &str,
) -> Result<Option<&'a Bson>, UpdateError> {
    let mut current: Option<&Bson> = None;
    let dotted = path.join(".");
    for part in path {
        let next = match current {
            None => doc.get(part),
            Some(Bson::Document(d)) => d.get(part),
            Some(Bson::Array(_)) if path::array_index(part).is_some() => {
                return Err(UpdateError::bad_value(format!(
                    "The {what} field cannot be an array element, '{dotted}' in doc with {} fields",
                    doc.len()
                )));
            }
            Some(other) => {
                return Err(UpdateError::not_viable(format!(
                    "cannot use the part ({part} of {dotted}) to traverse the element ({other})"
                )));
            }
        };
        match next {
            Some(v) => current = Some(v),
            None => return Ok(None),
        }
    }
    Ok(current)
}

/// Reads the values the `$rename`s move, with MongoDB's checks that neither end is inside an
/// array.
fn read_renames(doc: &Document, renames: &[Rename]) -> Result<Vec<Option<Bson>>, UpdateError> {
    let mut out = Vec::with_capacity(renames.len());
    for r in renames {
        let Some(value) = rename_walk(doc, &r.from, "source")? else {
            out.push(None);
            continue;
        };
        rename_walk(doc, &r.to, "destination")?;
        crate::steps::charge(crate::steps::copy_steps(value))?;
        out.push(Some(value.clone()));
    }
    Ok(out)
}

/// MongoDB's DBRef rules (`storage_validation`): `$ref` is a string followed by `$id`; `$id`
/// follows `$ref`; `$db` is a string following `$id`. Checked on every embedded document,
/// iteratively.
fn check_dbrefs(doc: &Document) -> Result<(), UpdateError> {
    let bad = |m: &str| UpdateError::new(ErrorKind::InvalidDBRef, m.to_string());
    let mut stack: Vec<&Bson> = doc.values().collect();
    let mut docs: Vec<&Document> = vec![doc];
    while let Some(d) = docs.pop() {
        let keys: Vec<&String> = d.keys().collect();
        for (i, (k, v)) in d.iter().enumerate() {
            crate::steps::charge(1)?;
            let prev = i
                .checked_sub(1)
                .and_then(|p| keys.get(p))
                .map(|k| k.as_str());
            let next = keys.get(i + 1).map(|k| k.as_str());
            match k.as_str() {
                "$ref" => {
                    if !matches!(v, Bson::String(_)) {
                        return Err(bad("The DBRef $ref field must be a String"));
                    }
                    if next != Some("$id") {
                        return Err(bad("The DBRef $ref field must be followed by a $id field"));
                    }
                }
                "$id" if prev != Some("$ref") => {
                    return Err(bad(
                        "Found $id field without a $ref before it, which is invalid.",
                    ));
                }
                "$db" => {
                    if !matches!(v, Bson::String(_)) {
                        return Err(bad("The DBRef $db field must be a String"));
                    }
                    if prev != Some("$id") {
                        return Err(bad(
                            "Found $db field without a $id before it, which is invalid.",
                        ));
                    }
                }
                _ => {}
            }
        }
        while let Some(v) = stack.pop() {
            match v {
                Bson::Document(sub) => {
                    stack.extend(sub.values());
                    docs.push(sub);
                }
                Bson::Array(items) => stack.extend(items),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The `arrayFilters` of an update command, given as any BSON value: an array of documents,
/// else MongoDB's `TypeMismatch`.
pub fn array_filters_from(value: &Bson) -> Result<Vec<Document>, UpdateError> {
    let Bson::Array(items) = value else {
        return Err(UpdateError::type_mismatch(format!(
            "arrayFilters must be an array, not {}",
            crate::value::ejson::type_name(value)
        )));
    };
    items
        .iter()
        .map(|f| match f {
            Bson::Document(d) => Ok(d.clone()),
            other => Err(UpdateError::type_mismatch(format!(
                "Each array filter must be an object, found {}",
                crate::value::ejson::type_name(other)
            ))),
        })
        .collect()
}

/// The positional `$` index for `doc` (as a field name), when the update has a `$` and the
/// context a query that records one.
fn matched_index(
    ctx: &UpdateContext,
    positional: bool,
    doc: &Document,
) -> Result<Option<String>, UpdateError> {
    if let (Some(index), true) = (ctx.matched, positional) {
        return Ok(index.map(|i| i.to_string()));
    }
    match (&ctx.positional, positional) {
        (Some(q), true) => Ok(q
            .position(doc)
            .map_err(|e| UpdateError::bad_value(e.message))?
            .map(|i| i.to_string())),
        _ => Ok(None),
    }
}

impl Update {
    /// Compiles an update document with its `arrayFilters`. A document whose first key starts
    /// with `$` is an operator update; any other (including `{}`) is a replacement document.
    /// Every error MongoDB reports before looking at a document is reported here.
    pub fn parse(update: &Document, array_filters: &[Document]) -> Result<Update, UpdateError> {
        let _steps = StepBudget::start(Limits::DEFAULT.max_eval_steps);
        Ok(Update {
            compiled: parse::parse(update, array_filters)?,
        })
    }

    /// [`Update::parse`] for an update given as any BSON value: a document is parsed; an array
    /// (a pipeline-style update) is refused with [`ErrorKind::NotImplemented`] (decision
    /// M32); anything else is MongoDB's `FailedToParse`.
    pub fn parse_value(update: &Bson, array_filters: &[Document]) -> Result<Update, UpdateError> {
        match update {
            Bson::Document(d) => Update::parse(d, array_filters),
            Bson::Array(_) => Err(UpdateError::new(
                ErrorKind::NotImplemented,
                "pipeline-style updates (an array of aggregation stages) are not supported by rolegate; use update operators or a replacement document",
            )),
            other => Err(UpdateError::parse(format!(
                "Update argument must be either an object or an array, found {}",
                crate::value::ejson::type_name(other)
            ))),
        }
    }

    /// True for a replacement document.
    pub fn is_replacement(&self) -> bool {
        matches!(self.compiled, Compiled::Replacement(_))
    }

    /// Whether the update has a path with the positional `$` (which takes its element from
    /// the query's match).
    pub fn is_positional(&self) -> bool {
        matches!(
            self.compiled,
            Compiled::Operators {
                positional: true,
                ..
            }
        )
    }

    /// The paths the update writes when it updates a stored document: each operator's path
    /// (both ends of a `$rename`), except `$setOnInsert`'s, which writes only when an upsert
    /// inserts; for a replacement, each of its top-level fields (the fields it removes are
    /// not named). Operations under rules refuse an update that names a path the user cannot
    /// read, whatever is stored there (`docs/semantics.md`, O17).
    pub fn targets(&self) -> Vec<Vec<TargetPart>> {
        match &self.compiled {
            Compiled::Replacement(replacement) => replacement
                .keys()
                .map(|k| vec![TargetPart::Name(k.clone())])
                .collect(),
            Compiled::Operators { tree, .. } => tree.targets(),
        }
    }

    /// Applies the update to `doc` (which is not changed): the new document and whether it
    /// differs, or MongoDB's error.
    pub fn apply(&self, doc: &Document, ctx: &UpdateContext) -> Result<Updated, UpdateError> {
        let _steps = StepBudget::start(Limits::DEFAULT.max_eval_steps);
        Limits::DEFAULT.check_document(doc)?;
        let mut touched = false;
        let document = match &self.compiled {
            Compiled::Replacement(replacement) => {
                crate::steps::charge(crate::steps::document_copy_steps(replacement))?;
                match (doc.get("_id"), replacement.get("_id")) {
                    (Some(old), Some(new)) if !bson_equal(old, new) => {
                        return Err(immutable(format!(
                            "After applying the update, the (immutable) field '_id' was found to have been altered to _id: {new}"
                        )));
                    }
                    (Some(old), None) => id_first(replacement.clone(), Some(old.clone())),
                    _ => replacement.clone(),
                }
            }
            Compiled::Operators {
                tree,
                renames,
                filters,
                positional,
                top_dollar,
                dbref,
            } => {
                let matched = matched_index(ctx, *positional, doc)?;
                let renamed = read_renames(doc, renames)?;
                let cx = Cx {
                    inserting: false,
                    matched,
                    filters,
                    renames: &renamed,
                    now: ctx.now,
                    timestamp: ctx.timestamp,
                    id: doc.get("_id"),
                    touched: std::cell::Cell::new(false),
                };
                // The copy of the document is the output: charged by its size.
                crate::steps::charge(crate::steps::document_copy_steps(doc))?;
                let mut out = Bson::Document(doc.clone());
                apply::apply_object(&tree.root, &mut out, apply::Key::Name(""), &cx)?;
                touched = cx.touched.get();
                let Bson::Document(out) = out else {
                    return Err(UpdateError::bad_value(
                        "the update did not produce a document",
                    ));
                };
                if let Some(old) = doc.get("_id") {
                    match out.get("_id") {
                        Some(new) if bson_equal(old, new) => {}
                        _ => {
                            return Err(immutable(
                                "Performing an update on the path '_id' would modify the immutable field '_id'".to_string(),
                            ));
                        }
                    }
                }
                if *dbref {
                    check_dbrefs(&out)?;
                }
                if let Some(path) = top_dollar {
                    let first = path.split('.').next().unwrap_or_default();
                    return Err(UpdateError::new(
                        ErrorKind::DollarPrefixedFieldName,
                        format!(
                            "The dollar ($) prefixed field '{first}' in '{path}' is not allowed in the context of an update of a stored document's top level"
                        ),
                    ));
                }
                out
            }
        };
        check_id(&document)?;
        Limits::DEFAULT.check_document_as("the updated document", &document)?;
        let modified = touched || !identical_docs(doc, &document);
        Ok(Updated { document, modified })
    }

    /// The document an upsert inserts when `query` matched nothing: for an operator update, the
    /// query's equality conditions, then the update (with `$setOnInsert`); for a replacement,
    /// the replacement. `_id` comes first: the document's own, the query's equality, or the
    /// context's generated one.
    pub fn upsert(&self, query: &Document, ctx: &UpdateContext) -> Result<Document, UpdateError> {
        let _steps = StepBudget::start(Limits::DEFAULT.max_eval_steps);
        Limits::DEFAULT.check_document_as("the query", query)?;
        let document = match &self.compiled {
            Compiled::Replacement(replacement) => {
                let query_id = upsert::seed_id(query)?;

                if let (Some(q), Some(r)) = (&query_id, replacement.get("_id"))
                    && !bson_equal(q, r)
                {
                    return Err(immutable(format!(
                        "After applying the update, the (immutable) field '_id' was found to have been altered to _id: {r}"
                    )));
                }
                let id = query_id.unwrap_or_else(|| ctx.generated_id.clone());
                crate::steps::charge(crate::steps::document_copy_steps(replacement))?;
                id_first(replacement.clone(), Some(id))
            }
            Compiled::Operators {
                tree,
                renames,
                filters,
                positional,
                dbref,
                ..
            } => {
                let seed = upsert::seed(query)?;
                let matched = matched_index(ctx, *positional, &seed)?;
                let renamed = read_renames(&seed, renames)?;
                let seeded_id = seed.get("_id").cloned();
                let cx = Cx {
                    inserting: true,
                    matched,
                    filters,
                    renames: &renamed,
                    now: ctx.now,
                    timestamp: ctx.timestamp,
                    id: seeded_id.as_ref(),
                    touched: std::cell::Cell::new(false),
                };
                let mut out = Bson::Document(seed);
                apply::apply_object(&tree.root, &mut out, apply::Key::Name(""), &cx)?;
                let Bson::Document(out) = out else {
                    return Err(UpdateError::bad_value(
                        "the update did not produce a document",
                    ));
                };
                if let Some(old) = &seeded_id {
                    match out.get("_id") {
                        Some(new) if bson_equal(old, new) => {}
                        _ => {
                            return Err(immutable(
                                "Performing an update on the path '_id' would modify the immutable field '_id'".to_string(),
                            ));
                        }
                    }
                }
                if *dbref {
                    check_dbrefs(&out)?;
                }
                id_first(out, Some(ctx.generated_id.clone()))
            }
        };
        check_id(&document)?;
        Limits::DEFAULT.check_document_as("the inserted document", &document)?;
        Ok(document)
    }
}
