//! Stage: generators, the `%function` host of a generated case. Input: the result generated for
//! each function (`None`: the call fails). Output: a [`FunctionHost`] that answers every call of
//! a function with its result, whatever the arguments, and records the calls — so that a printed
//! case can mock exactly the calls that were made.

use std::sync::Mutex;

use bson::Bson;

use crate::context::FunctionHost;

/// At most this many calls are recorded per case (the rest are answered, not recorded).
const MAX_RECORDED: usize = 64;

/// One recorded `%function` call.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCall {
    /// The function's name.
    pub name: String,
    /// The expanded arguments.
    pub arguments: Vec<Bson>,
    /// What it returned (`None`: it failed).
    pub result: Option<Bson>,
}

/// The host of a generated case (module docs).
#[derive(Debug, Default)]
pub struct GenHost {
    results: Vec<(String, Option<Bson>)>,
    calls: Mutex<Vec<FunctionCall>>,
}

impl GenHost {
    /// A host whose function `name` returns `result` (`None`: fails; a function not listed
    /// fails).
    pub fn new(results: Vec<(String, Option<Bson>)>) -> GenHost {
        GenHost {
            results,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The calls made so far, in order, without repeats.
    pub fn calls(&self) -> Vec<FunctionCall> {
        match self.calls.lock() {
            Ok(calls) => calls.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl FunctionHost for GenHost {
    fn call(&self, name: &str, arguments: &[Bson]) -> Result<Bson, String> {
        let result = self
            .results
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, r)| r.clone());
        let mut calls = match self.calls.lock() {
            Ok(calls) => calls,
            Err(poisoned) => poisoned.into_inner(),
        };
        let seen = calls
            .iter()
            .any(|c| c.name == name && c.arguments == arguments);
        if !seen && calls.len() < MAX_RECORDED {
            calls.push(FunctionCall {
                name: name.to_string(),
                arguments: arguments.to_vec(),
                result: result.clone(),
            });
        }
        drop(calls);
        result.ok_or_else(|| format!("the generated case has no result for function `{name}`"))
    }
}
