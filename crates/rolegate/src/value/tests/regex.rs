//! MongoDB regular expressions on the linear-time engine (src/value/regex.rs): PCRE2's answers
//! in MongoDB's configuration (UTF, no UCP, LF newlines), and the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::value::compare::compile_regex;
use crate::value::regex::{
    MAX_NESTING, MAX_PATTERN_LEN, RegexErrorKind, compile, translate, translate_unbounded,
};
use proptest::prelude::*;

/// Whether `pattern` with `options` matches `subject`.
fn m(pattern: &str, options: &str, subject: &str) -> bool {
    compile(pattern, options)
        .unwrap_or_else(|e| panic!("`{pattern}` /{options}: {e}"))
        .is_match(subject)
}

/// The error of a pattern that must not compile, checked to be of `kind`.
fn err(pattern: &str, options: &str, kind: RegexErrorKind) -> String {
    let e = compile(pattern, options).expect_err(pattern);
    assert_eq!(e.kind, kind, "`{pattern}`: {e}");
    e.to_string()
}

/// A refusal: MongoDB accepts the pattern, the linear-time engine cannot run it; the message
/// says why and the hint how.
fn refused(pattern: &str, says: &str) {
    let e = compile(pattern, "").expect_err(pattern);
    assert_eq!(e.kind, RegexErrorKind::Unsupported, "`{pattern}`: {e}");
    assert!(e.message.contains(says), "`{pattern}`: {e}");
    assert!(e.hint.is_some(), "`{pattern}` has no hint");
}

/// Backtracking verbs where they cannot change the answer (regex_verbs.js): a leading `(*PRUNE)`,
/// `(*SKIP)` or `(*THEN)` of a one-alternative pattern, a leading `(*COMMIT)` before one
/// character (PCRE2 starts where that character is), any of them at the end of an alternative,
/// `(*ACCEPT)` at the top level (the rest of its alternative is never needed), marks, and
/// `(*SKIP:NAME)` without a mark of its name (ignored by PCRE2).
#[test]
fn verbs_where_they_cannot_change_the_answer() {
    for verb in ["(*PRUNE)", "(*PRUNE:N)", "(*SKIP)", "(*THEN)", "(*THEN:N)"] {
        assert!(m(&format!("{verb}ab+c"), "", "xabbc"), "{verb}");
        assert!(!m(&format!("{verb}ab+c"), "", "xac"), "{verb}");
        assert!(m(verb, "", ""), "{verb}");
    }
    assert!(m("(*COMMIT)a", "", "ba"));
    assert!(!m("(*COMMIT)a", "", "b"));
    assert!(m("(*COMMIT)[Bb]", "", "aB"));
    for verb in ["(*COMMIT)", "(*PRUNE)", "(*SKIP)", "(*THEN)"] {
        assert!(m(&format!("ab{verb}|cd{verb}"), "", "xcd"), "{verb}");
        assert!(!m(&format!("ab{verb}|cd{verb}"), "", "xc"), "{verb}");
        assert!(m(&format!("(?x)a {verb} # done"), "", "a"), "{verb}");
    }
    assert!(m("(*ACCEPT)c", "", "b"));
    assert!(m("b(*ACCEPT)c", "", "ab"));
    assert!(!m("b(*ACCEPT)c", "", "a"));
    assert!(m("x(*ACCEPT)y|z", "", "z"));
    assert!(m("^a(*ACCEPT)$", "", "ab"));
    assert!(m("(*MARK:m)a(*:n)b", "", "ab"));
    assert!(m("a(*SKIP:nomark)b", "", "ab"));
}

/// `(*UCP)`: `\d`, `\w`, `\s` and POSIX classes as PCRE2's Unicode definitions
/// (regex_unicode.js).
#[test]
fn ucp_makes_classes_unicode() {
    assert!(!m(r"^\w+$", "", "박정수"));
    assert!(m(r"(*UCP)^\w+$", "", "박정수"));
    assert!(m(r"(*UCP)^\d+$", "", "\u{f23}\u{b6a}"));
    assert!(!m(r"(*UCP)\d", "", "\u{bd}"));
    assert!(m(r"(*UCP)^\s$", "", "\u{2003}"));
    assert!(m(r"(*UCP)^\S$", "", "é"));
    assert!(m(r"(*UCP)^[[:alpha:]]+$", "", "suárez"));
    assert!(m(r"(*UCP)^[[:^digit:]]$", "", "a"));
    assert!(m(r"(*UCP)^[\W]$", "", "-"));
    assert!(!m(r"(*UCP)^[\W]$", "", "é"));
    assert!(m(r"(*UCP)^[[:xdigit:]]$", "", "F"));
}

#[test]
fn digits_are_ascii() {
    // jstests/core/query/regex/regex_unicode.js: `\d` and `[[:digit:]]` are ASCII by default.
    assert!(!m(r"\d", "", "٣"));
    assert!(!m(r"\d", "", "༣"));
    assert!(m(r"\d", "", "9୩"));
    assert!(!m(r"^\d+$", "", "9୩୪୬୯6"));
    assert!(m(r"^\d+$", "", "02191996"));
    assert!(m(r"\D", "", "٣"));
    assert!(!m(r"[[:digit:]]", "", "༢༣"));
}

