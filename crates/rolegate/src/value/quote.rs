//! Stage: explanations (detailed view only). Input: a BSON value an explanation or a detailed
//! error quotes (a document value, an operand, a `%function` argument). Output: its relaxed
//! Extended JSON text, cut to about [`MAX_QUOTE`] characters with a `...(truncated)` marker.
//!
//! The text is written by a walk that stops once the budget is spent, so quoting a value costs
//! at most about [`MAX_QUOTE`] characters of work whatever its size: an explanation that quotes
//! a large document at every rule stays linear in the number of rules and small. Large binary
//! values are summarised (`Binary(subtype 0, 4096 bytes)`), never encoded.
//!
//! Quoted values may be values the user's role hides: this text is for operators (logs,
//! `--explain`), never for clients ([`crate::outcome`] explains the two views).

use std::fmt::Write;

use bson::Bson;

/// About how many characters a quoted value may take before it is cut.
pub const MAX_QUOTE: usize = 80;

/// The marker that ends a value cut short.
pub const TRUNCATED: &str = "...(truncated)";

/// `v` as relaxed Extended JSON, cut to about [`MAX_QUOTE`] characters (module docs).
pub fn quote(v: &Bson) -> String {
    quote_within(v, MAX_QUOTE)
}

/// `v` as relaxed Extended JSON, cut to about `limit` characters.
pub fn quote_within(v: &Bson, limit: usize) -> String {
    let mut out = String::new();
    if !write_value(v, &mut out, limit) {
        out.push_str(TRUNCATED);
    }
    out
}

/// The document `d` as relaxed Extended JSON, cut to about `limit` characters.
pub fn quote_document_within(d: &bson::Document, limit: usize) -> String {
    let mut out = String::new();
    if !write_document(d, &mut out, limit) {
        out.push_str(TRUNCATED);
    }
    out
}

/// Appends `v` to `out`; false when it was cut because `out` reached `limit` characters.
fn write_value(v: &Bson, out: &mut String, limit: usize) -> bool {
    if out.len() >= limit {
        return false;
    }
    match v {
        Bson::String(s) => write_string(s, out, limit),
        Bson::Document(d) => write_document(d, out, limit),
        Bson::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !write_value(item, out, limit) {
                    return false;
                }
            }
            out.push(']');
            true
        }
        Bson::Binary(b) if b.bytes.len() > 32 => {
            let _ = write!(
                out,
                "Binary(subtype {}, {} bytes)",
                u8::from(b.subtype),
                b.bytes.len()
            );
            true
        }
        Bson::JavaScriptCode(code) => {
            out.push_str("{\"$code\":");
            write_string(code, out, limit) && {
                out.push('}');
                true
            }
        }
        Bson::JavaScriptCodeWithScope(c) => {
            out.push_str("{\"$code\":");
            write_string(&c.code, out, limit) && {
                out.push_str(",\"$scope\":");
                write_document(&c.scope, out, limit) && {
                    out.push('}');
                    true
                }
            }
        }
        Bson::Symbol(s) => {
            out.push_str("{\"$symbol\":");
            write_string(s, out, limit) && {
                out.push('}');
                true
            }
        }
        Bson::RegularExpression(re) => {
            out.push('/');
            let cut = push_cut(&re.pattern, out, limit);
            out.push('/');
            out.push_str(&re.options);
            cut
        }
        // Every other type has a small, bounded form.
        scalar => {
            let text = scalar.clone().into_relaxed_extjson().to_string();
            out.push_str(&text);
            true
        }
    }
}

/// Appends the document `d`; false when it was cut.
fn write_document(d: &bson::Document, out: &mut String, limit: usize) -> bool {
    out.push('{');
    for (i, (k, value)) in d.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if !write_string(k, out, limit) {
            return false;
        }
        out.push(':');
        if !write_value(value, out, limit) {
            return false;
        }
    }
    out.push('}');
    true
}

/// Appends `s` as a JSON string, cut when `out` reaches `limit` characters.
fn write_string(s: &str, out: &mut String, limit: usize) -> bool {
    out.push('"');
    let whole = push_cut(s, out, limit);
    if whole {
        out.push('"');
    }
    whole
}

/// Appends `s` JSON-escaped while `out` is shorter than `limit`; false when it was cut.
fn push_cut(s: &str, out: &mut String, limit: usize) -> bool {
    for c in s.chars() {
        if out.len() >= limit {
            return false;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn small_values_are_quoted_whole() {
        assert_eq!(quote(&Bson::String("u1".into())), "\"u1\"");
        assert_eq!(quote(&Bson::Int32(5)), "5");
        assert_eq!(quote(&Bson::Boolean(false)), "false");
        assert_eq!(
            quote(&Bson::Document(doc! {"a": [1, "x"]})),
            "{\"a\":[1,\"x\"]}"
        );
    }

    #[test]
    fn long_values_are_cut_with_a_marker() {
        let long = "x".repeat(10_000);
        let q = quote(&Bson::String(long));
        assert!(q.ends_with(TRUNCATED), "{q}");
        assert!(q.len() <= MAX_QUOTE + TRUNCATED.len() + 8, "{}", q.len());
        let mut big = bson::Document::new();
        for i in 0..10_000 {
            big.insert(format!("k{i}"), i);
        }
        let q = quote(&Bson::Document(big));
        assert!(q.ends_with(TRUNCATED), "{q}");
        assert!(q.len() <= MAX_QUOTE + TRUNCATED.len() + 8, "{}", q.len());
        let bin = Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: vec![0; 4096],
        });
        assert_eq!(quote(&bin), "Binary(subtype 0, 4096 bytes)");
    }
}
