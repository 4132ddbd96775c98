//! MongoDB regular expressions on the linear-time engine.
//!
//! Stage: a MongoDB regex (`$regex` pattern + `$options`, or a BSON regex) ──[`translate`]──▶ a
//! pattern for the `regex` crate ──[`compile`]──▶ [`regex::Regex`]. Every regex in rolegate's
//! query language goes through here (`compare::compile_regex` and the rule parser); JSON schema
//! `pattern` (ECMAScript) does not.
//!
//! MongoDB compiles patterns with PCRE2 10.42 in UTF mode, without Unicode character
//! properties (no UCP unless the pattern starts with `(*UCP)`), with LF as the newline and a 32,764-byte pattern limit. The `regex`
//! crate's defaults differ (Unicode `\d\w\s\b`, `$` only at the very end, `x` mode ignoring
//! whitespace inside classes, ...), so the pattern is not handed over as written: it is
//! tokenized once, left to right, with an explicit stack of open groups (no recursion on the
//! nesting depth, which is capped at PCRE2's 250), into the `regex-syntax` HIR with every
//! character set spelled out (ASCII `\d`, PCRE2's `\h`, case folding done here), and that HIR
//! is printed back as a pattern the `regex` crate reads with its defaults.
//!
//! What the linear engine cannot express is refused with the reason and a hint
//! ([`RegexErrorKind::Unsupported`]): backreferences, look-around, atomic groups, possessive
//! quantifiers, recursion and subroutine calls, conditionals, callouts, `\K`, `\G`, `\C`, `\X`,
//! backtracking verbs where they could change the answer, and three positions where PCRE2's anchors cannot be mirrored exactly: `$`
//! or `\Z` followed by more pattern, `^` in multi-line mode before something that can match the
//! empty string, and `\R` where it could give back its `\n`. Patterns PCRE2 itself rejects get
//! PCRE2's message ([`RegexErrorKind::Invalid`]). `docs/semantics.md` (section 2.4) lists the
//! decisions.

use std::collections::HashMap;
use std::fmt;

use regex_syntax::hir::{
    Capture, Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look, Repetition,
};

/// Longest pattern MongoDB accepts, in bytes (PCRE2's `max_pattern_length`, set by MongoDB).
pub(crate) const MAX_PATTERN_LEN: usize = 32_764;

/// Deepest nesting of parentheses (PCRE2's default `PARENS_NEST_LIMIT`, MongoDB's build).
pub(crate) const MAX_NESTING: usize = 250;

/// Compiled-size limit given to the `regex` crate.
pub(crate) const SIZE_LIMIT: usize = 1 << 20;

/// Largest translated pattern, in estimated bytes: case folding and property classes can
/// expand a few characters into thousands of ranges.
const MAX_OUTPUT: usize = 4 << 20;

/// Largest repetition count PCRE2 accepts in `{n,m}`.
const MAX_REPEAT: u32 = 65_535;

/// Longest group name PCRE2 accepts (MongoDB's build: `MAX_NAME_SIZE`).
const MAX_NAME_LEN: usize = 32;

/// Nesting limit given to the `regex` crate's parser: each PCRE2 group may print as up to
/// three nested constructs.
const PRINTED_NEST_LIMIT: u32 = 1000;

/// Why a MongoDB regex does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegexErrorKind {
    /// An option letter other than `i m s x u` (MongoDB: code 51108).
    Options,
    /// A pattern MongoDB rejects as well (PCRE2's message; MongoDB: code 51091, or BadValue for
    /// an embedded null byte).
    Invalid,
    /// A pattern MongoDB accepts that the linear-time engine cannot run.
    Unsupported,
    /// A pattern whose translation or compiled form exceeds rolegate's size limits.
    TooLarge,
}

/// A MongoDB regex that does not compile: what is wrong, and how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegexError {
    /// The class of the error.
    pub(crate) kind: RegexErrorKind,
    /// What is wrong, lowercase, without a final period.
    pub(crate) message: String,
    /// How to write it instead, when there is a way.
    pub(crate) hint: Option<String>,
}

impl RegexError {
    fn invalid(message: impl Into<String>) -> Self {
        RegexError {
            kind: RegexErrorKind::Invalid,
            message: message.into(),
            hint: None,
        }
    }

    fn unsupported(message: impl Into<String>, hint: impl Into<String>) -> Self {
        RegexError {
            kind: RegexErrorKind::Unsupported,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    fn too_large(message: impl Into<String>) -> Self {
        RegexError {
            kind: RegexErrorKind::TooLarge,
            message: message.into(),
            hint: Some("split the pattern, or use narrower classes".into()),
        }
    }
}

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Translates a MongoDB pattern and options into a `regex`-crate pattern (to be compiled with
/// the crate's defaults) that matches exactly the strings PCRE2 matches in MongoDB's
/// configuration, or says why it cannot.
pub(crate) fn translate(pattern: &str, options: &str) -> Result<String, RegexError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(RegexError::invalid(
            "pattern string is longer than the limit set by the application",
        ));
    }
    translate_unbounded(pattern, options)
}

/// [`translate`] without MongoDB's pattern-length limit (the tokenizer's own cost is linear in
/// the pattern's length; tests measure it on longer patterns).
pub(crate) fn translate_unbounded(pattern: &str, options: &str) -> Result<String, RegexError> {
    let flags = parse_options(options)?;
    if pattern.contains('\0') {
        return Err(RegexError::invalid(
            "regular expression cannot contain an embedded null byte",
        ));
    }
    let hir = Translator::new(pattern, flags).run()?;
    let printed = hir.to_string();
    if printed.len() > MAX_OUTPUT {
        return Err(RegexError::too_large("the translated pattern is too large"));
    }
    Ok(printed)
}

/// [`translate`], then compiles on the `regex` crate (compiled size limited to
/// [`SIZE_LIMIT`]).
pub(crate) fn compile(pattern: &str, options: &str) -> Result<regex::Regex, RegexError> {
    let translated = translate(pattern, options)?;
    regex::RegexBuilder::new(&translated)
        .size_limit(SIZE_LIMIT)
        .nest_limit(PRINTED_NEST_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => RegexError::too_large(format!(
                "the compiled pattern exceeds rolegate's limit of {limit} bytes"
            )),
            other => RegexError {
                kind: RegexErrorKind::Invalid,
                message: format!(
                    "the translated pattern does not compile: {}",
                    other.to_string().lines().last().unwrap_or("").trim()
                ),
                hint: None,
            },
        })
}

/// The option letters of a MongoDB regex.
fn parse_options(options: &str) -> Result<Flags, RegexError> {
    let mut flags = Flags::default();
    for c in options.chars() {
        match c {
            'i' => flags.i = true,
            'm' => flags.m = true,
            's' => flags.s = true,
            'x' => flags.x = true,
            'u' => {}
            other => {
                return Err(RegexError {
                    kind: RegexErrorKind::Options,
                    message: format!("invalid flag in regex options: {}", other.escape_debug()),
                    hint: Some("MongoDB's regex options are i, m, s, x and u".into()),
                });
            }
        }
    }
    Ok(flags)
}

/// PCRE2 options in force at a point of the pattern.
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    /// Caseless.
    i: bool,
    /// Multi-line `^` and `$`.
    m: bool,
    /// `.` matches `\n`.
    s: bool,
    /// Extended: whitespace and `#` comments ignored outside classes.
    x: bool,
    /// Extended more: space and tab ignored inside classes too.
    xx: bool,
    /// Ungreedy quantifiers by default.
    ungreedy: bool,
    /// Duplicate group names allowed.
    dupnames: bool,
    /// Plain parentheses do not capture (`(?n)`).
    no_auto_capture: bool,
}

