//! Turns the criterion results of `cargo bench` (`target/criterion/**/new/`) into the Markdown
//! table of `benches/RESULTS.md`: per workload, reference vs compiled from the same run —
//! compile time, prepare time per request, decision time per document, redaction throughput —
//! the ratios, and every target of issue 3 with its measured figure. Medians throughout. The
//! before-and-after of issue 16 (instruction counts from `benches/callgrind.sh`, wall clock
//! from `benches/compare.sh`, neither of which criterion's results hold) is copied from its
//! section of `benches/INSTRUCTIONS.md`, written by hand.
//!
//! ```text
//! cargo bench && cargo run --release --example bench-report > benches/RESULTS.md
//! ```
//!
//! `CRITERION_DIR` overrides the results folder (default: the workspace's `target/criterion`); `BENCH_NOTE` adds a
//! paragraph under the header (the run's conditions). Missing results are shown as `—`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a report script: unreadable results stop it"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One benchmark: median ns per iteration and documents (elements) per iteration.
#[derive(Debug, Clone, Copy)]
struct Est {
    median_ns: f64,
    elements: Option<f64>,
}

impl Est {
    /// Median ns per element (per document, per file), or per iteration without a throughput.
    fn per_element(self) -> f64 {
        self.median_ns / self.elements.unwrap_or(1.0)
    }

    fn per_second(self) -> f64 {
        1e9 / self.per_element()
    }
}

struct Results(BTreeMap<String, Est>);

impl Results {
    fn load(dir: &Path) -> Results {
        let mut map = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n == "benchmark.json")
                    && p.parent()
                        .and_then(Path::file_name)
                        .is_some_and(|n| n == "new")
                {
                    let bench: Value = read(&p);
                    let est: Value = read(&p.with_file_name("estimates.json"));
                    let id = bench["full_id"].as_str().unwrap().to_string();
                    let elements = bench["throughput"]["Elements"].as_f64();
                    let median_ns = est["median"]["point_estimate"].as_f64().unwrap();
                    map.insert(
                        id,
                        Est {
                            median_ns,
                            elements,
                        },
                    );
                }
            }
        }
        Results(map)
    }

    fn get(&self, id: &str) -> Option<Est> {
        self.0.get(id).copied()
    }
}

