//! Stage: reading an operation. Input: the body an App Services client sends to
//! `functions/call` for its MongoDB service (`{"name": "updateOne", "arguments": [{"database",
//! "collection", "query", "update", ...}], "service": ...}`), as BSON. Output: an [`Operation`]
//! whose arguments are checked and typed, or an [`OpError`] naming every problem.

use bson::{Bson, Document};

use crate::mql::{Update, array_filters_from};

use super::error::OpError;
use super::store::Namespace;

/// The actions of App Services' MongoDB service.
const ACTIONS: &[&str] = &[
    "find",
    "findOne",
    "count",
    "aggregate",
    "insertOne",
    "insertMany",
    "updateOne",
    "updateMany",
    "replaceOne",
    "findOneAndUpdate",
    "findOneAndReplace",
    "findOneAndDelete",
    "deleteOne",
    "deleteMany",
];

/// One operation, parsed: what to do, on which namespace, with which arguments.
#[derive(Debug, Clone)]
pub struct Operation {
    name: &'static str,
    namespace: Namespace,
    service: Option<String>,
    pub(crate) action: Action,
}

/// Which documents an operation selects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selection {
    /// The client's query (`{}`: every visible document).
    pub query: Document,
    /// The sort (`None`: natural order).
    pub sort: Option<Document>,
    /// At most this many (`0`: no limit).
    pub limit: i64,
}

/// What an operation does, with its typed arguments.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// `find` / `findOne` (`one`: at most one document, `null` when none).
    Find {
        selection: Selection,
        projection: Option<Document>,
        one: bool,
    },
    /// `count`.
    Count { selection: Selection },
    /// `aggregate`.
    Aggregate { pipeline: Vec<Document> },
    /// `insertOne` / `insertMany`.
    Insert {
        documents: Vec<Document>,
        many: bool,
    },
    /// `updateOne`, `updateMany`, `replaceOne`, `findOneAndUpdate`, `findOneAndReplace`.
    Update {
        selection: Selection,
        update: Box<Update>,
        upsert: bool,
        many: bool,
        /// `findOneAnd*`: the document to return.
        returning: Option<Returning>,
    },
    /// `deleteOne`, `deleteMany`, `findOneAndDelete`.
    Delete {
        selection: Selection,
        many: bool,
        returning: Option<Returning>,
    },
}

/// What a `findOneAnd*` returns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Returning {
    /// The projection of the returned document.
    pub projection: Option<Document>,
    /// The post-image (`returnNewDocument: true`) rather than the pre-image.
    pub new_document: bool,
}

impl Action {
    /// The sort of the selection, if any.
    pub(crate) fn sort(&self) -> Option<&Document> {
        match self {
            Action::Find { selection, .. }
            | Action::Count { selection }
            | Action::Update { selection, .. }
            | Action::Delete { selection, .. } => selection.sort.as_ref(),
            Action::Aggregate { .. } | Action::Insert { .. } => None,
        }
    }
}

impl Operation {
    /// Reads an operation body. Every problem is reported (unknown or mistyped arguments, a
    /// missing namespace), with a hint for likely misspellings.
    pub fn from_body(body: &Document) -> Result<Operation, OpError> {
        let mut problems = Vec::new();
        for key in body.keys() {
            if !matches!(key.as_str(), "name" | "arguments" | "service") {
                problems.push(format!(
                    "unknown body field `{key}` (expected `name`, `arguments`, `service`)"
                ));
            }
        }
        let name = match body.get("name") {
            Some(Bson::String(n)) => match ACTIONS.iter().find(|a| **a == n.as_str()) {
                Some(a) => Some(*a),
                None => {
                    problems.push(format!("unknown action `{n}`{}", hint(n, ACTIONS)));
                    None
                }
            },
            Some(other) => {
                problems.push(format!("`name` must be a string, not {}", type_of(other)));
                None
            }
            None => {
                problems.push("`name` is missing (the action, e.g. `find`)".to_string());
                None
            }
        };
        let service = match body.get("service") {
            None | Some(Bson::Null) => None,
            Some(Bson::String(s)) => Some(s.clone()),
            Some(other) => {
                problems.push(format!(
                    "`service` must be a string, not {}",
                    type_of(other)
                ));
                None
            }
        };
        let argument = match body.get("arguments") {
            Some(Bson::Array(items)) => match items.as_slice() {
                [Bson::Document(d)] => Some(d),
                [other] => {
                    problems.push(format!(
                        "`arguments[0]` must be a document, not {}",
                        type_of(other)
                    ));
                    None
                }
                _ => {
                    problems.push(format!(
                        "`arguments` must hold exactly one document, not {}",
                        items.len()
                    ));
                    None
                }
            },
            Some(other) => {
                problems.push(format!(
                    "`arguments` must be an array, not {}",
                    type_of(other)
                ));
                None
            }
            None => {
                problems.push("`arguments` is missing".to_string());
                None
            }
        };
        let (Some(name), Some(argument)) = (name, argument) else {
            return Err(OpError::invalid(problems.join("; ")));
        };
        let mut args = Args {
            doc: argument,
            problems,
            used: vec!["database", "collection"],
        };
        let database = args.name_field("database");
        let collection = args.name_field("collection");
        let action = parse_action(name, &mut args);
        args.unknown_keys(name);
        if !args.problems.is_empty() {
            return Err(OpError::invalid(args.problems.join("; ")));
        }
        match (database, collection, action) {
            (Some(database), Some(collection), Some(action)) => Ok(Operation {
                name,
                namespace: Namespace::new(database, collection),
                service,
                action,
            }),
            _ => Err(OpError::invalid("the arguments are incomplete")),
        }
    }

