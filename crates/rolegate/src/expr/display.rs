//! Stage: expression AST → canonical JSON. Input: an [`Expr`], [`Predicate`], [`Op`],
//! [`Operand`] or [`Expansion`]. Output: a `serde_json::Value` (`to_json`) and its compact text
//! (`Display`), used in explanations and error messages: `{"owner_id":"%%user.id"}`.
//!
//! Canonical form:
//! * operators use the `$` spelling (`$eq`, `$in`, `$and`, `$not`, ...), valid both in rule
//!   expressions and in MongoDB queries; value operators keep their only spelling (`%function`,
//!   `%stringToOid`, ...);
//! * expansions are written back as `%%root.a`, implicit ones as the bare field `a`;
//! * `All` with two or more clauses that each render as a one-key object with distinct keys is
//!   one object (`{"a":1,"b":2}`); otherwise `{"$and":[...]}` (`All([])` is `{}`);
//! * literals are relaxed Extended JSON, except that int64 is always `{"$numberLong": ".."}` (so
//!   the type survives a round trip) and regex literals in match position render as `$regex`.
//!
//! Round trip: for every expression `e` produced by [`parse_expr`](super::parse_expr),
//! `parse_expr(e.to_json())` gives `e` again (same dialect; checked by a property test below). In
//! expressions from [`parse_query`](super::parse_query), literal strings and field keys starting
//! with `%%` print like expansions; display is for people there, not for re-parsing as a rule.

use std::fmt;

use bson::Bson;
use serde_json::{Map, Value, json};

use crate::expr::expansion::write_expansion;
use crate::expr::parse::TYPE_ALIASES;
use crate::expr::{CmpOp, ElemMatch, Expansion, Expr, Op, Operand, Predicate, TypeSpec};

impl fmt::Display for Expansion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expansion(self, f)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            Value::Object(self.json_entries().into_iter().collect())
        )
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl Expr {
    /// The canonical JSON of this expression.
    pub fn to_json(&self) -> Value {
        match self {
            Expr::Bool(b) => Value::Bool(*b),
            Expr::All(clauses) => {
                let rendered: Vec<Value> = clauses.iter().map(Expr::to_json).collect();
                if rendered.len() != 1
                    && let Some(merged) = merge_single_key_objects(&rendered)
                {
                    return merged;
                }
                json!({ "$and": rendered })
            }
            Expr::Any(v) => json!({ "$or": v.iter().map(Expr::to_json).collect::<Vec<_>>() }),
            Expr::None(v) => json!({ "$nor": v.iter().map(Expr::to_json).collect::<Vec<_>>() }),
            Expr::Not(e) => json!({ "$not": e.to_json() }),
            Expr::Test { subject, predicate } => {
                let mut m = Map::new();
                m.insert(subject.to_string(), predicate.to_json());
                Value::Object(m)
            }
        }
    }
}

/// `{k1: v1}, {k2: v2}, ...` → `{k1: v1, k2: v2, ...}` when every value is a one-key object and
/// the keys are distinct (so that parsing the merged object gives the same clauses back).
fn merge_single_key_objects(values: &[Value]) -> Option<Value> {
    let mut merged = Map::new();
    for v in values {
        let Value::Object(m) = v else { return None };
        let mut it = m.iter();
        let (Some((k, v)), None) = (it.next(), it.next()) else {
            return None;
        };
        if merged.insert(k.clone(), v.clone()).is_some() {
            return None;
        }
    }
    Some(Value::Object(merged))
}

impl Predicate {
    /// The canonical JSON of the value of a subject key.
    pub fn to_json(&self) -> Value {
        match self {
            Predicate::Matches(o) => o.to_json(),
            Predicate::Ops(ops) => ops_to_json(ops),
        }
    }
}

/// An operator document; operators that would repeat a key are spelled as a `$and`.
fn ops_to_json(ops: &[Op]) -> Value {
    let mut m = Map::new();
    for op in ops {
        for (k, v) in op.json_entries() {
            if m.insert(k, v).is_some() {
                let parts: Vec<Value> = ops
                    .iter()
                    .map(|op| Value::Object(op.json_entries().into_iter().collect()))
                    .collect();
                return json!({ "$and": parts });
            }
        }
    }
    Value::Object(m)
}