/// One item of a branch, with what the anchors' rules need to know about it.
struct Item {
    hir: Hir,
    /// A quantifier may follow.
    repeatable: bool,
    /// A non-multi-line `$` or `\Z` (translated as "optional final `\n`, then the end"), or a
    /// group with one at the end of a branch: nothing may follow.
    ends: bool,
    /// Is a plain `$`/`\Z` (a second one right after is the same assertion).
    dollar: bool,
    /// Ends with `\R` (or follows one and can be empty), which PCRE2 makes atomic: what
    /// follows must not start with `\n`.
    r_tail: bool,
    /// Is `\R` itself.
    bare_r: bool,
    /// Can start by matching `\n` (assertions count as "can", conservatively).
    may_start_nl: bool,
}

impl Item {
    fn atom(hir: Hir, may_start_nl: bool) -> Item {
        Item {
            hir,
            repeatable: true,
            ends: false,
            dollar: false,
            r_tail: false,
            bare_r: false,
            may_start_nl,
        }
    }

    /// Can match the empty string.
    fn can_be_empty(&self) -> bool {
        self.hir.properties().minimum_len().is_some_and(|n| n == 0)
    }

    fn assertion(hir: Hir) -> Item {
        Item {
            repeatable: false,
            ..Item::atom(hir, true)
        }
    }
}

/// The branch being read.
#[derive(Default)]
struct Branch {
    items: Vec<Item>,
    /// Indexes of multi-line `^` items.
    carets: Vec<usize>,
}

/// An open group.
struct Frame {
    /// Flags to restore when the group closes.
    outer: Flags,
    /// Its finished branches.
    alternatives: Vec<Hir>,
    /// The branch of the enclosing group that was being read.
    parent: Branch,
    /// Some finished branch ends with `$`/`\Z`.
    any_end: bool,
    /// Some finished branch ends with `\R`.
    any_r: bool,
    /// Some finished branch may start with `\n`.
    any_starts_nl: bool,
}

/// One element of a bracketed class.
enum ClassAtom {
    Char(char),
    Set(ClassUnicode),
    Nothing,
}

/// The tokenizer and translator of one pattern.
struct Translator<'p> {
    src: &'p str,
    pos: usize,
    flags: Flags,
    stack: Vec<Frame>,
    branch: Branch,
    /// Finished branches and flags of the top level.
    top: Frame,
    /// Estimated size of the printed translation.
    out: usize,
    /// Group names seen.
    names: Vec<String>,
    /// Property classes resolved so far.
    properties: HashMap<String, ClassUnicode>,
    /// Only start-of-pattern items (`(*UTF)`) have been read.
    at_start: bool,
    /// Capture groups opened so far (for PCRE2's backreference-or-octal rule).
    captures: u64,
    /// `(*UCP)` was given: `\d`, `\w`, `\s` and POSIX classes are Unicode.
    ucp: bool,
    /// A backtracking verb read before any item of the (single) top-level branch, which the
    /// end of the pattern must confirm is a no-op.
    leading_verb: Option<LeadingVerb>,
    /// `(*ACCEPT)` was read at the top level after this many items of the current branch:
    /// the rest of the branch is dropped when it ends.
    accept_at: Option<usize>,
}

/// A backtracking verb at the start of the pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeadingVerb {
    /// `(*PRUNE)`, `(*SKIP)` or `(*THEN)`: backtracking onto it fails the match at the current
    /// start, which is what exhausting the branch does anyway.
    Prune,
    /// `(*COMMIT)`: backtracking onto it fails the whole match, which PCRE2's start-of-match
    /// optimization makes a no-op only when the rest matches exactly one character.
    Commit,
}

type R<T> = Result<T, RegexError>;

