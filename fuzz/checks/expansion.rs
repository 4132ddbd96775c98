//! Fuzz target `expansion`: the nom expansion-string parser (`%%user.custom_data.team`) and the
//! bare field-path parser, alone and inside an expression.
//!
//! Checks beyond "no panic": a parsed expansion renders back to the same string and has
//! non-empty segments without `.`/`%`; a parsed field path joins back to the input; every error
//! span lies inside the input on character boundaries (diagnostics slice the string with it).
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/expansion.rs`) and the regression tests
//! (`crates/rolegate/src/fuzz_regressions.rs`), which include this file with `#[path]`: it may use only
//! `rolegate`, `serde_json` and `bson`.

use rolegate::fuzzing::{
    Dialect, Site, parse_expansion, parse_expr, parse_field_path, parse_subject,
};
use rolegate::rules::Root;
use rolegate::{Diagnostics, Place};
use serde_json::{Map, Value};

fn check_span(s: &str, span: &std::ops::Range<usize>) {
    assert!(span.start <= span.end, "span {span:?} of {s:?}");
    assert!(
        s.get(span.clone()).is_some(),
        "span {span:?} not inside {s:?}"
    );
}

pub fn run(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match parse_expansion(s) {
        Ok(e) => {
            assert_eq!(e.to_string(), s, "round trip");
            for seg in &e.path {
                assert!(
                    !seg.is_empty() && !seg.contains('.') && !seg.contains('%'),
                    "{seg:?}"
                );
            }
        }
        Err(err) => {
            check_span(s, &err.span);
            assert!(!err.message.is_empty());
        }
    }
    match parse_field_path(s) {
        Ok(segments) => assert_eq!(segments.join("."), s),
        Err(err) => check_span(s, &err.span),
    }
    for root in [Root::Root, Root::Args] {
        if let Err(err) = parse_subject(s, root) {
            check_span(s, &err.span);
        }
    }
    // In an expression: as a subject key and as an operand, at a site that allows every root.
    let mut clause = Map::new();
    clause.insert(s.to_string(), Value::String(s.to_string()));
    let mut diags = Diagnostics::default();
    let _ = parse_expr(
        &Value::Object(clause),
        Dialect::MongoDb,
        Site::Any,
        &Place::file("fuzz.json"),
        &mut diags,
    );
    for d in &diags.0 {
        if let Some(span) = &d.place.span {
            // The span is inside the key or the value, which are both `s`.
            check_span(s, span);
        }
    }
}
