//! Stage: the request context's `%%request`. Input: what a host knows about the HTTP request
//! (method, address, headers, ...) and the operation. Output: the `%%request` document App
//! Services rules read (`{httpMethod, httpReferrer, httpUserAgent, rawQueryString,
//! remoteIPAddress, requestHeaders: {Name: [values]}, service, action, webhookUrl}`), for
//! [`ContextBuilder::request`](super::ContextBuilder::request).

use bson::{Bson, Document};

/// A builder of `%%request`. Fields left unset are absent (a rule reading them sees them
/// missing). Header values are arrays of strings, as App Services gives them, so a rule
/// comparing a header with a string matches any of its values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestInfo {
    fields: Document,
    headers: Document,
}

impl RequestInfo {
    /// An empty `%%request`.
    pub fn new() -> RequestInfo {
        RequestInfo::default()
    }

    fn set(mut self, key: &str, value: impl Into<String>) -> RequestInfo {
        self.fields.insert(key, value.into());
        self
    }

    /// `httpMethod` (`GET`, `POST`, ...).
    pub fn http_method(self, method: impl Into<String>) -> RequestInfo {
        self.set("httpMethod", method)
    }

    /// `remoteIPAddress`, the client's address.
    pub fn remote_ip_address(self, address: impl Into<String>) -> RequestInfo {
        self.set("remoteIPAddress", address)
    }

    /// `httpReferrer`.
    pub fn http_referrer(self, referrer: impl Into<String>) -> RequestInfo {
        self.set("httpReferrer", referrer)
    }

    /// `httpUserAgent`.
    pub fn http_user_agent(self, agent: impl Into<String>) -> RequestInfo {
        self.set("httpUserAgent", agent)
    }

    /// `rawQueryString`.
    pub fn raw_query_string(self, query: impl Into<String>) -> RequestInfo {
        self.set("rawQueryString", query)
    }

    /// `service`: the service (data source) the request addresses.
    pub fn service(self, service: impl Into<String>) -> RequestInfo {
        self.set("service", service)
    }

    /// `action`: the operation (`find`, `updateOne`, ...).
    pub fn action(self, action: impl Into<String>) -> RequestInfo {
        self.set("action", action)
    }

    /// `webhookUrl`.
    pub fn webhook_url(self, url: impl Into<String>) -> RequestInfo {
        self.set("webhookUrl", url)
    }

    /// Adds a value of header `name` to `requestHeaders` (a repeated header keeps every
    /// value, in order). Names are kept as given; rules look them up case-insensitively
    /// (decision U25).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> RequestInfo {
        let name = name.into();
        let value = Bson::String(value.into());
        match self.headers.get_mut(&name) {
            Some(Bson::Array(values)) => values.push(value),
            _ => {
                self.headers.insert(name, vec![value]);
            }
        }
        self
    }

    /// The `%%request` document.
    pub fn into_document(self) -> Document {
        let mut out = self.fields;
        if !self.headers.is_empty() {
            out.insert("requestHeaders", self.headers);
        }
        out
    }
}
