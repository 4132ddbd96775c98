//! Stage: generators (feature `testing-gen`). Input: an app's rules for one or more collections
//! (roles, filters, schema, values, environments), and hints (property constraints, given
//! documents and users). Output: proptest strategies of `%%user` objects, requests and
//! documents ([`Generators`]), and the request context of a generated case
//! ([`ContextTemplate`]).
//!
//! ```text
//! Rules + namespace ──vocab::Collector──▶ Vocabulary ──values::ValueGen──▶ strategies
//!   (roles, filters, schema, values)       (paths, classes,    (users, requests, documents,
//!                                            constants)           updates)
//! ```
//!
//! What is generated, and why it reaches every role and branch: see [`vocab`] (paths and value
//! classes from every expression, field rule and schema) and [`values`] (schema types, class
//! pools, edge values: missing, `null`, wrong types, arrays, int32/int64/double/decimal128).

mod host;
pub(crate) mod values;
pub(crate) mod vocab;

use std::rc::Rc;
use std::sync::Arc;

use bson::{Bson, Document};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;

use crate::context::RequestContext;
use crate::engine::{ContextError, Rules, UnknownNamespace};
use crate::expr::Expr;

pub use host::{FunctionCall, GenHost};
use values::ValueGen;
use vocab::{Collector, PathNode, Space, Vocabulary};

/// How deep generated documents nest at most (the vocabulary's paths are at most this deep).
const DEPTH: usize = vocab::MAX_PATH_DEPTH;

/// Gathers what [`Generators`] are made from: the rules of one or more collections (for
/// `rolegate diff`, the same collection under two rule sets), and hints that add paths and
/// constants.
#[derive(Default)]
pub struct GeneratorBuilder {
    collector: Collector,
    documents: Vec<Document>,
    users: Vec<Document>,
}

impl GeneratorBuilder {
    /// An empty builder: without a collection it generates users and requests, and documents
    /// of the paths that hints name.
    pub fn new() -> GeneratorBuilder {
        GeneratorBuilder {
            collector: Collector::new(),
            ..GeneratorBuilder::default()
        }
    }

    /// Adds the rules of `namespace` (`db.coll` or `data_source/db.coll`): every expression of
    /// its roles and filters, its field rules, its schema, and the app's values and
    /// environments.
    pub fn collection(
        mut self,
        rules: &Rules,
        namespace: &str,
    ) -> Result<GeneratorBuilder, UnknownNamespace> {
        let collection = rules.collection(namespace)?;
        let template = ContextTemplate::new(rules).ok();
        let values = match template.as_ref().map(|t| &t.base.values) {
            Some(Bson::Document(v)) => v.clone(),
            _ => Document::new(),
        };
        let set = rules.rule_set();
        let mut environments: Vec<(String, Document)> = Vec::new();
        if let Some(current) = &set.environment
            && let Some(v) = set.environments.get(current)
        {
            environments.push((current.clone(), v.clone()));
        }
        for (tag, v) in &set.environments {
            if set.environment.as_deref() != Some(tag.as_str()) {
                environments.push((tag.clone(), v.clone()));
            }
        }
        self.collector.app(values, environments);
        self.collector.policy(&collection.policy());
        Ok(self)
    }

    /// Adds the paths and constants of an MQL query over the case object `{"user": ...,
    /// "document": ..., "post": ..., "request": ...}` (a property's `where`).
    pub fn query_hint(mut self, query: &Document) -> GeneratorBuilder {
        self.collector.case_query(query);
        self
    }

    /// Adds the paths and constants of a rule expression (a property's `when` or `only_if`).
    pub fn expression_hint(mut self, expr: &Expr) -> GeneratorBuilder {
        self.collector.expression(expr);
        self
    }

    /// Makes sure the document path `path` (dotted) is generated.
    pub fn document_path(mut self, path: &str) -> GeneratorBuilder {
        let segments: Vec<String> = path.split('.').map(str::to_string).collect();
        self.collector.document_path(&segments);
        self
    }

    /// Documents to use as they are, besides generated ones (their values also become
    /// constants of their paths).
    pub fn documents(mut self, docs: impl IntoIterator<Item = Document>) -> GeneratorBuilder {
        for d in docs {
            self.collector.example(Space::Doc, &d);
            self.documents.push(d);
        }
        self
    }