#[test]
fn word_characters_are_ascii() {
    assert!(!m(r"\w", "", "é"));
    assert!(!m(r"\w", "", "박정수"));
    assert!(m(r"\w", "", "suárez"));
    assert!(!m(r"^\w+$", "", "suárez"));
    assert!(m(r"^\w+$", "", "kyle_9"));
    assert!(m(r"\W", "", "é"));
    assert!(!m(r"^[[:alpha:]]+$", "", "suárez"));
    assert!(m(r"[[:alpha:]]", "", "suárez"));
}

#[test]
fn spaces_are_ascii_and_include_vertical_tab() {
    assert!(!m(r"\s", "", "\u{a0}"));
    assert!(!m(r"\s", "", "\u{2003}"));
    assert!(m(r"\s", "", "\u{b}"));
    assert!(m(r"[[:space:]]", "", "\u{b}"));
    assert!(m(r"\S", "", "\u{3000}"));
}

#[test]
fn word_boundaries_are_ascii() {
    // `é` is not a word character, so there is no boundary before it at the start.
    assert!(!m(r"\bé", "", "é"));
    assert!(m(r"\Bé", "", "é"));
    assert!(m(r"é\b", "", "éa"));
    assert!(!m(r"a\Bé", "", "aé"));
    assert!(m(r"a\bé", "", "aé"));
    // `\B` holds inside `é` byte-wise; that must not hide the match of `é` itself.
    assert!(m(r"(?:\B|é)+", "", "aéa"));
    assert!(!m(r"a\Ba", "", "aéa"));
    assert!(m(r"[[:<:]]a", "", "é a"));
    assert!(!m(r"[[:<:]]a", "", "ba"));
    assert!(m(r"a[[:>:]]", "", "aé"));
}

#[test]
fn dollar_also_matches_before_a_final_newline() {
    assert!(m("^a$", "", "a\n"));
    assert!(m("^a$", "", "a"));
    assert!(!m("^a$", "", "a\n\n"));
    assert!(!m("^a$", "", "a\nb"));
    assert!(m("a$|b", "", "xa\n"));
    assert!(m("(?:a$|c$)", "", "c\n"));
    assert!(m("a$$", "", "a\n"));
    assert!(m(r"a\Z", "", "a\n"));
    assert!(m(r"a\Z", "m", "a\n"));
    assert!(!m(r"a\z", "", "a\n"));
    assert!(m(r"a\z", "", "a"));
    assert!(!m("^a$", "", "\na"));
}

#[test]
fn multi_line_anchors_match_at_internal_newlines() {
    assert!(m("^b$", "m", "a\nb\nc"));
    assert!(m("^b$", "m", "a\nb\n"));
    assert!(!m("^b$", "", "a\nb\nc"));
    assert!(m("(?m)^c", "", "a\nc"));
    assert!(m("a$", "m", "a\nb"));
    assert!(m(r"\Aa", "m", "a\nb"));
    assert!(!m(r"\Ab", "m", "a\nb"));
}

#[test]
fn extended_mode_keeps_whitespace_and_hash_inside_classes() {
    assert!(m("^a[ ]b$", "x", "a b"));
    assert!(!m("^a[ ]b$", "x", "ab"));
    assert!(m("^a [#] b$", "x", "a#b"));
    assert!(m("^a b # a comment\n c$", "x", "abc"));
    assert!(m(r"^a\ b$", "x", "a b"));
    assert!(m("^a +$", "x", "aaa"));
    // Whitespace is not skipped between a quantifier and its lazy `?` (decision RX9).
    err("a* ?", "x", RegexErrorKind::Invalid);
    assert!(m("(?x) a b", "", "ab"));
    assert!(m(r"^\Qa b\E$", "x", "a b"));
    // `(?xx)` also ignores space and tab in classes.
    assert!(m("(?xx)^[a b]+$", "", "abba"));
    assert!(!m("(?xx)^[a b]$", "", " "));
    // Unicode's Pattern_White_Space is ignored in UTF mode.
    assert!(m("^a\u{2028}b$", "x", "ab"));
}

#[test]
fn dot_matches_newline_only_with_s() {
    assert!(!m("a.b", "", "a\nb"));
    assert!(m("a.b", "s", "a\nb"));
    assert!(m("a.b", "", "a\rb"));
    assert!(m("(?s)a.b", "", "a\nb"));
    assert!(!m(r"a\Nb", "s", "a\nb"));
    assert!(m(r"a\Nb", "s", "a\u{2028}b"));
}

#[test]
fn options_are_i_m_s_x_u_only() {
    assert!(m("^hello", "u", "hello_test"));
    let e = compile("^hello", "g").unwrap_err();
    assert_eq!(e.kind, RegexErrorKind::Options);
    assert_eq!(e.message, "invalid flag in regex options: g");
    assert_eq!(
        compile("a", "\0i").unwrap_err().message,
        "invalid flag in regex options: \\0"
    );
    assert!(
        compile_regex("a", "l")
            .unwrap_err()
            .contains("invalid flag")
    );
}

