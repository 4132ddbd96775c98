//! Stage: collection schemas (spec §7). Input: `schema.json` (or a rule file's `schema` key) as
//! `serde_json::Value`. Output: a [`Schema`] that validates the result of every write
//! (`SchemaValidationFailedWrite`); the enforcement point calls [`Schema::validate`] after the
//! permission checks, with the post-image and pre-image of each affected document.
//!
//! ```text
//! schema JSON ──parse::parse_root──▶ model::Node tree ──validate::validate_document──▶ Ok | SchemaViolation
//! ```
//!
//! What a schema checks, and the decisions where the spec is silent, are in the documentation
//! of [`Schema`].

pub(crate) mod model;
mod parse;
#[cfg(test)]
mod tests;
mod validate;

use bson::Document;

use crate::context::RequestContext;
use crate::error::{Diagnostics, Place};

/// App-level settings that change validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SchemaOptions {
    /// App setting "Null Type Schema Validation" (default off): when on, `null` is accepted for
    /// object members not listed in their parent's `required` whatever their declared type.
    /// Required members are never nullable.
    pub null_type_validation: bool,
}

/// A parsed App Services schema (JSON Schema with `bsonType` and `validate` expressions): the
/// collection's `schema.json`, checked against the result of every write after the permission
/// checks ([`Schema::validate`]); a document that fails it fails the whole request with
/// `SchemaValidationFailedWrite`.
///
/// The default schema accepts every document.
///
/// An App Services schema is JSON Schema (draft 4 keywords) with `bsonType` and with `validate`
/// rule expressions in any node. Decisions where the spec is silent:
///
/// * **Type names.** `int` = Int32, `long` = Int64, `double` = Double, `decimal` = Decimal128,
///   `number` = any of those four; `uuid` = Binary subtype 4, `binData` = any Binary (a UUID too);
///   `mixed` = any value, `null` included. `type: "boolean"` is `bool`; `type: "integer"` is an
///   error (App Services does not support it). A node with both `bsonType` and `type` (a warning)
///   must match both.
/// * **Null.** `null` is its own type: a `null` value passes only a node whose types include
///   `null` or `mixed` (or that declares no type). With the app setting
///   "Null Type Schema Validation" on, `null` also passes the type and `enum`
///   checks of an object member that its parent does not list in `required`; a required member is
///   never implicitly nullable (an explicit `null` in its `bsonType` is still honoured). Array
///   items are not members, so the setting does not apply to them.
/// * **Absent fields.** A keyword validates only values that are present (JSON Schema), so an
///   absent optional field is not type-checked. Its `validate` expression runs, however, when the
///   write removed the field (present in the pre-image, absent in the post-image) — with `%%this`
///   absent and `%%prev` the old value — so that deleting a field cannot bypass a change rule
///   like the documented set-once `owner_id` (`%%prev` exists-false or `%%prev == %%this`).
///   A field absent from both images is not validated.
/// * **Bindings of `validate`.** `%%root` = post-image, `%%prevRoot` = pre-image (absent on
///   insert), `%%this` / `%%prev` = the node's value in the post-/pre-image, found by the same
///   path (object key or array position); for the root node they are the whole documents.
///   A `validate` that evaluates to false **or fails to evaluate** is a violation (fail closed).
/// * **Numbers.** Integers and doubles compare exactly; `decimal` values are compared through
///   `f64`. `multipleOf` is exact for integers and tolerant to a relative error of 1e-9 for
///   doubles (`0.3` is a multiple of `0.1`). `minLength`/`maxLength` count code points.
///   `pattern`/`patternProperties` use the `regex` crate, unanchored (as JSON Schema).
/// * **`enum` / `uniqueItems`** compare with [`bson_equal`](crate::mql::bson_equal) (MongoDB
///   equality); `enum` members are Extended JSON.
/// * **Root.** The root must be an object schema: a root declaring any other type is an error;
///   a root without a type (`{"title": .., "properties": ..}`) is accepted.
/// * **Hostile input.** Nesting deeper than 64 schema levels is an error; JSON Schema keywords
///   App Services lacks (`anyOf`, `$ref`, ...) and unknown keys are ignored with a warning.
///   A schema parsed with errors rejects every document (fail closed) in case a caller ignores
///   the diagnostics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    root: model::Node,
    options: SchemaOptions,
    /// Parsing reported an error: [`Schema::validate`] rejects everything.
    broken: bool,
}

/// The members a schema declares for one object ([`Schema::members_at`]).
#[derive(Debug, Clone, Copy)]
pub struct Members<'s> {
    node: &'s model::Node,
}

