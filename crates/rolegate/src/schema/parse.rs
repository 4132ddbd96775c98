//! Stage: schema JSON → [`Node`] tree. Input: the `serde_json::Value` of `schema.json` (or of a
//! rule file's `schema` key) and its [`Place`]. Output: the root [`Node`], with every problem
//! pushed to [`Diagnostics`] (all of them, not just the first).
//!
//! Errors: keywords of the wrong JSON type, unknown type names, invalid regexes and Extended
//! JSON, `validate` expressions that do not parse, nesting deeper than [`MAX_DEPTH`], and a root
//! that is not an object schema. Warnings: unknown keywords (with a did-you-mean hint), JSON Schema
//! keywords App Services does not support, and keywords that have no effect where they stand.

use serde_json::{Map, Value};

use super::model::{Additional, Bound, Dependency, Items, Node, Num, Pattern, TypeName};
use crate::error::{Diagnostic, Diagnostics, Place, did_you_mean, json_kind};
use crate::expr::{Dialect, Site, parse_expr};

/// Deepest schema nesting accepted (the root is depth 0); deeper input is an error rather than a
/// stack overflow.
pub(crate) const MAX_DEPTH: usize = 64;

/// Every keyword App Services schemas accept (spec §7).
const KEYWORDS: [&str; 29] = [
    "bsonType",
    "type",
    "enum",
    "title",
    "description",
    "required",
    "properties",
    "minProperties",
    "maxProperties",
    "patternProperties",
    "additionalProperties",
    "dependencies",
    "items",
    "additionalItems",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxLength",
    "minLength",
    "pattern",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "validate",
    // Accepted and ignored: realm-cli writes these into exported schemas.
    "$schema",
    "$id",
    "id",
];

/// JSON Schema keywords that App Services schemas do not support: ignored with a warning that
/// says so (rather than a did-you-mean hint).
const UNSUPPORTED: [&str; 17] = [
    "$ref",
    "definitions",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "format",
    "default",
    "const",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "examples",
    "readOnly",
    "writeOnly",
];

/// Parses the root of a schema (see the module docs for what is reported).
pub(crate) fn parse_root(json: &Value, place: &Place, diags: &mut Diagnostics) -> Node {
    let Some(object) = json.as_object() else {
        diags.error(
            "invalid-schema",
            place.clone(),
            format!("a schema must be a JSON object, found {}", json_kind(json)),
        );
        return Node::default();
    };
    let node = Parser { diags }.node(object, place, 0);
    let mut declared = node.bson_types.iter().chain(&node.json_types).flatten();
    if declared.any(|t| *t != TypeName::Object) {
        let at = if node.bson_types.is_some() {
            place.key("bsonType")
        } else {
            place.key("type")
        };
        diags.error(
            "invalid-schema",
            at,
            "root schema must be an object schema (`bsonType: \"object\"`)",
        );
    }
    node
}

struct Parser<'d> {
    diags: &'d mut Diagnostics,
}

