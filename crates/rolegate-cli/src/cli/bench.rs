//! `rolegate bench PATH --collection DB.COLL --user USER.json --documents DOCS.jsonl`: how fast
//! the rules decide for one user, on the user's own rules and documents — deciding exactly as
//! `eval` does.
//!
//! Steps, each timed: load the rules (`load_ms`) and compile them (`compile_ms`, from
//! [`Rules::compile_time`]); prepare a request (`prepare_ns`: the collection lookup,
//! `prepare_with` and, for reads, the query plan of the request file's query and projection —
//! the median of [`PREPARE_RUNS`] runs); then time each document's decision `--iterations`
//! times in a row (by default enough for about a second in all). The decision is `eval`'s
//! ([`super::decide`]): for reads and searches the filters' and the client's query and
//! projection (the store query and store projection in memory, then `read_for`); when the plan
//! leaves only the rules' decision (no filter applies, no client query or projection) the timed
//! call is `redact_raw` on raw BSON into a reused buffer, which decides the same — or, with
//! `--decision-only`, `read_raw` (visible or withheld, no redacted output); writes:
//! `insert` / `update` / `delete`. `--action update` pairs each document (post-image) with the
//! same line of `--prev` (pre-images), or with itself when `--prev` is not given.
//!
//! The report: documents/s (documents over the summed per-document times), ns per document
//! (median and p99 over the documents), prepare and compile time, which rules govern the
//! collection (`rules`: `collection`, `default` or `none`), and the decisions counted — for
//! reads `visible`, `withheld` and `not_selected` (withheld because a query of the plan does not
//! select the document), for writes `allowed` and `refused` — the same counts `eval` prints
//! document by document. A collection that no rule file names is a warning (an error with
//! `--strict`), as for `eval`.
//!
//! A progress bar is drawn on stderr while it runs, only when stderr is a terminal. Output:
//! `--format human` (text) or `--format json` (one object: `engine`, `action`, `rules`,
//! `timed` (`redact_raw`, `read_raw` or `eval`: the path timed), `documents`, `iterations`,
//! `docs_per_sec`, `ns_per_doc_median`, `ns_per_doc_p99`,
//! `ns_per_doc_mean`, `prepare_ns`, `compile_ms`, `load_ms`, and the counts; errors and
//! warnings as JSON objects on stderr).
//!
//! Exit codes ([`super::exit`]): 0 once the figures are printed; 1 when the request fails (its
//! query plan is refused: no document would be returned), or when the timed raw path and
//! `eval`'s path disagree on a document (`paths-disagree`: a bug to report); 2 for a wrong command line; 3 for an
//! unusable user, request or document file; 4 for rules that do not load.

use std::hint::black_box;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bson::RawDocumentBuf;
use clap::Args;
use rolegate::{EngineKind, Rules, Scratch};
use serde_json::json;

use super::decide::{Action, Decider, Decision};
use super::inputs::{Inputs, Item, RulesSource, collection, load_app, one_stdin, read_items};
use super::report::{self, Problem};
use super::{CliError, EngineArg, Exit, Format, emit};

/// Prepare runs whose median is `prepare_ns`.
pub const PREPARE_RUNS: usize = 51;
/// Without `--iterations`: the timed loop aims at about this much time in all.
const TARGET: Duration = Duration::from_secs(1);
/// Without `--iterations`: bounds of the calibrated iteration count.
const MAX_AUTO_ITERATIONS: u64 = 10_000;

/// Arguments of `rolegate bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// An app directory (either layout) or one rule file.
    pub path: PathBuf,
    /// The namespace: `database.collection` (or `data_source/database.collection`).
    #[arg(long, value_name = "DB.COLL")]
    pub collection: String,
    /// Refuse a `--collection` that no rule file names (by default a warning says which
    /// default rule applies).
    #[arg(long)]
    pub strict: bool,
    /// The `%%user` object: `{id, type, data, custom_data, identities}` (`-`: stdin).
    #[arg(long, value_name = "USER.json")]
    pub user: PathBuf,
    /// The documents, one JSON object per line, Extended JSON allowed (`-`: stdin).
    #[arg(long, value_name = "DOCS.jsonl")]
    pub documents: PathBuf,
    /// What to decide for each document.
    #[arg(long, value_enum, default_value_t = Action::Read)]
    pub action: Action,
    /// The engine to measure.
    #[arg(long, value_enum, default_value_t = EngineArg::Compiled)]
    pub engine: EngineArg,
    /// Run as the system user: every rule, filter and schema check is bypassed (as for App
    /// Services functions that run as system). A user file with `"type": "system"` does not
    /// do this: it is evaluated like any other user.
    #[arg(long)]
    pub system: bool,
    /// The request: the same object as a conformance case's `request`; its query and
    /// projection are part of every read decision, as for `eval` (`-`: stdin).
    #[arg(long, value_name = "REQ.json")]
    pub request: Option<PathBuf>,
    /// Update pre-images, paired line by line with `--documents` (default: each document is
    /// its own pre-image).
    #[arg(long, value_name = "PREV.jsonl")]
    pub prev: Option<PathBuf>,
    /// For a read that leaves only the rules' decision (no filter applies, no client query or
    /// projection), time the decision alone: `read_raw`, visible or withheld, without
    /// writing the redacted document (by default `redact_raw`, which writes it).
    #[arg(long)]
    pub decision_only: bool,
    /// Timed decisions per document (default: calibrated to about a second in all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,
    /// Output format (`json`: one object; errors and warnings as JSON objects on stderr).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// The decisions counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Reads: visible documents; writes: allowed writes.
    pub yes: usize,
    /// Reads: documents selected but withheld by the rules; writes: refused writes.
    pub no: usize,
    /// Reads: documents a query of the plan does not select.
    pub not_selected: usize,
}

