//! `rolegate bench PATH --collection DB.COLL --user USER.json --documents DOCS.jsonl`: how fast
//! the rules decide for one user, on the user's own rules and documents.
//!
//! Steps, each timed: load the rules (`load_ms`) and compile them (`compile_ms`, from
//! [`Rules::compile_time`]); prepare a request (`prepare_ns`: the collection lookup,
//! `prepare_with` and, for reads, the query plan — the median of [`PREPARE_RUNS`] runs); convert
//! the documents to raw BSON once; then time each document's decision `--iterations` times in a
//! row (by default enough for about a second in all) — reads: `redact_raw` into a reused buffer;
//! writes: `insert` / `update` / `delete`. The report: documents/s (documents over the summed
//! per-document times), ns per document (median and p99 over the documents), prepare time and
//! compile time. `--action update` pairs each document (post-image) with the same line of
//! `--prev` (pre-images), or with itself when `--prev` is not given.
//!
//! Filters are part of the prepared request (its query plan, sent to the database); the timed
//! decision is the rules' per-document work on documents the database returned.
//!
//! A progress bar is drawn on stderr while it runs, only when stderr is a terminal. Output:
//! `--format human` (text) or `--format json` (one object: `engine`, `action`, `documents`,
//! `iterations`, `docs_per_sec`, `ns_per_doc_median`, `ns_per_doc_p99`, `ns_per_doc_mean`,
//! `prepare_ns`, `compile_ms`, `load_ms`, and `visible` for reads or `allowed` for writes).
//!
//! Exit 0 once the figures are printed, 2 on unusable input (including rules that do not load).

use std::hint::black_box;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bson::{Document, RawDocumentBuf};
use clap::{Args, ValueEnum};
use rolegate::{EngineKind, PreparedRequest, Rules, Scratch, testing::to_document};
use serde_json::json;

use super::inputs::{Inputs, load_app};
use super::{CliError, EngineArg, Exit, Format, emit, read_json_lines};

/// Prepare runs whose median is `prepare_ns`.
pub const PREPARE_RUNS: usize = 51;
/// Without `--iterations`: the timed loop aims at about this much time in all.
const TARGET: Duration = Duration::from_secs(1);
/// Without `--iterations`: bounds of the calibrated iteration count.
const MAX_AUTO_ITERATIONS: u64 = 10_000;

/// What is decided for each document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchAction {
    Read,
    Insert,
    Update,
    Delete,
}

impl BenchAction {
    fn as_str(self) -> &'static str {
        match self {
            BenchAction::Read => "read",
            BenchAction::Insert => "insert",
            BenchAction::Update => "update",
            BenchAction::Delete => "delete",
        }
    }
}

/// Arguments of `rolegate bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// An app directory (either layout) or one rule file.
    pub path: PathBuf,
    /// The namespace: `database.collection` (or `data_source/database.collection`).
    #[arg(long, value_name = "DB.COLL")]
    pub collection: String,
    /// The `%%user` object: `{id, type, data, custom_data, identities}`.
    #[arg(long, value_name = "USER.json")]
    pub user: PathBuf,
    /// The documents, one JSON object per line (Extended JSON allowed).
    #[arg(long, value_name = "DOCS.jsonl")]
    pub documents: PathBuf,
    /// What to decide for each document.
    #[arg(long, value_enum, default_value_t = BenchAction::Read)]
    pub action: BenchAction,
    /// The engine to measure.
    #[arg(long, value_enum, default_value_t = EngineArg::Compiled)]
    pub engine: EngineArg,
    /// Run as the system user: every rule, filter and schema check is bypassed (as for App
    /// Services functions that run as system). A user file with `"type": "system"` does not
    /// do this: it is evaluated like any other user.
    #[arg(long)]
    pub system: bool,
    /// The request: the same object as a conformance case's `request`.
    #[arg(long, value_name = "REQ.json")]
    pub request: Option<PathBuf>,
    /// Update pre-images, paired line by line with `--documents` (default: each document is
    /// its own pre-image).
    #[arg(long, value_name = "PREV.jsonl")]
    pub prev: Option<PathBuf>,
    /// Timed decisions per document (default: calibrated to about a second in all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// The measured figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub engine: EngineKind,
    pub action: BenchAction,
    pub documents: usize,
    pub iterations: u64,
    pub docs_per_sec: f64,
    pub ns_per_doc_median: f64,
    pub ns_per_doc_p99: f64,
    pub ns_per_doc_mean: f64,
    pub prepare_ns: f64,
    pub compile_ms: f64,
    pub load_ms: f64,
    /// Documents visible (reads) or writes allowed.
    pub yes: usize,
}

/// One document to decide: the stored / inserted / post-image document, raw for reads, and the
/// pre-image for updates.
struct Item {
    doc: Document,
    raw: RawDocumentBuf,
    prev: Option<Document>,
}

