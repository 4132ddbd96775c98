//! Stage: per-document schema validation (spec §7). Input: the parsed [`Node`] tree, the
//! post-image of a write, its pre-image (`None` for inserts) and the request. Output: `Ok(())`
//! or the first [`SchemaViolation`], in document order.
//!
//! The walk follows the post-image: a schema keyword applies to the values that are present, as
//! in JSON Schema. Two additions, both fail-closed:
//! * `validate` runs at every visited node with `%%this`/`%%prev` = the node's value in the
//!   post-/pre-image, and also for a field that the write **removed** (present in the pre-image,
//!   absent in the post-image), with `%%this` absent. Otherwise deleting a field would bypass a
//!   change rule such as the documented set-once `owner_id`.
//! * an expression that fails to evaluate is a violation.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

use bson::{Bson, Document};

use super::model::{Bound, Dependency, Node, Num, TypeName, type_of};
use super::{SchemaOptions, SchemaViolation};
use crate::context::RequestContext;
use crate::value::{Bindings, bson_equal, eval_expr};

/// Validates `post` (and the change from `pre`) against the root `node`.
pub(crate) fn validate_document(
    node: &Node,
    options: SchemaOptions,
    post: &Document,
    pre: Option<&Document>,
    request: &RequestContext,
) -> Result<(), SchemaViolation> {
    let walk = Walk {
        post,
        pre,
        request,
        options,
    };
    walk.check(node, At::Doc(post), pre.map(At::Doc), &Path::Root, false)
}

/// A value being validated: the root document (not wrapped in a [`Bson`]) or a nested value.
#[derive(Clone, Copy)]
enum At<'a> {
    Doc(&'a Document),
    Val(&'a Bson),
}

impl<'a> At<'a> {
    fn document(self) -> Option<&'a Document> {
        match self {
            At::Doc(d) | At::Val(Bson::Document(d)) => Some(d),
            At::Val(_) => None,
        }
    }

    fn array(self) -> Option<&'a [Bson]> {
        match self {
            At::Val(Bson::Array(a)) => Some(a),
            _ => None,
        }
    }

    /// The value as a [`Bson`]; clones only for the root document.
    fn bson(self) -> Cow<'a, Bson> {
        match self {
            At::Doc(d) => Cow::Owned(Bson::Document(d.clone())),
            At::Val(v) => Cow::Borrowed(v),
        }
    }
}

/// The dotted path of the value being validated, as a stack-allocated list (rendered only when
/// a violation is reported).
enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (parent, segment): (&Path<'_>, &dyn fmt::Display) = match self {
            Path::Root => return Ok(()),
            Path::Key(parent, key) => (parent, key),
            Path::Index(parent, index) => (parent, index),
        };
        if matches!(parent, Path::Root) {
            write!(f, "{segment}")
        } else {
            write!(f, "{parent}.{segment}")
        }
    }
}

fn violation(path: &Path<'_>, message: impl Into<String>) -> SchemaViolation {
    SchemaViolation {
        path: path.to_string(),
        message: message.into(),
    }
}

struct Walk<'a> {
    post: &'a Document,
    pre: Option<&'a Document>,
    request: &'a RequestContext,
    options: SchemaOptions,
}