impl Op {
    /// The key(s) and value(s) of this operator in an operator document (`$regex` may come with
    /// `$options`).
    pub fn json_entries(&self) -> Vec<(String, Value)> {
        let one = |k: &str, v: Value| vec![(k.to_string(), v)];
        let preds = |ps: &[Predicate]| Value::Array(ps.iter().map(Predicate::to_json).collect());
        match self {
            Op::Cmp(op, o) => one(cmp_key(*op), o.to_json()),
            Op::In(o) => one("$in", o.to_json()),
            Op::Nin(o) => one("$nin", o.to_json()),
            Op::Exists(o) => one("$exists", o.to_json()),
            Op::All(ps) => one("$and", preds(ps)),
            Op::Any(ps) => one("$or", preds(ps)),
            Op::None(ps) => one("$nor", preds(ps)),
            Op::Not(p) => one("$not", p.to_json()),
            Op::AllOf(o) => one("$all", o.to_json()),
            Op::Size(o) => one("$size", o.to_json()),
            Op::ElemMatch(em) => one(
                "$elemMatch",
                match em.as_ref() {
                    ElemMatch::Ops(ops) => ops_to_json(ops),
                    ElemMatch::Query(e) => e.to_json(),
                },
            ),
            Op::Type(specs) => {
                let names: Vec<Value> = specs
                    .iter()
                    .map(|t| Value::String(type_name(*t).to_string()))
                    .collect();
                match names.as_slice() {
                    [single] => one("$type", single.clone()),
                    _ => one("$type", Value::Array(names)),
                }
            }
            Op::Regex(r) => {
                let mut v = one("$regex", Value::String(r.pattern.clone()));
                if !r.options.is_empty() {
                    v.push(("$options".to_string(), Value::String(r.options.clone())));
                }
                v
            }
            Op::Mod { divisor, remainder } => one("$mod", json!([divisor, remainder])),
            Op::Bits { test, positions } => one(test.name(), json!(positions)),
        }
    }
}

fn cmp_key(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "$eq",
        CmpOp::Ne => "$ne",
        CmpOp::Gt => "$gt",
        CmpOp::Gte => "$gte",
        CmpOp::Lt => "$lt",
        CmpOp::Lte => "$lte",
    }
}

/// The MongoDB alias of a `$type` argument (`"string"`, `"number"`, ...).
pub fn type_name(t: TypeSpec) -> &'static str {
    match t {
        TypeSpec::Number => "number",
        TypeSpec::Exact(e) => TYPE_ALIASES
            .iter()
            .find(|(_, t)| *t == e)
            // INVARIANT: TYPE_ALIASES names every `ElementType` variant.
            .map_or("unknown", |(n, _)| *n),
    }
}

impl Operand {
    /// The canonical JSON of this operand.
    pub fn to_json(&self) -> Value {
        match self {
            Operand::Literal(b) => literal_to_json(b),
            Operand::Expansion(e) => Value::String(e.to_string()),
            Operand::Array(v) => Value::Array(v.iter().map(Operand::to_json).collect()),
            Operand::Document(v) => {
                Value::Object(v.iter().map(|(k, o)| (k.clone(), o.to_json())).collect())
            }
            Operand::Function { name, arguments } => json!({
                "%function": {
                    "name": name,
                    "arguments": arguments.iter().map(Operand::to_json).collect::<Vec<_>>(),
                }
            }),
            Operand::StringToOid(o) => json!({ "%stringToOid": o.to_json() }),
            Operand::OidToString(o) => json!({ "%oidToString": o.to_json() }),
            Operand::StringToUuid(o) => json!({ "%stringToUuid": o.to_json() }),
            Operand::UuidToString(o) => json!({ "%uuidToString": o.to_json() }),
        }
    }
}

