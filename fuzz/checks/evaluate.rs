//! Fuzz target `evaluate`: arbitrary rules, document and user → every decision, through both
//! engines.
//!
//! The input bytes drive a small generator (no JSON parsing to get past): a rules file of one to
//! three roles (apply_when, document filters, document- and field-level permissions with nested
//! fields, insert/delete/search) built from a vocabulary of fields, values, expansions, operators
//! and `%function` calls, optionally with a schema; a document, a changed post-image and a user.
//! Rule files that do not load are skipped (loading is `load_rules`'s target).
//!
//! Checks beyond "no panic": the compiled engine and the reference evaluator agree on every read
//! (role, visibility, redacted document, failure), on the raw read path, and on whether each
//! insert/update/delete is allowed; a redacted document only holds fields of the stored one.
//!
//! The generator (`Gen`, `role`, `expr`, `document`, ...) is public: the `context`, `query` and
//! `schema` checks include this file as a module and build their rules with it.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/evaluate.rs`) and the regression tests
//! (`crates/rolegate/src/fuzz_regressions.rs`), which include this file with `#[path]`: it may use only
//! `rolegate`, `serde_json` and `bson`.

use std::sync::Arc;

use bson::{Bson, Document, doc, oid::ObjectId};
use rolegate::{EngineKind, FunctionCheck, LoadOptions, RequestContext, RuleSet, Rules, Scratch};
use serde_json::{Map, Value, json};

/// Reads choices from the fuzzer's bytes (zeros once they run out).
pub struct Gen<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Gen<'a> {
    /// A generator reading `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Gen { data, pos: 0 }
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        let i = self.below(items.len());
        items[i].clone()
    }

    pub fn chance(&mut self, in_four: u8) -> bool {
        self.byte() % 4 < in_four
    }
}

pub const FIELDS: &[&str] = &["a", "b", "owner", "tags", "n", "_id"];
pub const SUB: &[&str] = &["x", "y"];
pub const OID: &str = "66a11ce0000000000000000a";

pub fn value(g: &mut Gen<'_>, depth: usize) -> Value {
    match g.below(if depth == 0 { 8 } else { 11 }) {
        0 => json!(g.below(4)),
        1 => json!(g.pick(&["u1", "u2", "x", ""])),
        2 => json!(g.chance(2)),
        3 => Value::Null,
        4 => json!({"$oid": OID}),
        5 => json!(g.pick(&[1.5, -0.0, 2.0])),
        6 => json!({"$numberLong": "3"}),
        7 => json!(OID),
        8 => {
            let n = g.below(3);
            Value::Array((0..n).map(|_| value(g, depth - 1)).collect())
        }
        9 => {
            let mut m = Map::new();
            for _ in 0..g.below(3) {
                let k = g.pick(SUB);
                m.insert(k.to_string(), value(g, depth - 1));
            }
            Value::Object(m)
        }
        _ => json!({"$numberDecimal": "2"}),
    }
}

pub fn expansion(g: &mut Gen<'_>, field_site: bool) -> Value {
    let mut all = vec![
        "%%user.id",
        "%%user.custom_data.team",
        "%%user.custom_data.list",
        "%%user.custom_data.missing",
        "%%root.owner",
        "%%root.a.x",
        "%%prevRoot.owner",
        "%%prevRoot",
        "%%true",
        "%%values.v",
    ];
    if field_site {
        all.extend(["%%this", "%%prev", "%%this.x"]);
    }
    json!(g.pick(&all))
}

pub fn operand(g: &mut Gen<'_>, depth: usize, field_site: bool) -> Value {
    match g.below(6) {
        0 | 1 => expansion(g, field_site),
        2 => json!({"%stringToOid": expansion(g, field_site)}),
        3 if depth > 0 => {
            let name = g.pick(&["yes", "no", "echo", "fails"]);
            let args = vec![operand(g, depth - 1, field_site)];
            json!({"%function": {"name": name, "arguments": args}})
        }
        4 if depth > 0 => Value::Array(vec![value(g, 1), operand(g, depth - 1, field_site)]),
        _ => value(g, 2),
    }
}

