//! Stage: `%function` calls for hosts that cannot answer synchronously. Input: the calls the
//! rules make while an operation is decided. Output: the calls still to answer
//! ([`CallMemo::pending`]); once the host has answered them (with its own async I/O, outside
//! the decision), deciding again uses the answers ([`CallMemo::answer`]).
//!
//! The rule engines call functions synchronously ([`FunctionHost`]). A host running in an
//! async runtime cannot block on a database lookup inside such a call; with a [`CallMemo`]
//! as the request's function host, it never has to:
//!
//! ```text
//! let memo = Arc::new(CallMemo::new());
//! loop {
//!     let ctx = rules.context().user(user.clone()).functions(memo.clone()).build()?;
//!     let request = collection.prepare(&ctx);
//!     let plan = request.plan_operation(&op)?;
//!     let stored = store.find(plan.read()).await?;
//!     let decided = request.decide_operation(&op, &plan, stored, &mut env);
//!     let pending = memo.take_pending();
//!     if pending.is_empty() { break decided; }           // every call was answered
//!     for (name, args) in pending {                       // the host's own async calls
//!         memo.answer(&name, &args, my_functions(&name, &args).await);
//!     }
//! }                                                       // then write `decided.writes`
//! ```
//!
//! A decision that met an unanswered call denies (the call fails with "pending"), so it is
//! never written: the loop decides again with the answer. Each round answers every call the
//! last round met, and an answered call is never pending again, so the number of rounds is at
//! most the depth of calls whose arguments depend on other calls' results, plus one.

use std::collections::HashMap;
use std::sync::Mutex;

use bson::Bson;

use crate::context::FunctionHost;

/// Recorded answers of `%function` calls, and the calls met without one.
#[derive(Debug, Default)]
pub struct CallMemo {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    answers: HashMap<Vec<u8>, Result<Bson, String>>,
    pending: Vec<(String, Vec<Bson>)>,
}

/// The key of a call: its name and arguments as canonical BSON bytes (types and key order
/// matter, as they do to the function).
fn key(name: &str, arguments: &[Bson]) -> Vec<u8> {
    let mut doc = bson::Document::new();
    doc.insert("n", name);
    doc.insert("a", arguments.to_vec());
    let mut out = Vec::new();
    // A document of a string and an array always serializes; a failure keys the call by its
    // name alone, which can only make two calls share an answer slot that is then pending.
    if doc.to_writer(&mut out).is_err() {
        out = name.as_bytes().to_vec();
    }
    out
}

impl CallMemo {
    /// A memo without answers.
    pub fn new() -> CallMemo {
        CallMemo::default()
    }

    /// Records the host's answer to a call (`Err`: the function failed; the decision denies
    /// with that reason, as with a synchronous host).
    pub fn answer(&self, name: &str, arguments: &[Bson], result: Result<Bson, String>) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.answers.insert(key(name, arguments), result);
    }

    /// The calls met without an answer since the last time, each once, in the order met.
    pub fn take_pending(&self) -> Vec<(String, Vec<Bson>)> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut state.pending)
    }
}

impl FunctionHost for CallMemo {
    fn call(&self, name: &str, arguments: &[Bson]) -> Result<Bson, String> {
        let k = key(name, arguments);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(answer) = state.answers.get(&k) {
            return answer.clone();
        }
        if !state
            .pending
            .iter()
            .any(|(n, a)| n == name && key(n, a) == k)
        {
            state.pending.push((name.to_string(), arguments.to_vec()));
        }
        Err(format!(
            "function `{name}` has no answer yet (pending: the host answers it, then decides again)"
        ))
    }
}
