//! Stage: the event-stream framing of `watch`. Input: an event as JSON text, or an error's code
//! and message. Output: the bytes of one server-sent event as App Services clients parse them
//! (realm-web and realm-core share one parser): `data: <text>` and an empty line; an error is
//! `event: error` with `data: {"error", "error_code"}`, after which the client stops; a line
//! starting with `:` is a comment the clients ignore (keep-alives).
//!
//! The data is percent-encoded the way App Services did and the clients undo: exactly `%` as
//! `%25`, LF as `%0A` and CR as `%0D`; every other character passes through. (Compact JSON has
//! no raw LF or CR; `%` must be encoded, or a value holding `%0A` would reach the client as a
//! line break.)

/// A comment sent when the stream opens (the headers and the first bytes go out at once).
pub const OPENED: &str = ": watching\n\n";

/// A comment sent when nothing else was sent for a while (proxies and clients see the
/// connection alive).
pub const KEEP_ALIVE: &str = ": keep-alive\n\n";

/// `text` with `%`, LF and CR percent-encoded.
pub fn encode_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            c => out.push(c),
        }
    }
    out
}

/// One event whose data is `json`.
pub fn event(json: &str) -> String {
    format!("data: {}\n\n", encode_data(json))
}

/// An error event: the client stops with `code` and `message`.
pub fn error(code: &str, message: &str) -> String {
    let body = serde_json::json!({"error": message, "error_code": code});
    format!("event: error\ndata: {}\n\n", encode_data(&body.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::string_slice, reason = "tests")]

    use super::*;

    #[test]
    fn only_percent_lf_and_cr_are_encoded() {
        let text = "a%0Ab\nc\rd%25%e+é";
        let encoded = encode_data(text);
        assert_eq!(encoded, "a%250Ab%0Ac%0Dd%2525%25e+é");
        assert!(!encoded.contains('\n') && !encoded.contains('\r'));
        assert_eq!(decode_exactly(&encoded), text);
        assert_eq!(decode_exactly("x%25y%2"), "x%y%2");
    }

    /// The clients' left-to-right decoding.
    fn decode_exactly(data: &str) -> String {
        let mut out = String::new();
        let mut rest = data;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let seq = rest.get(i..i + 3).unwrap_or(&rest[i..]);
            out.push_str(match seq {
                "%25" => "%",
                "%0A" => "\n",
                "%0D" => "\r",
                other => other,
            });
            rest = &rest[i + seq.len()..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn frames() {
        assert_eq!(event("{\"a\":\"%\"}"), "data: {\"a\":\"%25\"}\n\n");
        let e = error("InvalidSession", "invalid session");
        assert!(e.starts_with("event: error\ndata: {"), "{e}");
        assert!(e.ends_with("}\n\n"));
        let data = e
            .trim_end()
            .strip_prefix("event: error\ndata: ")
            .unwrap_or("");
        let json: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        assert_eq!(json["error_code"], "InvalidSession");
        assert_eq!(json["error"], "invalid session");
    }
}
