//! Stage: report. Input: criterion's results under `target/criterion/peers_*`
//! (`new/benchmark.json` for the ids and throughput, `new/estimates.json` for the median).
//! Output: the Markdown table of medians and speed-ups (peer time ÷ rolegate time), the targets
//! met or missed, and an SVG chart (`docs/peers.svg`): speed-ups on a log scale, and W3 time per
//! document against the number of roles.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// One benchmark's median.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// `peers/w1-decision`, ...
    pub group: String,
    /// `rolegate`, `cedar`, `regorus`.
    pub engine: String,
    /// `raw`, `prebuilt`, a role count, ...
    pub parameter: String,
    /// Median time per iteration, ns.
    pub median_ns: f64,
    /// Documents per iteration (1 when the benchmark has no throughput).
    pub elements: u64,
}

impl Measurement {
    /// Median time per document (per iteration when there is no throughput), ns.
    pub fn per_element(&self) -> f64 {
        self.median_ns / self.elements.max(1) as f64
    }
}

/// The results of the `peers/*` groups, keyed by (group, engine, parameter).
#[derive(Debug, Default)]
pub struct Results {
    pub all: BTreeMap<(String, String, String), Measurement>,
}

impl Results {
    /// Reads every `new/benchmark.json` under `criterion_dir` whose group starts with `peers/`.
    pub fn read(criterion_dir: &Path) -> std::io::Result<Results> {
        let mut results = Results::default();
        let mut stack = vec![criterion_dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let in_new = dir.file_name().is_some_and(|n| n == "new");
                if !in_new || path.file_name().is_none_or(|n| n != "benchmark.json") {
                    continue;
                }
                if let Some(m) = measurement(&path, &dir.join("estimates.json"))
                    && m.group.starts_with("peers/")
                {
                    let key = (m.group.clone(), m.engine.clone(), m.parameter.clone());
                    results.all.insert(key, m);
                }
            }
        }
        Ok(results)
    }

    /// The median per document of one benchmark.
    pub fn get(&self, group: &str, engine: &str, parameter: &str) -> Option<f64> {
        self.all
            .get(&(group.to_string(), engine.to_string(), parameter.to_string()))
            .map(Measurement::per_element)
    }
}

fn measurement(benchmark: &Path, estimates: &Path) -> Option<Measurement> {
    let b: Value = serde_json::from_str(&std::fs::read_to_string(benchmark).ok()?).ok()?;
    let e: Value = serde_json::from_str(&std::fs::read_to_string(estimates).ok()?).ok()?;
    Some(Measurement {
        group: b["group_id"].as_str()?.to_string(),
        engine: b["function_id"].as_str()?.to_string(),
        parameter: b["value_str"].as_str().unwrap_or("").to_string(),
        median_ns: e["median"]["point_estimate"].as_f64()?,
        elements: b["throughput"]["Elements"].as_u64().unwrap_or(1),
    })
}