impl Counts {
    fn add(&mut self, d: &Decision) {
        match d {
            Decision::Read {
                selected: false, ..
            } => self.not_selected += 1,
            _ if d.yes() => self.yes += 1,
            _ => self.no += 1,
        }
    }
}

/// The path a benchmark times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timed {
    /// A plain read on raw BSON, the redacted document written (`redact_raw`).
    RedactRaw,
    /// A plain read on raw BSON, the decision alone (`read_raw`, `--decision-only`).
    ReadRaw,
    /// `eval`'s path: reads the filters or the client's query or projection shape, and writes.
    Eval,
}

impl Timed {
    /// The name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Timed::RedactRaw => "redact_raw",
            Timed::ReadRaw => "read_raw",
            Timed::Eval => "eval",
        }
    }
}

/// The measured figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub engine: EngineKind,
    pub action: Action,
    pub timed: Timed,
    pub rules: RulesSource,
    pub documents: usize,
    pub iterations: u64,
    pub docs_per_sec: f64,
    pub ns_per_doc_median: f64,
    pub ns_per_doc_p99: f64,
    pub ns_per_doc_mean: f64,
    pub prepare_ns: f64,
    pub compile_ms: f64,
    pub load_ms: f64,
    pub counts: Counts,
}

/// One document to decide, with its raw BSON for the raw read path.
struct Doc {
    item: Item,
    raw: RawDocumentBuf,
}

/// Runs `bench`.
pub fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    one_stdin(&[
        ("--user", Some(&args.user)),
        ("--documents", Some(&args.documents)),
        ("--request", args.request.as_deref()),
        ("--prev", args.prev.as_deref()),
    ])?;
    if args.prev.is_some() && args.action != Action::Update {
        return Err(CliError::usage(
            "usage",
            "`--prev` is only for `--action update`",
        ));
    }
    let inputs = Inputs::read(&args.user, args.request.as_deref())?;
    let docs = docs(args)?;
    let (set, load_time) = load_app(&args.path)?;
    let load_ms = ms(load_time);
    let ctx = inputs.context(&set, args.action == Action::Search, args.system)?;
    for w in &inputs.warnings {
        report::warn(w, args.format);
    }
    let rules = Rules::new(set);
    let compile_ms = ms(rules.compile_time());
    let (collection, source, note) = collection(&rules, &args.collection, args.strict)?;
    if let Some(note) = &note {
        report::warn(note, args.format);
    }
    let engine = EngineKind::from(args.engine);

    let mut prepare_times: Vec<f64> = (0..PREPARE_RUNS)
        .map(|_| {
            let start = Instant::now();
            if let Ok(coll) = rules.collection(black_box(&args.collection)) {
                let prepared = coll.prepare_with(black_box(&ctx), engine);
                let _ = black_box(Decider::new(&prepared, &ctx, args.action, inputs.request()));
            }
            start.elapsed().as_nanos() as f64
        })
        .collect();
    let prepare_ns = percentile(&mut prepare_times, 0.5);

    let prepared = collection.prepare_with(&ctx, engine);
    let decider = match Decider::new(&prepared, &ctx, args.action, inputs.request())? {
        Ok(d) => d,
        Err(e) => {
            report::warn(
                &Problem::error(
                    "request-fails",
                    format!("the request fails, no document would be returned: {e}"),
                ),
                args.format,
            );
            return Ok(Exit::No);
        }
    };
    let mut timer = Timer::new(&decider, args.decision_only);
    if args.decision_only && timer.timed != Timed::ReadRaw {
        return Err(CliError::usage(
            "usage",
            "--decision-only times a read that leaves only the rules' decision: this request \
             applies a filter or a client query or projection, or is not a read (its timed path \
             is already eval's decision)",
        ));
    }
    let iterations = match args.iterations {
        Some(n) => n,
        None => calibrate(&mut timer, &docs)?,
    };
    let mut progress = Progress::new(docs.len());
    let mut per_doc = Vec::with_capacity(docs.len());
    let mut counts = Counts::default();
    for (i, doc) in docs.iter().enumerate() {
        let (ns, timed) = timer.time(doc, iterations)?;
        per_doc.push(ns);
        // The decision counted is eval's; the timed path must agree with it.
        let decision = decider.decide(&doc.item)?;
        if timed != decision.yes() {
            return Err(CliError::new(
                Exit::No,
                vec![Problem::error(
                    "paths-disagree",
                    format!(
                        "{}: the timed decision ({timed}) differs from eval's ({})",
                        doc.item.label,
                        decision.yes()
                    ),
                )],
            ));
        }
        counts.add(&decision);
        progress.update(i + 1);
    }
    progress.finish();

    let total: f64 = per_doc.iter().sum();
    let mean = total / per_doc.len().max(1) as f64;
    let report = Report {
        engine,
        action: args.action,
        timed: timer.timed,
        rules: source,
        documents: docs.len(),
        iterations,
        docs_per_sec: if total > 0.0 {
            docs.len() as f64 * 1e9 / total
        } else {
            0.0
        },
        ns_per_doc_median: percentile(&mut per_doc, 0.5),
        ns_per_doc_p99: percentile(&mut per_doc, 0.99),
        ns_per_doc_mean: mean,
        prepare_ns,
        compile_ms,
        load_ms,
        counts,
    };
    print_report(&report, args.format, out)?;
    Ok(Exit::Yes)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The nearest-rank percentile `q` (0..=1) of `values` (sorted in place); 0 when empty.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return 0.0;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values
        .get(rank.clamp(1, values.len()) - 1)
        .copied()
        .unwrap_or(0.0)
}