impl<'p> Translator<'p> {
    fn new(src: &'p str, flags: Flags) -> Self {
        Translator {
            src,
            pos: 0,
            flags,
            stack: Vec::new(),
            branch: Branch::default(),
            top: Frame {
                outer: flags,
                alternatives: Vec::new(),
                parent: Branch::default(),
                any_end: false,
                any_r: false,
                any_starts_nl: false,
            },
            out: 0,
            names: Vec::new(),
            properties: HashMap::new(),
            at_start: true,
            captures: 0,
            ucp: false,
            leading_verb: None,
            accept_at: None,
        }
    }

    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().nth(n))
    }

    fn rest(&self) -> &'p str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// The text up to (not including) `end` or the end of the pattern.
    fn take_until(&mut self, end: char) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == end {
                break;
            }
            self.bump();
        }
        self.src.get(start..self.pos).unwrap_or("").to_string()
    }

    fn charge_out(&mut self, n: usize) -> R<()> {
        self.out = self.out.saturating_add(n);
        if self.out > MAX_OUTPUT {
            return Err(RegexError::too_large("the translated pattern is too large"));
        }
        Ok(())
    }

    /// Reads the whole pattern.
    fn run(mut self) -> R<Hir> {
        loop {
            self.skip_extended();
            let Some(c) = self.bump() else { break };
            if !(c == '(' && self.peek() == Some('*')) {
                self.at_start = false;
            }
            match c {
                '\\' => self.escape()?,
                '[' => self.class()?,
                '(' => self.open_group()?,
                ')' => self.close_group()?,
                '|' => {
                    let (hir, end, r, starts_nl) = self.finish_branch()?;
                    let frame = self.stack.last_mut().unwrap_or(&mut self.top);
                    frame.alternatives.push(hir);
                    frame.any_end |= end;
                    frame.any_r |= r;
                    frame.any_starts_nl |= starts_nl;
                }
                '^' => {
                    if self.flags.m {
                        let index = self.branch.items.len();
                        self.push(Item::assertion(Hir::look(Look::StartLF)))?;
                        self.branch.carets.push(index);
                    } else {
                        self.push(Item::assertion(Hir::look(Look::Start)))?;
                    }
                }
                '$' => {
                    if self.flags.m {
                        self.push(Item::assertion(Hir::look(Look::EndLF)))?;
                    } else {
                        self.push(end_item())?;
                    }
                }
                '.' => {
                    let set = if self.flags.s { all() } else { not_newline() };
                    self.push_set(set)?;
                }
                '*' => self.quantifier(0, None)?,
                '+' => self.quantifier(1, None)?,
                '?' => self.quantifier(0, Some(1))?,
                '{' => match self.brace_quantifier()? {
                    Some((min, max)) => self.quantifier(min, max)?,
                    None => self.push_char('{')?,
                },
                c => self.push_char(c)?,
            }
        }
        if !self.stack.is_empty() {
            return Err(RegexError::invalid("missing closing parenthesis"));
        }
        let last_items = self.branch.items.len();
        let single_char = self
            .branch
            .items
            .first()
            .is_some_and(|i| is_one_character(&i.hir));
        let (hir, _, _, _) = self.finish_branch()?;
        if let Some(verb) = self.leading_verb {
            let one_branch = self.top.alternatives.is_empty();
            let commit_ok = last_items == 0 || (last_items == 1 && single_char);
            if !one_branch || (verb == LeadingVerb::Commit && !commit_ok) {
                return Err(verb_unsupported(
                    "a backtracking-control verb at the start of the pattern is supported only \
                     when the pattern has one alternative (and, for `(*COMMIT)`, when the rest \
                     matches exactly one character)",
                ));
            }
        }
        let mut alternatives = std::mem::take(&mut self.top.alternatives);
        alternatives.push(hir);
        Ok(alternation(alternatives))
    }

    /// Skips whitespace and `#` comments in extended mode.
    fn skip_extended(&mut self) {
        if !self.flags.x {
            return;
        }
        loop {
            match self.peek() {
                Some(c) if is_pattern_space(c) => {
                    self.bump();
                }
                Some('#') => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                _ => return,
            }
        }
    }

    /// Appends an item to the current branch, enforcing the anchors' rules.
    fn push(&mut self, mut item: Item) -> R<()> {
        if let Some(last) = self.branch.items.last() {
            if last.ends {
                if item.dollar && last.dollar {
                    return Ok(());
                }
                return Err(RegexError::unsupported(
                    "`$` (or `\\Z`) followed by more pattern is not supported: PCRE2's `$` also \
                     matches before a final newline, which the linear-time engine can express \
                     only at the end of the pattern",
                    "end the pattern (or each alternative) with `$`, use `\\z` for the very \
                     end, or the `m` option",
                ));
            }
            if last.r_tail {
                if item.may_start_nl {
                    return Err(r_unsupported());
                }
                // What follows an empty match of this item follows the `\R` too.
                item.r_tail |= item.can_be_empty();
            }
        }
        self.charge_out(16)?;
        self.branch.items.push(item);
        Ok(())
    }

    fn push_set(&mut self, set: ClassUnicode) -> R<()> {
        self.charge_out(set.ranges().len().saturating_mul(14))?;
        let nl = set
            .ranges()
            .iter()
            .any(|r| r.start() <= '\n' && '\n' <= r.end());
        self.push(Item::atom(Hir::class(Class::Unicode(set)), nl))
    }

    /// A literal character, folded when caseless.
    fn push_char(&mut self, c: char) -> R<()> {
        if self.flags.i {
            let mut set = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
            set.case_fold_simple();
            self.push_set(set)
        } else {
            let mut buf = [0u8; 4];
            let hir = Hir::literal(c.encode_utf8(&mut buf).as_bytes());
            self.push(Item::atom(hir, c == '\n'))
        }
    }

    /// Ends the current branch: checks its multi-line carets and builds its concatenation.
    /// Returns it with whether it ends with `$`/`\Z` and with `\R`.
    fn finish_branch(&mut self) -> R<(Hir, bool, bool, bool)> {
        let mut branch = std::mem::take(&mut self.branch);
        if self.stack.is_empty()
            && let Some(kept) = self.accept_at.take()
        {
            // `(*ACCEPT)` ends the match: what follows it in the branch is never needed.
            branch.items.truncate(kept);
            branch.carets.retain(|&c| c < kept);
        }
        if !branch.carets.is_empty() {
            // Minimum length of each suffix, in one backward pass.
            let mut suffix = vec![0usize; branch.items.len() + 1];
            for (i, item) in branch.items.iter().enumerate().rev() {
                let here = item.hir.properties().minimum_len().unwrap_or(1);
                let after = suffix.get(i + 1).copied().unwrap_or(0);
                if let Some(slot) = suffix.get_mut(i) {
                    *slot = here.saturating_add(after);
                }
            }
            for &c in &branch.carets {
                if suffix.get(c + 1).copied().unwrap_or(0) == 0 {
                    return Err(RegexError::unsupported(
                        "`^` in multi-line mode before a pattern that can match the empty \
                         string is not supported: PCRE2's `^` does not match after a final \
                         newline, which the linear-time engine cannot express",
                        "make what follows `^` match at least one character (e.g. `^$` as \
                         `^\\n` or `\\A$`), or drop the `m` option",
                    ));
                }
            }
        }
        let (end, r) = branch
            .items
            .last()
            .map_or((false, false), |l| (l.ends, l.r_tail));
        // It may start with `\n` if an item that only empty items precede may.
        let mut starts_nl = false;
        for item in &branch.items {
            if item.may_start_nl {
                starts_nl = true;
                break;
            }
            if !item.can_be_empty() {
                break;
            }
        }
        let hir = Hir::concat(branch.items.into_iter().map(|i| i.hir).collect());
        Ok((hir, end, r, starts_nl))
    }

    /// `(` read: a group, a comment, an option setting or a verb.
    fn open_group(&mut self) -> R<()> {
        if self.eat('*') {
            return self.verb();
        }
        let mut group_flags = self.flags;
        if !matches!(self.peek(), Some('?')) && !self.flags.no_auto_capture {
            self.captures += 1;
        }
        if self.eat('?') {
            let Some(c) = self.bump() else {
                return Err(RegexError::invalid(
                    "unrecognized character after (? or (?-",
                ));
            };
            match c {
                '#' => {
                    loop {
                        match self.bump() {
                            Some(')') => break,
                            Some(_) => {}
                            None => {
                                return Err(RegexError::invalid("missing ) at end of (?# comment"));
                            }
                        }
                    }
                    return Ok(());
                }
                ':' | '|' => {}
                '>' => {
                    return Err(RegexError::unsupported(
                        "atomic groups `(?>...)` are not supported by the linear-time engine",
                        "write a plain group `(?:...)` if giving back characters cannot change \
                         the answer",
                    ));
                }
                '=' | '!' | '*' => return Err(lookaround()),
                '<' if matches!(self.peek(), Some('=' | '!' | '*')) => return Err(lookaround()),
                '<' => self.group_name('>')?,
                '\'' => self.group_name('\'')?,
                'P' => match self.bump() {
                    Some('<') => self.group_name('>')?,
                    Some('=') => return Err(backreference()),
                    Some('>') => return Err(recursion()),
                    _ => {
                        return Err(RegexError::invalid("unrecognized character after (?P"));
                    }
                },
                'R' | '&' | '0'..='9' => return Err(recursion()),
                '+' | '-' if self.peek().is_some_and(|d| d.is_ascii_digit()) => {
                    return Err(recursion());
                }
                '(' => {
                    return Err(RegexError::unsupported(
                        "conditional groups `(?(...)...)` are not supported by the linear-time \
                         engine",
                        "write the alternatives out with `|`",
                    ));
                }
                'C' => {
                    return Err(RegexError::unsupported(
                        "callouts `(?C...)` are not supported",
                        "remove the callout",
                    ));
                }
                _ => {
                    // Option letters: `(?imnsxJU-imnsxJU)`, `(?^...)`, then `)` or `:`.
                    self.pos -= c.len_utf8();
                    let mut f = self.flags;
                    self.option_letters(&mut f)?;
                    if self.eat(')') {
                        // Set for the rest of the enclosing group (and its later branches).
                        self.flags = f;
                        return Ok(());
                    }
                    if !self.eat(':') {
                        return Err(RegexError::invalid(
                            "unrecognized character after (? or (?-",
                        ));
                    }
                    group_flags = f;
                }
            }
        }
        if self.stack.len() >= MAX_NESTING {
            return Err(RegexError::invalid("parentheses are too deeply nested"));
        }
        self.charge_out(8)?;
        let parent = std::mem::take(&mut self.branch);
        self.stack.push(Frame {
            outer: self.flags,
            alternatives: Vec::new(),
            parent,
            any_end: false,
            any_r: false,
            any_starts_nl: false,
        });
        self.flags = group_flags;
        Ok(())
    }

    /// The letters of an option setting, up to (not including) `)` or `:`.
    fn option_letters(&mut self, f: &mut Flags) -> R<()> {
        let mut on = true;
        if self.eat('^') {
            f.i = false;
            f.m = false;
            f.s = false;
            f.x = false;
            f.xx = false;
        }
        while let Some(c) = self.peek() {
            match c {
                ')' | ':' => return Ok(()),
                '-' if on => on = false,
                'i' => f.i = on,
                'm' => f.m = on,
                's' => f.s = on,
                'n' => f.no_auto_capture = on,
                'J' => f.dupnames = on,
                'U' => f.ungreedy = on,
                'x' => {
                    if self.peek_at(1) == Some('x') {
                        self.bump();
                        f.xx = on;
                    } else if !on {
                        f.xx = false;
                    }
                    f.x = on;
                }
                _ => {
                    return Err(RegexError::invalid(
                        "unrecognized character after (? or (?-",
                    ));
                }
            }
            self.bump();
        }
        Err(RegexError::invalid("missing closing parenthesis"))
    }

    /// A group name up to its terminator (the opening delimiter has been read).
    fn group_name(&mut self, terminator: char) -> R<()> {
        let start = self.pos;
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                return Err(RegexError::invalid(
                    "subpattern name must start with a non-digit",
                ));
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {}
            _ => return Err(RegexError::invalid("subpattern name expected")),
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                self.bump();
            } else {
                break;
            }
        }
        let name = self.src.get(start..self.pos).unwrap_or("").to_string();
        if !self.eat(terminator) {
            return Err(RegexError::invalid(
                "syntax error in subpattern name (missing terminator?)",
            ));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(RegexError::invalid(
                "subpattern name is too long (maximum 32 code units)",
            ));
        }
        if self.names.contains(&name) && !self.flags.dupnames {
            return Err(RegexError::invalid(
                "two named subpatterns have the same name (PCRE2_DUPNAMES not set)",
            ));
        }
        self.names.push(name);
        self.captures += 1;
        Ok(())
    }

    /// `(*` read: start-of-pattern settings (`(*UTF)`, `(*UCP)`, ...), `(*FAIL)`, the
    /// backtracking verbs where they cannot change the answer (decision RX11), or a refusal.
    fn verb(&mut self) -> R<()> {
        let body = self.take_until(')');
        if !self.eat(')') {
            return Err(RegexError::invalid("(*VERB) not recognized or malformed"));
        }
        let (name, tag) = body
            .split_once(':')
            .map_or((body.as_str(), None), |(n, t)| (n, Some(t)));
        match (name, tag) {
            (
                "UTF" | "UTF8" | "LF" | "NO_AUTO_POSSESS" | "NO_DOTSTAR_ANCHOR" | "NO_JIT"
                | "NO_START_OPT",
                None,
            ) if self.at_start => {
                // UTF mode and LF newlines are MongoDB's settings already; the others only
                // disable PCRE2 optimizations.
                Ok(())
            }
            ("UCP", None) if self.at_start => {
                self.ucp = true;
                Ok(())
            }
            ("FAIL" | "F", _) => {
                self.at_start = false;
                self.push(Item::assertion(Hir::fail()))
            }
            ("ACCEPT", _) => {
                self.at_start = false;
                if !self.stack.is_empty() {
                    return Err(verb_unsupported(
                        "`(*ACCEPT)` inside a group needs a backtracking engine",
                    ));
                }
                if self.accept_at.is_none() {
                    self.accept_at = Some(self.branch.items.len());
                }
                Ok(())
            }
            // A mark only names a position for `(*SKIP:NAME)`, which is refused when a
            // mark of its name exists.
            ("MARK", Some(_)) | ("", Some(_)) => Ok(()),
            ("SKIP", Some(tag)) => {
                let marked = [
                    format!("(*MARK:{tag})"),
                    format!("(*:{tag})"),
                    format!("(*PRUNE:{tag})"),
                    format!("(*THEN:{tag})"),
                ]
                .iter()
                .any(|m| self.src.contains(m.as_str()));
                if marked {
                    return Err(verb_unsupported(
                        "`(*SKIP:NAME)` with a mark of that name needs a backtracking engine",
                    ));
                }
                // Without a mark of its name, PCRE2 ignores it.
                Ok(())
            }
            ("COMMIT" | "PRUNE" | "SKIP" | "THEN", tag)
                if tag.is_none() || matches!(name, "PRUNE" | "THEN") =>
            {
                let leading = self.stack.is_empty()
                    && self.branch.items.is_empty()
                    && self.top.alternatives.is_empty()
                    && self.leading_verb.is_none();
                self.at_start = false;
                if self.at_branch_end() {
                    // Reached when the match is already complete: never backtracked onto.
                    return Ok(());
                }
                if leading {
                    self.leading_verb = Some(if name == "COMMIT" {
                        LeadingVerb::Commit
                    } else {
                        LeadingVerb::Prune
                    });
                    return Ok(());
                }
                Err(verb_unsupported(
                    "a backtracking-control verb in the middle of the pattern needs a \
                     backtracking engine",
                ))
            }
            (
                "pla"
                | "plb"
                | "nla"
                | "nlb"
                | "napla"
                | "naplb"
                | "positive_lookahead"
                | "positive_lookbehind"
                | "negative_lookahead"
                | "negative_lookbehind"
                | "non_atomic_positive_lookahead"
                | "non_atomic_positive_lookbehind",
                Some(_),
            ) => Err(lookaround()),
            _ => Err(RegexError::unsupported(
                format!(
                    "`(*{body})` is not supported: this verb or start-of-pattern setting has no \
                     linear-time equivalent (or is misplaced)"
                ),
                "remove the verb",
            )),
        }
    }

    /// The set of a shorthand escape (`\d`, `\w`, ...), Unicode under `(*UCP)`.
    fn shorthand_set(&self, c: char) -> R<ClassUnicode> {
        if self.ucp {
            ucp_shorthand(c)
        } else {
            Ok(shorthand(c).unwrap_or_else(all))
        }
    }

    /// Whether nothing follows in the current top-level branch: the pattern ends, or `|`
    /// starts the next top-level alternative.
    fn at_branch_end(&self) -> bool {
        if !self.stack.is_empty() {
            return false;
        }
        let mut rest = self.rest();
        if self.flags.x {
            loop {
                let trimmed = rest.trim_start_matches(is_pattern_space);
                if let Some(comment) = trimmed.strip_prefix('#') {
                    rest = comment.split_once('\n').map_or("", |(_, after)| after);
                } else {
                    rest = trimmed;
                    break;
                }
            }
        }
        rest.is_empty() || rest.starts_with('|')
    }

    /// `)` read: closes the innermost group.
    fn close_group(&mut self) -> R<()> {
        if self.stack.is_empty() {
            return Err(RegexError::invalid("unmatched closing parenthesis"));
        }
        let (hir, end, r, starts_nl) = self.finish_branch()?;
        let Some(mut frame) = self.stack.pop() else {
            return Err(RegexError::invalid("unmatched closing parenthesis"));
        };
        frame.alternatives.push(hir);
        self.flags = frame.outer;
        self.branch = frame.parent;
        let group = alternation(frame.alternatives);
        self.push(Item {
            hir: group,
            repeatable: true,
            ends: frame.any_end || end,
            dollar: false,
            r_tail: frame.any_r || r,
            bare_r: false,
            may_start_nl: frame.any_starts_nl || starts_nl,
        })
    }

    /// A quantifier was read: applies it to the last item.
    fn quantifier(&mut self, min: u32, max: Option<u32>) -> R<()> {
        let lazy = self.eat('?');
        // PCRE2 allows extended-mode whitespace between a quantifier and a possessive `+`
        // (pcre2api, PCRE2_EXTENDED), not before a lazy `?`.
        let before = self.pos;
        self.skip_extended();
        let possessive = !lazy && self.eat('+');
        self.pos = before;
        if possessive {
            return Err(RegexError::unsupported(
                "possessive quantifiers (`*+`, `++`, `?+`, `{n,m}+`) are not supported by the \
                 linear-time engine",
                "drop the `+` if giving back characters cannot change the answer",
            ));
        }
        let greedy = lazy == self.flags.ungreedy;
        let Some(last) = self.branch.items.last_mut() else {
            return Err(RegexError::invalid(
                "quantifier does not follow a repeatable item",
            ));
        };
        if !last.repeatable {
            return Err(RegexError::invalid(
                "quantifier does not follow a repeatable item",
            ));
        }
        if last.ends {
            return Err(RegexError::unsupported(
                "a repeated group ending with `$` (or `\\Z`) is not supported: PCRE2's `$` also \
                 matches before a final newline, which the linear-time engine can express only \
                 at the end of the pattern",
                "move `$` out of the repeated group, to the end of the pattern",
            ));
        }
        // A repetition that ends with `\R` and can start with `\n` could split one `\r\n` over
        // two repetitions; repeating `\R` alone gives the same matches from one repetition on.
        let repeats = max.is_none_or(|m| m > 1);
        if last.r_tail && repeats && last.may_start_nl && !(last.bare_r && min <= 1) {
            return Err(r_unsupported());
        }
        let mut sub = std::mem::replace(&mut last.hir, Hir::empty());
        if matches!(
            sub.kind(),
            HirKind::Repetition(_) | HirKind::Look(_) | HirKind::Empty
        ) {
            // The HIR printer writes a repeated repetition as `a+?`, which reads back as a lazy
            // `+`: a (capturing, unobserved) group keeps it apart.
            sub = Hir::capture(Capture {
                index: 1,
                name: None,
                sub: Box::new(sub),
            });
        }
        last.hir = Hir::repetition(Repetition {
            min,
            max,
            greedy,
            sub: Box::new(sub),
        });
        last.repeatable = false;
        if min == 0 {
            // Now it can be empty: a `\R` before it is followed by what follows it.
            let n = self.branch.items.len();
            let before_r = n >= 2 && self.branch.items.get(n - 2).is_some_and(|i| i.r_tail);
            if let Some(last) = self.branch.items.last_mut() {
                last.r_tail |= before_r;
            }
        }
        self.charge_out(12)
    }

    /// After `{`: a quantifier `{n}`, `{n,}` or `{n,m}` (consumed), or `None` when `{` is a
    /// literal (nothing consumed).
    fn brace_quantifier(&mut self) -> R<Option<(u32, Option<u32>)>> {
        let rest = self.rest().as_bytes();
        let digits = |from: usize| {
            rest.get(from..)
                .map_or(0, |s| s.iter().take_while(|b| b.is_ascii_digit()).count())
        };
        let n1 = digits(0);
        if n1 == 0 {
            return Ok(None);
        }
        let (max_text, len) = match rest.get(n1) {
            Some(b'}') => (None, n1 + 1),
            Some(b',') => {
                let n2 = digits(n1 + 1);
                if rest.get(n1 + 1 + n2) != Some(&b'}') {
                    return Ok(None);
                }
                (Some((n1 + 1, n2)), n1 + 2 + n2)
            }
            _ => return Ok(None),
        };
        let number = |from: usize, n: usize| -> R<u32> {
            let text = std::str::from_utf8(rest.get(from..from + n).unwrap_or(b"")).unwrap_or("");
            match text.parse::<u32>() {
                Ok(v) if v <= MAX_REPEAT => Ok(v),
                _ => Err(RegexError::invalid("number too big in {} quantifier")),
            }
        };
        let min = number(0, n1)?;
        let max = match max_text {
            None => Some(min),
            Some((_, 0)) => None,
            Some((from, n)) => Some(number(from, n)?),
        };
        if max.is_some_and(|m| m < min) {
            return Err(RegexError::invalid("numbers out of order in {} quantifier"));
        }
        self.pos += len;
        Ok(Some((min, max)))
    }

    /// `\` read outside a class.
    fn escape(&mut self) -> R<()> {
        let Some(c) = self.bump() else {
            return Err(RegexError::invalid("\\ at end of pattern"));
        };
        match c {
            'd' | 'D' | 'w' | 'W' | 's' | 'S' | 'h' | 'H' | 'v' | 'V' => {
                let set = self.shorthand_set(c)?;
                self.push_set(set)
            }
            'N' => {
                if self.eat_str("{U+") {
                    let c = self.braced_number(16, "\\N{U+")?;
                    return self.push_char(c);
                }
                if self.peek() == Some('{')
                    && !self
                        .rest()
                        .as_bytes()
                        .get(1)
                        .is_some_and(u8::is_ascii_digit)
                {
                    return Err(unsupported_escape());
                }
                self.push_set(not_newline())
            }
            'R' => {
                let crlf = Hir::literal("\r\n".as_bytes());
                let single = Hir::class(Class::Unicode(ClassUnicode::new(
                    VERTICAL_SPACE
                        .iter()
                        .map(|&(a, b)| ClassUnicodeRange::new(a, b)),
                )));
                self.push(Item {
                    r_tail: true,
                    bare_r: true,
                    ..Item::atom(Hir::alternation(vec![crlf, single]), true)
                })
            }
            'b' | 'B' if self.ucp => Err(ucp_boundary()),
            'b' => self.push(Item::assertion(Hir::look(Look::WordAscii))),
            'B' => {
                // The ASCII `\B` also holds inside a multi-byte character, where the `regex`
                // crate's `is_match` can stop at that (discarded) empty match and miss a later
                // real one (`(?:\B|é)+` on "aéa"); Unicode `\b|\B` holds exactly at character
                // boundaries, so the conjunction is PCRE2's `\B` without the split positions.
                let boundary = Hir::alternation(vec![
                    Hir::look(Look::WordUnicode),
                    Hir::look(Look::WordUnicodeNegate),
                ]);
                self.push(Item::assertion(Hir::concat(vec![
                    Hir::look(Look::WordAsciiNegate),
                    boundary,
                ])))
            }
            'A' => self.push(Item::assertion(Hir::look(Look::Start))),
            'z' => self.push(Item::assertion(Hir::look(Look::End))),
            'Z' => self.push(end_item()),
            'G' => Err(RegexError::unsupported(
                "`\\G` is not supported",
                "a MongoDB query matches once from the start of the string, where `\\G` is \
                 `\\A`: write `\\A`",
            )),
            'K' => Err(RegexError::unsupported(
                "`\\K` (reset the match start) is not supported",
                "remove `\\K`: it does not change whether a string matches",
            )),
            'C' => Err(RegexError::unsupported(
                "`\\C` (one code unit) is not supported",
                "use `.` with the `s` option to match one character",
            )),
            'X' => Err(RegexError::unsupported(
                "`\\X` (an extended grapheme cluster) is not supported",
                "match the characters with `.` or a Unicode property such as `\\p{M}`",
            )),
            'Q' => {
                while !self.rest().is_empty() {
                    if self.eat_str("\\E") {
                        break;
                    }
                    if let Some(c) = self.bump() {
                        self.push_char(c)?;
                    }
                }
                Ok(())
            }
            'E' => Ok(()),
            'p' | 'P' => {
                let set = self.property(c == 'P')?;
                self.push_set(set)
            }
            '1'..='9' => self.digits_escape(c),
            'g' | 'k' => Err(backreference()),
            'u' | 'U' | 'l' | 'L' | 'F' => Err(unsupported_escape()),
            c => match self.char_escape(c, false)? {
                Some(ch) => self.push_char(ch),
                None => Err(RegexError::invalid("unrecognized character follows \\")),
            },
        }
    }

    /// `\` and a digit 1-9 read outside a class: PCRE2 reads the decimal number; under 10,
    /// starting with 8 or 9, or at most the number of capture groups opened so far, it is a
    /// backreference (refused); otherwise up to three octal digits make a character.
    fn digits_escape(&mut self, first: char) -> R<()> {
        let after_first = self.pos;
        let mut number = u64::from(first.to_digit(10).unwrap_or(0));
        while let Some(d) = self.peek().and_then(|d| d.to_digit(10)) {
            self.bump();
            number = number.saturating_mul(10).saturating_add(u64::from(d));
        }
        if number < 10 || matches!(first, '8' | '9') || number <= self.captures {
            return Err(RegexError::unsupported(
                format!(
                    "backreferences (`\\{number}`) are not supported by the linear-time engine"
                ),
                "spell out the alternatives the reference stands for; write a character by its \
                 code as `\\o{101}` or `\\x{41}`",
            ));
        }
        self.pos = after_first;
        let mut v = first.to_digit(8).unwrap_or(0);
        for _ in 0..2 {
            match self.peek().and_then(|d| d.to_digit(8)) {
                Some(d) => {
                    self.bump();
                    v = v * 8 + d;
                }
                None => break,
            }
        }
        let c = code_point(v)?;
        self.push_char(c)
    }

    /// The escapes that stand for one character, in or out of a class (`c` follows the `\`).
    /// `None` for an ASCII letter or digit that is no such escape.
    fn char_escape(&mut self, c: char, in_class: bool) -> R<Option<char>> {
        let ch = match c {
            'a' => '\u{7}',
            'e' => '\u{1b}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'b' if in_class => '\u{8}',
            '0' => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ '0'..='7') => {
                            self.bump();
                            v = v * 8 + (d as u32 - '0' as u32);
                        }
                        _ => break,
                    }
                }
                code_point(v)?
            }
            '1'..='7' if in_class => {
                let mut v = c as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ '0'..='7') => {
                            self.bump();
                            v = v * 8 + (d as u32 - '0' as u32);
                        }
                        _ => break,
                    }
                }
                code_point(v)?
            }
            '8' | '9' if in_class => c,
            'o' => {
                if !self.eat('{') {
                    return Err(RegexError::invalid("missing opening brace after \\o"));
                }
                self.braced_number(8, "\\o{")?
            }
            'x' => {
                if self.eat('{') {
                    self.braced_number(16, "\\x{")?
                } else {
                    let mut v = 0u32;
                    for _ in 0..2 {
                        match self.peek().and_then(|d| d.to_digit(16)) {
                            Some(d) => {
                                self.bump();
                                v = v * 16 + d;
                            }
                            None => break,
                        }
                    }
                    code_point(v)?
                }
            }
            'c' => match self.bump() {
                Some(x) if (' '..='~').contains(&x) => {
                    let upper = x.to_ascii_uppercase() as u32;
                    code_point(upper ^ 0x40)?
                }
                _ => {
                    return Err(RegexError::invalid(
                        "\\c must be followed by a printable ASCII character",
                    ));
                }
            },
            c if c.is_ascii_alphanumeric() => return Ok(None),
            c => c,
        };
        Ok(Some(ch))
    }

    /// Hex or octal digits up to `}` (the `{` has been read).
    fn braced_number(&mut self, radix: u32, what: &str) -> R<char> {
        let mut v: u32 = 0;
        let mut n = 0;
        while let Some(d) = self.peek().and_then(|d| d.to_digit(radix)) {
            self.bump();
            n += 1;
            v = v.saturating_mul(radix).saturating_add(d);
        }
        if n == 0 || !self.eat('}') {
            return Err(RegexError::invalid(format!(
                "{what} is not followed by digits and `}}`"
            )));
        }
        code_point(v)
    }

    /// `\p` or `\P` read: the property's set.
    fn property(&mut self, negated: bool) -> R<ClassUnicode> {
        let name: String = if self.eat('{') {
            let name = self.take_until('}');
            if !self.eat('}') {
                return Err(RegexError::invalid("malformed \\P or \\p sequence"));
            }
            name
        } else {
            match self.bump() {
                Some(c) => c.to_string(),
                None => return Err(RegexError::invalid("malformed \\P or \\p sequence")),
            }
        };
        let (negated, name) = match name.strip_prefix('^') {
            Some(rest) => (!negated, rest.to_string()),
            None => (negated, name),
        };
        let mut set = match self.properties.get(&name) {
            Some(set) => set.clone(),
            None => {
                let set = property_set(&name)?;
                self.properties.insert(name, set.clone());
                set
            }
        };
        if negated {
            set.negate();
        }
        Ok(set)
    }

    /// `[` read outside a class: a class, or one of `[[:<:]]` `[[:>:]]`.
    fn class(&mut self) -> R<()> {
        if self.ucp && (self.rest().starts_with("[:<:]]") || self.rest().starts_with("[:>:]]")) {
            return Err(ucp_boundary());
        }
        if self.eat_str("[:<:]]") {
            return self.push(Item::assertion(Hir::look(Look::WordStartAscii)));
        }
        if self.eat_str("[:>:]]") {
            return self.push(Item::assertion(Hir::look(Look::WordEndAscii)));
        }
        if matches!(self.peek(), Some(':' | '.' | '=')) && self.posix_syntax().is_some() {
            return Err(RegexError::invalid(
                "POSIX named classes are supported only within a class",
            ));
        }
        let negated = self.eat('^');
        // Characters and ranges (folded when caseless) and fixed sets (never folded).
        let mut folded: Vec<ClassUnicodeRange> = Vec::new();
        let mut fixed: Vec<ClassUnicodeRange> = Vec::new();
        let mut first = true;
        let mut quoting = false;
        loop {
            let Some(c) = self.bump() else {
                return Err(RegexError::invalid(
                    "missing terminating ] for character class",
                ));
            };
            if quoting {
                if c == '\\' && self.eat('E') {
                    quoting = false;
                    continue;
                }
                folded.push(ClassUnicodeRange::new(c, c));
                first = false;
                continue;
            }
            if c == ']' && !first {
                break;
            }
            first = false;
            if self.flags.xx && (c == ' ' || c == '\t') {
                continue;
            }
            let atom = self.class_atom(c, &mut quoting)?;
            let start = match atom {
                ClassAtom::Nothing => continue,
                ClassAtom::Set(set) => {
                    if self.range_follows() {
                        return Err(RegexError::invalid("invalid range in character class"));
                    }
                    self.charge_out(set.ranges().len().saturating_mul(14))?;
                    fixed.extend(set.ranges().iter().copied());
                    continue;
                }
                ClassAtom::Char(a) => a,
            };
            if self.range_follows() {
                self.bump();
                let Some(c2) = self.bump() else {
                    return Err(RegexError::invalid(
                        "missing terminating ] for character class",
                    ));
                };
                let mut q2 = false;
                match self.class_atom(c2, &mut q2)? {
                    ClassAtom::Char(b) => {
                        if b < start {
                            return Err(RegexError::invalid(
                                "range out of order in character class",
                            ));
                        }
                        folded.push(ClassUnicodeRange::new(start, b));
                    }
                    ClassAtom::Set(_) => {
                        return Err(RegexError::invalid("invalid range in character class"));
                    }
                    ClassAtom::Nothing => {
                        // `\E` or `\Q` after the hyphen: the hyphen is a literal.
                        folded.push(ClassUnicodeRange::new(start, start));
                        folded.push(ClassUnicodeRange::new('-', '-'));
                        quoting = q2;
                    }
                }
            } else {
                folded.push(ClassUnicodeRange::new(start, start));
            }
            if folded.len() > 4096 {
                let mut set = ClassUnicode::new(folded.drain(..));
                if self.flags.i {
                    set.case_fold_simple();
                }
                fixed.extend(set.ranges().iter().copied());
            }
            if fixed.len() > 4096 {
                let set = ClassUnicode::new(fixed.drain(..));
                fixed.extend(set.ranges().iter().copied());
            }
        }
        let mut set = ClassUnicode::new(folded);
        if self.flags.i {
            set.case_fold_simple();
        }
        set.union(&ClassUnicode::new(fixed));
        if negated {
            set.negate();
        }
        self.charge_out(8)?;
        self.push_set(set)
    }

    /// A `-` follows that makes a range (not the last character before `]`).
    fn range_follows(&self) -> bool {
        self.peek() == Some('-') && self.peek_at(1).is_some_and(|c| c != ']')
    }

    /// One element of a class, `c` having been read.
    fn class_atom(&mut self, c: char, quoting: &mut bool) -> R<ClassAtom> {
        match c {
            '[' if matches!(self.peek(), Some(':' | '.' | '=')) => match self.posix_syntax() {
                Some((kind, negated, name, len)) => {
                    self.pos += len;
                    if kind != ':' {
                        return Err(RegexError::invalid(
                            "POSIX collating elements are not supported",
                        ));
                    }
                    let set = if self.ucp {
                        ucp_posix_class(&name, self.flags.i)?
                    } else {
                        posix_class(&name, self.flags.i)
                    };
                    let mut set =
                        set.ok_or_else(|| RegexError::invalid("unknown POSIX class name"))?;
                    if negated {
                        set.negate();
                    }
                    Ok(ClassAtom::Set(set))
                }
                None => Ok(ClassAtom::Char('[')),
            },
            '\\' => {
                let Some(e) = self.bump() else {
                    return Err(RegexError::invalid("\\ at end of pattern"));
                };
                match e {
                    'd' | 'D' | 'w' | 'W' | 's' | 'S' | 'h' | 'H' | 'v' | 'V' => {
                        Ok(ClassAtom::Set(self.shorthand_set(e)?))
                    }
                    'p' | 'P' => Ok(ClassAtom::Set(self.property(e == 'P')?)),
                    'Q' => {
                        *quoting = true;
                        Ok(ClassAtom::Nothing)
                    }
                    'E' => Ok(ClassAtom::Nothing),
                    'N' => Err(RegexError::invalid("\\N is not supported in a class")),
                    'u' | 'U' | 'l' | 'L' | 'F' => Err(unsupported_escape()),
                    'B' | 'R' | 'X' | 'A' | 'z' | 'Z' | 'G' | 'K' | 'C' | 'g' | 'k' => Err(
                        RegexError::invalid("escape sequence is invalid in character class"),
                    ),
                    e => match self.char_escape(e, true)? {
                        Some(ch) => Ok(ClassAtom::Char(ch)),
                        None => Err(RegexError::invalid("unrecognized character follows \\")),
                    },
                }
            }
            c => Ok(ClassAtom::Char(c)),
        }
    }

    /// At `[` followed by `:`, `.` or `=` (the `[` read): a POSIX construct `[:name:]`,
    /// `[:^name:]`, `[.x.]` or `[=x=]`, as (kind, negated, name, length after the `[`).
    fn posix_syntax(&self) -> Option<(char, bool, String, usize)> {
        let rest = self.rest();
        let kind = rest.chars().next()?;
        let body = rest.get(1..)?;
        let end = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '^' || c == '_'))?;
        let tail = body.get(end..)?;
        let mut close = String::new();
        close.push(kind);
        close.push(']');
        if !tail.starts_with(&close) {
            return None;
        }
        let raw = body.get(..end)?;
        let (negated, name) = match raw.strip_prefix('^') {
            Some(n) => (true, n),
            None => (false, raw),
        };
        Some((kind, negated, name.to_string(), 1 + end + 2))
    }
}

