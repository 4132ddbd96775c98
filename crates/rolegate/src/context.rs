//! Stage: per-request input. A [`RequestContext`] holds everything an expression may expand that
//! does not come from the document: `%%user`, `%%request`, `%%values`, `%%environment`, `%%args`,
//! `%%partition`, and the host's `%function` implementations ([`FunctionHost`]).
//!
//! Built once per request by the host (or from a conformance case / CLI flags) and shared by every
//! document of the request.
//!
//! Host functions fail closed: see [`FunctionHost`]. The system user is an explicit choice of
//! the host: see [`RequestContext`].

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bson::{Bson, Document};

use crate::limits::Limits;

/// Serves `%function` calls from rule expressions. Implementations must be `Send + Sync`; a call
/// that returns `Err` (or that the host cannot serve) denies, with the message as the reason. So
/// does a call that panics or that takes longer than the request's
/// [`max_function_time`](RequestContext::max_function_time).
///
/// # Calling host functions (fail closed)
///
/// Every `%function` call of either engine goes through [`RequestContext::call_function`] (the
/// compiled engine reaches functions only through the reference evaluator), which makes a
/// misbehaving host deny instead of taking the process or the decision with it:
///
/// * **A host that panics** denies: the panic is caught with [`std::panic::catch_unwind`] and the
///   call fails with `panicked: <payload message>`. Wrapping the call in
///   [`AssertUnwindSafe`] is sound here: the host is reached through `&dyn FunctionHost` and
///   rolegate keeps no state across the call that a panic could leave half-updated (the
///   arguments are only read, the result is discarded); whatever the host's own state is after
///   its panic (a poisoned mutex, say) is the host's to handle. The process's panic hook still
///   runs (by default it prints the message to stderr). A binary built with `panic = "abort"`
///   cannot catch anything: there a panicking host aborts the process.
/// * **A host that is too slow** denies: a call that took longer than
///   [`RequestContext::max_function_time`] (from [`Limits::max_function_time`]) fails with
///   `took X ms, budget Y ms` and its result is discarded (a call that failed or panicked
///   and was slow too reports its failure). A synchronous call cannot be
///   preempted, so the budget is checked when the call returns: the decision is right, but it
///   comes as late as the host makes it. Hosts that need the decision *in time* wrap their host
///   in [`Deadline`], which runs each call on a worker thread and stops waiting at its timeout.
///
/// [`Limits::max_function_time`]: crate::Limits::max_function_time
pub trait FunctionHost: Send + Sync {
    /// Calls function `name` with the expanded `arguments`.
    fn call(&self, name: &str, arguments: &[Bson]) -> Result<Bson, String>;
}

impl<F> FunctionHost for F
where
    F: Fn(&str, &[Bson]) -> Result<Bson, String> + Send + Sync,
{
    fn call(&self, name: &str, arguments: &[Bson]) -> Result<Bson, String> {
        self(name, arguments)
    }
}

/// A host with no functions: every call is an error (denies).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFunctions;

impl FunctionHost for NoFunctions {
    fn call(&self, name: &str, _arguments: &[Bson]) -> Result<Bson, String> {
        Err(format!(
            "no implementation of function `{name}` was supplied by the host"
        ))
    }
}

/// Mocked functions as conformance cases describe them: a call returns `returns` when its
/// expanded arguments equal `args`; anything else is an error.
#[derive(Debug, Default, Clone)]
pub struct MockFunctions {
    /// Function name → its mocked calls: the expanded arguments of a call, and what it returns.
    pub calls: BTreeMap<String, Vec<(Vec<Bson>, Bson)>>,
}

impl MockFunctions {
    /// Makes a call of `name` with exactly the arguments `args` return `returns` (a later `add`
    /// with the same name adds another argument list).
    pub fn add(&mut self, name: impl Into<String>, args: Vec<Bson>, returns: Bson) {
        self.calls
            .entry(name.into())
            .or_default()
            .push((args, returns));
    }
}

/// How many argument lists of a mock a "no result" error shows (the rest are counted).
const MAX_MOCKS_SHOWN: usize = 5;

/// About how many characters of one argument list a "no result" error quotes.
const MAX_ARGS_QUOTED: usize = 160;