impl Walk<'_> {
    /// Validates a present value. `optional` is true for an object member that its parent does
    /// not list in `required` (null then passes when null type validation is on).
    fn check(
        &self,
        node: &Node,
        this: At<'_>,
        prev: Option<At<'_>>,
        path: &Path<'_>,
        optional: bool,
    ) -> Result<(), SchemaViolation> {
        let null_accepted =
            optional && self.options.null_type_validation && matches!(this, At::Val(Bson::Null));
        if !null_accepted {
            check_types(node.bson_types.as_deref(), "bsonType", this, path)?;
            check_types(node.json_types.as_deref(), "type", this, path)?;
            if let Some(values) = &node.enum_values {
                let value = this.bson();
                if !values.iter().any(|v| bson_equal(&value, v)) {
                    return Err(violation(path, "value is not one of the `enum` values"));
                }
            }
        }
        match this {
            At::Doc(doc) | At::Val(Bson::Document(doc)) => {
                self.check_object(node, doc, this, prev, path)?;
            }
            At::Val(Bson::Array(items)) => {
                self.check_array(node, items, prev.and_then(At::array), path)?;
            }
            At::Val(Bson::String(s)) => check_string(node, s, path)?,
            At::Val(value) => {
                if let Some(n) = number(value) {
                    check_number(node, n, path)?;
                }
            }
        }
        // A value that changed kind drops the members / items it had before.
        if let Some(before) = prev
            .and_then(At::document)
            .filter(|_| this.document().is_none())
        {
            self.removed_members(node, before, None, path)?;
        }
        if let Some(before) = prev.and_then(At::array).filter(|_| this.array().is_none()) {
            self.removed_items(node, before, 0, path)?;
        }
        self.run_validate(node, Some(this), prev, path)
    }

    fn check_object(
        &self,
        node: &Node,
        doc: &Document,
        this: At<'_>,
        prev: Option<At<'_>>,
        path: &Path<'_>,
    ) -> Result<(), SchemaViolation> {
        for name in &node.required {
            if !doc.contains_key(name) {
                return Err(violation(
                    &Path::Key(path, name),
                    "required field is missing",
                ));
            }
        }
        let count = doc.len() as u64;
        if let Some(min) = node.min_properties.filter(|min| count < *min) {
            return Err(violation(
                path,
                format!("object has {count} fields, fewer than `minProperties` {min}"),
            ));
        }
        if let Some(max) = node.max_properties.filter(|max| count > *max) {
            return Err(violation(
                path,
                format!("object has {count} fields, more than `maxProperties` {max}"),
            ));
        }
        let before = prev.and_then(At::document);
        for (key, value) in doc {
            let member = Path::Key(path, key);
            let Ok(schemas) = node.member_schemas(key) else {
                return Err(violation(
                    &member,
                    "field is not allowed (`additionalProperties` is false)",
                ));
            };
            let optional = !node.required.iter().any(|r| r == key);
            let prev_value = before.and_then(|b| b.get(key)).map(At::Val);
            for schema in schemas {
                self.check(schema, At::Val(value), prev_value, &member, optional)?;
            }
        }
        for (key, dependency) in &node.dependencies {
            if !doc.contains_key(key) {
                continue;
            }
            match dependency {
                Dependency::Fields(names) => {
                    if let Some(missing) = names.iter().find(|n| !doc.contains_key(n.as_str())) {
                        return Err(violation(
                            &Path::Key(path, missing),
                            format!("required when `{key}` is present (`dependencies`)"),
                        ));
                    }
                }
                Dependency::Schema(schema) => self.check(schema, this, prev, path, false)?,
            }
        }
        match before {
            Some(before) => self.removed_members(node, before, Some(doc), path),
            None => Ok(()),
        }
    }

    fn check_array(
        &self,
        node: &Node,
        items: &[Bson],
        before: Option<&[Bson]>,
        path: &Path<'_>,
    ) -> Result<(), SchemaViolation> {
        let count = items.len() as u64;
        if let Some(min) = node.min_items.filter(|min| count < *min) {
            return Err(violation(
                path,
                format!("array has {count} items, fewer than `minItems` {min}"),
            ));
        }
        if let Some(max) = node.max_items.filter(|max| count > *max) {
            return Err(violation(
                path,
                format!("array has {count} items, more than `maxItems` {max}"),
            ));
        }
        if node.unique_items
            && let Some((first, second)) = first_duplicate(items)
        {
            return Err(violation(
                path,
                format!("items {first} and {second} are equal (`uniqueItems`)"),
            ));
        }
        for (index, item) in items.iter().enumerate() {
            let at = Path::Index(path, index);
            match node.item_schema(index) {
                Err(()) => {
                    return Err(violation(
                        &at,
                        "item is not allowed (`additionalItems` is false)",
                    ));
                }
                Ok(None) => {}
                Ok(Some(schema)) => {
                    let prev = before.and_then(|b| b.get(index)).map(At::Val);
                    self.check(schema, At::Val(item), prev, &at, false)?;
                }
            }
        }
        match before {
            Some(before) => self.removed_items(node, before, items.len(), path),
            None => Ok(()),
        }
    }

    /// Runs the `validate` expressions governing the members of `before` that `after` lacks.
    fn removed_members(
        &self,
        node: &Node,
        before: &Document,
        after: Option<&Document>,
        path: &Path<'_>,
    ) -> Result<(), SchemaViolation> {
        if !node.validates_below {
            return Ok(());
        }
        for (key, value) in before {
            if after.is_some_and(|a| a.contains_key(key)) {
                continue;
            }
            // A forbidden member has no schema whose `validate` could run.
            if let Ok(schemas) = node.member_schemas(key) {
                for schema in schemas {
                    self.removed(schema, value, &Path::Key(path, key))?;
                }
            }
        }
        Ok(())
    }

    /// Runs the `validate` expressions governing the items of `before` from position `from`.
    fn removed_items(
        &self,
        node: &Node,
        before: &[Bson],
        from: usize,
        path: &Path<'_>,
    ) -> Result<(), SchemaViolation> {
        if !node.validates_below {
            return Ok(());
        }
        for (index, value) in before.iter().enumerate().skip(from) {
            if let Ok(Some(schema)) = node.item_schema(index) {
                self.removed(schema, value, &Path::Index(path, index))?;
            }
        }
        Ok(())
    }

    /// A value the write removed: `validate` runs with `%%this` absent, at this node and below.
    fn removed(&self, node: &Node, prev: &Bson, path: &Path<'_>) -> Result<(), SchemaViolation> {
        if !node.validates_below {
            return Ok(());
        }
        self.run_validate(node, None, Some(At::Val(prev)), path)?;
        match prev {
            Bson::Document(before) => self.removed_members(node, before, None, path),
            Bson::Array(before) => self.removed_items(node, before, 0, path),
            _ => Ok(()),
        }
    }

    fn run_validate(
        &self,
        node: &Node,
        this: Option<At<'_>>,
        prev: Option<At<'_>>,
        path: &Path<'_>,
    ) -> Result<(), SchemaViolation> {
        let Some(expr) = &node.validate else {
            return Ok(());
        };
        let this = this.map(At::bson);
        let prev = prev.map(At::bson);
        let bindings = Bindings {
            request: self.request,
            root: Some(self.post),
            prev_root: self.pre,
            this: this.as_deref(),
            prev: prev.as_deref(),
            whole: None,
        };
        match eval_expr(expr, &bindings) {
            Ok(true) => Ok(()),
            Ok(false) => Err(violation(path, "`validate` expression evaluated to false")),
            Err(e) => Err(violation(
                path,
                format!("`validate` expression failed: {e}"),
            )),
        }
    }
}