    /// The action's name (`find`, `updateOne`, ...).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The namespace the operation addresses.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The service (data source) the client named, if any.
    pub fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }

    /// Whether the operation replaces whole documents: `replaceOne`, `findOneAndReplace`, or
    /// an update action whose `update` is a replacement document without operators (decision
    /// O8). A change stream reports its changes as `replace`, not `update`; every other
    /// operation gives `false`.
    pub fn replaces(&self) -> bool {
        matches!(&self.action, Action::Update { update, .. } if update.is_replacement())
    }

    /// Whether the operation may write.
    pub fn writes(&self) -> bool {
        matches!(
            self.action,
            Action::Insert { .. } | Action::Update { .. } | Action::Delete { .. }
        )
    }
}

/// The typed arguments of action `name`.
fn parse_action(name: &'static str, args: &mut Args<'_>) -> Option<Action> {
    let returning = |args: &mut Args<'_>, with_new: bool| Returning {
        projection: args.document("projection"),
        new_document: with_new && args.flag("returnNewDocument"),
    };
    Some(match name {
        "find" | "findOne" => {
            let one = name == "findOne";
            let query = args.query();
            let projection = args.document("project");
            let sort = args.document("sort");
            let limit = if one { 1 } else { args.limit() };
            Action::Find {
                selection: Selection { query, sort, limit },
                projection,
                one,
            }
        }
        "count" => {
            let query = args.query();
            let limit = args.limit();
            Action::Count {
                selection: Selection {
                    query,
                    sort: None,
                    limit,
                },
            }
        }
        "aggregate" => Action::Aggregate {
            pipeline: args.documents("pipeline")?,
        },
        "insertOne" => Action::Insert {
            documents: vec![args.required_document("document")?],
            many: false,
        },
        "insertMany" => {
            let documents = args.documents("documents")?;
            if documents.is_empty() {
                args.problems
                    .push("`documents` must hold at least one document".to_string());
            }
            Action::Insert {
                documents,
                many: true,
            }
        }
        "updateOne" | "updateMany" | "replaceOne" | "findOneAndUpdate" | "findOneAndReplace" => {
            let find_and = name.starts_with("findOneAnd");
            let replace = matches!(name, "replaceOne" | "findOneAndReplace");
            let query = args.query();
            let sort = if find_and {
                args.document("sort")
            } else {
                None
            };
            let upsert = args.flag("upsert");
            let filters = if replace {
                Vec::new()
            } else {
                args.array_filters()
            };
            let update_key = if replace && args.doc.contains_key("replacement") {
                "replacement"
            } else {
                "update"
            };
            let raw = args.required(update_key)?;
            let returning = find_and.then(|| returning(args, true));
            let update = match Update::parse_value(raw, &filters) {
                Ok(u) => u,
                Err(e) => {
                    args.problems.push(format!("`{update_key}`: {e}"));
                    return None;
                }
            };
            if replace && !update.is_replacement() {
                args.problems.push(format!(
                    "`{update_key}` of `{name}` must be a replacement document (no update operators)"
                ));
            }
            // An update document without operators replaces the document in every update
            // action, as the App Services server accepted it (decision O8).
            Action::Update {
                selection: Selection {
                    query,
                    sort,
                    limit: 0,
                },
                update: Box::new(update),
                upsert,
                many: name == "updateMany",
                returning,
            }
        }
        "findOneAndDelete" | "deleteOne" | "deleteMany" => {
            let find_and = name == "findOneAndDelete";
            let query = args.query();
            let sort = if find_and {
                args.document("sort")
            } else {
                None
            };
            let returning = find_and.then(|| returning(args, false));
            Action::Delete {
                selection: Selection {
                    query,
                    sort,
                    limit: 0,
                },
                many: name == "deleteMany",
                returning,
            }
        }
        _ => return None,
    })
}

/// The argument document being read: records which keys were used and every problem.
struct Args<'a> {
    doc: &'a Document,
    problems: Vec<String>,
    used: Vec<&'static str>,
}