    /// `%%user` objects to use as they are, besides generated ones (their values also become
    /// constants of their paths).
    pub fn users(mut self, users: impl IntoIterator<Item = Document>) -> GeneratorBuilder {
        for u in users {
            self.collector.example(Space::User, &u);
            self.users.push(u);
        }
        self
    }

    /// The generators.
    pub fn build(self) -> Generators {
        Generators::from_vocabulary(self.collector.finish(), self.documents, self.users)
    }
}

/// Proptest strategies of `%%user` objects, requests, documents and updates, derived from an
/// app's rules: the paths its rules, field rules and schema name, the constants they compare
/// them with (so that every role and branch is reached), its `%%values`, and edge values
/// (missing fields, `null`, wrong types, arrays, int32/int64/double/decimal128). Cheap to
/// clone; the strategies shrink towards absent fields and plain values.
///
/// A property of the example app, checked with proptest (a failure would be shrunk to a minimal
/// user and document):
///
/// ```rust
/// use proptest::prelude::*;
/// use proptest::test_runner::TestRunner;
/// use rolegate::Rules;
/// use rolegate::testing::{ContextTemplate, Generators};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let app = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/tasks-app");
/// # let rules = Rules::load(app)?;
/// # /*
/// let rules = Rules::load("examples/tasks-app")?;
/// # */
/// let tasks = rules.collection("taskboard.tasks")?;
/// let gens = Generators::new(&rules, "taskboard.tasks")?;
/// // The app's values and environments, shared by every generated request.
/// let template = ContextTemplate::new(&rules)?;
///
/// // Only admins, owners and collaborators ever read a task's internal notes.
/// let mut runner = TestRunner::deterministic();
/// runner.run(&(gens.user(), gens.request(), gens.document()), |(user, request, doc)| {
///     let context = template.context(&user, &request);
///     let read = tasks.prepare(&context).read(&doc);
///     let notes = read
///         .document
///         .as_ref()
///         .and_then(|d| d.get_document("details").ok())
///         .is_some_and(|details| details.contains_key("internalNotes"));
///     let role = read.role.as_deref();
///     prop_assert!(!notes || matches!(role, Some("admin" | "owner" | "collaborator")));
///     Ok(())
/// })?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Generators {
    vocab: Arc<Vocabulary>,
    user: BoxedStrategy<Document>,
    request: BoxedStrategy<GenRequest>,
    document: BoxedStrategy<Document>,
    changes: BoxedStrategy<Vec<Change>>,
    paths: Rc<Vec<(Vec<String>, BoxedStrategy<Bson>)>>,
}

impl std::fmt::Debug for Generators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generators")
            .field("document_paths", &self.vocab.doc.paths().len())
            .field("user_paths", &self.vocab.user.paths().len())
            .field("classes", &self.vocab.classes.len())
            .finish_non_exhaustive()
    }
}

impl Generators {
    /// The generators of one collection (`db.coll` or `data_source/db.coll`) of `rules`.
    pub fn new(rules: &Rules, namespace: &str) -> Result<Generators, UnknownNamespace> {
        Ok(GeneratorBuilder::new()
            .collection(rules, namespace)?
            .build())
    }

    /// A builder, for several rule sets or hints.
    pub fn builder() -> GeneratorBuilder {
        GeneratorBuilder::new()
    }

    fn from_vocabulary(vocab: Vocabulary, docs: Vec<Document>, users: Vec<Document>) -> Self {
        let vg = ValueGen::new(&vocab);
        let mut document = vg.document(&vocab.doc.children, DEPTH);
        if !docs.is_empty() {
            document = Union::new_weighted(vec![(3, document), (1, select(docs).boxed())]).boxed();
        }
        let mut user = vg.user(DEPTH);
        if !users.is_empty() {
            user = Union::new_weighted(vec![(3, user), (1, select(users).boxed())]).boxed();
        }
        let environments = vocab.environments.clone();
        let environment: BoxedStrategy<Option<String>> = if environments.is_empty() {
            Just(None).boxed()
        } else {
            select(environments).prop_map(Some).boxed()
        };
        let request = (vg.request(DEPTH), environment, vg.functions())
            .prop_map(|(http, environment, functions)| GenRequest {
                http,
                environment,
                functions,
            })
            .boxed();
        let mut paths: Vec<(Vec<String>, BoxedStrategy<Bson>)> = Vec::new();
        for path in vocab.doc.paths().into_iter().take(64) {
            if let Some(node) = vocab.doc.find(&path) {
                paths.push((
                    path.clone(),
                    vg.node(node, DEPTH.saturating_sub(path.len())),
                ));
            }
        }
        let changes = if paths.is_empty() {
            Just(Vec::new()).boxed()
        } else {
            let one: Vec<BoxedStrategy<Change>> = paths
                .iter()
                .map(|(path, value)| {
                    let path = path.clone();
                    option::weighted(0.85, value.clone())
                        .prop_map(move |value| Change {
                            path: path.clone(),
                            value,
                        })
                        .boxed()
                })
                .collect();
            vec(Union::new(one), 1..=2).boxed()
        };
        Generators {
            vocab: Arc::new(vocab),
            user,
            request,
            document,
            changes,
            paths: Rc::new(paths),
        }
    }