fn check_types(
    types: Option<&[TypeName]>,
    keyword: &str,
    this: At<'_>,
    path: &Path<'_>,
) -> Result<(), SchemaViolation> {
    let Some(types) = types else {
        return Ok(());
    };
    let matched = match this {
        At::Doc(_) => types
            .iter()
            .any(|t| matches!(t, TypeName::Object | TypeName::Mixed)),
        At::Val(value) => types.iter().any(|t| t.matches(value)),
    };
    if matched {
        return Ok(());
    }
    let found = match this {
        At::Doc(_) => "object",
        At::Val(value) => type_of(value),
    };
    let names: Vec<String> = types.iter().map(|t| format!("`{}`", t.name())).collect();
    let expected = match names.as_slice() {
        [one] => one.clone(),
        _ => format!("one of {}", names.join(", ")),
    };
    Err(violation(
        path,
        format!("`{keyword}` requires {expected}, found `{found}`"),
    ))
}

fn check_string(node: &Node, s: &str, path: &Path<'_>) -> Result<(), SchemaViolation> {
    if node.min_length.is_some() || node.max_length.is_some() {
        // JSON Schema counts characters (code points), not bytes.
        let length = s.chars().count() as u64;
        if let Some(min) = node.min_length.filter(|min| length < *min) {
            return Err(violation(
                path,
                format!("string has {length} characters, fewer than `minLength` {min}"),
            ));
        }
        if let Some(max) = node.max_length.filter(|max| length > *max) {
            return Err(violation(
                path,
                format!("string has {length} characters, more than `maxLength` {max}"),
            ));
        }
    }
    if let Some(pattern) = node.pattern.as_ref().filter(|p| !p.regex.is_match(s)) {
        return Err(violation(
            path,
            format!("string does not match `pattern` `{}`", pattern.source),
        ));
    }
    Ok(())
}