/// The non-multi-line `$` (and `\Z`): PCRE2 matches at the end and before a final `\n`; as the
/// last item of the pattern this is "an optional `\n`, then the end".
fn end_item() -> Item {
    let newline = Hir::repetition(Repetition {
        min: 0,
        max: Some(1),
        greedy: true,
        sub: Box::new(Hir::literal("\n".as_bytes())),
    });
    Item {
        hir: Hir::concat(vec![newline, Hir::look(Look::End)]),
        repeatable: false,
        ends: true,
        dollar: true,
        r_tail: false,
        bare_r: false,
        // After a `\R` that took only the `\r` of `\r\n`, consuming the `\n` reaches the end
        // exactly when PCRE2's `\R` (taking `\r\n`) is followed by `$`.
        may_start_nl: false,
    }
}

fn alternation(mut alternatives: Vec<Hir>) -> Hir {
    if alternatives.len() == 1 {
        alternatives.pop().unwrap_or_else(Hir::empty)
    } else {
        Hir::alternation(alternatives)
    }
}

fn code_point(v: u32) -> R<char> {
    if (0xD800..=0xDFFF).contains(&v) {
        return Err(RegexError::invalid(
            "disallowed Unicode code point (>= 0xd800 && <= 0xdfff)",
        ));
    }
    char::from_u32(v).ok_or_else(|| {
        RegexError::invalid("character code point value in \\x{} or \\o{} is too large")
    })
}

