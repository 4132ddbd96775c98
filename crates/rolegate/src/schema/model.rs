//! Stage: the parsed form of one schema node. Input: built by [`super::parse`] from JSON.
//! Output: the tree that [`super::validate`] walks, one [`Node`] per JSON schema object.
//!
//! Every keyword is already type-checked and compiled here (regexes, Extended JSON `enum` values,
//! `validate` expressions), so validating a document does no parsing.

use std::collections::BTreeMap;

use bson::Bson;

use crate::error::Place;
use crate::expr::Expr;

/// A type name of `bsonType` (or, mapped, of `type`), spec §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TypeName {
    Double,
    String,
    Object,
    Array,
    ObjectId,
    Date,
    Bool,
    Null,
    Regex,
    Int,
    Timestamp,
    Long,
    Decimal,
    /// Binary subtype 4.
    Uuid,
    /// Binary of any subtype.
    BinData,
    /// Anything, `null` included.
    Mixed,
    /// `double`, `int`, `long` or `decimal`.
    Number,
}

impl TypeName {
    /// The `bsonType` names, in the order the docs list them (also the did-you-mean candidates).
    pub(crate) const BSON_NAMES: [(&'static str, TypeName); 17] = [
        ("double", TypeName::Double),
        ("string", TypeName::String),
        ("object", TypeName::Object),
        ("array", TypeName::Array),
        ("objectId", TypeName::ObjectId),
        ("date", TypeName::Date),
        ("bool", TypeName::Bool),
        ("null", TypeName::Null),
        ("regex", TypeName::Regex),
        ("int", TypeName::Int),
        ("timestamp", TypeName::Timestamp),
        ("long", TypeName::Long),
        ("decimal", TypeName::Decimal),
        ("uuid", TypeName::Uuid),
        ("binData", TypeName::BinData),
        ("mixed", TypeName::Mixed),
        ("number", TypeName::Number),
    ];

    /// The JSON Schema `type` names (no `integer`: App Services does not support it).
    pub(crate) const JSON_NAMES: [(&'static str, TypeName); 6] = [
        ("object", TypeName::Object),
        ("array", TypeName::Array),
        ("number", TypeName::Number),
        ("boolean", TypeName::Bool),
        ("string", TypeName::String),
        ("null", TypeName::Null),
    ];

    /// The `bsonType` spelling of this type (used in violation messages).
    pub(crate) fn name(self) -> &'static str {
        Self::BSON_NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("mixed", |(n, _)| n)
    }

    /// Whether `value` is of this type.
    pub(crate) fn matches(self, value: &Bson) -> bool {
        match self {
            TypeName::Double => matches!(value, Bson::Double(_)),
            TypeName::String => matches!(value, Bson::String(_)),
            TypeName::Object => matches!(value, Bson::Document(_)),
            TypeName::Array => matches!(value, Bson::Array(_)),
            TypeName::ObjectId => matches!(value, Bson::ObjectId(_)),
            TypeName::Date => matches!(value, Bson::DateTime(_)),
            TypeName::Bool => matches!(value, Bson::Boolean(_)),
            TypeName::Null => matches!(value, Bson::Null),
            TypeName::Regex => matches!(value, Bson::RegularExpression(_)),
            TypeName::Int => matches!(value, Bson::Int32(_)),
            TypeName::Timestamp => matches!(value, Bson::Timestamp(_)),
            TypeName::Long => matches!(value, Bson::Int64(_)),
            TypeName::Decimal => matches!(value, Bson::Decimal128(_)),
            TypeName::Uuid => {
                matches!(value, Bson::Binary(b) if b.subtype == bson::spec::BinarySubtype::Uuid)
            }
            TypeName::BinData => matches!(value, Bson::Binary(_)),
            TypeName::Mixed => true,
            TypeName::Number => matches!(
                value,
                Bson::Double(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Decimal128(_)
            ),
        }
    }
}

/// The App Services / `$jsonSchema` name of a value's BSON type, for violation messages.
pub(crate) fn type_of(value: &Bson) -> &'static str {
    match value {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Array(_) => "array",
        Bson::Document(_) => "object",
        Bson::Boolean(_) => "bool",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Int64(_) => "long",
        Bson::Timestamp(_) => "timestamp",
        Bson::Binary(b) if b.subtype == bson::spec::BinarySubtype::Uuid => "uuid",
        Bson::Binary(_) => "binData",
        Bson::ObjectId(_) => "objectId",
        Bson::DateTime(_) => "date",
        Bson::Symbol(_) => "symbol",
        Bson::Decimal128(_) => "decimal",
        Bson::Undefined => "undefined",
        Bson::MaxKey => "maxKey",
        Bson::MinKey => "minKey",
        Bson::DbPointer(_) => "dbPointer",
    }
}

/// A compiled `pattern` / `patternProperties` regex; equal when the source is equal.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub source: String,
    pub regex: regex::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// A number of a keyword (`maximum`, `multipleOf`) or of a document value, compared exactly
/// between integers and doubles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

/// `maximum` / `minimum` with its `exclusiveMaximum` / `exclusiveMinimum` flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bound {
    pub limit: Num,
    pub exclusive: bool,
}