#[test]
fn caseless_matching_folds_unicode_but_not_character_types() {
    assert!(m("É", "i", "é"));
    assert!(m("(?i)É", "", "é"));
    assert!(m("(?i)[à-ä]", "", "Â"));
    assert!(m("(?i)k", "", "\u{212a}"));
    assert!(!m("(?i)[^k]", "", "\u{212a}"));
    // `\w`, `\W` and POSIX classes are not folded: the Kelvin sign is not an ASCII word
    // character.
    assert!(!m(r"(?i)\w", "", "\u{212a}"));
    assert!(m(r"(?i)\W", "", "\u{212a}"));
    assert!(!m(r"(?i)[[:alpha:]]", "", "\u{17f}"));
    // PCRE2 reads `[:upper:]` and `[:lower:]` as `[:alpha:]` when caseless.
    assert!(m(r"(?i)[[:upper:]]", "", "a"));
    assert!(!m(r"[[:upper:]]", "", "a"));
    // Property classes are not folded (PCRE2 10.42).
    assert!(!m(r"(?i)\p{Lu}", "", "a"));
}

#[test]
fn inline_options_scope_like_pcre2() {
    // A setting carries into later alternatives of its group, and ends with the group.
    assert!(m("a(?i)b|c", "", "C"));
    assert!(m("(a(?i)b)c", "", "aBc"));
    assert!(!m("(a(?i)b)c", "", "aBC"));
    assert!(m("(?i:a)b", "", "Ab"));
    assert!(!m("(?i:a)b", "", "AB"));
    assert!(m("(?i)a(?-i)b", "", "Ab"));
    assert!(!m("(?i)a(?-i)b", "", "AB"));
    assert!(m("(?^i)a", "m", "A"));
    assert!(m("(?s-i:.)", "i", "\n"));
    // `n`, `J` and `U` are accepted.
    assert!(m("(?nU)a+", "", "aa"));
}

#[test]
fn classes_follow_pcre2() {
    assert!(m("[]a]", "", "]"));
    assert!(m("[^]a]", "", "b"));
    assert!(!m("[^]a]", "", "]"));
    assert!(m("[a-]", "", "-"));
    assert!(m("[-a]", "", "-"));
    assert!(m(r"[\d-]", "", "-"));
    assert!(!m(r"[^\D]", "", "٣"));
    assert!(m(r"[^\D]", "", "3"));
    assert!(m(r"[\W\d]", "", "é"));
    assert!(!m(r"[\W\d]", "", "a"));
    assert!(m(r"[\b]", "", "\u{8}"));
    assert!(m(r"[\Q]\E]", "", "]"));
    assert!(m(r"[[:^alpha:]]", "", "1"));
    assert!(m(r"[[:punct:]]", "", "~"));
    assert!(!m(r"[[:punct:]]", "", "¿"));
    assert!(m(r"[\h]", "", "\u{3000}"));
    assert!(m(r"[\x{100}-\x{200}]", "", "\u{150}"));
    assert!(m("[[:word:]]", "", "_"));
    assert!(m("[a[]", "", "["));
}

#[test]
fn escapes_follow_pcre2() {
    assert!(m(r"\x41\x{263A}", "", "A☺"));
    assert!(m(r"^\x$", "", "\0"));
    assert!(m(r"\o{101}\0101", "", "A\u{8}1"));
    assert!(m(r"\cA\c[\e\a\f\t", "", "\u{1}\u{1b}\u{1b}\u{7}\u{c}\t"));
    assert!(m(r"\ca", "", "\u{1}"));
    assert!(m(r"\h", "", "\u{a0}"));
    assert!(!m(r"\h", "", "\n"));
    assert!(m(r"\v", "", "\u{2028}"));
    assert!(m(r"\v", "", "\u{b}"));
    assert!(!m(r"\V", "", "\u{2029}"));
    assert!(m(r"^\H\V$", "", "ab"));
    assert!(m(r"^\R$", "", "\r\n"));
    assert!(m(r"^a\Rb$", "", "a\u{85}b"));
    assert!(m(r"^a\R+b$", "", "a\r\n\nb"));
    assert!(m(r"\N{U+41}", "", "A"));
    assert!(m(r"a\N{2}b", "", "axyb"));
    assert!(m(r"^\Qa.b\E$", "", "a.b"));
    assert!(!m(r"^\Qa.b\E$", "", "axb"));
    assert!(m(r"^\Qa.b$", "", "a.b$"));
    assert!(m(r"^a\Q\E+$", "", "aaa"));
    assert!(m(r"^a(?#comment)+$", "", "aa"));
    assert!(m(r"\%\ \é", "", "% é"));
    assert!(m(r"[\1]", "", "\u{1}"));
    // Backreference or octal: with fewer groups than the number, up to three octal digits.
    assert!(m(r"^\101$", "", "A"));
    assert!(m(r"^\12$", "", "\n"));
    assert!(m(r"^(a)\18$", "", "a\u{1}8"));
    assert!(m(r"^\1011$", "", "A1"));
}