/// PCRE2's extended-mode whitespace in UTF mode (Unicode's Pattern_White_Space).
fn is_pattern_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\u{b}'
            | '\u{c}'
            | '\r'
            | ' '
            | '\u{85}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

fn set(ranges: &[(char, char)]) -> ClassUnicode {
    ClassUnicode::new(ranges.iter().map(|&(a, b)| ClassUnicodeRange::new(a, b)))
}

fn all() -> ClassUnicode {
    set(&[('\0', char::MAX)])
}

fn not_newline() -> ClassUnicode {
    set(&[('\0', '\t'), ('\u{b}', char::MAX)])
}

const DIGIT: &[(char, char)] = &[('0', '9')];
const WORD: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
/// `\s` and `[:space:]` without UCP: HT, LF, VT, FF, CR and space.
const SPACE: &[(char, char)] = &[('\t', '\r'), (' ', ' ')];
/// `\h` in UTF mode (PCRE2 defines it with Unicode characters even without UCP).
const HORIZONTAL_SPACE: &[(char, char)] = &[
    ('\t', '\t'),
    (' ', ' '),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];
/// `\v` in UTF mode; `\R` matches one of these or `\r\n`.
const VERTICAL_SPACE: &[(char, char)] =
    &[('\n', '\r'), ('\u{85}', '\u{85}'), ('\u{2028}', '\u{2029}')];