pub fn subject(g: &mut Gen<'_>, field_site: bool) -> String {
    match g.below(5) {
        0 => g
            .pick(&["%%user.id", "%%user.custom_data.team", "%%true", "%%root"])
            .to_string(),
        1 if field_site => g.pick(&["%%this", "%%prev", "%%this.x"]).to_string(),
        2 => format!("{}.{}", g.pick(FIELDS), g.pick(SUB)),
        3 => g
            .pick(&["%%root.owner", "%%prevRoot.owner", "%%prevRoot"])
            .to_string(),
        _ => g.pick(FIELDS).to_string(),
    }
}

pub fn predicate(g: &mut Gen<'_>, depth: usize, field_site: bool) -> Value {
    let op = g.pick(&[
        "",
        "$eq",
        "$ne",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$in",
        "$nin",
        "$exists",
        "$all",
        "$size",
        "$type",
        "$elemMatch",
        "$not",
        "%in",
        "$regex",
    ]);
    match op {
        "" => operand(g, depth, field_site),
        "$in" | "$nin" | "%in" | "$all" => {
            if g.chance(1) {
                json!({op: expansion(g, field_site)})
            } else {
                let n = g.below(4);
                json!({op: (0..n).map(|_| operand(g, 0, field_site)).collect::<Vec<_>>()})
            }
        }
        "$exists" => json!({op: g.chance(2)}),
        "$size" => json!({op: g.below(3)}),
        "$type" => {
            json!({op: g.pick(&["string", "int", "array", "object", "objectId", "number", "null"])})
        }
        "$regex" => json!({op: g.pick(&["^u", "x$", "."]), "$options": g.pick(&["", "i"])}),
        "$elemMatch" if depth > 0 => {
            if g.chance(2) {
                json!({op: {g.pick(SUB): operand(g, 0, field_site)}})
            } else {
                json!({op: {"$gt": g.below(3)}})
            }
        }
        "$not" if depth > 0 => json!({op: {"$eq": value(g, 1)}}),
        other if other.starts_with('$') && !matches!(other, "$elemMatch" | "$not") => {
            json!({other: operand(g, depth, field_site)})
        }
        _ => value(g, 1),
    }
}

pub fn expr(g: &mut Gen<'_>, depth: usize, field_site: bool) -> Value {
    match g.below(if depth == 0 { 4 } else { 8 }) {
        0 => json!({}),
        1 => json!(g.chance(2)),
        2 | 3 => {
            let s = subject(g, field_site);
            let p = predicate(g, depth.saturating_sub(1), field_site);
            let mut m = Map::new();
            m.insert(s, p);
            Value::Object(m)
        }
        4 => {
            let op = g.pick(&["%or", "%and", "%nor", "$or"]);
            let n = 1 + g.below(2);
            json!({op: (0..n).map(|_| expr(g, depth - 1, field_site)).collect::<Vec<_>>()})
        }
        5 => json!({"%not": expr(g, depth - 1, field_site)}),
        6 => {
            let mut m = Map::new();
            for _ in 0..2 {
                m.insert(subject(g, field_site), predicate(g, depth - 1, field_site));
            }
            Value::Object(m)
        }
        _ => {
            json!({"%%true": {"%function": {"name": g.pick(&["yes", "no", "fails"]), "arguments": []}}})
        }
    }
}

/// A permission slot: absent, a boolean, or an expression.
pub fn permission(g: &mut Gen<'_>, field_site: bool) -> Option<Value> {
    match g.below(4) {
        0 => None,
        1 => Some(json!(true)),
        2 => Some(json!(false)),
        _ => Some(expr(g, 2, field_site)),
    }
}

