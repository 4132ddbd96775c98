//! Stage: the HTML coverage report. Input: the [`Coverage`] of the cases run and the
//! [`Summary`]. Output: one self-contained page (inline CSS, no script, no outside link): the
//! totals and a legend, then each rule file's JSON with every rule that is a decision point
//! marked — green when every outcome of it was reached, amber when some were, red when none was
//! — followed by one badge per outcome (`true 3`: reached by 3 cases; `false 0`: not reached),
//! and the list of the points not reached. Rules the file leaves out (a missing `apply_when`
//! is `{}`) are listed under the file. The cases that failed close the page.
//!
//! Every rule span carries `data-path` (its JSON path) and `data-status` (`full`, `partial`,
//! `none`), for tools and tests.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use rolegate::Place;
use rolegate::testing::{Coverage, CoveredFile, DecisionPoint};
use serde_json::Value;

use super::{Summary, cases_text, point_text, shown_percent, shown_threshold};

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222;max-width:80em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
pre.json{background:#fafafa;border:1px solid #ddd;padding:1em;overflow-x:auto;line-height:1.6}
.key{color:#555}
.rule{border-radius:3px;padding:0 .15em}
.rule.full{background:#d3f2d3;outline:1px solid #2e8b2e}
.rule.partial{background:#fbedc0;outline:1px solid #c08a00}
.rule.none{background:#f8d0d0;outline:1px solid #c0392b}
.badge{font-size:80%;border-radius:3px;padding:0 .35em;margin-left:.35em;color:#fff;white-space:nowrap}
.badge.hit{background:#2e8b2e}.badge.miss{background:#c0392b}
.totals{font-weight:bold}.fail{color:#c0392b}.pass{color:#2e8b2e}
ul.missed li,ul.failed li{margin:.2em 0}
";

/// The whole page.
pub fn page(coverage: &Coverage, summary: &Summary) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<title>rolegate: decision-point coverage</title>\n<style>\n");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<h1>Decision-point coverage</h1>\n");
    let _ = writeln!(
        out,
        "<p class=\"totals\" id=\"totals\">{} of {} decision points reached ({}%) by {}; \
         {} passed, {} failed.</p>",
        coverage.covered(),
        coverage.total(),
        shown_percent(coverage.covered(), coverage.total()),
        cases_text(coverage.cases()),
        summary.passed,
        summary.failed.len()
    );
    if let Some(min) = summary.min_coverage {
        let (class, word) = match summary.meets_minimum(coverage) {
            true => ("pass", "meets"),
            false => ("fail", "is below"),
        };
        let _ = writeln!(
            out,
            "<p class=\"{class}\" id=\"minimum\">The coverage {word} the minimum of {}%.</p>",
            shown_threshold(min)
        );
    }
    out.push_str(LEGEND);
    out.push_str("<ul id=\"files\">\n");
    for (n, file) in coverage.files().enumerate() {
        let _ = writeln!(
            out,
            "<li><a href=\"#file-{}\">{}</a>: {} of {} ({}%)</li>",
            n + 1,
            escape(&file.label()),
            file.covered(),
            file.total(),
            shown_percent(file.covered(), file.total())
        );
    }
    out.push_str("</ul>\n");
    for (n, file) in coverage.files().enumerate() {
        section(&mut out, n + 1, file);
    }
    if !summary.failed.is_empty() {
        out.push_str("<h2 id=\"failed\">Failed cases</h2>\n<ul class=\"failed\">\n");
        for (file, name, message) in &summary.failed {
            let _ = writeln!(
                out,
                "<li><b>{}</b> ({}): {}</li>",
                escape(name),
                escape(file),
                escape(message)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

const LEGEND: &str = "\
<p class=\"legend\" id=\"legend\">Legend: a rule that is a decision point is \
<span class=\"rule full\">green</span> when every outcome of it was reached, \
<span class=\"rule partial\">amber</span> when some were and \
<span class=\"rule none\">red</span> when none was; each outcome follows it as a badge, \
<span class=\"badge hit\">true 3</span> reached by 3 cases, \
<span class=\"badge miss\">false 0</span> not reached. A rule written as a constant has one \
outcome only.</p>
";

/// One rule file: heading, totals, the marked JSON, and what was not reached.
fn section(out: &mut String, n: usize, file: &CoveredFile) {
    let label = escape(&file.label());
    let _ = writeln!(out, "<section class=\"file\" id=\"file-{n}\">");
    let _ = writeln!(out, "<h2>{label}</h2>");
    let _ = writeln!(
        out,
        "<p class=\"totals\">{} of {} decision points reached ({}%), {}.</p>",
        file.covered(),
        file.total(),
        shown_percent(file.covered(), file.total()),
        cases_text(file.cases)
    );
    let mut marks = Marks::new(&file.points);
    out.push_str("<pre class=\"json\">");
    value(
        out,
        &file.source,
        &Place::file(file.file.as_str()),
        0,
        &mut marks,
    );
    out.push_str("</pre>\n");
    let absent: Vec<&DecisionPoint> = file
        .points
        .iter()
        .filter(|p| !marks.shown.contains(p.path.as_str()))
        .collect();
    if !absent.is_empty() {
        out.push_str("<p>Rules the file leaves out (their default applies):</p>\n<ul>\n");
        for p in absent {
            let class = if p.covered() { "hit" } else { "miss" };
            let _ = writeln!(
                out,
                "<li><code>{}</code> <span class=\"badge {class}\">{} {}</span></li>",
                escape(&p.path),
                p.label(),
                p.hits
            );
        }
        out.push_str("</ul>\n");
    }
    let missed: Vec<&DecisionPoint> = file.points.iter().filter(|p| !p.covered()).collect();
    if missed.is_empty() {
        out.push_str("<p class=\"pass\">Every decision point was reached.</p>\n");
    } else {
        out.push_str("<p>Not reached:</p>\n<ul class=\"missed\">\n");
        for p in missed {
            let _ = writeln!(out, "<li><code>{}</code></li>", escape(&point_text(p)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

/// The points of one file by JSON path, and the paths the rendering has shown.
struct Marks<'a> {
    by_path: HashMap<&'a str, Vec<&'a DecisionPoint>>,
    shown: HashSet<&'a str>,
}

impl<'a> Marks<'a> {
    fn new(points: &'a [DecisionPoint]) -> Self {
        let mut by_path: HashMap<&str, Vec<&DecisionPoint>> = HashMap::new();
        for p in points {
            by_path.entry(p.path.as_str()).or_default().push(p);
        }
        Marks {
            by_path,
            shown: HashSet::new(),
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Pretty-prints `v` (at `place`) as JSON, marking the decision points. Case files are parsed
/// by serde_json, whose recursion limit bounds the depth of `v`.
fn value<'a>(out: &mut String, v: &Value, place: &Place, depth: usize, marks: &mut Marks<'a>) {
    let here = marks
        .by_path
        .get_key_value(place.json_path.as_str())
        .map(|(k, points)| (*k, points.clone()));
    if let Some((path, points)) = &here {
        marks.shown.insert(path);
        let covered = points.iter().filter(|p| p.covered()).count();
        let status = match covered {
            0 => "none",
            c if c == points.len() => "full",
            _ => "partial",
        };
        let _ = write!(
            out,
            "<span class=\"rule {status}\" data-path=\"{}\" data-status=\"{status}\">",
            escape(path)
        );
    }
    match v {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            let last = map.len().saturating_sub(1);
            for (i, (key, child)) in map.iter().enumerate() {
                indent(out, depth + 1);
                let quoted = serde_json::to_string(key).unwrap_or_default();
                let _ = write!(out, "<span class=\"key\">{}</span>: ", escape(&quoted));
                value(out, child, &place.key(key), depth + 1, marks);
                out.push_str(if i == last { "\n" } else { ",\n" });
            }
            indent(out, depth);
            out.push('}');
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            let last = items.len().saturating_sub(1);
            for (i, child) in items.iter().enumerate() {
                indent(out, depth + 1);
                value(out, child, &place.index(i), depth + 1, marks);
                out.push_str(if i == last { "\n" } else { ",\n" });
            }
            indent(out, depth);
            out.push(']');
        }
        scalar => out.push_str(&escape(&scalar.to_string())),
    }
    if let Some((_, points)) = here {
        out.push_str("</span>");
        for p in points {
            let class = if p.covered() { "hit" } else { "miss" };
            let _ = write!(
                out,
                "<span class=\"badge {class}\" title=\"{}\">{} {}</span>",
                escape(&format!("{}: {} case(s)", point_text(p), p.hits)),
                p.label(),
                p.hits
            );
        }
    }
}

/// `text` with the HTML special characters escaped (for text and attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_are_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
