//! Stage: setup. Input: a workload (W1, or W3 of a kind and role count). Output: the three
//! engines ready for one request of the workload's user: rolegate's compiled rules and request
//! context, a Cedar authorizer with its policies (validated against the schema), a compiled
//! regorus engine and, where the RVM takes the policy, a loaded RVM program.

use cedar_policy::PolicySet;
use regorus::Engine;

use crate::cedar::{self, Cedar, Shape};
use crate::data;
use crate::native::Native;
use crate::rego::{self, Rego};
use crate::workloads::{self, W3Kind, Workload};

/// The three engines of one workload.
pub struct Engines {
    pub workload: Workload,
    pub native: Native,
    pub cedar: Cedar,
    pub rego: Rego,
}

/// Each engine's policy text for one workload (what "load + compile" starts from).
pub struct PolicyTexts {
    pub rolegate: String,
    pub cedar: String,
    pub rego: String,
    /// The Rego rules compiled as entry points: `allow`, then (W1) `readable`.
    pub rego_entries: Vec<String>,
}

impl PolicyTexts {
    /// The entry point the interpreter is compiled for (`allow`).
    pub fn rego_entry(&self) -> &str {
        self.rego_entries.first().map_or("", String::as_str)
    }

    /// The RVM program's entry points.
    pub fn rego_entry_refs(&self) -> Vec<&str> {
        self.rego_entries.iter().map(String::as_str).collect()
    }
}

/// The policy texts of W1.
pub fn w1_texts() -> PolicyTexts {
    let w = workloads::w1();
    PolicyTexts {
        rolegate: data::rules_text(&w),
        cedar: cedar::w1_policies(),
        rego: rego::w1_policies(),
        rego_entries: rego::entries(rego::W1_PACKAGE, true),
    }
}

/// The policy texts of W3 (the Cedar and Rego ones generated from the rule file).
pub fn w3_texts(kind: W3Kind, roles: usize) -> PolicyTexts {
    let w = workloads::w3(kind, roles);
    PolicyTexts {
        rolegate: data::rules_text(&w),
        cedar: cedar::w3_policies(&w.rules),
        rego: rego::w3_policies(&w.rules),
        rego_entries: rego::entries(rego::W3_PACKAGE, false),
    }
}

fn engines(w: Workload, texts: &PolicyTexts, shape: Shape, package: &str) -> Engines {
    let native = Native::new(&w);
    let user = data::user(&w);
    let policies: PolicySet = cedar::parse(&texts.cedar);
    let schema = match shape {
        Shape::W1 => "w1.cedarschema",
        Shape::W3 => "w3.cedarschema",
    };
    cedar::validate(&policies, schema);
    // The contexts of W1's fields are built once (a server knows its collection's fields).
    let fields = match shape {
        Shape::W1 => workloads::raw(&workloads::w1_documents(1))
            .first()
            .map(|d| data::leaf_paths(d))
            .unwrap_or_default(),
        Shape::W3 => Vec::new(),
    };
    let cedar = Cedar::new(policies, shape, &user, &fields);
    let file = format!("{}.rego", w.id);
    let engine: Engine = rego::load(&file, &texts.rego, texts.rego_entry());
    let program = match rego::load_vm(&file, &texts.rego, &texts.rego_entry_refs()) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("note: regorus RVM skipped: {e}");
            None
        }
    };
    let rego = Rego::new(&engine, program, package, &user);
    Engines {
        workload: w,
        native,
        cedar,
        rego,
    }
}

/// W1's engines.
pub fn w1() -> Engines {
    engines(workloads::w1(), &w1_texts(), Shape::W1, rego::W1_PACKAGE)
}

/// W3's engines for `roles` roles.
pub fn w3(kind: W3Kind, roles: usize) -> Engines {
    engines(
        workloads::w3(kind, roles),
        &w3_texts(kind, roles),
        Shape::W3,
        rego::W3_PACKAGE,
    )
}