/// `additionalProperties` / `additionalItems`: `true` (the default), `false`, or a schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Additional {
    #[default]
    Allowed,
    Forbidden,
    Schema(Box<Node>),
}

/// `items`: one schema for every element, or one per position (tuple form).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Items {
    #[default]
    Any,
    Each(Box<Node>),
    Tuple(Vec<Node>),
}

/// One member of `dependencies`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Dependency {
    /// `"a": ["b", "c"]`: when `a` is present, `b` and `c` must be too.
    Fields(Vec<String>),
    /// `"a": {schema}`: when `a` is present, the whole object must match the schema.
    Schema(Box<Node>),
}

/// One schema node: every keyword of spec §7, parsed. Absent keywords are `None` / empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Node {
    /// `bsonType` (a value must match one of them).
    pub bson_types: Option<Vec<TypeName>>,
    /// `type`, mapped to [`TypeName`]s (checked in addition to `bsonType`).
    pub json_types: Option<Vec<TypeName>>,
    /// `enum`, converted from Extended JSON.
    pub enum_values: Option<Vec<Bson>>,
    /// `title` and `description` (metadata only).
    pub title: Option<String>,
    pub description: Option<String>,

    // Objects.
    pub required: Vec<String>,
    /// `properties` (sorted by name for lookup; violations follow document order anyway).
    pub properties: BTreeMap<String, Node>,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub pattern_properties: Vec<(Pattern, Node)>,
    pub additional_properties: Additional,
    pub dependencies: Vec<(String, Dependency)>,

    // Arrays.
    pub items: Items,
    pub additional_items: Additional,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub unique_items: bool,

    // Strings.
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub pattern: Option<Pattern>,

    // Numbers.
    pub multiple_of: Option<Num>,
    pub maximum: Option<Bound>,
    pub minimum: Option<Bound>,

    /// `validate`: a rule expression with `%%this`/`%%prev`/`%%root`/`%%prevRoot`.
    pub validate: Option<Expr>,
    /// Where `validate` is (file and JSON path), for diagnostics about its expression.
    pub validate_place: Option<Place>,
    /// True when this node or a node below it has `validate` (set by the parser; lets the
    /// validator skip the walk over removed fields when there is nothing to run there).
    pub validates_below: bool,
}

impl Node {
    /// The schemas nested directly in this node.
    pub(crate) fn children(&self) -> impl Iterator<Item = &Node> {
        let additional = [&self.additional_properties, &self.additional_items]
            .into_iter()
            .filter_map(|a| match a {
                Additional::Schema(node) => Some(&**node),
                _ => None,
            });
        let items: &[Node] = match &self.items {
            Items::Any => &[],
            Items::Each(node) => std::slice::from_ref(&**node),
            Items::Tuple(nodes) => nodes,
        };
        let dependencies = self.dependencies.iter().filter_map(|(_, d)| match d {
            Dependency::Schema(node) => Some(&**node),
            Dependency::Fields(_) => None,
        });
        self.properties
            .values()
            .chain(self.pattern_properties.iter().map(|(_, n)| n))
            .chain(additional)
            .chain(items)
            .chain(dependencies)
    }

    /// The schemas that govern member `key` of an object at this node: `properties[key]` and
    /// every matching `patternProperties` schema; `additionalProperties` when none of those
    /// name the key (`Err(())` when that is `false`).
    pub(crate) fn member_schemas<'n>(
        &'n self,
        key: &'n str,
    ) -> Result<impl Iterator<Item = &'n Node> + 'n, ()> {
        let named = self.properties.get(key);
        let patterns = self
            .pattern_properties
            .iter()
            .filter(move |(p, _)| p.regex.is_match(key))
            .map(|(_, node)| node);
        let additional = if named.is_some() || patterns.clone().next().is_some() {
            None
        } else {
            match &self.additional_properties {
                Additional::Allowed => None,
                Additional::Forbidden => return Err(()),
                Additional::Schema(node) => Some(&**node),
            }
        };
        Ok(named.into_iter().chain(patterns).chain(additional))
    }

    /// The schema of element `index` of an array at this node (`Err(())` when
    /// `additionalItems` is `false` and the tuple form has no position for it).
    pub(crate) fn item_schema(&self, index: usize) -> Result<Option<&Node>, ()> {
        match &self.items {
            Items::Any => Ok(None),
            Items::Each(node) => Ok(Some(node)),
            Items::Tuple(nodes) => match nodes.get(index) {
                Some(node) => Ok(Some(node)),
                None => match &self.additional_items {
                    Additional::Allowed => Ok(None),
                    Additional::Forbidden => Err(()),
                    Additional::Schema(node) => Ok(Some(node)),
                },
            },
        }
    }
}
