//! Stage: reading a watch request. Input: the `baas_request` query parameter: the request body
//! `{"name": "watch", "arguments": [{"database", "collection", "ids" | "filter"}], "service"}`
//! as JSON (canonical or relaxed Extended JSON), base64-encoded (standard alphabet), then
//! percent-encoded (which the query-string reader undoes). Output: a [`WatchRequest`], or the
//! error the client gets before any stream starts (400 `BadRequest` for a parameter that is
//! not such a body, 400 `InvalidParameter` for arguments that are wrong).
//!
//! * `ids` (an array of `_id` values) and `filter` (a query on the change events, checked like
//!   a `find`'s query: only the operators clients may use) exclude each other; neither selects
//!   every change of the collection.

use axum::http::StatusCode;
use bson::{Bson, Document};
use rolegate::EvalError;
use rolegate::mql::{check_client_query, compile_query, matches};
use rolegate::ops::{Namespace, OpError};

use crate::error::ApiError;

/// How deep a filter may nest (as the rules' default document depth).
const MAX_FILTER_DEPTH: usize = 100;

/// A checked watch request.
#[derive(Debug)]
pub struct WatchRequest {
    /// The service (data source) the client named.
    pub service: String,
    /// The collection watched.
    pub namespace: Namespace,
    /// Which events the client asked for.
    pub selector: Selector,
}

/// Which of the events the user may see the client asked for.
#[derive(Debug)]
pub enum Selector {
    /// Every event.
    All,
    /// The events whose `documentKey._id` is one of these.
    Ids(Vec<Bson>),
    /// The events the query matches.
    Filter(Filter),
}

/// A parsed query, applied to one document.
type Matcher = Box<dyn Fn(&Document) -> Result<bool, EvalError> + Send + Sync>;

/// A client's query on change events, checked and parsed once.
pub struct Filter {
    matcher: Matcher,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Filter")
    }
}

impl Filter {
    /// Checks and parses `query` (the operators clients may use, the depth guard).
    pub fn new(query: &Document) -> Result<Filter, ApiError> {
        check_client_query(query, MAX_FILTER_DEPTH)
            .map_err(|e| ApiError::from_op(&OpError::from(e)))?;
        let expr = compile_query(query).map_err(|_| invalid("`filter` is not a valid query"))?;
        Ok(Filter {
            matcher: Box::new(move |doc| matches(&expr, doc)),
        })
    }

    /// Whether the query matches `event` (an error when its evaluation fails, e.g. over its
    /// step budget).
    pub fn matches(&self, event: &Document) -> Result<bool, EvalError> {
        (self.matcher)(event)
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidParameter", message)
}

/// The body a `baas_request` parameter carries (after percent-decoding): base64, then JSON.
pub fn decode(parameter: &str) -> Result<Document, ApiError> {
    // A `+` the client did not percent-encode reads as a space in a query string.
    let text: String = parameter
        .trim()
        .chars()
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    let bytes = base64_decode(&text)
        .ok_or_else(|| ApiError::bad_request("`baas_request` is not base64"))?;
    crate::http::document(&bytes)
}

/// Standard base64 (`A-Z a-z 0-9 + /`), with or without `=` padding; `None` for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    if text.len() != body.len() && !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in body.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xFF).ok()?);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero (a canonical encoding).
    (acc == 0).then_some(out)
}

