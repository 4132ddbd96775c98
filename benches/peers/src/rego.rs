//! Stage: Rego (`regorus`). Input: the policy text (`policies/w1.rego`, or W3's generated from
//! the rule file, one `allow` rule per role), the user, and per document its raw BSON. Output:
//! per document, `allow` (the decision) or `readable` (the set of readable field paths), each
//! one evaluation, by either of regorus's two evaluators: the interpreter (`Engine::eval_rule`
//! on an engine compiled once) or the RVM (`RegoVM::execute_entry_point_by_index` on a program
//! compiled once).
//!
//! Built once per request: the engine (policy added and compiled, cloned per request the way
//! regorus suggests), the VM with its program loaded, and the user as a Rego value. Built once per document ([`Rego::input`]):
//! the input `{"user": ..., "doc": ...}`, the whole document converted from BSON (ObjectId as
//! its hex string, dates as milliseconds since the epoch, other non-JSON types as `null`).

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::{RawBsonRef, RawDocument};
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::{CompiledPolicy, Engine, Rc, Value};

use crate::data;

/// The W1 policy text.
pub fn w1_policies() -> String {
    data::read(&data::policy_dir().join("w1.rego"))
}

/// The package of the W1 policy.
pub const W1_PACKAGE: &str = "data.rolegate.w1";
/// The package of the generated W3 policies.
pub const W3_PACKAGE: &str = "data.rolegate.w3";

/// The W3 policy: one `allow` rule per role of the rule file, one line each (regorus refuses
/// policy files of more than 20,000 lines or 1 MiB). `apply_when` tests
/// `%%user.custom_data.group` (`input.user.custom_data.group`) and document fields
/// (`input.doc.<field>`) against string constants.
pub fn w3_policies(rules: &serde_json::Value) -> String {
    let roles = rules["roles"].as_array().expect("roles");
    let mut out = String::with_capacity(64 + roles.len() * 96);
    out.push_str("package rolegate.w3\n\nimport rego.v1\n\n");
    for role in roles {
        let tests: Vec<String> = role["apply_when"]
            .as_object()
            .expect("apply_when")
            .iter()
            .map(|(key, value)| {
                let constant = value.as_str().expect("a string constant");
                match key.strip_prefix("%%user.") {
                    Some(rest) => format!("input.user.{rest} == \"{constant}\""),
                    None => format!("input.doc.{key} == \"{constant}\""),
                }
            })
            .collect();
        out.push_str(&format!("allow if {{ {} }}\n", tests.join("; ")));
    }
    out
}

/// Loads and compiles a policy for the interpreter (timed as "load + compile"): a new engine,
/// the policy added (parsed), then compiled for the rule `entry` (`compile_with_entrypoint`,
/// which runs the analysis regorus otherwise runs on the first evaluation).
pub fn load(name: &str, text: &str, entry: &str) -> Engine {
    compile(name, text, entry).0
}

/// [`load`], keeping the compiled policy too.
fn compile(name: &str, text: &str, entry: &str) -> (Engine, CompiledPolicy) {
    let mut engine = Engine::new();
    engine
        .add_policy(name.to_string(), text.to_string())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let compiled = engine
        .compile_with_entrypoint(&Rc::from(entry))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (engine, compiled)
}

/// Loads and compiles a policy for the RVM, regorus's bytecode VM (timed as "load + compile"):
/// [`load`], then the compiled policy compiled to a program whose entry points are `entries`.
/// The RVM refuses programs of more than 65,535 instructions (W3 at 10,000 rules): the error.
pub fn load_vm(name: &str, text: &str, entries: &[&str]) -> Result<Arc<Program>, String> {
    let entry = entries.first().expect("an entry point");
    let (_, compiled) = compile(name, text, entry);
    Compiler::compile_from_policy(&compiled, entries).map_err(|e| format!("{name}: {e}"))
}

/// A BSON value as a Rego value.
pub fn value(b: RawBsonRef<'_>) -> Value {
    match b {
        RawBsonRef::String(s) => Value::from(s),
        RawBsonRef::Int32(i) => Value::from(i64::from(i)),
        RawBsonRef::Int64(i) => Value::from(i),
        RawBsonRef::Double(f) => Value::from(f),
        RawBsonRef::Boolean(b) => Value::from(b),
        RawBsonRef::ObjectId(oid) => Value::from(oid.to_hex()),
        RawBsonRef::DateTime(d) => Value::from(d.timestamp_millis()),
        RawBsonRef::Array(a) => Value::from(
            a.into_iter()
                .filter_map(Result::ok)
                .map(value)
                .collect::<Vec<_>>(),
        ),
        RawBsonRef::Document(d) => object(d),
        _ => Value::Null,
    }
}