/// A duration in ns, with a unit that keeps 3 significant digits.
pub fn time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.3} µs", ns / 1e3)
            .replace(".000 ", " ")
            .trim_end_matches(' ')
            .to_string()
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A ratio: `24×`, `1.5×`, `1,234×`.
pub fn ratio(r: f64) -> String {
    if r >= 100.0 {
        let n = r.round() as u64;
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        format!("{out}×")
    } else if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

/// One row of the table: what, and where each engine's median is.
pub struct Row {
    pub label: String,
    pub group: &'static str,
    pub rolegate: String,
    pub peer: String,
    /// Short label for the chart (empty: not charted).
    pub chart: String,
}

/// The rows of the table, in order.
pub fn rows() -> Vec<Row> {
    let row = |label: &str, group: &'static str, rolegate: &str, peer: &str, chart: &str| Row {
        label: label.to_string(),
        group,
        rolegate: rolegate.to_string(),
        peer: peer.to_string(),
        chart: chart.to_string(),
    };
    let mut rows = vec![
        row(
            "(1) W1 decision per document — peer inputs prebuilt",
            "peers/w1-decision",
            "raw",
            "prebuilt",
            "W1 decision (prebuilt)",
        ),
        row(
            "(1) W1 decision per document — peer inputs built from BSON",
            "peers/w1-decision",
            "raw",
            "from-bson",
            "W1 decision (from BSON)",
        ),
        row(
            "(1) W1 decision, rolegate on `bson::Document` — peer inputs prebuilt",
            "peers/w1-decision",
            "document",
            "prebuilt",
            "",
        ),
        row(
            "(2) W1 readable fields (20-field document) — peer inputs prebuilt",
            "peers/w1-fields",
            "raw",
            "prebuilt",
            "W1 fields (prebuilt)",
        ),
        row(
            "(2) W1 readable fields (20-field document) — peer inputs built from BSON",
            "peers/w1-fields",
            "raw",
            "from-bson",
            "W1 fields (from BSON)",
        ),
        row(
            "(2) W1 readable fields, rolegate on `bson::Document` — peer inputs prebuilt",
            "peers/w1-fields",
            "document",
            "prebuilt",
            "",
        ),
    ];
    for kind in ["group-team", "team"] {
        for n in ["10", "100", "1000", "10000"] {
            let chart = if n == "10" || n == "10000" {
                format!("W3 {kind} {}", if n == "10" { "10" } else { "10,000" })
            } else {
                String::new()
            };
            rows.push(Row {
                label: format!(
                    "(3) W3 `{kind}`, {} roles, decision per document",
                    thousands(n)
                ),
                group: if kind == "team" {
                    "peers/w3-team"
                } else {
                    "peers/w3-group-team"
                },
                rolegate: n.to_string(),
                peer: n.to_string(),
                chart,
            });
        }
    }
    rows.push(row(
        "(4) load + compile W1",
        "peers/compile-w1",
        "w1",
        "w1",
        "compile W1",
    ));
    for n in ["10", "100", "1000", "10000"] {
        rows.push(Row {
            label: format!("(4) load + compile W3 `group-team`, {} roles", thousands(n)),
            group: "peers/compile-w3",
            rolegate: n.to_string(),
            peer: n.to_string(),
            chart: if n == "10000" {
                "compile W3 10,000".to_string()
            } else {
                String::new()
            },
        });
    }
    rows
}

fn thousands(n: &str) -> String {
    match n {
        "1000" => "1,000".to_string(),
        "10000" => "10,000".to_string(),
        _ => n.to_string(),
    }
}

/// The peers, as named in the results and in the table, with their chart colours.
pub const PEERS: [(&str, &str, &str); 3] = [
    ("cedar", "Cedar", "#d95f02"),
    ("regorus", "regorus", "#7570b3"),
    ("regorus-rvm", "regorus RVM", "#e7298a"),
];

/// rolegate's chart colour.
const ROLEGATE_COLOR: &str = "#1b9e77";

/// A speed-up: peer time ÷ rolegate time.
fn speedup(r: &Results, group: &str, ours: &str, peer: &str, parameter: &str) -> Option<f64> {
    let a = r.get(group, "rolegate", ours)?;
    let b = r.get(group, peer, parameter)?;
    (a > 0.0).then(|| b / a)
}

/// Time per document at 10,000 roles ÷ at 10 (or at the largest size measured, named).
fn growth(r: &Results, group: &str, engine: &str) -> Option<(f64, &'static str)> {
    let base = r.get(group, engine, "10")?;
    ["10000", "1000", "100"].iter().find_map(|n| {
        let label = match *n {
            "10000" => "10,000",
            "1000" => "1,000",
            _ => "100",
        };
        Some((r.get(group, engine, n)? / base, label))
    })
}

fn growth_cell(g: Option<(f64, &str)>) -> String {
    match g {
        Some((v, "10,000")) => ratio(v),
        Some((v, n)) => format!("{} (to {n})", ratio(v)),
        None => "—".to_string(),
    }
}