pub fn field_rules(g: &mut Gen<'_>, depth: usize) -> Map<String, Value> {
    let mut out = Map::new();
    let names = if depth == 2 { FIELDS } else { SUB };
    for _ in 0..g.below(3) {
        let mut rule = Map::new();
        for key in ["read", "write"] {
            if let Some(p) = permission(g, true) {
                rule.insert(key.into(), p);
            }
        }
        if depth > 0 && g.chance(1) {
            rule.insert("fields".into(), Value::Object(field_rules(g, depth - 1)));
            if g.chance(1) {
                rule.insert("additional_fields".into(), json!({"read": g.chance(2)}));
            }
        }
        out.insert(g.pick(names).to_string(), Value::Object(rule));
    }
    out
}

pub fn role(g: &mut Gen<'_>, i: usize) -> Value {
    let mut r = Map::new();
    r.insert("name".into(), json!(format!("r{i}")));
    if !g.chance(1) {
        r.insert("apply_when".into(), expr(g, 3, false));
    }
    if g.chance(1) {
        let mut df = Map::new();
        for key in ["read", "write"] {
            if g.chance(3) {
                df.insert(key.into(), expr(g, 2, false));
            }
        }
        r.insert("document_filters".into(), Value::Object(df));
    }
    for key in ["read", "write", "insert", "delete"] {
        if let Some(p) = permission(g, false) {
            r.insert(key.into(), p);
        }
    }
    if g.chance(1) {
        r.insert("search".into(), json!(g.chance(2)));
    }
    if g.chance(2) {
        r.insert("fields".into(), Value::Object(field_rules(g, 2)));
    }
    if g.chance(1) {
        let mut add = Map::new();
        for key in ["read", "write"] {
            if let Some(p) = permission(g, true) {
                add.insert(key.into(), p);
            }
        }
        r.insert("additional_fields".into(), Value::Object(add));
    }
    Value::Object(r)
}

pub fn document(g: &mut Gen<'_>) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), json!(g.below(3)));
    for _ in 0..g.below(5) {
        let k = g.pick(FIELDS);
        if k != "_id" {
            m.insert(k.to_string(), value(g, 3));
        }
    }
    if g.chance(1) {
        m.insert("owner".into(), json!(g.pick(&["u1", "u2"])));
    }
    Value::Object(m)
}

pub fn bson_doc(v: &Value) -> Option<Document> {
    match Bson::try_from(v.clone()).ok()? {
        Bson::Document(d) => Some(d),
        _ => None,
    }
}

/// The dotted paths of every value in `d` (documents descended, arrays as a whole).
pub fn paths(d: &Document, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in d {
        let p = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let Bson::Document(sub) = v {
            paths(sub, &p, out);
        }
        out.push(p);
    }
}

pub fn host(name: &str, args: &[Bson]) -> Result<Bson, String> {
    match name {
        "yes" => Ok(Bson::Boolean(true)),
        "no" => Ok(Bson::Boolean(false)),
        "echo" => Ok(args.first().cloned().unwrap_or(Bson::Null)),
        _ => Err(format!("function `{name}` failed")),
    }
}

/// What one input led to, when its rules loaded (for the generator's own tests).
#[derive(Debug, Clone, Copy, Default)]
#[allow(
    dead_code,
    reason = "read by crates/rolegate/src/fuzz_regressions.rs, not by the fuzz target"
)]
pub struct Decided {
    /// A role applied to the read.
    pub role: bool,
    /// The read returned the document (whole or redacted).
    pub visible: bool,
    /// A rule failed to evaluate on the read.
    pub failed: bool,
    /// How many of insert, update and delete were allowed.
    pub writes_allowed: usize,
}