impl Parser<'_> {
    fn error(&mut self, place: Place, message: impl Into<String>) {
        self.diags.error("invalid-schema", place, message);
    }

    /// A nested schema: must be an object; counts toward [`MAX_DEPTH`].
    fn schema(&mut self, value: &Value, place: &Place, depth: usize) -> Node {
        if depth > MAX_DEPTH {
            self.diags.error(
                "schema-too-deep",
                place.clone(),
                format!("schema is nested more than {MAX_DEPTH} levels deep"),
            );
            return Node::default();
        }
        match value.as_object() {
            Some(object) => self.node(object, place, depth),
            None => {
                self.error(
                    place.clone(),
                    format!("expected a schema object, found {}", json_kind(value)),
                );
                Node::default()
            }
        }
    }

    fn node(&mut self, object: &Map<String, Value>, place: &Place, depth: usize) -> Node {
        let mut node = Node::default();
        for (key, value) in object {
            let at = place.key(key);
            match key.as_str() {
                "bsonType" => node.bson_types = self.types(value, &at, &TypeName::BSON_NAMES),
                "type" => {
                    node.json_types = self.types(value, &at, &TypeName::JSON_NAMES);
                }
                "enum" => node.enum_values = self.enum_values(value, &at),
                "title" => node.title = self.string(value, &at),
                "description" => node.description = self.string(value, &at),
                "required" => node.required = self.required(value, &at),
                "properties" => {
                    node.properties = self
                        .members(value, &at)
                        .map(|(name, v)| (name.clone(), self.schema(v, &at.key(name), depth + 1)))
                        .collect();
                }
                "minProperties" => node.min_properties = self.count(value, &at),
                "maxProperties" => node.max_properties = self.count(value, &at),
                "patternProperties" => {
                    node.pattern_properties = self
                        .members(value, &at)
                        .filter_map(|(source, v)| {
                            let member = at.key(source);
                            let schema = self.schema(v, &member, depth + 1);
                            self.regex(source, &member).map(|p| (p, schema))
                        })
                        .collect();
                }
                "additionalProperties" => {
                    node.additional_properties = self.additional(value, &at, depth);
                }
                "dependencies" => {
                    node.dependencies = self
                        .members(value, &at)
                        .filter_map(|(name, v)| {
                            self.dependency(v, &at.key(name), depth)
                                .map(|d| (name.clone(), d))
                        })
                        .collect();
                }
                "items" => node.items = self.items(value, &at, depth),
                "additionalItems" => node.additional_items = self.additional(value, &at, depth),
                "maxItems" => node.max_items = self.count(value, &at),
                "minItems" => node.min_items = self.count(value, &at),
                "uniqueItems" => node.unique_items = self.boolean(value, &at).unwrap_or(false),
                "maxLength" => node.max_length = self.count(value, &at),
                "minLength" => node.min_length = self.count(value, &at),
                "pattern" => {
                    node.pattern = match value.as_str() {
                        Some(source) => self.regex(source, &at),
                        None => {
                            self.error(at, "`pattern` must be a string");
                            None
                        }
                    };
                }
                "multipleOf" => {
                    node.multiple_of = self.number(value, &at).filter(|n| match *n {
                        Num::Int(i) => i > 0,
                        Num::Float(f) => f > 0.0,
                    });
                    if node.multiple_of.is_none() && value.is_number() {
                        self.error(at, "`multipleOf` must be greater than 0");
                    }
                }
                "maximum" | "minimum" => {
                    let bound = self.number(value, &at).map(|limit| Bound {
                        limit,
                        exclusive: false,
                    });
                    if key == "maximum" {
                        node.maximum = bound;
                    } else {
                        node.minimum = bound;
                    }
                }
                // Read together with `maximum` / `minimum` below.
                "exclusiveMaximum" | "exclusiveMinimum" => {}
                "validate" => {
                    node.validate = Some(parse_expr(
                        value,
                        Dialect::MongoDb,
                        Site::SchemaValidate,
                        &at,
                        self.diags,
                    ));
                    node.validate_place = Some(at);
                }
                "$schema" | "$id" | "id" => {}
                other if UNSUPPORTED.contains(&other) => self.diags.warning(
                    "unsupported-keyword",
                    at,
                    format!("`{other}` is not supported by App Services schemas and is ignored"),
                ),
                other => {
                    let mut warning = Diagnostic::warning(
                        "unknown-key",
                        at,
                        format!("unknown schema keyword `{other}` is ignored"),
                    );
                    if let Some(hint) = did_you_mean(other, &KEYWORDS) {
                        warning = warning.with_hint(format!("did you mean `{hint}`?"));
                    }
                    self.diags.push(warning);
                }
            }
        }
        self.exclusive(
            object,
            "exclusiveMaximum",
            "maximum",
            place,
            &mut node.maximum,
        );
        self.exclusive(
            object,
            "exclusiveMinimum",
            "minimum",
            place,
            &mut node.minimum,
        );
        if object.contains_key("additionalItems") && !matches!(node.items, Items::Tuple(_)) {
            self.diags.warning(
                "ineffective-keyword",
                place.key("additionalItems"),
                "`additionalItems` has no effect unless `items` is an array of schemas",
            );
        }
        if node.bson_types.is_some() && node.json_types.is_some() {
            self.diags.warning(
                "ineffective-keyword",
                place.key("type"),
                "both `bsonType` and `type` are given; a value must match both",
            );
        }
        node.validates_below =
            node.validate.is_some() || node.children().any(|c| c.validates_below);
        node
    }

    /// Applies `exclusiveMaximum` / `exclusiveMinimum` (a boolean, JSON Schema draft 4) to the
    /// bound it modifies.
    fn exclusive(
        &mut self,
        object: &Map<String, Value>,
        key: &str,
        bound_key: &str,
        place: &Place,
        bound: &mut Option<Bound>,
    ) {
        let Some(value) = object.get(key) else {
            return;
        };
        let at = place.key(key);
        let Some(flag) = value.as_bool() else {
            self.error(
                at,
                format!("`{key}` must be a boolean (it modifies `{bound_key}`)"),
            );
            return;
        };
        match bound {
            Some(bound) => bound.exclusive = flag,
            None => self.diags.warning(
                "ineffective-keyword",
                at,
                format!("`{key}` has no effect without `{bound_key}`"),
            ),
        }
    }

    /// `bsonType` / `type`: one name or a non-empty array of names.
    fn types(
        &mut self,
        value: &Value,
        place: &Place,
        names: &[(&'static str, TypeName)],
    ) -> Option<Vec<TypeName>> {
        let entries: Vec<(&Value, Place)> = match value {
            Value::Array(list) if !list.is_empty() => list
                .iter()
                .enumerate()
                .map(|(i, v)| (v, place.index(i)))
                .collect(),
            Value::Array(_) => {
                self.error(place.clone(), "a type list must not be empty");
                return None;
            }
            other => vec![(other, place.clone())],
        };
        let mut types = Vec::with_capacity(entries.len());
        for (entry, at) in entries {
            let Some(name) = entry.as_str() else {
                self.error(
                    at,
                    format!("a type name must be a string, found {}", json_kind(entry)),
                );
                continue;
            };
            let alias = std::ptr::eq(names, &TypeName::BSON_NAMES)
                .then(|| BSON_TYPE_ALIASES.iter().find(|(a, _)| *a == name))
                .flatten();
            match (names.iter().find(|(n, _)| *n == name), alias) {
                (Some((_, t)), _) => types.push(*t),
                // Deployed apps used these spellings and App Services accepted them.
                (None, Some((alias, canonical))) => {
                    types.push(*canonical);
                    self.diags.push(
                        Diagnostic::warning(
                            "bson-type-alias",
                            at,
                            format!("`bsonType: \"{alias}\"` is read as `{}`", canonical.name()),
                        )
                        .with_hint(format!("write `{}`", canonical.name())),
                    );
                }
                (None, None) => {
                    let error =
                        Diagnostic::error("invalid-schema", at, format!("unknown type `{name}`"));
                    self.diags.push(match type_hint(name, names) {
                        Some(hint) => error.with_hint(hint),
                        None => error,
                    });
                }
            }
        }
        Some(types)
    }

    fn enum_values(&mut self, value: &Value, place: &Place) -> Option<Vec<bson::Bson>> {
        let Some(list) = value.as_array() else {
            self.error(place.clone(), "`enum` must be an array");
            return None;
        };
        if list.is_empty() {
            self.error(place.clone(), "`enum` must not be empty");
        }
        let mut values = Vec::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            match bson::Bson::try_from(v.clone()) {
                Ok(b) => values.push(b),
                Err(e) => self.error(place.index(i), format!("invalid Extended JSON: {e}")),
            }
        }
        Some(values)
    }

    fn required(&mut self, value: &Value, place: &Place) -> Vec<String> {
        let Some(list) = value.as_array() else {
            self.error(place.clone(), "`required` must be an array of field names");
            return Vec::new();
        };
        list.iter()
            .enumerate()
            .filter_map(|(i, v)| match v.as_str() {
                Some(name) => Some(name.to_string()),
                None => {
                    self.error(place.index(i), "a required field name must be a string");
                    None
                }
            })
            .collect()
    }

    /// The members of an object-valued keyword (`properties`, `patternProperties`, ...).
    fn members<'v>(
        &mut self,
        value: &'v Value,
        place: &Place,
    ) -> impl Iterator<Item = (&'v String, &'v Value)> + use<'v> {
        let object = value.as_object();
        if object.is_none() {
            self.error(
                place.clone(),
                format!("expected an object, found {}", json_kind(value)),
            );
        }
        object.into_iter().flat_map(|o| o.iter())
    }

    fn additional(&mut self, value: &Value, place: &Place, depth: usize) -> Additional {
        match value {
            Value::Bool(true) => Additional::Allowed,
            Value::Bool(false) => Additional::Forbidden,
            Value::Object(_) => Additional::Schema(Box::new(self.schema(value, place, depth + 1))),
            other => {
                self.error(
                    place.clone(),
                    format!("expected a boolean or a schema, found {}", json_kind(other)),
                );
                Additional::Allowed
            }
        }
    }

    fn dependency(&mut self, value: &Value, place: &Place, depth: usize) -> Option<Dependency> {
        match value {
            Value::Array(_) => Some(Dependency::Fields(self.required(value, place))),
            Value::Object(_) => Some(Dependency::Schema(Box::new(self.schema(
                value,
                place,
                depth + 1,
            )))),
            other => {
                self.error(
                    place.clone(),
                    format!(
                        "a dependency must be an array of field names or a schema, found {}",
                        json_kind(other)
                    ),
                );
                None
            }
        }
    }

    fn items(&mut self, value: &Value, place: &Place, depth: usize) -> Items {
        match value {
            Value::Array(list) => Items::Tuple(
                list.iter()
                    .enumerate()
                    .map(|(i, v)| self.schema(v, &place.index(i), depth + 1))
                    .collect(),
            ),
            _ => Items::Each(Box::new(self.schema(value, place, depth + 1))),
        }
    }

    fn regex(&mut self, source: &str, place: &Place) -> Option<Pattern> {
        match regex::Regex::new(source) {
            Ok(regex) => Some(Pattern {
                source: source.to_string(),
                regex,
            }),
            Err(e) => {
                self.diags.error(
                    "invalid-regex",
                    place.clone(),
                    format!("invalid regular expression `{source}`: {e}"),
                );
                None
            }
        }
    }

    fn string(&mut self, value: &Value, place: &Place) -> Option<String> {
        let s = value.as_str().map(str::to_string);
        if s.is_none() {
            self.error(
                place.clone(),
                format!("expected a string, found {}", json_kind(value)),
            );
        }
        s
    }

    fn boolean(&mut self, value: &Value, place: &Place) -> Option<bool> {
        let b = value.as_bool();
        if b.is_none() {
            self.error(
                place.clone(),
                format!("expected a boolean, found {}", json_kind(value)),
            );
        }
        b
    }

    /// A non-negative integer (`minLength`, `maxItems`, ...).
    fn count(&mut self, value: &Value, place: &Place) -> Option<u64> {
        let n = value.as_u64();
        if n.is_none() {
            self.error(
                place.clone(),
                format!(
                    "expected a non-negative integer, found {}",
                    json_kind(value)
                ),
            );
        }
        n
    }

    fn number(&mut self, value: &Value, place: &Place) -> Option<Num> {
        let Value::Number(n) = value else {
            self.error(
                place.clone(),
                format!("expected a number, found {}", json_kind(value)),
            );
            return None;
        };
        Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Num::Int(i),
            (None, Some(f)) => Num::Float(f),
            (None, None) => Num::Float(f64::NAN),
        })
    }
}

/// Non-standard `bsonType` spellings found in deployed apps, read as the standard type (with a
/// warning): `boolean` → `bool`, `float` → `double`.
const BSON_TYPE_ALIASES: [(&str, TypeName); 2] =
    [("boolean", TypeName::Bool), ("float", TypeName::Double)];

/// A hint for an unknown type name `name` of `bsonType` / `type` (whose names are `names`).
fn type_hint(name: &str, names: &[(&'static str, TypeName)]) -> Option<String> {
    let is_bson_name = |n: &str| TypeName::BSON_NAMES.iter().any(|(b, _)| *b == n);
    let closest = match name {
        "integer" => return Some("use `bsonType: \"int\"` or `\"long\"`".to_string()),
        // A `bsonType` name in `type`.
        _ if is_bson_name(name) => {
            return Some(format!(
                "`{name}` is a `bsonType` name: use `bsonType: \"{name}\"`"
            ));
        }
        "boolean" => Some("bool"),
        _ => {
            let candidates: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            did_you_mean(name, &candidates)
        }
    };
    closest.map(|c| format!("did you mean `{c}`?"))
}