/// Runs `bench`.
pub fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    let inputs = Inputs::read(&args.user, args.request.as_deref())?;
    let items = items(args)?;
    let (set, load_time) = load_app(&args.path)?;
    let load_ms = ms(load_time);
    let ctx = inputs.context(&set, false, args.system)?;
    let rules = Rules::new(set);
    let compile_ms = ms(rules.compile_time());
    let collection = rules
        .collection(&args.collection)
        .map_err(|e| CliError::new(e.to_string()))?;
    let engine = EngineKind::from(args.engine);
    let read = args.action == BenchAction::Read;

    let mut prepare_times: Vec<f64> = (0..PREPARE_RUNS)
        .map(|_| {
            let start = Instant::now();
            let coll = rules.collection(black_box(&args.collection));
            if let Ok(coll) = coll {
                let prepared = coll.prepare_with(black_box(&ctx), engine);
                if read {
                    let _ = black_box(prepared.query_plan(None, None));
                }
            }
            start.elapsed().as_nanos() as f64
        })
        .collect();
    let prepare_ns = percentile(&mut prepare_times, 0.5);

    let prepared = collection.prepare_with(&ctx, engine);
    let mut timer = Timer::new(&prepared, args.action);
    let iterations = match args.iterations {
        Some(n) => n,
        None => calibrate(&mut timer, &items),
    };
    let mut progress = Progress::new(items.len());
    let mut per_doc = Vec::with_capacity(items.len());
    let mut yes = 0;
    for (i, item) in items.iter().enumerate() {
        let (ns, ok) = timer.time(item, iterations);
        per_doc.push(ns);
        yes += usize::from(ok);
        progress.update(i + 1);
    }
    progress.finish();

    let total: f64 = per_doc.iter().sum();
    let mean = total / per_doc.len().max(1) as f64;
    let report = Report {
        engine,
        action: args.action,
        documents: items.len(),
        iterations,
        docs_per_sec: if total > 0.0 {
            items.len() as f64 * 1e9 / total
        } else {
            0.0
        },
        ns_per_doc_median: percentile(&mut per_doc, 0.5),
        ns_per_doc_p99: percentile(&mut per_doc, 0.99),
        ns_per_doc_mean: mean,
        prepare_ns,
        compile_ms,
        load_ms,
        yes,
    };
    print_report(&report, args.format, out)?;
    Ok(Exit::Ok)
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
struct Timer<'a, 'p, 'c> {
    prepared: &'a PreparedRequest<'p, 'c>,
    action: BenchAction,
    scratch: Scratch,
    out: Vec<u8>,
}

impl<'a, 'p, 'c> Timer<'a, 'p, 'c> {
    fn new(prepared: &'a PreparedRequest<'p, 'c>, action: BenchAction) -> Self {
        Timer {
            prepared,
            action,
            scratch: Scratch::new(),
            out: Vec::with_capacity(1 << 16),
        }
    }

    /// One decision: visible (reads) or allowed (writes).
    fn once(&mut self, item: &Item) -> bool {
        let p = self.prepared;
        match self.action {
            BenchAction::Read => {
                self.out.clear();
                let d = p.redact_raw(black_box(&item.raw), &mut self.scratch, &mut self.out);
                black_box(self.out.as_slice());
                d.visible
            }
            BenchAction::Insert => black_box(p.insert(black_box(&item.doc))).allowed,
            BenchAction::Delete => black_box(p.delete(black_box(&item.doc))).allowed,
            BenchAction::Update => {
                let pre = item.prev.as_ref().unwrap_or(&item.doc);
                black_box(p.update(black_box(pre), black_box(&item.doc))).allowed
            }
        }
    }

    /// Mean ns of `iterations` decisions of `item` in a row, and the decision.
    fn time(&mut self, item: &Item, iterations: u64) -> (f64, bool) {
        let mut ok = false;
        let start = Instant::now();
        for _ in 0..iterations {
            ok = self.once(item);
        }
        (start.elapsed().as_nanos() as f64 / iterations as f64, ok)
    }
}

/// Decides every document once (a warm-up) and picks the iteration count that makes the timed
/// loop last about [`TARGET`].
fn calibrate(timer: &mut Timer<'_, '_, '_>, items: &[Item]) -> u64 {
    let start = Instant::now();
    for item in items {
        black_box(timer.once(item));
    }
    let pass = start.elapsed().as_secs_f64().max(1e-9);
    ((TARGET.as_secs_f64() / pass) as u64).clamp(1, MAX_AUTO_ITERATIONS)
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
fn items(args: &BenchArgs) -> Result<Vec<Item>, CliError> {
    if args.prev.is_some() && args.action != BenchAction::Update {
        return Err(CliError::new("`--prev` is only for `--action update`"));
    }
    let convert = |path: &Path, line: usize, value: &serde_json::Value| {
        to_document(value, &format!("line {line}"))
            .map_err(|e| CliError::new(format!("`{}`: {}", path.display(), e.message)))
    };
    let lines = read_json_lines(&args.documents)?;
    let prevs = match &args.prev {
        Some(p) => {
            let prevs = read_json_lines(p)?;
            if prevs.len() != lines.len() {
                return Err(CliError::new(format!(
                    "`{}` holds {} documents but `{}` holds {} pre-images; they are paired line by line",
                    args.documents.display(),
                    lines.len(),
                    p.display(),
                    prevs.len()
                )));
            }
            prevs
                .iter()
                .map(|(line, v)| convert(p, *line, v).map(Some))
                .collect::<Result<Vec<_>, _>>()?
        }
        None => vec![None; lines.len()],
    };
    lines
        .iter()
        .zip(prevs)
        .map(|((line, v), prev)| {
            let doc = convert(&args.documents, *line, v)?;
            let raw = RawDocumentBuf::from_document(&doc).map_err(|e| {
                CliError::new(format!(
                    "`{}` line {line}: cannot encode as BSON: {e}",
                    args.documents.display()
                ))
            })?;
            Ok(Item { doc, raw, prev })
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
    match format {
        Format::Human => {
            let yes = if r.action == BenchAction::Read {
                "visible"
            } else {
                "allowed"
            };
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
                    r.yes,
                    r.documents,
                    pad = 14 - yes.len()
                ),
            )
        }
        Format::Json => {
            let mut v = json!({
                "engine": r.engine.as_str(),
                "action": r.action.as_str(),
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
            let key = if r.action == BenchAction::Read {
                "visible"
            } else {
                "allowed"
            };
            if let Some(m) = v.as_object_mut() {
                m.insert(key.to_string(), json!(r.yes));
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