#[test]
fn quantifiers_follow_pcre2() {
    assert!(m("^x{2}$", "", "xx"));
    assert!(m("^x{2,}$", "", "xxxx"));
    assert!(m("^x{1,2}?$", "", "xx"));
    // Not a quantifier in PCRE2 10.42: literal braces.
    assert!(m("^a{,3}$", "", "a{,3}"));
    assert!(m("^a{1, 3}$", "", "a{1, 3}"));
    assert!(m("^{$", "", "{"));
    assert!(m("^x{a}$", "", "x{a}"));
}

#[test]
fn groups_and_verbs_pcre2_accepts() {
    assert!(m("^(?<n>a)(?P<m>b)(?'o'c)(?:d)(?|e)$", "", "abcde"));
    assert!(m("(?J)(?<n>a)|(?<n>b)", "", "b"));
    assert!(m("(*UTF)á", "", "suárez"));
    assert!(m("(*UTF8)(*UTF)e", "", "kyle"));
    assert!(!m("(*FAIL)", "", "a"));
    assert!(!m("a(*FAIL)", "", "a"));
    assert!(!m("(*F)b", "", "b"));
    assert!(m("a(*FAIL)|b", "", "b"));
    assert!(m("()", "", ""));
}

#[test]
fn unicode_properties_follow_pcre2() {
    // jstests/core/query/regex/regex_unicode.js.
    assert!(m(r"\p{Latin}", "", "kyle"));
    assert!(m(r"^\p{Latin}+$", "", "suárez"));
    assert!(m(r"^\p{Hangul}+$", "", "박정수"));
    assert!(m(r"^\p{L}+$", "", "박정수"));
    assert!(m(r"^\p{Xan}+$", "", "༢༣༤༥"));
    assert!(m(r"^\p{N}+$", "", "9୩୪୬୯6"));
    // Scripts are script extensions since PCRE2 10.40: U+00B7 is in Greek's extensions.
    assert!(m(r"^\p{Greek}", "", "\u{b7}"));
    assert!(!m(r"^\p{sc=Greek}", "", "\u{b7}"));
    assert!(m(r"^\pL\PL$", "", "a1"));
    assert!(m(r"^\p{^L}$", "", "1"));
    assert!(m(r"^\p{L&}+$", "", "aB"));
    assert!(m(r"^\p{Xwd}+$", "", "é_1"));
    assert!(m(r"^\p{Xsp}$", "", "\u{2003}"));
    assert!(m(r"^[\p{Lu}\d]+$", "", "É9"));
    assert!(m(r"^\p{Any}$", "", "\n"));
    err(r"\p{NoSuchProperty}", "", RegexErrorKind::Invalid);
}

#[test]
fn invalid_patterns_get_pcre2_messages() {
    let cases = [
        ("[)", "missing terminating ]"),
        ("(a", "missing closing parenthesis"),
        ("a)", "unmatched closing parenthesis"),
        ("*a", "quantifier does not follow a repeatable item"),
        ("a**", "quantifier does not follow a repeatable item"),
        ("^*", "quantifier does not follow a repeatable item"),
        (r"\b+", "quantifier does not follow a repeatable item"),
        ("a|?", "quantifier does not follow a repeatable item"),
        ("\\", "\\ at end of pattern"),
        ("[z-a]", "range out of order"),
        (r"[a-\d]", "invalid range"),
        (r"[\d-z]", "invalid range"),
        ("x{3,2}", "numbers out of order"),
        ("x{65536}", "number too big"),
        (r"\y", "unrecognized character follows \\"),
        (r"\u0041", "PCRE2 does not support"),
        (r"\x{110000}", "too large"),
        (r"\x{d800}", "disallowed Unicode code point"),
        (r"\c", "\\c must be followed"),
        ("[:alpha:]", "only within a class"),
        ("[[:foo:]]", "unknown POSIX class name"),
        ("[[.a.]]", "collating elements"),
        ("(?<1a>x)", "must start with a non-digit"),
        ("(?<n>a)(?<n>b)", "same name"),
        ("(?z)", "unrecognized character after (?"),
        ("(?#x", "missing ) at end of (?# comment"),
        (r"[\B]", "invalid in character class"),
        (r"[\N]", "\\N is not supported in a class"),
        ("(*UTF", "(*VERB) not recognized"),
        ("a\0b", "embedded null byte"),
    ];
    for (pattern, says) in cases {
        let e = err(pattern, "", RegexErrorKind::Invalid);
        assert!(e.contains(says), "`{pattern}`: {e}");
    }
}

#[test]
fn patterns_longer_than_mongodb_accepts_are_invalid() {
    // jstests/core/query/regex/regex_limit.js and regex_max_pattern_length.js.
    assert!(m(&"c".repeat(16_384), "", &"c".repeat(40_000)));
    assert!(translate(&"c".repeat(MAX_PATTERN_LEN), "").is_ok());
    let e = err(
        &"c".repeat(MAX_PATTERN_LEN + 1),
        "",
        RegexErrorKind::Invalid,
    );
    assert!(e.contains("longer than the limit"), "{e}");
}