fn check_number(node: &Node, n: Num, path: &Path<'_>) -> Result<(), SchemaViolation> {
    if let Some(Bound { limit, exclusive }) = node.maximum {
        let ok = match compare(n, limit) {
            Some(Ordering::Less) => true,
            Some(Ordering::Equal) => !exclusive,
            _ => false,
        };
        if !ok {
            let what = if exclusive {
                "the exclusive `maximum`"
            } else {
                "`maximum`"
            };
            return Err(violation(path, format!("{n} is above {what} {limit}")));
        }
    }
    if let Some(Bound { limit, exclusive }) = node.minimum {
        let ok = match compare(n, limit) {
            Some(Ordering::Greater) => true,
            Some(Ordering::Equal) => !exclusive,
            _ => false,
        };
        if !ok {
            let what = if exclusive {
                "the exclusive `minimum`"
            } else {
                "`minimum`"
            };
            return Err(violation(path, format!("{n} is below {what} {limit}")));
        }
    }
    if let Some(divisor) = node.multiple_of
        && !is_multiple(n, divisor)
    {
        return Err(violation(
            path,
            format!("{n} is not a multiple of `multipleOf` {divisor}"),
        ));
    }
    Ok(())
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Float(x) => write!(f, "{x}"),
        }
    }
}

/// The number a numeric BSON value holds; `decimal` is read through `f64` (precision beyond a
/// double is lost; NaN, which fails every bound, when it does not parse).
fn number(value: &Bson) -> Option<Num> {
    match value {
        Bson::Int32(i) => Some(Num::Int(i64::from(*i))),
        Bson::Int64(i) => Some(Num::Int(*i)),
        Bson::Double(f) => Some(Num::Float(*f)),
        Bson::Decimal128(d) => Some(Num::Float(d.to_string().parse().unwrap_or(f64::NAN))),
        _ => None,
    }
}

/// Exact comparison of an integer and a double (no rounding of large integers through `f64`).
fn compare(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::Float(y)) => compare_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => compare_int_float(y, x).map(Ordering::reverse),
    }
}

fn compare_int_float(i: i64, f: f64) -> Option<Ordering> {
    // 2^63 as f64 (exact); every finite double in [-2^63, 2^63) has an exact i64 floor.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        return None;
    }
    if f >= TWO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let floor = f.floor();
    #[expect(
        clippy::cast_possible_truncation,
        reason = "floor is integral and within the i64 range (checked above)"
    )]
    let floor_int = floor as i64;
    Some(match i.cmp(&floor_int) {
        Ordering::Equal if f > floor => Ordering::Less,
        other => other,
    })
}