/// A BSON document as a Rego object.
pub fn object(doc: &RawDocument) -> Value {
    let map: BTreeMap<Value, Value> = doc
        .iter()
        .filter_map(Result::ok)
        .map(|(k, v)| (Value::from(k), value(v)))
        .collect();
    Value::from(map)
}

/// The number of elements of a set (0 for anything else).
pub fn set_len(v: &Value) -> usize {
    v.as_set().map_or(0, |s| s.len())
}

/// A prepared regorus engine and RVM for one user.
pub struct Rego {
    engine: Engine,
    /// `None` when the RVM refused the policy.
    vm: Option<RegoVM>,
    allow: String,
    readable: String,
    user: Value,
}

/// The RVM program's entry points, in order: `allow`, then (W1) `readable`.
pub fn entries(package: &str, readable: bool) -> Vec<String> {
    let mut out = vec![format!("{package}.allow")];
    if readable {
        out.push(format!("{package}.readable"));
    }
    out
}

impl Rego {
    /// `engine` is compiled (see [`load`]), `program` is the same policy for the RVM (see
    /// [`load_vm`], entry points [`entries`]); `package` is the rules' path
    /// (`data.rolegate.w1`); `user` is the `%%user` JSON.
    pub fn new(
        engine: &Engine,
        program: Option<Arc<Program>>,
        package: &str,
        user: &serde_json::Value,
    ) -> Rego {
        let vm = program.map(|program| {
            let mut vm = RegoVM::new();
            vm.load_program(program);
            vm
        });
        Rego {
            engine: engine.clone(),
            vm,
            allow: format!("{package}.allow"),
            readable: format!("{package}.readable"),
            user: Value::from(user.clone()),
        }
    }

    /// The input of one document: `{"user": <user>, "doc": <document>}`.
    pub fn input(&self, doc: &RawDocument) -> Value {
        let mut map = BTreeMap::new();
        map.insert(Value::from("user"), self.user.clone());
        map.insert(Value::from("doc"), object(doc));
        Value::from(map)
    }

    /// `allow` for one input, by the interpreter.
    pub fn decide(&mut self, input: Value) -> bool {
        self.engine.set_input(input);
        let v = self
            .engine
            .eval_rule(self.allow.clone())
            .unwrap_or_else(|e| panic!("regorus: {e}"));
        v == Value::from(true)
    }

    /// `readable` for one input, by the interpreter: a set of strings.
    pub fn readable(&mut self, input: Value) -> Value {
        self.engine.set_input(input);
        self.engine
            .eval_rule(self.readable.clone())
            .unwrap_or_else(|e| panic!("regorus: {e}"))
    }

    /// Whether the RVM took the policy.
    pub fn has_vm(&self) -> bool {
        self.vm.is_some()
    }

    /// Runs entry point `index` of the RVM program on one input.
    fn run_vm(&mut self, index: usize, input: Value) -> Value {
        let vm = self.vm.as_mut().expect("the RVM refused this policy");
        vm.set_input(input);
        vm.execute_entry_point_by_index(index)
            .unwrap_or_else(|e| panic!("regorus RVM: {e}"))
    }

    /// `allow` for one input, by the RVM.
    pub fn decide_vm(&mut self, input: Value) -> bool {
        self.run_vm(0, input) == Value::from(true)
    }

    /// `readable` for one input, by the RVM.
    pub fn readable_vm(&mut self, input: Value) -> Value {
        self.run_vm(1, input)
    }
}

/// A `readable` set as sorted field paths (`None` when empty).
pub fn paths(set: &Value) -> Option<Vec<String>> {
    let items = set
        .as_set()
        .unwrap_or_else(|_| panic!("regorus: `readable` is not a set: {set}"));
    let mut out: Vec<String> = items
        .iter()
        .map(|v| v.as_string().expect("a field path").to_string())
        .collect();
    out.sort();
    (!out.is_empty()).then_some(out)
}