#[test]
fn nesting_is_capped_at_pcre2s_limit() {
    let ok = format!("{}a{}", "(".repeat(MAX_NESTING), ")*".repeat(MAX_NESTING));
    assert!(m(&ok, "", "aaa"));
    let deep = format!(
        "{}a{}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    let e = err(&deep, "", RegexErrorKind::Invalid);
    assert!(e.contains("too deeply nested"), "{e}");
}

#[test]
fn what_the_linear_engine_cannot_run_is_refused_with_the_reason() {
    for p in [
        r"(a)\1",
        r"(a)\g{1}",
        r"(a)\g-1",
        r"(?<n>a)\k<n>",
        r"(?<n>a)\k{n}",
        "(?<n>a)(?P=n)",
    ] {
        refused(p, "backreferences");
    }
    for p in ["(?=a)", "(?!a)", "(?<=a)b", "(?<!a)b", "(*pla:a)", "(?*a)"] {
        let e = compile(p, "").unwrap_err();
        assert_eq!(e.kind, RegexErrorKind::Unsupported, "{p}");
        assert!(
            e.message.contains("look-ahead") || e.message.contains("verbs"),
            "{p}: {e}"
        );
    }
    refused("(?>a+)b", "atomic groups");
    for p in ["a*+", "a++", "a?+", "a{1,2}+"] {
        refused(p, "possessive quantifiers");
    }
    let e = compile("a* +", "x").unwrap_err();
    assert!(e.message.contains("possessive"), "{e}");
    for p in [
        "(?R)",
        "(a)(?1)",
        "(a)(?-1)",
        "(?<n>a)(?&n)",
        "(?<n>a)(?P>n)",
    ] {
        refused(p, "recursion");
    }
    refused("(?(1)a|b)", "conditional");
    refused(r"a\Kb", "\\K");
    refused(r"\Ga", "\\G");
    refused("(?C1)a", "callouts");
    refused(r"\C", "\\C");
    refused(r"\X", "\\X");
    for p in [
        "a(*COMMIT)b",
        "a(*PRUNE)b",
        "a+(*SKIP)b",
        "(a(*THEN)b|c)",
        "(*COMMIT)ab",
        "(*COMMIT)a+",
        "(*PRUNE)a|b",
        "(a(*ACCEPT)b)c",
        "(*MARK:x)a(*SKIP:x)b",
    ] {
        refused(p, "backtracking");
    }
    refused("(*CRLF)a", "is not supported");
    refused("(*UCP)\\b", "(*UCP)");
    refused("(*UCP)[[:punct:]]", "(*UCP)");
    assert!(compile("(*UCP)(?i)[[:upper:]]", "").is_err());
    refused(
        r"(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)\12",
        "backreferences (`\\12`)",
    );
    refused(r"\8", "backreferences");
    refused(r"\81", "backreferences");
}

#[test]
fn anchors_pcre2_places_differently_are_refused_where_they_would_differ() {
    // `$` followed by more pattern.
    refused(r"a$\n", "followed by more pattern");
    refused(r"(a$)b", "followed by more pattern");
    refused(r"a$\z", "followed by more pattern");
    refused(r"a\Zb", "followed by more pattern");
    refused(r"(a$)*", "repeated group ending with `$`");
    // `^` in multi-line mode before something that can be empty (PCRE2 does not match
    // after a final newline).
    let e = compile("^$", "m").unwrap_err();
    assert_eq!(e.kind, RegexErrorKind::Unsupported);
    assert!(e.message.contains("multi-line"), "{e}");
    assert!(compile("(?m)^a*", "").is_err());
    assert!(m("(?m)^a*b", "", "x\nb"));
    // `\R` could give back the `\n` of `\r\n`.
    refused(r"\R\n", "atomic");
    refused(r"\R\R", "atomic");
    refused(r"\R{2}", "atomic");
    refused(r"\Ra?\n", "atomic");
    refused(r"\R(?:a|)\n", "atomic");
    refused(r"y(?:\R|\nx)+", "atomic");
    refused(r"(?:\R|a){2}", "atomic");
    refused(r"\R(?m:$)", "atomic");
    assert!(m(r"^a\R+b$", "", "a\r\n\r\nb"));
    assert!(m(r"^(?:a\R)+$", "", "a\r\na\n"));
    assert!(m(r"^x\R$", "", "x\r\n\n"));
    assert!(!m(r"^x\R$", "", "x\r\n\n\n"));
    assert!(m(r"\Ra", "", "\r\na"));
}

#[test]
fn compile_sites_share_the_translation() {
    // The evaluators' and the compiler's entry point.
    let re = compile_regex(r"^\d+$", "").unwrap();
    assert!(!re.is_match("٣"));
    let e = compile_regex(r"(a)\1", "").unwrap_err();
    assert!(
        e.contains("backreferences") && e.contains("spell out"),
        "{e}"
    );
}

#[test]
fn translation_is_linear_in_the_pattern_length() {
    // A 100 KB pattern of every supported construct, nesting kept under the cap.
    let unit = r"(?:a|[b-d\d[:alpha:]]+?|\x{263A}\p{Greek}|(?i)é\w\s\b)x{2,3}(?m)^y\Q.*\E|";
    let mut pattern = String::new();
    while pattern.len() < 100_000 {
        pattern.push_str(unit);
    }
    pattern.push('z');
    let small: String = pattern.chars().take(10_000).collect::<String>() + "z";
    let time = |p: &str| {
        let start = Instant::now();
        let out = translate_unbounded(p, "").unwrap();
        (start.elapsed(), out.len())
    };
    let (_, _) = time(&small);
    let (t_small, small_len) = time(&small);
    let (t_large, large_len) = time(&pattern);
    assert!(t_large < Duration::from_secs(2), "100 KB took {t_large:?}");
    assert!(large_len < 40 * pattern.len(), "{large_len} bytes");
    assert!(small_len < large_len);
    // Linear, with slack for a shared machine: 10x the input within 40x the time.
    assert!(
        t_large < t_small * 40 + Duration::from_millis(50),
        "{t_small:?} for 10 KB, {t_large:?} for 100 KB"
    );
    // Many multi-line carets and dollars stay linear too.
    let carets = format!("(?m){}", "^a".repeat(50_000));
    assert!(translate_unbounded(&carets, "").is_ok());
    let dollars = format!("a{}", "$".repeat(100_000));
    assert!(translate_unbounded(&dollars, "").is_ok());
}

#[test]
fn expanding_patterns_are_refused_as_too_large() {
    let props = r"\p{L}".repeat(6_000);
    let e = translate(&props, "").unwrap_err();
    assert_eq!(e.kind, RegexErrorKind::TooLarge, "{e}");
    let e = compile(&r"[\x{100}-\x{10000}]{1000}".repeat(5), "").unwrap_err();
    assert_eq!(e.kind, RegexErrorKind::TooLarge, "{e}");
}

// ---- A brute-force reference for an ASCII subset, with PCRE2's semantics. ----

/// A node of the reference grammar.
#[derive(Debug, Clone)]
enum Node {
    Lit(char),
    Dot,
    Class(Vec<char>, bool),
    Digit,
    Word,
    NotWord,
    Space,
    Caret,
    Dollar,
    WordB,
    NotWordB,
    /// `\A`.
    Begin,
    /// `\z`.
    End,
    /// `\Z`.
    EndOrFinalNewline,
    /// A class range.
    Range(char, char, bool),
    /// `\R` (atomic in PCRE2).
    LineBreak,
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Star(Box<Node>),
    Plus(Box<Node>),
    Opt(Box<Node>),
}

/// The subject alphabet: ASCII letters in both cases, digits, space, newline, `_`, `é`, `É`.
const ALPHABET: &[char] = &['a', 'b', 'A', 'B', '1', ' ', '\n', '\r', '_', 'é', 'É'];

/// The pattern of a node.
fn render_pattern(n: &Node) -> String {
    let mut out = String::new();
    render(n, &mut out);
    out
}

/// The pattern of a node for `x` mode: whitespace and comments between the tokens.
fn render_extended(n: &Node, gaps: &mut impl Iterator<Item = &'static str>, out: &mut String) {
    match n {
        Node::Concat(ns) => {
            for n in ns {
                out.push_str(gaps.next().unwrap_or(" "));
                render_extended(n, gaps, out);
            }
        }
        Node::Alt(ns) => {
            out.push_str("(?:");
            for (i, n) in ns.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                render_extended(n, gaps, out);
                out.push_str(gaps.next().unwrap_or(" "));
            }
            out.push(')');
        }
        Node::Star(s) | Node::Plus(s) | Node::Opt(s) => {
            out.push_str("(?:");
            render_extended(s, gaps, out);
            out.push(')');
            out.push_str(gaps.next().unwrap_or(" "));
            out.push(match n {
                Node::Star(_) => '*',
                Node::Plus(_) => '+',
                _ => '?',
            });
        }
        leaf => render(leaf, out),
    }
}