/// A BSON literal as relaxed Extended JSON, keeping int64 as `{"$numberLong": ".."}` so that
/// reading it back gives the same type.
pub fn literal_to_json(b: &Bson) -> Value {
    match b {
        Bson::Int64(i) => json!({ "$numberLong": i.to_string() }),
        Bson::Array(a) => Value::Array(a.iter().map(literal_to_json).collect()),
        Bson::Document(d) => Value::Object(
            d.iter()
                .map(|(k, v)| (k.clone(), literal_to_json(v)))
                .collect(),
        ),
        other => other.clone().into_relaxed_extjson(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Diagnostics, Place};
    use crate::expr::{Dialect, Site, parse_expr};
    use proptest::prelude::*;

    fn parse(v: &Value) -> Expr {
        let mut d = Diagnostics::default();
        let e = parse_expr(v, Dialect::MongoDb, Site::Any, &Place::default(), &mut d);
        assert!(!d.has_errors(), "{v}: {d:?}");
        e
    }

    fn round_trip(v: Value) {
        let e = parse(&v);
        let shown = e.to_json();
        let again = parse(&shown);
        assert_eq!(e, again, "{v} → {shown}");
        assert_eq!(shown.to_string(), e.to_string());
    }

    #[test]
    fn canonical_text() {
        let e = parse(&json!({"owner_id": "%%user.id"}));
        assert_eq!(e.to_string(), r#"{"owner_id":"%%user.id"}"#);
        let e = parse(&json!({"%%args.n": {"%and": [{"%gt": 0}, {"$lte": 42}]}}));
        assert_eq!(
            e.to_string(),
            r#"{"%%args.n":{"$and":[{"$gt":0},{"$lte":42}]}}"#
        );
        let e = parse(&json!({"%or": [{"a": 1}, {"b": {"$numberLong": "2"}}]}));
        assert_eq!(
            e.to_string(),
            r#"{"$or":[{"a":1},{"b":{"$numberLong":"2"}}]}"#
        );
        let e = parse(&json!({"%%true": {"%function": {"name": "f"}}}));
        assert_eq!(
            e.to_string(),
            r#"{"%%true":{"%function":{"name":"f","arguments":[]}}}"#
        );
        let e = parse(&json!({"t": {"%type": ["int", 18, "number"]}}));
        assert_eq!(e.to_string(), r#"{"t":{"$type":["int","long","number"]}}"#);
        assert_eq!(parse(&json!({})).to_string(), "{}");
        assert_eq!(parse(&json!(false)).to_string(), "false");
    }

    #[test]
    fn all_renders_without_losing_structure() {
        round_trip(json!({"$and": [{"a": 1}]}));
        round_trip(json!({"$and": [{"a": 1}, {"a": 2}]}));
        round_trip(json!({"$and": [{"a": 1, "b": 2}, {"c": 3}]}));
        round_trip(json!({"$and": [{}, {"c": 3}]}));
        round_trip(json!({"$and": [true, {"c": 3}]}));
        round_trip(json!({"$or": [{"a": 1}], "%or": [{"b": 1}]}));
        round_trip(json!({"a": 1, "$and": [{"b": 1}]}));
    }

    #[test]
    fn literals_round_trip() {
        round_trip(json!({"a": {"$oid": "5f1f1f1f1f1f1f1f1f1f1f1f"}}));
        round_trip(json!({"a": {"$date": "2020-01-01T00:00:00Z"}}));
        round_trip(json!({"a": {"$date": {"$numberLong": "-5"}}}));
        round_trip(json!({"a": {"$numberDecimal": "1.50"}}));
        round_trip(json!({"a": {"$numberDouble": "-Infinity"}}));
        let nan = parse(&json!({"a": {"$numberDouble": "NaN"}}));
        assert_eq!(nan.to_string(), r#"{"a":{"$numberDouble":"NaN"}}"#);
        round_trip(json!({"a": {"$numberDouble": "2"}}));
        round_trip(json!({"a": 2.5}));
        round_trip(json!({"a": {"$numberLong": "7"}}));
        round_trip(json!({"a": [1, {"b": {"$numberLong": "7"}}, null]}));
        round_trip(json!({"a": {"b": "%%user.id", "c": [1, "%%user.id"]}}));
        round_trip(json!({"a": {"$regularExpression": {"pattern": "^x", "options": "i"}}}));
        round_trip(json!({"a": {"$uuid": "00112233-4455-6677-8899-aabbccddeeff"}}));
        round_trip(json!({"a": {"$binary": {"base64": "AQI=", "subType": "00"}}}));
        round_trip(json!({"a": {"$timestamp": {"t": 1, "i": 2}}}));
        round_trip(json!({"a": {"$minKey": 1}, "b": {"$maxKey": 1}}));
        round_trip(json!({"a": {"$eq": {"$gt": 1}}}));
        round_trip(json!({"a": {"x": {"$gt": 1}}}));
        round_trip(json!({"a": {}}));
    }

    #[test]
    fn operators_round_trip() {
        round_trip(json!({"a": {"$regex": "^a.c$", "$options": "si"}}));
        round_trip(json!({"a": {"$not": {"$regex": "x"}}}));
        round_trip(json!({"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}}));
        round_trip(json!({"a": {"$elemMatch": {"x": 1, "y": {"$in": ["%%user.id"]}}}}));
        round_trip(json!({"a": {"$elemMatch": {"$or": [{"x": 1}, {"y": 2}]}}}));
        round_trip(json!({"a": {"$elemMatch": {}}}));
        round_trip(json!({"a": {"$mod": [4, 1]}, "b": {"$size": 2}, "c": {"$all": [1]}}));
        round_trip(json!({"a": {"$or": [1, {"$gt": 5}]}}));
        round_trip(json!({"%not": {"a": 1}}));
        round_trip(json!({"%nor": [{"a": 1}, true]}));
        round_trip(json!({"_id": {"%stringToOid": "%%user.id"}}));
        round_trip(json!({"a": {"%oidToString": {"$oid": "5f1f1f1f1f1f1f1f1f1f1f1f"}}}));
        round_trip(json!({"%%prevRoot": {"%exists": false}}));
    }

    // -- property: parse(display(parse(j))) == parse(j) for generated valid expressions --------

    fn subject() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b.c".to_string()),
            Just("x-y z.0".to_string()),
            Just("%%user.id".to_string()),
            Just("%%root.owner".to_string()),
            Just("%%true".to_string()),
            Just("%%request.requestHeaders.X-Api-Version".to_string()),
            "[a-z]{1,6}(\\.[a-z0-9_]{1,4}){0,2}",
        ]
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|i| json!(i)),
            any::<i64>().prop_map(|i| json!(i)),
            any::<i64>().prop_map(|i| json!({"$numberLong": i.to_string()})),
            (-1.0e9f64..1.0e9).prop_map(|f| json!(f)),
            Just(Value::Null),
            "([a-z ][a-z %]{0,5})?".prop_map(Value::String),
            Just(json!("%%user.custom_data.ids")),
            Just(json!("%%values.x")),
            Just(json!({"$oid": "5f1f1f1f1f1f1f1f1f1f1f1f"})),
            Just(json!({"$date": "2021-03-04T05:06:07.008Z"})),
            Just(json!({"$numberDecimal": "12.5"})),
            Just(json!({"%stringToOid": "%%user.id"})),
            Just(json!({"%function": {"name": "f", "arguments": [1, "%%user.id"]}})),
        ]
    }

    fn operand() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec(("[a-z]{1,3}", inner), 1..3)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn array_operand() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
            Just(json!("%%values.list")),
        ]
    }

    fn op_doc() -> impl Strategy<Value = Value> {
        let single = prop_oneof![
            (
                prop::sample::select(vec!["$eq", "%ne", "$gt", "%gte", "$lt", "$lte"]),
                operand()
            )
                .prop_map(|(k, v)| (k.to_string(), v)),
            (
                prop::sample::select(vec!["$in", "%nin", "$all"]),
                array_operand()
            )
                .prop_map(|(k, v)| (k.to_string(), v)),
            any::<bool>().prop_map(|b| ("%exists".to_string(), json!(b))),
            (0u8..5).prop_map(|n| ("$size".to_string(), json!(n))),
            prop::sample::select(vec!["string", "int", "number", "objectId"])
                .prop_map(|t| ("%type".to_string(), json!(t))),
            (1i64..9, 0i64..9).prop_map(|(d, r)| ("$mod".to_string(), json!([d, r]))),
            Just(("$not".to_string(), json!({"$gt": 3}))),
            Just(("$elemMatch".to_string(), json!({"k": "%%user.id"}))),
        ];
        prop::collection::vec(single, 1..3).prop_map(|entries| {
            let mut m = Map::new();
            for (k, v) in entries {
                // Skip `$eq`/`%eq`-style duplicates (a parse error by design).
                let name = k.trim_start_matches(['$', '%']).to_string();
                if !m
                    .keys()
                    .any(|k: &String| k.trim_start_matches(['$', '%']) == name)
                {
                    m.insert(k, v);
                }
            }
            Value::Object(m)
        })
    }

    fn predicate() -> impl Strategy<Value = Value> {
        prop_oneof![
            operand(),
            op_doc(),
            prop::collection::vec(op_doc(), 1..3).prop_map(|v| json!({"%and": v})),
        ]
    }

    fn expression() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            prop::collection::vec((subject(), predicate()), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                (
                    prop::sample::select(vec!["%and", "$or", "%nor"]),
                    prop::collection::vec(inner.clone(), 1..3)
                )
                    .prop_map(|(k, v)| json!({ k: v })),
                inner.clone().prop_map(|e| json!({"%not": e})),
                (
                    prop::collection::vec((subject(), predicate()), 0..2),
                    prop::collection::vec(inner, 1..3)
                )
                    .prop_map(|(kv, ors)| {
                        let mut m: Map<String, Value> = kv.into_iter().collect();
                        m.insert("$or".to_string(), Value::Array(ors));
                        Value::Object(m)
                    }),
            ]
        })
    }

    proptest! {
        #[test]
        fn display_round_trips(v in expression()) {
            let mut d = Diagnostics::default();
            let e = parse_expr(&v, Dialect::MongoDb, Site::Any, &Place::default(), &mut d);
            prop_assert!(!d.has_errors(), "{} gave {:?}", v, d);
            let shown = e.to_json();
            let mut d2 = Diagnostics::default();
            let again = parse_expr(&shown, Dialect::MongoDb, Site::Any, &Place::default(), &mut d2);
            prop_assert!(!d2.has_errors(), "{} gave {:?}", shown, d2);
            prop_assert_eq!(&e, &again, "{} → {}", v, shown);
            prop_assert_eq!(again.to_json(), shown);
        }
    }
}