/// `\d \D \w \W \s \S \h \H \v \V`.
fn shorthand(c: char) -> Option<ClassUnicode> {
    let (ranges, negated) = match c {
        'd' => (DIGIT, false),
        'D' => (DIGIT, true),
        'w' => (WORD, false),
        'W' => (WORD, true),
        's' => (SPACE, false),
        'S' => (SPACE, true),
        'h' => (HORIZONTAL_SPACE, false),
        'H' => (HORIZONTAL_SPACE, true),
        'v' => (VERTICAL_SPACE, false),
        'V' => (VERTICAL_SPACE, true),
        _ => return None,
    };
    let mut s = set(ranges);
    if negated {
        s.negate();
    }
    Some(s)
}

/// A POSIX class by name, ASCII only (no UCP). Caseless, `upper` and `lower` mean `alpha`, as
/// in PCRE2.
fn posix_class(name: &str, caseless: bool) -> Option<ClassUnicode> {
    let ranges: &[(char, char)] = match name {
        "alpha" => &[('A', 'Z'), ('a', 'z')],
        "lower" | "upper" if caseless => &[('A', 'Z'), ('a', 'z')],
        "lower" => &[('a', 'z')],
        "upper" => &[('A', 'Z')],
        "alnum" => &[('0', '9'), ('A', 'Z'), ('a', 'z')],
        "ascii" => &[('\0', '\u{7f}')],
        "blank" => &[('\t', '\t'), (' ', ' ')],
        "cntrl" => &[('\0', '\u{1f}'), ('\u{7f}', '\u{7f}')],
        "digit" => DIGIT,
        "graph" => &[('!', '~')],
        "print" => &[(' ', '~')],
        "punct" => &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        "space" => SPACE,
        "word" => WORD,
        "xdigit" => &[('0', '9'), ('A', 'F'), ('a', 'f')],
        _ => return None,
    };
    Some(set(ranges))
}