fn push_char(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str(r"\n"),
        '\r' => out.push_str(r"\r"),
        ' ' => out.push_str(r"\x20"),
        c => out.push(c),
    }
}

fn render(n: &Node, out: &mut String) {
    match n {
        Node::Lit(c) => push_char(*c, out),
        Node::Dot => out.push('.'),
        Node::Class(cs, neg) => {
            out.push('[');
            if *neg {
                out.push('^');
            }
            cs.iter().for_each(|c| push_char(*c, out));
            out.push(']');
        }
        Node::Digit => out.push_str(r"\d"),
        Node::Word => out.push_str(r"\w"),
        Node::NotWord => out.push_str(r"\W"),
        Node::Space => out.push_str(r"\s"),
        Node::Caret => out.push('^'),
        Node::Dollar => out.push('$'),
        Node::WordB => out.push_str(r"\b"),
        Node::NotWordB => out.push_str(r"\B"),
        Node::LineBreak => out.push_str(r"\R"),
        Node::Begin => out.push_str(r"\A"),
        Node::End => out.push_str(r"\z"),
        Node::EndOrFinalNewline => out.push_str(r"\Z"),
        Node::Range(a, b, neg) => {
            out.push_str(if *neg { "[^" } else { "[" });
            push_char(*a, out);
            out.push('-');
            push_char(*b, out);
            out.push(']');
        }
        Node::Concat(ns) => ns.iter().for_each(|n| render(n, out)),
        Node::Alt(ns) => {
            out.push_str("(?:");
            for (i, n) in ns.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                render(n, out);
            }
            out.push(')');
        }
        Node::Star(s) | Node::Plus(s) | Node::Opt(s) => {
            out.push_str("(?:");
            render(s, out);
            out.push(')');
            out.push(match n {
                Node::Star(_) => '*',
                Node::Plus(_) => '+',
                _ => '?',
            });
        }
    }
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The characters of the alphabet's case class of `c`.
fn s_fold(c: char) -> Vec<char> {
    ALPHABET
        .iter()
        .copied()
        .chain(['é', 'É', 'b', 'B'])
        .filter(|x| same_caseless(*x, c))
        .collect()
}