/// `multipleOf`: exact for integers; for doubles the quotient must be integral up to a relative
/// error of 1e-9 (so that `0.3` is a multiple of `0.1`).
fn is_multiple(n: Num, divisor: Num) -> bool {
    match (n, divisor) {
        (Num::Int(x), Num::Int(d)) => x.checked_rem(d).is_none_or(|r| r == 0),
        _ => {
            let q = to_f64(n) / to_f64(divisor);
            q.is_finite() && (q - q.round()).abs() <= 1e-9 * q.abs().max(1.0)
        }
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "only for non-integer arithmetic (multipleOf with a double)"
)]
fn to_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

/// The positions of the first pair of equal items (`uniqueItems`), in O(n) expected time:
/// items are bucketed by [`coarse_hash`] and compared with [`bson_equal`] only inside a bucket.
fn first_duplicate(items: &[Bson]) -> Option<(usize, usize)> {
    let mut buckets: HashMap<u64, Vec<usize>> = HashMap::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let mut hasher = DefaultHasher::new();
        coarse_hash(item, 0, &mut hasher);
        let bucket = buckets.entry(hasher.finish()).or_default();
        if let Some(first) = bucket
            .iter()
            .copied()
            .find(|i| items.get(*i).is_some_and(|other| bson_equal(other, item)))
        {
            return Some((first, index));
        }
        bucket.push(index);
    }
    None
}

/// Nesting below which [`coarse_hash`] stops looking (deeper values share a hash; still
/// correct). Documents that reach validation passed the depth guard
/// ([`crate::limits::Limits::check_document`]), so this is all of them.
const HASH_DEPTH: usize = crate::limits::DOCUMENT_DEPTH_CEILING;

/// A hash that is equal for values [`bson_equal`] considers equal.
// INVARIANT: `bson_equal(a, b)` ⇒ equal hashes. Numbers of every type hash by their `f64` value
// (MongoDB compares them numerically), strings and symbols alike, document members in any order;
// types whose equality rules are unclear here share one hash.
fn coarse_hash(value: &Bson, depth: usize, h: &mut DefaultHasher) {
    if let Some(n) = number(value) {
        let f = to_f64(n);
        let bits = if f.is_nan() {
            f64::NAN.to_bits()
        } else if f == 0.0 {
            0
        } else {
            f.to_bits()
        };
        (0u8, bits).hash(h);
        return;
    }
    match value {
        Bson::String(s) | Bson::Symbol(s) => (1u8, s).hash(h),
        Bson::Boolean(b) => (2u8, b).hash(h),
        Bson::ObjectId(o) => (3u8, o.bytes()).hash(h),
        Bson::DateTime(d) => (4u8, d.timestamp_millis()).hash(h),
        Bson::Binary(b) => (5u8, u8::from(b.subtype), &b.bytes).hash(h),
        Bson::Timestamp(t) => (6u8, t.time, t.increment).hash(h),
        Bson::Array(items) => {
            7u8.hash(h);
            if depth < HASH_DEPTH {
                for item in items {
                    coarse_hash(item, depth + 1, h);
                }
            }
        }
        Bson::Document(doc) => {
            8u8.hash(h);
            if depth < HASH_DEPTH {
                let mut sum = 0u64;
                for (key, member) in doc {
                    let mut inner = DefaultHasher::new();
                    key.hash(&mut inner);
                    coarse_hash(member, depth + 1, &mut inner);
                    sum = sum.wrapping_add(inner.finish());
                }
                sum.hash(h);
            }
        }
        // Finding 11 of issue 9: these shared one hash, so `uniqueItems` over 40,000 code
        // values compared every pair (8 s).
        Bson::JavaScriptCode(code) => (10u8, code).hash(h),
        Bson::JavaScriptCodeWithScope(code) => (11u8, &code.code).hash(h),
        Bson::RegularExpression(re) => {
            let mut options: Vec<char> = re.options.chars().collect();
            options.sort_unstable();
            (12u8, &re.pattern, options).hash(h);
        }
        Bson::DbPointer(pointer) => (13u8, format!("{pointer:?}")).hash(h),
        _ => 9u8.hash(h),
    }
}