/// Times one document's decision, with reused scratch space and output buffer.
struct Timer<'d, 'a, 'p, 'c> {
    decider: &'d Decider<'a, 'p, 'c>,
    timed: Timed,
    scratch: Scratch,
    out: Vec<u8>,
}

impl<'d, 'a, 'p, 'c> Timer<'d, 'a, 'p, 'c> {
    fn new(decider: &'d Decider<'a, 'p, 'c>, decision_only: bool) -> Self {
        Timer {
            decider,
            timed: match (decider.plain(), decision_only) {
                (true, false) => Timed::RedactRaw,
                (true, true) => Timed::ReadRaw,
                (false, _) => Timed::Eval,
            },
            scratch: Scratch::new(),
            out: Vec::with_capacity(1 << 16),
        }
    }

    /// One decision (eval's; the raw path for a plain read): visible or allowed.
    fn once(&mut self, doc: &Doc) -> Result<bool, CliError> {
        match self.timed {
            Timed::RedactRaw => {
                self.out.clear();
                let yes =
                    self.decider
                        .decide_raw(black_box(&doc.raw), &mut self.scratch, &mut self.out);
                black_box(self.out.as_slice());
                Ok(yes)
            }
            Timed::ReadRaw => Ok(self
                .decider
                .decide_raw_only(black_box(&doc.raw), &mut self.scratch)),
            Timed::Eval => Ok(black_box(self.decider.decide(black_box(&doc.item))?).yes()),
        }
    }

    /// Mean ns of `iterations` decisions of `doc` in a row, and the decision.
    fn time(&mut self, doc: &Doc, iterations: u64) -> Result<(f64, bool), CliError> {
        let mut yes = false;
        let start = Instant::now();
        for _ in 0..iterations {
            yes = self.once(doc)?;
        }
        Ok((start.elapsed().as_nanos() as f64 / iterations as f64, yes))
    }
}

/// Decides every document once (a warm-up) and picks the iteration count that makes the timed
/// loop last about [`TARGET`].
fn calibrate(timer: &mut Timer<'_, '_, '_, '_>, docs: &[Doc]) -> Result<u64, CliError> {
    let start = Instant::now();
    for doc in docs {
        black_box(timer.once(doc)?);
    }
    let pass = start.elapsed().as_secs_f64().max(1e-9);
    Ok(((TARGET.as_secs_f64() / pass) as u64).clamp(1, MAX_AUTO_ITERATIONS))
}

/// A hand-rolled progress bar on stderr, drawn only when stderr is a terminal, at most every
/// 100 ms.
struct Progress {
    total: usize,
    enabled: bool,
    last: Option<Instant>,
}

impl Progress {
    const WIDTH: usize = 30;

