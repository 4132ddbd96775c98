//! Stage: generators, step 1 — what the rules talk about. Input: the policies of one or more
//! collections (every expression of every role and filter, the field rules, the schema), the
//! app's values and environments, and hints (property constraints, given documents and users).
//! Output: a [`Vocabulary`]: the document, `%%user` and `%%request` paths to generate, as trees,
//! each path tied to a value **class**, and the `%function`s the rules call.
//!
//! A class is a set of paths that the rules compare with each other (`owner_id` and `%%user.id`
//! in `{"owner_id": "%%user.id"}`; `email`, `%%user.data.email` and `%%user.custom_data.manages`
//! when two roles compare `email` with each of them), joined by union-find, with the constants
//! compared with any of them (`true` for `%%user.custom_data.isAdmin`, the elements of
//! `%%values.adminUserIds` for `%%user.id`, the `enum` of a schema field). The value generators
//! ([`super::values`]) draw every path of a class from one small pool, so a document's
//! `owner_id` equals the user's `id` often, and every role and branch that depends on such a
//! comparison is reached.
//!
//! Bounded on hostile rules: paths deeper than [`MAX_PATH_DEPTH`] segments, slots beyond
//! [`MAX_SLOTS`] and constants beyond [`MAX_CONSTANTS`] per path are left out (the generators
//! then make less varied values, never fail); every walk is over trees the loader bounded.

use std::collections::HashMap;

use bson::{Bson, Document};

use crate::expr::{ElemMatch, Expansion, Expr, Op, Operand, Predicate, Root};
use crate::rules::{CollectionPolicy, FieldTree, Role};
use crate::schema::model::{Items, Node as SchemaNode, TypeName};

/// Paths deeper than this many segments are not generated.
pub(crate) const MAX_PATH_DEPTH: usize = 8;
/// At most this many paths (of every space together).
pub(crate) const MAX_SLOTS: usize = 2048;
/// At most this many constants per path.
pub(crate) const MAX_CONSTANTS: usize = 24;

/// Where a path lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Space {
    /// The document (`%%root`, bare field names, `%%prevRoot`, field rules, the schema).
    Doc,
    /// `%%user`.
    User,
    /// `%%request`.
    Request,
    /// The result of a `%function` (the path is the function's name).
    Function,
}

/// What the schema says of one document path (merged over every schema given).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Shape {
    /// `bsonType`/`type` (empty: not said).
    pub types: Vec<TypeName>,
    /// For an array: the types of its items (empty: not said).
    pub item_types: Vec<TypeName>,
    /// An array whose items are objects: the path's children are the items' members.
    pub array_of_docs: bool,
    /// Listed in its parent's `required`.
    pub required: bool,
    /// `enum`.
    pub enum_values: Vec<Bson>,
}

/// A value class: paths compared with each other, and the constants they are compared with.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Class {
    /// The constants, without duplicates (same type and value), in the order found.
    pub constants: Vec<Bson>,
    /// Some path of the class is converted with `%stringToOid`/`%oidToString` or is an
    /// ObjectId in a schema: fresh values are 24-digit hexadecimal strings (so they convert).
    pub oid_like: bool,
    /// A short name for fresh values (the last segment of the class's first path).
    pub label: String,
}

/// One path of a tree: its name, class, shape and children.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PathNode {
    /// The segment.
    pub name: String,
    /// The class of the path.
    pub class: usize,
    /// What the schema says of it (documents only).
    pub shape: Shape,
    /// The paths below it, in the order found.
    pub children: Vec<PathNode>,
}

impl PathNode {
    /// The child named `name`, created when missing (always `Some`).
    fn child_mut(&mut self, name: &str) -> Option<&mut PathNode> {
        if let Some(i) = self.children.iter().position(|c| c.name == name) {
            return self.children.get_mut(i);
        }
        self.children.push(PathNode {
            name: name.to_string(),
            ..PathNode::default()
        });
        self.children.last_mut()
    }

    /// The node at `path` below this one.
    pub fn find(&self, path: &[String]) -> Option<&PathNode> {
        let mut node = self;
        for seg in path {
            node = node.children.iter().find(|c| &c.name == seg)?;
        }
        Some(node)
    }