/// Runs the checks on the input; what was decided, or `None` when its rules did not load.
pub fn run(data: &[u8]) -> Option<Decided> {
    let mut g = Gen::new(data);
    let n_roles = 1 + g.below(3);
    let roles: Vec<Value> = (0..n_roles).map(|i| role(&mut g, i)).collect();
    let mut file = json!({"database": "db", "collection": "coll", "roles": roles});
    if g.chance(1) {
        file["schema"] = json!({"properties": {"_id": {"bsonType": "int"},
            "owner": {"bsonType": "string"}, "n": {"bsonType": ["int", "long"]},
            "a": {"validate": {"%%this": {"$ne": "x"}}}}});
    }
    let stored = document(&mut g);
    let mut post = stored.clone();
    match g.below(3) {
        0 => post[g.pick(FIELDS)] = value(&mut g, 2),
        1 => {
            if let Some(m) = post.as_object_mut() {
                m.remove(g.pick(FIELDS));
            }
        }
        _ => post["owner"] = json!(g.pick(&["u1", "u2"])),
    }
    let user = doc! {
        "id": if g.chance(2) { "u1" } else { "u2" },
        "type": if g.byte() == 255 { "system" } else { "normal" },
        "data": {},
        "custom_data": {"team": "x", "list": ["u1", 2], "oid": ObjectId::parse_str(OID).unwrap_or_default()},
    };

    let options = LoadOptions {
        function_check: Some(FunctionCheck::Off),
        ..LoadOptions::default()
    };
    let Ok(set) = RuleSet::from_json(
        "data_sources/mongodb-atlas/db/coll/rules.json",
        &file,
        &options,
    ) else {
        return None;
    };
    let (Some(stored), Some(post)) = (bson_doc(&stored), bson_doc(&post)) else {
        return None;
    };
    let rules = Rules::new(set);
    let Ok(coll) = rules.collection("db.coll") else {
        return None;
    };
    let mut ctx = RequestContext::for_user(user);
    ctx.values = Bson::Document(doc! {"v": "u1"});
    ctx.functions = Arc::new(host);

    let reference = coll.prepare_with(&ctx, EngineKind::Reference);
    let compiled = coll.prepare_with(&ctx, EngineKind::Compiled);

    let r = reference.read(&stored);
    let mut decided = Decided {
        role: r.role.is_some(),
        visible: r.visible,
        failed: r.error.is_some(),
        writes_allowed: 0,
    };
    let c = compiled.read(&stored);
    assert_eq!(
        (&c.role, c.visible, &c.document, c.error.is_some()),
        (&r.role, r.visible, &r.document, r.error.is_some()),
        "read differs: compiled {c:?} reference {r:?}\nrules {file}\ndocument {stored}"
    );
    if let Some(redacted) = &r.document {
        let (mut have, mut shown) = (Vec::new(), Vec::new());
        paths(&stored, "", &mut have);
        paths(redacted, "", &mut shown);
        for p in shown {
            assert!(
                have.contains(&p),
                "redaction added `{p}`: {redacted} from {stored}"
            );
        }
    }
    if let Ok(raw) = bson::RawDocumentBuf::from_document(&stored) {
        let decision = compiled.read_raw(&raw, &mut Scratch::new());
        let role = decision.role.and_then(|i| compiled.role_name(i));
        assert_eq!(
            (role, decision.visible),
            (r.role.as_deref(), r.visible),
            "raw read differs\nrules {file}\ndocument {stored}"
        );
    }
    for (what, rw, cw) in [
        (
            "insert",
            reference.insert(&stored),
            compiled.insert(&stored),
        ),
        (
            "update",
            reference.update(&stored, &post),
            compiled.update(&stored, &post),
        ),
        (
            "delete",
            reference.delete(&stored),
            compiled.delete(&stored),
        ),
    ] {
        assert_eq!(
            (cw.allowed, &cw.role),
            (rw.allowed, &rw.role),
            "{what} differs: compiled {cw:?} reference {rw:?}\nrules {file}\ndocument {stored}\npost {post}"
        );
        decided.writes_allowed += usize::from(rw.allowed);
        if rw.allowed {
            assert!(rw.error.is_none());
        }
    }
    Some(decided)
}