fn read(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A duration in ns, in the unit that suits it.
fn time(ns: Option<f64>) -> String {
    match ns {
        None => "—".into(),
        Some(ns) if ns < 1e3 => format!("{ns:.1} ns"),
        Some(ns) if ns < 1e6 => format!("{:.2} µs", ns / 1e3),
        Some(ns) if ns < 1e9 => format!("{:.2} ms", ns / 1e6),
        Some(ns) => format!("{:.2} s", ns / 1e9),
    }
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

fn rate(est: Option<Est>) -> String {
    est.map_or("—".into(), |e| format!("{}/s", grouped(e.per_second())))
}

/// `slow / fast` as `12.3×`.
fn ratio(slow: Option<f64>, fast: Option<f64>) -> String {
    match (slow, fast) {
        (Some(s), Some(f)) if f > 0.0 => format!("{:.1}×", s / f),
        _ => "—".into(),
    }
}

/// `slow / fast` as `1.23×` (for the targets near 1).
fn ratio2(slow: Option<f64>, fast: Option<f64>) -> String {
    match (slow, fast) {
        (Some(s), Some(f)) if f > 0.0 => format!("{:.2}×", s / f),
        _ => "—".into(),
    }
}

fn met(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "**met**",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

const W3_SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
const W3_KINDS: [&str; 2] = ["group-team", "team"];

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let rustc = std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "rustc (unknown version)".into());
    format!(
        "{cpu}, {cores} cores (`nproc` = {cores}), {rustc}, {}",
        std::env::consts::OS
    )
}

fn main() {
    let dir = std::env::var_os("CRITERION_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion"));
    let r = Results::load(&dir);
    let mut s = String::new();
    let ns = |id: &str| r.get(id).map(Est::per_element);

    writeln!(s, "# Benchmark results\n").unwrap();
    writeln!(
        s,
        "Medians of criterion samples; reference and compiled engines measured in the same \
         `cargo bench` run. Machine: {}.\n",
        machine()
    )
    .unwrap();
    writeln!(
        s,
        "Command: `cargo bench && cargo run --release --example bench-report > benches/RESULTS.md`. \
         Workloads: `benches/README.md`. Instructions per document (callgrind, repeatable \
         under load): `benches/INSTRUCTIONS.md`.\n"
    )
    .unwrap();
    if let Ok(note) = std::env::var("BENCH_NOTE") {
        writeln!(s, "{note}\n").unwrap();
    }

    // ---- Targets.
    writeln!(s, "## Targets (issue 3)\n").unwrap();
    writeln!(s, "| Target | Measured | |").unwrap();
    writeln!(s, "| --- | --- | --- |").unwrap();
    let w1c = ns("evaluate/w1/decision/compiled");
    let w1r = ns("evaluate/w1/decision/reference");
    writeln!(
        s,
        "| W1 decision (role + field mask, no output) ≤ 50 ns per document on raw BSON | {} | {} |",
        time(w1c),
        met(w1c.map(|c| c <= 50.0))
    )
    .unwrap();
    writeln!(
        s,
        "| W1 decision: compiled ≥ 20× faster than the reference | {} ({} vs {}) | {} |",
        ratio(w1r, w1c),
        time(w1c),
        time(w1r),
        met(w1r.zip(w1c).map(|(r, c)| r / c >= 20.0))
    )
    .unwrap();
    let w2c = r.get("evaluate/w2-20/redact_raw/compiled");
    writeln!(
        s,
        "| W2 redacted raw-BSON output ≥ 2,000,000 documents/s (20-field documents) | {} | {} |",
        rate(w2c),
        met(w2c.map(|e| e.per_second() >= 2e6))
    )
    .unwrap();
    for (fields, note) in [(20, "20 fields"), (100, "100 fields")] {
        let c = ns(&format!("evaluate/w2-{fields}/redact_raw/compiled"));
        let rd = ns(&format!("evaluate/w2-{fields}/read_document/reference"));
        let rr = ns(&format!("evaluate/w2-{fields}/redact_raw/reference"));
        writeln!(
            s,
            "| W2 redaction ({note}): compiled ≥ 10× faster than the reference | {} vs reference `read(&Document)`; {} vs reference `redact_raw` | {} |",
            ratio(rd, c),
            ratio(rr, c),
            met(rd.zip(c).map(|(r, c)| r / c >= 10.0))
        )
        .unwrap();
    }
    for kind in W3_KINDS {
        let small = ns(&format!("evaluate/w3-{kind}/decision/compiled/10"));
        let large = ns(&format!("evaluate/w3-{kind}/decision/compiled/10000"));
        writeln!(
            s,
            "| W3 `{kind}`: per-document time at 10,000 roles within 1.5× of 10 roles (decision) | {} ({} vs {}) | {} |",
            ratio2(large, small),
            time(large),
            time(small),
            met(large.zip(small).map(|(l, s)| l / s <= 1.5))
        )
        .unwrap();
        let small = ns(&format!("evaluate/w3-{kind}/redact_raw/compiled/10"));
        let large = ns(&format!("evaluate/w3-{kind}/redact_raw/compiled/10000"));
        writeln!(
            s,
            "| W3 `{kind}`: the same, redacted output | {} ({} vs {}) | {} |",
            ratio2(large, small),
            time(large),
            time(small),
            met(large.zip(small).map(|(l, s)| l / s <= 1.5))
        )
        .unwrap();
    }
    for kind in W3_KINDS {
        let p = ns(&format!("prepare/w3-{kind}/compiled/10000"));
        writeln!(
            s,
            "| W3 `{kind}`: prepare at 10,000 roles ≤ 20 µs | {} | {} |",
            time(p),
            met(p.map(|p| p <= 20_000.0))
        )
        .unwrap();
    }
    for kind in W3_KINDS {
        let c = ns(&format!("compile/w3-{kind}/rules_new/10000"));
        let l = ns(&format!("compile/w3-{kind}/load/10000"));
        writeln!(
            s,
            "| W3 `{kind}`: compile 10,000 roles ≤ 50 ms | {} (`Rules::new`; loading the file: {}) | {} |",
            time(c),
            time(l),
            met(c.map(|c| c <= 50e6))
        )
        .unwrap();
    }

    // ---- Compile.
    writeln!(s, "\n## Compile time per rule file\n").unwrap();
    writeln!(
        s,
        "Load = JSON → validated `RuleSet` (all the reference needs; shared by both engines). \
         Compile = `Rules::new` (the decision program; the reference uses the validated set as is).\n"
    )
    .unwrap();
    writeln!(s, "| Workload | load (reference: ready) | `Rules::new` (compile) | compiled ready (load + compile) |").unwrap();
    writeln!(s, "| --- | --- | --- | --- |").unwrap();
    let mut compile_row = |name: &str, load: Option<f64>, new: Option<f64>| {
        let total = load.zip(new).map(|(a, b)| a + b);
        writeln!(
            s,
            "| {name} | {} | {} | {} |",
            time(load),
            time(new),
            time(total)
        )
        .unwrap();
    };
    compile_row("W1", ns("compile/w1/load"), ns("compile/w1/rules_new"));
    compile_row("W2", ns("compile/w2/load"), ns("compile/w2/rules_new"));
    for kind in W3_KINDS {
        for n in W3_SIZES {
            compile_row(
                &format!("W3 `{kind}` {} roles", grouped(n as f64)),
                ns(&format!("compile/w3-{kind}/load/{n}")),
                ns(&format!("compile/w3-{kind}/rules_new/{n}")),
            );
        }
    }
    let w4_load = r.get("compile/w4/load_all");
    let w4_new = r.get("compile/w4/rules_new_all");
    let files = w4_load.and_then(|e| e.elements);
    compile_row(
        &format!(
            "W4 corpus, all {} loadable files",
            files.map_or("—".into(), |f| format!("{f:.0}"))
        ),
        w4_load.map(|e| e.median_ns),
        w4_new.map(|e| e.median_ns),
    );
    compile_row(
        "W4 corpus, per file (mean)",
        w4_load.map(Est::per_element),
        w4_new.map(Est::per_element),
    );

    // ---- Prepare.
    writeln!(s, "\n## Prepare time per request\n").unwrap();
    writeln!(
        s,
        "Collection lookup + `prepare_with` + `query_plan`. Building the `RequestContext` (same for both engines): {} (W1).\n",
        time(ns("prepare/w1/context"))
    )
    .unwrap();
    writeln!(
        s,
        "| Workload | reference | compiled | compiled / reference |"
    )
    .unwrap();
    writeln!(s, "| --- | --- | --- | --- |").unwrap();
    let mut prepare_row = |name: &str, reference: Option<f64>, compiled: Option<f64>| {
        writeln!(
            s,
            "| {name} | {} | {} | {} |",
            time(reference),
            time(compiled),
            ratio(compiled, reference)
        )
        .unwrap();
    };
    prepare_row("W1", ns("prepare/w1/reference"), ns("prepare/w1/compiled"));
    for kind in W3_KINDS {
        for n in W3_SIZES {
            prepare_row(
                &format!("W3 `{kind}` {} roles", grouped(n as f64)),
                ns(&format!("prepare/w3-{kind}/reference/{n}")),
                ns(&format!("prepare/w3-{kind}/compiled/{n}")),
            );
        }
    }

    // ---- Decision.
    writeln!(
        s,
        "\n## Decision time per document (`read_raw`, raw BSON, no output)\n"
    )
    .unwrap();
    writeln!(s, "| Workload | reference | compiled | speed-up |").unwrap();
    writeln!(s, "| --- | --- | --- | --- |").unwrap();
    let mut decision_row = |name: &str, prefix: &str, suffix: &str| {
        let rf = ns(&format!("{prefix}/reference{suffix}"));
        let c = ns(&format!("{prefix}/compiled{suffix}"));
        writeln!(
            s,
            "| {name} | {} | {} | {} |",
            time(rf),
            time(c),
            ratio(rf, c)
        )
        .unwrap();
    };
    decision_row("W1", "evaluate/w1/decision", "");
    decision_row("W2, 20 fields", "evaluate/w2-20/decision", "");
    decision_row("W2, 100 fields", "evaluate/w2-100/decision", "");
    for kind in W3_KINDS {
        for n in W3_SIZES {
            decision_row(
                &format!("W3 `{kind}` {} roles", grouped(n as f64)),
                &format!("evaluate/w3-{kind}/decision"),
                &format!("/{n}"),
            );
        }
    }

    // ---- Redaction.
    writeln!(s, "\n## Redaction throughput (documents/s)\n").unwrap();
    writeln!(
        s,
        "`redact_raw`: raw BSON in, redacted raw BSON appended to a reused `Vec`. \
         `read(&Document)`: `bson::Document` in, `ReadOutcome` with the redacted `Document` out \
         (the reference's native API). Speed-up: compiled `redact_raw` over the reference's faster path.\n"
    )
    .unwrap();
    writeln!(
        s,
        "| Workload | reference `read(&Document)` | reference `redact_raw` | compiled `read(&Document)` | compiled `redact_raw` | speed-up |"
    )
    .unwrap();
    writeln!(s, "| --- | --- | --- | --- | --- | --- |").unwrap();
    let mut redact_row = |name: &str, prefix: &str, suffix: &str| {
        let rd = r.get(&format!("{prefix}/read_document/reference{suffix}"));
        let rr = r.get(&format!("{prefix}/redact_raw/reference{suffix}"));
        let cd = r.get(&format!("{prefix}/read_document/compiled{suffix}"));
        let cr = r.get(&format!("{prefix}/redact_raw/compiled{suffix}"));
        let best_reference = [rd, rr]
            .into_iter()
            .flatten()
            .map(Est::per_element)
            .min_by(f64::total_cmp);
        writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} |",
            rate(rd),
            rate(rr),
            rate(cd),
            rate(cr),
            ratio(best_reference, cr.map(Est::per_element))
        )
        .unwrap();
    };
    redact_row("W1", "evaluate/w1", "");
    redact_row("W2, 20 fields", "evaluate/w2-20", "");
    redact_row("W2, 100 fields", "evaluate/w2-100", "");
    for kind in W3_KINDS {
        for n in W3_SIZES {
            redact_row(
                &format!("W3 `{kind}` {} roles", grouped(n as f64)),
                &format!("evaluate/w3-{kind}"),
                &format!("/{n}"),
            );
        }
    }
    s.push_str(&issue_16_section());
    print!("{s}");
}

/// The section "Before and after (issue 16)" of `benches/INSTRUCTIONS.md`, as it stands there
/// (preceded by a blank line), or a line saying it is missing.
fn issue_16_section() -> String {
    const HEADING: &str = "## Before and after (issue 16)";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/INSTRUCTIONS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let Some(start) = text.find(HEADING) else {
        return format!("\n{HEADING}\n\nMissing from `benches/INSTRUCTIONS.md`.\n");
    };
    let rest = &text[start..];
    let end = rest[HEADING.len()..]
        .find("\n## ")
        .map_or(rest.len(), |i| HEADING.len() + i + 1);
    format!("\n{}", rest[..end].trim_end_matches('\n').to_owned() + "\n")
}