impl FunctionHost for MockFunctions {
    /// The mocked result; otherwise an error that says why (detailed view: it quotes the
    /// arguments, which may hold document values): an unknown function names the mocked ones,
    /// and a call without a matching mock shows the arguments it was called with and the
    /// argument lists the mock has (each quoted in a bounded number of characters).
    fn call(&self, name: &str, arguments: &[Bson]) -> Result<Bson, String> {
        let Some(list) = self.calls.get(name) else {
            let known: Vec<String> = self.calls.keys().map(|k| format!("`{k}`")).collect();
            let known = match known.is_empty() {
                true => "none".to_string(),
                false => known.join(", "),
            };
            return Err(format!(
                "function `{name}` is not defined by the host (mocked functions: {known})"
            ));
        };
        if let Some((_, result)) = list
            .iter()
            .find(|(args, _)| crate::value::bson_equal_args(args, arguments))
        {
            return Ok(result.clone());
        }
        let quote = |args: &[Bson]| {
            crate::value::quote::quote_within(&Bson::Array(args.to_vec()), MAX_ARGS_QUOTED)
        };
        let mut mocked: Vec<String> = list
            .iter()
            .take(MAX_MOCKS_SHOWN)
            .map(|(args, _)| quote(args))
            .collect();
        if list.len() > MAX_MOCKS_SHOWN {
            mocked.push(format!("... {} more", list.len() - MAX_MOCKS_SHOWN));
        }
        Err(format!(
            "the mock of `{name}` has no result for the arguments {}; it has results for {}",
            quote(arguments),
            mocked.join(", ")
        ))
    }
}

/// Everything an expression may expand apart from the document: `%%user`, `%%request`,
/// `%%values`, `%%environment`, `%%args`, `%%partition`, and the host's `%function`
/// implementations. Built once per request by the host (usually with
/// [`Rules::context`](crate::Rules::context)) and shared by every document of the request.
///
/// # The system user is an explicit choice of the host
///
/// The bypass of every rule, filter and schema check that App Services grants to functions
/// running as system is [`RequestContext::system`] / [`RequestContext::with_system`] (and
/// [`ContextBuilder::system`](crate::ContextBuilder::system)): a private flag that only
/// the host's own code can set. It is never inferred from the user document: `%%user.type` is
/// plain data, and a user document with `"type": "system"` (which a token claim or an identity
/// provider may well produce) is evaluated by the rules like any other user.
#[derive(Clone)]
pub struct RequestContext {
    /// `%%user`: `{id, type, data, custom_data, identities}`; `None` for no user.
    pub user: Option<Bson>,
    /// `%%request` (a document)
    pub request: Bson,
    /// `%%values` (a document: name → value)
    pub values: Bson,
    /// `%%environment` (a document: `{tag, values}`)
    pub environment: Bson,
    /// `%%args` (service rules)
    pub args: Option<Bson>,
    /// `%%partition` (Partition-Based Sync)
    pub partition: Option<Bson>,
    /// `%function` implementations.
    pub functions: Arc<dyn FunctionHost>,
    /// True for an Atlas Search (`$search`) request (role `search` gate applies).
    pub search: bool,
    /// How long one `%function` call may take before its result is discarded and the decision
    /// denies ([`Limits::max_function_time`]; checked when the call returns). [`Rules::context`]
    /// sets it from the rule set's limits; a context built otherwise starts with the default.
    ///
    /// [`Rules::context`]: crate::engine::Rules::context
    pub max_function_time: Duration,
    /// The system user: every rule, filter and schema check is bypassed. Private: set only by
    /// [`RequestContext::system`] / [`RequestContext::with_system`], never from `user`.
    pub(crate) system: bool,
    /// Told the outcome of every rule the reference evaluator and the query planner evaluate
    /// for this request: the decision-point coverage of `rolegate test --coverage`
    /// ([`crate::case::coverage`]). Private, and set only by the case runner's coverage mode;
    /// `None` everywhere else, where observing costs one branch per rule evaluated by the
    /// reference evaluator (the compiled engine never looks at it).
    pub(crate) observer: Option<Arc<dyn RuleObserver>>,
}

