//! Stage: the coverage report of `rolegate test --coverage` (`docs/coverage.md`). Input: the
//! [`Coverage`] of the cases run, the `--min-coverage` threshold and the cases that failed.
//! Output: the report — text for people, one JSON object, or a self-contained HTML page
//! ([`html`]) — on stdout or in the `--output` file, and whether the threshold is met.
//!
//! The text report: a total line, then per rule file its share and every decision point no case
//! reached (`not reached: roles[1].apply_when false (role `clerk`)`), then the threshold's
//! verdict. Shares are shown rounded down to one decimal, so a share below the threshold is
//! never shown as equal to it; the threshold compares the exact share.

pub mod html;

use std::fmt::Write as _;

use rolegate::testing::{Coverage, CoveredFile, DecisionPoint};
use serde_json::{Value, json};

/// What the report says besides the coverage itself.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Cases that passed.
    pub passed: usize,
    /// The cases that failed: (case file, case name, message).
    pub failed: Vec<(String, String, String)>,
    /// `--min-coverage`, in percent.
    pub min_coverage: Option<f64>,
}

impl Summary {
    /// True unless a `--min-coverage` is given and the coverage is below it.
    pub fn meets_minimum(&self, coverage: &Coverage) -> bool {
        // covered / total >= min / 100, without dividing (no total: nothing to miss). Counts of
        // decision points are far below 2^52, exact as f64.
        self.min_coverage
            .is_none_or(|min| coverage.covered() as f64 * 100.0 >= min * coverage.total() as f64)
    }
}

/// `covered / total` in percent, rounded down to one decimal (`78.8`; `100.0` when nothing is
/// to cover).
pub fn shown_percent(covered: usize, total: usize) -> String {
    let tenths = covered
        .saturating_mul(1000)
        .checked_div(total)
        .unwrap_or(1000);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// A threshold as given (`80`, `92.5`).
pub fn shown_threshold(min: f64) -> String {
    let text = format!("{min:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `role `owner``, `filter `x``, ... for a point's owner, when it has a name.
fn owner(point: &DecisionPoint) -> String {
    use rolegate::testing::PointKind as K;
    let what = match point.kind {
        K::Filter => "filter",
        K::ServiceWhen => "service rule",
        K::CanEvaluate => "function",
        K::PartitionRead | K::PartitionWrite => return String::new(),
        _ => "role",
    };
    match &point.name {
        Some(name) => format!(" ({what} `{name}`)"),
        None => String::new(),
    }
}

/// One point as the text report names it: `roles[1].apply_when false (role `clerk`)`.
pub fn point_text(point: &DecisionPoint) -> String {
    format!("{} {}{}", point.path, point.label(), owner(point))
}

/// `1 case`, `3 cases`.
pub fn cases_text(n: usize) -> String {
    match n {
        1 => "1 case".to_string(),
        n => format!("{n} cases"),
    }
}

fn file_line(file: &CoveredFile) -> String {
    let cases = cases_text(file.cases);
    format!(
        "{}: {} of {} ({}%), {cases}",
        file.label(),
        file.covered(),
        file.total(),
        shown_percent(file.covered(), file.total())
    )
}

/// The threshold's verdict, when there is a threshold.
fn verdict(coverage: &Coverage, summary: &Summary) -> Option<String> {
    let min = summary.min_coverage?;
    let shown = shown_percent(coverage.covered(), coverage.total());
    let min = shown_threshold(min);
    Some(match summary.meets_minimum(coverage) {
        true => format!("coverage {shown}% meets --min-coverage {min}"),
        false => format!("FAIL coverage {shown}% is below --min-coverage {min}"),
    })
}

/// The text report.
pub fn text(coverage: &Coverage, summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "coverage: {} of {} decision points reached ({}%) by {}",
        coverage.covered(),
        coverage.total(),
        shown_percent(coverage.covered(), coverage.total()),
        cases_text(coverage.cases())
    );
    for file in coverage.files() {
        let _ = writeln!(out, "{}", file_line(file));
        for point in file.points.iter().filter(|p| !p.covered()) {
            let _ = writeln!(out, "  not reached: {}", point_text(point));
        }
    }
    if let Some(line) = verdict(coverage, summary) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The JSON report: the library's report with the threshold added (`min_coverage`, `null`
/// without one, and `meets_minimum`).
pub fn json_report(coverage: &Coverage, summary: &Summary) -> Value {
    let mut report = coverage.to_json();
    if let Value::Object(map) = &mut report {
        map.insert("min_coverage".to_string(), json!(summary.min_coverage));
        map.insert(
            "meets_minimum".to_string(),
            json!(summary.meets_minimum(coverage)),
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_rounded_down() {
        assert_eq!(shown_percent(2, 3), "66.6");
        assert_eq!(shown_percent(7999, 10000), "79.9");
        assert_eq!(shown_percent(0, 7), "0.0");
        assert_eq!(shown_percent(5, 5), "100.0");
        assert_eq!(shown_percent(0, 0), "100.0");
        assert_eq!(shown_threshold(80.0), "80");
        assert_eq!(shown_threshold(92.5), "92.5");
    }
}