/// The Markdown table: one row per measurement, the medians and the speed-ups.
pub fn table(r: &Results) -> String {
    let mut s = String::from("| measurement (median) | rolegate |");
    for (_, name, _) in PEERS {
        let _ = write!(s, " {name} |");
    }
    for (_, name, _) in PEERS {
        let _ = write!(s, " {name} ÷ rolegate |");
    }
    s.push_str("\n| --- | ---: |");
    for _ in 0..2 * PEERS.len() {
        s.push_str(" ---: |");
    }
    s.push('\n');
    let cell = |v: Option<f64>| v.map_or("—".to_string(), time);
    for row in rows() {
        let _ = write!(
            s,
            "| {} | {} |",
            row.label,
            cell(r.get(row.group, "rolegate", &row.rolegate))
        );
        for (peer, _, _) in PEERS {
            let _ = write!(s, " {} |", cell(r.get(row.group, peer, &row.peer)));
        }
        for (peer, _, _) in PEERS {
            let v = speedup(r, row.group, &row.rolegate, peer, &row.peer);
            let _ = write!(s, " {} |", v.map_or("—".to_string(), ratio));
        }
        s.push('\n');
    }
    for kind in ["group-team", "team"] {
        let group = format!("peers/w3-{kind}");
        let _ = write!(
            s,
            "| (3) W3 `{kind}`: time per document at 10,000 roles ÷ at 10 | {} |",
            growth_cell(growth(r, &group, "rolegate"))
        );
        for (peer, _, _) in PEERS {
            let _ = write!(s, " {} |", growth_cell(growth(r, &group, peer)));
        }
        for _ in PEERS {
            s.push_str(" |");
        }
        s.push('\n');
    }
    s
}

/// The issue's targets, met or missed (against every regorus evaluator).
pub fn targets(r: &Results) -> String {
    let mut s = String::from(
        "| target | measured (inputs prebuilt / built from BSON) | |\n| --- | --- | --- |\n",
    );
    for (group, what) in [
        ("peers/w1-decision", "(1) decision"),
        ("peers/w1-fields", "(2) readable fields"),
    ] {
        for (peer, name, _) in PEERS {
            let goal = if peer == "cedar" { 20.0 } else { 100.0 };
            let pre = speedup(r, group, "raw", peer, "prebuilt");
            let bson = speedup(r, group, "raw", peer, "from-bson");
            let (Some(pre), Some(bson)) = (pre, bson) else {
                continue;
            };
            let verdict = match (pre >= goal, bson >= goal) {
                (true, true) => "met",
                (false, true) => "met from BSON, missed prebuilt",
                (true, false) => "met prebuilt, missed from BSON",
                (false, false) => "missed",
            };
            let _ = writeln!(
                s,
                "| {what}: ≥ {goal:.0}× faster than {name} | {} / {} | {verdict} |",
                ratio(pre),
                ratio(bson),
            );
        }
    }
    for kind in ["group-team", "team"] {
        let group = format!("peers/w3-{kind}");
        let ours = growth(r, &group, "rolegate");
        let mut cells = vec![format!("rolegate {}", growth_cell(ours))];
        let mut peers_grow = true;
        for (peer, name, _) in PEERS {
            let g = growth(r, &group, peer);
            peers_grow &= g.is_some_and(|(v, _)| v > 1.5);
            cells.push(format!("{name} {}", growth_cell(g)));
        }
        let flat = ours.is_some_and(|(v, n)| v <= 1.5 && n == "10,000");
        let _ = writeln!(
            s,
            "| (3) W3 `{kind}` flat (≤ 1.5× from 10 to 10,000 roles) where the peers grow | {} | {} |",
            cells.join(", "),
            if flat && peers_grow { "met" } else { "missed" }
        );
    }
    s
}

/// The machine: CPU model and logical CPUs (Linux `/proc/cpuinfo`).
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cpus} CPUs")
}