/// A Unicode property by PCRE2's name: general categories, scripts (as script extensions, as
/// PCRE2 10.40+ reads `\p{Greek}`), binary properties, and PCRE2's own `Any`, `L&`, `Xan`,
/// `Xps`, `Xsp`, `Xwd`, `Xuc`. Tables are the `regex` crate's.
fn property_set(name: &str) -> R<ClassUnicode> {
    let unknown = || RegexError::invalid("unknown property name after \\P or \\p");
    let loose: String = name
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    let union = |names: &[&str]| -> R<ClassUnicode> {
        let mut out = ClassUnicode::empty();
        for n in names {
            out.union(&lookup(n).ok_or_else(unknown)?);
        }
        Ok(out)
    };
    match loose.as_str() {
        "any" => return Ok(all()),
        "l&" | "lc" => return union(&["gc=Lu", "gc=Ll", "gc=Lt"]),
        "xan" => return union(&["gc=L", "gc=N"]),
        "xwd" => {
            let mut s = union(&["gc=L", "gc=N"])?;
            s.union(&set(&[('_', '_')]));
            return Ok(s);
        }
        "xps" | "xsp" => {
            let mut s = union(&["gc=Z"])?;
            s.union(&set(SPACE));
            return Ok(s);
        }
        "xuc" => {
            return Ok(set(&[
                ('$', '$'),
                ('@', '@'),
                ('`', '`'),
                ('\u{a0}', '\u{d7ff}'),
                ('\u{e000}', char::MAX),
            ]));
        }
        _ => {}
    }
    if loose.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-' | '=' | '&' | '.'))
    {
        return Err(unknown());
    }
    if let Some((key, value)) = loose.split_once('=') {
        let key = match key {
            "sc" | "script" => "sc",
            "scx" | "scriptextensions" => "scx",
            "gc" | "generalcategory" => "gc",
            "bc" | "bidiclass" => {
                return Err(RegexError::unsupported(
                    "Bidi_Class properties are not supported",
                    "use a general category or script",
                ));
            }
            _ => return Err(unknown()),
        };
        return lookup(&format!("{key}={value}")).ok_or_else(unknown);
    }
    lookup(&format!("gc={loose}"))
        .or_else(|| lookup(&format!("scx={loose}")))
        .or_else(|| lookup(&loose))
        .ok_or_else(unknown)
}