/// Receives the outcome of each rule evaluated for a request (see
/// [`RequestContext::observer`]): the rule's place and whether it held. Evaluations that fail
/// are not reported (they deny, and are neither outcome).
pub(crate) trait RuleObserver: Send + Sync {
    /// The rule at `place` evaluated to `outcome`.
    fn observed(&self, place: &crate::error::Place, outcome: bool);
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("user", &self.user)
            .field("request", &self.request)
            .field("values", &self.values)
            .field("environment", &self.environment)
            .field("args", &self.args)
            .field("partition", &self.partition)
            .field("search", &self.search)
            .field("max_function_time", &self.max_function_time)
            .field("system", &self.system)
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for RequestContext {
    fn default() -> Self {
        RequestContext {
            user: None,
            request: Bson::Document(Document::new()),
            values: Bson::Document(Document::new()),
            environment: Bson::Document(Document::new()),
            args: None,
            partition: None,
            functions: Arc::new(NoFunctions),
            search: false,
            max_function_time: Limits::DEFAULT.max_function_time,
            system: false,
            observer: None,
        }
    }
}

impl RequestContext {
    /// A context for `user` (the `%%user` object) with nothing else set.
    pub fn for_user(user: Document) -> Self {
        RequestContext {
            user: Some(Bson::Document(user)),
            ..Default::default()
        }
    }

    /// A context for the system user (functions running as system, system endpoints): every
    /// rule, filter and schema check is bypassed. There is no `%%user`; use
    /// [`with_system`](Self::with_system) on a context to keep its other parts.
    pub fn system() -> Self {
        RequestContext::default().with_system(true)
    }

    /// This context as the system user (`true`: bypass every rule, filter and schema check) or
    /// as an ordinary request (`false`). The only way to get the bypass: the user document
    /// (`%%user.type` included) never grants it.
    pub fn with_system(mut self, system: bool) -> Self {
        self.system = system;
        self
    }

    /// True when this request runs as the system user, which bypasses all rules, filters and
    /// schema validation. Set only by [`system`](Self::system) /
    /// [`with_system`](Self::with_system); a user document with `"type": "system"` is not the
    /// system user.
    pub fn is_system(&self) -> bool {
        self.system
    }

    /// This context with `observer` told the outcome of every rule evaluated for it (coverage).
    pub(crate) fn with_observer(mut self, observer: Arc<dyn RuleObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Tells the observer, if there is one, that the rule at `place` evaluated to `outcome`.
    #[inline]
    pub(crate) fn observe(&self, place: &crate::error::Place, outcome: bool) {
        if let Some(observer) = &self.observer {
            observer.observed(place, outcome);
        }
    }

    /// The value of a request-level root (`%%user`, `%%request`, ...), or `None` when absent or
    /// when `root` is bound per document (`%%root`, `%%prevRoot`, `%%this`, `%%prev`).
    pub fn root_value(&self, root: crate::expr::Root) -> Option<&Bson> {
        use crate::expr::Root;
        static TRUE: Bson = Bson::Boolean(true);
        static FALSE: Bson = Bson::Boolean(false);
        match root {
            Root::True => Some(&TRUE),
            Root::False => Some(&FALSE),
            Root::User => self.user.as_ref(),
            Root::Request => Some(&self.request),
            Root::Values => Some(&self.values),
            Root::Environment => Some(&self.environment),
            Root::Args => self.args.as_ref(),
            Root::Partition => self.partition.as_ref(),
            Root::Root | Root::PrevRoot | Root::This | Root::Prev => None,
        }
    }

    /// Calls host function `name` with the expanded `arguments`, failing closed: the host's
    /// error, a panic (`panicked: <message>`) and a call that took longer than
    /// [`max_function_time`](Self::max_function_time) (`took X ms, budget Y ms`; its result is
    /// discarded) are all `Err` with the reason. The one way both engines call functions.
    pub fn call_function(&self, name: &str, arguments: &[Bson]) -> Result<Bson, String> {
        let started = Instant::now();
        let result = call_caught(&*self.functions, name, arguments);
        let took = started.elapsed();
        // A failure (a panic included) is reported as itself even when it was slow too: the
        // decision denies either way, and the panic says more (and capturing its backtrace
        // may be what took the time).
        if result.is_ok() && took > self.max_function_time {
            return Err(format!(
                "took {} ms, budget {} ms",
                millis(took),
                millis(self.max_function_time)
            ));
        }
        result
    }
}

/// `host.call(name, arguments)` with a panic turned into `Err("panicked: <message>")`.
fn call_caught<H: FunctionHost + ?Sized>(
    host: &H,
    name: &str,
    arguments: &[Bson],
) -> Result<Bson, String> {
    // AssertUnwindSafe: see the module docs (no rolegate state spans the call).
    match catch_unwind(AssertUnwindSafe(|| host.call(name, arguments))) {
        Ok(result) => result,
        Err(payload) => Err(format!("panicked: {}", panic_message(payload))),
    }
}

/// The message of a panic payload (`panic!` gives a `&str` or a `String`). Any other payload is
/// dropped under `catch_unwind` too, and leaked if even its drop panics, so that nothing
/// escapes.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let payload = match payload.downcast::<String>() {
        Ok(message) => return *message,
        Err(other) => other,
    };
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        return (*message).to_string();
    }
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    "(a panic payload that is not a string)".to_string()
}