// ---------------------------------------------------------------------------------------------
// The chart.

const WIDTH: f64 = 960.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An axis label for a power of ten of nanoseconds.
fn time_tick(p: i32) -> &'static str {
    match p {
        0 => "1 ns",
        1 => "10 ns",
        2 => "100 ns",
        3 => "1 µs",
        4 => "10 µs",
        5 => "100 µs",
        6 => "1 ms",
        7 => "10 ms",
        8 => "100 ms",
        _ => "1 s",
    }
}

/// An axis label for a power of ten of a ratio.
fn ratio_tick(p: i32) -> String {
    if p < 0 {
        format!("{}×", 10f64.powi(p))
    } else {
        ratio(10f64.powi(p)).replace(".00", "")
    }
}

/// The SVG chart: (top) speed-up of rolegate over each peer, log scale, with the 20× and 100×
/// targets; (bottom) W3 median time per document against the number of roles, log-log.
pub fn svg(r: &Results, note: &str) -> String {
    let charted: Vec<Row> = rows()
        .into_iter()
        .filter(|row| !row.chart.is_empty())
        .collect();
    let speedups: Vec<Vec<Option<f64>>> = charted
        .iter()
        .map(|row| {
            PEERS
                .iter()
                .map(|(peer, _, _)| speedup(r, row.group, &row.rolegate, peer, &row.peer))
                .collect()
        })
        .collect();
    let max = speedups
        .iter()
        .flatten()
        .flatten()
        .fold(10.0_f64, |a, &b| a.max(b));
    let (lo, hi) = (-1.0_f64, max.log10().ceil().max(3.0));
    let left = 190.0;
    let right = WIDTH - 60.0;
    let top = 78.0;
    let bar = 11.0;
    let row_h = PEERS.len() as f64 * bar + 10.0;
    let bars_h = charted.len() as f64 * row_h;
    let x = |v: f64| left + (v.max(0.1).log10() - lo) / (hi - lo) * (right - left);
    let mut s = String::new();
    let plot2_top = top + bars_h + 116.0;
    let plot2_h = 280.0;
    let height = plot2_top + plot2_h + 64.0;
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>
<text x="20" y="24" font-size="16" font-weight="bold">rolegate vs Cedar and regorus: speed-up = peer median ÷ rolegate median (log scale)</text>
<text x="20" y="42" fill="#555">{}</text>"##,
        esc(note)
    );
    for p in (lo as i32)..=(hi as i32) {
        let gx = x(10f64.powi(p));
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="{top}" x2="{gx:.1}" y2="{:.1}" stroke="#ddd"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            top + bars_h,
            top + bars_h + 16.0,
            ratio_tick(p)
        );
    }
    let gx = x(1.0);
    let _ = writeln!(
        s,
        r##"<line x1="{gx:.1}" y1="{top}" x2="{gx:.1}" y2="{:.1}" stroke="#888"/>"##,
        top + bars_h
    );
    for (goal, label, y) in [
        (20.0, "20×: target vs Cedar", top - 22.0),
        (100.0, "100×: target vs regorus", top - 8.0),
    ] {
        let gx = x(goal);
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="{:.1}" x2="{gx:.1}" y2="{:.1}" stroke="#333" stroke-dasharray="4 3"/><text x="{:.1}" y="{y:.1}" fill="#333" font-size="11">{label}</text>"##,
            y + 3.0,
            top + bars_h,
            gx + 4.0,
        );
    }
    for (i, (row, values)) in charted.iter().zip(&speedups).enumerate() {
        let y0 = top + i as f64 * row_h;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y0 + row_h / 2.0 + 4.0,
            esc(&row.chart)
        );
        for (j, ((_, name, color), v)) in PEERS.iter().zip(values).enumerate() {
            let by = y0 + 5.0 + j as f64 * bar;
            let Some(v) = *v else {
                let _ = writeln!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#555">{name}: not measured (the RVM refuses the policy)</text>"##,
                    x(1.0) + 4.0,
                    by + 9.0
                );
                continue;
            };
            let (x0, x1) = if v >= 1.0 {
                (x(1.0), x(v))
            } else {
                (x(v), x(1.0))
            };
            let _ = writeln!(
                s,
                r#"<rect x="{x0:.1}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
                (x1 - x0).max(1.0),
                bar - 1.0,
                x1.max(x(1.0)) + 4.0,
                by + 9.0,
                ratio(v)
            );
        }
    }
    let ly = top + bars_h + 40.0;
    for (j, (_, name, color)) in PEERS.iter().enumerate() {
        let lx = left + j as f64 * 210.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="{:.1}" width="12" height="12" fill="{color}"/><text x="{:.1}" y="{ly:.1}">rolegate vs {name}</text>"#,
            ly - 10.0,
            lx + 16.0
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="20" y="{:.1}" fill="#555">Left of 1×: the peer is faster. W1 rows: per document; W3 rows: per document at 10 and 10,000 roles; compile: load + compile from text.</text>"##,
        ly + 20.0
    );

    // W3: time per document against the number of roles.
    let _ = writeln!(
        s,
        r#"<text x="20" y="{:.1}" font-size="16" font-weight="bold">W3: median time per document against the number of roles (log-log)</text>"#,
        plot2_top - 18.0
    );
    let sizes = [10.0_f64, 100.0, 1000.0, 10000.0];
    let (tmin, tmax) = (1.0_f64, 8.0_f64);
    let plot_right = right - 150.0;
    let px = |n: f64| left + (n.log10() - 1.0) / 3.0 * (plot_right - left);
    let py =
        |ns: f64| plot2_top + plot2_h - (ns.max(10.0).log10() - tmin) / (tmax - tmin) * plot2_h;
    for p in (tmin as i32)..=(tmax as i32) {
        let gy = py(10f64.powi(p));
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{gy:.1}" x2="{plot_right:.1}" y2="{gy:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            left - 6.0,
            gy + 4.0,
            time_tick(p)
        );
    }
    for n in sizes {
        let gx = px(n);
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="{plot2_top}" x2="{gx:.1}" y2="{:.1}" stroke="#eee"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{} roles</text>"##,
            plot2_top + plot2_h,
            plot2_top + plot2_h + 16.0,
            thousands(&format!("{n:.0}"))
        );
    }
    let mut engines = vec![("rolegate", "rolegate", ROLEGATE_COLOR)];
    engines.extend(PEERS);
    let mut labels: Vec<(f64, f64, String, &str)> = Vec::new();
    for (k, kind) in ["group-team", "team"].iter().enumerate() {
        let group = format!("peers/w3-{kind}");
        for (engine, name, color) in &engines {
            let pts: Vec<(f64, f64)> = sizes
                .iter()
                .filter_map(|&n| Some((px(n), py(r.get(&group, engine, &format!("{n:.0}"))?))))
                .collect();
            let Some(&(lx, ly)) = pts.last() else {
                continue;
            };
            let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
            let dash = if k == 1 {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
                path.join(" ")
            );
            for (a, b) in &pts {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{a:.1}" cy="{b:.1}" r="3" fill="{color}"/>"#
                );
            }
            labels.push((lx, ly, format!("{name}, {kind}"), color));
        }
    }
    // End labels, pushed apart vertically so that they do not overlap.
    labels.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut last_y = f64::MIN;
    for (lx, ly, text, color) in labels {
        let y = ly.max(last_y + 13.0);
        last_y = y;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" fill="{color}" font-size="11">{}</text>"#,
            lx + 8.0,
            y + 4.0,
            esc(&text)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="20" y="{:.1}" fill="#555">Solid: group-team (a user test and a document test per role). Dashed: team (a document test per role). Peers' inputs prebuilt.</text>"##,
        plot2_top + plot2_h + 44.0
    );
    s.push_str("</svg>\n");
    s
}