/// Simple case folding over the alphabet.
fn same_caseless(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

/// End positions of `node` matched from `at` in `s` (PCRE2 semantics; flags i, m, s).
fn ends(node: &Node, s: &[char], at: usize, f: (bool, bool, bool)) -> BTreeSet<usize> {
    let (i, mm, ss) = f;
    let one = |ok: bool| {
        if ok {
            BTreeSet::from([at + 1])
        } else {
            BTreeSet::new()
        }
    };
    let here = |ok: bool| {
        if ok {
            BTreeSet::from([at])
        } else {
            BTreeSet::new()
        }
    };
    let c = s.get(at).copied();
    let lit = |x: char, c: char| if i { same_caseless(c, x) } else { c == x };
    match node {
        Node::Lit(l) => one(c.is_some_and(|c| lit(*l, c))),
        Node::Dot => one(c.is_some_and(|c| ss || c != '\n')),
        Node::Class(cs, neg) => one(c.is_some_and(|c| cs.iter().any(|x| lit(*x, c)) != *neg)),
        Node::Digit => one(c.is_some_and(|c| c.is_ascii_digit())),
        Node::Word => one(c.is_some_and(|c| is_word(Some(c)))),
        Node::NotWord => one(c.is_some_and(|c| !is_word(Some(c)))),
        Node::Space => one(c.is_some_and(|c| matches!(c, '\t'..='\r' | ' '))),
        // Multi-line `^`: at the start, or after a newline that does not end the subject.
        Node::Caret => here(at == 0 || (mm && s.get(at - 1) == Some(&'\n') && at < s.len())),
        Node::Dollar => {
            here(at == s.len() || s.get(at) == Some(&'\n') && (mm || at + 1 == s.len()))
        }
        // Atomic: `\r\n` when it is there, never `\r` alone before `\n`.
        Node::LineBreak => match (c, s.get(at + 1)) {
            (Some('\r'), Some('\n')) => BTreeSet::from([at + 2]),
            (Some('\n' | '\u{b}' | '\u{c}' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'), _) => {
                BTreeSet::from([at + 1])
            }
            _ => BTreeSet::new(),
        },
        Node::Begin => here(at == 0),
        Node::End => here(at == s.len()),
        Node::EndOrFinalNewline => {
            here(at == s.len() || (at + 1 == s.len() && s.get(at) == Some(&'\n')))
        }
        Node::Range(a, b, neg) => one(c.is_some_and(|c| {
            let inside = if i {
                s_fold(c).iter().any(|c| (*a..=*b).contains(c))
            } else {
                (*a..=*b).contains(&c)
            };
            inside != *neg
        })),
        Node::WordB | Node::NotWordB => {
            let before = at.checked_sub(1).and_then(|p| s.get(p).copied());
            let boundary = is_word(before) != is_word(c);
            here(boundary == matches!(node, Node::WordB))
        }
        Node::Concat(ns) => {
            let mut cur = BTreeSet::from([at]);
            for n in ns {
                cur = cur.iter().flat_map(|&p| ends(n, s, p, f)).collect();
            }
            cur
        }
        Node::Alt(ns) => ns.iter().flat_map(|n| ends(n, s, at, f)).collect(),
        Node::Opt(n) => {
            let mut out = ends(n, s, at, f);
            out.insert(at);
            out
        }
        Node::Star(n) | Node::Plus(n) => {
            let mut seen: BTreeSet<usize> = BTreeSet::new();
            let mut frontier = ends(n, s, at, f);
            while !frontier.is_empty() {
                let new: BTreeSet<usize> = frontier.difference(&seen).copied().collect();
                seen.extend(new.iter().copied());
                frontier = new.iter().flat_map(|&p| ends(n, s, p, f)).collect();
            }
            if matches!(node, Node::Star(_)) {
                seen.insert(at);
            }
            seen
        }
    }
}

/// Whether PCRE2 finds a match of `n` anywhere in `s`.
fn reference(n: &Node, s: &str, f: (bool, bool, bool)) -> bool {
    let chars: Vec<char> = s.chars().collect();
    (0..=chars.len()).any(|at| !ends(n, &chars, at, f).is_empty())
}

fn node() -> impl Strategy<Value = Node> {
    let ascii = prop::sample::select(vec!['a', 'b', 'A', '1', ' ', '\n', '\r', '_', 'é', 'É']);
    let leaf = prop_oneof![
        4 => ascii.clone().prop_map(Node::Lit),
        1 => Just(Node::Dot),
        1 => (prop::collection::vec(ascii, 1..3), any::<bool>()).prop_map(|(c, n)| Node::Class(c, n)),
        1 => Just(Node::Digit),
        1 => Just(Node::Word),
        1 => Just(Node::NotWord),
        1 => Just(Node::Space),
        1 => Just(Node::Caret),
        1 => Just(Node::Dollar),
        1 => Just(Node::WordB),
        1 => Just(Node::NotWordB),
        2 => Just(Node::LineBreak),
        1 => Just(Node::Begin),
        1 => Just(Node::End),
        1 => Just(Node::EndOrFinalNewline),
        1 => (prop::sample::select(vec![' ', '1', 'A', '_']), prop::sample::select(vec!['a', 'b', 'é']), any::<bool>())
            .prop_map(|(a, b, n)| Node::Range(a, b, n)),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Node::Concat),
            prop::collection::vec(inner.clone(), 2..3).prop_map(Node::Alt),
            inner.clone().prop_map(|n| Node::Star(Box::new(n))),
            inner.clone().prop_map(|n| Node::Plus(Box::new(n))),
            inner.prop_map(|n| Node::Opt(Box::new(n))),
        ]
    })
}