    /// `%%user` objects: `id`, `type`, `data`, `custom_data`, `identities`.
    pub fn user(&self) -> BoxedStrategy<Document> {
        self.user.clone()
    }

    /// The rest of a request: `%%request`, the environment, the results of `%function` calls.
    pub fn request(&self) -> BoxedStrategy<GenRequest> {
        self.request.clone()
    }

    /// Documents of the collection (stored documents, new documents, pre-images).
    pub fn document(&self) -> BoxedStrategy<Document> {
        self.document.clone()
    }

    /// Changes to a document (one or two fields set or removed): with
    /// [`Change::apply_all`], the post-image of an update.
    pub fn changes(&self) -> BoxedStrategy<Vec<Change>> {
        self.changes.clone()
    }

    /// Changes that set each of `paths` (dotted) to a generated value.
    pub fn changes_of(&self, paths: &[String]) -> BoxedStrategy<Vec<Change>> {
        let parts: Vec<BoxedStrategy<Change>> = paths
            .iter()
            .map(|p| {
                let segments: Vec<String> = p.split('.').map(str::to_string).collect();
                let value = self
                    .paths
                    .iter()
                    .find(|(q, _)| *q == segments)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_else(|| Just(Bson::String("changed".to_string())).boxed());
                value
                    .prop_map(move |v| Change {
                        path: segments.clone(),
                        value: Some(v),
                    })
                    .boxed()
            })
            .collect();
        parts.boxed()
    }

    /// A whole case: a user, a request, a document and changes to it.
    pub fn case(&self) -> BoxedStrategy<GenCase> {
        self.case_with(self.changes())
    }

    /// A whole case whose changes come from `changes`.
    pub fn case_with(&self, changes: BoxedStrategy<Vec<Change>>) -> BoxedStrategy<GenCase> {
        (self.user(), self.request(), self.document(), changes)
            .prop_map(|(user, request, document, changes)| GenCase {
                user,
                request,
                document,
                changes,
            })
            .boxed()
    }

    /// The document paths generated (dotted), parents before children.
    pub fn document_paths(&self) -> Vec<String> {
        self.vocab
            .doc
            .paths()
            .into_iter()
            .map(|p| p.join("."))
            .collect()
    }

    /// The constants the generators draw the document path `path` (dotted) from.
    pub fn constants_of(&self, path: &str) -> Vec<Bson> {
        let segments: Vec<String> = path.split('.').map(str::to_string).collect();
        self.node(&self.vocab.doc, &segments)
            .and_then(|n| self.vocab.classes.get(n.class))
            .map(|c| c.constants.clone())
            .unwrap_or_default()
    }

    fn node<'a>(&self, tree: &'a PathNode, path: &[String]) -> Option<&'a PathNode> {
        tree.find(path)
    }
}

/// The request part of a generated case, besides the user.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRequest {
    /// `%%request` (HTTP method, address, headers as arrays, ...): the members the rules read.
    pub http: Document,
    /// The environment `%%environment` shows (`None`: the app has none).
    pub environment: Option<String>,
    /// What each `%function` the rules call returns (`None`: the call fails, which denies).
    pub functions: Vec<(String, Option<Bson>)>,
}

/// A change of one document path: set to a value, or removed (`None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The path's segments.
    pub path: Vec<String>,
    /// The new value; `None` removes the field.
    pub value: Option<Bson>,
}