    /// Every path below this node (not the node itself), depth first, parents first.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut stack: Vec<(Vec<String>, &PathNode)> = self
            .children
            .iter()
            .rev()
            .map(|c| (vec![c.name.clone()], c))
            .collect();
        while let Some((path, node)) = stack.pop() {
            for c in node.children.iter().rev() {
                let mut p = path.clone();
                p.push(c.name.clone());
                stack.push((p, c));
            }
            out.push(path);
        }
        out
    }
}

/// What the generators draw from (module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Vocabulary {
    /// The value classes, by index.
    pub classes: Vec<Class>,
    /// The document's paths (the root node has no name).
    pub doc: PathNode,
    /// `%%user`'s paths.
    pub user: PathNode,
    /// `%%request`'s paths.
    pub request: PathNode,
    /// The functions the rules call, with the class of their result.
    pub functions: Vec<(String, usize)>,
    /// The app's environment tags (the current one first).
    pub environments: Vec<String>,
}

/// A subject or operand seen while walking an expression.
enum Term {
    /// A path that is generated.
    Slot(usize),
    /// Values fixed by the app (`%%values`, `%%environment`): they become constants.
    Fixed(Vec<Bson>),
    /// Nothing to generate or learn from.
    Nothing,
}

/// What an expression's bare fields and `%%this` refer to while it is walked.
#[derive(Clone, Default)]
struct Scope {
    /// Inside `$elemMatch`: bare fields are relative to this path.
    elem: Option<(Space, Vec<String>)>,
    /// In a field rule or a schema node: `%%this`/`%%prev` are this document path.
    field: Option<Vec<String>>,
}

/// Collects slots, classes and shapes (module docs); [`Collector::finish`] makes the
/// [`Vocabulary`].
#[derive(Default)]
pub(crate) struct Collector {
    ids: HashMap<(Space, Vec<String>), usize>,
    keys: Vec<(Space, Vec<String>)>,
    parent: Vec<usize>,
    constants: Vec<Vec<Bson>>,
    oid_like: Vec<bool>,
    shapes: HashMap<Vec<String>, Shape>,
    values: Vec<Document>,
    environments: Vec<(String, Document)>,
}

impl Collector {
    /// An empty collector; `%%user.id` and `%%user.type` are always generated.
    pub fn new() -> Collector {
        let mut c = Collector::default();
        for member in ["id", "type"] {
            c.slot(Space::User, vec![member.to_string()]);
        }
        c
    }

    /// An app's `%%values` (resolved) and environments (tag → values, the current one first):
    /// what `%%values...` and `%%environment...` expansions are compared with.
    pub fn app(&mut self, values: Document, environments: Vec<(String, Document)>) {
        self.values.push(values);
        for (tag, values) in environments {
            if !self.environments.iter().any(|(t, _)| *t == tag) {
                self.environments.push((tag, values));
            }
        }
    }

    /// The slot of `path` in `space`, created when new; `None` past the bounds.
    fn slot(&mut self, space: Space, path: Vec<String>) -> Option<usize> {
        if path.is_empty() || path.len() > MAX_PATH_DEPTH {
            return None;
        }
        if let Some(id) = self.ids.get(&(space, path.clone())) {
            return Some(*id);
        }
        // The parents of a path are paths too, each with its own class (they shape the trees;
        // schemas give them types).
        let mut id = None;
        for len in 1..=path.len() {
            let prefix = path.get(..len).unwrap_or_default().to_vec();
            if let Some(existing) = self.ids.get(&(space, prefix.clone())) {
                id = Some(*existing);
                continue;
            }
            if self.keys.len() >= MAX_SLOTS {
                return None;
            }
            let new = self.keys.len();
            self.ids.insert((space, prefix.clone()), new);
            self.keys.push((space, prefix));
            self.parent.push(new);
            self.constants.push(Vec::new());
            self.oid_like.push(false);
            id = Some(new);
        }
        id
    }