impl<'a> Args<'a> {
    fn get(&mut self, key: &'static str) -> Option<&'a Bson> {
        self.used.push(key);
        self.doc.get(key)
    }

    fn name_field(&mut self, key: &'static str) -> Option<String> {
        match self.get(key) {
            Some(Bson::String(s)) if !s.is_empty() && !s.contains('\0') => Some(s.clone()),
            Some(Bson::String(_)) => {
                self.problems
                    .push(format!("`{key}` must be a non-empty name without NUL"));
                None
            }
            Some(other) => {
                self.problems
                    .push(format!("`{key}` must be a string, not {}", type_of(other)));
                None
            }
            None => {
                self.problems.push(format!("`{key}` is missing"));
                None
            }
        }
    }

    /// `query` or `filter` (both spellings are accepted; clients use one per action).
    fn query(&mut self) -> Document {
        let query = self.document("query");
        let filter = self.document("filter");
        match (query, filter) {
            (Some(_), Some(_)) => {
                self.problems
                    .push("give `query` or `filter`, not both".to_string());
                Document::new()
            }
            (Some(q), None) | (None, Some(q)) => q,
            (None, None) => Document::new(),
        }
    }

    fn document(&mut self, key: &'static str) -> Option<Document> {
        match self.get(key) {
            None => None,
            Some(Bson::Document(d)) => Some(d.clone()),
            Some(other) => {
                self.problems.push(format!(
                    "`{key}` must be a document, not {}",
                    type_of(other)
                ));
                None
            }
        }
    }

    fn required(&mut self, key: &'static str) -> Option<&'a Bson> {
        let v = self.get(key);
        if v.is_none() {
            self.problems.push(format!("`{key}` is missing"));
        }
        v
    }

    fn required_document(&mut self, key: &'static str) -> Option<Document> {
        match self.required(key)? {
            Bson::Document(d) => Some(d.clone()),
            other => {
                self.problems.push(format!(
                    "`{key}` must be a document, not {}",
                    type_of(other)
                ));
                None
            }
        }
    }

    fn documents(&mut self, key: &'static str) -> Option<Vec<Document>> {
        match self.required(key)? {
            Bson::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Bson::Document(d) => out.push(d.clone()),
                        other => self.problems.push(format!(
                            "`{key}[{i}]` must be a document, not {}",
                            type_of(other)
                        )),
                    }
                }
                Some(out)
            }
            other => {
                self.problems
                    .push(format!("`{key}` must be an array, not {}", type_of(other)));
                None
            }
        }
    }

    fn flag(&mut self, key: &'static str) -> bool {
        match self.get(key) {
            None | Some(Bson::Null) => false,
            Some(Bson::Boolean(b)) => *b,
            Some(other) => {
                self.problems
                    .push(format!("`{key}` must be a boolean, not {}", type_of(other)));
                false
            }
        }
    }

    /// `limit`: a whole number (int32, int64 or a whole double); `0` or absent: no limit.
    fn limit(&mut self) -> i64 {
        match self.get("limit") {
            None | Some(Bson::Null) => 0,
            Some(Bson::Int32(n)) => i64::from(*n),
            Some(Bson::Int64(n)) => *n,
            Some(Bson::Double(f)) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                // Exact: |f| < 2^53.
                #[allow(clippy::cast_possible_truncation, reason = "whole and below 2^53")]
                let n = *f as i64;
                n
            }
            Some(other) => {
                self.problems.push(format!(
                    "`limit` must be a whole number, not {}",
                    type_of(other)
                ));
                0
            }
        }
    }

    fn array_filters(&mut self) -> Vec<Document> {
        match self.get("arrayFilters") {
            None | Some(Bson::Null) => Vec::new(),
            Some(v) => match array_filters_from(v) {
                Ok(f) => f,
                Err(e) => {
                    self.problems.push(format!("`arrayFilters`: {e}"));
                    Vec::new()
                }
            },
        }
    }

    /// Reports the keys no reader asked for.
    fn unknown_keys(&mut self, action: &str) {
        let known: Vec<&str> = self.used.clone();
        for key in self.doc.keys() {
            if !known.contains(&key.as_str()) {
                self.problems.push(format!(
                    "unknown argument `{key}` for `{action}`{}",
                    hint(key, &known)
                ));
            }
        }
    }
}

/// ` (did you mean `x`?)` when a candidate is one or two edits away (or differs in case).
fn hint(word: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .filter(|c| {
            c.eq_ignore_ascii_case(word)
                || edit_distance(&word.to_lowercase(), &c.to_lowercase()) <= 2
        })
        .min_by_key(|c| edit_distance(word, c))
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance, for hints on short names (inputs longer than 64 characters get none).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev.get(j).copied().unwrap_or(0) + usize::from(ca != cb);
            let delete = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let insert = row.get(j).copied().unwrap_or(0) + 1;
            row.push(substitute.min(delete).min(insert));
        }
        prev = row;
    }
    prev.last().copied().unwrap_or(0)
}

fn type_of(v: &Bson) -> &'static str {
    crate::mql::type_name(v)
}