impl Change {
    /// Applies the change to `doc`: sets the value (creating the embedded documents on the way,
    /// replacing a non-document on the way) or removes the field.
    pub fn apply(&self, doc: &mut Document) {
        let Some((last, parents)) = self.path.split_last() else {
            return;
        };
        let mut at = doc;
        for seg in parents {
            if self.value.is_none() && !matches!(at.get(seg), Some(Bson::Document(_))) {
                return;
            }
            if !matches!(at.get(seg), Some(Bson::Document(_))) {
                at.insert(seg.clone(), Document::new());
            }
            at = match at.get_mut(seg) {
                Some(Bson::Document(d)) => d,
                _ => return,
            };
        }
        match &self.value {
            Some(v) => {
                at.insert(last.clone(), v.clone());
            }
            None => {
                at.remove(last);
            }
        }
    }

    /// `doc` after every change of `changes`, in order.
    pub fn apply_all(changes: &[Change], doc: &Document) -> Document {
        let mut out = doc.clone();
        for c in changes {
            c.apply(&mut out);
        }
        out
    }
}

/// A generated case: a user, the rest of the request, a document (the stored document of a read,
/// update or delete; the new document of an insert) and changes (the post-image of an update is
/// [`GenCase::post`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GenCase {
    /// `%%user`.
    pub user: Document,
    /// `%%request`, the environment and the function results.
    pub request: GenRequest,
    /// The document.
    pub document: Document,
    /// Changes that make the post-image of an update.
    pub changes: Vec<Change>,
}

impl GenCase {
    /// The post-image of an update: the document with the changes applied.
    pub fn post(&self) -> Document {
        Change::apply_all(&self.changes, &self.document)
    }
}

/// What every request of an app shares — `%%values` (plain values; secret-backed ones get a
/// placeholder naming the secret), the environments — from which [`ContextTemplate::context`]
/// makes the request context of each generated case quickly.
#[derive(Debug, Clone)]
pub struct ContextTemplate {
    base: RequestContext,
    environments: Vec<(String, Bson)>,
}

impl ContextTemplate {
    /// The template of `rules`' app.
    pub fn new(rules: &Rules) -> Result<ContextTemplate, ContextError> {
        let mut secrets: Vec<String> = Vec::new();
        let base = loop {
            let mut builder = rules.context();
            for s in &secrets {
                builder = builder.secret(s.clone(), format!("<secret {s}>"));
            }
            match builder.build() {
                Ok(ctx) => break ctx,
                Err(ContextError::MissingSecret { secret, .. })
                    if !secrets.contains(&secret)
                        && secrets.len() <= rules.rule_set().values.len() =>
                {
                    secrets.push(secret)
                }
                Err(e) => return Err(e),
            }
        };
        let set = rules.rule_set();
        let environments = set
            .environments
            .iter()
            .map(|(tag, values)| {
                let mut env = Document::new();
                env.insert("tag", tag.clone());
                env.insert("values", values.clone());
                (tag.clone(), Bson::Document(env))
            })
            .collect();
        Ok(ContextTemplate { base, environments })
    }

    /// `%%values` of every request.
    pub fn values(&self) -> &Bson {
        &self.base.values
    }

    /// `%%environment` of a request in `environment` (the app's current one for `None`).
    pub fn environment(&self, environment: Option<&str>) -> &Bson {
        environment
            .and_then(|tag| self.environments.iter().find(|(t, _)| t == tag))
            .map(|(_, env)| env)
            .unwrap_or(&self.base.environment)
    }

    /// The request context of `user` and `request`.
    pub fn context(&self, user: &Document, request: &GenRequest) -> RequestContext {
        self.context_recording(user, request).0
    }

    /// [`ContextTemplate::context`], with the host that answers its `%function` calls and
    /// records them (the mocks of a printed case).
    pub fn context_recording(
        &self,
        user: &Document,
        request: &GenRequest,
    ) -> (RequestContext, Arc<GenHost>) {
        let host = Arc::new(GenHost::new(request.functions.clone()));
        let mut ctx = self.base.clone();
        ctx.user = Some(Bson::Document(user.clone()));
        ctx.request = Bson::Document(request.http.clone());
        ctx.environment = self.environment(request.environment.as_deref()).clone();
        ctx.functions = host.clone();
        (ctx, host)
    }
}
