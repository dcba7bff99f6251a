//! (Included by `tests/prometheus_rules.rs` only, as `#[path]` module: its unit tests run once.)
//!
//! The shipped alert and recording rules held against what an exporter really serves: every
//! metric a rule reads and every label it matches, groups by or prints must exist in a
//! scrape, so that a renamed metric or label fails a test instead of leaving an alert that
//! can never fire. The PromQL reading is only as deep as that needs: selectors with their
//! matchers, grouping and vector-matching label lists, and `$labels.x` in annotations.

use std::collections::{BTreeMap, BTreeSet};

/// What one expression refers to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Metric names read, each with the label names its matchers use.
    pub selectors: Vec<(String, BTreeSet<String>)>,
    /// Labels named in `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`.
    pub grouping: BTreeSet<String>,
}

/// Words that are PromQL syntax, not metric names, when they stand alone (an aggregation
/// may stand before its `by (...)`); the [`GROUPING`] words are syntax too.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names and label names of a PromQL expression.
pub fn references(expr: &str) -> References {
    let b = expr.as_bytes();
    let mut out = References::default();
    let mut i = 0;
    let skip_space = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i = skip_string(b, i);
        } else if c == b'[' {
            // A range or subquery duration: [5m], [1h:1m].
            while i < b.len() && b[i] != b']' {
                i += 1;
            }
            i += 1;
        } else if c == b'{' {
            let (labels, end) = matchers(expr, i);
            out.selectors.push((String::new(), labels));
            i = end;
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            let word = &expr[start..i];
            let next = skip_space(i);
            if GROUPING.contains(&word) && b.get(next) == Some(&b'(') {
                let close = expr[next..].find(')').map_or(b.len(), |k| next + k);
                for label in expr[next + 1..close].split(',') {
                    let label = label.trim();
                    if !label.is_empty() {
                        out.grouping.insert(label.to_string());
                    }
                }
                i = close + 1;
            } else if b.get(next) == Some(&b'{') {
                let (labels, end) = matchers(expr, next);
                out.selectors.push((word.to_string(), labels));
                i = end;
            } else if b.get(next) == Some(&b'(')
                || KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
                || GROUPING.contains(&word)
            {
                // A function or aggregation, or syntax.
            } else {
                out.selectors.push((word.to_string(), BTreeSet::new()));
            }
        } else if c.is_ascii_digit() || c == b'.' {
            // A number or a duration (5m, 1e3).
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The index after the string literal starting at `i` (backslash escapes in "" and '').
fn skip_string(b: &[u8], i: usize) -> usize {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() && b[j] != quote {
        if b[j] == b'\\' && quote != b'`' {
            j += 1;
        }
        j += 1;
    }
    j + 1
}

/// The label names of the matchers in braces starting at `open`, and the index after `}`.
fn matchers(expr: &str, open: usize) -> (BTreeSet<String>, usize) {
    let b = expr.as_bytes();
    let mut labels = BTreeSet::new();
    let mut i = open + 1;
    let mut name = String::new();
    while i < b.len() && b[i] != b'}' {
        match b[i] {
            b'"' | b'\'' | b'`' => {
                i = skip_string(b, i);
                continue;
            }
            b'=' | b'!' | b'~' if !name.is_empty() => {
                labels.insert(std::mem::take(&mut name));
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => name.push(c as char),
            _ => {}
        }
        i += 1;
    }
    (labels, i + 1)
}

/// The labels a rule's annotations and labels print with `$labels.x`.
pub fn template_labels(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for part in text.split("$labels.").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// The metric names of a scrape, each with the label names any of its samples carries.
/// Histogram and summary series are listed under their family name too.
pub fn served(exposition: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in crate::util::exposition::parse_metrics(exposition) {
        let mut names = vec![s.name.clone()];
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(family) = s.name.strip_suffix(suffix) {
                names.push(family.to_string());
            }
        }
        for name in names {
            let labels = out.entry(name).or_default();
            labels.extend(s.labels.keys().filter(|k| *k != "le").cloned());
            if s.name.ends_with("_bucket") {
                labels.insert("le".into());
            }
        }
    }
    out
}

/// Labels every scraped series gets from Prometheus (the target's), and the one the rule
/// engine adds to alerts.
const TARGET_LABELS: &[&str] = &["instance", "job", "__name__", "alertname"];

/// Problems of one rule: metrics read that the exporter does not serve (nor a recording
/// rule records), labels matched that the metric does not have, labels grouped by or
/// printed that no metric of the expression has.
pub fn problems(
    rule: &str,
    expr: &str,
    templates: &str,
    served: &BTreeMap<String, BTreeSet<String>>,
    recorded: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let refs = references(expr);
    let mut out = Vec::new();
    let mut available: BTreeSet<String> = TARGET_LABELS.iter().map(|s| s.to_string()).collect();
    for (metric, labels) in &refs.selectors {
        if metric.is_empty() || metric == "up" {
            available.extend(labels.iter().cloned());
            continue;
        }
        let Some(has) = served.get(metric).or_else(|| recorded.get(metric)) else {
            out.push(format!(
                "{rule}: metric {metric} is not served by the exporter"
            ));
            continue;
        };
        available.extend(has.iter().cloned());
        for label in labels {
            if !has.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                out.push(format!("{rule}: {metric} has no label {label:?}"));
            }
        }
    }
    for label in refs
        .grouping
        .iter()
        .chain(template_labels(templates).iter())
    {
        if !available.contains(label) {
            out.push(format!(
                "{rule}: no metric of the expression has a label {label:?}"
            ));
        }
    }
    out
}

/// What a recording rule's series carry: the `by (...)` labels of its aggregation, or the
/// labels of the metrics it reads where it does not aggregate.
pub fn recorded_labels(
    expr: &str,
    served: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeSet<String> {
    let refs = references(expr);
    if !refs.grouping.is_empty() {
        return refs.grouping;
    }
    refs.selectors
        .iter()
        .filter_map(|(m, _)| served.get(m))
        .flatten()
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn selectors_matchers_and_grouping() {
        let r = references(
            r#"max by (domain, check, code) (mailauth_finding{severity="error", code!~"dns.error|check.failed"}) == 1"#,
        );
        assert_eq!(
            r.selectors,
            vec![("mailauth_finding".to_string(), set(&["code", "severity"]))]
        );
        assert_eq!(r.grouping, set(&["domain", "check", "code"]));
    }

    #[test]
    fn functions_keywords_durations_and_strings_are_not_metrics() {
        let r = references(
            "(time() - mailauth_probe_last_success_timestamp_seconds)\n  > on (instance, job) group_left 2 * mailauth_probe_interval_seconds and rate(x_total[5m] offset 1d) unless label_replace(y, \"a\", \"$1\", \"b\", \"(.*)\")",
        );
        let names: Vec<&str> = r.selectors.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            names,
            [
                "mailauth_probe_last_success_timestamp_seconds",
                "mailauth_probe_interval_seconds",
                "x_total",
                "y"
            ]
        );
        assert_eq!(r.grouping, set(&["instance", "job"]));
    }

    #[test]
    fn recording_rule_names_and_bare_matchers() {
        let r = references(
            r#"sum by (domain) (domain_source_dkim_spf:mailauth_dmarc_report_messages:increase1d) / {__name__="z", a='b'}"#,
        );
        assert_eq!(
            r.selectors,
            vec![
                (
                    "domain_source_dkim_spf:mailauth_dmarc_report_messages:increase1d".to_string(),
                    set(&[])
                ),
                (String::new(), set(&["__name__", "a"]))
            ]
        );
    }

    #[test]
    fn a_renamed_metric_or_label_is_a_problem() {
        let served: BTreeMap<String, BTreeSet<String>> = [(
            "mailauth_finding".to_string(),
            set(&["domain", "check", "code", "severity"]),
        )]
        .into_iter()
        .collect();
        let none = BTreeMap::new();
        let ok = r#"max by (domain, code) (mailauth_finding{severity="error"}) == 1"#;
        assert!(problems("A", ok, "{{ $labels.domain }}", &served, &none).is_empty());
        assert_eq!(
            problems("A", "mailauth_findings == 1", "", &served, &none),
            ["A: metric mailauth_findings is not served by the exporter"]
        );
        assert_eq!(
            problems(
                "A",
                r#"mailauth_finding{level="error"}"#,
                "",
                &served,
                &none
            ),
            ["A: mailauth_finding has no label \"level\""]
        );
        assert_eq!(
            problems(
                "A",
                "max by (zone) (mailauth_finding)",
                "{{ $labels.target }}",
                &served,
                &none
            ),
            [
                "A: no metric of the expression has a label \"zone\"",
                "A: no metric of the expression has a label \"target\""
            ]
        );
    }

    #[test]
    fn template_labels_are_read() {
        assert_eq!(
            template_labels("{{ $labels.domain }}: {{$labels.check}} {{ $value }}"),
            set(&["domain", "check"])
        );
    }

    #[test]
    fn served_lists_histogram_families() {
        let s = served(
            "# TYPE h histogram\nh_bucket{domain=\"a\",le=\"1\"} 1\nh_sum{domain=\"a\"} 1\nh_count{domain=\"a\"} 1\ng 2\n",
        );
        assert_eq!(s["h"], set(&["domain", "le"]));
        assert_eq!(s["h_bucket"], set(&["domain", "le"]));
        assert_eq!(s["g"], set(&[]));
    }
}