    fn find(&mut self, mut x: usize) -> usize {
        // Iterative, with path halving: no recursion on long chains.
        loop {
            let p = self.parent.get(x).copied().unwrap_or(x);
            if p == x {
                return x;
            }
            let gp = self.parent.get(p).copied().unwrap_or(p);
            if let Some(slot) = self.parent.get_mut(x) {
                *slot = gp;
            }
            x = gp;
        }
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (keep, drop) = (ra.min(rb), ra.max(rb));
            if let Some(p) = self.parent.get_mut(drop) {
                *p = keep;
            }
        }
    }

    fn add_constant(&mut self, slot: usize, value: &Bson) {
        let Some(list) = self.constants.get_mut(slot) else {
            return;
        };
        let mut add = |v: &Bson| {
            if list.len() < MAX_CONSTANTS && !list.iter().any(|c| same_value(c, v)) {
                list.push(v.clone());
            }
        };
        if let Bson::Array(items) = value {
            for item in items.iter().take(MAX_CONSTANTS) {
                if !matches!(item, Bson::Array(_)) {
                    add(item);
                }
            }
        }
        add(value);
    }

    fn mark_oid(&mut self, term: &Term) {
        if let Term::Slot(s) = term
            && let Some(flag) = self.oid_like.get_mut(*s)
        {
            *flag = true;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Policies

    /// Walks a collection's roles, filters and schema.
    pub fn policy(&mut self, policy: &CollectionPolicy<'_>) {
        for role in policy.roles {
            self.role(role);
        }
        for filter in policy.filters {
            self.expr(&filter.apply_when.expr, &Scope::default());
            self.query_operand(&filter.query, &|path| Some((Space::Doc, path)));
        }
        if let Some(schema) = policy.schema {
            self.schema_node(schema.root(), Vec::new());
        }
    }

    fn role(&mut self, role: &Role) {
        let scope = Scope::default();
        self.expr(&role.apply_when.expr, &scope);
        if let Some(df) = &role.document_filters {
            for rule in df.read.iter().chain(&df.write) {
                self.expr(&rule.expr, &scope);
            }
        }
        for rule in [&role.read, &role.write, &role.insert, &role.delete]
            .into_iter()
            .flatten()
        {
            self.expr(&rule.expr, &scope);
        }
        self.field_tree(&role.fields, Vec::new());
    }

    fn field_tree(&mut self, tree: &FieldTree, base: Vec<String>) {
        for (name, rule) in &tree.fields {
            let mut path = base.clone();
            path.push(name.clone());
            self.slot(Space::Doc, path.clone());
            let scope = Scope {
                elem: None,
                field: Some(path.clone()),
            };
            let perms = &rule.permissions;
            for r in perms.read.iter().chain(&perms.write) {
                self.expr(&r.expr, &scope);
            }
            self.field_tree(&rule.nested, path);
        }
        if let Some(additional) = &tree.additional {
            for r in additional.read.iter().chain(&additional.write) {
                self.expr(&r.expr, &Scope::default());
            }
            // A field that no rule names, for `additional_fields` to judge.
            let mut other = base;
            other.push(OTHER_FIELD.to_string());
            self.slot(Space::Doc, other);
        }
    }

    fn schema_node(&mut self, node: &SchemaNode, path: Vec<String>) {
        if path.len() >= MAX_PATH_DEPTH {
            return;
        }
        if let Some(validate) = &node.validate {
            let scope = Scope {
                elem: None,
                field: (!path.is_empty()).then(|| path.clone()),
            };
            self.expr(validate, &scope);
        }
        for (name, child) in &node.properties {
            let mut p = path.clone();
            p.push(name.clone());
            let Some(slot) = self.slot(Space::Doc, p.clone()) else {
                continue;
            };
            let shape = self.shapes.entry(p.clone()).or_default();
            let types = node_types(child);
            merge_types(&mut shape.types, &types);
            shape.required |= node.required.iter().any(|r| r == name);
            let mut item_node = None;
            if let Items::Each(item) = &child.items {
                merge_types(&mut shape.item_types, &node_types(item));
                if !item.properties.is_empty() {
                    shape.array_of_docs = true;
                    item_node = Some(&**item);
                }
            }
            let enum_values = child.enum_values.clone().unwrap_or_default();
            for v in &enum_values {
                if !shape.enum_values.iter().any(|e| same_value(e, v)) {
                    shape.enum_values.push(v.clone());
                }
            }
            if types.contains(&TypeName::ObjectId)
                && let Some(flag) = self.oid_like.get_mut(slot)
            {
                *flag = true;
            }
            for v in &enum_values {
                self.add_constant(slot, v);
            }
            self.schema_node(child, p.clone());
            if let Some(item) = item_node {
                self.schema_node(item, p);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Hints

    /// Walks an MQL query over `{user, document, post, request}` (a property's `where`).
    pub fn case_query(&mut self, query: &Document) {
        let map = |path: Vec<String>| {
            let (first, rest) = path.split_first()?;
            let space = match first.as_str() {
                "user" => Space::User,
                "document" | "post" => Space::Doc,
                "request" => Space::Request,
                _ => return None,
            };
            Some((space, rest.to_vec()))
        };
        self.query_operand(&Operand::Literal(Bson::Document(query.clone())), &map);
    }

    /// Walks a rule expression (a property's `when` or `only_if`).
    pub fn expression(&mut self, expr: &Expr) {
        self.expr(expr, &Scope::default());
    }

    /// Makes sure a document path is generated.
    pub fn document_path(&mut self, path: &[String]) {
        self.slot(Space::Doc, path.to_vec());
    }

    /// Learns the leaves of a given document (`Space::Doc`) or user (`Space::User`) as constants
    /// of their paths.
    pub fn example(&mut self, space: Space, doc: &Document) {
        let mut stack: Vec<(Vec<String>, &Document)> = vec![(Vec::new(), doc)];
        while let Some((base, d)) = stack.pop() {
            for (k, v) in d {
                let mut path = base.clone();
                path.push(k.clone());
                let Some(slot) = self.slot(space, path.clone()) else {
                    continue;
                };
                match v {
                    Bson::Document(sub) if !sub.is_empty() => stack.push((path, sub)),
                    other => self.add_constant(slot, other),
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Expressions

    fn expansion(&mut self, e: &Expansion, scope: &Scope) -> Term {
        let path = e.path.clone();
        let slot = |c: &mut Collector, space: Space, p: Vec<String>| match c.slot(space, p) {
            Some(s) => Term::Slot(s),
            None => Term::Nothing,
        };
        match e.root {
            Root::User => slot(self, Space::User, path),
            Root::Request => slot(self, Space::Request, path),
            Root::Root | Root::PrevRoot => match (&scope.elem, e.implicit) {
                (Some((space, base)), true) => {
                    let mut p = base.clone();
                    p.extend(path);
                    slot(self, *space, p)
                }
                _ => slot(self, Space::Doc, path),
            },
            Root::This | Root::Prev => match &scope.field {
                Some(base) => {
                    let mut p = base.clone();
                    p.extend(path);
                    slot(self, Space::Doc, p)
                }
                None => Term::Nothing,
            },
            Root::Values => Term::Fixed(
                self.values
                    .iter()
                    .filter_map(|values| lookup(values, &path))
                    .collect(),
            ),
            Root::Environment => {
                let found: Vec<Bson> = self
                    .environments
                    .iter()
                    .filter_map(|(tag, values)| {
                        let mut env = Document::new();
                        env.insert("tag", tag.clone());
                        env.insert("values", values.clone());
                        lookup(&env, &path)
                    })
                    .collect();
                Term::Fixed(found)
            }
            Root::True => Term::Fixed(vec![Bson::Boolean(true)]),
            Root::False => Term::Fixed(vec![Bson::Boolean(false)]),
            Root::Args | Root::Partition => Term::Nothing,
        }
    }

    fn expr(&mut self, e: &Expr, scope: &Scope) {
        // INVARIANT: expressions are depth-limited by the loader (and by MAX_EVAL_DEPTH), so
        // this recursion is bounded.
        match e {
            Expr::Bool(_) => {}
            Expr::All(v) | Expr::Any(v) | Expr::None(v) => {
                for x in v {
                    self.expr(x, scope);
                }
            }
            Expr::Not(x) => self.expr(x, scope),
            Expr::Test { subject, predicate } => {
                let s = self.expansion(subject, scope);
                self.predicate(&s, predicate, scope);
            }
        }
    }

    fn predicate(&mut self, s: &Term, p: &Predicate, scope: &Scope) {
        match p {
            Predicate::Matches(o) => self.relate(s, o, scope),
            Predicate::Ops(ops) => {
                for op in ops {
                    self.op(s, op, scope);
                }
            }
        }
    }

    fn op(&mut self, s: &Term, op: &Op, scope: &Scope) {
        match op {
            Op::Cmp(_, o) | Op::In(o) | Op::Nin(o) | Op::AllOf(o) => self.relate(s, o, scope),
            Op::All(ps) | Op::Any(ps) | Op::None(ps) => {
                for p in ps {
                    self.predicate(s, p, scope);
                }
            }
            Op::Not(p) => self.predicate(s, p, scope),
            Op::ElemMatch(em) => match em.as_ref() {
                ElemMatch::Ops(ops) => {
                    for op in ops {
                        self.op(s, op, scope);
                    }
                }
                ElemMatch::Query(q) => {
                    if let Term::Slot(id) = s
                        && let Some(key) = self.keys.get(*id).cloned()
                    {
                        let inner = Scope {
                            elem: Some(key),
                            field: scope.field.clone(),
                        };
                        self.expr(q, &inner);
                    }
                }
            },
            Op::Exists(_)
            | Op::Type(_)
            | Op::Regex(_)
            | Op::Mod { .. }
            | Op::Bits { .. }
            | Op::Size(_) => {}
        }
    }

    /// `s` is compared with `o`.
    fn relate(&mut self, s: &Term, o: &Operand, scope: &Scope) {
        match o {
            Operand::Literal(b) => self.link(s, &Term::Fixed(vec![b.clone()])),
            Operand::Expansion(e) => {
                let t = self.expansion(e, scope);
                self.link(s, &t);
            }
            Operand::Array(items) => {
                for item in items {
                    self.relate(s, item, scope);
                }
            }
            Operand::Document(members) => {
                for (_, m) in members {
                    self.touch(m, scope);
                }
            }
            Operand::Function { name, arguments } => {
                for a in arguments {
                    self.touch(a, scope);
                }
                let t = match self.slot(Space::Function, vec![name.clone()]) {
                    Some(id) => Term::Slot(id),
                    None => Term::Nothing,
                };
                self.link(s, &t);
            }
            Operand::StringToOid(inner) | Operand::OidToString(inner) => {
                self.mark_oid(s);
                let t = self.operand_term(inner, scope);
                self.mark_oid(&t);
                self.link(s, &t);
            }
            Operand::StringToUuid(inner) | Operand::UuidToString(inner) => {
                self.relate(s, inner, scope)
            }
        }
    }

    fn operand_term(&mut self, o: &Operand, scope: &Scope) -> Term {
        match o {
            Operand::Literal(b) => Term::Fixed(vec![b.clone()]),
            Operand::Expansion(e) => self.expansion(e, scope),
            _ => {
                self.touch(o, scope);
                Term::Nothing
            }
        }
    }

    /// Makes sure every path an operand reads is generated.
    fn touch(&mut self, o: &Operand, scope: &Scope) {
        self.relate(&Term::Nothing, o, scope);
    }

    fn link(&mut self, a: &Term, b: &Term) {
        match (a, b) {
            (Term::Slot(x), Term::Slot(y)) => {
                let oid = self.oid_like.get(*x).copied().unwrap_or(false)
                    || self.oid_like.get(*y).copied().unwrap_or(false);
                self.union(*x, *y);
                if oid {
                    self.mark_oid(a);
                    self.mark_oid(b);
                }
            }
            (Term::Slot(x), Term::Fixed(vs)) | (Term::Fixed(vs), Term::Slot(x)) => {
                for v in vs {
                    self.add_constant(*x, v);
                }
            }
            _ => {}
        }
    }

    /// Walks a MongoDB query (a filter's `query`, a property's `where`): keys are paths,
    /// mapped to a space by `map`; values are compared with them.
    fn query_operand(
        &mut self,
        query: &Operand,
        map: &dyn Fn(Vec<String>) -> Option<(Space, Vec<String>)>,
    ) {
        // An explicit stack: a query's nesting is bounded by the loader, but no recursion is
        // needed.
        let mut stack: Vec<(Vec<String>, Operand)> = vec![(Vec::new(), query.clone())];
        while let Some((base, q)) = stack.pop() {
            for (key, value) in members(&q) {
                if key.starts_with('$') {
                    if matches!(key.as_str(), "$and" | "$or" | "$nor") {
                        for item in elements(&value) {
                            stack.push((base.clone(), item));
                        }
                    }
                    continue;
                }
                let mut path = base.clone();
                path.extend(key.split('.').map(str::to_string));
                let Some((space, p)) = map(path.clone()) else {
                    continue;
                };
                let s = match self.slot(space, p) {
                    Some(id) => Term::Slot(id),
                    None => continue,
                };
                let ops = members(&value);
                let is_operator_doc =
                    !ops.is_empty() && ops.iter().all(|(k, _)| k.starts_with('$'));
                if !is_operator_doc {
                    self.relate(&s, &value, &Scope::default());
                    continue;
                }
                for (op, v) in ops {
                    match op.as_str() {
                        "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$in" | "$nin"
                        | "$all" => self.relate(&s, &v, &Scope::default()),
                        "$elemMatch" => stack.push((path.clone(), v)),
                        _ => {}
                    }
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // The result

    /// The vocabulary: classes (roots of the union-find), trees and functions.
    pub fn finish(mut self) -> Vocabulary {
        let n = self.keys.len();
        let mut class_of_root: HashMap<usize, usize> = HashMap::new();
        let mut classes: Vec<Class> = Vec::new();
        let mut class_of = vec![0usize; n];
        for id in 0..n {
            let root = self.find(id);
            let class = *class_of_root.entry(root).or_insert_with(|| {
                classes.push(Class::default());
                classes.len() - 1
            });
            if let Some(c) = class_of.get_mut(id) {
                *c = class;
            }
            let constants = self.constants.get(id).cloned().unwrap_or_default();
            let oid = self.oid_like.get(id).copied().unwrap_or(false);
            let label = self
                .keys
                .get(id)
                .and_then(|(_, p)| p.last().cloned())
                .unwrap_or_default();
            if let Some(c) = classes.get_mut(class) {
                for v in constants {
                    if c.constants.len() < MAX_CONSTANTS * 2
                        && !c.constants.iter().any(|x| same_value(x, &v))
                    {
                        c.constants.push(v);
                    }
                }
                c.oid_like |= oid;
                if c.label.is_empty() {
                    c.label = label;
                }
            }
        }
        let mut vocab = Vocabulary {
            environments: self.environments.iter().map(|(t, _)| t.clone()).collect(),
            ..Vocabulary::default()
        };
        for (id, (space, path)) in self.keys.iter().enumerate() {
            let class = class_of.get(id).copied().unwrap_or(0);
            let root = match space {
                Space::Doc => &mut vocab.doc,
                Space::User => &mut vocab.user,
                Space::Request => &mut vocab.request,
                Space::Function => {
                    if let Some(name) = path.first() {
                        vocab.functions.push((name.clone(), class));
                    }
                    continue;
                }
            };
            let mut node = Some(root);
            for seg in path {
                node = node.and_then(|n| n.child_mut(seg));
            }
            let Some(node) = node else { continue };
            node.class = class;
            if *space == Space::Doc
                && let Some(shape) = self.shapes.get(path)
            {
                node.shape = shape.clone();
            }
        }
        vocab.classes = classes;
        vocab
    }
}

/// The name of the field that no rule names, generated where `additional_fields` judges.
pub(crate) const OTHER_FIELD: &str = "other";

/// The `(key, value)` members of a query-like operand: a document operand, or a literal document.
fn members(o: &Operand) -> Vec<(String, Operand)> {
    match o {
        Operand::Document(m) => m.clone(),
        Operand::Literal(Bson::Document(d)) => d
            .iter()
            .map(|(k, v)| (k.clone(), Operand::Literal(v.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

/// The elements of an array-like operand.
fn elements(o: &Operand) -> Vec<Operand> {
    match o {
        Operand::Array(items) => items.clone(),
        Operand::Literal(Bson::Array(items)) => {
            items.iter().map(|v| Operand::Literal(v.clone())).collect()
        }
        _ => Vec::new(),
    }
}

/// The value at `path` in `doc` (through documents only).
fn lookup(doc: &Document, path: &[String]) -> Option<Bson> {
    let (first, rest) = path.split_first()?;
    let mut v = doc.get(first)?;
    for seg in rest {
        v = match v {
            Bson::Document(d) => d.get(seg)?,
            _ => return None,
        };
    }
    Some(v.clone())
}

/// The types a schema node declares (`bsonType` and `type` together).
fn node_types(node: &SchemaNode) -> Vec<TypeName> {
    let mut out = Vec::new();
    for list in [&node.bson_types, &node.json_types].into_iter().flatten() {
        merge_types(&mut out, list);
    }
    out
}

fn merge_types(into: &mut Vec<TypeName>, from: &[TypeName]) {
    for t in from {
        if !into.contains(t) {
            into.push(*t);
        }
    }
}

/// Same type and equal value (so that `1` and `1.0` stay two constants).
pub(crate) fn same_value(a: &Bson, b: &Bson) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b) && a == b
}