impl WatchRequest {
    /// Reads a decoded body: `name` must be `watch`, `service` a string, `arguments` one
    /// document with `database`, `collection`, and `ids` or `filter` (or neither).
    pub fn from_body(body: &Document) -> Result<WatchRequest, ApiError> {
        if let Some(key) = body
            .keys()
            .find(|k| !matches!(k.as_str(), "name" | "arguments" | "service"))
        {
            return Err(invalid(&format!(
                "unknown body field `{}`",
                key.chars().take(64).collect::<String>()
            )));
        }
        match body.get("name") {
            Some(Bson::String(n)) if n == "watch" => {}
            Some(Bson::String(_)) => {
                return Err(ApiError::bad_request(
                    "only `watch` is served as a stream; call other functions with POST",
                ));
            }
            _ => return Err(invalid("`name` must be the string `watch`")),
        }
        let Some(Bson::String(service)) = body.get("service") else {
            return Err(invalid(
                "`service` must be the name of a MongoDB data source",
            ));
        };
        let argument = match body.get("arguments") {
            Some(Bson::Array(items)) => match items.as_slice() {
                [Bson::Document(d)] => d,
                _ => return Err(invalid("`arguments` must hold exactly one document")),
            },
            _ => return Err(invalid("`arguments` must be an array")),
        };
        let name = |key: &str| match argument.get(key) {
            Some(Bson::String(s)) if !s.is_empty() && !s.contains('\0') => Ok(s.clone()),
            _ => Err(invalid(&format!("`{key}` must be a non-empty name"))),
        };
        let namespace = Namespace::new(name("database")?, name("collection")?);
        if let Some(key) = argument
            .keys()
            .find(|k| !matches!(k.as_str(), "database" | "collection" | "ids" | "filter"))
        {
            return Err(invalid(&format!(
                "unknown argument `{}` for `watch`",
                key.chars().take(64).collect::<String>()
            )));
        }
        let selector = match (argument.get("ids"), argument.get("filter")) {
            (Some(_), Some(_)) => return Err(invalid("give `ids` or `filter`, not both")),
            (Some(Bson::Array(ids)), None) => Selector::Ids(ids.clone()),
            (Some(_), None) => return Err(invalid("`ids` must be an array")),
            (None, Some(Bson::Document(query))) => Selector::Filter(Filter::new(query)?),
            (None, Some(_)) => return Err(invalid("`filter` must be a document")),
            (None, None) => Selector::All,
        };
        Ok(WatchRequest {
            service: service.clone(),
            namespace,
            selector,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use super::*;
    use bson::doc;

    #[test]
    fn base64_standard_with_and_without_padding() {
        for (text, bytes) in [
            ("", &b""[..]),
            ("Zg==", b"f"),
            ("Zg", b"f"),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg==", b"foob"),
            ("+/8=", &[0xfb, 0xff]),
        ] {
            assert_eq!(base64_decode(text).as_deref(), Some(bytes), "{text}");
        }
        for bad in ["Z", "Zg=", "Zh==", "Zg===", "Zm9v-_", "Zm 9", "=Zg="] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_parameter_reads_as_a_body() {
        // {"name":"watch"} in base64; a `+` decoded to a space is read back as `+`.
        assert_eq!(
            decode("eyJuYW1lIjoid2F0Y2gifQ==").unwrap(),
            doc! {"name": "watch"}
        );
        assert_eq!(
            base64_decode("+/8="),
            base64_decode(" /8=".replace(' ', "+").as_str())
        );
        let e = decode("not base64!").unwrap_err();
        assert_eq!(e.code, "BadRequest");
        let e = decode("bm90IGpzb24=").unwrap_err(); // "not json"
        assert_eq!(e.code, "BadRequest");
    }

    fn body(args: Document) -> Document {
        let mut a = doc! {"database": "db", "collection": "c"};
        a.extend(args);
        doc! {"name": "watch", "arguments": [a], "service": "mongodb-atlas"}
    }

    #[test]
    fn selectors_and_refusals() {
        let w = WatchRequest::from_body(&body(doc! {})).unwrap();
        assert!(matches!(w.selector, Selector::All));
        assert_eq!(w.namespace, Namespace::new("db", "c"));
        let w = WatchRequest::from_body(&body(doc! {"ids": [1, "x"]})).unwrap();
        assert!(matches!(w.selector, Selector::Ids(ref ids) if ids.len() == 2));
        let w = WatchRequest::from_body(&body(doc! {"filter": {"fullDocument.n": {"$gt": 1}}}))
            .unwrap();
        let Selector::Filter(f) = w.selector else {
            panic!("a filter")
        };
        assert!(f.matches(&doc! {"fullDocument": {"n": 2}}).unwrap());
        assert!(!f.matches(&doc! {"fullDocument": {"n": 1}}).unwrap());

        for (b, code) in [
            (body(doc! {"ids": [1], "filter": {}}), "InvalidParameter"),
            (body(doc! {"ids": 1}), "InvalidParameter"),
            (body(doc! {"filter": []}), "InvalidParameter"),
            (body(doc! {"filter": {"$where": "1"}}), "InvalidParameter"),
            (body(doc! {"query": {}}), "InvalidParameter"),
            (
                doc! {"name": "find", "arguments": [{}], "service": "s"},
                "BadRequest",
            ),
            (
                doc! {"name": "watch", "arguments": [{"database": "db", "collection": "c"}]},
                "InvalidParameter",
            ),
            (
                doc! {"name": "watch", "arguments": [], "service": "s"},
                "InvalidParameter",
            ),
            (
                doc! {"name": "watch", "arguments": [{"database": "", "collection": "c"}], "service": "s"},
                "InvalidParameter",
            ),
            (
                doc! {"name": "watch", "arguments": [{}], "service": "s", "x": 1},
                "InvalidParameter",
            ),
        ] {
            let e = WatchRequest::from_body(&b).unwrap_err();
            assert_eq!(e.code, code, "{b}");
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{b}");
        }
    }
}