fn subject() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ALPHABET.to_vec()), 0..7)
        .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// On the ASCII subset (plus `é`), the translation answers as PCRE2 does, whenever it is
    /// not refused; refusals are only the documented anchor positions.
    #[test]
    fn agrees_with_a_brute_force_pcre2_reference(
        n in node(),
        subjects in prop::collection::vec(subject(), 1..6),
        i in any::<bool>(),
        mm in any::<bool>(),
        ss in any::<bool>(),
    ) {
        // Quantified assertions are PCRE2 errors; keep them out of the reference.
        let pattern = render_pattern(&n);
        let mut options = String::new();
        for (on, c) in [(i, 'i'), (mm, 'm'), (ss, 's')] {
            if on {
                options.push(c);
            }
        }
        match compile(&pattern, &options) {
            Ok(re) => {
                for s in &subjects {
                    prop_assert_eq!(
                        re.is_match(s),
                        reference(&n, s, (i, mm, ss)),
                        "`{}` /{} on {:?}", pattern, options, s
                    );
                }
            }
            Err(e) => prop_assert!(
                matches!(e.kind, RegexErrorKind::Unsupported | RegexErrorKind::Invalid),
                "`{}`: {}", pattern, e
            ),
        }
    }

    /// In `x` mode, whitespace and `#` comments between tokens change nothing: the translation
    /// is the one of the pattern without them.
    #[test]
    fn extended_mode_ignores_whitespace_and_comments_between_tokens(
        n in node(),
        gaps in prop::collection::vec(
            prop::sample::select(vec!["", " ", "\t", "\n", "  ", "# note\n", "\u{2028}"]),
            0..64,
        ),
    ) {
        let plain = render_pattern(&n);
        let mut extended = String::new();
        render_extended(&n, &mut gaps.into_iter(), &mut extended);
        prop_assert_eq!(
            translate(&extended, "x"),
            translate(&plain, ""),
            "`{}` /x vs `{}`", extended, plain
        );
    }

    /// Options given as letters or as an inline group around the whole pattern are the same
    /// pattern.
    #[test]
    fn inline_options_around_the_pattern_equal_the_options(
        n in node(),
        flags in "i?m?s?x?",
    ) {
        let pattern = render_pattern(&n);
        prop_assert_eq!(
            translate(&format!("(?{flags}:{pattern})"), ""),
            translate(&pattern, &flags),
            "`{}` /{}", pattern, flags
        );
    }

    /// Any string as a pattern, with any options: an answer or an error, never a panic.
    #[test]
    fn arbitrary_patterns_never_panic(
        pattern in r"(\PC|[\\()\[\]{}^$.*+?|:#<>'=!-]|\\[a-zA-Z0-9]){0,40}",
        options in "[imsxug]{0,3}",
    ) {
        let _ = translate(&pattern, &options);
        if let Ok(re) = compile(&pattern, &options) {
            let _ = re.is_match(&pattern);
        }
    }

    /// Patterns from the supported grammar compile, and match arbitrary subjects without
    /// panicking.
    #[test]
    fn supported_patterns_compile_and_match_any_subject(
        n in node(),
        s in any::<String>(),
    ) {
        let pattern = render_pattern(&n);
        if let Ok(re) = compile(&pattern, "") {
            let _ = re.is_match(&s);
        }
        let re = compile(r"(?i)^[\w\s]*\bé$", "m").unwrap();
        let _ = re.is_match(&s);
    }
}
