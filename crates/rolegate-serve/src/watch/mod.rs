//! Stage: `watch`, MongoDB change streams for App Services clients, as server-sent events.
//! Input: a `GET …/functions/call?baas_request=…` request and the server's change feed
//! ([`crate::feed`]). Output: per stream, the change events of one collection that its user
//! may see, redacted as a `find` would return the documents, in commit order.
//!
//! ```text
//! baas_request ─request::decode─▶ WatchRequest ─(user, rules)─▶ Watcher
//! ChangeFeed ─subscribe─▶ FeedEvent ─Session::view─▶ event document ─sse─▶ `data: …`
//! ```
//!
//! Modules: [`request`] (the request's parameter, read and checked), [`view`] (what the user
//! sees of each event), [`sse`] (the event-stream framing, with App Services' percent-encoding),
//! [`streams`] (how many streams may be open, and their end at shutdown). The handler is
//! `routes::watch`.

pub mod request;
pub mod sse;
pub mod streams;
pub mod view;