/// The set of `\p{spec}` in the `regex` crate's Unicode tables.
fn lookup(spec: &str) -> Option<ClassUnicode> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(&format!("\\p{{{spec}}}"))
        .ok()?;
    match hir.into_kind() {
        HirKind::Class(Class::Unicode(set)) => Some(set),
        HirKind::Literal(lit) => {
            let c = std::str::from_utf8(&lit.0).ok()?.chars().next()?;
            Some(set(&[(c, c)]))
        }
        _ => None,
    }
}

/// A backtracking-control verb where its effect cannot be mirrored.
fn verb_unsupported(what: &str) -> RegexError {
    RegexError::unsupported(
        format!(
            "{what}: backtracking-control verbs are accepted where they cannot change the \
             answer (at the start of a one-alternative pattern, at the end of an alternative)"
        ),
        "remove the verb, or move it to the end of the pattern",
    )
}

/// Whether `hir` matches exactly one character (a literal character or a class).
fn is_one_character(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Class(_) => true,
        HirKind::Literal(lit) => std::str::from_utf8(&lit.0).is_ok_and(|s| s.chars().count() == 1),
        _ => false,
    }
}

/// `\d \D \w \W \s \S` under `(*UCP)`, as PCRE2 defines them: `\d` is `\p{Nd}`, `\w` is
/// `\p{L}`, `\p{N}` and underscore, `\s` is `\p{Z}`, `\h` and `\v`. Other escapes as without.
fn ucp_shorthand(c: char) -> R<ClassUnicode> {
    let mut s = match c.to_ascii_lowercase() {
        'd' => property_set("Nd")?,
        'w' => property_set("Xwd")?,
        's' => {
            let mut s = property_set("Z")?;
            s.union(&set(HORIZONTAL_SPACE));
            s.union(&set(VERTICAL_SPACE));
            s
        }
        _ => return Ok(shorthand(c).unwrap_or_else(all)),
    };
    if c.is_ascii_uppercase() {
        s.negate();
    }
    Ok(s)
}

/// A POSIX class under `(*UCP)`: PCRE2's Unicode definitions, or `None` for an unknown name.
/// `graph`, `print` and `punct` (PCRE2's special Unicode definitions) and caseless `lower` and
/// `upper` are refused.
fn ucp_posix_class(name: &str, caseless: bool) -> R<Option<ClassUnicode>> {
    let refused = || {
        RegexError::unsupported(
            format!("`[:{name}:]` under `(*UCP)` is not supported"),
            "use a Unicode property such as `\\p{P}` or `\\p{L}`",
        )
    };
    let property = match name {
        "alnum" => "Xan",
        "alpha" => "L",
        "cntrl" => "Cc",
        "digit" => "Nd",
        "lower" | "upper" if caseless => return Err(refused()),
        "lower" => "Ll",
        "upper" => "Lu",
        "space" => "Xps",
        "word" => "Xwd",
        "blank" => return Ok(Some(set(HORIZONTAL_SPACE))),
        "graph" | "print" | "punct" => return Err(refused()),
        _ => return Ok(posix_class(name, caseless)),
    };
    property_set(property).map(Some)
}

/// A word boundary under `(*UCP)`: PCRE2's Unicode `\w` has no linear-time boundary here.
fn ucp_boundary() -> RegexError {
    RegexError::unsupported(
        "word boundaries (`\\b`, `\\B`, `[[:<:]]`, `[[:>:]]`) under `(*UCP)` are not supported",
        "drop `(*UCP)` for ASCII word boundaries, or match the neighbouring characters",
    )
}

fn lookaround() -> RegexError {
    RegexError::unsupported(
        "look-ahead and look-behind assertions are not supported by the linear-time engine",
        "match the context as part of the pattern, or split the condition into several \
         clauses (`$and`, `$not`)",
    )
}

fn backreference() -> RegexError {
    RegexError::unsupported(
        "backreferences (`\\1`, `\\g{1}`, `\\k<name>`, `(?P=name)`) are not supported by the \
         linear-time engine",
        "spell out the alternatives the reference stands for",
    )
}

fn recursion() -> RegexError {
    RegexError::unsupported(
        "recursion and subroutine calls (`(?R)`, `(?1)`, `(?&name)`, `\\g<1>`) are not \
         supported by the linear-time engine",
        "write the group out where it is called",
    )
}

fn r_unsupported() -> RegexError {
    RegexError::unsupported(
        "`\\R` here is not supported: PCRE2's `\\R` is atomic (it never gives back the `\\n` \
         of `\\r\\n`), which the linear-time engine can mirror only when what follows cannot \
         start with `\\n`",
        "write the line endings you mean, e.g. `(?:\\r\\n|\\n)`",
    )
}

fn unsupported_escape() -> RegexError {
    RegexError::invalid("PCRE2 does not support \\F, \\L, \\l, \\N{name}, \\U, or \\u")
}