/// A duration in milliseconds for messages: `1000`, `2.5`, `0.013` (at most three decimals).
fn millis(d: Duration) -> String {
    if d == Duration::MAX {
        return "unlimited".to_string();
    }
    let text = format!("{:.3}", d.as_secs_f64() * 1000.0);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A [`FunctionHost`] that answers in time: each call runs on a new worker thread, and when its
/// answer has not arrived after `timeout` the call fails (`no answer within X ms`), so the
/// decision denies without waiting any longer. A panic on the worker fails the call like a panic
/// under [`RequestContext::call_function`].
///
/// The trade-off: a thread cannot be stopped, so a late call is left to finish on its own (its
/// answer is thrown away) and keeps its thread, memory and whatever it holds until then; a host
/// that blocks forever leaks one thread per call. Each call also pays for spawning a thread
/// (tens of microseconds) and for copying its arguments. Use it for hosts that may block on I/O
/// where answering in time matters more than those costs; otherwise the budget that
/// [`RequestContext::call_function`] checks after the call is enough. When both are set the
/// smaller one decides.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use bson::Bson;
/// use rolegate::{Deadline, FunctionHost};
///
/// let slow = |_: &str, _: &[Bson]| -> Result<Bson, String> {
///     std::thread::sleep(Duration::from_secs(5));
///     Ok(Bson::Boolean(true))
/// };
/// let host = Deadline::new(Arc::new(slow), Duration::from_millis(20));
/// let err = host.call("isAdmin", &[]).unwrap_err();
/// assert!(err.starts_with("no answer within 20 ms"), "{err}");
/// ```
pub struct Deadline<H: ?Sized> {
    host: Arc<H>,
    timeout: Duration,
}

impl<H: ?Sized> Deadline<H> {
    /// Serves calls with `host`, waiting at most `timeout` for each answer.
    pub fn new(host: Arc<H>, timeout: Duration) -> Self {
        Deadline { host, timeout }
    }

    /// How long each call is waited for.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl<H: ?Sized> std::fmt::Debug for Deadline<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadline")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<H: FunctionHost + ?Sized + 'static> FunctionHost for Deadline<H> {
    fn call(&self, name: &str, arguments: &[Bson]) -> Result<Bson, String> {
        let (send, receive) = mpsc::sync_channel(1);
        let host = Arc::clone(&self.host);
        let owned_name = name.to_string();
        let owned_arguments = arguments.to_vec();
        let worker = std::thread::Builder::new()
            .name("rolegate-function".to_string())
            .spawn(move || {
                let result = call_caught(&*host, &owned_name, &owned_arguments);
                // The receiver is gone when the answer came too late: nothing to do.
                let _ = send.send(result);
            });
        if let Err(e) = worker {
            return Err(format!("could not start a thread for the call: {e}"));
        }
        match receive.recv_timeout(self.timeout) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "no answer within {} ms (the call was left running on its own thread)",
                millis(self.timeout)
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err("the call ended without an answer".to_string())
            }
        }
    }
}