impl<'s> Members<'s> {
    /// The names in `properties`, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'s str> + 's {
        self.node.properties.keys().map(String::as_str)
    }

    /// Whether `name` is in `properties` or matches a `patternProperties` pattern.
    pub fn declares(&self, name: &str) -> bool {
        self.node.properties.contains_key(name)
            || self
                .node
                .pattern_properties
                .iter()
                .any(|(p, _)| p.regex.is_match(name))
    }
}

/// A document does not conform to the collection schema (the whole write fails with
/// `SchemaValidationFailedWrite`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.path, .message))]
pub struct SchemaViolation {
    /// Dotted path of the offending value (`address.zip`, `tags.2`); empty for the document.
    pub path: String,
    /// Lowercase description, such as "`bsonType` requires `string`, found `int`".
    pub message: String,
}

fn render(path: &str, message: &str) -> String {
    if path.is_empty() {
        format!("document: {message}")
    } else {
        format!("field `{path}`: {message}")
    }
}

impl Schema {
    /// Parses a schema with the app setting "Null Type Schema Validation" off, pushing every
    /// problem (an error or a warning, with its JSON path) to `diags`. Always returns a schema;
    /// when `diags` got an error it rejects every document.
    pub fn parse(json: &serde_json::Value, place: &Place, diags: &mut Diagnostics) -> Schema {
        Schema::parse_with_options(json, SchemaOptions::default(), place, diags)
    }

    /// [`Schema::parse`] with explicit app settings.
    pub fn parse_with_options(
        json: &serde_json::Value,
        options: SchemaOptions,
        place: &Place,
        diags: &mut Diagnostics,
    ) -> Schema {
        let errors_before = diags.errors().count();
        let root = parse::parse_root(json, place, diags);
        Schema {
            root,
            options,
            broken: diags.errors().count() > errors_before,
        }
    }

    /// This schema with other app settings.
    #[must_use]
    pub fn with_options(mut self, options: SchemaOptions) -> Schema {
        self.options = options;
        self
    }

    /// The app settings this schema validates with.
    pub fn options(&self) -> SchemaOptions {
        self.options
    }

    /// The root node, for the generators of `rolegate::testing` (types, `enum`, `required`,
    /// nesting of the documents they make).
    #[cfg(feature = "testing-gen")]
    pub(crate) fn root(&self) -> &model::Node {
        &self.root
    }

    /// The root `title`, if any.
    pub fn title(&self) -> Option<&str> {
        self.root.title.as_deref()
    }

    /// Calls `f` with the name of every `%function` call in the schema's `validate`
    /// expressions, and the place (file and JSON path) of the `validate` that holds it. Used by
    /// the loader's `undefined-function` check.
    pub fn visit_functions<'s>(&'s self, f: &mut dyn FnMut(&'s str, &'s Place)) {
        // An explicit stack: schemas nest at most 64 levels, but nothing here needs recursion.
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            if let (Some(expr), Some(place)) = (&node.validate, &node.validate_place) {
                expr.visit_functions(&mut |name| f(name, place));
            }
            stack.extend(node.children());
        }
    }

    /// The members the schema declares for the object at `path` (property names from the
    /// root; an array whose `items` is one schema is crossed to that schema, as field rules
    /// apply to array elements), or `None` when the schema does not describe that object's
    /// members (no node there, or a node with neither `properties` nor `patternProperties`).
    /// Used by `rolegate check` to find field rules that name fields the schema lacks.
    pub fn members_at(&self, path: &[&str]) -> Option<Members<'_>> {
        fn element(node: &model::Node) -> Option<&model::Node> {
            match &node.items {
                model::Items::Each(item) if node.properties.is_empty() => Some(item),
                _ => None,
            }
        }
        let mut node = &self.root;
        for segment in path {
            node = element(node).unwrap_or(node).properties.get(*segment)?;
        }
        let node = element(node).unwrap_or(node);
        (!node.properties.is_empty() || !node.pattern_properties.is_empty())
            .then_some(Members { node })
    }

    /// Validates the post-image `post` of a write (and, for `validate` expressions, the change
    /// from the pre-image `pre`, `None` for inserts) under `request`. Returns the first violation
    /// in document order.
    pub fn validate(
        &self,
        post: &Document,
        pre: Option<&Document>,
        request: &RequestContext,
    ) -> Result<(), SchemaViolation> {
        if self.broken {
            return Err(SchemaViolation {
                path: String::new(),
                message: "the collection schema is invalid".to_string(),
            });
        }
        validate::validate_document(&self.root, self.options, post, pre, request)
    }
}