    fn new(total: usize) -> Self {
        Progress {
            total,
            enabled: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    fn update(&mut self, done: usize) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if done < self.total
            && self
                .last
                .is_some_and(|t| now - t < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        let filled = (done * Self::WIDTH)
            .checked_div(self.total)
            .unwrap_or(Self::WIDTH);
        let percent = (done * 100).checked_div(self.total).unwrap_or(100);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {percent:>3}% {done}/{} documents",
            "#".repeat(filled),
            ".".repeat(Self::WIDTH - filled),
            self.total
        );
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

/// Reads the documents (and update pre-images), converting each to raw BSON once.
fn docs(args: &BenchArgs) -> Result<Vec<Doc>, CliError> {
    let items = read_items(None, Some(&args.documents), args.prev.as_deref())?;
    items
        .into_iter()
        .map(|item| {
            let raw = RawDocumentBuf::from_document(&item.doc).map_err(|e| {
                CliError::input(Problem::error(
                    "invalid-document",
                    format!("{}: cannot encode as BSON: {e}", item.label),
                ))
            })?;
            Ok(Doc { item, raw })
        })
        .collect()
}

/// `1234567.8` → `1,234,568`.
fn grouped(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut s = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            s.push(',');
        }
        s.push(c);
    }
    s
}

/// A duration in ns, in the unit that suits it.
fn duration(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn print_report(r: &Report, format: Format, out: &mut dyn Write) -> Result<(), CliError> {
    let read = r.action.is_read();
    let (yes, no) = if read {
        ("visible", "withheld")
    } else {
        ("allowed", "refused")
    };
    match format {
        Format::Human => {
            emit(
                out,
                format_args!(
                    "{} engine, {}: {} documents, {} timed decisions each",
                    r.engine.as_str(),
                    r.action.as_str(),
                    r.documents,
                    r.iterations
                ),
            )?;
            emit(out, format_args!("  rules:         {}", r.rules.as_str()))?;
            emit(out, format_args!("  timed path:    {}", r.timed.as_str()))?;
            emit(
                out,
                format_args!("  load:          {}", duration(r.load_ms * 1e6)),
            )?;
            emit(
                out,
                format_args!("  compile:       {}", duration(r.compile_ms * 1e6)),
            )?;
            emit(
                out,
                format_args!(
                    "  prepare:       {} per request (median of {PREPARE_RUNS})",
                    duration(r.prepare_ns)
                ),
            )?;
            emit(
                out,
                format_args!(
                    "  per document:  {} median, {} p99, {} mean",
                    duration(r.ns_per_doc_median),
                    duration(r.ns_per_doc_p99),
                    duration(r.ns_per_doc_mean)
                ),
            )?;
            emit(
                out,
                format_args!("  throughput:    {} documents/s", grouped(r.docs_per_sec)),
            )?;
            emit(
                out,
                format_args!(
                    "  {yes}:{:pad$}{} of {}",
                    "",
                    r.counts.yes,
                    r.documents,
                    pad = 14 - yes.len()
                ),
            )?;
            emit(
                out,
                format_args!(
                    "  {no}:{:pad$}{} of {}",
                    "",
                    r.counts.no,
                    r.documents,
                    pad = 14 - no.len()
                ),
            )?;
            if read {
                emit(
                    out,
                    format_args!(
                        "  not selected:  {} of {} (by a query of the plan)",
                        r.counts.not_selected, r.documents
                    ),
                )?;
            }
            Ok(())
        }
        Format::Json => {
            let mut v = json!({
                "engine": r.engine.as_str(),
                "action": r.action.as_str(),
                "timed": r.timed.as_str(),
                "rules": r.rules.as_str(),
                "documents": r.documents,
                "iterations": r.iterations,
                "docs_per_sec": r.docs_per_sec,
                "ns_per_doc_median": r.ns_per_doc_median,
                "ns_per_doc_p99": r.ns_per_doc_p99,
                "ns_per_doc_mean": r.ns_per_doc_mean,
                "prepare_ns": r.prepare_ns,
                "compile_ms": r.compile_ms,
                "load_ms": r.load_ms,
            });
            if let Some(m) = v.as_object_mut() {
                m.insert(yes.to_string(), json!(r.counts.yes));
                m.insert(no.to_string(), json!(r.counts.no));
                if read {
                    m.insert("not_selected".to_string(), json!(r.counts.not_selected));
                }
            }
            emit(out, v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.5), 50.0);
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert_eq!(percentile(&mut [7.0], 0.99), 7.0);
        assert_eq!(percentile(&mut [], 0.5), 0.0);
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(grouped(1_234_567.8), "1,234,568");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(duration(1500.0), "1.50 µs");
    }
}
